#!/usr/bin/env bash
# Packages the modules as OCI images for Istio's WasmPlugin (`url: oci://…`):
# one layer holding `plugin.wasm`, the Docker/OCI "compat" format Istio's
# image fetcher reads (FROM scratch, COPY). Needs Docker.
#   scripts/build-oci.sh                      images <repo>/<filter>:<version>
#   OCI_REPO=registry.example.com/telemetry scripts/build-oci.sh --push
source "$(dirname "$0")/lib.sh"
REPO="${OCI_REPO:-ghcr.io/wasm-telemetry-filters}"
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n1)"
push=0
[ "${1:-}" = "--push" ] && push=1
"$ROOT/scripts/build.sh"
for name in attributegen get_calls trace_tags telemetry_bundle; do
  ctx="$(mktemp -d)"
  cp "$ROOT/target/filters/$name.wasm" "$ctx/plugin.wasm"
  printf 'FROM scratch\nCOPY plugin.wasm ./\n' >"$ctx/Dockerfile"
  image="$REPO/${name//_/-}:$VERSION"
  docker build -q -t "$image" "$ctx" >/dev/null
  rm -rf "$ctx"
  echo "$image  ($(stat -c %s "$ROOT/target/filters/$name.wasm") bytes of plugin.wasm)"
  [ "$push" = 1 ] && docker push "$image"
done
