//! The one-VM bundle: attributegen, get-calls and trace-tags as jobs of one
//! filter, configured by one JSON document with a section per job:
//!
//! ```json
//! { "attributegen": { "attributes": [ … ] },
//!   "get_calls": null,
//!   "trace_tags": { "tags": [ … ] } }
//! ```
//!
//! A missing section turns that job off; `null` runs it with no
//! configuration (get-calls then counts `istio_get_calls`); an object is the
//! job's own configuration, exactly as its separate filter takes it. Jobs run
//! in the order of the separate filters' chain (attributegen, trace-tags,
//! get-calls) and share one [`RequestCache`]: each host property or header is
//! read at most once per request, and attributegen's output reaches the
//! others in memory (it is still written to filter state for Envoy).

use filter_common::config::ConfigError;
use filter_common::host::{Host, LogLevel, MetricKind};
use filter_common::shared_reads::{CachingHost, RequestCache};
use filter_common::view::RequestView;
use serde_json::Value;

#[cfg(all(target_arch = "wasm32", not(test)))]
mod filter;

/// Name used in logs and metric names.
pub const FILTER_NAME: &str = "telemetry_bundle";
/// Counter of configuration problems in the bundle's own document.
pub const CONFIG_ERRORS: &str = "wasm_filter.telemetry_bundle.type.config.error_count";

/// The jobs of one configuration.
#[derive(Default)]
pub struct Jobs {
    attributegen: Option<attributegen::plan::Plan>,
    trace_tags: Option<trace_tags::plan::Plan>,
    get_calls: Option<get_calls::plan::Plan>,
}

/// One section's bytes: `None` for `null` (the job's default).
fn section(doc: &serde_json::Map<String, Value>, key: &str) -> Option<Option<Vec<u8>>> {
    doc.get(key).map(|v| match v {
        Value::Null => None,
        other => Some(other.to_string().into_bytes()),
    })
}

/// Parses the document and configures each job with its section. Problems
/// in a section are the job's own (logged and counted under its name);
/// problems in the document itself are logged and counted under the
/// bundle's name. Never fails.
pub fn configure(raw: Option<&[u8]>, host: &impl Host) -> Jobs {
    let errors = host
        .define_metric(MetricKind::Counter, CONFIG_ERRORS, &[])
        .ok();
    let fail = |e: ConfigError| {
        host.log(LogLevel::Warn, &format!("{FILTER_NAME}: Config Error: {e}"));
        if let Some(id) = errors {
            let _ = host.increment(id, &[], 1);
        }
    };
    let doc = match raw.filter(|r| !r.iter().all(u8::is_ascii_whitespace)) {
        None => serde_json::Map::new(),
        Some(bytes) => match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                fail(ConfigError::new(
                    "$",
                    "expected a JSON object with sections attributegen, get_calls, trace_tags",
                ));
                serde_json::Map::new()
            }
            Err(e) => {
                fail(ConfigError::new("$", format!("invalid JSON: {e}")));
                serde_json::Map::new()
            }
        },
    };
    for key in doc.keys() {
        if !matches!(key.as_str(), "attributegen" | "get_calls" | "trace_tags") {
            fail(ConfigError::new(
                key.clone(),
                "unknown section (expected attributegen, get_calls or trace_tags); ignored",
            ));
        }
    }
    Jobs {
        attributegen: section(&doc, "attributegen")
            .map(|s| attributegen::plan::configure(s.as_deref(), host)),
        trace_tags: section(&doc, "trace_tags")
            .map(|s| trace_tags::plan::configure(s.as_deref(), host)),
        get_calls: section(&doc, "get_calls")
            .map(|s| get_calls::plan::configure(s.as_deref(), host)),
    }
}

impl Jobs {
    /// Names of the jobs that run, in order.
    pub fn names(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.attributegen.is_some() {
            out.push(attributegen::FILTER_NAME);
        }
        if self.trace_tags.is_some() {
            out.push(trace_tags::FILTER_NAME);
        }
        if self.get_calls.is_some() {
            out.push(get_calls::FILTER_NAME);
        }
        out
    }

    /// Request headers.
    pub fn on_request<H: Host>(&self, host: &H, cache: &RequestCache) {
        cache.next_phase();
        let shared = CachingHost::new(host, cache);
        if let Some(a) = &self.attributegen {
            if a.runs_in(attributegen::config::Phase::OnRequest) {
                a.run(
                    attributegen::config::Phase::OnRequest,
                    &RequestView::new(&shared),
                );
            }
        }
        if let Some(t) = &self.trace_tags {
            t.on_request(&shared);
        }
    }

    /// Response headers.
    pub fn on_response<H: Host>(&self, host: &H, cache: &RequestCache) {
        if let Some(t) = &self.trace_tags {
            cache.next_phase();
            t.on_response(&CachingHost::new(host, cache));
        }
    }

    /// Log phase.
    pub fn on_log<H: Host>(&self, host: &H, cache: &RequestCache) {
        cache.next_phase();
        let shared = CachingHost::new(host, cache);
        if let Some(a) = &self.attributegen {
            if a.runs_in(attributegen::config::Phase::AfterResponse) {
                a.run(
                    attributegen::config::Phase::AfterResponse,
                    &RequestView::new(&shared),
                );
            }
        }
        if let Some(g) = &self.get_calls {
            g.run(&shared);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use filter_common::fake::FakeHost;

    #[test]
    fn sections_turn_jobs_on() {
        let host = FakeHost::new();
        let jobs = configure(
            Some(br#"{"attributegen":{"attributes":[]},"get_calls":null}"#),
            &host,
        );
        assert_eq!(jobs.names(), vec!["attributegen", "get_calls"]);
        assert!(configure(None, &host).names().is_empty());
    }

    #[test]
    fn unknown_sections_and_bad_json_are_reported() {
        let host = FakeHost::new();
        let jobs = configure(Some(br#"{"attributegen":{},"get_call":{}}"#), &host);
        assert_eq!(jobs.names(), vec!["attributegen"]);
        assert_eq!(host.metric(CONFIG_ERRORS), 1);
        let warn = host.logs_at_least(LogLevel::Warn);
        assert!(warn[0].contains("get_call: unknown section"), "{warn:?}");
        let jobs = configure(Some(b"{"), &host);
        assert!(jobs.names().is_empty());
        assert_eq!(host.metric(CONFIG_ERRORS), 2);
    }

    #[test]
    fn attributegen_output_reaches_later_jobs_in_memory() {
        let host = FakeHost::new();
        host.set_header(":method", b"GET");
        host.set_header(":path", b"/books");
        let jobs = configure(
            Some(br#"{"attributegen":{"attributes":[{"output_attribute":"istio_operationId","phase":"ON_REQUEST",
                "match":[{"value":"ListBooks","template":"GET /books"}]}]}}"#),
            &host,
        );
        let cache = RequestCache::default();
        jobs.on_request(&host, &cache);
        assert_eq!(host.attribute("istio_operationId").unwrap(), b"ListBooks");
        let shared = CachingHost::new(&host, &cache);
        assert_eq!(
            shared.property(&["istio_operationId"]).unwrap().unwrap(),
            b"ListBooks"
        );
        assert_eq!(cache.host_reads(), 2, "method and path, once each");
    }
}
