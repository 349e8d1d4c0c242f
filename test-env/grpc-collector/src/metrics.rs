//! Metric families of a metrics-service snapshot
//! (`io.prometheus.client.MetricFamily`) as JSON objects, one per series.

use envoy_types::pb::io::prometheus::client::{Metric, MetricFamily, MetricType};
use serde_json::{json, Map, Value};

/// Which families to keep: those whose name starts with one of the prefixes
/// (all when there are none).
#[derive(Debug, Clone, Default)]
pub struct NameFilter {
    prefixes: Vec<String>,
}

impl NameFilter {
    /// A filter from a comma-separated list of prefixes (empty: keep all).
    pub fn parse(list: &str) -> Self {
        NameFilter {
            prefixes: list
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect(),
        }
    }

    /// Whether a family of this name is kept.
    pub fn keeps(&self, name: &str) -> bool {
        self.prefixes.is_empty() || self.prefixes.iter().any(|p| name.starts_with(p.as_str()))
    }
}

/// Splits a stat name with Istio-style tags (`key=.=value;.;`, what
/// get-calls and Istio's own stats encode, and what Istio's `extraStatTags`
/// extractors take apart) into the bare name and the labels:
/// `wasmcustom.a=.=1;.;b=.=2;.;istio_get_calls` →
/// (`wasmcustom.istio_get_calls`, {a: 1, b: 2}). A metrics service without
/// `emit_tags_as_labels` (Istio's bootstrap) sends such names. `None` when
/// the name has no such tag.
pub fn split_tagged_name(name: &str) -> Option<(String, Map<String, Value>)> {
    let mut labels = Map::new();
    let mut bare = String::new();
    let mut rest = name;
    while let Some(eq) = rest.find("=.=") {
        let before = rest.get(..eq)?;
        let key_start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let after = rest.get(eq + 3..)?;
        let end = after.find(";.;")?;
        let key = before.get(key_start..)?;
        if key.is_empty() {
            return None;
        }
        bare.push_str(before.get(..key_start)?);
        labels.insert(key.to_string(), json!(after.get(..end)?));
        rest = after.get(end + 3..)?;
    }
    if labels.is_empty() {
        return None;
    }
    bare.push_str(rest);
    Some((bare, labels))
}

/// One JSON object per series of the family:
/// `{"name", "type", "labels":{…}, "value"}` for counters, gauges and
/// untyped; histograms carry `"count"`, `"sum"` and
/// `"buckets":[{"le","count"}]`, summaries `"count"`, `"sum"`,
/// `"quantiles":[{"q","value"}]`. `"timestamp_ms"` when Envoy set one. A
/// family name with Istio-style tags and no labels is split
/// ([`split_tagged_name`]): `"name"` is the bare name, the tags become the
/// labels, and `"stat"` keeps the name as sent.
pub fn series(family: &MetricFamily) -> Vec<Value> {
    let name = family.name.clone().unwrap_or_default();
    let kind = family
        .r#type
        .and_then(|t| MetricType::try_from(t).ok())
        .unwrap_or(MetricType::Untyped);
    family.metric.iter().map(|m| one(&name, kind, m)).collect()
}

fn one(name: &str, kind: MetricType, m: &Metric) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), json!(name));
    out.insert("type".into(), json!(kind.as_str_name().to_lowercase()));
    let labels: Map<String, Value> = m
        .label
        .iter()
        .map(|l| {
            (
                l.name.clone().unwrap_or_default(),
                json!(l.value.clone().unwrap_or_default()),
            )
        })
        .collect();
    match split_tagged_name(name) {
        Some((bare, tags)) if labels.is_empty() => {
            out.insert("name".into(), json!(bare));
            out.insert("stat".into(), json!(name));
            out.insert("labels".into(), Value::Object(tags));
        }
        _ => {
            out.insert("labels".into(), Value::Object(labels));
        }
    }
    if let Some(c) = &m.counter {
        out.insert("value".into(), json!(c.value.unwrap_or(0.0)));
    } else if let Some(g) = &m.gauge {
        out.insert("value".into(), json!(g.value.unwrap_or(0.0)));
    } else if let Some(u) = &m.untyped {
        out.insert("value".into(), json!(u.value.unwrap_or(0.0)));
    } else if let Some(h) = &m.histogram {
        put_count_sum(&mut out, h.sample_count, h.sample_sum);
        let buckets: Vec<Value> = h
            .bucket
            .iter()
            .map(|b| {
                json!({ "le": b.upper_bound.unwrap_or(f64::INFINITY).to_string(),
                        "count": b.cumulative_count.unwrap_or(0) })
            })
            .collect();
        out.insert("buckets".into(), json!(buckets));
    } else if let Some(s) = &m.summary {
        put_count_sum(&mut out, s.sample_count, s.sample_sum);
        let q: Vec<Value> = s
            .quantile
            .iter()
            .map(|q| json!({ "q": q.quantile.unwrap_or(0.0), "value": q.value.unwrap_or(0.0) }))
            .collect();
        out.insert("quantiles".into(), json!(q));
    }
    if let Some(ts) = m.timestamp_ms {
        out.insert("timestamp_ms".into(), json!(ts));
    }
    Value::Object(out)
}

