#!/usr/bin/env bash
# The shipped Wasm modules' own time per request in V8, the engine Envoy runs
# them in, without Envoy: node drives a module over the benchmark's request
# as Envoy drives a stream (scripts/profile-v8.mjs, a host answering as
# Envoy does), and prints ns per request (median of 5 runs) and, from
# `node --cpu-prof`, the shares of the module's code, the host's answers and
# V8's calls into the host. Envoy's side of each call is not in it: that is
# what scripts/bench.sh adds.
#   scripts/profile-v8.sh                               # bundle, ag-templates
#   scripts/profile-v8.sh --before DIR bundle           # also DIR's modules, interleaved
#   REQUESTS=500000 scripts/profile-v8.sh get-calls     # requests per run (default 300000)
# Configurations: scripts/profile-native's (`filter-profile --wasm <id>`).
# Modules: target/filters (scripts/build.sh). For function names, profile a
# module built with its name section (scripts/module-sizes.sh keeps it).
source "$(dirname "$0")/lib.sh"

command -v node >/dev/null || { echo "profile-v8: node is needed" >&2; exit 2; }
before=""
if [ "${1:-}" = --before ]; then before="$2"; shift 2; fi
ids=("$@")
[ ${#ids[@]} -gt 0 ] || ids=(bundle ag-templates)
cargo build -q --manifest-path "$ROOT/Cargo.toml" --profile profiling -p filter-profile
bin="${CARGO_TARGET_DIR:-$ROOT/target}/profiling/filter-profile"
dirs=("$ROOT/target/filters")
[ -z "$before" ] || dirs+=("$before")
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for id in "${ids[@]}"; do
  IFS=$'\t' read -r module config < <("$bin" --wasm "$id")
  for run in 1 2 3 4 5; do
    for d in "${dirs[@]}"; do
      tag="$(echo "$d" | tr / _)"
      node "$ROOT/scripts/profile-v8.mjs" "$d/$module.wasm" "$config" "${REQUESTS:-300000}" \
        | sed -n 's/.*: \([0-9]*\) ns per request.*/\1/p' >>"$work/$id.$tag"
    done
  done
  for d in "${dirs[@]}"; do
    tag="$(echo "$d" | tr / _)"
    printf '%-16s %-44s %6s ns per request (runs: %s)\n' "$id" "$d/$module.wasm" \
      "$(sort -n "$work/$id.$tag" | sed -n 3p)" "$(tr '\n' ' ' <"$work/$id.$tag")"
  done
  # where the time goes: one sampled run of the built module
  (cd "$work" && node --cpu-prof --cpu-prof-interval 20 --cpu-prof-dir "$work/prof.$id" \
    "$ROOT/scripts/profile-v8.mjs" "$ROOT/target/filters/$module.wasm" "$config" "${REQUESTS:-300000}" >/dev/null)
  python3 - "$work/prof.$id" <<'PY'
import collections, glob, json, sys
profile = json.load(open(glob.glob(sys.argv[1] + "/*.cpuprofile")[0]))
nodes = {n["id"]: n["callFrame"] for n in profile["nodes"]}
shares = collections.Counter()
for sample in profile["samples"]:
    frame = nodes[sample]
    name, url = frame["functionName"], frame["url"]
    if name.startswith("wasm-to-js"):
        kind = "V8's calls from the module into the host"
    elif url.startswith("wasm://"):
        kind = "the module's code (Wasm)"
    elif url.endswith(".mjs"):
        kind = "the harness's host answers (JS; Envoy's side in production)"
    elif name == "(garbage collector)":
        kind = "node's garbage collector (the harness)"
    else:
        kind = "V8 and node built-ins"
    shares[kind] += 1
total = sum(shares.values())
for kind, n in shares.most_common():
    print(f"  {100 * n / total:5.1f}%  {kind}")
PY
done
