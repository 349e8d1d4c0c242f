//! The proxy-wasm adapter of the bundle: the shared one, with a per-request
//! read cache shared by the jobs.

use crate::{configure, Jobs, FILTER_NAME};
use filter_common::shared_reads::RequestCache;
use filter_common::wasm::{serve, Filter, WasmHost};

proxy_wasm::main! {{
    serve::<Jobs>();
}}

impl Filter for Jobs {
    const NAME: &'static str = FILTER_NAME;
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    type Stream = RequestCache;

    fn configure(raw: Option<&[u8]>, host: &WasmHost) -> Self {
        configure(raw, host)
    }

    /// One heartbeat per job, named as the job's separate filter.
    fn jobs(&self) -> Vec<&'static str> {
        self.names()
    }

    fn on_request_headers(&self, host: &WasmHost, cache: &RequestCache) {
        self.on_request(host, cache);
    }

    fn on_response_headers(&self, host: &WasmHost, cache: &RequestCache) {
        self.on_response(host, cache);
    }

    fn on_log(&self, host: &WasmHost, cache: &RequestCache) {
        Jobs::on_log(self, host, cache);
    }
}
