//! attributegen: a drop-in replacement for Istio's attributegen filter.
//!
//! Same JSON configuration, same semantics: each entry of `attributes` tries
//! its `match` list in order, the first condition that is true writes its
//! `value` to filter state `wasm.<output_attribute>`. See the README for the
//! full contract. [`config`] mirrors the JSON, [`plan`] compiles and runs it;
//! the proxy-wasm adapter is the small `filter` module, built for wasm only.

pub mod config;
pub mod job;
pub mod plan;
pub mod templates;

// The adapter is left out of test builds so the unit tests also run as a
// plain WASI program (scripts/test.sh runs them under Node's WASI), and out
// of the one-VM bundle, which depends on this crate without the `filter`
// feature and brings its own adapter.
#[cfg(all(target_arch = "wasm32", feature = "filter", not(test)))]
mod filter;

/// Name used in logs and metric names.
pub const FILTER_NAME: &str = "attributegen";
