//! trace-tags through a real Envoy, asserted on the spans Envoy's Zipkin
//! (HTTP JSON) and OpenTelemetry (OTLP/HTTP) tracers send to the harness
//! collector: every tag kind, anti-spoofing, defaults, the attributegen
//! phase rule, and configuration errors that never break traffic.

use envoy_harness::{Collector, Envoy, Span, SpanFormat, Wasm};
use serde_json::{json, Value};

const CONFIG_ERRORS: &str = "wasmcustom.wasm_filter.trace_tags.type.config.error_count";
const HEADER_PREFIX: &str = "x-trace-tag-";

/// Tags of every source kind. `op_early` / `op_late` read what attributegen
/// writes with `ON_REQUEST` / `AFTER_RESPONSE`.
const TAGS: &str = r#"{
  "header_prefix": "x-trace-tag-",
  "tags": [
    {"name": "deployment", "literal": "canary"},
    {"name": "region", "environment": "REGION", "default": "unknown-region"},
    {"name": "zone", "environment": "ZONE", "default": "no-zone"},
    {"name": "tenant", "header": "x-tenant", "default": "anonymous"},
    {"name": "route", "expression": "request.method + ' ' + request.url_path"},
    {"name": "status_class", "phase": "RESPONSE",
     "expression": "response.code >= 500 ? 'server_error' : response.code >= 400 ? 'client_error' : 'ok'"},
    {"name": "status", "phase": "RESPONSE", "expression": "response.code", "type": "INT"},
    {"name": "op_early", "attribute": "wasm.op_early", "default": "none"},
    {"name": "op_late", "attribute": "wasm.op_late", "default": "none"}
  ]
}"#;

const NAMES: [&str; 9] = [
    "deployment",
    "region",
    "zone",
    "tenant",
    "route",
    "status_class",
    "status",
    "op_early",
    "op_late",
];

/// attributegen before trace-tags: one value on request headers, one in
/// `on_log` (after the span is finished).
const ATTRIBUTEGEN: &str = r#"{"attributes":[
  {"output_attribute":"op_early","phase":"ON_REQUEST",
   "match":[{"value":"GetBook","condition":"request.url_path.startsWith('/books/')"}]},
  {"output_attribute":"op_late","phase":"AFTER_RESPONSE",
   "match":[{"value":"GetBookLate","condition":"request.url_path.startsWith('/books/')"}]}]}"#;

/// HCM custom tags reading every trace-tags output both ways (`fs.<name>`
/// from filter state, `hdr.<name>` from the request header), plus
/// attributegen's own values read natively.
fn custom_tags() -> Value {
    let mut tags = Vec::new();
    for n in NAMES {
        tags.push(json!({ "tag": format!("fs.{n}"),
                          "value": format!("%FILTER_STATE(wasm.trace_tag.{n}:PLAIN)%") }));
        tags.push(json!({ "tag": format!("hdr.{n}"),
                          "request_header": { "name": format!("{HEADER_PREFIX}{n}") } }));
    }
    tags.push(json!({ "tag": "native.op_early", "value": "%FILTER_STATE(wasm.op_early:PLAIN)%" }));
    tags.push(json!({ "tag": "native.op_late", "value": "%FILTER_STATE(wasm.op_late:PLAIN)%" }));
    Value::Array(tags)
}

#[derive(Clone, Copy)]
enum Tracer {
    Zipkin,
    OpenTelemetry,
}

fn start(tracer: Tracer, collector: &Collector, config: &str) -> Envoy {
    let b = Envoy::builder()
        .filter(Wasm::new("attributegen").config(ATTRIBUTEGEN))
        .filter(
            Wasm::new("trace_tags")
                .config(config)
                .env("REGION", "eu-west-1"),
        )
        .log_attribute("op_late");
    match tracer {
        Tracer::Zipkin => b.zipkin_tracing(collector.port(), custom_tags()),
        Tracer::OpenTelemetry => b.opentelemetry_tracing(collector.port(), custom_tags()),
    }
    .start()
    .unwrap()
}

