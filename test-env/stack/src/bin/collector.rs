//! The stack's span collector, standing in for Jaeger where no Jaeger image
//! is at hand: Envoy's tracers send to it, and the spans can be read back.
//!
//! - `POST /v1/traces`: OTLP/HTTP protobuf (Envoy's OpenTelemetry tracer;
//!   Jaeger's OTLP port is 4318, so is this one's in the stack);
//! - `POST /api/v2/spans`: Zipkin v2 JSON;
//! - `GET /api/spans[?tag=KEY=VALUE][&limit=N]`: the spans received, newest
//!   last, as JSON `[{"format","name","trace_id","tags":{…}}]`;
//! - `GET /api/summary`: span count, decode errors, and spans per value of
//!   the `request_operation` tag;
//! - `GET /healthz`.
//!
//! Decoding is the test harness's (`envoy_harness::collector`), so what
//! the stack shows is what the filter tests assert on. Keeps the newest
//! `--max-spans` spans (default 100000).

use envoy_harness::collector::{decode_otlp, decode_zipkin};
use envoy_harness::{Span, SpanFormat};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use telemetry_stack::{flag, parse_flags};

const USAGE: &str = "collector [--listen 127.0.0.1:4318] [--max-spans 100000] [--quiet]";
const OPERATION_TAG: &str = "request_operation";

#[derive(Default)]
struct State {
    spans: VecDeque<Span>,
    received: u64,
    errors: Vec<String>,
}

fn main() {
    let flags = parse_flags(USAGE);
    let listen = flags
        .get("listen")
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:4318".to_string());
    let max: usize = flag(&flags, "max-spans", 100_000, USAGE).max(1);
    let quiet = flags.contains_key("quiet");
    let server = match tiny_http::Server::http(&listen) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("collector: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("collector listening on {listen} (OTLP/HTTP /v1/traces, Zipkin /api/v2/spans; spans at /api/spans)");
    let state = Arc::new(Mutex::new(State::default()));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (server, state) = (server.clone(), state.clone());
            std::thread::spawn(move || {
                while let Ok(mut req) = server.recv() {
                    let mut body = Vec::new();
                    let _ = req.as_reader().read_to_end(&mut body);
                    let url = req.url().to_string();
                    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
                    let (code, ctype, out) = match (req.method().as_str(), path) {
                        ("POST", "/v1/traces") => {
                            receive(&state, decode_otlp(&body), max, quiet, true)
                        }
                        ("POST", "/api/v2/spans") => {
                            receive(&state, decode_zipkin(&body), max, quiet, false)
                        }
                        ("GET", "/api/spans") => (200, "application/json", list(&state, query)),
                        ("GET", "/api/summary") => (200, "application/json", summary(&state)),
                        ("GET", "/healthz") => (200, "text/plain", b"ok".to_vec()),
                        _ => (404, "text/plain", b"not found".to_vec()),
                    };
                    let mut resp = tiny_http::Response::from_data(out).with_status_code(code);
                    if let Ok(h) = tiny_http::Header::from_bytes("content-type", ctype) {
                        resp = resp.with_header(h);
                    }
                    let _ = req.respond(resp);
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
}

fn receive(
    state: &Mutex<State>,
    decoded: Result<Vec<Span>, String>,
    max: usize,
    quiet: bool,
    otlp: bool,
) -> (u16, &'static str, Vec<u8>) {
    let Ok(mut st) = state.lock() else {
        return (500, "text/plain", b"poisoned".to_vec());
    };
    match decoded {
        Ok(spans) => {
            for s in spans {
                if !quiet {
                    let tags: Vec<String> =
                        s.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    eprintln!("span {} trace={} {}", s.name, s.trace_id, tags.join(" "));
                }
                st.received += 1;
                st.spans.push_back(s);
                while st.spans.len() > max {
                    st.spans.pop_front();
                }
            }
            if otlp {
                // An empty ExportTraceServiceResponse is zero bytes of protobuf.
                (200, "application/x-protobuf", Vec::new())
            } else {
                (202, "text/plain", Vec::new())
            }
        }
        Err(e) => {
            eprintln!("collector: cannot decode: {e}");
            if st.errors.len() < 100 {
                st.errors.push(e.clone());
            }
            (400, "text/plain", e.into_bytes())
        }
    }
}

fn span_json(s: &Span) -> Value {
    json!({
        "format": match s.format { SpanFormat::Otlp => "otlp", SpanFormat::Zipkin => "zipkin" },
        "name": s.name,
        "trace_id": s.trace_id,
        "tags": s.tags,
    })
}

fn list(state: &Mutex<State>, query: &str) -> Vec<u8> {
    let mut tag: Option<(String, String)> = None;
    let mut limit = usize::MAX;
    for kv in query.split('&') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let v = decode(v);
        match k {
            "tag" => {
                tag = v
                    .split_once('=')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
            }
            "limit" => limit = v.parse().unwrap_or(usize::MAX),
            _ => {}
        }
    }
    let Ok(st) = state.lock() else {
        return b"[]".to_vec();
    };
    let picked: Vec<Value> = st
        .spans
        .iter()
        .filter(|s| {
            tag.as_ref()
                .is_none_or(|(k, v)| s.tag(k) == Some(v.as_str()))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .take(limit)
        .rev()
        .map(span_json)
        .collect();
    Value::Array(picked).to_string().into_bytes()
}

fn summary(state: &Mutex<State>) -> Vec<u8> {
    let Ok(st) = state.lock() else {
        return b"{}".to_vec();
    };
    let mut per_op: BTreeMap<String, u64> = BTreeMap::new();
    for s in &st.spans {
        let op = s.tag(OPERATION_TAG).unwrap_or("(none)");
        *per_op.entry(op.to_string()).or_default() += 1;
    }
    json!({
        "received": st.received,
        "kept": st.spans.len(),
        "errors": st.errors,
        "spans_per_operation": per_op,
    })
    .to_string()
    .into_bytes()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b.get(i) {
            Some(b'%') => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(v) = hex {
                    out.push(v);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            Some(b'+') => out.push(b' '),
            Some(c) => out.push(*c),
            None => {}
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
