//! The generated Istio manifests, proven in a real Envoy as far as Envoy can
//! prove them (no istiod, no pilot-agent, no `istio.stats` here):
//!
//! - each WasmPlugin is translated to the Envoy `Wasm` filter as istiod does
//!   (compact JSON `pluginConfig` in a `StringValue`, no bytes when empty,
//!   `failStrategy` → `failure_policy`, `vmConfig.env` → environment
//!   variables, filters ordered by phase then priority), its `oci://` code
//!   pointed at the local module whose Wasm-artifact image has the manifest's
//!   `sha256`; the Telemetry's trace `customTags` become HCM custom tags as
//!   istiod makes them, and get-calls' `extraStatTags` the tag extractors
//!   istiod adds;
//! - each EnvoyFilter's patches are spliced into the bootstrap as written:
//!   the HTTP filter value (with `config_discovery`) inserted before the
//!   stand-in for `istio.stats` in priority order, the `EXTENSION_CONFIG`
//!   value served over ECDS (from a file: there is no ADS server here, so
//!   `config_source.ads` becomes a `path_config_source`), its remote code
//!   replaced by the local file after checking the module's sha256 as
//!   pilot-agent does, also wrapped in a `TypedStruct`; the HCM `MERGE`
//!   patch's custom tags added to the tracing.
//!
//! Requests then show every filter's output as Envoy itself reports it:
//! `%CEL(filter_state['wasm.istio_operationId'])%` in the access log, and
//! each of the Telemetry's metric `tagOverrides` expressions (what
//! `istio.stats` would evaluate) evaluated by Envoy's CEL the same way; the trace
//! tags on the spans a collector receives, `istio_get_calls{…}` labelled by
//! the extractors in `/stats/prometheus`, and each filter's heartbeat under
//! Istio's `wasm_filter` extractor.

use envoy_harness::paths::workspace_root;
use envoy_harness::{Collector, Envoy, EnvoyBuilder};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";

fn manifest(dir: &str, file: &str) -> Value {
    let path = workspace_root()
        .join("envoyfilter-manifests")
        .join(dir)
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    // The digest the generator wrote is checked with the OCI crate's own
    // hashing, so this stays independent of the generator's code.
    oci_image::sha256_digest(bytes)
        .trim_start_matches("sha256:")
        .to_string()
}

/// The local module an `oci://…/<filter>:<version>` URL stands for, after
/// checking that the manifest's `sha256` is the manifest digest of that
/// module's Wasm-artifact image (what Istio compares for `oci://`).
fn module_of_image(url: &str, sha256: &str) -> PathBuf {
    let image = url.rsplit('/').next().unwrap().split(':').next().unwrap();
    let f = manifest_gen::filters::by_dir(image).unwrap();
    let path = f.module_path(&workspace_root());
    let module = std::fs::read(&path).unwrap();
    let digest = oci_image::wasm_artifact(&module).manifest_digest();
    assert_eq!(
        format!("sha256:{sha256}"),
        digest,
        "{url}: sha256 is not the image digest of {} (rebuild, then scripts/gen-manifests.sh)",
        path.display()
    );
    path
}

