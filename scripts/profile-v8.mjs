// A module's time per request in V8 (the engine Envoy runs it in), where
// it goes by function: the module is driven over the benchmark's request as
// Envoy drives a stream, against a host that answers as Envoy does (the
// same answers as src/host.rs), under `node --cpu-prof`. Envoy's own side of
// each host call is not in it. Run through scripts/profile-v8.sh.
//   node --cpu-prof v8-profile.mjs <module.wasm> <config JSON or ""> <requests>
import { readFileSync } from "node:fs";

const [, , path, configText, requestsText] = process.argv;
const requests = Number(requestsText || 200000);
const enc = new TextEncoder();
const dec = new TextDecoder();
const config = enc.encode(configText || "");
const TRUE = new Uint8Array([1]);
const TOKEN = new Uint8Array([1, 0, 0, 0]);

const REQUEST = [
  [":authority", "127.0.0.1:10000"], [":path", "/reviews/0"], [":method", "GET"],
  [":scheme", "http"], ["x-tenant", "acme"], ["x-request-id", "0b7a4f86-5d3e-4a1e-9c4e-5f2b7d1c9e11"],
];
const RESPONSE = [[":status", "200"], ["content-length", "0"]];
// Every answer encoded once: the host's own time stays small beside the
// module's.
const CODE = new Uint8Array(8);
new DataView(CODE.buffer).setBigInt64(0, 200n, true);
const PROPERTIES = new Map([
  ["request\0method", enc.encode("GET")], ["request\0path", enc.encode("/reviews/0")],
  ["request\0url_path", enc.encode("/reviews/0")], ["request\0host", enc.encode("127.0.0.1:10000")],
]);
let response = false;
const property = (p) => (p === "response\0code" ? (response ? CODE : undefined) : PROPERTIES.get(p));
const encoded = (pairs) => pairs.map(([k, v]) => [k, enc.encode(v)]);
const REQUEST_BYTES = encoded(REQUEST);
const RESPONSE_BYTES = encoded(RESPONSE);

let inst;
let buffer, bytes, dataView;
const refresh = () => {
  if (buffer !== inst.exports.memory.buffer) {
    buffer = inst.exports.memory.buffer;
    bytes = new Uint8Array(buffer);
    dataView = new DataView(buffer);
  }
};
const mem = () => (refresh(), bytes);
const view = () => (refresh(), dataView);
const str = (p, n) => {
  const m = mem();
  let s = "";
  for (let k = p; k < p + n; k++) s += String.fromCharCode(m[k]);
  return s;
};
const give = (bytes, retPtr, retLen) => {
  const p = inst.exports.proxy_on_memory_allocate(bytes.length);
  mem().set(bytes, p);
  view().setUint32(retPtr, p, true);
  view().setUint32(retLen, bytes.length, true);
  return 0;
};
const headers = (t) => (t === 0 ? REQUEST_BYTES : t === 2 ? RESPONSE_BYTES : []);
// A header map as proxy-wasm serializes it: count, sizes, then each key and
// value NUL-terminated.
const serialize = (pairs) => {
  const size = 4 + 8 * pairs.length + pairs.reduce((n, [k, v]) => n + k.length + v.length + 2, 0);
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, pairs.length, true);
  let at = 4 + 8 * pairs.length;
  pairs.forEach(([k, v], i) => {
    dv.setUint32(4 + 8 * i, k.length, true);
    dv.setUint32(8 + 8 * i, v.length, true);
    out.set(enc.encode(k), at);
    out.set(v, at + k.length + 1);
    at += k.length + v.length + 2;
  });
  return out;
};
const MAPS = [serialize(REQUEST_BYTES), new Uint8Array(4), serialize(RESPONSE_BYTES)];
const metrics = [];
const env = {
  proxy_get_header_map_value: (t, kp, kn, rp, rn) => {
    const k = str(kp, kn);
    const h = headers(t).find(([n]) => n === k);
    return h ? give(h[1], rp, rn) : 1;
  },
  proxy_get_header_map_pairs: (t, rp, rn) => give(MAPS[t] || MAPS[1], rp, rn),
  proxy_get_property: (pp, pn, rp, rn) => {
    let path = str(pp, pn);
    if (path.endsWith("\0")) path = path.slice(0, -1);
    const v = property(path);
    return v ? give(v, rp, rn) : 1;
  },
  proxy_set_property: () => 0,
  proxy_get_buffer_bytes: (t, s, n, rp, rn) => (t === 7 && config.length ? give(config, rp, rn) : 1),
  proxy_define_metric: (k, np, nn, rp) => {
    const name = str(np, nn);
    let id = metrics.indexOf(name);
    if (id < 0) { metrics.push(name); id = metrics.length - 1; }
    view().setUint32(rp, id, true);
    return 0;
  },
  proxy_increment_metric: () => 0,
  proxy_record_metric: () => 0,
  proxy_call_foreign_function: (np, nn, ap, an, rp, rn) => {
    const f = str(np, nn);
    if (f === "expr_create") return give(TOKEN, rp, rn);
    if (f === "expr_evaluate") return give(TRUE, rp, rn);
    return 0;
  },
  proxy_log: (l, p, n) => { if (l >= 3) console.error("module log:", str(p, n)); return 0; },
  proxy_get_shared_data: () => 1,
  proxy_get_current_time_nanoseconds: (rp) => { view().setBigUint64(rp, 1765000000000000000n, true); return 0; },
};
const wasi = {
  environ_sizes_get: (a, b) => { view().setUint32(a, 0, true); view().setUint32(b, 0, true); return 0; },
  environ_get: () => 0,
  fd_write: (fd, iovs, n, written) => {
    let total = 0;
    for (let k = 0; k < n; k++) total += view().getUint32(iovs + 8 * k + 4, true);
    view().setUint32(written, total, true);
    return 0;
  },
  random_get: (p, n) => { mem().fill(4, p, p + n); return 0; },
  proc_exit: (c) => { throw new Error(`proc_exit(${c})`); },
};
const module = new WebAssembly.Module(readFileSync(path));
const imports = { env: {}, wasi_snapshot_preview1: {} };
for (const imp of WebAssembly.Module.imports(module)) {
  const table = imp.module === "env" ? env : wasi;
  imports[imp.module][imp.name] = table[imp.name] || (() => 0);
}
inst = new WebAssembly.Instance(module, imports);
const x = inst.exports;
x._initialize?.();
x.proxy_on_context_create(1, 0);
x.proxy_on_vm_start(1, 0);
x.proxy_on_configure(1, config.length);

function request(ctx) {
  response = false;
  x.proxy_on_context_create(ctx, 1);
  x.proxy_on_request_headers?.(ctx, REQUEST.length, 0);
  response = true;
  x.proxy_on_response_headers?.(ctx, RESPONSE.length, 1);
  x.proxy_on_log?.(ctx);
  x.proxy_on_done?.(ctx);
  x.proxy_on_delete(ctx);
}
for (let c = 0; c < 20000; c++) request(2 + c); // warm-up: TurboFan, caches
const t0 = process.hrtime.bigint();
for (let c = 0; c < requests; c++) request(100000 + c);
const ns = Number(process.hrtime.bigint() - t0) / requests;
console.log(`${path}: ${ns.toFixed(0)} ns per request in V8 (${requests} requests, host answers included)`);
