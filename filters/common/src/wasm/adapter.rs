//! The proxy-wasm adapter every module shares: a module names its jobs
//! ([`Module`]), and [`serve`] does the rest (root context, configuration,
//! start-up line, heartbeat, memory gauge, stream contexts, fault injection
//! in test builds).

use super::{hostcalls, init, log_start, Heartbeat, MemoryGauge, WasmHost};
use crate::job::Phase;
use crate::pipeline::Pipeline;
use crate::shared_reads::RequestCache;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use std::rc::Rc;

/// A proxy-wasm module: a name, a version and the jobs its configuration
/// makes. Everything else (root context, heartbeat, memory gauge, the
/// per-request cache, phase dispatch) is the adapter's and the
/// [`Pipeline`]'s.
pub trait Module: 'static {
    /// The module's name (logs, metric names).
    const NAME: &'static str;
    /// Its version (the start-up line).
    const VERSION: &'static str;

    /// Builds the jobs from the plugin configuration; never fails (problems
    /// are logged and counted by the jobs).
    fn configure(raw: Option<&[u8]>, host: &WasmHost) -> Pipeline<WasmHost>;
}

/// Registers the module's root context; call it in `proxy_wasm::main!`.
pub fn serve<M: Module>() {
    init(M::NAME);
    proxy_wasm::set_root_context(new_root::<M>);
}

fn new_root<M: Module>(_: u32) -> Box<dyn RootContext> {
    Box::new(Root::<M> {
        plan: None,
        heartbeat: Heartbeat::default(),
        memory: MemoryGauge::default(),
        _module: std::marker::PhantomData,
    })
}

struct Root<M: Module> {
    plan: Option<Rc<Pipeline<WasmHost>>>,
    heartbeat: Heartbeat,
    memory: MemoryGauge,
    _module: std::marker::PhantomData<M>,
}

impl<M: Module> Context for Root<M> {
    fn on_done(&mut self) -> bool {
        // The VM is shutting down: add the requests counted since the last tick.
        self.heartbeat.flush();
        true
    }
}

impl<M: Module> Drop for Root<M> {
    /// A configuration update replaces the plugin: Envoy deletes the old
    /// root context (`proxy_on_delete`) without calling `on_done`, so the
    /// requests it counted since its last tick are added here.
    fn drop(&mut self) {
        self.heartbeat.flush();
    }
}

impl<M: Module> RootContext for Root<M> {
    fn on_vm_start(&mut self, _: usize) -> bool {
        log_start(M::NAME, M::VERSION);
        self.memory = MemoryGauge::start(M::NAME);
        true
    }

    fn on_tick(&mut self) {
        self.memory.refresh();
        self.heartbeat.flush();
    }

    fn on_configure(&mut self, _: usize) -> bool {
        let raw = hostcalls::plugin_configuration().ok().flatten();
        let plan = M::configure(raw.as_deref(), &WasmHost);
        self.heartbeat = Heartbeat::define(M::NAME, &self.heartbeat);
        self.plan = Some(Rc::new(plan));
        true // a bad configuration is counted and logged, never fatal
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        let plan = self.plan.clone()?;
        Some(Box::new(Stream {
            plan,
            heartbeat: self.heartbeat.clone(),
            cache: RequestCache::default(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream {
    plan: Rc<Pipeline<WasmHost>>,
    heartbeat: Heartbeat,
    cache: RequestCache,
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        // The heartbeat counts requests whose headers reached the filter
        // (not streams Envoy's codec refused before any filter ran).
        self.heartbeat.beat();
        #[cfg(feature = "fault-injection")]
        crate::fault::check(&WasmHost);
        self.plan.run(Phase::RequestHeaders, &WasmHost, &self.cache);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        self.plan
            .run(Phase::ResponseHeaders, &WasmHost, &self.cache);
        Action::Continue
    }

    fn on_log(&mut self) {
        self.plan.run(Phase::Log, &WasmHost, &self.cache);
    }
}
