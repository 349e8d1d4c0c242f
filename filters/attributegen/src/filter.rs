//! The proxy-wasm module: the shared adapter running this one job.

filter_common::proxy_wasm_module!(crate::FILTER_NAME, |raw, host| {
    filter_common::pipeline::Pipeline::single(crate::plan::configure(raw, host))
});
