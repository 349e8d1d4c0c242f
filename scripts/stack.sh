#!/usr/bin/env bash
# The observability stack of test-env/docker-compose.yaml WITHOUT Docker, as
# local processes on loopback: Envoy with the three filters, the bookstore
# upstream, the span collector (in place of Jaeger) and Prometheus; then
# traffic, then where to look. Grafana is not started (no local binary).
#
#   scripts/stack.sh [up] [--rounds N]   start (or fail if already up), send N rounds (default 30)
#   scripts/stack.sh traffic [--rounds N] more traffic to a running stack
#   scripts/stack.sh status              the running stack's processes and URLs
#   scripts/stack.sh down                stop every process by the PID it recorded
#
# Ports: STACK_LISTEN_PORT (10000), STACK_ADMIN_PORT (9901),
# STACK_PROMETHEUS_PORT (9090), STACK_COLLECTOR_PORT (4318),
# STACK_BOOKSTORE_PORT (8080), STACK_GRPC_COLLECTOR_PORT (18000); STACK_PORTS=free
# picks free ports instead. grpc-collector writes Envoy's gRPC access logs
# and metrics to STACK_DIR/grpc-collector/{access-logs,metrics}.jsonl.
# State (PIDs, logs, generated configs, the traffic tally): STACK_DIR,
# default target/stack. Builds the filters and the stack's programs first
# (STACK_SKIP_BUILD=1 skips that).
source "$(dirname "$0")/lib.sh"

STATE="${STACK_DIR:-$ROOT/target/stack}"
COMPOSE="$ROOT/test-env/compose"
SERVICES=(bookstore collector grpc-collector envoy prometheus)

cmd="${1:-up}"
[ $# -gt 0 ] && shift
ROUNDS=30
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    *) echo "usage: scripts/stack.sh [up|traffic|status|down] [--rounds N]" >&2; exit 2 ;;
  esac
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# PID of a recorded service if that process is still ours, else nothing.
live_pid() {
  local f="$STATE/$1.pid" pid
  [ -f "$f" ] || return 0
  pid="$(cat "$f")"
  if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$(cat "$STATE/$1.cmd" 2>/dev/null || echo "$1")"; then
    echo "$pid"
  fi
}

# Whether a PID is a live process (an exited one not yet reaped is a zombie: done).
running() {
  local st
  st="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)"
  [ -n "$st" ] && [ "$st" != Z ]
}

stop_all() {
  local any=0
  for s in envoy prometheus collector grpc-collector bookstore traffic; do
    local pid
    pid="$(live_pid "$s")"
    if [ -n "$pid" ]; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do running "$pid" || break; sleep 0.1; done
      if running "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
      echo "stopped $s (pid $pid)" >&2
      any=1
    fi
    rm -f "$STATE/$s.pid"
  done
  [ "$any" = 1 ] || echo "no stack processes running (state: $STATE)" >&2
}

# Starts "$@" detached as service $1's process; records its PID.
start() {
  local name="$1"; shift
  # The binary's path identifies the process again at `down`.
  printf '%s' "$1" >"$STATE/$name.cmd"
  setsid "$@" </dev/null >"$STATE/$name.log" 2>&1 &
  echo $! >"$STATE/$name.pid"
}

wait_until() { # name what seconds command...: polls the command until it succeeds
  local name="$1" what="$2" secs="$3"
  shift 3
  for _ in $(seq $((secs * 10))); do
    if "$@" 2>/dev/null; then return 0; fi
    if [ -z "$(live_pid "$name")" ]; then
      echo "$name exited during start-up; its log ($STATE/$name.log):" >&2
      tail -n 40 "$STATE/$name.log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "$name not $what after ${secs}s; its log:" >&2
  tail -n 40 "$STATE/$name.log" >&2
  return 1
}

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1"); }

wait_http() { # name url [seconds]
  wait_until "$1" "ready at $2" "${3:-30}" curl -fsS -o /dev/null "$2"
}

wait_tcp() { # name port: a plain-TCP (here gRPC) listener accepts connections
  wait_until "$1" "listening on :$2" 30 tcp_open "$2"
}

load_ports() { # shellcheck disable=SC1091
  source "$STATE/ports.env"
}

run_traffic() {
  load_ports
  say "traffic: $ROUNDS rounds through Envoy (http://127.0.0.1:$LISTEN)"
  "$ROOT/target/debug/traffic" --target "http://127.0.0.1:$LISTEN" --rounds "$ROUNDS" \
    --duration 120 --concurrency 2 --tally "$STATE/tally.json"
}

show() {
  load_ports
  cat <<EOT

The stack is up (local processes; state, logs and PIDs in $STATE):
  Envoy listener     http://127.0.0.1:$LISTEN/books
  Envoy admin        http://127.0.0.1:$ADMIN/stats/prometheus   (istio_get_calls, stack_requests_total, ...)
  Envoy access log   $STATE/access.log   (JSON; "operation" = attributegen's istio_operationId)
  Prometheus         http://127.0.0.1:$PROM/graph
  gRPC collector     $STATE/grpc-collector/access-logs.jsonl  metrics.jsonl   (Envoy's AccessLogService/MetricsService, :$GRPC)
  spans (collector)  http://127.0.0.1:$COLL/api/summary   http://127.0.0.1:$COLL/api/spans?tag=request_operation=GetBook&limit=5
  bookstore          http://127.0.0.1:$BOOK/books (direct, not through Envoy)

Try:
  curl -s 'http://127.0.0.1:$PROM/api/v1/query?query=sum%20by%20(request_operation,response_code)(istio_get_calls)'
  tail -n 3 $STATE/access.log
  scripts/stack.sh traffic --rounds 100    # more traffic
  scripts/stack.sh down                    # stop everything
EOT
}

case "$cmd" in
  down) stop_all; exit 0 ;;
  status)
    [ -f "$STATE/ports.env" ] || { echo "no stack state in $STATE" >&2; exit 1; }
    for s in "${SERVICES[@]}"; do printf '%-11s %s\n' "$s" "$(live_pid "$s" || true)"; done
    show; exit 0 ;;
  traffic) run_traffic; exit 0 ;;
  up) ;;
  *) echo "usage: scripts/stack.sh [up|traffic|status|down] [--rounds N]" >&2; exit 2 ;;
