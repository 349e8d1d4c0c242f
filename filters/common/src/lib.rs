//! Shared building blocks of the telemetry filters.
//!
//! Everything here except [`wasm`] is plain Rust and unit-tested natively.
//! The filters talk to Envoy only through the [`host::Host`] trait; the real
//! implementation lives in [`wasm`] (compiled for `wasm32` only) and a fake
//! one in `fake` (tests, and the `test-support` feature) backs the native tests.

pub mod attributes;
pub mod cel;
pub mod cel_value;
pub mod config;
pub mod diagnostics;
#[cfg(any(test, feature = "test-support"))]
pub mod fake;
#[cfg(feature = "fault-injection")]
pub mod fault;
pub mod header_map;
pub mod host;
pub mod job;
pub mod metrics;
#[cfg(feature = "native-cel")]
pub mod native_cel;
pub mod pipeline;
pub mod shared_reads;
pub mod throttle;

#[cfg(target_arch = "wasm32")]
pub mod wasm;

/// Build identifier baked in by `scripts/build.sh` (the workspace version, so
/// builds are reproducible; `TELEMETRY_FILTERS_BUILD` overrides), or `dev`.
pub const BUILD: &str = match option_env!("TELEMETRY_FILTERS_BUILD") {
    Some(b) => b,
    None => "dev",
};

/// Last segment of every module's heartbeat counter. Istio's bootstrap
/// extracts `wasm_filter.<module>.` as the `wasm_filter` label, so the
/// sidecar's Prometheus page shows
/// `telemetry_filters_requests_total{wasm_filter="<module>"}`: a name of the
/// project's own, which an application's `requests_total` on the same merged
/// page cannot collide with.
pub const HEARTBEAT_NAME: &str = "telemetry_filters_requests_total";

/// Name of a module's heartbeat counter: +1 for every request the module
/// sees, one counter per module (the bundle counts once for all its jobs).
/// Wasm modules add their counts on a tick (`wasm::Heartbeat`), so the
/// counter trails the traffic by up to one tick.
/// When Envoy serves requests but this stays flat, the module is not running
/// (e.g. skipped by `FAIL_OPEN` after a VM failure).
pub fn heartbeat_metric(module: &str) -> String {
    format!("wasm_filter.{module}.{HEARTBEAT_NAME}")
}

/// The one line every filter logs when its VM starts.
pub fn start_banner(filter: &str, version: &str) -> String {
    format!("{filter} {version} (build {BUILD}) started")
}
