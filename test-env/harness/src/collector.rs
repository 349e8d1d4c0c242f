//! A span collector: what Envoy's tracers send, decoded, so tests can assert
//! on spans as they arrive over the wire.
//!
//! Accepts Zipkin v2 JSON (`POST /api/v2/spans`, chunked as Envoy sends it)
//! and OTLP/HTTP protobuf (`POST /v1/traces`, decoded with
//! `opentelemetry-proto`). Wire it with
//! [`EnvoyBuilder::zipkin_tracing`](crate::EnvoyBuilder::zipkin_tracing) or
//! [`EnvoyBuilder::opentelemetry_tracing`](crate::EnvoyBuilder::opentelemetry_tracing).

use crate::httpd::{HttpServer, ServerRequest, ServerResponse};
use crate::{err, Result};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use prost::Message;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which wire format a span came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanFormat {
    /// Zipkin v2 JSON.
    Zipkin,
    /// OTLP/HTTP protobuf.
    Otlp,
}

/// A request body as received: (path, raw bytes).
pub type Payload = (String, Vec<u8>);

/// One span as received.
#[derive(Debug, Clone)]
pub struct Span {
    /// Wire format.
    pub format: SpanFormat,
    /// Operation name.
    pub name: String,
    /// Trace id (hex).
    pub trace_id: String,
    /// Tags (Zipkin) or attributes (OTLP), values as text.
    pub tags: BTreeMap<String, String>,
}

impl Span {
    /// A tag's value.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
}

/// The collector: a small HTTP server on a free port of 127.0.0.1.
pub struct Collector {
    server: HttpServer,
    spans: Arc<Mutex<Vec<Span>>>,
    errors: Arc<Mutex<Vec<String>>>,
    payloads: Arc<Mutex<Vec<Payload>>>,
}

impl Collector {
    /// Starts the collector on a free port of 127.0.0.1.
    pub fn start() -> Result<Self> {
        Self::start_on("127.0.0.1:0")
    }