/// istiod's translation of a WasmPlugin into an HTTP filter
/// (`pilot/pkg/model/extensions.go`), code pointed at the local module.
/// Returns (phase rank, priority, filter entry).
fn translate_wasmplugin(plugin: &Value) -> (u8, i64, Value) {
    let spec = &plugin["spec"];
    let name = format!(
        "{}.{}",
        plugin["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default"),
        plugin["metadata"]["name"].as_str().unwrap()
    );
    let module = module_of_image(
        spec["url"].as_str().unwrap(),
        spec["sha256"].as_str().unwrap(),
    );
    let mut vm = json!({
        "runtime": "envoy.wasm.runtime.v8",
        "code": { "local": { "filename": module } },
    });
    let mut key_values = serde_json::Map::new();
    let mut host_keys = Vec::new();
    for e in spec["vmConfig"]["env"].as_array().into_iter().flatten() {
        let n = e["name"].as_str().unwrap().to_string();
        if e["valueFrom"] == "HOST" {
            host_keys.push(json!(n));
        } else {
            key_values.insert(n, e["value"].clone());
        }
    }
    if !key_values.is_empty() || !host_keys.is_empty() {
        vm["environment_variables"] =
            json!({ "key_values": key_values, "host_env_keys": host_keys });
    }
    let failure_policy = match spec["failStrategy"].as_str() {
        Some("FAIL_OPEN") => "FAIL_OPEN",
        Some("FAIL_RELOAD") => "FAIL_RELOAD",
        _ => "FAIL_CLOSED",
    };
    let mut config = json!({
        "name": name,
        "root_id": spec["pluginName"].as_str().unwrap_or(""),
        "vm_config": vm,
        "failure_policy": failure_policy,
    });
    // Non-empty pluginConfig: compact JSON in a StringValue; empty: no bytes.
    let plugin_config = &spec["pluginConfig"];
    if plugin_config.as_object().is_some_and(|m| !m.is_empty()) {
        config["configuration"] = json!({
            "@type": "type.googleapis.com/google.protobuf.StringValue",
            "value": plugin_config.to_string(),
        });
    }
    let phase = match spec["phase"].as_str() {
        Some("AUTHN") => 0,
        Some("AUTHZ") => 1,
        Some("STATS") => 2,
        _ => 3,
    };
    let filter = json!({ "name": name, "typed_config": { "@type": WASM_TYPE, "config": config } });
    (phase, spec["priority"].as_i64().unwrap_or(0), filter)
}

/// Istio's Telemetry trace `customTags` as istiod turns them into HCM
/// `custom_tags` (`pilot/pkg/networking/core/tracing.go`), sorted by name.
fn telemetry_custom_tags(telemetry: &Value) -> Value {
    let mut tags: Vec<Value> = telemetry["spec"]["tracing"][0]["customTags"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, t)| {
            if let Some(v) = t["formatter"]["value"].as_str() {
                json!({ "tag": name, "value": v })
            } else if let Some(h) = t["header"]["name"].as_str() {
                json!({ "tag": name, "request_header": { "name": h } })
            } else if let Some(v) = t["literal"]["value"].as_str() {
                json!({ "tag": name, "literal": { "value": v } })
            } else {
                panic!("custom tag kind of {name}: {t}")
            }
        })
        .collect();
    tags.sort_by_key(|t| t["tag"].as_str().unwrap().to_string());
    Value::Array(tags)
}

/// The Telemetry's metric `tagOverrides` (what `istio.stats` would evaluate)
/// as access-log fields `telemetry.<tag>` = `%CEL(<expression>)%`, so
/// Envoy's own CEL evaluates exactly those expressions.
fn telemetry_metric_fields(mut b: EnvoyBuilder, telemetry: &Value) -> EnvoyBuilder {
    for m in telemetry["spec"]["metrics"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for o in m["overrides"].as_array().into_iter().flatten() {
            for (tag, v) in o["tagOverrides"].as_object().into_iter().flatten() {
                let expr = v["value"].as_str().unwrap();
                b = b.log_field(&format!("telemetry.{tag}"), &format!("%CEL({expr})%"));
            }
        }
    }
    b
}

/// The tag extractors istiod adds for `extraStatTags`, plus Istio's fixed
/// `wasm_filter` extractor (`tools/packaging/common/envoy_bootstrap.json`).
fn istio_stats_tags(mut b: EnvoyBuilder, mesh_config: &Value) -> EnvoyBuilder {
    for t in mesh_config["spec"]["meshConfig"]["defaultConfig"]["extraStatTags"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let t = t.as_str().unwrap();
        b = b.stats_tag(t, &format!("({t}=\\.=(.*?);\\.;)"));
    }
    b.stats_tag("wasm_filter", "(wasm_filter\\.(.+?)\\.)")
}

/// Access-log fields: the operation as `istio.stats` would read it, the
/// response class, each trace tag's filter state.
fn log_fields(b: EnvoyBuilder) -> EnvoyBuilder {
    let mut b = b
        .log_attribute("istio_operationId")
        .log_attribute("istio_responseClass");
    for t in [
        "team",
        "deployment",
        "tenant",
        "operation",
        "api_route",
        "response_class",
    ] {
        b = b.log_attribute(&format!("trace_tag.{t}"));
    }
    b.log_field("x-trace-tag-operation", "%REQ(X-TRACE-TAG-OPERATION)%")
}

