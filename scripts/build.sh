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

WASM_FEATURES=(--enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int --enable-mutable-globals)

# The proxy-wasm SDK exports every callback of the ABI, and Envoy calls each
# one a module exports (one call into V8 apiece: ≈ 0.2–0.5 µs per request,
# scripts/bench/PROFILE.md) and skips those it does not. So each module keeps
# only the callbacks its jobs act in; the SDK's dispatch code for the others
# goes with them. proxy_on_done is dropped everywhere (the SDK answers
# "done" at once; Envoy takes a missing export as done), and so are the
# body, trailer, metadata, network, timer-less and HTTP/gRPC-call callbacks.
# A job that starts acting in another phase must add that callback here
# (the end-to-end suites fail otherwise).
ROOT_EXPORTS=(memory _initialize _start proxy_abi_version_0_2_1 proxy_on_memory_allocate
  proxy_on_context_create proxy_on_vm_start proxy_on_configure proxy_on_tick proxy_on_delete)
callbacks() { # module name -> the per-request callbacks it keeps
  case "$1" in
    attributegen|get_calls) echo proxy_on_request_headers proxy_on_log ;;
    trace_tags) echo proxy_on_request_headers proxy_on_response_headers ;;
    telemetry_bundle) echo proxy_on_request_headers proxy_on_response_headers proxy_on_log ;;
    bench_reference_min) ;;  # test-only: V8's cost per callback (scripts/bench)
    *) echo ALL ;;           # bench_reference: the benchmark's yardstick, unchanged
  esac
}

# Drops the exports a module does not keep (wasm-metadce: exports that are
# not roots are removed with the code only they reach).
keep_exports() { # src dst keep...
  local src="$1" dst="$2"
  shift 2
  local keep=" ${ROOT_EXPORTS[*]} $* " graph="$dst.graph.json" sep="" e
  {
    echo "["
    for e in $(wasm-dis "$src" | sed -n 's/^ *(export "\([^"]*\)".*/\1/p'); do
      if [[ "$keep" == *" $e "* ]]; then
        printf '%s{"name": "export:%s", "export": "%s", "root": true}\n' "$sep" "$e" "$e"
      else
        printf '%s{"name": "export:%s", "export": "%s"}\n' "$sep" "$e" "$e"
      fi
      sep=","
    done
    echo "]"
  } >"$graph"
  wasm-metadce "${WASM_FEATURES[@]}" --graph-file "$graph" "$src" -o "$dst" >/dev/null
  rm -f "$graph"
}

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
