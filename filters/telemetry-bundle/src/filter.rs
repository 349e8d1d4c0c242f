//! The proxy-wasm adapter of the bundle.

use crate::{configure, Jobs, FILTER_NAME};
use filter_common::shared_reads::RequestCache;
use filter_common::wasm::{self, hostcalls, Heartbeat, MemoryGauge, WasmHost};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use std::rc::Rc;

proxy_wasm::main! {{
    wasm::init(FILTER_NAME);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(BundleRoot { jobs: Rc::default(), heartbeats: Rc::default(), memory: MemoryGauge::default() })
    });
}}

struct BundleRoot {
    jobs: Rc<Jobs>,
    heartbeats: Rc<Vec<Heartbeat>>,
    memory: MemoryGauge,
}

impl Context for BundleRoot {}

impl RootContext for BundleRoot {
    fn on_vm_start(&mut self, _: usize) -> bool {
        wasm::log_start(FILTER_NAME, env!("CARGO_PKG_VERSION"));
        self.memory = MemoryGauge::start(FILTER_NAME);
        true
    }

    fn on_tick(&mut self) {
        self.memory.refresh();
    }

    fn on_configure(&mut self, _: usize) -> bool {
        let raw = hostcalls::plugin_configuration().ok().flatten();
        let jobs = configure(raw.as_deref(), &WasmHost);
        // One heartbeat per job, named as the job's separate filter.
        self.heartbeats = Rc::new(jobs.names().into_iter().map(Heartbeat::define).collect());
        self.jobs = Rc::new(jobs);
        true // a bad configuration is counted and logged, never fatal
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(BundleStream {
            jobs: Rc::clone(&self.jobs),
            heartbeats: Rc::clone(&self.heartbeats),
            cache: RequestCache::default(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct BundleStream {
    jobs: Rc<Jobs>,
    heartbeats: Rc<Vec<Heartbeat>>,
    cache: RequestCache,
}

impl Context for BundleStream {}

impl HttpContext for BundleStream {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        self.heartbeats.iter().for_each(Heartbeat::beat);
        self.jobs.on_request(&WasmHost, &self.cache);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        self.jobs.on_response(&WasmHost, &self.cache);
        Action::Continue
    }

    fn on_log(&mut self) {
        self.jobs.on_log(&WasmHost, &self.cache);
    }
}