/// What every deployment must show for `GET /reviews/1` from tenant acme.
fn assert_outputs(
    envoy: &Envoy,
    collector: &Collector,
    what: &str,
    headers_variant: bool,
    dirs: &[&str],
) {
    let resp = envoy
        .request("GET", "/reviews/1")
        .header("x-tenant-id", "acme")
        .send()
        .unwrap();
    assert_eq!(resp.status, 200, "{what}");
    let log = envoy.access_log_entry(&resp).unwrap();
    assert_eq!(log["cel.istio_operationId"], "GetReview", "{what}: {log}");
    // The Telemetry's tagOverrides, evaluated by Envoy's CEL.
    assert_eq!(
        log["telemetry.request_operation"], "GetReview",
        "{what}: {log}"
    );
    assert_eq!(log["telemetry.response_code"], "2xx", "{what}: {log}");
    assert_eq!(log["attr.istio_responseClass"], "2xx", "{what}: {log}");
    assert_eq!(log["attr.trace_tag.tenant"], "acme", "{what}: {log}");
    assert_eq!(
        log["attr.trace_tag.operation"], "GetReview",
        "{what}: {log}"
    );
    assert_eq!(log["attr.trace_tag.deployment"], "canary", "{what}: {log}");
    if headers_variant {
        assert_eq!(log["x-trace-tag-operation"], "GetReview", "{what}: {log}");
    } else {
        assert_eq!(log["attr.trace_tag.response_class"], "ok", "{what}: {log}");
    }
    let span = collector.span_of(&resp).unwrap();
    assert_eq!(span.tag("operation"), Some("GetReview"), "{what}: {span:?}");
    assert_eq!(span.tag("tenant"), Some("acme"), "{what}: {span:?}");
    assert_eq!(span.tag("team"), Some("bookstore"), "{what}: {span:?}");
    if !headers_variant {
        assert_eq!(span.tag("response_class"), Some("ok"), "{what}: {span:?}");
    }
    // The heartbeats count the request on the modules' next tick.
    std::thread::sleep(envoy_harness::HEARTBEAT_FLUSH);
    let prom = envoy.prometheus().unwrap();
    let series = "istio_get_calls{destination_service=\"upstream\",request_operation=\"GetReview\",response_code=\"200\"} 1";
    assert!(prom.contains(series), "{what}: no {series} in\n{prom}");
    // As Istio's wasm_filter extractor shows them (the README's alerts): one
    // heartbeat per module, configuration errors per filter.
    let heartbeats = dirs.iter().map(|d| {
        let module = manifest_gen::filters::by_dir(d).unwrap().module;
        format!("telemetry_filters_requests_total{{wasm_filter=\"{module}\"}} 1")
    });
    let errors = ["attributegen", "trace_tags", "get_calls"]
        .map(|f| format!("type_config_error_count{{wasm_filter=\"{f}\"}} 0"));
    for line in heartbeats.chain(errors) {
        assert!(
            prom.lines().any(|l| l == line),
            "{what}: no {line} in\n{prom}"
        );
    }
    assert!(
        !prom.lines().any(|l| l.starts_with("requests_total{")),
        "{what}: a heartbeat under the old name in\n{prom}"
    );
}

/// An Envoy with `filters` deployed from the manifest folders `dirs` (one:
/// the bundle's; else the three filters'): the mesh config's stat tags, the
/// metrics Telemetry's fields, the access-log fields, and tracing with
/// `custom_tags` to `collector`.
fn deploy(filters: Vec<Value>, dirs: &[&str], custom_tags: Value, collector: &Collector) -> Envoy {
    let (mesh, metrics) = match dirs {
        [one] => (*one, *one),
        _ => ("get-calls", "attributegen"),
    };
    let mut b = Envoy::builder();
    for f in filters {
        b = b.filter(f);
    }
    b = istio_stats_tags(log_fields(b), &manifest(mesh, "mesh-config.yaml"));
    b = telemetry_metric_fields(b, &manifest(metrics, "telemetry.yaml"));
    b.zipkin_tracing(collector.port(), custom_tags)
        .start()
        .unwrap()
}

