//! HTTP/2 and gRPC through a real Envoy, as mesh traffic between sidecars
//! is: HTTP/2 downstream (h2c with prior knowledge, and ALPN `h2` over TLS
//! behind a `tls_inspector`), an h2c gRPC upstream answering with the status
//! in trailers or trailers-only, a server-streaming call held open while
//! other calls flow, client resets (RST_STREAM), Istio's `grpc_status`
//! vector, and hostile HTTP/2 inputs. Operation ids, get-calls counts and
//! span tags must be the same as for the same requests over HTTP/1.1.

use envoy_harness::grpc_upstream::{
    grpc_frame, GRPC_HOLD_HEADER, GRPC_MESSAGES_HEADER, GRPC_SHAPE_HEADER, GRPC_STATUS_HEADER,
};
use envoy_harness::prometheus::family;
use envoy_harness::tls::TestPki;
use envoy_harness::{Collector, Envoy, GrpcUpstream, H2Client, H2Request, H2Response, Wasm};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Operation ids by route template, gRPC paths included
/// (`/package.Service/Method`), on request headers so spans see them; the
/// gRPC status classified after the response (trailers included).
const ATTRIBUTEGEN: &str = r#"{"attributes":[
  {"output_attribute":"istio_operationId","phase":"ON_REQUEST","match":[
    {"value":"SayHello","template":"POST /helloworld.Greeter/SayHello"},
    {"value":"GreeterOther","template":"POST /helloworld.Greeter/{method}"},
    {"value":"ListFeatures","template":"POST /routeguide.RouteGuide/ListFeatures"},
    {"value":"ListBooks","template":"GET /books"},
    {"value":"GetBook","template":"GET /books/{id}"}]},
  {"output_attribute":"istio_grpcResponseStatus","match":[
    {"value":"OK","condition":"response.grpc_status == 0"},
    {"value":"NOT_FOUND","condition":"response.grpc_status == 5"},
    {"value":"UNAVAILABLE","condition":"response.grpc_status == 14"},
    {"value":"OTHER","condition":""}]}]}"#;

/// Every request counted (gRPC calls are POSTs), by operation, HTTP code
/// and gRPC status as Envoy reports them in the log phase.
const GET_CALLS: &str = r#"{"metrics":[{"name":"rpc_calls","type":"COUNTER","dimensions":{
  "request_operation":"istio_operationId",
  "response_code":"string(response.code)",
  "grpc_status":"string(response.grpc_status)"}}]}"#;

const LABELS: [&str; 3] = ["grpc_status", "request_operation", "response_code"];

/// Span tags: attributegen's operation, a client header, and two values of
/// the response headers (the last moment a tag can be written).
const TRACE_TAGS: &str = r#"{"tags":[
  {"name":"operation","attribute":"wasm.istio_operationId","default":"none"},
  {"name":"tenant","header":"x-tenant","default":"anonymous"},
  {"name":"status_class","phase":"RESPONSE",
   "expression":"response.code >= 500 ? '5xx' : response.code >= 400 ? '4xx' : 'ok'"},
  {"name":"grpc_status","phase":"RESPONSE","expression":"string(response.grpc_status)"}]}"#;

const TAGS: [&str; 4] = ["operation", "tenant", "status_class", "grpc_status"];

/// The heartbeats of the modules that run the three filters (one: the
/// bundle's, with `TELEMETRY_BUNDLE=1`).
fn heartbeats() -> Vec<String> {
    let mut names: Vec<String> = ["attributegen", "trace_tags", "get_calls"]
        .map(envoy_harness::heartbeat_stat)
        .into();
    names.dedup();
    names
}

const RUNTIME_ERRORS: [&str; 3] = [
    "wasmcustom.wasm_filter.attributegen.type.runtime.error_count",
    "wasmcustom.wasm_filter.trace_tags.type.runtime.error_count",
    "wasmcustom.wasm_filter.get_calls.type.runtime.error_count",
];

/// A running setup: the gRPC upstream, Envoy with the three filters in
/// front of it, optionally a span collector and TLS.
struct Setup {
    envoy: Envoy,
    upstream: GrpcUpstream,
    collector: Option<Collector>,
    pki: Option<TestPki>,
}

