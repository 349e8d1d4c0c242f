# The proxy-wasm callbacks each module exports (sourced by build.sh and
# module-sizes.sh; do not run it).
# shellcheck shell=bash

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
  wasm-metadce -g "${WASM_FEATURES[@]}" --graph-file "$graph" "$src" -o "$dst" >/dev/null
  rm -f "$graph"
}
