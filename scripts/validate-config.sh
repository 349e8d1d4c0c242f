#!/usr/bin/env bash
# Validates a filter configuration before it is deployed: runs it through a
# real Envoy with the filter loaded and prints every error with its position.
#   scripts/validate-config.sh [--filter attributegen|get_calls|trace_tags] config.json
# Exit code: 0 valid, 1 invalid, 2 usage or start-up problem. Default filter: attributegen.
source "$(dirname "$0")/lib.sh"
filter=attributegen
if [ "${1:-}" = "--filter" ]; then filter="$2"; shift 2; fi
[ $# -eq 1 ] || { echo "usage: $0 [--filter NAME] CONFIG.json" >&2; exit 2; }
config="$1"
[ "$config" = "-" ] || config="$(cd "$(dirname "$config")" && pwd)/$(basename "$config")"
ensure_envoy
[ -f "$ROOT/target/filters/${filter//-/_}.wasm" ] || "$ROOT/scripts/build.sh" >&2
exec cargo run -q --manifest-path "$ROOT/Cargo.toml" -p envoy-harness --bin validate-config -- --filter "$filter" "$config"
