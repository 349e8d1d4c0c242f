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

/// A filter's heartbeat counter ([`crate::heartbeat_metric`]), defined once
/// per VM.
#[derive(Debug, Clone, Copy, Default)]
pub struct Heartbeat(Option<crate::host::MetricId>);

impl Heartbeat {
    /// Defines the counter (root context).
    pub fn define(filter: &str) -> Heartbeat {
        use crate::host::{Host, MetricKind};
        let name = crate::heartbeat_metric(filter);
        Heartbeat(
            super::WasmHost
                .define_metric(MetricKind::Counter, &name)
                .ok(),
        )
    }

    /// Counts one request.
    pub fn beat(&self) {
        if let Some(id) = self.0 {
            let _ = hostcalls::increment_metric(id.0, 1);
        }
    }
}