fn wasmplugin_case(plugins: &[(&str, &str)], telemetry: (&str, &str), headers_variant: bool) {
    let mut translated: Vec<(u8, i64, Value)> = plugins
        .iter()
        .map(|(dir, file)| translate_wasmplugin(&manifest(dir, file)))
        .collect();
    // istiod: by phase, then higher priority first.
    translated.sort_by_key(|(phase, priority, _)| (*phase, -priority));
    let collector = Collector::start().unwrap();
    let dirs: Vec<&str> = plugins.iter().map(|(dir, _)| *dir).collect();
    let envoy = deploy(
        translated.into_iter().map(|(.., f)| f).collect(),
        &dirs,
        telemetry_custom_tags(&manifest(telemetry.0, telemetry.1)),
        &collector,
    );
    let what = format!("{plugins:?}");
    assert_outputs(&envoy, &collector, &what, headers_variant, &dirs);
}

/// The three WasmPlugins, ordered by istiod's rules (phase, priority).
#[test]
fn wasmplugins_as_istiod_translates_them() {
    wasmplugin_case(
        &[
            ("get-calls", "wasmplugin.yaml"),
            ("trace-tags", "wasmplugin.yaml"),
            ("attributegen", "wasmplugin.yaml"),
        ],
        ("trace-tags", "telemetry.yaml"),
        false,
    );
}

/// The same with the header variant for Istio before 1.29.
#[test]
fn wasmplugins_before_istio_1_29() {
    wasmplugin_case(
        &[
            ("get-calls", "wasmplugin.yaml"),
            ("trace-tags", "wasmplugin-headers.yaml"),
            ("attributegen", "wasmplugin.yaml"),
        ],
        ("trace-tags", "telemetry-headers.yaml"),
        true,
    );
}

/// The one-VM bundle's WasmPlugin.
#[test]
fn bundle_wasmplugin_as_istiod_translates_it() {
    wasmplugin_case(
        &[("telemetry-bundle", "wasmplugin.yaml")],
        ("telemetry-bundle", "telemetry.yaml"),
        false,
    );
}

/// The bundle's WasmPlugin for Istio before 1.29.
#[test]
fn bundle_wasmplugin_before_istio_1_29() {
    wasmplugin_case(
        &[("telemetry-bundle", "wasmplugin-headers.yaml")],
        ("telemetry-bundle", "telemetry-headers.yaml"),
        true,
    );
}

/// Splices EnvoyFilters into a bootstrap in priority order; writes the
/// ECDS files into `dir`. Returns (HTTP filters, HCM custom tags).
fn splice_envoyfilters(
    mut filters: Vec<Value>,
    dir: &Path,
    typed_struct: bool,
) -> (Vec<Value>, Vec<Value>) {
    filters.sort_by_key(|f| f["spec"]["priority"].as_i64().unwrap_or(0));
    let mut http = Vec::new();
    let mut tags = Vec::new();
    for ef in &filters {
        for p in ef["spec"]["configPatches"].as_array().unwrap() {
            let value = &p["patch"]["value"];
            match (
                p["applyTo"].as_str().unwrap(),
                p["patch"]["operation"].as_str().unwrap(),
            ) {
                ("HTTP_FILTER", "INSERT_BEFORE") => {
                    assert_eq!(
                        p["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"],
                        "istio.stats"
                    );
                    let mut v = value.clone();
                    let name = v["name"].as_str().unwrap().to_string();
                    let source = &mut v["config_discovery"]["config_source"];
                    assert_eq!(source["ads"], json!({}), "{name}: ECDS over ADS");
                    let timeout = source["initial_fetch_timeout"].clone();
                    *source = json!({
                        "path_config_source": { "path": dir.join(format!("{name}.json")) },
                        "resource_api_version": "V3",
                        "initial_fetch_timeout": timeout,
                    });
                    // Each insert lands right before istio.stats, i.e. after the earlier ones.
                    http.push(v);
                }
                ("EXTENSION_CONFIG", "ADD") => {
                    let name = value["name"].as_str().unwrap();
                    let mut typed = value["typed_config"].clone();
                    assert_eq!(typed["@type"], WASM_TYPE);
                    // pilot-agent: download, check sha256, rewrite to a local file.
                    let code = &mut typed["config"]["vm_config"]["code"];
                    let uri = code["remote"]["http_uri"]["uri"].as_str().unwrap();
                    let module = uri.rsplit('/').next().unwrap().trim_end_matches(".wasm");
                    let path = manifest_gen::filters::by_module(module)
                        .unwrap()
                        .module_path(&workspace_root());
                    let bytes = std::fs::read(&path).unwrap();
                    assert_eq!(
                        code["remote"]["sha256"],
                        sha256_hex(&bytes),
                        "{name}: sha256 of {}",
                        path.display()
                    );
                    *code = json!({ "local": { "filename": path } });
                    if typed_struct {
                        let mut inner = typed.clone();
                        inner.as_object_mut().unwrap().remove("@type");
                        typed = json!({
                            "@type": "type.googleapis.com/udpa.type.v1.TypedStruct",
                            "type_url": WASM_TYPE,
                            "value": inner,
                        });
                    }
                    let doc = json!({ "version_info": "1", "resources": [{
                        "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
                        "name": name,
                        "typed_config": typed,
                    }]});
                    std::fs::write(dir.join(format!("{name}.json")), doc.to_string()).unwrap();
                }
                ("NETWORK_FILTER", "MERGE") => {
                    let t = value["typed_config"]["tracing"]["custom_tags"]
                        .as_array()
                        .unwrap();
                    tags.extend(t.iter().cloned());
                }
                (a, o) => panic!("patch {a} {o} not handled"),
            }
        }
    }
    (http, tags)
}

