//! Decodes the filter-state objects of an access-log entry
//! (`AccessLogCommon.filter_state_objects`, each a `google.protobuf.Any`).
//!
//! Envoy packs an object's `serializeAsProto()` into the `Any`. Wasm filter
//! state (`wasm.<name>`, what `proxy_set_property` writes) serializes as a
//! `google.protobuf.BytesValue` holding the raw bytes; other objects may be a
//! `StringValue`, or an `Any` inside the `Any`. Text comes out as a JSON
//! string; anything else as `{"@type": …, "hex": …}`.

use envoy_types::pb::google::protobuf::{Any, BytesValue, StringValue};
use prost::Message;
use serde_json::{json, Value};

const STRING_VALUE: &str = "google.protobuf.StringValue";
const BYTES_VALUE: &str = "google.protobuf.BytesValue";
const ANY: &str = "google.protobuf.Any";

/// The value of one filter-state object as JSON: a string when it is text.
pub fn decode(any: &Any) -> Value {
    decode_nested(any, 0)
}

fn decode_nested(any: &Any, depth: u8) -> Value {
    let type_name = any.type_url.rsplit('/').next().unwrap_or_default();
    let decoded = match type_name {
        STRING_VALUE => StringValue::decode(any.value.as_slice())
            .ok()
            .map(|s| Value::String(s.value)),
        BYTES_VALUE => BytesValue::decode(any.value.as_slice())
            .ok()
            .map(|b| bytes(&b.value, type_name)),
        ANY if depth < 4 => Any::decode(any.value.as_slice())
            .ok()
            .map(|inner| decode_nested(&inner, depth + 1)),
        _ => None,
    };
    decoded.unwrap_or_else(|| opaque(&any.value, &any.type_url))
}

/// Text as a string, other bytes as hex with their type.
fn bytes(b: &[u8], type_name: &str) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) => Value::String(s.to_string()),
        Err(_) => opaque(b, type_name),
    }
}

fn opaque(b: &[u8], type_url: &str) -> Value {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    json!({ "@type": type_url, "hex": hex })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn pack<M: Message>(m: &M, name: &str) -> Any {
        Any {
            type_url: format!("type.googleapis.com/{name}"),
            value: m.encode_to_vec(),
        }
    }

    #[test]
    fn bytes_value_text_is_a_string() {
        let any = pack(
            &BytesValue {
                value: b"GetBook".to_vec(),
            },
            BYTES_VALUE,
        );
        assert_eq!(decode(&any), json!("GetBook"));
    }

    #[test]
    fn string_value_is_a_string() {
        let any = pack(
            &StringValue {
                value: "ListBooks".into(),
            },
            STRING_VALUE,
        );
        assert_eq!(decode(&any), json!("ListBooks"));
    }

    #[test]
    fn any_in_any_is_unwrapped() {
        let inner = pack(
            &BytesValue {
                value: b"x".to_vec(),
            },
            BYTES_VALUE,
        );
        assert_eq!(decode(&pack(&inner, ANY)), json!("x"));
    }

    #[test]
    fn binary_bytes_are_hex() {
        let any = pack(
            &BytesValue {
                value: vec![0xff, 0x00],
            },
            BYTES_VALUE,
        );
        assert_eq!(decode(&any), json!({"@type": BYTES_VALUE, "hex": "ff00"}));
    }

    #[test]
    fn unknown_types_and_garbage_are_opaque() {
        let any = Any {
            type_url: "type.googleapis.com/x.Y".into(),
            value: vec![1, 2],
        };
        assert_eq!(
            decode(&any),
            json!({"@type": "type.googleapis.com/x.Y", "hex": "0102"})
        );
        let broken = Any {
            type_url: format!("type.googleapis.com/{STRING_VALUE}"),
            value: vec![0x0a, 0x05, b'a'],
        };
        assert_eq!(decode(&broken)["hex"], json!("0a0561"));
    }
}
