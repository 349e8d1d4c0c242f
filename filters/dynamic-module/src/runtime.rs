//! Configurations and streams of the module: which jobs run for a
//! `filter_name`, how a configuration is accepted or rejected, and the
//! per-stream state.

use crate::abi;
use crate::host::{log_line, DynHost};
use crate::metric_table::MetricTable;
use crate::VERSION;
use filter_common::host::{Host, LogLevel, MetricId, MetricKind};
use filter_common::pipeline::Pipeline;
use filter_common::shared_reads::RequestCache;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

/// Panics caught at the FFI boundary since the process started.
pub static PANICS: AtomicU64 = AtomicU64::new(0);

/// Counter of panics caught in a configuration's hooks.
pub const PANICS_METRIC: &str = "telemetry_filters.panics_total";

/// Source of configuration ids (never reused, unlike addresses).
static NEXT_CONFIG_ID: AtomicU64 = AtomicU64::new(1);

/// The jobs of one configuration, as the [`Pipeline`] runs them.
pub type Jobs = Pipeline<DynHost>;

/// One accepted configuration, shared by every worker: the bundle document
/// and the metrics defined for it. The jobs keep per-VM state (log
/// throttles, scratch buffers) that is not thread-safe, so each worker
/// builds its own copy from the document, as each Wasm VM does.
pub struct Config {
    id: u64,
    /// The bundle document, parsed once; each worker's jobs deserialize
    /// their sections from it.
    doc: serde_json::Value,
    /// Metrics defined in `config_new`.
    metrics: Arc<MetricTable>,
    /// The heartbeat counter of this filter (`filter_name`): one per module
    /// configuration, as each Wasm module has one ([`filter_common::heartbeat_metric`]).
    pub heartbeat: Option<MetricId>,
    /// The panic counter.
    pub panics: Option<MetricId>,
    alive: Arc<()>,
}

/// A worker's copy of one configuration's jobs.
struct WorkerJobs {
    alive: Weak<()>,
    jobs: Rc<Jobs>,
}

thread_local! {
    /// This worker's jobs, by configuration id.
    static WORKER_JOBS: RefCell<HashMap<u64, WorkerJobs>> = RefCell::new(HashMap::new());
}

impl Config {
    /// This worker's jobs for the configuration, built on first use; entries
    /// of destroyed configurations are dropped then.
    pub fn worker_jobs(&self) -> Rc<Jobs> {
        WORKER_JOBS.with(|cell| {
            let mut map = cell.borrow_mut();
            if let Some(w) = map.get(&self.id) {
                return Rc::clone(&w.jobs);
            }
            map.retain(|_, w| w.alive.strong_count() > 0);
            let host = DynHost::for_worker(Arc::clone(&self.metrics));
            let jobs = Rc::new(telemetry_bundle::configure_value(&self.doc, &host));
            map.insert(
                self.id,
                WorkerJobs {
                    alive: Arc::downgrade(&self.alive),
                    jobs: Rc::clone(&jobs),
                },
            );
            jobs
        })
    }

    /// Counts a panic caught in one of this configuration's stream hooks.
    pub fn count_panic(&self, host: &DynHost) {
        if let Some(id) = self.panics {
            let _ = host.increment(id, &[], 1);
        }
    }
}

/// One stream: its configuration, this worker's jobs and the read cache.
pub struct Stream {
    /// The configuration the stream was created from.
    pub config: *const Config,
    /// This worker's jobs of that configuration.
    pub jobs: Rc<Jobs>,
    /// Reads shared by the jobs during the request.
    pub cache: RequestCache,
}

