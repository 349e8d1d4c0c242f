//! The JSON configuration.
//!
//! ```json
//! {"metrics": [{
//!    "name": "istio_get_calls",
//!    "type": "COUNTER",
//!    "value": "1",
//!    "condition": "request.method == 'GET'",
//!    "dimensions": {"request_operation": "istio_operationId",
//!                   "response_code": "string(response.code)"},
//!    "max_series": 1000,
//!    "max_value_length": 64}]}
//! ```
//!
//! Keys may be snake_case or lowerCamel; numbers may be doubles with no
//! fraction (Istio's `pluginConfig` is a `Struct`). Unknown keys are errors,
//! so a typo is reported instead of silently ignored. `metrics` absent or
//! `null` means the default metric ([`default_metrics`]); `[]` means none.

use filter_common::config::{flexible_bool, nullable, ConfigError, EnumValue};
use filter_common::metrics::{DEFAULT_MAX_SERIES, DEFAULT_MAX_VALUE_LENGTH};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

/// The whole document. Each metric is kept as raw JSON and parsed on its
/// own, so one bad metric does not take the others down.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Document {
    /// Logs each metric compiled.
    #[serde(deserialize_with = "flexible_bool")]
    pub debug: bool,
    /// The metrics; `None` (absent or null) = the default metric.
    pub metrics: Option<Vec<serde_json::Value>>,
}

/// Kind of a metric.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `COUNTER` (default; also `0`): adds `value` (> 0) per stream.
    #[default]
    Counter,
    /// `HISTOGRAM` (also `2`): records `value` (>= 0) per stream.
    Histogram,
}

/// One metric.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricConfig {
    /// Prometheus name, e.g. `istio_get_calls`.
    pub name: String,
    /// Counter or histogram.
    #[serde(default, rename = "type", deserialize_with = "kind")]
    pub kind: Kind,
    /// CEL integer per stream; empty = 1.
    #[serde(default, deserialize_with = "nullable")]
    pub value: String,
    /// CEL bool; the stream is recorded only when true. Empty = always.
    #[serde(default, deserialize_with = "nullable")]
    pub condition: String,
    /// Label name → CEL expression giving its value (string or bytes).
    #[serde(default, deserialize_with = "nullable")]
    pub dimensions: BTreeMap<String, String>,
    /// Cap on distinct series (label sets) per Envoy.
    #[serde(
        default = "default_max_series",
        alias = "maxSeries",
        deserialize_with = "whole_number"
    )]
    pub max_series: u64,
    /// Longest label value in bytes; longer values are cut.
    #[serde(
        default = "default_max_value_length",
        alias = "maxValueLength",
        deserialize_with = "whole_number"
    )]
    pub max_value_length: u64,
}

fn default_max_series() -> u64 {
    DEFAULT_MAX_SERIES as u64
}

fn default_max_value_length() -> u64 {
    DEFAULT_MAX_VALUE_LENGTH as u64
}

/// The default `destination_service`: Istio's service host from the cluster
/// metadata (as istiod writes it), else the upstream cluster's name. Read
/// without a CEL evaluation ([`crate::istio_service`]) wherever it appears.
pub const ISTIO_DESTINATION_SERVICE: &str = "has(xds.cluster_metadata.filter_metadata.istio) && \
     has(xds.cluster_metadata.filter_metadata.istio.services) && \
     size(xds.cluster_metadata.filter_metadata.istio.services) > 0 ? \
     string(xds.cluster_metadata.filter_metadata.istio.services[0].host) : xds.cluster_name";

/// The metric used when the configuration names none: GET requests by
/// operation (attributegen's `istio_operationId`), response code and
/// destination service (Istio's service host from the cluster metadata, else
/// the upstream cluster's name).
pub fn default_metrics() -> Vec<MetricConfig> {
    let dims = [
        ("destination_service", ISTIO_DESTINATION_SERVICE),
        ("request_operation", "istio_operationId"),
        ("response_code", "string(response.code)"),
    ];
    vec![MetricConfig {
        name: "istio_get_calls".to_string(),
        kind: Kind::Counter,
        value: String::new(),
        condition: "request.method == 'GET'".to_string(),
        dimensions: dims
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        max_series: default_max_series(),
        max_value_length: default_max_value_length(),
    }]
}

/// Parses one metric (`metrics[index]`), errors with their full path.
pub fn parse_metric(index: usize, raw: &serde_json::Value) -> Result<MetricConfig, ConfigError> {
    serde_path_to_error::deserialize(raw).map_err(|e| {
        let inner = e.path().to_string();
        let path = if inner == "." || inner.is_empty() {
            format!("metrics[{index}]")
        } else {
            format!("metrics[{index}].{inner}")
        };
        ConfigError::new(path, e.into_inner().to_string())
    })
}

