//! The plugin configuration, as JSON.
//!
//! The top level is parsed strictly (unknown keys are errors, so a typo is
//! reported instead of silently ignored). Each entry of `tags` is parsed on
//! its own, so one bad tag is reported by name and skipped while the others
//! keep working.

use filter_common::config::{nullable, ConfigError, EnumValue};
use serde::{Deserialize, Deserializer};

/// Default cap on a tag value, in bytes (cut at a character boundary).
pub const DEFAULT_MAX_VALUE_LENGTH: usize = 256;
/// Largest accepted `max_value_length`.
pub const MAX_VALUE_LENGTH_LIMIT: usize = 8192;
/// Default filter-state prefix: tag `x` is written to `wasm.trace_tag.x`.
pub const DEFAULT_FILTER_STATE_PREFIX: &str = "trace_tag.";

/// The whole plugin configuration.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginConfig {
    /// The tags, each parsed separately into a [`TagConfig`].
    #[serde(deserialize_with = "nullable")]
    pub tags: Vec<serde_json::Value>,
    /// Write each tag to filter state `wasm.<filter_state_prefix><name>`
    /// (default true).
    #[serde(alias = "filterState", deserialize_with = "default_true")]
    pub filter_state: bool,
    /// Prefix of the filter-state names (default `trace_tag.`).
    #[serde(alias = "filterStatePrefix")]
    pub filter_state_prefix: String,
    /// When not empty, each request-phase tag is also written as the request
    /// header `<header_prefix><name>` (lower-cased), for `request_header`
    /// custom tags (Istio `header` customTags before 1.29). The upstream
    /// receives these headers (with the filter's values); every header named
    /// `<header_prefix><tag name>` is stripped from client requests.
    #[serde(alias = "headerPrefix", deserialize_with = "nullable")]
    pub header_prefix: String,
    /// Cap on a tag value in bytes (default 256, at most 8192).
    #[serde(alias = "maxValueLength", deserialize_with = "whole_number")]
    pub max_value_length: usize,
}

impl Default for PluginConfig {
    fn default() -> Self {
        PluginConfig {
            tags: Vec::new(),
            filter_state: true,
            filter_state_prefix: DEFAULT_FILTER_STATE_PREFIX.to_string(),
            header_prefix: String::new(),
            max_value_length: DEFAULT_MAX_VALUE_LENGTH,
        }
    }
}

/// A non-negative whole number, also written as a double (`256.0`): Istio
/// sends `pluginConfig` as a `Struct`, whose numbers are doubles.
fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    use serde::de::Error;
    let n = serde_json::Number::deserialize(d)?;
    if let Some(u) = n.as_u64() {
        return usize::try_from(u).map_err(D::Error::custom);
    }
    match n.as_f64() {
        Some(f) if f >= 0.0 && f.fract() == 0.0 && f < 1e9 => Ok(f as usize),
        _ => Err(D::Error::custom(format!(
            "expected a whole number, got {n}"
        ))),
    }
}

fn default_true<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(true))
}

/// One tag as written in the configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TagConfig {
    /// Tag name: letters, digits, `_`, `-`, `.`.
    #[serde(alias = "tag")]
    pub name: String,
    /// Source: a fixed value.
    pub literal: Option<String>,
    /// Source: an environment variable of the VM
    /// (`vm_config.environment_variables`), read once at configuration.
    pub environment: Option<String>,
    /// Source: a request header, as the client sent it.
    pub header: Option<String>,
    /// Source: a CEL expression, compiled once by Envoy.
    pub expression: Option<String>,
    /// Source: a filter-state key another filter wrote, e.g.
    /// `wasm.istio_operationId`.
    pub attribute: Option<String>,
    /// Value when the source gives nothing (absent, empty, error).
    #[serde(alias = "defaultValue")]
    pub default: Option<String>,
    /// When `expression` / `attribute` are read: `REQUEST` (default) or
    /// `RESPONSE`.
    pub phase: Option<EnumValue>,
    /// How the result of `expression` is printed.
    #[serde(rename = "type")]
    pub value_type: Option<EnumValue>,
    /// Also write this tag to this request header (overrides `header_prefix`).
    #[serde(alias = "requestHeader")]
    pub request_header: Option<String>,
    /// Also propagate this tag to the upstream as a W3C `baggage` entry
    /// `<name>=<value>` (request-phase tags only).
    #[serde(deserialize_with = "nullable")]
    pub baggage: bool,
}

/// When a tag's value is produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// On request headers (`REQUEST`).
    Request,
    /// On response headers (`RESPONSE`), the last moment that still reaches
    /// the span.
    Response,
}

