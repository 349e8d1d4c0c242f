//! The proxy-wasm adapter: the shared one, writing tags on request and
//! response headers (the span is finished before `on_log`).

use crate::plan::{configure, Plan};
use crate::FILTER_NAME;
use filter_common::shared_reads::{CachingHost, RequestCache};
use filter_common::wasm::{serve, Filter, WasmHost};

proxy_wasm::main! {{
    serve::<Plan>();
}}

impl Filter for Plan {
    const NAME: &'static str = FILTER_NAME;
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    type Stream = ();

    fn configure(raw: Option<&[u8]>, host: &WasmHost) -> Self {
        configure(raw, host)
    }

    fn jobs(&self) -> Vec<&'static str> {
        vec![FILTER_NAME]
    }

    fn on_request_headers(&self, host: &WasmHost, _: &()) {
        if !self.is_empty() {
            // Reads are shared by the tags of the phase (one per value).
            let cache = RequestCache::default();
            self.on_request(&CachingHost::new(host, &cache));
        }
    }

    // Also runs for local replies. If an earlier filter answered before the
    // request headers reached this one, only the response-phase tags are set.
    fn on_response_headers(&self, host: &WasmHost, _: &()) {
        if !self.is_empty() {
            let cache = RequestCache::default();
            self.on_response(&CachingHost::new(host, &cache));
        }
    }
}
