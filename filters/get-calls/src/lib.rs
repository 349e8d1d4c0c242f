//! get_calls: metrics declared in configuration, with labels.
//!
//! Each metric of the configuration is a counter or histogram whose value,
//! condition and dimensions (label → CEL) are evaluated by Envoy's CEL once
//! per stream in the log phase. Labels are encoded into the stat name
//! ([`filter_common::metrics`]) for Envoy's tag extractors / Istio's
//! `extraStatTags`. Without configuration it counts GET requests as
//! `istio_get_calls{destination_service,request_operation,response_code}`.
//! [`config`] mirrors the JSON, [`plan`] compiles and runs it; the proxy-wasm
//! adapter is the small `filter` module, built for wasm only.

pub mod config;
pub mod istio_service;
pub mod job;
pub mod plan;

// The adapter is left out of test builds so the unit tests also run as a
// plain WASI program (scripts/test.sh runs them under Node's WASI), and out
// of the one-VM bundle, which depends on this crate without the `filter`
// feature and brings its own adapter.
#[cfg(all(target_arch = "wasm32", feature = "filter", not(test)))]
mod filter;

/// Name used in logs and metric names.
pub const FILTER_NAME: &str = "get_calls";
