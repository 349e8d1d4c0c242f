//! VM-wide set-up: panic hook and start-up line.

use super::hostcalls;
use crate::host::LogLevel;
use std::sync::OnceLock;

static FILTER: OnceLock<&'static str> = OnceLock::new();

/// Call first in `proxy_wasm::main!`: remembers the filter's name and installs
/// a panic hook that logs at critical level before the VM dies, so a trap is
/// never silent.
pub fn init(filter: &'static str) {
    let _ = FILTER.set(filter);
    std::panic::set_hook(Box::new(|info| {
        let name = FILTER.get().copied().unwrap_or("filter");
        hostcalls::log(LogLevel::Critical, &format!("{name}: panic: {info}"));
    }));
}

/// Logs the filter's name, version and build (call from `on_vm_start`).
pub fn log_start(filter: &str, version: &str) {
    hostcalls::log(LogLevel::Info, &crate::start_banner(filter, version));
}

/// The module's heartbeat counter ([`crate::heartbeat_metric`]), defined once
/// per root context. Requests are counted in the module and added to
/// Envoy's counter on the root context's tick ([`MEMORY_GAUGE_PERIOD_MS`])
/// and when the root context is done or deleted (a configuration update
/// replaces it): one host call per tick instead of one
/// per request, so the counter trails the traffic by up to one tick.
#[derive(Debug, Clone, Default)]
pub struct Heartbeat {
    id: Option<crate::host::MetricId>,
    pending: std::rc::Rc<std::cell::Cell<u64>>,
}

impl Heartbeat {
    /// Defines the counter (root context); beats counted before this, on the
    /// heartbeat it replaces, are added first.
    pub fn define(module: &str, previous: &Heartbeat) -> Heartbeat {
        use crate::host::{Host, MetricKind};
        previous.flush();
        let name = crate::heartbeat_metric(module);
        Heartbeat {
            id: super::WasmHost
                .define_metric(MetricKind::Counter, &name, &[])
                .ok(),
            pending: std::rc::Rc::clone(&previous.pending),
        }
    }

    /// Counts one request (in the module; [`Heartbeat::flush`] adds it).
    pub fn beat(&self) {
        self.pending.set(self.pending.get().saturating_add(1));
    }

    /// Adds the requests counted since the last flush to Envoy's counter.
    pub fn flush(&self) {
        use crate::host::Host;
        let (Some(id), n) = (self.id, self.pending.get()) else {
            return;
        };
        let Ok(by) = i64::try_from(n) else { return };
        if n > 0 && super::WasmHost.increment(id, &[], by).is_ok() {
            self.pending.set(0);
        }
    }
}

/// This VM's linear memory as a gauge, `wasm_filter.<filter>.vm<N>.memory_bytes`,
/// refreshed every few seconds from the root context's tick. `N` numbers the
/// VMs of one Envoy (a counter in shared data), so each VM has its own series
/// and a leak in one shows.
#[derive(Debug, Default)]
pub struct MemoryGauge(Option<crate::host::MetricId>);

/// This VM's number among the VMs of one Envoy that run `filter`.
static VM_NUMBER: OnceLock<u32> = OnceLock::new();

/// Takes the next VM number from a counter in Envoy's shared data
/// (compare-and-swap; 0 if the counter cannot be updated).
fn next_vm_number(filter: &str) -> u32 {
    let key = format!("wasm_filter.{filter}.vm_count");
    for _ in 0..16 {
        let (value, cas) = hostcalls::get_shared_data(&key).unwrap_or((None, 0));
        let current = value
            .and_then(|v| <[u8; 4]>::try_from(v.as_slice()).ok())
            .map_or(0, u32::from_le_bytes);
        if hostcalls::set_shared_data(&key, &(current + 1).to_le_bytes(), cas).is_ok() {
            return current + 1;
        }
    }
    0
}

/// How often the gauge is refreshed.
pub const MEMORY_GAUGE_PERIOD_MS: u32 = 2000;

impl MemoryGauge {
    /// Numbers this VM (once: every root context of the VM, one per plugin
    /// configuration, shares the number), defines its gauge, records once
    /// and starts the root context's tick.
    pub fn start(filter: &str) -> MemoryGauge {
        use crate::host::{Host, MetricKind};
        let n = *VM_NUMBER.get_or_init(|| next_vm_number(filter));
        let name = format!("wasm_filter.{filter}.vm{n}.memory_bytes");
        let gauge = MemoryGauge(
            super::WasmHost
                .define_metric(MetricKind::Gauge, &name, &[])
                .ok(),
        );
        gauge.refresh();
        let _ = hostcalls::set_tick_period_ms(MEMORY_GAUGE_PERIOD_MS);
        gauge
    }

    /// Records the current size of linear memory (call from `on_tick`).
    pub fn refresh(&self) {
        use crate::host::Host;
        if let Some(id) = self.0 {
            let bytes = core::arch::wasm32::memory_size(0) as u64 * 65536;
            let _ = super::WasmHost.record(id, &[], bytes);
        }
    }
}
