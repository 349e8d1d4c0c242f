//! The label sanitiser and the stat-name encoding. Input:
//! `header [SEP value]*`; the header's first byte is the maximum value length
//! (0–255), the rest comma-separated label names (invalid ones, duplicates and
//! suffix clashes dropped; the first valid metric name among them is the
//! metric). Every sanitised value keeps the documented invariants, and the
//! encoded name reads back, through the tag regex Istio generates, into
//! exactly the labels it was made of, leaving exactly the metric name.
#![no_main]

use filter_common::metrics::{
    check_label_name, check_metric_name, encode, sanitize_value, suffix_clash, UNKNOWN,
};
use libfuzzer_sys::fuzz_target;
use telemetry_fuzz::{check_encoded, check_sanitized, check_stat_name, split_parts};

fuzz_target!(|data: &[u8]| {
    let parts = split_parts(data);
    let (header, values) = parts.split_first().expect("at least one part");
    let (max_len, names) = match header.split_first() {
        Some((b, rest)) => (usize::from(*b), rest),
        None => (64, &b""[..]),
    };
    let names = String::from_utf8_lossy(names);
    let mut metric = "istio_get_calls";
    let mut labels: Vec<&str> = Vec::new();
    for name in names.split(',') {
        if check_label_name(name).is_err() || labels.contains(&name) {
            continue;
        }
        if metric == "istio_get_calls" && check_metric_name(name).is_ok() {
            metric = name;
            continue;
        }
        let mut with = labels.clone();
        with.push(name);
        if suffix_clash(&with).is_none() {
            labels = with;
        }
    }
    if labels.is_empty() {
        labels = vec!["destination_service", "request_operation", "response_code"];
    }
    let sanitized: Vec<String> = values
        .iter()
        .map(|raw| {
            let v = sanitize_value(raw, max_len);
            check_sanitized(raw, &v, max_len);
            v
        })
        .collect();
    labels.sort_unstable();
    let unknown = String::from(UNKNOWN);
    let pairs: Vec<(&str, &str)> = labels
        .iter()
        .zip(sanitized.iter().chain(std::iter::repeat(&unknown)))
        .map(|(l, v)| (*l, v.as_str()))
        .collect();
    let name = encode(metric, &pairs);
    check_encoded(&name, metric, &pairs);
    check_stat_name(&name, max_len);
});
