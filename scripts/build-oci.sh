#!/usr/bin/env bash
# Packages the modules as OCI images for Istio's WasmPlugin (`url: oci://…`),
# without Docker (scripts/oci-image): per module, the Wasm artifact
# <repo>/<filter>:<version> (two layers, the raw module; what the manifests in
# envoyfilter-manifests/ reference) and the compat image
# <repo>/<filter>:<version>-compat (plugin.wasm in one tar+gzip layer). The
# images are deterministic: the same module gives the same digests anywhere.
#   scripts/build-oci.sh                      print the images and their digests
#   OCI_REPO=registry.example.com/telemetry scripts/build-oci.sh --push
# OCI_TAG overrides the tag (default: the workspace version); OCI_USERNAME and
# OCI_PASSWORD log in to the registry; localhost registries are plain HTTP.
source "$(dirname "$0")/lib.sh"
REPO="${OCI_REPO:-ghcr.io/wasm-telemetry-filters}"
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n1)"
TAG="${OCI_TAG:-$VERSION}"
push=0
[ "${1:-}" = "--push" ] && push=1
"$ROOT/scripts/build.sh"
cargo build -q --manifest-path "$ROOT/Cargo.toml" -p oci-image
oci_image="${CARGO_TARGET_DIR:-$ROOT/target}/debug/oci-image"
modules=()
for name in attributegen get_calls trace_tags telemetry_bundle; do
  modules+=("$ROOT/target/filters/$name.wasm")
done
if [ "$push" = 1 ]; then
  "$oci_image" push --registry "${REPO%%/*}" --repo "${REPO#*/}" --tag "$TAG" "${modules[@]}"
else
  "$oci_image" digest "${modules[@]}" | while read -r name kind digest; do
    tag="$TAG"
    [ "$kind" = compat ] && tag="$TAG-compat"
    echo "$REPO/$name:$tag@$digest"
  done
fi
