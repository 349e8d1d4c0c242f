//! The proxy-wasm adapter: the shared one, driving the plan.

use crate::config::Phase;
use crate::plan::{configure, Plan};
use crate::FILTER_NAME;
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
            self.run(Phase::OnRequest, &RequestView::new(host));
        }
    }

    fn on_log(&self, host: &WasmHost, _: &()) {
        if self.runs_in(Phase::AfterResponse) {
            self.run(Phase::AfterResponse, &RequestView::new(host));
        }
    }
}
