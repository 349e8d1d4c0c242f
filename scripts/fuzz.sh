#!/usr/bin/env bash
# Coverage-guided fuzzing of the filters' host-agnostic logic (config
# parsers, CEL-result decoders, label sanitiser and encoder, route-template
# compiler): cargo fuzz + libFuzzer on the stable toolchain (no sanitizer; Rust
# code is memory-safe, the targets check panics and invariants).
#
#   scripts/fuzz.sh [TARGET...]     every target (default) or the ones named
#
#   FUZZ_SECONDS=25   time per target (CI pass: 6 targets x 25 s = 2.5 min;
#                     a longer run, e.g. FUZZ_SECONDS=600)
#   FUZZ_MERGE=1      afterwards, add the inputs that found new coverage to
#                     the committed seed corpus (test-env/fuzz/corpus/<target>)
#
# Installs cargo-fuzz from crates.io on first use. Targets and seed corpus:
# test-env/fuzz (its README). Prints the executions run per target; exits
# non-zero when a target crashed, timed out or ran out of memory, with the
# input saved under test-env/fuzz/artifacts/<target>/.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

CARGO_FUZZ_VERSION="0.13.2"
FUZZ_DIR="test-env/fuzz"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-25}"

if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
  say "installing cargo-fuzz $CARGO_FUZZ_VERSION (crates.io)"
  cargo install --locked --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list --fuzz-dir "$FUZZ_DIR")
fi

say "cargo fmt --check and clippy (fuzz crate)"
cargo fmt --manifest-path "$FUZZ_DIR/Cargo.toml" -- --check
cargo clippy --manifest-path "$FUZZ_DIR/Cargo.toml" --all-targets -q -- -D warnings

say "building the fuzz targets"
# --sanitizer none: AddressSanitizer needs nightly, and buys nothing for code
# without unsafe; libFuzzer's coverage instrumentation works on stable.
cargo fuzz build --fuzz-dir "$FUZZ_DIR" --sanitizer none
bin_dir="$FUZZ_DIR/target/$(rustc -vV | sed -n 's/^host: //p')/release"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
total=0
printf '%-22s %12s %10s %8s  %s\n' target executions exec/s "corpus" result >"$work/summary"
for t in "${targets[@]}"; do
  [ -x "$bin_dir/$t" ] || { echo "no fuzz target $t (cargo fuzz list --fuzz-dir $FUZZ_DIR)" >&2; exit 2; }
  say "fuzzing $t for ${SECONDS_PER_TARGET}s"
  mkdir -p "$work/$t" "$FUZZ_DIR/artifacts/$t"
  # New inputs go to the scratch corpus (first directory); the committed
  # seeds are only read.
  rc=0
  "$bin_dir/$t" "$work/$t" "$FUZZ_DIR/corpus/$t" \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$FUZZ_DIR/artifacts/$t/" \
    >"$work/$t.log" 2>&1 || rc=$?
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log" | tail -n1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$t.log" | tail -n1)"
  units="$(find "$work/$t" "$FUZZ_DIR/corpus/$t" -type f | wc -l)"
  if [ "$rc" -eq 0 ]; then
    result="ok"
  else
    result="FAILED (exit $rc)"
    failed+=("$t")
    grep -E -A12 "panicked at|ERROR: libFuzzer|SUMMARY|Test unit written" "$work/$t.log" | head -n 60 >&2
  fi
  total=$(( total + ${runs:-0} ))
  printf '%-22s %12s %10s %8s  %s\n' "$t" "${runs:-?}" "${rate:-?}" "$units" "$result" >>"$work/summary"
  if [ "${FUZZ_MERGE:-0}" = 1 ] && [ "$rc" -eq 0 ]; then
    "$bin_dir/$t" -merge=1 "$FUZZ_DIR/corpus/$t" "$work/$t" >"$work/$t.merge.log" 2>&1
  fi
done
echo
cat "$work/summary"
echo "total executions: $total"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]} (inputs in $FUZZ_DIR/artifacts/)" >&2
  echo "reproduce: cargo fuzz run --fuzz-dir $FUZZ_DIR --sanitizer none TARGET INPUT" >&2
  exit 1
fi
