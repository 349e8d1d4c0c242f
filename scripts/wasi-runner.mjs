// Cargo runner for wasm32-wasip1 test binaries: runs them under Node's WASI,
// so the filters' pure-Rust unit tests also run on the target they ship for.
// Used via CARGO_TARGET_WASM32_WASIP1_RUNNER (see scripts/test.sh).
import { readFile } from "node:fs/promises";
import { WASI } from "node:wasi";
import process from "node:process";

const [, , wasmPath, ...args] = process.argv;
const wasi = new WASI({
  version: "preview1",
  args: [wasmPath, ...args],
  env: process.env,
  preopens: { ".": "." },
  returnOnExit: true,
});
// The proxy-wasm host functions (module "env") are linked in through the
// SDK's exported callbacks but never called by a unit test: stub them so
// instantiation succeeds, and fail loudly if one is called after all.
const env = new Proxy({}, {
  get: (_, name) => () => {
    throw new Error(`host function env.${String(name)} called in a unit test`);
  },
});
const module = await WebAssembly.compile(await readFile(wasmPath));
const instance = await WebAssembly.instantiate(module, { ...wasi.getImportObject(), env });
process.exit(wasi.start(instance));
