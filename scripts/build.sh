#!/usr/bin/env bash
# Builds the filter modules: cargo (release, wasm32-wasip1), then wasm-opt -Oz.
# Output: target/filters/<name>.wasm (what the harness, demo and manifests use).
source "$(dirname "$0")/lib.sh"

ensure_wasm_target
command -v wasm-opt >/dev/null || apt_install binaryen

FILTERS=(attributegen trace-tags get-calls bench-reference)  # bench-reference: test-only (scripts/bench)
# Reproducible modules: the same sources and toolchain give byte-identical
# modules (and so the same OCI image digests) in any checkout. The build id
# defaults to the workspace version, not the commit (override:
# TELEMETRY_FILTERS_BUILD="$(git describe --always --dirty)"), and the paths
# rustc embeds (panic locations) of the checkout, the target directory,
# cargo's registry and the toolchain are remapped. Only the wasm target gets
# these flags; native builds are unaffected.
export TELEMETRY_FILTERS_BUILD="${TELEMETRY_FILTERS_BUILD:-$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n1)}"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
target_dir="${CARGO_TARGET_DIR:-$ROOT/target}"
remap=("--remap-path-prefix=$cargo_home=/cargo" "--remap-path-prefix=$(rustc --print sysroot)=/rustc/sysroot")
remap+=("--remap-path-prefix=$ROOT=/build" "--remap-path-prefix=$target_dir=/build/target")  # last match wins
export CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS="${CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS:+$CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS }${remap[*]}"
say "building ${FILTERS[*]} (wasm32-wasip1, release, build $TELEMETRY_FILTERS_BUILD)"
out="$ROOT/target/filters"
mkdir -p "$out/test"

# WASM_FEATURES, callbacks and keep_exports: the callbacks each module keeps.
source "$ROOT/scripts/wasm-exports.sh"

optimize() { # src dst [module name for its callbacks]
  local keep
  keep="$(callbacks "${3:-$(basename "$2" .wasm)}")"
  if [ "$keep" = ALL ]; then
    cp "$1" "$2.tmp"
  else
    # shellcheck disable=SC2086
    keep_exports "$1" "$2.tmp" $keep
  fi
  wasm-opt -Oz --strip-debug --strip-producers "${WASM_FEATURES[@]}" "$2.tmp" -o "$2"
  rm -f "$2.tmp"
}

# Test-only variants with the `fault-injection` feature (a request header can
# trap the VM), for the failure-policy tests. Never shipped.
FAULT_FILTERS=(attributegen)
for f in "${FAULT_FILTERS[@]}"; do
  cargo build -q --manifest-path "$ROOT/Cargo.toml" --release --target wasm32-wasip1 -p "$f" --features fault-injection
  name="${f//-/_}"
  optimize "$target_dir/wasm32-wasip1/release/$name.wasm" "$out/test/$name.wasm"
done

# attributegen enables filter-common's `native-cel` (CEL conditions evaluated
# in the module); the others do not, so each group is built on its own
# (cargo would otherwise unify filter-common's features across them).
cargo build --manifest-path "$ROOT/Cargo.toml" --release --target wasm32-wasip1 -p attributegen
cargo build --manifest-path "$ROOT/Cargo.toml" --release --target wasm32-wasip1 -p trace-tags -p get-calls -p bench-reference
# The one-VM bundle links the filters' crates without their entry points, so
# it is built on its own (cargo would otherwise unify their features).
cargo build --manifest-path "$ROOT/Cargo.toml" --release --target wasm32-wasip1 -p telemetry-bundle
for f in "${FILTERS[@]}" telemetry-bundle; do
  name="${f//-/_}"
  src="$target_dir/wasm32-wasip1/release/$name.wasm"
  optimize "$src" "$out/$name.wasm"
  [ "$name" = bench_reference ] && optimize "$src" "$out/bench_reference_min.wasm"
  printf '  %-22s %8d bytes (cargo: %d)\n' "$name.wasm" "$(stat -c %s "$out/$name.wasm")" "$(stat -c %s "$src")" >&2
done

# The same filters as one Envoy dynamic module (a native shared object for
# this machine's architecture; glibc-linked), chosen by `filter_name`.
native_target="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --manifest-path "$ROOT/Cargo.toml" --profile release-native --target "$native_target" -p dynamic-module
cp "$target_dir/$native_target/release-native/libtelemetry_filters.so" "$out/libtelemetry_filters.so"
printf '  %-22s %8d bytes (%s)\n' libtelemetry_filters.so "$(stat -c %s "$out/libtelemetry_filters.so")" "$native_target" >&2