    /// Starts the collector on `addr` (e.g. `0.0.0.0:4318` in a container).
    pub fn start_on(addr: &str) -> Result<Self> {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let payloads = Arc::new(Mutex::new(Vec::new()));
        let sink = Sink {
            spans: spans.clone(),
            errors: errors.clone(),
            payloads: payloads.clone(),
        };
        let server = HttpServer::start_on(addr, move |req| receive(&sink, req))?;
        Ok(Collector {
            server,
            spans,
            errors,
            payloads,
        })
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.spans.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Every request body received (path, raw bytes), e.g. to show what
    /// Envoy sent.
    pub fn payloads(&self) -> Vec<Payload> {
        self.payloads.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Payloads that could not be decoded (should stay empty).
    pub fn errors(&self) -> Vec<String> {
        self.errors.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits for a span matching `pred`.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&Span) -> bool) -> Result<Span> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.spans().into_iter().find(&pred) {
                return Ok(s);
            }
            if Instant::now() > deadline {
                return err(format!(
                    "no matching span after {timeout:?}; received: {:#?}; errors: {:?}",
                    self.spans(),
                    self.errors()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the span whose tag `key` is `value` (e.g. `test_id`).
    pub fn wait_for_tag(&self, key: &str, value: &str, timeout: Duration) -> Result<Span> {
        self.wait_for(timeout, |s| s.tag(key) == Some(value))
    }
}

/// Where the server puts what it received.
struct Sink {
    spans: Arc<Mutex<Vec<Span>>>,
    errors: Arc<Mutex<Vec<String>>>,
    payloads: Arc<Mutex<Vec<Payload>>>,
}

fn receive(sink: &Sink, req: ServerRequest) -> ServerResponse {
    let path = req.path.split('?').next().unwrap_or("").to_string();
    if let Ok(mut p) = sink.payloads.lock() {
        if p.len() < 10_000 {
            p.push((path.clone(), req.body.clone()));
        }
    }
    let decoded = match path.as_str() {
        "/api/v2/spans" => decode_zipkin(&req.body),
        "/v1/traces" => decode_otlp(&req.body),
        other => Err(format!("unexpected path {other}")),
    };
    match decoded {
        Ok(new) => {
            if let Ok(mut s) = sink.spans.lock() {
                s.extend(new);
            }
            if path == "/v1/traces" {
                let body = ExportTraceServiceResponse::default().encode_to_vec();
                ServerResponse::new(200, body).header("content-type", "application/x-protobuf")
            } else {
                ServerResponse::new(202, Vec::new())
            }
        }
        Err(e) => {
            if let Ok(mut errs) = sink.errors.lock() {
                errs.push(e.clone());
            }
            ServerResponse::new(400, e.into_bytes())
        }
    }
}

/// Zipkin v2 JSON: an array of spans with a `tags` object.
pub fn decode_zipkin(body: &[u8]) -> std::result::Result<Vec<Span>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("zipkin JSON: {e}"))?;
    let arr = v.as_array().ok_or("zipkin: body is not an array")?;
    Ok(arr
        .iter()
        .map(|s| Span {
            format: SpanFormat::Zipkin,
            name: s["name"].as_str().unwrap_or_default().to_string(),
            trace_id: s["traceId"].as_str().unwrap_or_default().to_string(),
            tags: s["tags"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                    (k.clone(), v)
                })
                .collect(),
        })
        .collect())
}

/// OTLP/HTTP protobuf: an `ExportTraceServiceRequest`.
pub fn decode_otlp(body: &[u8]) -> std::result::Result<Vec<Span>, String> {
    let req = ExportTraceServiceRequest::decode(body).map_err(|e| format!("OTLP protobuf: {e}"))?;
    let mut out = Vec::new();
    for rs in req.resource_spans {
        for ss in rs.scope_spans {
            for s in ss.spans {
                out.push(Span {
                    format: SpanFormat::Otlp,
                    name: s.name,
                    trace_id: s.trace_id.iter().map(|b| format!("{b:02x}")).collect(),
                    tags: s
                        .attributes
                        .into_iter()
                        .map(|kv| (kv.key, any_to_string(kv.value)))
                        .collect(),
                });
            }
        }
    }
    Ok(out)
}

fn any_to_string(v: Option<AnyValue>) -> String {
    match v.and_then(|v| v.value) {
        Some(any_value::Value::StringValue(s)) => s,
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BytesValue(b)) => String::from_utf8_lossy(&b).into_owned(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// Header the harness client puts on every request; the tracing helpers
/// add it as the span tag [`TEST_ID_TAG`] so a test finds its span.
const TEST_ID_HEADER: &str = "x-test-id";
/// Span tag carrying the request's `x-test-id` (see [`Collector::span_of`]).
pub const TEST_ID_TAG: &str = "test_id";

impl Collector {
    /// Waits for the span of this response (by its `x-test-id`, which the
    /// tracing helpers add as the tag [`TEST_ID_TAG`]).
    pub fn span_of(&self, resp: &crate::Response) -> Result<Span> {
        self.wait_for_tag(TEST_ID_TAG, &resp.test_id, Duration::from_secs(10))
    }
}

fn collector_cluster(name: &str, port: u16) -> Value {
    serde_json::json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": { "cluster_name": name, "endpoints": [{ "lb_endpoints": [
            { "endpoint": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": port } } } } ] }] },
    })
}

fn with_test_id(custom_tags: Value) -> Value {
    let mut tags = match custom_tags {
        Value::Array(a) => a,
        Value::Null => Vec::new(),
        other => vec![other],
    };
    tags.push(
        serde_json::json!({ "tag": TEST_ID_TAG, "request_header": { "name": TEST_ID_HEADER } }),
    );
    Value::Array(tags)
}

impl crate::EnvoyBuilder {
    /// Traces every request with Envoy's Zipkin tracer (v2 JSON over HTTP)
    /// to the collector on `collector_port`, with these HCM `custom_tags`
    /// (plus [`TEST_ID_TAG`]). Spans are flushed one by one.
    pub fn zipkin_tracing(self, collector_port: u16, custom_tags: Value) -> Self {
        self.cluster(collector_cluster("zipkin", collector_port))
            .runtime("tracing.zipkin.min_flush_spans", serde_json::json!(1))
            .runtime("tracing.zipkin.flush_interval_ms", serde_json::json!(100))
            .hcm(
                "tracing",
                serde_json::json!({
                    "random_sampling": { "value": 100 },
                    "provider": { "name": "envoy.tracers.zipkin", "typed_config": {
                        "@type": "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig",
                        "collector_cluster": "zipkin",
                        "collector_endpoint": "/api/v2/spans",
                        "collector_endpoint_version": "HTTP_JSON" } },
                    "custom_tags": with_test_id(custom_tags),
                }),
            )
    }

    /// Traces every request with Envoy's OpenTelemetry tracer (OTLP/HTTP
    /// protobuf) to the collector on `collector_port`, with these HCM
    /// `custom_tags` (plus [`TEST_ID_TAG`]). Spans are flushed one by one.
    pub fn opentelemetry_tracing(self, collector_port: u16, custom_tags: Value) -> Self {
        self.cluster(collector_cluster("otel", collector_port))
            .runtime(
                "tracing.opentelemetry.min_flush_spans",
                serde_json::json!(1),
            )
            .runtime(
                "tracing.opentelemetry.flush_interval_ms",
                serde_json::json!(100),
            )
            .hcm(
                "tracing",
                serde_json::json!({
                    "random_sampling": { "value": 100 },
                    "provider": { "name": "envoy.tracers.opentelemetry", "typed_config": {
                        "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                        "service_name": "envoy-harness",
                        "http_service": { "http_uri": {
                            "uri": format!("http://127.0.0.1:{collector_port}/v1/traces"),
                            "cluster": "otel",
                            "timeout": "2s" } } } },
                    "custom_tags": with_test_id(custom_tags),
                }),
            )
    }
}
