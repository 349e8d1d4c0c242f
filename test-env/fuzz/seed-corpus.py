#!/usr/bin/env python3
"""Writes the committed seed corpus of the fuzz targets (corpus/<target>/).

Run from the repository root: `python3 test-env/fuzz/seed-corpus.py`. Needs
PyYAML (for the manifests). Seeds are the project's real configurations
(test-env/configs, the attributegen test vectors, the manifests, JSON
configurations in the Rust tests) plus hand-made hostile inputs. Each file is
named by the SHA-1 of its content, as libFuzzer names what it adds, so
re-running only adds files.
"""

import hashlib
import json
import os
import re
import struct
import sys

import yaml

ROOT = os.getcwd()
OUT = os.path.join(ROOT, "test-env", "fuzz", "corpus")
SEP = b"\x00\xff"  # telemetry_fuzz::SEP

seeds = {t: set() for t in [
    "config_attributegen", "config_get_calls", "config_trace_tags",
    "cel_decoders", "label_encoding", "route_templates",
]}


def add(target, data):
    if isinstance(data, str):
        data = data.encode()
    seeds[target].add(data)


def filter_of(config):
    if isinstance(config, dict):
        if "attributes" in config:
            return "config_attributegen"
        if "metrics" in config:
            return "config_get_calls"
        if "tags" in config:
            return "config_trace_tags"
    return None


def add_config(config, text=None):
    target = filter_of(config)
    if target:
        add(target, text if text is not None else json.dumps(config, indent=1))


# Real configurations.
with open(os.path.join(ROOT, "test-env/configs/attributegen.json")) as f:
    text = f.read()
    add_config(json.loads(text), text)
with open(os.path.join(ROOT, "test-env/testdata/attributegen-test-vectors.json")) as f:
    vectors = json.load(f)
for config in vectors["configs"].values():
    add_config(config)
for case in vectors["unit"]:
    if isinstance(case.get("config"), dict):
        add_config(case["config"])
for key in ["e2e_istio_proxy_TestAttributeGen", "e2e_istio_integration_TestCustomizeMetrics"]:
    add_config(vectors[key]["plugin_config"])


def walk_yaml(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "pluginConfig":
                add_config(v)
            elif k == "configuration" and isinstance(v, dict) and isinstance(v.get("value"), str):
                try:
                    add_config(json.loads(v["value"]), v["value"])
                except ValueError:
                    pass
            walk_yaml(v)
    elif isinstance(node, list):
        for v in node:
            walk_yaml(v)


for dirpath, _, files in os.walk(os.path.join(ROOT, "envoyfilter-manifests")):
    for name in sorted(files):
        if name.endswith(".yaml"):
            with open(os.path.join(dirpath, name)) as f:
                for doc in yaml.safe_load_all(f):
                    walk_yaml(doc)

# JSON configurations written as raw strings in the Rust tests.
RAW = re.compile(r'r#"(\{.*?\})"#', re.S)
for top in ["filters", "test-env/harness/tests"]:
    for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
        for name in sorted(files):
            if name.endswith(".rs"):
                with open(os.path.join(dirpath, name)) as f:
                    for m in RAW.finditer(f.read()):
                        try:
                            add_config(json.loads(m.group(1)), m.group(1))
                        except ValueError:
                            pass

# Hostile requests behind each configuration: method, path, CEL results
# (bool, int, text with separators, invalid UTF-8, pairs, an error).
pairs_map = (struct.pack("<I", 2) + struct.pack("<IIII", 1, 1, 1, 1) + b"a\0b\0c\0d\0")
results = [b"\x01", struct.pack("<q", 200), b"a;.;b=.=c\"q\"\\", b"cache.x.shadow_y\xff",
           pairs_map, b""]
for target in ["config_attributegen", "config_get_calls", "config_trace_tags"]:
    for config in sorted(seeds[target])[:4]:
        add(target, SEP.join([config, b"GET", b"/books/1;.;x=.=y?q=1"] + results))
        add(target, SEP.join([config, b"!PURGE", b"/shelves/a/books/b", b"\x00",
                              b"\xe2\x82\xac" * 100, b"\x7f\x1b[0m\r\n"]))
add("config_attributegen", '{"attributes":[{"output_attribute":"op","match":['
    '{"value":"Get","template":"GET /shelves/{shelf}/books/{book}"},'
    '{"value":"Any","template":"/books/{*rest}"},'
    '{"value":"Cel","condition":"request.method == \'POST\'"},'
    '{"value":"Img","template":"GET /img-{id}.png"}]}]}')
add("config_get_calls", "")
add("config_trace_tags", "")

# CEL results.
for data in [b"\x00", b"\x01", struct.pack("<q", 36878), struct.pack("<q", -1),
             struct.pack("<d", 1.5), b"op-1", b"f\xff", "é€".encode(), pairs_map,
             struct.pack("<I", 0), struct.pack("<I", 1) + struct.pack("<II", 3, 0) + b"abc\0\0",
             b"\xff\xff\xff\xff"]:
    add("cel_decoders", data)

# Label values with separators, foreign words, non-ASCII; several caps.
values = [b"ListBooks", b"reviews.default.svc.cluster.local", b"/books/1?a=b", b"a;.;b=.=c",
          b"\"q\"\\\n\r\t ", b"a...b", b"cache.a.b", b"xcomponent.x.y", b"tag.q",
          b"wasm_filter.z", b"rbac.denied", b"a.shadow_allowed", b"a.istio_dry_run_allow_",
          "é€".encode(), b"\xffa", b"", b"x" * 300]
for cap, names in [(64, b"destination_service,request_operation,response_code"),
                   (7, b"istio_get_calls,a,b"), (0, b"code,response_code"), (255, b"l")]:
    add("label_encoding", SEP.join([bytes([cap]) + names] + values))

# Route templates.
add("route_templates", "\n".join([
    "GET /books/{id}", "GET /books/featured", "GET /books", "POST /books/",
    "/books/{id}/{*rest}", "?GET /books/42", "?DELETE /books/1/a/b"]))
add("route_templates", "\n".join([
    "GET /shelves/{shelf}/books/{book}", "/items/{id}", "DELETE /items/{id}",
    "GET /img-{id}.png", "* /a/{x}/b", "PUT /{{literal}}/{x}", "?PURGE /items/1"]))
add("route_templates", "GET /a/{x}\nGET /a/{y}\n/b\n/b")

for target, items in seeds.items():
    os.makedirs(os.path.join(OUT, target), exist_ok=True)
    for data in items:
        name = hashlib.sha1(data).hexdigest()
        with open(os.path.join(OUT, target, name), "wb") as f:
            f.write(data)
    print(f"{target}: {len(items)} seeds", file=sys.stderr)