fn kind<'de, D: Deserializer<'de>>(d: D) -> Result<Kind, D::Error> {
    match Option::<EnumValue>::deserialize(d)? {
        None | Some(EnumValue::Number(0)) => Ok(Kind::Counter),
        Some(EnumValue::Number(2)) => Ok(Kind::Histogram),
        Some(EnumValue::Name(n)) if n.eq_ignore_ascii_case("counter") => Ok(Kind::Counter),
        Some(EnumValue::Name(n)) if n.eq_ignore_ascii_case("histogram") => Ok(Kind::Histogram),
        Some(EnumValue::Name(n)) if n.eq_ignore_ascii_case("gauge") => Err(D::Error::custom(
            "GAUGE is not supported (a per-stream gauge is last-writer-wins across workers); \
             use COUNTER or HISTOGRAM",
        )),
        Some(EnumValue::Number(1)) => Err(D::Error::custom(
            "GAUGE (1) is not supported; use COUNTER or HISTOGRAM",
        )),
        Some(other) => Err(D::Error::custom(format!(
            "unknown type {other:?}, expected COUNTER or HISTOGRAM"
        ))),
    }
}

/// A non-negative whole number, written as an integer or a double without
/// fraction (Istio's `Struct` numbers are doubles).
fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    if let Some(u) = n.as_u64() {
        return Ok(u);
    }
    match n.as_f64() {
        Some(f) if f >= 0.0 && f.fract() == 0.0 && f < 1e15 => Ok(f as u64),
        _ => Err(D::Error::custom(format!(
            "expected a non-negative whole number, got {n}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use filter_common::config::parse_json;

    fn metric(raw: &str) -> Result<MetricConfig, ConfigError> {
        parse_metric(0, &serde_json::from_str(raw).unwrap())
    }

    #[test]
    fn absent_metrics_mean_default() {
        let d: Document = parse_json(None).unwrap();
        assert!(d.metrics.is_none());
        let d: Document = parse_json(Some(b"{}")).unwrap();
        assert!(d.metrics.is_none());
        let d: Document = parse_json(Some(br#"{"metrics":null}"#)).unwrap();
        assert!(d.metrics.is_none());
        let d: Document = parse_json(Some(br#"{"metrics":[]}"#)).unwrap();
        assert_eq!(d.metrics.map(|m| m.len()), Some(0));
        let m = default_metrics();
        assert_eq!(m[0].name, "istio_get_calls");
        let labels: Vec<&String> = m[0].dimensions.keys().collect();
        assert_eq!(
            labels,
            ["destination_service", "request_operation", "response_code"]
        );
    }

    #[test]
    fn full_metric_with_camel_case_and_doubles() {
        let m = metric(
            r#"{"name":"x","type":"histogram","value":"v","condition":"c",
                "dimensions":{"b":"1","a":"2"},"maxSeries":10.0,"max_value_length":32}"#,
        )
        .unwrap();
        assert_eq!(m.kind, Kind::Histogram);
        assert_eq!((m.max_series, m.max_value_length), (10, 32));
        // Sorted by label: the one fixed order.
        assert_eq!(m.dimensions.keys().collect::<Vec<_>>(), ["a", "b"]);
        let m = metric(r#"{"name":"x","type":0}"#).unwrap();
        assert_eq!(m.kind, Kind::Counter);
        assert_eq!(m.max_series, 1000);
        assert_eq!(m.max_value_length, 64);
    }

    #[test]
    fn errors_name_the_metric_and_field() {
        let e = metric(r#"{"name":"x","type":"GAUGE"}"#).unwrap_err();
        assert_eq!(e.path, "metrics[0].type");
        assert!(e.reason.contains("GAUGE is not supported"), "{e}");
        let e = metric(r#"{"name":"x","dimension":{}}"#).unwrap_err();
        assert_eq!(e.path, "metrics[0].dimension");
        assert!(e.reason.contains("unknown field"), "{e}");
        let e = metric(r#"{"type":"COUNTER"}"#).unwrap_err();
        assert_eq!(e.path, "metrics[0]");
        assert!(e.reason.contains("missing field `name`"), "{e}");
        let e = metric(r#"{"name":"x","max_series":1.5}"#).unwrap_err();
        assert_eq!(e.path, "metrics[0].max_series");
        let e = metric(r#"{"name":"x","dimensions":{"a":1}}"#).unwrap_err();
        assert_eq!(e.path, "metrics[0].dimensions.a");
        let e = parse_json::<Document>(Some(br#"{"metric":[]}"#)).unwrap_err();
        assert!(e.reason.contains("unknown field `metric`"), "{e}");
    }
}
