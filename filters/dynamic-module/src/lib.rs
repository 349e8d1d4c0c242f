//! attributegen, get-calls, trace-tags and the bundle as one Envoy dynamic
//! module (`libtelemetry_filters.so`), chosen by the filter's `filter_name`
//! (`attributegen`, `get_calls`, `trace_tags`, `telemetry_bundle`), each
//! configured with the same JSON as its Wasm module.
//!
//! Envoy calls the `envoy_dynamic_module_on_*` hooks below: configuration
//! once on the main thread, the stream hooks on every worker. A panic never
//! crosses into Envoy: each hook catches it, counts it and lets the request
//! through.

pub mod abi;
pub mod attributes;
pub mod expressions;
mod hooks;
pub mod host;
pub mod metric_table;
pub mod runtime;
pub mod shared_data;
#[cfg(test)]
mod test_stubs;

/// The module's version, named in its log lines.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
