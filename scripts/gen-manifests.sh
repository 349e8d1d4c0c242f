#!/usr/bin/env bash
# Generates the Istio manifests in envoyfilter-manifests/ from each filter's
# schema and example (filters/<filter>/schema/) and the modules built by
# scripts/build.sh (digests). --check: write nothing, exit 1 naming every
# committed manifest that differs from what would be generated (CI).
#   scripts/gen-manifests.sh            regenerate (after scripts/build.sh)
#   scripts/gen-manifests.sh --check    fail when out of date
source "$(dirname "$0")/lib.sh"
[ -f "$ROOT/target/filters/attributegen.wasm" ] || "$ROOT/scripts/build.sh"
cargo run -q --manifest-path "$ROOT/Cargo.toml" -p manifest-gen -- --root "$ROOT" "$@"
