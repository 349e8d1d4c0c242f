#!/usr/bin/env bash
# Builds the filter modules: cargo (release, wasm32-wasip1), then wasm-opt -Oz.
# Output: target/filters/<name>.wasm (what the harness, demo and manifests use).
source "$(dirname "$0")/lib.sh"

ensure_wasm_target
command -v wasm-opt >/dev/null || apt_install binaryen

FILTERS=(attributegen trace-tags get-calls)
export TELEMETRY_FILTERS_BUILD="${TELEMETRY_FILTERS_BUILD:-$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo dev)}"
say "building ${FILTERS[*]} (wasm32-wasip1, release, build $TELEMETRY_FILTERS_BUILD)"
args=()
for f in "${FILTERS[@]}"; do args+=(-p "$f"); done
cargo build --manifest-path "$ROOT/Cargo.toml" --release --target wasm32-wasip1 "${args[@]}"

out="$ROOT/target/filters"
mkdir -p "$out"
for f in "${FILTERS[@]}"; do
  name="${f//-/_}"
  src="$ROOT/target/wasm32-wasip1/release/$name.wasm"
  wasm-opt -Oz --strip-debug --strip-producers \
    --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int --enable-mutable-globals \
    "$src" -o "$out/$name.wasm"
  printf '  %-22s %8d bytes (cargo: %d)\n' "$name.wasm" "$(stat -c %s "$out/$name.wasm")" "$(stat -c %s "$src")" >&2
done
