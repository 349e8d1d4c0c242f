#!/usr/bin/env bash
# Runs the attributegen, get_calls and trace_tags end-to-end suites through
# each older Envoy with V8 (separate filters and the one-VM bundle), several
# runs at once: the suites mostly wait on Envoy. Each run's output is in
# target/test-reports/matrix/<version>-<mode>.log; tests that need a newer
# Envoy are listed in target/test-reports/skipped-by-version.txt.
#   MATRIX_VERSIONS="1.36.4 1.37.0"  the versions (default: every one but 1.40.0)
#   MATRIX_JOBS=2                    runs at once (default 2)
#   E2E_THREADS=2                    test threads per run (default 2)
# Needs the modules built (scripts/build.sh).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

read -r -a versions <<<"${MATRIX_VERSIONS:-${ENVOY_VERSIONS[*]/$ENVOY_DEFAULT_VERSION/}}"
jobs="${MATRIX_JOBS:-2}"
suites=(attributegen get_calls trace_tags)
out="$ROOT/target/test-reports/matrix"
rm -rf "$out"
mkdir -p "$out"

# Install every version first (sequentially: pip and the cache stay sane).
declare -A bin
for v in "${versions[@]}"; do bin[$v]="$(envoy_bin_for "$v")"; done

# Build the suites once; the runs then call the test binaries directly.
say "building the ${suites[*]} suites"
mapfile -t exes < <(cargo test -q -p envoy-harness "${suites[@]/#/--test=}" --no-run --message-format=json \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["kind"]==["test"]:
        print(m["executable"])')
[ ${#exes[@]} -eq ${#suites[@]} ] || { say "expected ${#suites[@]} test binaries, got ${#exes[@]}"; exit 1; }

# One run: every suite through one Envoy version in one mode.
run_one() {
  local v="$1" mode="$2" log="$out/$1-$2.log" rc=0
  local -a env=(ENVOY_BIN="${bin[$v]}" ENVOY_VERSION="$v")
  [ "$mode" = bundle ] && env+=(TELEMETRY_BUNDLE=1)
  for exe in "${exes[@]}"; do
    env "${env[@]}" "$exe" --test-threads "${E2E_THREADS:-2}" >>"$log" 2>&1 || rc=1
  done
  echo "$rc" >"$log.rc"
}

started=$(date +%s)
running=0
for v in "${versions[@]}"; do
  for mode in separate bundle; do
    run_one "$v" "$mode" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
  done
done
wait

failed=0
for v in "${versions[@]}"; do
  for mode in separate bundle; do
    log="$out/$v-$mode.log"
    totals=$(grep -o '^test result: [a-zA-Z]*\. [0-9]* passed; [0-9]* failed; [0-9]* ignored' "$log" \
      | awk '{p+=$4; f+=$6} END {printf "%d passed, %d failed", p, f}')
    skipped=$(grep -c "^SKIPPED .*running $v\$" "$log" || true)
    # cargo counts a test skipped by version as passed: told apart here.
    printf 'Envoy %-7s %-8s %s\n' "$v" "$mode" \
      "$(awk -v s="$skipped" '{printf "%d passed, %d failed, %d skipped", $1 - s, $3, s}' <<<"$totals")" \
      | tee -a "$out/summary.txt"
    if [ "$(cat "$log.rc")" != 0 ]; then
      failed=1
      say "failures on Envoy $v ($mode):"
      grep -E '^(test .* FAILED|---- |thread .* panicked)' "$log" | head -n 40 >&2 || true
    fi
  done
done
say "matrix: $(( $(date +%s) - started )) s for ${#versions[@]} versions"
cp "$out/summary.txt" "$ROOT/target/test-reports/matrix-summary.txt"
exit "$failed"
