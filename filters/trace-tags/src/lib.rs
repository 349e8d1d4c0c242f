//! trace-tags: custom tags on Envoy's tracing spans.
//!
//! proxy-wasm cannot tag a span. Envoy's HCM `tracing.custom_tags` can read
//! filter state (`value: "%FILTER_STATE(wasm.trace_tag.x:PLAIN)%"`) and
//! request headers (`request_header`) when the span is finished, so this
//! filter computes each configured tag (literal, environment, request header,
//! CEL expression, another filter's attribute) and writes it there, by the
//! response-headers phase at the latest (the span is finished before
//! `on_log`). Headers it owns are stripped from client requests, so a client
//! cannot set a tag. See the README for the full contract. [`config`] mirrors
//! the JSON, [`plan`] compiles and runs it; the proxy-wasm adapter is the
//! small `filter` module, built for wasm only.

pub mod config;
pub mod job;
pub mod plan;

// The adapter is left out of test builds so the unit tests also run as a
// plain WASI program (scripts/test.sh runs them under Node's WASI), and out
// of the one-VM bundle, which depends on this crate without the `filter`
// feature and brings its own adapter.
#[cfg(all(target_arch = "wasm32", feature = "filter", not(test)))]
mod filter;

/// Name used in logs and metric names.
pub const FILTER_NAME: &str = "trace_tags";
