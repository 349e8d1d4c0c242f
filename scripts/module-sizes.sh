#!/usr/bin/env bash
# What each crate adds to a module: the module built as scripts/build.sh
# ships it (same exports kept, wasm-opt -Oz) but with its name section, then
# twiggy's per-function sizes summed by crate (the first path segment of
# each demangled name; generic code counts for the crate whose item it is).
#   scripts/module-sizes.sh                     # telemetry-bundle
#   scripts/module-sizes.sh attributegen get-calls
# Needs twiggy (`cargo install twiggy`). The top functions and the
# per-crate table print to stdout.
source "$(dirname "$0")/lib.sh"
source "$ROOT/scripts/wasm-exports.sh"

command -v twiggy >/dev/null || cargo install twiggy
crates=("$@")
[ ${#crates[@]} -gt 0 ] || crates=(telemetry-bundle)
out="$ROOT/target/module-sizes"
mkdir -p "$out"
for crate in "${crates[@]}"; do
  name="${crate//-/_}"
  cargo build -q --manifest-path "$ROOT/Cargo.toml" --profile profiling --target wasm32-wasip1 -p "$crate"
  src="${CARGO_TARGET_DIR:-$ROOT/target}/wasm32-wasip1/profiling/$name.wasm"
  # the exports scripts/build.sh keeps, then its optimisation with names kept
  keep="$(callbacks "$name")"
  if [ "$keep" = ALL ]; then cp "$src" "$out/$name.dce.wasm"; else
    # shellcheck disable=SC2086
    keep_exports "$src" "$out/$name.dce.wasm" $keep
  fi
  wasm-opt -Oz -g --strip-dwarf --strip-producers "${WASM_FEATURES[@]}" "$out/$name.dce.wasm" -o "$out/$name.wasm"
  twiggy top --format csv -n 100000 "$out/$name.wasm" >"$out/$name.csv"
  total="$(stat -c %s "$out/$name.wasm")"
  echo "== $name.wasm: $total bytes with names (twiggy top, largest items)"
  twiggy top -n 15 "$out/$name.wasm" | sed 's/^/  /'
  echo "== $name.wasm by crate (bytes, share of the module)"
  python3 - "$out/$name.csv" "$total" <<'PY'
import csv, re, sys
sizes, names = {}, 0
for row in csv.DictReader(open(sys.argv[1])):
    item, size = row["Name"], int(row["ShallowSize"])
    if "subsection" in item or item.startswith("custom section"):
        names += size  # the name section: not in the shipped module
        continue
    plain = re.sub(r"\[[0-9a-f]{8,}\]", "", item)
    m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)::", plain)
    if m and m.group(1) != "T":
        crate = m.group(1)
    elif item.startswith("data segment"):
        crate = "(data segments)"
    elif re.match(r"^[a-z_]+$", item):
        crate = item  # dlmalloc, memcpy, ...
    else:
        crate = "(other)"
    sizes[crate] = sizes.get(crate, 0) + size
total = int(sys.argv[2]) - names
print(f"  {total:>8}  100.0%  all but the name section")
for crate, size in sorted(sizes.items(), key=lambda kv: -kv[1])[:25]:
    print(f"  {size:>8}  {100 * size / total:5.1f}%  {crate}")
PY
done