fn start(attributegen: &str, tracing: bool, tls: bool) -> Setup {
    let upstream = GrpcUpstream::start().unwrap();
    let collector = tracing.then(|| Collector::start().unwrap());
    let pki = tls.then(|| TestPki::new().unwrap());
    let mut b = Envoy::builder()
        .concurrency(2)
        .exact_balance()
        .upstream_h2c(upstream.port())
        .filter(Wasm::new("attributegen").config(attributegen))
        .filter(Wasm::new("trace_tags").config(TRACE_TAGS))
        .filter(Wasm::new("get_calls").config(GET_CALLS))
        .log_attribute("istio_operationId")
        .log_attribute("istio_grpcResponseStatus")
        .log_attribute("istio_responseClass")
        .log_field("protocol", "%PROTOCOL%")
        .log_field("grpc_status", "%GRPC_STATUS_NUMBER%")
        .log_field("flags", "%RESPONSE_FLAGS%")
        .log_field("tls", "%DOWNSTREAM_TLS_VERSION%");
    for l in LABELS {
        b = b.stats_tag(l, &format!(r"({l}=\.=(.*?);\.;)"));
    }
    if let Some(c) = &collector {
        let tags: Vec<Value> = TAGS
            .iter()
            .map(|t| json!({ "tag": format!("fs.{t}"), "value": format!("%FILTER_STATE(wasm.trace_tag.{t}:PLAIN)%") }))
            .collect();
        b = b.zipkin_tracing(c.port(), Value::Array(tags));
    }
    if let Some(p) = &pki {
        b = b.downstream_tls(p.server_cert_pem(), p.server_key_pem());
    }
    Setup {
        envoy: b.start().unwrap(),
        upstream,
        collector,
        pki,
    }
}

/// `rpc_calls` series: (grpc_status, request_operation, response_code) → count.
type Counts = BTreeMap<(String, String, String), u64>;

fn counts(envoy: &Envoy) -> Counts {
    family(&envoy.prometheus().unwrap(), "rpc_calls")
        .into_iter()
        .map(|(l, v)| {
            let get = |k: &str| l.get(k).cloned().unwrap_or_default();
            (
                (
                    get("grpc_status"),
                    get("request_operation"),
                    get("response_code"),
                ),
                v as u64,
            )
        })
        .collect()
}

