//! The proxy-wasm adapter: root context compiles, stream context records in
//! the log phase.

use crate::plan::{configure, Plan};
use crate::FILTER_NAME;
use filter_common::wasm::{self, hostcalls, WasmHost};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use std::rc::Rc;

proxy_wasm::main! {{
    wasm::init(FILTER_NAME);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(GetCallsRoot { plan: Rc::default() })
    });
}}

struct GetCallsRoot {
    plan: Rc<Plan>,
}

impl Context for GetCallsRoot {}

impl RootContext for GetCallsRoot {
    fn on_vm_start(&mut self, _: usize) -> bool {
        wasm::log_start(FILTER_NAME, env!("CARGO_PKG_VERSION"));
        true
    }

    fn on_configure(&mut self, _: usize) -> bool {
        let raw = hostcalls::plugin_configuration().ok().flatten();
        self.plan = Rc::new(configure(raw.as_deref(), &WasmHost));
        true // a bad configuration is counted and logged, never fatal
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(GetCallsStream {
            plan: Rc::clone(&self.plan),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct GetCallsStream {
    plan: Rc<Plan>,
}

impl Context for GetCallsStream {}

impl HttpContext for GetCallsStream {
    fn on_log(&mut self) {
        self.plan.run(&WasmHost);
    }
}