fn envoyfilter_case(dirs: &[&str], typed_struct: bool) {
    let files: Vec<(&str, &str)> = dirs.iter().map(|d| (*d, "envoyfilter.yaml")).collect();
    envoyfilter_files_case(&files, typed_struct, false);
}

/// Each (folder, file) spliced; `headers_variant`: trace-tags writes
/// request headers that `request_header` custom tags read.
fn envoyfilter_files_case(files: &[(&str, &str)], typed_struct: bool, headers_variant: bool) {
    let ecds = tempfile::tempdir().unwrap();
    let efs: Vec<Value> = files.iter().map(|(d, f)| manifest(d, f)).collect();
    let dirs: Vec<&str> = files.iter().map(|(d, _)| *d).collect();
    let dirs = dirs.as_slice();
    let (http, tags) = splice_envoyfilters(efs, ecds.path(), typed_struct);
    let collector = Collector::start().unwrap();
    let envoy = deploy(http, dirs, Value::Array(tags), &collector);
    let what = format!("EnvoyFilter {files:?} (TypedStruct: {typed_struct})");
    assert_outputs(&envoy, &collector, &what, headers_variant, dirs);
    // The filters came over ECDS.
    for d in dirs {
        let module = manifest_gen::filters::by_dir(d).unwrap().module;
        let stat = format!("extension_config_discovery.http_filter.istio.{module}.config_reload");
        assert_eq!(envoy.stat(&stat).unwrap(), Some(1), "{what}: {stat}");
    }
}

/// The three EnvoyFilters, spliced as written, in priority order.
#[test]
fn envoyfilters_spliced_as_written() {
    envoyfilter_case(&["get-calls", "attributegen", "trace-tags"], false);
}

/// The same with each ECDS configuration in a TypedStruct.
#[test]
fn envoyfilters_as_typed_structs() {
    envoyfilter_case(&["trace-tags", "get-calls", "attributegen"], true);
}

/// The bundle's EnvoyFilter.
#[test]
fn bundle_envoyfilter_spliced_as_written() {
    envoyfilter_case(&["telemetry-bundle"], false);
}

/// istiod 1.30's conversion of a WasmPlugin into a synthetic TrafficExtension
/// (`pilot/pkg/config/kube/extensions/translate.go`): same namespace, the
/// name with `~istio-translated-wasmplugin`, phase / priority / match /
/// selector / targetRefs kept, the Wasm fields moved under `wasm`.
fn wasmplugin_to_trafficextension(plugin: &Value) -> Value {
    let spec = plugin["spec"].as_object().unwrap();
    let mut te = serde_json::Map::new();
    let mut wasm = serde_json::Map::new();
    for (k, v) in spec {
        match k.as_str() {
            "selector" | "targetRefs" | "phase" | "priority" | "match" => {
                te.insert(k.clone(), v.clone());
            }
            _ => {
                wasm.insert(k.clone(), v.clone());
            }
        }
    }
    te.insert("wasm".into(), Value::Object(wasm));
    json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "TrafficExtension",
        "metadata": {
            "name": format!("{}~istio-translated-wasmplugin", plugin["metadata"]["name"].as_str().unwrap()),
            "namespace": plugin["metadata"]["namespace"],
        },
        "spec": te,
    })
}

