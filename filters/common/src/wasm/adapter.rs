//! The proxy-wasm adapter every module shares: a filter's logic implements
//! [`Filter`], and [`serve`] does the rest (root context, configuration,
//! start-up line, heartbeat, memory gauge, stream contexts, fault injection
//! in test builds).

use super::{hostcalls, init, log_start, Heartbeat, MemoryGauge, WasmHost};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use std::rc::Rc;

/// A module's logic, as the adapter drives it. Every callback defaults to
/// doing nothing.
pub trait Filter: Sized + 'static {
    /// The module's name (logs, metric names).
    const NAME: &'static str;
    /// Its version (the start-up line).
    const VERSION: &'static str;

    /// Per-request state kept between phases (e.g. a read cache).
    type Stream: Default + 'static;

    /// Builds the plan from the plugin configuration; never fails (problems
    /// are logged and counted by the implementation).
    fn configure(raw: Option<&[u8]>, host: &WasmHost) -> Self;

    /// Names of the jobs this plan runs; each gets a heartbeat counter
    /// `wasm_filter.<name>.requests_total`.
    fn jobs(&self) -> Vec<&'static str>;

    /// Request headers.
    fn on_request_headers(&self, _host: &WasmHost, _stream: &Self::Stream) {}

    /// Response headers (the last chance for span tags).
    fn on_response_headers(&self, _host: &WasmHost, _stream: &Self::Stream) {}

    /// The log phase, after the response.
    fn on_log(&self, _host: &WasmHost, _stream: &Self::Stream) {}
}

/// Registers the module's root context; call it in `proxy_wasm::main!`.
pub fn serve<F: Filter>() {
    init(F::NAME);
    proxy_wasm::set_root_context(new_root::<F>);
}

fn new_root<F: Filter>(_: u32) -> Box<dyn RootContext> {
    Box::new(Root::<F> {
        plan: None,
        heartbeats: Rc::default(),
        memory: MemoryGauge::default(),
    })
}

struct Root<F: Filter> {
    plan: Option<Rc<F>>,
    heartbeats: Rc<Vec<Heartbeat>>,
    memory: MemoryGauge,
}

impl<F: Filter> Context for Root<F> {}

impl<F: Filter> RootContext for Root<F> {
    fn on_vm_start(&mut self, _: usize) -> bool {
        log_start(F::NAME, F::VERSION);
        self.memory = MemoryGauge::start(F::NAME);
        true
    }

    fn on_tick(&mut self) {
        self.memory.refresh();
    }

    fn on_configure(&mut self, _: usize) -> bool {
        let raw = hostcalls::plugin_configuration().ok().flatten();
        let plan = F::configure(raw.as_deref(), &WasmHost);
        self.heartbeats = Rc::new(plan.jobs().into_iter().map(Heartbeat::define).collect());
        self.plan = Some(Rc::new(plan));
        true // a bad configuration is counted and logged, never fatal
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        let plan = self.plan.clone()?;
        Some(Box::new(Stream::<F> {
            plan,
            heartbeats: Rc::clone(&self.heartbeats),
            state: F::Stream::default(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream<F: Filter> {
    plan: Rc<F>,
    heartbeats: Rc<Vec<Heartbeat>>,
    state: F::Stream,
}

impl<F: Filter> Context for Stream<F> {}

impl<F: Filter> HttpContext for Stream<F> {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        // The heartbeat counts requests whose headers reached the filter
        // (not streams Envoy's codec refused before any filter ran).
        self.heartbeats.iter().for_each(Heartbeat::beat);
        #[cfg(feature = "fault-injection")]
        crate::fault::check(&WasmHost);
        self.plan.on_request_headers(&WasmHost, &self.state);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        self.plan.on_response_headers(&WasmHost, &self.state);
        Action::Continue
    }

    fn on_log(&mut self) {
        self.plan.on_log(&WasmHost, &self.state);
    }
}
