#!/usr/bin/env bash
# The benchmark, one command: builds the modules, installs wrk and h2load when
# missing, then runs every variant (scripts/bench, crate filter-bench) and
# writes scripts/bench/RESULTS.md.
#   scripts/bench.sh            # full: 5 rounds (about 20 minutes)
#   scripts/bench.sh --quick    # smoke: 1 round, ~1 s per figure, report to stdout only
#   scripts/bench.sh --only ag-templates,bundle --rounds 3   # a subset (the floor always runs)
#   scripts/bench.sh --list     # the variants
#   scripts/bench.sh --instructions --only ag-templates,native-lua,native-all,bundle
#                               # instructions per request under callgrind (load-independent)
# Needs 2 CPUs (Envoy on CPU 0, load on CPU 1).
source "$(dirname "$0")/lib.sh"

apt_install wrk nghttp2-client
case " $* " in
  *" --instructions "*) apt_install valgrind ;;
esac
ensure_envoy
if [ "${BENCH_SKIP_BUILD:-}" != 1 ]; then
  bash "$ROOT/scripts/build.sh"
fi
cargo build -q --release --manifest-path "$ROOT/Cargo.toml" -p filter-bench
# Measure a snapshot of the modules, so a rebuild during the run (others
# working in the tree) cannot swap one under it. FILTERS_WASM_DIR overrides.
if [ -z "${FILTERS_WASM_DIR:-}" ]; then
  export FILTERS_WASM_DIR="$ROOT/target/bench-modules"
  rm -rf "$FILTERS_WASM_DIR"
  mkdir -p "$FILTERS_WASM_DIR"
  cp "$ROOT"/target/filters/*.wasm "$FILTERS_WASM_DIR"/
  cp "$ROOT"/target/filters/*.so "$FILTERS_WASM_DIR"/ 2>/dev/null || true
fi
out=()
case " $* " in
  *" --quick "*|*" --only "*|*" --list "*|*" --out "*) ;;
  *) out=(--out "$ROOT/scripts/bench/RESULTS.md") ;;
esac
# On a shared machine, raise the priority of the benchmark (Envoy, wrk and
# h2load inherit it) so other work preempts it less; skipped when not allowed.
# BENCH_NICE=0 turns it off.
prio=()
if [ "${BENCH_NICE:--10}" != 0 ] && nice -n "${BENCH_NICE:--10}" true 2>/dev/null; then
  prio=(nice -n "${BENCH_NICE:--10}")
fi
exec "${prio[@]}" "$ROOT/target/release/filter-bench" "$@" "${out[@]}"
