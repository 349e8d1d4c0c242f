//! The proxy-wasm module: the shared adapter running this one job.

use crate::plan::configure;
use crate::FILTER_NAME;
use filter_common::pipeline::Pipeline;
use filter_common::wasm::{serve, Module, WasmHost};

proxy_wasm::main! {{
    serve::<Filter>();
}}

struct Filter;

impl Module for Filter {
    const NAME: &'static str = FILTER_NAME;
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn configure(raw: Option<&[u8]>, host: &WasmHost) -> Pipeline<WasmHost> {
        Pipeline::single(configure(raw, host))
    }
}
