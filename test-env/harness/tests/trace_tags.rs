//! trace-tags through a real Envoy, asserted on the spans Envoy's Zipkin
//! (HTTP JSON) and OpenTelemetry (OTLP/HTTP) tracers send to the harness
//! collector: every tag kind, anti-spoofing, defaults, the attributegen
//! phase rule, and configuration errors that never break traffic.

use envoy_harness::{requires_envoy, Collector, Envoy, EnvoyVersion, Span, SpanFormat, Wasm};
use serde_json::{json, Value};

const CONFIG_ERRORS: &str = "wasmcustom.wasm_filter.trace_tags.type.config.error_count";
const HEADER_PREFIX: &str = "x-trace-tag-";

/// Tags of every source kind. `op_early` / `op_late` read what attributegen
/// writes with `ON_REQUEST` / `AFTER_RESPONSE`.
const TAGS: &str = r#"{
  "header_prefix": "x-trace-tag-",
  "tags": [
    {"name": "deployment", "literal": "canary", "baggage": true},
    {"name": "region", "environment": "REGION", "default": "unknown-region"},
    {"name": "zone", "environment": "ZONE", "default": "no-zone"},
    {"name": "tenant", "header": "x-tenant", "default": "anonymous", "baggage": true},
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

/// HCM custom tags of the `value` kind (reading filter state) exist from
/// Envoy 1.37 on; 1.36 rejects the bootstrap. False (and the test is
/// reported as skipped by version) before that.
fn value_custom_tags(test: &str) -> bool {
    requires_envoy(
        test,
        EnvoyVersion(1, 37, 0),
        "`value` custom tags read filter state",
    )
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

/// The W3C `baggage` header the upstream got for this request.
fn upstream_baggage(envoy: &Envoy, test_id: &str) -> Option<String> {
    let got = envoy.upstream().received();
    got.iter()
        .find(|r| r.header("x-test-id") == Some(test_id))
        .and_then(|r| r.header("baggage").map(str::to_string))
}

/// A tag in filter state only, its header never set by anyone: response-phase
/// tags (Envoy lets Wasm write request headers only on request headers), and
/// every tag without `header_prefix`.
fn assert_fs_only(span: &Span, name: &str, want: &str) {
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
    assert_fs_only(&span, "status_class", "client_error");
    assert_fs_only(&span, "status", "404");
    // attributegen ON_REQUEST reaches the span; AFTER_RESPONSE does not,
    // although it was written (the access log, after on_log, shows it).
    assert_eq!(span.tag("native.op_early"), Some("GetBook"));
    assert_eq!(span.tag("native.op_late"), None, "{span:#?}");
    let entry = envoy.access_log_entry(&resp).unwrap();
    assert_eq!(entry["attr.op_late"], "GetBookLate", "{entry}");
    assert_upstream_headers(&envoy, &resp.test_id, &request_tags);
    assert_eq!(
        upstream_baggage(&envoy, &resp.test_id).as_deref(),
        Some("deployment=canary,tenant=acme")
    );

    // 2. A client sending the owned headers (or baggage entries) sets no
    //    tag, and the upstream never sees its values.
    let resp = envoy
        .request("POST", "/books/7")
        .header("x-trace-tag-deployment", "spoofed")
        .header("x-trace-tag-route", "spoofed")
        .header("x-trace-tag-status_class", "spoofed")
        .header("x-trace-tag-status", "spoofed")
        .header("x-trace-tag-op_late", "spoofed")
        .header("baggage", "userId=alice,deployment=spoofed")
        .header("x-tenant", "acme")
        .upstream_status(503)
        .send()
        .unwrap();
    assert_eq!(resp.status, 503);
    let span = collector.span_of(&resp).unwrap();
    assert_tag(&span, "deployment", "canary");
    assert_tag(&span, "route", "POST /books/7");
    assert_tag(&span, "op_late", "none");
    assert_fs_only(&span, "status_class", "server_error");
    assert_fs_only(&span, "status", "503");
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
    // The client's other baggage passes; its entry under a tag's key does not.
    assert_eq!(
        upstream_baggage(&envoy, &resp.test_id).as_deref(),
        Some("userId=alice,deployment=canary,tenant=acme")
    );

    // 3. Missing sources give the defaults.
    let resp = envoy.request("GET", "/health").send().unwrap();
    assert_eq!(resp.status, 200);
    let span = collector.span_of(&resp).unwrap();
    assert_tag(&span, "tenant", "anonymous");
    assert_tag(&span, "zone", "no-zone");
    assert_tag(&span, "op_early", "none");
    assert_tag(&span, "op_late", "none");
    assert_fs_only(&span, "status_class", "ok");
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
fn zipkin_spans_carry_every_tag_kind_and_resist_spoofing() {
    if !value_custom_tags("trace_tags::zipkin_spans_carry_every_tag_kind_and_resist_spoofing") {
        return;
    }
    every_case(Tracer::Zipkin, SpanFormat::Zipkin);
}

#[test]
fn opentelemetry_spans_carry_every_tag_kind_and_resist_spoofing() {
    if !value_custom_tags(
        "trace_tags::opentelemetry_spans_carry_every_tag_kind_and_resist_spoofing",
    ) {
        return;
    }
    every_case(Tracer::OpenTelemetry, SpanFormat::Otlp);
}

/// Filter state only (the recommended wiring): no tag header at all reaches
/// the upstream, response-phase tags included, and the tags still arrive.
#[test]
fn filter_state_only_sends_nothing_upstream() {
    if !value_custom_tags("trace_tags::filter_state_only_sends_nothing_upstream") {
        return;
    }
    let collector = Collector::start().unwrap();
    let config = r#"{"tags":[
        {"name":"deployment","literal":"canary"},
        {"name":"status","phase":"RESPONSE","expression":"response.code","type":"INT"}]}"#;
    let envoy = start(Tracer::OpenTelemetry, &collector, config);
    let resp = envoy.request("GET", "/x").send().unwrap();
    let span = collector.span_of(&resp).unwrap();
    assert_fs_only(&span, "deployment", "canary");
    assert_fs_only(&span, "status", "200");
    assert_upstream_headers(&envoy, &resp.test_id, &[]);
}

/// A bad tag is logged once per VM naming the tag and the field, counted,
/// and skipped; the good tags and the traffic are unaffected.
#[test]
fn bad_configuration_never_breaks_traffic() {
    if !envoy_harness::requires_wasm(
        "bad_configuration_never_breaks_traffic",
        "a bad configuration runs and is counted; the dynamic module rejects it (tests/dynamic_module.rs)",
    ) {
        return;
    }
    if !value_custom_tags("trace_tags::bad_configuration_never_breaks_traffic") {
        return;
    }
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
    // +1 in each VM that loaded the configuration (the main thread's and
    // each worker's), however many problems it has: not 2 per VM.
    let n = envoy.stat(CONFIG_ERRORS).unwrap().unwrap_or(0);
    assert!((1..=3).contains(&n), "{CONFIG_ERRORS} = {n}");
}

fn manifest(name: &str) -> String {
    let path = envoy_harness::paths::workspace_root()
        .join("envoyfilter-manifests/trace-tags")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The shipped plain-Envoy snippets (`envoy-http-filter.yaml` and the
/// `tracing` block of `envoy-tracing.yaml`), collector address aside, put
/// every tag on the span.
#[test]
fn shipped_envoy_snippets_tag_the_span() {
    if !value_custom_tags("trace_tags::shipped_envoy_snippets_tag_the_span") {
        return;
    }
    let collector = Collector::start().unwrap();
    let filters: Vec<Value> = serde_yaml_ng::from_str(&manifest("envoy-http-filter.yaml").replace(
        "/etc/envoy/wasm",
        &envoy_harness::paths::wasm_dir().to_string_lossy(),
    ))
    .unwrap();
    let doc: Value = serde_yaml_ng::from_str(&manifest("envoy-tracing.yaml")).unwrap();
    let mut tracing = doc["tracing"].clone();
    let http_uri = &mut tracing["provider"]["typed_config"]["http_service"]["http_uri"];
    http_uri["uri"] = json!(format!("http://127.0.0.1:{}/v1/traces", collector.port()));
    let cluster = http_uri["cluster"].as_str().unwrap().to_string();
    let mut custom_tags = tracing["custom_tags"].as_array().unwrap().clone();
    custom_tags.push(json!({ "tag": "test_id", "request_header": { "name": "x-test-id" } }));
    tracing["custom_tags"] = Value::Array(custom_tags);

    let mut b = Envoy::builder().filter(
        Wasm::new("attributegen").config(
            r#"{"attributes":[{"output_attribute":"istio_operationId","phase":"ON_REQUEST",
                "match":[{"value":"GetBook","condition":"request.url_path.startsWith('/books/')"}]}]}"#,
        ),
    );
    for f in filters {
        b = b.filter(f);
    }
    let envoy = b
        .hcm("tracing", tracing)
        .cluster(json!({
            "name": cluster, "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": { "cluster_name": cluster, "endpoints": [{ "lb_endpoints": [
                { "endpoint": { "address": { "socket_address": {
                    "address": "127.0.0.1", "port_value": collector.port() } } } } ] }] } }))
        .runtime("tracing.opentelemetry.min_flush_spans", json!(1))
        .start()
        .unwrap();
    let resp = envoy
        .request("GET", "/books/1")
        .upstream_status(404)
        .send()
        .unwrap();
    let span = collector.span_of(&resp).unwrap();
    for (tag, want) in [
        ("team", "bookstore"),
        ("deployment", "canary"),
        ("tenant", "anonymous"),
        ("operation", "GetBook"),
        ("api_route", "GET /books/1"),
        ("response_class", "4xx"),
    ] {
        assert_eq!(span.tag(tag), Some(want), "{tag} in {span:#?}");
    }
}