/// Both views of a request-phase tag (filter state and header) carry `want`.
fn assert_tag(span: &Span, name: &str, want: &str) {
    for view in ["fs", "hdr"] {
        assert_eq!(
            span.tag(&format!("{view}.{name}")),
            Some(want),
            "{view}.{name} in {span:#?}"
        );
    }
}

/// A response-phase tag: in filter state only (Envoy lets Wasm write request
/// headers only on request headers), and its header never set by anyone.
fn assert_response_tag(span: &Span, name: &str, want: &str) {
    assert_eq!(span.tag(&format!("fs.{name}")), Some(want), "{span:#?}");
    assert_eq!(span.tag(&format!("hdr.{name}")), None, "{span:#?}");
}

/// The owned headers the upstream got for this request: exactly the
/// request-phase tags with the filter's values (never a client's value, never
/// a response-phase tag).
fn assert_upstream_headers(envoy: &Envoy, test_id: &str, want: &[(&str, &str)]) {
    let got = envoy.upstream().received();
    let req = got
        .iter()
        .find(|r| r.header("x-test-id") == Some(test_id))
        .expect("upstream got the request");
    let mut owned: Vec<(String, String)> = req
        .headers
        .iter()
        .filter(|(n, _)| n.starts_with(HEADER_PREFIX))
        .cloned()
        .collect();
    owned.sort();
    let mut want: Vec<(String, String)> = want
        .iter()
        .map(|(n, v)| (format!("{HEADER_PREFIX}{n}"), v.to_string()))
        .collect();
    want.sort();
    assert_eq!(owned, want, "owned headers at the upstream");
}

