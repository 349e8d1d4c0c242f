//! The proxy-wasm module: the shared adapter running the bundle's jobs.

use crate::{configure, FILTER_NAME};
use filter_common::pipeline::Pipeline;
use filter_common::wasm::{serve, Module, WasmHost};

proxy_wasm::main! {{
    serve::<Bundle>();
}}

struct Bundle;

impl Module for Bundle {
    const NAME: &'static str = FILTER_NAME;
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn configure(raw: Option<&[u8]>, host: &WasmHost) -> Pipeline<WasmHost> {
        configure(raw, host)
    }
}
