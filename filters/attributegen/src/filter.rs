//! The proxy-wasm adapter: the shared one, driving the plan.

use crate::config::Phase;
use crate::plan::{configure, Plan};
use crate::FILTER_NAME;
use filter_common::shared_reads::{CachingHost, RequestCache};
use filter_common::view::RequestView;
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
        if self.runs_in(Phase::OnRequest) {
            self.run_phase(Phase::OnRequest, host);
        }
    }

    fn on_log(&self, host: &WasmHost, _: &()) {
        if self.runs_in(Phase::AfterResponse) {
            self.run_phase(Phase::AfterResponse, host);
        }
    }
}

impl Plan {
    fn run_phase(&self, phase: Phase, host: &WasmHost) {
        if self.rereads() {
            // Reads are shared by the generators and conditions of the
            // phase: one host read per value.
            let cache = RequestCache::default();
            self.run(phase, &RequestView::new(&CachingHost::new(host, &cache)));
        } else {
            // Route templates alone: the view already reads each value once.
            self.run(phase, &RequestView::new(host));
        }
    }
}