/// The traffic direction of the listener a TrafficExtension lands on, as
/// istiod's `workloadModeForListenerClass` names it: a sidecar's inbound
/// and a waypoint's listeners are `SERVER`, a gateway's (and a sidecar's
/// outbound) `CLIENT`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Direction {
    Server,
    Client,
}

/// istiod's `matchMode`: no `match`, `UNDEFINED` or `CLIENT_AND_SERVER`
/// match every listener; `SERVER` / `CLIENT` only their own direction.
fn matches(spec: &Value, direction: Direction) -> bool {
    let Some(selectors) = spec["match"].as_array().filter(|m| !m.is_empty()) else {
        return true;
    };
    selectors.iter().any(|m| match m["mode"].as_str() {
        None | Some("UNDEFINED" | "CLIENT_AND_SERVER") => true,
        Some("SERVER") => direction == Direction::Server,
        Some("CLIENT") => direction == Direction::Client,
        Some(other) => panic!("match.mode {other}"),
    })
}

/// One TrafficExtension as istiod 1.30 turns it into Envoy configuration
/// (`pilot/pkg/model/extensions.go`, `…/core/extension/extensionfilter.go`).
struct Extension {
    /// Phase rank: AUTHN, AUTHZ, STATS, unspecified (the order istiod appends them).
    phase: u8,
    /// `priority`; unset sorts as the lowest int32.
    priority: i64,
    /// The HTTP filter: `extensions.istio.io/trafficextension/<ns>.<name>`, its
    /// configuration from ECDS (written to `dir`).
    filter: Value,
}

/// Translates `te` for a listener of `direction` (None when its `match`
/// excludes it), writing its ECDS resource into `dir`: the Wasm filter named
/// `<ns>.<name>`, `root_id` from `wasm.pluginName`, non-empty `pluginConfig`
/// as compact JSON in a `StringValue`, `failStrategy` → `failure_policy`
/// (unset: Envoy's default, fail closed), `vmConfig.env` → environment
/// variables; the `oci://` code pointed at the local module whose image
/// digest is the manifest's `sha256` (pilot-agent's pull).
fn translate_trafficextension(te: &Value, direction: Direction, dir: &Path) -> Option<Extension> {
    let spec = &te["spec"];
    if !matches(spec, direction) {
        return None;
    }
    let wasm = &spec["wasm"];
    let ns = te["metadata"]["namespace"].as_str().unwrap_or("default");
    let name = format!("{ns}.{}", te["metadata"]["name"].as_str().unwrap());
    let resource = format!("extensions.istio.io/trafficextension/{name}");
    let module = module_of_image(
        wasm["url"].as_str().unwrap(),
        wasm["sha256"].as_str().unwrap(),
    );
    let mut vm = json!({
        "runtime": "envoy.wasm.runtime.v8",
        "code": { "local": { "filename": module } },
    });
    let mut key_values = serde_json::Map::new();
    let mut host_keys = Vec::new();
    for e in wasm["vmConfig"]["env"].as_array().into_iter().flatten() {
        let n = e["name"].as_str().unwrap().to_string();
        if e["valueFrom"] == "HOST" {
            host_keys.push(json!(n));
        } else {
            key_values.insert(n, e["value"].clone());
        }
    }
    vm["environment_variables"] = json!({ "key_values": key_values, "host_env_keys": host_keys });
    let mut config = json!({
        "name": name,
        "root_id": wasm["pluginName"].as_str().unwrap_or(""),
        "vm_config": vm,
    });
    match wasm["failStrategy"].as_str() {
        Some("FAIL_OPEN") => config["failure_policy"] = json!("FAIL_OPEN"),
        Some("FAIL_CLOSE") => config["failure_policy"] = json!("FAIL_CLOSED"),
        Some("FAIL_RELOAD") => config["failure_policy"] = json!("FAIL_RELOAD"),
        _ => {}
    }
    let plugin_config = &wasm["pluginConfig"];
    if plugin_config.as_object().is_some_and(|m| !m.is_empty()) {
        config["configuration"] = json!({
            "@type": "type.googleapis.com/google.protobuf.StringValue",
            "value": plugin_config.to_string(),
        });
    }
    let file = dir.join(format!("{}.json", name.replace(['/', '~'], "_")));
    let doc = json!({ "version_info": "1", "resources": [{
        "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
        "name": resource,
        "typed_config": { "@type": WASM_TYPE, "config": config },
    }]});
    std::fs::write(&file, doc.to_string()).unwrap();
    let phase = match spec["phase"].as_str() {
        Some("AUTHN") => 0,
        Some("AUTHZ") => 1,
        Some("STATS") => 2,
        _ => 3,
    };
    let filter = json!({
        "name": resource,
        "config_discovery": {
            "config_source": {
                "path_config_source": { "path": file },
                "resource_api_version": "V3",
                "initial_fetch_timeout": "0s",
            },
            "type_urls": [WASM_TYPE],
        },
    });
    Some(Extension {
        phase,
        priority: spec["priority"].as_i64().unwrap_or(i64::from(i32::MIN)),
        filter,
    })
}

