//! The proxy-wasm module: the shared adapter running the bundle's jobs.

filter_common::proxy_wasm_module!(crate::FILTER_NAME, crate::configure);
