#!/usr/bin/env bash
# Checks that the modules are reproducible: builds them here (scripts/build.sh)
# and in a copy of the sources at another path with its own target directory,
# then compares the optimised modules byte for byte. A full release build of
# the copy: about two minutes on two cores.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
started=$(date +%s)

"$ROOT/scripts/build.sh"
copy="$(mktemp -d -t repro-check.XXXXXX)/elsewhere/sources"
trap 'rm -rf "$(dirname "$(dirname "$copy")")"' EXIT
mkdir -p "$copy"
# The sources as they are now, without build outputs or git metadata.
tar -c --exclude=./target --exclude=./.venv --exclude=./.cache --exclude=./.git . | tar -x -C "$copy"
say "building a copy at $copy"
"$copy/scripts/build.sh"

fail=0 same=0
for module in target/filters/*.wasm target/filters/test/*.wasm; do
  here="$(sha256sum <"$module" | cut -d' ' -f1)"
  there="$(sha256sum <"$copy/$module" | cut -d' ' -f1)"
  if [ "$here" = "$there" ]; then
    echo "same  $here  $module"
    same=$((same + 1))
  else
    echo "DIFF  $here vs $there  $module" >&2
    fail=$((fail + 1))
  fi
done
echo "reproducible modules: $same same, $fail different ($(( $(date +%s) - started )) s)"
echo "$same passed, $fail failed"
[ "$fail" = 0 ]