fn delta(after: &Counts, before: &Counts) -> Counts {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v - before.get(k).copied().unwrap_or(0);
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

fn key(grpc: &str, op: &str, code: &str) -> (String, String, String) {
    (grpc.to_string(), op.to_string(), code.to_string())
}

fn stat(envoy: &Envoy, name: &str) -> u64 {
    envoy.stat(name).unwrap().unwrap_or(0)
}

/// No VM trapped or failed a request: no critical Wasm line, no panic, no
/// stream failed by a filter.
fn assert_no_trap(envoy: &Envoy) {
    let log = envoy.log();
    for bad in ["[critical][wasm]", "panicked at", "wasm_fail_stream"] {
        assert!(!log.contains(bad), "{bad} in Envoy's log");
    }
    assert!(envoy
        .access_log()
        .iter()
        .all(|e| e["details"] != "wasm_fail_stream"));
}

/// No VM trapped, and no filter counted a runtime error.
fn assert_vms_healthy(envoy: &Envoy) {
    assert_no_trap(envoy);
    for e in RUNTIME_ERRORS {
        assert_eq!(stat(envoy, e), 0, "{e}");
    }
}

/// One kind of request of the comparison: what it asks for and what each
/// filter must make of it.
struct Call {
    method: &'static str,
    path: &'static str,
    /// (grpc-status, trailers-only, messages) for a gRPC call.
    grpc: Option<(u8, bool, u8)>,
    /// The upstream's HTTP status for a plain request.
    http_status: u16,
    operation: &'static str,
    grpc_class: &'static str,
    /// `response.grpc_status` in the log phase (trailers included).
    grpc_status: &'static str,
    /// `response.grpc_status` on response headers (span tag).
    grpc_status_on_headers: &'static str,
}

const CALLS: [Call; 9] = [
    Call {
        method: "GET",
        path: "/books",
        grpc: None,
        http_status: 200,
        operation: "ListBooks",
        grpc_class: "OTHER",
        grpc_status: "2",
        grpc_status_on_headers: "2",
    },
    Call {
        method: "GET",
        path: "/books/7",
        grpc: None,
        http_status: 404,
        operation: "GetBook",
        grpc_class: "OTHER",
        grpc_status: "12",
        grpc_status_on_headers: "12",
    },
    Call {
        method: "GET",
        path: "/books/8",
        grpc: None,
        http_status: 503,
        operation: "GetBook",
        grpc_class: "UNAVAILABLE",
        grpc_status: "14",
        grpc_status_on_headers: "14",
    },
    Call {
        method: "POST",
        path: "/helloworld.Greeter/SayHello",
        grpc: Some((0, false, 1)),
        http_status: 200,
        operation: "SayHello",
        grpc_class: "OK",
        grpc_status: "0",
        grpc_status_on_headers: "2",
    },
    Call {
        method: "POST",
        path: "/helloworld.Greeter/SayHello",
        grpc: Some((5, false, 1)),
        http_status: 200,
        operation: "SayHello",
        grpc_class: "NOT_FOUND",
        grpc_status: "5",
        grpc_status_on_headers: "2",
    },
    Call {
        method: "POST",
        path: "/helloworld.Greeter/SayHello",
        grpc: Some((0, true, 0)),
        http_status: 200,
        operation: "SayHello",
        grpc_class: "OK",
        grpc_status: "0",
        grpc_status_on_headers: "0",
    },
    Call {
        method: "POST",
        path: "/helloworld.Greeter/SayHello",
        grpc: Some((14, true, 0)),
        http_status: 200,
        operation: "SayHello",
        grpc_class: "UNAVAILABLE",
        grpc_status: "14",
        grpc_status_on_headers: "14",
    },
    Call {
        method: "POST",
        path: "/helloworld.Greeter/SayGoodbye",
        grpc: Some((0, false, 1)),
        http_status: 200,
        operation: "GreeterOther",
        grpc_class: "OK",
        grpc_status: "0",
        grpc_status_on_headers: "2",
    },
    Call {
        method: "POST",
        path: "/routeguide.RouteGuide/ListFeatures",
        grpc: Some((0, false, 3)),
        http_status: 200,
        operation: "ListFeatures",
        grpc_class: "OK",
        grpc_status: "0",
        grpc_status_on_headers: "2",
    },
];

/// The headers (besides `x-test-id`) and body of a call.
fn call_headers(c: &Call) -> (Vec<(String, String)>, Vec<u8>) {
    let mut h = vec![("x-tenant".to_string(), "acme".to_string())];
    match c.grpc {
        Some((status, trailers_only, messages)) => {
            h.push(("content-type".into(), "application/grpc".into()));
            h.push(("te".into(), "trailers".into()));
            h.push((GRPC_STATUS_HEADER.into(), status.to_string()));
            if trailers_only {
                h.push((GRPC_SHAPE_HEADER.into(), "trailers-only".into()));
            }
            h.push((GRPC_MESSAGES_HEADER.into(), messages.to_string()));
            (h, grpc_frame(b"request"))
        }
        None => {
            h.push(("x-upstream-status".into(), c.http_status.to_string()));
            (h, Vec::new())
        }
    }
}

fn h2_request(c: &Call) -> H2Request {
    let (headers, body) = call_headers(c);
    let mut r = H2Request::new(c.method, c.path).body(body);
    for (k, v) in headers {
        r = r.header(&k, &v);
    }
    r
}

/// Sends a call over HTTP/1.1 (ureq); returns (status, test id).
fn http1(port: u16, c: &Call, test_id: &str) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let (headers, body) = call_headers(c);
    let mut req = ureq::http::Request::builder()
        .method(c.method)
        .uri(format!("http://127.0.0.1:{port}{}", c.path))
        .header("x-test-id", test_id);
    for (k, v) in &headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let mut resp = agent.run(req.body(body).unwrap()).unwrap();
    let _ = resp.body_mut().read_to_vec();
    resp.status().as_u16()
}

/// What the filters made of one request: access-log fields and span tags,
/// by name.
type Observed = BTreeMap<String, String>;

