#!/usr/bin/env bash
# CI stage for the observability stack (test-env/docker-compose.yaml), run
# for real both ways, asserted through the stack's own surfaces
# (Prometheus's HTTP API, the span collector, Envoy's access log, the
# dashboard's queries) by the stack-check program:
#
#   scripts/test-compose.sh           static checks, the Docker stack, the local-process stack
#                                     (twice: the Wasm modules, then the dynamic module)
#   scripts/test-compose.sh docker    static checks and the Docker stack only
#   scripts/test-compose.sh local     static checks and scripts/stack.sh only
#   scripts/test-compose.sh images    only build the stand-in images, print the variables that select them
#
# Docker: no image can be pulled here, so it builds local stand-in images
# FROM scratch with the host's binaries and the libraries they link
# (Envoy from $ENVOY_BIN, Debian's Prometheus, the stack's own
# programs), starts the stack with those images and the project's span
# collector in Jaeger's place (test-env/compose/local-standins.yaml), and
# leaves Grafana out (no stand-in). The public-image variant is checked with
# `compose config` and for pinned tags only. Everything started is removed
# at the end (`down -v`), also on failure.
# Needs: Docker Engine with `docker compose` or `docker-compose` (Debian's
# docker-compose is installed when neither is there), Debian's prometheus
# and curl (installed when missing).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

MODE="${1:-all}"
case "$MODE" in all|docker|local|images) ;; *) echo "usage: scripts/test-compose.sh [all|docker|local|images]" >&2; exit 2 ;; esac
ROUNDS="${STACK_TEST_ROUNDS:-20}"
COMPOSE_FILE_MAIN="test-env/docker-compose.yaml"
COMPOSE_FILE_LOCAL="test-env/compose/local-standins.yaml"
DASHBOARD="test-env/compose/grafana/dashboards/telemetry-filters.json"
WORK="$(mktemp -d -t test-compose.XXXXXX)"
PROJECT="wtfstack$$"
STANDIN_LABEL="org.wasm-telemetry-filters.standin"
T0=$(date +%s)
phase_start=$T0
timing=()
phase() { # records the time of the phase that just ended
  local now; now=$(date +%s)
  timing+=("$(printf '%-34s %4d s' "$1" $((now - phase_start)))")
  phase_start=$now
}

COMPOSE=()
compose_up=0
local_up=0
local_dir="$WORK/local"
cleanup() {
  local rc=$?
  if [ "$compose_up" = 1 ]; then
    if [ "$rc" != 0 ]; then
      say "docker stack failed: containers and their last log lines"
      "${COMPOSE[@]}" -p "$PROJECT" -f "$COMPOSE_FILE_MAIN" -f "$COMPOSE_FILE_LOCAL" ps >&2 || true
      "${COMPOSE[@]}" -p "$PROJECT" -f "$COMPOSE_FILE_MAIN" -f "$COMPOSE_FILE_LOCAL" logs --no-color --tail 30 >&2 || true
    fi
    say "docker stack: down -v"
    "${COMPOSE[@]}" -p "$PROJECT" -f "$COMPOSE_FILE_MAIN" -f "$COMPOSE_FILE_LOCAL" down -v --remove-orphans --timeout 5 >/dev/null 2>&1 || true
  fi
  if [ "$local_up" = 1 ]; then
    if [ "$rc" != 0 ]; then
      for f in "$local_dir"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }; done
    fi
    say "local stack: down"
    STACK_DIR="$local_dir" "$ROOT/scripts/stack.sh" down || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- prerequisites
command -v curl >/dev/null || apt_install curl
command -v prometheus >/dev/null || apt_install prometheus
ensure_envoy
"$ROOT/scripts/build.sh"
say "building the stack's programs"
cargo build -q -p telemetry-stack --bins
cargo build -q -p grpc-collector
BIN="$ROOT/target/debug"
phase "build (filters, stack programs)"

if [ "$MODE" != images ]; then
  say "static checks: dashboard JSON schema, provisioning, compose and Envoy configs (cargo test -p telemetry-stack)"
  cargo test -q -p telemetry-stack
  phase "static checks"
fi

