//! The proxy-wasm adapter: the shared one, recording in the log phase.

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

    fn on_log(&self, host: &WasmHost, _: &()) {
        // Reads are shared by the metrics (one host read per value).
        let cache = RequestCache::default();
        self.run(&CachingHost::new(host, &cache));
    }
}
