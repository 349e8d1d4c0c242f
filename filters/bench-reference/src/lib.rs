//! TEST-ONLY: reference filters the benchmark (`scripts/bench`) measures our
//! filters against. Not a product; never deploy it.
//!
//! Two jobs, chosen by the plugin configuration:
//!
//! - no configuration (or `{}`): the **trivial reference filter** of
//!   `performance.md`: on request headers two property reads
//!   (`request.url_path`, `request.method`), one filter-state write
//!   (`wasm.bench_reference`) and one counter increment
//!   (`bench_reference_requests`).
//! - `{"empty": true}`: an **empty filter**: its callbacks run and return,
//!   no host call (the fixed cost of one Wasm filter).
//! - `{"host_cel": [{"output_attribute": "...", "match": [{"value": "...",
//!   "condition": "..."}]}]}`: a **straightforward host-CEL attributegen**: in
//!   the log phase, for each attribute, one `expr_evaluate` per condition in
//!   order until one is true, whose value is written to filter state. No
//!   shortcut of any kind, so it stays the fixed yardstick however
//!   attributegen itself is optimised.

pub mod config;

#[cfg(all(target_arch = "wasm32", not(test)))]
mod filter;

/// Name used in logs, the filter-state key and the counter.
pub const FILTER_NAME: &str = "bench_reference";