/// The HTTP filters of `resources` (TrafficExtensions, and WasmPlugins
/// converted to synthetic TrafficExtensions) in istiod's order: all of them
/// sorted by creation time (here: the order given), then, within each
/// phase, stably by priority, highest first; phases AUTHN, AUTHZ, STATS,
/// unspecified. WasmPlugins and TrafficExtensions share that one order.
fn istiod_chain(resources: &[Value], direction: Direction, dir: &Path) -> Vec<(String, Value)> {
    let mut exts: Vec<(String, Extension)> = resources
        .iter()
        .map(|r| {
            if r["kind"] == "WasmPlugin" {
                wasmplugin_to_trafficextension(r)
            } else {
                r.clone()
            }
        })
        .filter_map(|te| {
            let name = te["metadata"]["name"].as_str().unwrap().to_string();
            translate_trafficextension(&te, direction, dir).map(|e| (name, e))
        })
        .collect();
    exts.sort_by_key(|(_, e)| (e.phase, -e.priority));
    exts.into_iter().map(|(n, e)| (n, e.filter)).collect()
}

fn trafficextension_case(resources: &[(&str, &str)], direction: Direction, what: &str) {
    let ecds = tempfile::tempdir().unwrap();
    let docs: Vec<Value> = resources.iter().map(|(d, f)| manifest(d, f)).collect();
    for d in &docs {
        if d["kind"] == "TrafficExtension" {
            // As istiod reads it: exactly one of selector / targetRefs.
            let spec = &d["spec"];
            assert!(
                spec["selector"].is_null() != spec["targetRefs"].is_null(),
                "{what}"
            );
        }
    }
    let chain = istiod_chain(&docs, direction, ecds.path());
    assert_eq!(
        chain.len(),
        docs.len(),
        "{what}: a resource did not match the listener"
    );
    let names: Vec<&str> = chain.iter().map(|(n, _)| n.as_str()).collect();
    let dirs: Vec<&str> = resources.iter().map(|(d, _)| *d).collect();
    if dirs.len() == 3 {
        // attributegen (AUTHN) -> trace-tags (STATS, 20) -> get-calls (STATS, 10).
        let order: Vec<&str> = names.iter().map(|n| n.split('~').next().unwrap()).collect();
        assert_eq!(order, ["attributegen", "trace-tags", "get-calls"], "{what}");
    }
    let tracing = if dirs.contains(&"trace-tags") {
        "trace-tags"
    } else {
        dirs[0]
    };
    let collector = Collector::start().unwrap();
    let envoy = deploy(
        chain.into_iter().map(|(_, f)| f).collect(),
        &dirs,
        telemetry_custom_tags(&manifest(tracing, "telemetry.yaml")),
        &collector,
    );
    assert_outputs(&envoy, &collector, what, false, &dirs);
}