check() { # access-log tally prometheus-url collector-url deployment [grpc-collector-output [stack-check flags...]]
  local grpc=()
  [ -z "${6:-}" ] || grpc=(--grpc-access-log "$6")
  "$BIN/stack-check" --access-log "$1" --tally "$2" --prometheus "$3" --collector "$4" \
    --deployment "$5" --dashboard "$DASHBOARD" --timeout 60 "${grpc[@]}" "${@:7}"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ------------------------------------------------------------------- docker
# Local stand-in images: FROM scratch + a host binary + the libraries it links.
build_standins() {
  say "building local stand-in images (FROM scratch + host binaries + the libraries they link)"
  standin() { # tag src=dest...
    local tag="$1"; shift
    local ctx="$WORK/image-${tag//[:\/]/_}"
    mkdir -p "$ctx/rootfs/tmp" && chmod 1777 "$ctx/rootfs/tmp"
    for pair in "$@"; do
      local src="${pair%%=*}" dst="${pair#*=}"
      install -D -m 0755 "$src" "$ctx/rootfs$dst"
      ldd "$src" | grep -o '/[^ ]*' | while read -r lib; do
        [ -e "$ctx/rootfs$lib" ] || install -D -m 0755 "$lib" "$ctx/rootfs$lib"
      done
    done
    printf 'FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/local/bin:/usr/bin:/bin\nLABEL %s=1\n' "$STANDIN_LABEL" >"$ctx/Dockerfile"
    docker build -q -t "$tag" "$ctx" >"$ctx.log" 2>&1 || { cat "$ctx.log" >&2; return 1; }
    printf '  %-48s %s\n' "$tag" "$(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
  }
  export ENVOY_IMAGE="wasm-telemetry-filters-local/envoy:$ENVOY_VERSION"
  export PROMETHEUS_IMAGE="wasm-telemetry-filters-local/prometheus:debian"
  export STACK_TOOLS_IMAGE="wasm-telemetry-filters-local/stack-tools:dev"
  standin "$ENVOY_IMAGE" "$ENVOY_BIN=/usr/local/bin/envoy"
  standin "$PROMETHEUS_IMAGE" "$(command -v prometheus)=/bin/prometheus"
  standin "$STACK_TOOLS_IMAGE" "$BIN/bookstore=/usr/local/bin/bookstore" \
    "$BIN/traffic=/usr/local/bin/traffic" "$BIN/collector=/usr/local/bin/collector" \
    "$BIN/grpc-collector=/usr/local/bin/grpc-collector"
  # Earlier builds of these tags, now untagged.
  docker image prune -f --filter "label=$STANDIN_LABEL=1" >/dev/null
}

run_docker() {
  if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
  else
    command -v docker-compose >/dev/null || apt_install docker-compose
    COMPOSE=(docker-compose)
  fi
  docker info >/dev/null 2>&1 || { echo "Docker Engine is not reachable (docker info failed)" >&2; return 1; }
  say "compose: ${COMPOSE[*]} ($("${COMPOSE[@]}" version 2>/dev/null | head -n1))"

  say "public images: compose config, pinned tags"
  local cfg="$WORK/public-config.yaml"
  env -u ENVOY_IMAGE -u PROMETHEUS_IMAGE -u JAEGER_IMAGE -u GRAFANA_IMAGE -u STACK_TOOLS_IMAGE \
    "${COMPOSE[@]}" -f "$COMPOSE_FILE_MAIN" config >"$cfg"
  local images
  images=$(sed -n 's/^ *image: *//p' "$cfg" | tr -d "\"'" | sort -u)
  echo "$images" | sed 's/^/  /'
  for want in envoyproxy/envoy:v1.40.0 prom/prometheus: jaegertracing/jaeger: grafana/grafana:; do
    echo "$images" | grep -q "^$want" || { echo "public image $want... missing from compose config" >&2; return 1; }
  done
  if echo "$images" | grep -vE '^[^:]+:[^:]*[0-9][^:]*$' | grep -q . || echo "$images" | grep -q ':latest$'; then
    echo "unpinned image tag in compose config:" >&2; echo "$images" >&2; return 1
  fi
  phase "compose config (public images)"

  build_standins
  phase "stand-in images"

  export ENVOY_PORT ENVOY_ADMIN_PORT PROMETHEUS_PORT JAEGER_OTLP_PORT JAEGER_UI_PORT GRAFANA_PORT
  ENVOY_PORT=$(free_port) ENVOY_ADMIN_PORT=$(free_port) PROMETHEUS_PORT=$(free_port)
  JAEGER_OTLP_PORT=$(free_port) JAEGER_UI_PORT=$(free_port) GRAFANA_PORT=$(free_port)
  export FILTERS_DIR="$ROOT/target/filters"
  local dc=("${COMPOSE[@]}" -p "$PROJECT" -f "$COMPOSE_FILE_MAIN" -f "$COMPOSE_FILE_LOCAL")
  say "docker stack: up (envoy, bookstore, collector as jaeger, prometheus; project $PROJECT)"
  compose_up=1
  "${dc[@]}" up -d --no-build envoy bookstore jaeger prometheus grpc-collector
  phase "compose up"

  say "docker stack: traffic ($ROUNDS rounds, in the compose network)"
  mkdir -p "$WORK/docker"
  "${dc[@]}" run --rm -T --no-deps -v "$WORK/docker:/out" traffic \
    /usr/local/bin/traffic --target http://envoy:10000 --rounds "$ROUNDS" --concurrency 2 \
    --wait 60 --tally /out/tally.json
  local total
  total=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total"])' "$WORK/docker/tally.json")
  # Envoy's access log is its container's stdout; wait until every request is in it.
  local envoy_id
  envoy_id=$("${dc[@]}" ps -q envoy)
  for _ in $(seq 100); do
    docker logs "$envoy_id" 2>/dev/null >"$WORK/docker/access.log"
    [ "$(grep -c '"operation"' "$WORK/docker/access.log")" -ge "$total" ] && break
    sleep 0.2
  done
  phase "compose traffic"

  # grpc-collector writes what Envoy streams to it to its stdout; wait for every entry.
  local grpc_id
  grpc_id=$("${dc[@]}" ps -q grpc-collector)
  for _ in $(seq 100); do
    docker logs "$grpc_id" 2>/dev/null >"$WORK/docker/grpc-collector.log"
    [ "$(grep -c '"kind":"http"' "$WORK/docker/grpc-collector.log")" -ge "$total" ] && break
    sleep 0.2
  done
  say "docker stack: assertions"
  check "$WORK/docker/access.log" "$WORK/docker/tally.json" "http://127.0.0.1:$PROMETHEUS_PORT" \
    "http://127.0.0.1:$JAEGER_OTLP_PORT" local-stack "$WORK/docker/grpc-collector.log"
  phase "compose assertions"
  "${dc[@]}" down -v --remove-orphans --timeout 5
  compose_up=0
  local left
  left=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT"; docker network ls -q --filter "label=com.docker.compose.project=$PROJECT"; docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT")
  [ -z "$left" ] || { echo "left behind after down -v: $left" >&2; return 1; }
  phase "compose down -v"
}

