#!/usr/bin/env bash
# Builds the filter modules: cargo (release, wasm32-wasip1), then wasm-opt -Oz.
# Output: target/filters/<name>.wasm (what the harness, demo and manifests use).
source "$(dirname "$0")/lib.sh"

ensure_wasm_target
command -v wasm-opt >/dev/null || apt_install binaryen

FILTERS=(attributegen trace-tags get-calls bench-reference)  # bench-reference: test-only (scripts/bench)
export TELEMETRY_FILTERS_BUILD="${TELEMETRY_FILTERS_BUILD:-$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo dev)}"
say "building ${FILTERS[*]} (wasm32-wasip1, release, build $TELEMETRY_FILTERS_BUILD)"
out="$ROOT/target/filters"
mkdir -p "$out/test"

optimize() { # src dst
  wasm-opt -Oz --strip-debug --strip-producers \
    --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int --enable-mutable-globals \
    "$1" -o "$2"
}

# Test-only variants with the `fault-injection` feature (a request header can
# trap the VM), for the failure-policy tests. Never shipped.
FAULT_FILTERS=(attributegen)
for f in "${FAULT_FILTERS[@]}"; do
  cargo build -q --manifest-path "$ROOT/Cargo.toml" --release --target wasm32-wasip1 -p "$f" --features fault-injection
  name="${f//-/_}"
  optimize "$ROOT/target/wasm32-wasip1/release/$name.wasm" "$out/test/$name.wasm"
done

args=()
for f in "${FILTERS[@]}"; do args+=(-p "$f"); done
cargo build --manifest-path "$ROOT/Cargo.toml" --release --target wasm32-wasip1 "${args[@]}"
# The one-VM bundle links the filters' crates without their entry points, so
# it is built on its own (cargo would otherwise unify their features).
cargo build --manifest-path "$ROOT/Cargo.toml" --release --target wasm32-wasip1 -p telemetry-bundle
for f in "${FILTERS[@]}" telemetry-bundle; do
  name="${f//-/_}"
  src="$ROOT/target/wasm32-wasip1/release/$name.wasm"
  optimize "$src" "$out/$name.wasm"
  printf '  %-22s %8d bytes (cargo: %d)\n' "$name.wasm" "$(stat -c %s "$out/$name.wasm")" "$(stat -c %s "$src")" >&2
done
