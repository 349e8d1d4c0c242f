#!/usr/bin/env bash
# Runs every test: formatting and lints, unit tests natively and on
# wasm32-wasip1, then the end-to-end tests through a real Envoy.
# Installs what it needs (wasm target, Envoy, Debian packages) on first use.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

apt_install binaryen prometheus
command -v node >/dev/null || apt_install nodejs
ensure_wasm_target
ensure_envoy
say "Envoy: $ENVOY_BIN ($("$ENVOY_BIN" --version | grep -o '[0-9]*\.[0-9]*\.[0-9]*/[A-Za-z]*' | head -n1))"

# Crates whose logic runs inside Envoy (unit-tested natively and on wasm32).
FILTER_CRATES=(-p filter-common -p attributegen -p trace-tags -p get-calls)

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy (native and wasm32-wasip1)"
cargo clippy --workspace --all-targets -q -- -D warnings
cargo clippy --target wasm32-wasip1 "${FILTER_CRATES[@]}" -q -- -D warnings

say "unit tests (native)"
cargo test "${FILTER_CRATES[@]}"

say "unit tests (wasm32-wasip1, under Node's WASI)"
CARGO_TARGET_WASM32_WASIP1_RUNNER="node --no-warnings $ROOT/scripts/wasi-runner.mjs" \
  cargo test --target wasm32-wasip1 "${FILTER_CRATES[@]}" --lib

"$ROOT/scripts/build.sh"

say "end-to-end tests through Envoy $ENVOY_VERSION"
cargo test -p envoy-harness -- --test-threads "${E2E_THREADS:-2}"
