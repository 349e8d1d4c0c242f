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
//! get-calls) in one [`Pipeline`], sharing its read cache: each host property or header is
//! read at most once per request, and attributegen's output reaches the
//! others in memory (it is still written to filter state for Envoy).

use filter_common::config::{ConfigError, ConfigSource};
use filter_common::diagnostics::Diagnostics;
use filter_common::host::Host;
use filter_common::job::Job;
use filter_common::pipeline::Pipeline;
use serde_json::Value;

#[cfg(all(target_arch = "wasm32", not(test)))]
mod filter;

/// Name used in logs and metric names.
pub const FILTER_NAME: &str = "telemetry_bundle";
/// Counter of configuration problems in the bundle's own document.
pub const CONFIG_ERRORS: &str = "wasm_filter.telemetry_bundle.type.config.error_count";

/// Parses the document and configures each job with its section. Problems
/// in a section are the job's own (logged and counted under its name);
/// problems in the document itself are logged under the bundle's name and
/// count once ([`filter_common::diagnostics`]). Never fails.
pub fn configure<H: Host + 'static>(raw: Option<&[u8]>, host: &H) -> Pipeline<H> {
    match raw.filter(|r| !r.iter().all(u8::is_ascii_whitespace)) {
        None => configure_with(Ok(&Value::Null), host),
        Some(bytes) => match serde_json::from_slice::<Value>(bytes) {
            Ok(doc) => configure_with(Ok(&doc), host),
            Err(e) => configure_with(
                Err(ConfigError::new("$", format!("invalid JSON: {e}"))),
                host,
            ),
        },
    }
}

/// [`configure`] of a document already parsed (`null`: no job).
pub fn configure_value<H: Host + 'static>(doc: &Value, host: &H) -> Pipeline<H> {
    configure_with(Ok(doc), host)
}

fn configure_with<H: Host + 'static>(doc: Result<&Value, ConfigError>, host: &H) -> Pipeline<H> {
    let diagnostics = Diagnostics::config_only(host, FILTER_NAME);
    let mut problems = 0;
    let mut fail = |e: ConfigError| {
        diagnostics.config_error(host, &e);
        problems += 1;
    };
    let empty = serde_json::Map::new();
    let doc = match doc {
        Ok(Value::Object(m)) => m,
        Ok(Value::Null) => &empty,
        Ok(_) => {
            fail(ConfigError::new(
                "$",
                "expected a JSON object with sections attributegen, get_calls, trace_tags",
            ));
            &empty
        }
        Err(e) => {
            fail(e);
            &empty
        }
    };
    for key in doc.keys() {
        if !matches!(key.as_str(), "attributegen" | "get_calls" | "trace_tags") {
            fail(ConfigError::new(
                key.clone(),
                "unknown section (expected attributegen, get_calls or trace_tags); ignored",
            ));
        }
    }
    diagnostics.count_configuration(host, problems);
    // The order of the separate filters' chain.
    let mut jobs: Vec<Box<dyn Job<H>>> = Vec::new();
    // Each job deserializes its section of the parsed document.
    if let Some(s) = doc.get("attributegen") {
        jobs.push(Box::new(attributegen::plan::configure_source(
            ConfigSource::Section(s),
            host,
        )));
    }
    if let Some(s) = doc.get("trace_tags") {
        jobs.push(Box::new(trace_tags::plan::configure_source(
            ConfigSource::Section(s),
            host,
        )));
    }
    if let Some(s) = doc.get("get_calls") {
        jobs.push(Box::new(get_calls::plan::configure_source(
            ConfigSource::Section(s),
            host,
        )));
    }
    Pipeline::new(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use filter_common::fake::FakeHost;
    use filter_common::host::LogLevel;
    use filter_common::job::Phase;
    use filter_common::shared_reads::{CachingHost, RequestCache};

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
        jobs.run(Phase::RequestHeaders, &host, &cache);
        assert_eq!(host.attribute("istio_operationId").unwrap(), b"ListBooks");
        let shared = CachingHost::new(&host, &cache);
        assert_eq!(
            shared.property(&["istio_operationId"]).unwrap().unwrap(),
            b"ListBooks"
        );
        assert_eq!(cache.host_reads(), 2, "method and path, once each");
    }

    #[test]
    fn one_request_through_all_three_jobs_in_chain_order() {
        let host = FakeHost::new();
        host.set_header(":method", b"GET");
        host.set_header(":path", b"/books");
        let jobs = configure(
            Some(
                br#"{"attributegen":{"attributes":[
                    {"output_attribute":"istio_operationId","phase":"ON_REQUEST",
                     "match":[{"value":"ListBooks","template":"GET /books"}]},
                    {"output_attribute":"late","match":[{"value":"Done","template":"GET /books"}]}]},
                  "trace_tags":{"tags":[
                    {"name":"op","attribute":"wasm.istio_operationId","phase":"RESPONSE"}]},
                  "get_calls":{"metrics":[{"name":"calls","dimensions":{"op":"istio_operationId"}}]}}"#,
            ),
            &host,
        );
        assert_eq!(
            jobs.names(),
            vec!["attributegen", "trace_tags", "get_calls"],
            "the separate filters' chain order"
        );
        let cache = RequestCache::default();
        jobs.run(Phase::RequestHeaders, &host, &cache);
        assert_eq!(host.attribute("istio_operationId").unwrap(), b"ListBooks");
        assert_eq!(
            host.attribute("late"),
            None,
            "AFTER_RESPONSE waits for the log phase"
        );
        assert_eq!(host.attribute("trace_tag.op"), None, "a RESPONSE tag waits");
        jobs.run(Phase::ResponseHeaders, &host, &cache);
        assert_eq!(host.attribute("trace_tag.op").unwrap(), b"ListBooks");
        jobs.run(Phase::Log, &host, &cache);
        assert_eq!(host.attribute("late").unwrap(), b"Done");
        assert_eq!(host.metric("op=.=ListBooks;.;calls"), 1);
        assert_eq!(
            cache.host_reads(),
            2,
            "method and path once each; attributegen's output is read in memory"
        );
    }
}
