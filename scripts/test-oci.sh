#!/usr/bin/env bash
# Registry round trip of the OCI images (scripts/oci-image): starts Debian's
# docker-registry on a free localhost port (storage in target/oci-test),
# pushes each module's Wasm artifact and compat image with `oci-image push`,
# pulls them back with skopeo, an independent client, and checks them as
# Istio's image fetcher reads them (media types, layer count, plugin.wasm,
# module bytes), that the registry's digests are the computed ones, and that
# the WasmPlugin manifests carry them as sha256.
# Uses the modules in target/filters (built by scripts/build.sh if missing).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
started=$(date +%s)

apt_install docker-registry skopeo curl
MODULES=(attributegen get_calls trace_tags telemetry_bundle)
for name in "${MODULES[@]}"; do
  [ -f "target/filters/$name.wasm" ] || { "$ROOT/scripts/build.sh"; break; }
done
cargo build -q -p oci-image
oci_image="$ROOT/target/debug/oci-image"
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n1)"

work="$ROOT/target/oci-test"
rm -rf "$work"
mkdir -p "$work/storage" "$work/pull"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
registry="127.0.0.1:$port"
cat >"$work/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/storage
http:
  addr: $registry
EOF
docker-registry serve "$work/config.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
trap 'kill "$registry_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://$registry/v2/" >/dev/null 2>&1 && break
  kill -0 "$registry_pid" 2>/dev/null || { cat "$work/registry.log" >&2; exit 1; }
  sleep 0.1
done
say "docker-registry $(docker-registry --version 2>/dev/null | awk '{print $NF}') on $registry (pid $registry_pid)"

files=()
for name in "${MODULES[@]}"; do files+=("target/filters/$name.wasm"); done
"$oci_image" push --registry "$registry" --repo telemetry --tag "$VERSION" "${files[@]}"

# WasmPlugin url → sha256, one pair per YAML document.
wasmplugin_digests() {
  awk '
    function emit() { if (url != "" && sha != "") print url, sha; url = ""; sha = "" }
    FNR == 1 || /^---/ { emit() }
    /^  url: oci:\/\// { url = $2 }
    /^  sha256: / { sha = $2 }
    END { emit() }' "$@"
}
mapfile -t plugin_files < <(grep -rl --include='*.yaml' '^kind: WasmPlugin' envoyfilter-manifests 2>/dev/null || true)
declared="$work/wasmplugin-digests.txt"
: >"$declared"
[ ${#plugin_files[@]} -gt 0 ] && wasmplugin_digests "${plugin_files[@]}" >"$declared"

checked=0 manifest_checked=0
for name in "${MODULES[@]}"; do
  repo="${name//_/-}"
  module="target/filters/$name.wasm"
  for format in artifact compat; do
    tag="$VERSION"
    [ "$format" = compat ] && tag="$VERSION-compat"
    ref="docker://$registry/telemetry/$repo:$tag"
    raw_digest="sha256:$(skopeo inspect --raw --tls-verify=false "$ref" | sha256sum | cut -d' ' -f1)"
    skopeo copy -q --preserve-digests --src-tls-verify=false "$ref" "oci:$work/pull/$repo-$format"
    "$oci_image" check --layout "$work/pull/$repo-$format" --module "$module" --format "$format" --digest "$raw_digest"
    checked=$((checked + 1))
  done
  # Hex manifest digest of each image: "artifact <hex>", "compat <hex>".
  digests="$("$oci_image" digest "$module" | awk '{ sub("sha256:", "", $3); print $2, $3 }')"
  while read -r url sha; do
    case "$url" in
      */"$repo":*-compat) want="$(awk '$1 == "compat" { print $2 }' <<<"$digests")" ;;
      */"$repo":*) want="$(awk '$1 == "artifact" { print $2 }' <<<"$digests")" ;;
      *) continue ;;
    esac
    if [ "$sha" != "$want" ]; then
      echo "FAIL: a WasmPlugin for $url declares sha256 $sha, the image's manifest digest is $want" >&2
      echo "      (regenerate the manifests after rebuilding the modules)" >&2
      exit 1
    fi
    manifest_checked=$((manifest_checked + 1))
  done <"$declared"
done
if [ "$manifest_checked" = 0 ]; then
  echo "note: no WasmPlugin in envoyfilter-manifests declares an oci:// sha256; that check was skipped" >&2
else
  echo "WasmPlugin sha256 = image manifest digest: $manifest_checked checked"
fi
echo "OCI round trip: $checked images checked in $(( $(date +%s) - started )) s"
echo "$checked passed, 0 failed"