/// A histogram's or summary's `"count"` and `"sum"` (0 when unset).
fn put_count_sum(out: &mut Map<String, Value>, count: Option<u64>, sum: Option<f64>) {
    out.insert("count".into(), json!(count.unwrap_or(0)));
    out.insert("sum".into(), json!(sum.unwrap_or(0.0)));
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use envoy_types::pb::io::prometheus::client::{Bucket, Counter, Histogram, LabelPair};

    fn label(n: &str, v: &str) -> LabelPair {
        LabelPair {
            name: Some(n.into()),
            value: Some(v.into()),
        }
    }

    #[test]
    fn counter_with_labels() {
        let f = MetricFamily {
            name: Some("istio_get_calls".into()),
            r#type: Some(MetricType::Counter as i32),
            metric: vec![Metric {
                label: vec![
                    label("request_operation", "GetBook"),
                    label("response_code", "200"),
                ],
                counter: Some(Counter {
                    value: Some(3.0),
                    ..Default::default()
                }),
                timestamp_ms: Some(1700),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            series(&f),
            vec![json!({"name": "istio_get_calls", "type": "counter",
                "labels": {"request_operation": "GetBook", "response_code": "200"},
                "value": 3.0, "timestamp_ms": 1700})]
        );
    }

    #[test]
    fn histogram_buckets() {
        let f = MetricFamily {
            name: Some("h".into()),
            r#type: Some(MetricType::Histogram as i32),
            metric: vec![Metric {
                histogram: Some(Histogram {
                    sample_count: Some(2),
                    sample_sum: Some(1.5),
                    bucket: vec![Bucket {
                        upper_bound: Some(0.5),
                        cumulative_count: Some(1),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            series(&f),
            vec![json!({"name": "h", "type": "histogram", "labels": {},
                "count": 2, "sum": 1.5, "buckets": [{"le": "0.5", "count": 1}]})]
        );
    }

    #[test]
    fn missing_type_is_untyped_and_empty_family_has_no_series() {
        let f = MetricFamily {
            name: Some("x".into()),
            metric: vec![Metric::default()],
            ..Default::default()
        };
        assert_eq!(series(&f)[0]["type"], json!("untyped"));
        assert!(series(&MetricFamily::default()).is_empty());
    }

    #[test]
    fn tagged_names_are_split() {
        let (name, labels) = split_tagged_name(
            "wasmcustom.destination_service=.=upstream;.;request_operation=.=Get.Book;.;istio_get_calls",
        )
        .unwrap();
        assert_eq!(name, "wasmcustom.istio_get_calls");
        assert_eq!(
            Value::Object(labels),
            json!({"destination_service": "upstream", "request_operation": "Get.Book"})
        );
        // A key is the run of word characters before `=.=`.
        let (name, labels) = split_tagged_name("x.total.reporter=.=destination;.;").unwrap();
        assert_eq!((name.as_str(), labels.len()), ("x.total.", 1));
        assert_eq!(split_tagged_name("cluster.upstream.upstream_rq_200"), None);
        assert_eq!(split_tagged_name("a=.=unterminated"), None);
        assert_eq!(split_tagged_name("=.=v;.;x"), None);
    }

    #[test]
    fn series_of_a_tagged_family_carry_the_tags_as_labels() {
        let full = "wasmcustom.request_operation=.=ListBooks;.;istio_get_calls";
        let f = MetricFamily {
            name: Some(full.into()),
            r#type: Some(MetricType::Counter as i32),
            metric: vec![Metric {
                counter: Some(Counter {
                    value: Some(2.0),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            series(&f),
            vec![
                json!({"name": "wasmcustom.istio_get_calls", "stat": full, "type": "counter",
                "labels": {"request_operation": "ListBooks"}, "value": 2.0})
            ]
        );
    }

    #[test]
    fn name_filter() {
        let all = NameFilter::parse("");
        assert!(all.keeps("anything"));
        let f = NameFilter::parse("istio_, access_logs.");
        assert!(f.keeps("istio_get_calls"));
        assert!(f.keeps("access_logs.grpc_access_log.logs_written"));
        assert!(!f.keeps("cluster.upstream.upstream_rq_total"));
    }
}
