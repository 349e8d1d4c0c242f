//! The proxy-wasm adapter: root context compiles, stream context records in
//! the log phase.

use crate::plan::{configure, Plan};
use crate::FILTER_NAME;
use filter_common::wasm::{self, hostcalls, Heartbeat, MemoryGauge, WasmHost};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use std::rc::Rc;

proxy_wasm::main! {{
    wasm::init(FILTER_NAME);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(GetCallsRoot { plan: Rc::default(), heartbeat: Heartbeat::default(), memory: MemoryGauge::default() })
    });
}}

struct GetCallsRoot {
    plan: Rc<Plan>,
    heartbeat: Heartbeat,
    memory: MemoryGauge,
}

impl Context for GetCallsRoot {}

impl RootContext for GetCallsRoot {
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
        self.plan = Rc::new(configure(raw.as_deref(), &WasmHost));
        self.heartbeat = Heartbeat::define(FILTER_NAME);
        true // a bad configuration is counted and logged, never fatal
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(GetCallsStream {
            plan: Rc::clone(&self.plan),
            heartbeat: self.heartbeat,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct GetCallsStream {
    plan: Rc<Plan>,
    heartbeat: Heartbeat,
}

impl Context for GetCallsStream {}

impl HttpContext for GetCallsStream {
    fn on_log(&mut self) {
        self.heartbeat.beat();
        self.plan.run(&WasmHost);
    }
}
