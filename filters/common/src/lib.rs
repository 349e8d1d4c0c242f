//! Shared building blocks of the telemetry filters.
//!
//! Everything here except [`wasm`] is plain Rust and unit-tested natively.
//! The filters talk to Envoy only through the [`host::Host`] trait; the real
//! implementation lives in [`wasm`] (compiled for `wasm32` only) and a fake
//! one in [`fake`] backs the native tests.

pub mod cel;
pub mod config;
pub mod fake;
pub mod host;
pub mod metrics;
pub mod throttle;
pub mod view;

#[cfg(target_arch = "wasm32")]
pub mod wasm;

/// Build identifier baked in by `scripts/build.sh` (`git describe`), or `dev`.
pub const BUILD: &str = match option_env!("TELEMETRY_FILTERS_BUILD") {
    Some(b) => b,
    None => "dev",
};

/// The one line every filter logs when its VM starts.
pub fn start_banner(filter: &str, version: &str) -> String {
    format!("{filter} {version} (build {BUILD}) started")
}