/// The bundle document for a `filter_name` and its `filter_config`, parsed.
pub fn bundle_document(filter_name: &str, config: &[u8]) -> Result<serde_json::Value, String> {
    let parse = |bytes: &[u8]| -> Result<serde_json::Value, String> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            Ok(serde_json::Value::Null)
        } else {
            serde_json::from_slice(bytes).map_err(|e| format!("filter_config: invalid JSON: {e}"))
        }
    };
    let section = match filter_name {
        "telemetry_bundle" => return parse(config),
        "attributegen" | "get_calls" | "trace_tags" => filter_name,
        other => {
            return Err(format!(
                "filter_name: unknown filter {other:?} (expected attributegen, get_calls, trace_tags or telemetry_bundle)"
            ))
        }
    };
    let mut doc = serde_json::Map::new();
    doc.insert(section.to_owned(), parse(config)?);
    Ok(serde_json::Value::Object(doc))
}

/// The one line a rejected configuration logs: module, version, filter, why.
pub fn rejection_line(filter_name: &str, why: &str) -> String {
    format!(
        "telemetry_filters {VERSION} (build {}): {filter_name} configuration rejected: {why}",
        filter_common::BUILD
    )
}

/// Builds a configuration, or logs the ONE line saying why it is rejected.
pub fn new_config(envoy: abi::ConfigEnvoyPtr, filter_name: &str, raw: &[u8]) -> Option<Config> {
    let reject = |why: &str| log_line(LogLevel::Error, &rejection_line(filter_name, why));
    let doc = match bundle_document(filter_name, raw) {
        Ok(doc) => doc,
        Err(why) => {
            reject(&why);
            return None;
        }
    };
    let host = DynHost::for_config(envoy);
    let jobs = telemetry_bundle::configure_value(&doc, &host);
    let define = |name: &str| host.define_metric(MetricKind::Counter, name, &[]).ok();
    let heartbeat = define(&filter_common::heartbeat_metric(filter_name));
    let panics = define(PANICS_METRIC);
    drop(jobs);
    let (metrics, warnings) = host.finish();
    if !warnings.is_empty() {
        reject(&warnings.join("; "));
        return None;
    }
    log_line(
        LogLevel::Info,
        &filter_common::start_banner(filter_name, VERSION),
    );
    Some(Config {
        id: NEXT_CONFIG_ID.fetch_add(1, Ordering::Relaxed),
        doc,
        metrics: Arc::new(metrics),
        heartbeat,
        panics,
        alive: Arc::new(()),
    })
}

/// Runs `f`, catching a panic: counted, logged once per occurrence, and the
/// request goes on. True when `f` panicked.
pub fn guarded(hook: &str, f: impl FnOnce()) -> bool {
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err();
    if panicked {
        let n = PANICS.fetch_add(1, Ordering::Relaxed) + 1;
        log_line(
            LogLevel::Error,
            &format!("telemetry_filters {VERSION}: panic in {hook} (total {n}); request continues"),
        );
    }
    panicked
}

/// Workers share one configuration: it must be `Sync` (checked at compile time).
const _: fn() = || {
    fn shared_by_workers<T: Sync + Send>() {}
    shared_by_workers::<Config>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_filters_become_one_section() {
        assert_eq!(
            bundle_document("attributegen", br#"{"attributes":[]}"#).ok(),
            Some(serde_json::json!({"attributegen":{"attributes":[]}}))
        );
        assert_eq!(
            bundle_document("get_calls", b"").ok(),
            Some(serde_json::json!({"get_calls":null}))
        );
        assert!(bundle_document("nope", b"")
            .err()
            .is_some_and(|e| e.starts_with("filter_name")));
        assert!(bundle_document("trace_tags", b"{")
            .err()
            .is_some_and(|e| e.starts_with("filter_config: invalid JSON")));
    }

    #[test]
    fn a_panic_is_caught_and_counted() {
        let before = PANICS.load(Ordering::Relaxed);
        std::panic::set_hook(Box::new(|_| {}));
        #[allow(clippy::panic)]
        guarded("test", || panic!("boom"));
        let _ = std::panic::take_hook();
        assert_eq!(PANICS.load(Ordering::Relaxed), before + 1);
    }
}