/// The three TrafficExtensions on a sidecar's inbound listener (`SERVER`).
#[test]
fn trafficextensions_as_istiod_translates_them() {
    trafficextension_case(
        &[
            ("get-calls", "trafficextension.yaml"),
            ("attributegen", "trafficextension.yaml"),
            ("trace-tags", "trafficextension.yaml"),
        ],
        Direction::Server,
        "TrafficExtensions (sidecar)",
    );
}

/// The `targetRefs` Service variants on a waypoint (its listeners: `SERVER`).
#[test]
fn trafficextensions_on_a_waypoint() {
    trafficextension_case(
        &[
            ("trace-tags", "trafficextension-waypoint.yaml"),
            ("get-calls", "trafficextension-waypoint.yaml"),
            ("attributegen", "trafficextension-waypoint.yaml"),
        ],
        Direction::Server,
        "TrafficExtensions (waypoint)",
    );
}

/// The `targetRefs` Gateway variants on a gateway (its listeners: `CLIENT`).
#[test]
fn trafficextensions_on_a_gateway() {
    trafficextension_case(
        &[
            ("attributegen", "trafficextension-gateway.yaml"),
            ("get-calls", "trafficextension-gateway.yaml"),
            ("trace-tags", "trafficextension-gateway.yaml"),
        ],
        Direction::Client,
        "TrafficExtensions (gateway)",
    );
}

/// The bundle's TrafficExtension on a sidecar, and on a gateway.
#[test]
fn bundle_trafficextension_as_istiod_translates_it() {
    trafficextension_case(
        &[("telemetry-bundle", "trafficextension.yaml")],
        Direction::Server,
        "bundle TrafficExtension (sidecar)",
    );
    trafficextension_case(
        &[("telemetry-bundle", "trafficextension-gateway.yaml")],
        Direction::Client,
        "bundle TrafficExtension (gateway)",
    );
}

/// WasmPlugins (converted by istiod into TrafficExtensions) and
/// TrafficExtensions land in one chain, ordered by phase and priority
/// whatever their kind.
#[test]
fn wasmplugins_and_trafficextensions_share_one_order() {
    trafficextension_case(
        &[
            ("get-calls", "wasmplugin.yaml"),
            ("trace-tags", "trafficextension.yaml"),
            ("attributegen", "wasmplugin.yaml"),
        ],
        Direction::Server,
        "WasmPlugins + TrafficExtension",
    );
}

/// `match.mode: SERVER` keeps get-calls and the bundle off a sidecar's
/// outbound listeners (and off a gateway's); attributegen and trace-tags
/// have no `match` and go everywhere.
#[test]
fn match_mode_selects_the_traffic_direction() {
    let ecds = tempfile::tempdir().unwrap();
    let on = |dir: &str, file: &str, direction| {
        translate_trafficextension(&manifest(dir, file), direction, ecds.path()).is_some()
    };
    for dir in ["get-calls", "telemetry-bundle"] {
        assert!(on(dir, "trafficextension.yaml", Direction::Server), "{dir}");
        assert!(
            !on(dir, "trafficextension.yaml", Direction::Client),
            "{dir}"
        );
        assert!(
            on(dir, "trafficextension-gateway.yaml", Direction::Client),
            "{dir}"
        );
    }
    for dir in ["attributegen", "trace-tags"] {
        assert!(on(dir, "trafficextension.yaml", Direction::Client), "{dir}");
        assert!(on(dir, "trafficextension.yaml", Direction::Server), "{dir}");
    }
}

/// The EnvoyFilters for Istio before 1.25 (`fail_open`; with trace tags:
/// before 1.29, `request_header` custom tags), spliced as written: nothing
/// to edit by hand.
#[test]
fn envoyfilters_before_istio_1_25() {
    envoyfilter_files_case(
        &[
            ("attributegen", "envoyfilter-pre-1.25.yaml"),
            ("trace-tags", "envoyfilter-pre-1.29.yaml"),
            ("get-calls", "envoyfilter-pre-1.25.yaml"),
        ],
        false,
        true,
    );
    envoyfilter_files_case(
        &[("telemetry-bundle", "envoyfilter-pre-1.29.yaml")],
        true,
        true,
    );
}
