#!/usr/bin/env bash
# Runs every test: formatting and lints, unit tests natively and on
# wasm32-wasip1, the generated Istio manifests against the modules, the OCI
# images through a real registry, the end-to-end tests through a real Envoy
# (separate filters, the one-VM bundle, the dynamic module; then the older
# Envoys), fuzzing (in the background beside the older Envoys and the
# docker-compose stack), and the docker-compose stack.
# Installs what it needs (wasm target, Envoy, Debian packages) on first use.
#   SKIP_COMPOSE=1  leave out the docker-compose stage
#   SKIP_FUZZ=1     leave out the fuzzing stage
#   SKIP_MATRIX=1   leave out the older Envoys (scripts/test-matrix.sh)
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
started=$(date +%s)
stage() { say "$* (at $(( $(date +%s) - started )) s)"; }

# Every Debian package the stages need, in one apt-get run (each script
# still installs what it needs when run alone).
pkgs=(binaryen prometheus docker-registry skopeo curl)
command -v node >/dev/null || pkgs+=(nodejs)
apt_install "${pkgs[@]}"
ensure_wasm_target
ensure_envoy
say "Envoy: $ENVOY_BIN ($("$ENVOY_BIN" --version | grep -o '[0-9]*\.[0-9]*\.[0-9]*/[A-Za-z]*' | head -n1))"

# Crates whose logic runs inside Envoy (unit-tested natively and on wasm32).
# The bundle links the filters without their entry points, so cargo must
# build it on its own (features would otherwise be unified).
FILTER_CRATES=(-p filter-common -p attributegen -p trace-tags -p get-calls -p bench-reference)
BUNDLE=(-p telemetry-bundle)

stage "cargo fmt --check"
cargo fmt --all -- --check

stage "cargo clippy (native and wasm32-wasip1)"
cargo clippy --workspace --all-targets -q -- -D warnings
cargo clippy --target wasm32-wasip1 "${FILTER_CRATES[@]}" -q -- -D warnings
cargo clippy --target wasm32-wasip1 "${BUNDLE[@]}" -q -- -D warnings
cargo clippy --target wasm32-wasip1 -p get-calls -p trace-tags -q -- -D warnings  # filter-common without native-cel
cargo clippy --target wasm32-wasip1 -p attributegen --features fault-injection -q -- -D warnings

stage "unit tests (native)"
cargo test --workspace --exclude envoy-harness

stage "unit tests (wasm32-wasip1, under Node's WASI)"
export CARGO_TARGET_WASM32_WASIP1_RUNNER="node --no-warnings $ROOT/scripts/wasi-runner.mjs"
cargo test --target wasm32-wasip1 "${FILTER_CRATES[@]}" --lib
cargo test --target wasm32-wasip1 "${BUNDLE[@]}" --lib
unset CARGO_TARGET_WASM32_WASIP1_RUNNER

stage "build the modules"
"$ROOT/scripts/build.sh"

stage "generated Istio manifests up to date (digests of these modules)"
"$ROOT/scripts/gen-manifests.sh" --check

stage "OCI images through a real registry (docker-registry, skopeo)"
"$ROOT/scripts/test-oci.sh"

rm -rf "$ROOT/target/test-reports"
# The gRPC collector the access-log/metrics-service tests start (built once here).
cargo build -q -p grpc-collector
export GRPC_COLLECTOR_BIN="$ROOT/target/debug/grpc-collector"
stage "end-to-end tests through Envoy $ENVOY_VERSION (separate filters)"
cargo test -p envoy-harness -- --test-threads "${E2E_THREADS:-2}"

stage "end-to-end tests through Envoy $ENVOY_VERSION (the one-VM bundle)"
TELEMETRY_BUNDLE=1 cargo test -p envoy-harness \
  --test attributegen --test get_calls --test trace_tags --test hostile --test spoofing --test grpc_sinks --test http2_grpc \
  --test config_update \
  -- --test-threads "${E2E_THREADS:-2}"

stage "end-to-end tests through Envoy $ENVOY_VERSION (the dynamic module libtelemetry_filters.so)"
DYNAMIC_MODULE=1 cargo test -p envoy-harness \
  --test attributegen --test get_calls --test trace_tags --test hostile --test spoofing \
  --test config_update --test soak --test grpc_sinks --test http2_grpc \
  -- --test-threads "${E2E_THREADS:-2}"

# The fuzzing pass (its own workspace and target directory, one core while
# it fuzzes) runs beside the older Envoys' matrix and the compose stack,
# which mostly wait on Envoy and Docker; its output is shown when it ends.
fuzz_pid=
if [ "${SKIP_FUZZ:-}" != 1 ] && [ -x "$ROOT/scripts/fuzz.sh" ]; then
  stage "fuzzing (short pass) started in the background (target/fuzz.log)"
  mkdir -p "$ROOT/target"
  # its own process group, so a failing stage stops all of it
  setsid "$ROOT/scripts/fuzz.sh" > "$ROOT/target/fuzz.log" 2>&1 &
  fuzz_pid=$!
  trap '[ -n "$fuzz_pid" ] && kill -- "-$fuzz_pid" 2>/dev/null; true' EXIT
fi

if [ "${SKIP_MATRIX:-}" != 1 ]; then
  stage "end-to-end matrix: attributegen, get_calls, trace_tags through the older Envoys (separate and bundle)"
  "$ROOT/scripts/test-matrix.sh"
fi

if [ "${SKIP_COMPOSE:-}" != 1 ] && [ -x "$ROOT/scripts/test-compose.sh" ]; then
  stage "docker-compose stack"
  "$ROOT/scripts/test-compose.sh"
fi

if [ -n "$fuzz_pid" ]; then
  stage "fuzzing (short pass): waiting for it"
  if wait "$fuzz_pid"; then
    fuzz_pid=
    cat "$ROOT/target/fuzz.log"
  else
    fuzz_pid=
    cat "$ROOT/target/fuzz.log"
    say "fuzzing failed (above)"
    exit 1
  fi
fi

if compgen -G "$ROOT/target/test-reports/*.txt" >/dev/null; then
  say "figures reported by the tests"
  cat "$ROOT"/target/test-reports/*.txt
fi
stage "all tests passed"