impl Phase {
    /// Parses `REQUEST` / `RESPONSE` (or 0 / 1).
    pub fn parse(v: &EnumValue) -> Result<Phase, String> {
        match v {
            EnumValue::Name(n) if n == "REQUEST" || n == "ON_REQUEST" => Ok(Phase::Request),
            EnumValue::Name(n) if n == "RESPONSE" || n == "ON_RESPONSE" => Ok(Phase::Response),
            EnumValue::Number(0) => Ok(Phase::Request),
            EnumValue::Number(1) => Ok(Phase::Response),
            other => Err(format!(
                "unknown phase {}, expected REQUEST or RESPONSE",
                show(other)
            )),
        }
    }
}

/// How an expression's result is decoded (Envoy's serialization drops the
/// CEL type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// string or bytes (the default).
    String,
    /// int, uint (decimal).
    Int,
    /// double.
    Double,
    /// bool (`true` / `false`).
    Bool,
}

impl ValueType {
    /// Parses `STRING`, `INT`, `DOUBLE`, `BOOL`.
    pub fn parse(v: &EnumValue) -> Result<ValueType, String> {
        match v {
            EnumValue::Name(n) => match n.to_ascii_uppercase().as_str() {
                "STRING" => Ok(ValueType::String),
                "INT" => Ok(ValueType::Int),
                "DOUBLE" => Ok(ValueType::Double),
                "BOOL" => Ok(ValueType::Bool),
                _ => Err(format!(
                    "unknown type {}, expected STRING, INT, DOUBLE or BOOL",
                    show(v)
                )),
            },
            EnumValue::Number(_) => Err(format!(
                "unknown type {}, expected STRING, INT, DOUBLE or BOOL",
                show(v)
            )),
        }
    }
}

fn show(v: &EnumValue) -> String {
    match v {
        EnumValue::Name(n) => format!("\"{n}\""),
        EnumValue::Number(n) => n.to_string(),
    }
}

/// Parses one entry of `tags`; the error path is relative to the entry.
pub fn parse_tag(value: &serde_json::Value) -> Result<TagConfig, ConfigError> {
    serde_path_to_error::deserialize::<_, TagConfig>(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        ConfigError::new(path, e.into_inner().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use filter_common::config::parse_json;
    use serde_json::json;

    #[test]
    fn defaults() {
        let c: PluginConfig = parse_json(None).unwrap();
        assert!(c.tags.is_empty() && c.filter_state);
        assert_eq!(c.filter_state_prefix, "trace_tag.");
        assert_eq!(c.max_value_length, 256);
        let c: PluginConfig = parse_json(Some(br#"{"filter_state":null}"#)).unwrap();
        assert!(c.filter_state);
    }

    #[test]
    fn numbers_may_be_doubles() {
        let c: PluginConfig = parse_json(Some(br#"{"maxValueLength":64.0}"#)).unwrap();
        assert_eq!(c.max_value_length, 64);
        let e = parse_json::<PluginConfig>(Some(br#"{"max_value_length":1.5}"#)).unwrap_err();
        assert_eq!(e.path, "max_value_length");
        assert!(parse_json::<PluginConfig>(Some(br#"{"max_value_length":-1}"#)).is_err());
    }

    #[test]
    fn unknown_top_level_key_is_an_error() {
        let e = parse_json::<PluginConfig>(Some(br#"{"tgas":[]}"#)).unwrap_err();
        assert!(e.reason.contains("unknown field `tgas`"), "{e}");
    }

    #[test]
    fn tag_errors_name_the_field() {
        let e = parse_tag(&json!({"name":"a","header":7})).unwrap_err();
        assert_eq!(e.path, "header");
        let e = parse_tag(&json!({"name":"a","litteral":"x"})).unwrap_err();
        assert!(e.reason.contains("unknown field `litteral`"), "{e}");
        let t = parse_tag(&json!({"tag":"a","defaultValue":"d","header":"x"})).unwrap();
        assert_eq!(t.name, "a");
        assert_eq!(t.default.as_deref(), Some("d"));
    }

    #[test]
    fn phases_and_types() {
        assert_eq!(
            Phase::parse(&EnumValue::Name("RESPONSE".into())),
            Ok(Phase::Response)
        );
        assert_eq!(Phase::parse(&EnumValue::Number(0)), Ok(Phase::Request));
        assert!(Phase::parse(&EnumValue::Name("LATER".into())).is_err());
        assert_eq!(
            ValueType::parse(&EnumValue::Name("int".into())),
            Ok(ValueType::Int)
        );
        assert!(ValueType::parse(&EnumValue::Number(1)).is_err());
    }
}