esac

mkdir -p "$STATE"
for s in "${SERVICES[@]}"; do
  if [ -n "$(live_pid "$s")" ]; then
    echo "the stack is already running ($s, pid $(live_pid "$s")); scripts/stack.sh down first" >&2
    exit 1
  fi
done

command -v curl >/dev/null || apt_install curl
command -v prometheus >/dev/null || apt_install prometheus
ensure_envoy
if [ "${STACK_SKIP_BUILD:-}" != 1 ]; then  # set by scripts/test-compose.sh, which has just built
  "$ROOT/scripts/build.sh"
  say "building the stack's programs (bookstore, traffic, collector, stack-check)"
  cargo build -q --manifest-path "$ROOT/Cargo.toml" -p telemetry-stack --bins
  cargo build -q --manifest-path "$ROOT/Cargo.toml" -p grpc-collector
fi

if [ "${STACK_PORTS:-}" = free ]; then
  LISTEN=$(free_port) ADMIN=$(free_port) PROM=$(free_port) COLL=$(free_port) BOOK=$(free_port) GRPC=$(free_port)
else
  LISTEN=${STACK_LISTEN_PORT:-10000} ADMIN=${STACK_ADMIN_PORT:-9901} PROM=${STACK_PROMETHEUS_PORT:-9090}
  COLL=${STACK_COLLECTOR_PORT:-4318} BOOK=${STACK_BOOKSTORE_PORT:-8080}
  GRPC=${STACK_GRPC_COLLECTOR_PORT:-18000}
fi
printf 'LISTEN=%s\nADMIN=%s\nPROM=%s\nCOLL=%s\nBOOK=%s\nGRPC=%s\n' "$LISTEN" "$ADMIN" "$PROM" "$COLL" "$BOOK" "$GRPC" >"$STATE/ports.env"
rm -rf "$STATE/access.log" "$STATE/tally.json" "$STATE/grpc-collector"

# The compose stack's configs, rewritten for loopback (the lines marked "# stack.sh").
hostport='{ address: [^,]*, port_value: [0-9]* }'
sed -e "/# stack.sh: admin/s/$hostport/{ address: 127.0.0.1, port_value: $ADMIN }/" \
    -e "/# stack.sh: listener/s/$hostport/{ address: 127.0.0.1, port_value: $LISTEN }/" \
    -e "/# stack.sh: bookstore/s/$hostport/{ address: 127.0.0.1, port_value: $BOOK }/" \
    -e "/# stack.sh: collector\$/s/$hostport/{ address: 127.0.0.1, port_value: $COLL }/" \
    -e "/# stack.sh: collector uri/s|http://[^ ]*|http://127.0.0.1:$COLL/v1/traces|" \
    -e "/# stack.sh: grpc-collector/s/$hostport/{ address: 127.0.0.1, port_value: $GRPC }/" \
    -e "/# stack.sh: access log/s|path: [^ ]*|path: \"$STATE/access.log\"|" \
    -e "/# stack.sh: module/s|/etc/envoy/filters/|$ROOT/target/filters/|" \
    "$COMPOSE/envoy/envoy.yaml" >"$STATE/envoy.yaml"
sed -e "/# stack.sh: envoy admin/s/'[^']*'/'127.0.0.1:$ADMIN'/" \
    "$COMPOSE/prometheus/prometheus.yml" >"$STATE/prometheus.yml"
if grep -nE 'address: (bookstore|jaeger|grpc-collector|0\.0\.0\.0)|//jaeger|/etc/envoy|/dev/stdout' "$STATE/envoy.yaml" \
   || grep -n "envoy:9901" "$STATE/prometheus.yml"; then
  echo "stack.sh: a line of the compose configs was not rewritten for local processes (above)" >&2
  exit 1
fi

say "starting bookstore :$BOOK, collector :$COLL, grpc-collector :$GRPC, Envoy :$LISTEN (admin :$ADMIN), Prometheus :$PROM"
trap 'echo "start-up failed; stopping what started" >&2; stop_all' ERR
start bookstore "$ROOT/target/debug/bookstore" --listen "127.0.0.1:$BOOK"
start collector "$ROOT/target/debug/collector" --listen "127.0.0.1:$COLL" --quiet
start grpc-collector "$ROOT/target/debug/grpc-collector" --listen "127.0.0.1:$GRPC" --out "$STATE/grpc-collector" \
  --metric-prefix wasmcustom.,access_logs.
start envoy "$ENVOY_BIN" -c "$STATE/envoy.yaml" --concurrency 2 --disable-hot-restart --file-flush-interval-msec 200 \
  --log-level warn --component-log-level wasm:info
start prometheus "$(command -v prometheus)" --config.file="$STATE/prometheus.yml" \
  --storage.tsdb.path="$STATE/prometheus-data" --web.listen-address="127.0.0.1:$PROM" --log.level=warn
wait_http bookstore "http://127.0.0.1:$BOOK/healthz"
wait_http collector "http://127.0.0.1:$COLL/healthz"
wait_tcp grpc-collector "$GRPC"
wait_http envoy "http://127.0.0.1:$ADMIN/ready"
wait_http prometheus "http://127.0.0.1:$PROM/-/ready" 60
trap - ERR

run_traffic
show