/// Every trace-tags configuration shipped in the manifests (WasmPlugin
/// `pluginConfig`, `StringValue` configurations) compiles without a single
/// configuration error.
#[test]
fn shipped_configurations_are_valid() {
    use filter_common::fake::FakeHost;
    use filter_common::host::LogLevel;
    let dir = envoy_harness::paths::workspace_root().join("envoyfilter-manifests/trace-tags");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let doc: Value = serde::Deserialize::deserialize(doc).unwrap();
            let mut configs = Vec::new();
            if doc["kind"] == "WasmPlugin" {
                configs.push(doc["spec"]["pluginConfig"].to_string());
            }
            configs.extend(envoy_harness::string_value_configs(&doc));
            for raw in configs {
                let host = FakeHost::new();
                let plan = trace_tags::plan::configure(Some(raw.as_bytes()), &host);
                let warnings = host.logs_at_least(LogLevel::Warn);
                assert!(warnings.is_empty(), "{}: {warnings:?}", path.display());
                assert!(!plan.is_empty(), "{}", path.display());
                seen += 1;
            }
        }
    }
    assert!(seen >= 4, "{seen}");
}

/// Why a tag header cannot be kept from the upstream on Envoy 1.40 (the
/// README's table): removing it on the way upstream, by the route's
/// `request_headers_to_remove` or by an upstream HTTP filter, edits the very
/// header map the span reads when it is finished, so the tag is lost too. If
/// this test starts failing, Envoy changed and the design can be revisited.
#[test]
fn envoy_removes_a_header_for_upstream_and_span_alike() {
    use envoy_harness::Upstream;
    let config =
        r#"{"header_prefix":"x-trace-tag-","tags":[{"name":"deployment","literal":"canary"}]}"#;
    let header = "x-trace-tag-deployment";
    let endpoint = |name: &str, port: u16| {
        json!({ "name": name, "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": { "cluster_name": name, "endpoints": [{ "lb_endpoints": [
                { "endpoint": { "address": { "socket_address": {
                    "address": "127.0.0.1", "port_value": port } } } } ] }] } })
    };
    for how in ["none", "route", "upstream_filter"] {
        let collector = Collector::start().unwrap();
        let upstream = Upstream::start().unwrap();
        let mut cluster = endpoint("own", upstream.port());
        let mut route = json!({ "match": { "prefix": "/" }, "route": { "cluster": "own" } });
        match how {
            "route" => route["request_headers_to_remove"] = json!([header]),
            "upstream_filter" => {
                cluster["typed_extension_protocol_options"] = json!({
                    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                        "explicit_http_config": { "http_protocol_options": {} },
                        "http_filters": [
                            { "name": "strip", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
                                "mutations": { "request_mutations": [ { "remove": header } ] } } },
                            { "name": "envoy.filters.http.upstream_codec", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec" } } ] } })
            }
            _ => {}
        }
        let envoy = Envoy::builder()
            .filter(Wasm::new("trace_tags").config(config))
            .cluster(cluster)
            .hcm(
                "route_config",
                json!({ "name": "local", "virtual_hosts": [
                    { "name": "all", "domains": ["*"], "routes": [route] } ] }),
            )
            .zipkin_tracing(
                collector.port(),
                json!([{ "tag": "hdr", "request_header": { "name": header } }]),
            )
            .start()
            .unwrap();
        let resp = envoy.request("GET", "/x").send().unwrap();
        let span = collector.span_of(&resp).unwrap();
        let got = upstream.received();
        let at_upstream = got.first().and_then(|r| r.header(header));
        if how == "none" {
            assert_eq!(span.tag("hdr"), Some("canary"), "{how}");
            assert_eq!(at_upstream, Some("canary"), "{how}");
        } else {
            assert_eq!(span.tag("hdr"), None, "{how}: {span:#?}");
            assert_eq!(at_upstream, None, "{how}");
        }
    }
}
