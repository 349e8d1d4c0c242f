#!/usr/bin/env bash
# The observability stack of test-env/docker-compose.yaml WITHOUT Docker, as
# local processes on loopback: Envoy with the three filters, the bookstore
# upstream, the span collector (in place of Jaeger) and Prometheus; then
# traffic, then where to look. Grafana is not started (no local binary).
#
#   scripts/stack.sh [up] [--rounds N] [--runtime wasm|dynamic-module]
#                                        start (or fail if already up), send N rounds (default 30);
#                                        --runtime dynamic-module: the same filters in libtelemetry_filters.so
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
# (STACK_SKIP_BUILD=1 skips that). The supervision itself (PID files,
# readiness polling, ports, the configs rewritten for loopback) is the
# `stack` program of test-env/stack; this script installs, builds and runs it.
source "$(dirname "$0")/lib.sh"

cmd="${1:-up}"
STACK="$ROOT/target/debug/stack"
if [ "$cmd" = up ]; then
  command -v curl >/dev/null || apt_install curl
  command -v prometheus >/dev/null || apt_install prometheus
  ensure_envoy
  PROMETHEUS_BIN="$(command -v prometheus)"
  export PROMETHEUS_BIN
  if [ "${STACK_SKIP_BUILD:-}" != 1 ]; then  # set by scripts/test-compose.sh, which has just built
    "$ROOT/scripts/build.sh"
    say "building the stack's programs (bookstore, traffic, collector, stack-check, stack)"
    cargo build -q --manifest-path "$ROOT/Cargo.toml" -p telemetry-stack --bins
    cargo build -q --manifest-path "$ROOT/Cargo.toml" -p grpc-collector
  fi
fi
if [ ! -x "$STACK" ]; then
  cargo build -q --manifest-path "$ROOT/Cargo.toml" -p telemetry-stack --bin stack
fi
exec "$STACK" "$@"
