#!/usr/bin/env bash
# Instruction counts of the filters' own code per request: the bundle's jobs
# built natively (crate scripts/profile-native, release settings plus line
# tables) and driven by an in-memory host over the benchmark's request, under
# callgrind. Deterministic, so it can be compared across changes on a busy
# machine where CPU µs cannot.
#   scripts/profile-native.sh                      # every configuration
#   scripts/profile-native.sh bundle get-calls     # some
#   REQUESTS=20000 scripts/profile-native.sh       # requests per run (default 10000)
# Prints the host calls one request makes, instructions per request and the
# functions with the most inclusive instructions; the callgrind files stay in
# target/profile-native/ for callgrind_annotate.
source "$(dirname "$0")/lib.sh"

apt_install valgrind
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(empty ag-templates ag-cel-bookinfo trace-tags get-calls bundle)
requests="${REQUESTS:-10000}"
cargo build -q --manifest-path "$ROOT/Cargo.toml" --profile profiling -p filter-profile
bin="${CARGO_TARGET_DIR:-$ROOT/target}/profiling/filter-profile"
out="$ROOT/target/profile-native"
mkdir -p "$out"
for c in "${configs[@]}"; do
  "$bin" "$c" 1 | sed '$d'
  valgrind --tool=callgrind --callgrind-out-file="$out/$c.callgrind" \
    --collect-atstart=no --toggle-collect='*profile_requests*' \
    "$bin" "$c" "$requests" >/dev/null 2>"$out/$c.log"
  total="$(sed -n 's/^summary: //p;s/^totals: //p' "$out/$c.callgrind" | head -n1)"
  # malloc calls: callgrind's `calls=` lines under a `cfn=` naming malloc
  # (names are compressed: `(id) name` the first time, `(id)` after)
  mallocs="$(awk '/^c?fn=\(/ {
      id = $0; sub(/^c?fn=/, "", id); name = id; sub(/\).*/, ")", id)
      sub(/^\([0-9]+\) ?/, "", name); if (name != "") names[id] = name
      if ($0 ~ /^cfn=/) callee = names[id]; next }
    /^calls=/ { if (callee == "malloc") { split($0, a, /[= ]/); m += a[2] } callee = "" }
    END { print m + 0 }' "$out/$c.callgrind")"
  awk -v t="$total" -v n="$requests" -v c="$c" -v m="$mallocs" \
    'BEGIN { printf "%s: %.0f instructions per request, %.1f malloc per request (%d requests)\n", c, t / n, m / n, n }'
  callgrind_annotate --inclusive=yes "$out/$c.callgrind" 2>/dev/null \
    | awk -v n="$requests" '/^-+$/ { sep++; next } sep >= 3 && $1 ~ /^[0-9,]+/ {
        v = $1; gsub(",", "", v); sub(/^[0-9,]+ +\([ 0-9.%]+\) +/, "");
        if (shown++ < 25) printf "  %8.0f  %s\n", v / n, $0 }'
done