# -------------------------------------------------------------------- local
run_local() { # runtime: wasm or dynamic-module (the same filters and JSON in libtelemetry_filters.so)
  local runtime="$1"
  local_dir="$WORK/local-$runtime"
  say "local stack ($runtime): scripts/stack.sh up --runtime $runtime (free loopback ports)"
  local_up=1
  STACK_SKIP_BUILD=1 STACK_PORTS=free STACK_DIR="$local_dir" "$ROOT/scripts/stack.sh" up --rounds "$ROUNDS" --runtime "$runtime" >"$WORK/stack-up.log" 2>&1 \
    || { cat "$WORK/stack-up.log" >&2; return 1; }
  tail -n 16 "$WORK/stack-up.log"
  phase "local up + traffic ($runtime)"
  # shellcheck disable=SC1091
  source "$local_dir/ports.env"
  say "local stack ($runtime): assertions"
  local extra=()
  # The stack leaves the latency histogram out of the dynamic module's
  # configuration ("left out" above): request.duration has no attribute id
  # in Envoy 1.40's dynamic-module ABI.
  [ "$runtime" = wasm ] || extra=(--without-latency "request.duration is not readable through Envoy's dynamic-module ABI")
  check "$local_dir/access.log" "$local_dir/tally.json" "http://127.0.0.1:$PROM" \
    "http://127.0.0.1:$COLL" local-stack "$local_dir/grpc-collector/access-logs.jsonl" "${extra[@]}"
  phase "local assertions ($runtime)"
  local pids
  pids=$(cat "$local_dir"/*.pid)
  STACK_DIR="$local_dir" "$ROOT/scripts/stack.sh" down
  local_up=0
  for p in $pids; do
    st="$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null || true)"
    [ -z "$st" ] || [ "$st" = Z ] || { echo "process $p still running after stack.sh down" >&2; return 1; }
  done
  phase "local down ($runtime)"
}

if [ "$MODE" = images ]; then
  build_standins
  printf '\nexport ENVOY_IMAGE=%s PROMETHEUS_IMAGE=%s STACK_TOOLS_IMAGE=%s\n' "$ENVOY_IMAGE" "$PROMETHEUS_IMAGE" "$STACK_TOOLS_IMAGE"
  exit 0
fi
[ "$MODE" = local ] || run_docker
if [ "$MODE" != docker ]; then
  run_local wasm
  run_local dynamic-module
fi

say "timings"
printf '  %s\n' "${timing[@]}"
echo "test-compose: passed in $(( $(date +%s) - T0 )) s"