fn every_case(tracer: Tracer, format: SpanFormat) {
    let collector = Collector::start().unwrap();
    let envoy = start(tracer, &collector, TAGS);

    // 1. Every source kind.
    let resp = envoy
        .request("GET", "/books/42?x=1")
        .header("x-tenant", "acme")
        .upstream_status(404)
        .send()
        .unwrap();
    assert_eq!(resp.status, 404);
    let span = collector.span_of(&resp).unwrap();
    assert_eq!(span.format, format);
    let request_tags = [
        ("deployment", "canary"),
        ("region", "eu-west-1"),
        ("zone", "no-zone"),
        ("tenant", "acme"),
        ("route", "GET /books/42"),
        ("op_early", "GetBook"),
        ("op_late", "none"),
    ];
    for (n, v) in request_tags {
        assert_tag(&span, n, v);
    }
    assert_response_tag(&span, "status_class", "client_error");
    assert_response_tag(&span, "status", "404");
    // attributegen ON_REQUEST reaches the span; AFTER_RESPONSE does not,
    // although it was written (the access log, after on_log, shows it).
    assert_eq!(span.tag("native.op_early"), Some("GetBook"));
    assert_eq!(span.tag("native.op_late"), None, "{span:#?}");
    let entry = envoy.access_log_entry(&resp).unwrap();
    assert_eq!(entry["attr.op_late"], "GetBookLate", "{entry}");
    assert_upstream_headers(&envoy, &resp.test_id, &request_tags);

    // 2. A client sending the owned headers sets no tag, and the upstream
    //    never sees its values.
    let resp = envoy
        .request("POST", "/books/7")
        .header("x-trace-tag-deployment", "spoofed")
        .header("x-trace-tag-route", "spoofed")
        .header("x-trace-tag-status_class", "spoofed")
        .header("x-trace-tag-status", "spoofed")
        .header("x-trace-tag-op_late", "spoofed")
        .header("x-tenant", "acme")
        .upstream_status(503)
        .send()
        .unwrap();
    assert_eq!(resp.status, 503);
    let span = collector.span_of(&resp).unwrap();
    assert_tag(&span, "deployment", "canary");
    assert_tag(&span, "route", "POST /books/7");
    assert_tag(&span, "op_late", "none");
    assert_response_tag(&span, "status_class", "server_error");
    assert_response_tag(&span, "status", "503");
    assert!(
        span.tags.values().all(|v| v != "spoofed"),
        "a spoofed value became a tag: {span:#?}"
    );
    assert_upstream_headers(
        &envoy,
        &resp.test_id,
        &[
            ("deployment", "canary"),
            ("region", "eu-west-1"),
            ("zone", "no-zone"),
            ("tenant", "acme"),
            ("route", "POST /books/7"),
            ("op_early", "GetBook"),
            ("op_late", "none"),
        ],
    );

    // 3. Missing sources give the defaults.
    let resp = envoy.request("GET", "/health").send().unwrap();
    assert_eq!(resp.status, 200);
    let span = collector.span_of(&resp).unwrap();
    assert_tag(&span, "tenant", "anonymous");
    assert_tag(&span, "zone", "no-zone");
    assert_tag(&span, "op_early", "none");
    assert_tag(&span, "op_late", "none");
    assert_response_tag(&span, "status_class", "ok");
    assert_eq!(span.tag("native.op_early"), None);

    assert!(collector.errors().is_empty(), "{:?}", collector.errors());
    let problems: Vec<_> = envoy
        .wasm_log_lines()
        .into_iter()
        .filter(|l| l.contains("trace_tags") && l.to_lowercase().contains("error"))
        .collect();
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn zipkin_spans_carry_every_tag_kind_without_spoofing_or_leaks() {
    every_case(Tracer::Zipkin, SpanFormat::Zipkin);
}

#[test]
fn opentelemetry_spans_carry_every_tag_kind_without_spoofing_or_leaks() {
    every_case(Tracer::OpenTelemetry, SpanFormat::Otlp);
}

/// Filter state only (the recommended wiring): no tag header at all reaches
/// the upstream, response-phase tags included, and the tags still arrive.
#[test]
fn filter_state_only_sends_nothing_upstream() {
    let collector = Collector::start().unwrap();
    let config = r#"{"tags":[
        {"name":"deployment","literal":"canary"},
        {"name":"status","phase":"RESPONSE","expression":"response.code","type":"INT"}]}"#;
    let envoy = start(Tracer::OpenTelemetry, &collector, config);
    let resp = envoy.request("GET", "/x").send().unwrap();
    let span = collector.span_of(&resp).unwrap();
    assert_response_tag(&span, "deployment", "canary");
    assert_response_tag(&span, "status", "200");
    assert_upstream_headers(&envoy, &resp.test_id, &[]);
}

/// A bad tag is logged once per VM naming the tag and the field, counted,
/// and skipped; the good tags and the traffic are unaffected.
#[test]
fn bad_configuration_never_breaks_traffic() {
    let collector = Collector::start().unwrap();
    let config = r#"{"tags":[
        {"name":"deployment","literal":"canary"},
        {"name":"broken","expression":"request.path +"},
        {"name":"two","literal":"a","header":"x-a"}]}"#;
    let envoy = start(Tracer::Zipkin, &collector, config);
    let resp = envoy.request("GET", "/x").send().unwrap();
    assert_eq!(resp.status, 200);
    let span = collector.span_of(&resp).unwrap();
    assert_eq!(span.tag("fs.deployment"), Some("canary"));
    assert_eq!(span.tag("fs.broken"), None);
    let lines = envoy.wasm_log_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("tags[1] (\"broken\").expression: CEL expression")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("tags[2] (\"two\").source: has more than one")),
        "{lines:#?}"
    );
    // Two errors in each VM (main thread and one worker).
    let n = envoy.stat(CONFIG_ERRORS).unwrap().unwrap_or(0);
    assert!(n >= 2 && n % 2 == 0, "{CONFIG_ERRORS} = {n}");
}
