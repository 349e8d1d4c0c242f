//! One HTTP access-log entry (`envoy.data.accesslog.v3.HTTPAccessLogEntry`)
//! as a JSON object.

use crate::filter_state;
use envoy_types::pb::envoy::config::core::v3::RequestMethod;
use envoy_types::pb::envoy::data::accesslog::v3::{HttpAccessLogEntry, TcpAccessLogEntry};
use envoy_types::pb::google::protobuf::Any;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};

/// Where an entry came from: the stream's identifier (sent by Envoy in the
/// first message of each stream).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// `node.id` of the Envoy.
    pub node: String,
    /// The logger's `log_name`.
    pub log_name: String,
}

/// `{"kind":"http", "node", "log_name", "method", "path", "authority",
/// "response_code", "response_code_details", "upstream_cluster",
/// "route_name", "request_headers":{…}, "filter_state":{…},
/// "custom_tags":{…}, "start_time_ms", "duration_ms"}`. Header, filter-state
/// and tag maps are sorted by key; empty strings and maps are left out.
pub fn http_entry(origin: &Origin, e: &HttpAccessLogEntry) -> Value {
    let mut out = head("http", origin);
    if let Some(req) = &e.request {
        let method = RequestMethod::try_from(req.request_method)
            .map_or("METHOD_UNSPECIFIED", |m| m.as_str_name());
        out.insert("method".into(), json!(method));
        put_str(&mut out, "path", &req.path);
        put_str(&mut out, "authority", &req.authority);
        put_map(
            &mut out,
            "request_headers",
            string_map(&req.request_headers),
        );
    }
    if let Some(resp) = &e.response {
        if let Some(code) = &resp.response_code {
            out.insert("response_code".into(), json!(code.value));
        }
        put_str(
            &mut out,
            "response_code_details",
            &resp.response_code_details,
        );
    }
    if let Some(c) = &e.common_properties {
        put_str(&mut out, "upstream_cluster", &c.upstream_cluster);
        put_str(&mut out, "route_name", &c.route_name);
        put_map(
            &mut out,
            "filter_state",
            filter_states(&c.filter_state_objects),
        );
        put_map(&mut out, "custom_tags", string_map(&c.custom_tags));
        if let Some(t) = &c.start_time {
            let ms = t.seconds.saturating_mul(1000) + i64::from(t.nanos / 1_000_000);
            out.insert("start_time_ms".into(), json!(ms));
        }
        if let Some(d) = &c.duration {
            let ms = d.seconds as f64 * 1000.0 + f64::from(d.nanos) / 1e6;
            out.insert("duration_ms".into(), json!(ms));
        }
    }
    Value::Object(out)
}

/// A TCP entry, briefly: `{"kind":"tcp", "node", "log_name",
/// "upstream_cluster", "filter_state":{…}}`.
pub fn tcp_entry(origin: &Origin, e: &TcpAccessLogEntry) -> Value {
    let mut out = head("tcp", origin);
    if let Some(c) = &e.common_properties {
        put_str(&mut out, "upstream_cluster", &c.upstream_cluster);
        put_map(
            &mut out,
            "filter_state",
            filter_states(&c.filter_state_objects),
        );
    }
    Value::Object(out)
}

/// `{"kind", "node", "log_name"}`: what every entry starts with.
fn head(kind: &str, origin: &Origin) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("kind".into(), json!(kind));
    put_str(&mut out, "node", &origin.node);
    put_str(&mut out, "log_name", &origin.log_name);
    out
}

/// The filter-state objects, decoded, sorted by name.
fn filter_states(objects: &HashMap<String, Any>) -> Map<String, Value> {
    sorted(objects)
        .into_iter()
        .map(|(k, v)| (k.clone(), filter_state::decode(v)))
        .collect()
}

fn sorted<V>(m: &HashMap<String, V>) -> BTreeMap<&String, &V> {
    m.iter().collect()
}

fn string_map(m: &HashMap<String, String>) -> Map<String, Value> {
    sorted(m)
        .into_iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect()
}

fn put_str(out: &mut Map<String, Value>, key: &str, v: &str) {
    if !v.is_empty() {
        out.insert(key.into(), json!(v));
    }
}

fn put_map(out: &mut Map<String, Value>, key: &str, m: Map<String, Value>) {
    if !m.is_empty() {
        out.insert(key.into(), Value::Object(m));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::data::accesslog::v3::{
        AccessLogCommon, HttpRequestProperties, HttpResponseProperties,
    };
    use envoy_types::pb::google::protobuf::{BytesValue, UInt32Value};
    use prost::Message;

    fn origin() -> Origin {
        Origin {
            node: "n1".into(),
            log_name: "als".into(),
        }
    }

    #[test]
    fn http_entry_has_method_path_code_and_filter_state() {
        let mut common = AccessLogCommon {
            upstream_cluster: "upstream".into(),
            ..Default::default()
        };
        common.filter_state_objects.insert(
            "wasm.istio_operationId".into(),
            Any {
                type_url: "type.googleapis.com/google.protobuf.BytesValue".into(),
                value: BytesValue {
                    value: b"GetBook".to_vec(),
                }
                .encode_to_vec(),
            },
        );
        let mut req = HttpRequestProperties {
            request_method: RequestMethod::Get as i32,
            path: "/books/b1".into(),
            ..Default::default()
        };
        req.request_headers.insert("x-test-id".into(), "t1".into());
        let e = HttpAccessLogEntry {
            common_properties: Some(common),
            request: Some(req),
            response: Some(HttpResponseProperties {
                response_code: Some(UInt32Value { value: 200 }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            http_entry(&origin(), &e),
            json!({
                "kind": "http", "node": "n1", "log_name": "als",
                "method": "GET", "path": "/books/b1", "response_code": 200,
                "request_headers": {"x-test-id": "t1"},
                "upstream_cluster": "upstream",
                "filter_state": {"wasm.istio_operationId": "GetBook"},
            })
        );
    }

    #[test]
    fn empty_entry_is_just_its_kind() {
        let v = http_entry(&Origin::default(), &HttpAccessLogEntry::default());
        assert_eq!(v, json!({"kind": "http"}));
        let v = tcp_entry(&origin(), &TcpAccessLogEntry::default());
        assert_eq!(v, json!({"kind": "tcp", "node": "n1", "log_name": "als"}));
    }

    #[test]
    fn unknown_method_number_is_unspecified() {
        let e = HttpAccessLogEntry {
            request: Some(HttpRequestProperties {
                request_method: 999,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            http_entry(&origin(), &e)["method"],
            json!("METHOD_UNSPECIFIED")
        );
    }
}