/// What the filters made of one request (see [`Observed`]).
fn observed(s: &Setup, test_id: &str) -> Observed {
    let e = s.envoy.access_log_entry_for(test_id).unwrap();
    let mut out = BTreeMap::new();
    for f in [
        "code",
        "grpc_status",
        "attr.istio_operationId",
        "cel.istio_operationId",
        "attr.istio_grpcResponseStatus",
    ] {
        out.insert(f.to_string(), text(&e[f]));
    }
    if let Some(c) = &s.collector {
        let span = c
            .wait_for_tag(
                envoy_harness::collector::TEST_ID_TAG,
                test_id,
                Duration::from_secs(10),
            )
            .unwrap();
        for t in TAGS {
            let k = format!("fs.{t}");
            out.insert(k.clone(), span.tag(&k).unwrap_or("").to_string());
        }
    }
    out
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The same nine kinds of requests (plain GETs and gRPC calls: status in
/// trailers, trailers-only, server-streaming), twice each, over HTTP/1.1,
/// h2c and ALPN h2 over TLS: get-calls counts, attributegen's values and
/// the span tags are the same for each protocol, and what they should be.
#[test]
fn same_telemetry_over_http1_h2c_and_h2_over_tls() {
    let s = start(ATTRIBUTEGEN, true, true);
    let port = s.envoy.port();
    let h2c = H2Client::h2c(port).unwrap();
    let tls = H2Client::tls(port, s.pki.as_ref().unwrap()).unwrap();
    assert_eq!(tls.alpn(), Some(&b"h2"[..]));
    const ROUNDS: usize = 2;

    let mut per_protocol: Vec<(&str, Counts, Vec<Observed>)> = Vec::new();
    for protocol in ["HTTP/1.1", "h2c", "h2 (TLS)"] {
        let before = counts(&s.envoy);
        let mut ids = Vec::new();
        for _ in 0..ROUNDS {
            for c in &CALLS {
                let (status, id, grpc) = match protocol {
                    "HTTP/1.1" => {
                        let id = format!("h1-{}", ids.len());
                        (http1(port, c, &id), id, None)
                    }
                    _ => {
                        let client = if protocol == "h2c" { &h2c } else { &tls };
                        let r: H2Response = client.send(h2_request(c)).unwrap();
                        let grpc = r.grpc_status().map(str::to_string);
                        (r.status, r.test_id, grpc)
                    }
                };
                assert_eq!(status, c.http_status, "{protocol} {} {}", c.method, c.path);
                if let (Some((want, _, _)), Some(got)) = (c.grpc, &grpc) {
                    assert_eq!(got, &want.to_string(), "{protocol} {}", c.path);
                }
                if protocol != "HTTP/1.1" && c.grpc.is_some() {
                    assert!(grpc.is_some(), "{protocol} {}: no grpc-status", c.path);
                }
                ids.push(id);
            }
        }
        let entries: Vec<_> = ids.iter().map(|id| observed(&s, id)).collect();
        // Counters are read after the access-log lines exist (on_log has run).
        let d = delta(&counts(&s.envoy), &before);
        // Envoy saw the protocol the client spoke.
        for id in &ids {
            let e = s.envoy.access_log_entry_for(id).unwrap();
            let (want_proto, want_tls) = match protocol {
                "HTTP/1.1" => ("HTTP/1.1", false),
                "h2c" => ("HTTP/2", false),
                _ => ("HTTP/2", true),
            };
            assert_eq!(e["protocol"], want_proto, "{protocol}");
            assert_eq!(
                e["tls"].as_str().is_some_and(|t| t.starts_with("TLSv")),
                want_tls,
                "{e}"
            );
        }
        per_protocol.push((protocol, d, entries));
    }

    let mut report = Vec::new();
    // Each protocol: exactly what the calls should produce.
    for (protocol, d, entries) in &per_protocol {
        let mut want = Counts::new();
        for c in &CALLS {
            *want
                .entry(key(c.grpc_status, c.operation, &c.http_status.to_string()))
                .or_default() += ROUNDS as u64;
        }
        assert_eq!(d, &want, "get-calls over {protocol}");
        for (i, e) in entries.iter().enumerate() {
            let c = &CALLS[i % CALLS.len()];
            let what = format!("{protocol} {} {} {:?}", c.method, c.path, c.grpc);
            assert_eq!(e["attr.istio_operationId"], c.operation, "{what}");
            assert_eq!(e["cel.istio_operationId"], c.operation, "{what}");
            assert_eq!(e["attr.istio_grpcResponseStatus"], c.grpc_class, "{what}");
            // %GRPC_STATUS_NUMBER% only for gRPC requests; the CEL
            // attribute (get-calls' label) maps any HTTP code.
            let logged = if c.grpc.is_some() { c.grpc_status } else { "" };
            assert_eq!(e["grpc_status"], logged, "{what}");
            assert_eq!(e["fs.operation"], c.operation, "{what}");
            assert_eq!(e["fs.tenant"], "acme", "{what}");
            assert_eq!(
                e["fs.grpc_status"], c.grpc_status_on_headers,
                "{what}: response-header phase"
            );
            let class = match c.http_status {
                500.. => "5xx",
                400.. => "4xx",
                _ => "ok",
            };
            assert_eq!(e["fs.status_class"], class, "{what}");
        }
        report.push(format!("{protocol}: rpc_calls delta {d:?}"));
    }
    // And the same across protocols, field by field.
    let (_, first_counts, first_entries) = &per_protocol[0];
    for (protocol, d, entries) in &per_protocol[1..] {
        assert_eq!(d, first_counts, "{protocol} vs HTTP/1.1");
        assert_eq!(entries, first_entries, "{protocol} vs HTTP/1.1");
    }
    // Envoy spoke HTTP/2 to the upstream every time.
    assert!(s
        .upstream
        .received()
        .iter()
        .all(|r| r.version == "HTTP/2.0"));
    assert_vms_healthy(&s.envoy);
    eprintln!("{}", report.join("\n"));
    envoy_harness::report("http2-grpc-same-as-http1", &report.join("\n"));
}

fn wait_log(envoy: &Envoy, test_id: &str) -> Value {
    envoy.access_log_entry_for(test_id).unwrap()
}

/// A server-streaming call held open (first message received) while 40
/// unary calls flow on the same connection and 20 on another: those are
/// counted exactly while the stream is open, the stream itself only once it
/// ends (the filters' `on_log` runs at stream end), with its status from
/// the trailers.
#[test]
fn server_streaming_call_held_open_while_other_calls_flow() {
    let s = start(ATTRIBUTEGEN, false, false);
    let port = s.envoy.port();
    let a = H2Client::h2c(port).unwrap();
    let b = H2Client::h2c(port).unwrap();
    let mut stream = a
        .open(
            H2Request::grpc("/routeguide.RouteGuide/ListFeatures")
                .header(GRPC_MESSAGES_HEADER, "5")
                .header(GRPC_HOLD_HEADER, "after-first"),
        )
        .unwrap();
    assert_eq!(stream.headers().unwrap().status, 200);
    assert_eq!(
        stream.next_data().unwrap().unwrap(),
        grpc_frame(b"message 0")
    );
    let stream_id = stream.headers().unwrap().test_id.clone();

    let unary = |n: usize| {
        (0..n)
            .map(|_| H2Request::grpc("/helloworld.Greeter/SayHello"))
            .collect::<Vec<_>>()
    };
    let mut answers = a.send_concurrently(unary(40));
    answers.extend(b.send_concurrently(unary(20)));
    for r in &answers {
        let r = r.as_ref().unwrap();
        assert_eq!((r.status, r.grpc_status()), (200, Some("0")));
    }
    s.envoy
        .wait_access_log_len(60, Duration::from_secs(10))
        .unwrap();
    let during = counts(&s.envoy);
    assert_eq!(
        during,
        Counts::from([(key("0", "SayHello", "200"), 60)]),
        "while the stream is open"
    );
    assert!(
        !s.envoy
            .access_log()
            .iter()
            .any(|e| e["test_id"] == stream_id.as_str()),
        "the open stream is not logged yet"
    );
    // Every filter saw the stream's request headers already.
    for h in heartbeats() {
        let flush = envoy_harness::HEARTBEAT_FLUSH;
        s.envoy.wait_for_stat(&h, flush, |n| n == 61).unwrap();
    }

    s.upstream.release();
    let done = stream.finish().unwrap();
    assert_eq!(done.grpc_status(), Some("0"));
    let want: Vec<u8> = (0..5)
        .flat_map(|i| grpc_frame(format!("message {i}").as_bytes()))
        .collect();
    assert_eq!(done.body, want);
    let e = wait_log(&s.envoy, &stream_id);
    assert_eq!(e["attr.istio_operationId"], "ListFeatures");
    assert_eq!(e["attr.istio_grpcResponseStatus"], "OK");
    assert_eq!(e["grpc_status"], 0);
    assert_eq!(
        counts(&s.envoy),
        Counts::from([
            (key("0", "SayHello", "200"), 60),
            (key("0", "ListFeatures", "200"), 1)
        ])
    );
    assert_vms_healthy(&s.envoy);
}

/// HTTP/2 streams the client resets (RST_STREAM CANCEL): after the first
/// message of a server-streaming call, and before any response header.
/// Envoy resets the upstream stream too, logs each with `DR`; the filters'
/// `on_log` still runs once per stream, and get-calls counts each with the
/// code Envoy reports. No VM traps.
#[test]
fn client_reset_streams_are_counted_as_envoy_reports_them() {
    let s = start(ATTRIBUTEGEN, false, false);
    let client = H2Client::h2c(s.envoy.port()).unwrap();

    let mut mid = client
        .open(
            H2Request::grpc("/routeguide.RouteGuide/ListFeatures")
                .header(GRPC_MESSAGES_HEADER, "5")
                .header(GRPC_HOLD_HEADER, "after-first"),
        )
        .unwrap();
    assert_eq!(mid.next_data().unwrap().unwrap(), grpc_frame(b"message 0"));
    let mid = mid.cancel();

    let early = client
        .open(
            H2Request::grpc("/helloworld.Greeter/SayHello")
                .header(GRPC_HOLD_HEADER, "before-headers"),
        )
        .unwrap();
    // Let the request reach the upstream, then give up on it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while s.upstream.received().len() < 2 {
        assert!(std::time::Instant::now() < deadline, "request not upstream");
        std::thread::sleep(Duration::from_millis(10));
    }
    let early = early.cancel();

    let e_mid = wait_log(&s.envoy, &mid.test_id);
    let e_early = wait_log(&s.envoy, &early.test_id);
    let report = format!(
        "reset after the first message: code {} flags {} details {} grpc {}\n\
         reset before response headers: code {} flags {} details {} grpc {}",
        e_mid["code"],
        e_mid["flags"],
        e_mid["details"],
        e_mid["grpc_status"],
        e_early["code"],
        e_early["flags"],
        e_early["details"],
        e_early["grpc_status"]
    );
    eprintln!("{report}");
    for e in [&e_mid, &e_early] {
        assert!(e["flags"].as_str().is_some_and(|f| f.contains("DR")), "{e}");
    }
    assert_eq!(e_mid["code"], 200);
    assert_eq!(e_mid["attr.istio_operationId"], "ListFeatures");
    assert_eq!(e_early["code"], 0);
    assert_eq!(e_early["attr.istio_operationId"], "SayHello");

    // The stream reset after its response headers has a code (200) and so
    // a gRPC status derived from it (2, Unknown: no trailers came), as in
    // Envoy's own log; the one reset before any response has neither:
    // Envoy logs code 0 and no gRPC status, and in CEL `response.code` and
    // `response.grpc_status` are absent, so get-calls labels both `unknown`
    // (a failed dimension) and attributegen's grpc_status condition fails
    // to evaluate (an Istio runtime error: the attribute is skipped).
    assert_eq!(e_mid["grpc_status"], 2);
    assert_eq!(e_mid["attr.istio_grpcResponseStatus"], "OTHER");
    assert_eq!(e_early["grpc_status"], Value::Null);
    assert_eq!(e_early["attr.istio_grpcResponseStatus"], Value::Null);
    // get-calls: each reset stream counted once, by what the log phase had.
    let got = counts(&s.envoy);
    assert_eq!(
        got,
        Counts::from([
            (key("2", "ListFeatures", "200"), 1),
            (key("unknown", "SayHello", "unknown"), 1)
        ])
    );
    let errors: Vec<u64> = RUNTIME_ERRORS.iter().map(|e| stat(&s.envoy, e)).collect();
    assert_eq!(
        errors,
        [1, 0, 0],
        "runtime errors (attributegen, trace_tags, get_calls)"
    );
    assert!(s.envoy.log().contains(
        "attribute \"istio_grpcResponseStatus\" condition \"response.grpc_status == 0\": evaluation failed"
    ));
    let report = format!("{report}\nget-calls series: {got:?}");
    // Envoy reset both upstream streams.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while s.upstream.cancelled() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "upstream streams not reset"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The connection is still good, the filters too.
    let r = client
        .send(H2Request::grpc("/helloworld.Greeter/SayHello"))
        .unwrap();
    assert_eq!(r.grpc_status(), Some("0"));
    assert_eq!(
        wait_log(&s.envoy, &r.test_id)["attr.istio_operationId"],
        "SayHello"
    );
    assert_no_trap(&s.envoy);
    envoy_harness::report("http2-grpc-client-reset", &report);
}

/// Istio's attributegen vector that classifies `response.grpc_status`
/// (istio/istio TestCustomizeMetrics), over h2c: a gRPC OK is `OK` with the
/// status in trailers and trailers-only; another status or a plain HTTP 200
/// (grpc_status 2) has no value.
#[test]
fn istio_grpc_status_vector_over_http2() {
    let path = envoy_harness::paths::workspace_root()
        .join("test-env/testdata/attributegen-test-vectors.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let vector = &v["e2e_istio_integration_TestCustomizeMetrics"];
    assert_eq!(vector["expect_grpc"]["grpc_response_status"], "OK");
    let s = start(&vector["plugin_config"].to_string(), false, false);
    let client = H2Client::h2c(s.envoy.port()).unwrap();
    let cases = [
        (H2Request::grpc("/helloworld.Greeter/SayHello"), "OK"),
        (
            H2Request::grpc("/helloworld.Greeter/SayHello")
                .header(GRPC_SHAPE_HEADER, "trailers-only"),
            "OK",
        ),
        (
            H2Request::grpc("/helloworld.Greeter/SayHello").header(GRPC_STATUS_HEADER, "5"),
            "",
        ),
        (
            H2Request::grpc("/helloworld.Greeter/SayHello")
                .header(GRPC_STATUS_HEADER, "7")
                .header(GRPC_SHAPE_HEADER, "trailers-only"),
            "",
        ),
        (H2Request::new("GET", "/"), ""),
    ];
    for (req, want) in cases {
        let r = client.send(req).unwrap();
        let e = wait_log(&s.envoy, &r.test_id);
        assert_eq!(text(&e["attr.istio_grpcResponseStatus"]), want, "{e}");
        let op = if e["method"] == "GET" {
            "getoperation"
        } else {
            ""
        };
        assert_eq!(text(&e["attr.istio_operationId"]), op, "{e}");
        assert_eq!(e["attr.istio_responseClass"], "2xx", "{e}");
    }
    assert_vms_healthy(&s.envoy);
}

/// Hostile HTTP/2 input never traps a VM: header lists at and over Envoy's
/// limits (count and size), a huge header value the filters read, 1,000
/// concurrent streams on one connection, and 200 streams opened and reset
/// at once (rapid reset). Counts stay exact for what reached the filters.
#[test]
fn hostile_http2_inputs_never_trap_a_vm() {
    let s = start(ATTRIBUTEGEN, false, false);
    let mut report = Vec::new();
    let heartbeat = &heartbeats()[0];
    let beats = |s: &Setup| stat(&s.envoy, heartbeat);

    // Header lists: (name, request, reaches the filters).
    let many = |n: usize, len: usize| {
        (0..n).fold(H2Request::grpc("/helloworld.Greeter/SayHello"), |r, i| {
            r.header(&format!("x-h{i}"), &"v".repeat(len))
        })
    };
    let cases = [
        ("450 headers, 70 kB", many(450, 150), true),
        (
            "one 90 kB header value read by trace-tags",
            H2Request::grpc("/helloworld.Greeter/SayHello").header("x-tenant", &"t".repeat(90_000)),
            true,
        ),
        (
            "600 headers (over max_headers_count 500)",
            many(600, 10),
            false,
        ),
        (
            "2,000 headers, 200 kB (over 96 KiB)",
            many(2_000, 90),
            false,
        ),
    ];
    for (name, req, reaches) in cases {
        let before = beats(&s);
        // A connection of its own: Envoy's codec may close it.
        let result = H2Client::h2c(s.envoy.port()).and_then(|c| c.send(req));
        // The heartbeat counts what reached the filters within a tick.
        let reached = s
            .envoy
            .wait_for_stat(heartbeat, envoy_harness::HEARTBEAT_FLUSH, |n| n > before)
            .is_ok();
        let outcome = match &result {
            Ok(r) => format!("status {} grpc-status {:?}", r.status, r.grpc_status()),
            Err(e) => format!("error {e}"),
        };
        report.push(format!("{name}: {outcome}, reached filters: {reached}"));
        assert_eq!(reached, reaches, "{name}: {outcome}");
        if reaches {
            let r = result.unwrap();
            assert_eq!(r.grpc_status(), Some("0"), "{name}");
            assert_eq!(
                wait_log(&s.envoy, &r.test_id)["attr.istio_operationId"],
                "SayHello"
            );
        }
    }
    let client = H2Client::h2c(s.envoy.port()).unwrap();

    // 1,000 concurrent streams on one connection.
    let before = counts(&s.envoy);
    let logged_before = s.envoy.access_log().len();
    let answers = client.send_concurrently(
        (0..1000)
            .map(|_| H2Request::grpc("/helloworld.Greeter/SayHello"))
            .collect(),
    );
    let ok = answers
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|r| r.grpc_status() == Some("0")))
        .count();
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    for r in &answers {
        match r {
            Ok(r) if r.grpc_status() == Some("0") => {}
            Ok(r) => {
                *failures
                    .entry(format!(
                        "status {} grpc-status {:?}",
                        r.status,
                        r.grpc_status()
                    ))
                    .or_default() += 1
            }
            Err(e) => *failures.entry(e.to_string()).or_default() += 1,
        }
    }
    report.push(format!("1,000 concurrent streams: {ok} OK"));
    assert_eq!(ok, 1000, "{failures:?}");
    s.envoy
        .wait_access_log_len(logged_before + 1000, Duration::from_secs(20))
        .unwrap();
    let d = delta(&counts(&s.envoy), &before);
    assert_eq!(d, Counts::from([(key("0", "SayHello", "200"), 1000)]));

    // Rapid reset: 200 streams opened and reset at once.
    let logged_before = s.envoy.access_log().len();
    let before = counts(&s.envoy);
    let streams: Vec<_> = (0..200)
        .map(|_| {
            client
                .open(
                    H2Request::grpc("/helloworld.Greeter/SayHello")
                        .header(GRPC_HOLD_HEADER, "before-headers"),
                )
                .unwrap()
        })
        .collect();
    for st in streams {
        st.cancel();
    }
    std::thread::sleep(Duration::from_millis(500));
    let fresh = H2Client::h2c(s.envoy.port()).unwrap();
    let r = fresh
        .send(H2Request::grpc("/helloworld.Greeter/SayHello"))
        .unwrap();
    assert_eq!(r.grpc_status(), Some("0"));
    let last = wait_log(&s.envoy, &r.test_id);
    assert_eq!(last["attr.istio_operationId"], "SayHello");
    std::thread::sleep(Duration::from_millis(200));
    let logged = s.envoy.access_log().len() - logged_before;
    let counted: u64 = delta(&counts(&s.envoy), &before).values().sum();
    report.push(format!(
        "200 streams reset at once: {} logged by Envoy, {counted} counted by get-calls (incl. one request after)",
        logged
    ));
    assert_eq!(
        counted, logged as u64,
        "get-calls counts every stream Envoy logged"
    );
    // Heartbeats agree across filters (each saw the same request headers).
    std::thread::sleep(envoy_harness::HEARTBEAT_FLUSH);
    let hb: Vec<u64> = heartbeats().iter().map(|h| stat(&s.envoy, h)).collect();
    report.push(format!("heartbeats {hb:?}"));
    assert!(hb.iter().all(|x| *x == hb[0]), "{hb:?}");
    // Streams the client reset before any response end with
    // `response.grpc_status` absent: attributegen's condition on it fails
    // to evaluate, one runtime error each (as in Istio); nothing else
    // fails, nothing traps. (The header lists Envoy's codec refused are
    // logged with code 0 too, but never reached a filter.)
    let unanswered = s
        .envoy
        .access_log()
        .iter()
        .filter(|e| e["code"] == 0 && e["details"] == "http2.remote_reset")
        .count() as u64;
    let errors: Vec<u64> = RUNTIME_ERRORS.iter().map(|e| stat(&s.envoy, e)).collect();
    report.push(format!(
        "{unanswered} streams logged without a response; runtime errors {errors:?}"
    ));
    eprintln!("{}", report.join("\n"));
    assert_eq!(
        errors,
        [unanswered, 0, 0],
        "runtime errors (attributegen, trace_tags, get_calls)"
    );
    assert_no_trap(&s.envoy);
    envoy_harness::report("http2-grpc-hostile", &report.join("\n"));
}
