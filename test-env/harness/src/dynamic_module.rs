//! `DYNAMIC_MODULE=1`: the project's Wasm filters (and, with
//! `TELEMETRY_BUNDLE=1`, the bundle) replaced by the same filters in the
//! Envoy dynamic module `libtelemetry_filters.so`, with the same JSON
//! configuration, so the same tests cover both runtimes.

use crate::bootstrap::Wasm;
use serde_json::{json, Value};
use std::path::PathBuf;

/// Whether `DYNAMIC_MODULE=1`.
pub fn dynamic_module_mode() -> bool {
    std::env::var("DYNAMIC_MODULE").is_ok_and(|v| v == "1")
}

/// Path of the dynamic module built by `scripts/build.sh`.
pub fn module_path() -> PathBuf {
    crate::paths::wasm_dir().join("libtelemetry_filters.so")
}

/// The filters the module holds (its `filter_name`s).
pub const FILTERS: [&str; 4] = [
    "attributegen",
    "get_calls",
    "trace_tags",
    "telemetry_bundle",
];

/// What Envoy's `/stats/prometheus` prefixes the module's metrics with:
/// Envoy strips `wasmcustom` (giving `istio_get_calls`) only once a Wasm VM
/// has registered that namespace; a dynamic module's `metrics_namespace` is
/// not registered, so its metrics come out as `envoy_wasmcustom_<name>`.
pub const PROMETHEUS_PREFIX: &str = "envoy_wasmcustom_";

/// The Prometheus `metric_relabel_configs` that gives the module's metrics
/// the Wasm filters' names (the README's dynamic-module section tells users
/// to add it); in a scrape job's YAML, with `DYNAMIC_MODULE=1`.
pub const RELABEL_YAML: &str = "  metric_relabel_configs:\n  \
    - source_labels: [__name__]\n    regex: 'envoy_wasmcustom_(.*)'\n    \
    target_label: __name__\n    replacement: '$1'\n";

/// `/stats/prometheus` text as a scrape with [`RELABEL_YAML`] names it:
/// `envoy_wasmcustom_` cut from metric names (with `DYNAMIC_MODULE=1`).
pub fn relabel(text: String) -> String {
    if dynamic_module_mode() {
        text.replace(PROMETHEUS_PREFIX, "")
    } else {
        text
    }
}

/// Metric namespace of the module's stats: the Wasm filters' (`wasmcustom`),
/// so both runtimes' stats have the same names.
pub const METRICS_NAMESPACE: &str = "wasmcustom";

/// Type URL of the dynamic-module filter's configuration.
pub const TYPE_URL: &str =
    "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter";

/// The dynamic-module filter standing in for `w`, when `w` runs one of the
/// project's modules without a failure policy (static or discovered
/// configuration).
pub fn replace(w: &Wasm) -> Option<Value> {
    // By module, whatever the plugin's names: every instance of a project
    // filter moves, so filters that hand each other filter state stay in
    // one runtime (Envoy's Wasm reads only filter state Wasm wrote).
    let name = FILTERS
        .into_iter()
        .find(|f| w.module == crate::paths::module(f))?;
    if w.failure_policy.is_some() {
        return None;
    }
    Some(filter(name, w.config.as_deref().unwrap_or("")))
}

/// A dynamic-module filter entry for `filter_name` with `config`.
pub fn filter(filter_name: &str, config: &str) -> Value {
    filter_in(filter_name, config, &module_path())
}

/// [`filter`] with the module at `module` (a `libtelemetry_filters.so`).
pub fn filter_in(filter_name: &str, config: &str, module: &std::path::Path) -> Value {
    json!({
        "name": "envoy.filters.http.dynamic_modules",
        "typed_config": {
            "@type": TYPE_URL,
            "dynamic_module_config": {
                "name": "telemetry_filters",
                "module": { "local": { "filename": module } },
                "metrics_namespace": METRICS_NAMESPACE,
            },
            "filter_name": filter_name,
            "filter_config": { "@type": "type.googleapis.com/google.protobuf.StringValue", "value": config },
        }
    })
}

/// With `DYNAMIC_MODULE=1`, the filters' VM environment variables
/// (`Wasm::env`) as Envoy's process environment: the module reads
/// `environment` tag sources from the process it runs in.
pub fn process_env(filters: &[crate::HttpFilter]) -> Vec<(String, String)> {
    if !dynamic_module_mode() {
        return Vec::new();
    }
    filters
        .iter()
        .filter_map(|f| match f {
            crate::HttpFilter::Wasm(w) => Some(w.env.clone()),
            crate::HttpFilter::Raw(_) => None,
        })
        .flatten()
        .collect()
}
