//! Labelled metrics through proxy-wasm, which has no labels.
//!
//! The only route is to encode the labels into the stat name and let Envoy's
//! tag extractors (bootstrap `stats_config.stats_tags`, or Istio's
//! `extraStatTags`) cut them back out. This module owns that encoding, the
//! sanitising that keeps client-controlled values from breaking it, and the
//! cap on distinct series per metric.
//!
//! # Name encoding
//!
//! Istio's own (pre-1.18) style, tags first, then the metric:
//!
//! ```text
//! destination_service=.=upstream;.;request_operation=.=ListBooks;.;response_code=.=200;.;istio_get_calls
//! ```
//!
//! Envoy stores it as `wasmcustom.<that>`. One extractor per label,
//! `(<label>=\.=(.*?);\.;)` ([`tag_regex`]), removes `<label>=.=<value>;.;`
//! and makes `<value>` the label, leaving `wasmcustom.istio_get_calls`, which
//! `/stats/prometheus` prints without namespace and without `envoy_` prefix:
//! `istio_get_calls{destination_service="upstream",request_operation="ListBooks",response_code="200"} 7`.
//! Istio generates exactly this regex for every name in `extraStatTags`, so
//! the same module works on Istio and on plain Envoy.
//!
//! Labels are always written in one order (the caller passes them sorted):
//! two orders would be two Envoy stats printing as duplicate series.
//!
//! # Safety of values
//!
//! [`sanitize_value`] keeps `A-Z a-z 0-9 _ - . / : @ ~ +`, replaces anything
//! else (including `=`, `;`, quotes, backslashes, control characters and
//! non-ASCII) with `_`, never lets two dots follow each other, and cuts the
//! value to a maximum length. Without `=` and `;` a value can never contain a
//! separator (`=.=`, `;.;`), so it can neither end its own tag early nor forge
//! another one; its size is bounded, and so is the name. Envoy runs every
//! extractor on the whole original name, so a foreign extractor can at worst
//! *add* a label from a substring of a value; the dot after the words Istio's
//! bootstrap extracts unanchored ([`ISTIO_FOREIGN_WORDS`]) is replaced too.
//!
//! # Series cap
//!
//! [`SeriesTable`] admits at most `max_series` distinct label sets per metric
//! per Envoy; later ones are folded into one series whose labels all read
//! [`OVERFLOW`], and counted by the metric's own `<name>_overflow_total`
//! counter. The table defines the metric on the [`Host`] port with its label
//! names and records with label values; the proxy-wasm host turns each label
//! set into the encoded stat name above. The admitted set lives in proxy-wasm shared data (per `vm_id`,
//! shared by every worker VM) as 8-byte FNV-1a hashes, updated with
//! compare-and-swap, so the cap holds across workers.

use crate::host::{Host, HostError, MetricId, MetricKind};
use std::cell::RefCell;
use std::collections::HashSet;

/// Value of a label whose expression failed or produced nothing.
pub const UNKNOWN: &str = "unknown";
/// Value of every label of the overflow series.
pub const OVERFLOW: &str = "overflow";
/// Default maximum length of a label value, in bytes.
pub const DEFAULT_MAX_VALUE_LENGTH: usize = 64;
/// Largest accepted maximum length of a label value.
pub const MAX_VALUE_LENGTH_LIMIT: usize = 256;
/// Default cap on distinct series per metric.
pub const DEFAULT_MAX_SERIES: usize = 1000;
/// Largest accepted cap (the shared registry holds 8 bytes per series).
pub const MAX_SERIES_LIMIT: usize = 10_000;
/// Separator between a label and its value.
pub const VALUE_SEPARATOR: &str = "=.=";
/// Separator after each label's value.
pub const TAG_SEPARATOR: &str = ";.;";
/// Suffix of the counter that counts records folded into the overflow series.
pub const OVERFLOW_COUNTER_SUFFIX: &str = "_overflow_total";
/// Prefix of the shared-data key holding a metric's admitted series.
const REGISTRY_PREFIX: &str = "wasm_telemetry_filters.series.";
/// Compare-and-swap attempts before a new series is folded into overflow.
const CAS_ATTEMPTS: usize = 16;
/// Longest metric or label name.
const MAX_NAME_LENGTH: usize = 100;

/// Checks a metric name: a Prometheus name without colons
/// (`[A-Za-z_][A-Za-z0-9_]*`), at most 100 bytes, and not ending in
/// `_rq_<3 digits>` or `_rq_<digit>xx`, which Envoy's default tag extractors
/// would cut.
pub fn check_metric_name(name: &str) -> Result<(), String> {
    check_identifier(name, "metric name")?;
    let b = name.as_bytes();
    if let Some(tail) = b.len().checked_sub(7).and_then(|at| b.get(at..)) {
        let code = tail.get(4..).unwrap_or_default();
        let is_code = code.iter().all(u8::is_ascii_digit)
            || matches!(code, [d, b'x', b'x'] if d.is_ascii_digit());
        if tail.starts_with(b"_rq_") && is_code {
            return Err(format!(
                "metric name \"{name}\" ends like an Envoy response-code stat (_rq_NNN); \
                 Envoy's default tag extractors would cut it"
            ));
        }
    }
    Ok(())
}

/// Checks a label name: `[A-Za-z_][A-Za-z0-9_]*`, at most 100 bytes.
pub fn check_label_name(name: &str) -> Result<(), String> {
    check_identifier(name, "label name")
}

fn check_identifier(name: &str, what: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_');
    if !first_ok || !bytes.all(|c| c.is_ascii_alphanumeric() || c == b'_') {
        return Err(format!(
            "{what} \"{name}\" must match [A-Za-z_][A-Za-z0-9_]* (a Prometheus name)"
        ));
    }
    if name.len() > MAX_NAME_LENGTH {
        return Err(format!(
            "{what} \"{name}\" is longer than {MAX_NAME_LENGTH} bytes"
        ));
    }
    Ok(())
}

/// Two label names where the second ends with the first (`code`,
/// `response_code`): the extractor of the shorter one would also match inside
/// the longer one's tag. Returns the first such pair.
pub fn suffix_clash<'a>(labels: &[&'a str]) -> Option<(&'a str, &'a str)> {
    labels.iter().find_map(|short| {
        labels
            .iter()
            .find(|long| long.len() > short.len() && long.ends_with(*short))
            .map(|long| (*short, *long))
    })
}

/// Words that Istio's sidecar bootstrap extracts wherever they are followed
/// by a dot (`(cache\.(.+?)\.)`, `(component\.(.+?)\.)`, `(tag\.(.+?);\.)`,
/// `(wasm_filter\.(.+?)\.)`, `rbac(\.(allowed|denied))`; also `.shadow_` and
/// `.istio_dry_run_`): in a value they would add a label to the series
/// (verified on Envoy 1.40). The dot after them becomes `_`.
pub const ISTIO_FOREIGN_WORDS: [&str; 5] = ["cache", "component", "tag", "wasm_filter", "rbac"];

/// Whether a byte may appear in a label value as is.
fn allowed(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"_-./:@~+".contains(&c)
}

/// Makes a raw value (CEL result, header, path…) safe for the name encoding:
/// allow-listed characters only (others become `_`, one per character), no
/// `..`, at most `max_len` bytes; empty becomes [`UNKNOWN`].
pub fn sanitize_value(raw: &[u8], max_len: usize) -> String {
    let mut out = String::with_capacity(raw.len().min(max_len));
    sanitize_value_into(raw, max_len, &mut out);
    out
}

/// [`sanitize_value`] into `out` (cleared first), reusing its allocation.
pub fn sanitize_value_into(raw: &[u8], max_len: usize, out: &mut String) {
    out.clear();
    let text = String::from_utf8_lossy(
        raw.get(..raw.len().min(max_len.saturating_mul(4)))
            .unwrap_or(raw),
    );
    for ch in text.chars() {
        if out.len() >= max_len {
            break;
        }
        let c = if ch.is_ascii() && allowed(ch as u8) {
            ch
        } else {
            '_'
        };
        // Consecutive dots would make an empty segment in Envoy's stat name;
        // a dot after a word of ISTIO_FOREIGN_WORDS would let one of Istio's
        // unanchored bootstrap extractors add a label of its own.
        if c == '.' && (out.ends_with('.') || ISTIO_FOREIGN_WORDS.iter().any(|w| out.ends_with(w)))
        {
            out.push('_');
        } else {
            out.push(c);
        }
    }
    // Until none is left: replacing a dot can complete another occurrence
    // (`.istio_dry_run.istio_dry_run_`, `.istio_dry_run.shadow_`); each
    // round removes a dot. Found by the label_encoding fuzz target.
    while let Some(word) = [".shadow_", ".istio_dry_run_"]
        .into_iter()
        .find(|w| out.contains(w))
    {
        *out = out.replace(word, &word.replacen('.', "_", 1));
    }
    if out.is_empty() {
        out.push_str(UNKNOWN);
    }
}

/// The stat name for `metric` with `labels` (label, already sanitised value),
/// in the order given: `l1=.=v1;.;l2=.=v2;.;metric`.
pub fn encode(metric: &str, labels: &[(&str, &str)]) -> String {
    let len = labels
        .iter()
        .map(|(l, v)| l.len() + v.len() + 6)
        .sum::<usize>()
        + metric.len();
    let mut name = String::with_capacity(len);
    for (label, value) in labels {
        name.push_str(label);
        name.push_str(VALUE_SEPARATOR);
        name.push_str(value);
        name.push_str(TAG_SEPARATOR);
    }
    name.push_str(metric);
    name
}

/// The tag extractor for `label`, as Envoy's `stats_tags[].regex` and as the
/// one Istio generates for each `extraStatTags` entry.
pub fn tag_regex(label: &str) -> String {
    format!(r"({label}=\.=(.*?);\.;)")
}

/// Name of the counter of records folded into `metric`'s overflow series.
pub fn overflow_counter_name(metric: &str) -> String {
    format!("{metric}{OVERFLOW_COUNTER_SUFFIX}")
}

/// 64-bit FNV-1a: identical in every VM (unlike std's randomly seeded hasher).
pub fn series_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// [`series_hash`] of `encode(metric, labels ⨯ values)`, without building
/// the name.
fn series_hash_of(metric: &str, labels: &[String], values: &[&str]) -> u64 {
    let fold = |h: u64, bytes: &[u8]| {
        bytes.iter().fold(h, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let mut h = series_hash("");
    for (label, value) in labels.iter().zip(values) {
        h = fold(h, label.as_bytes());
        h = fold(h, VALUE_SEPARATOR.as_bytes());
        h = fold(h, value.as_bytes());
        h = fold(h, TAG_SEPARATOR.as_bytes());
    }
    fold(h, metric.as_bytes())
}

fn decode_registry(blob: &[u8]) -> impl Iterator<Item = u64> + '_ {
    blob.chunks_exact(8)
        .filter_map(|c| <[u8; 8]>::try_from(c).ok().map(u64::from_le_bytes))
}

/// Where one record went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    /// Its own series.
    Admitted,
    /// The overflow series (already counted in the overflow counter).
    Overflow,
}

/// The series of one metric in one VM, capped per Envoy.
///
/// Per VM it keeps the hashes of the label sets it has used (at most
/// `max_series`) and, once the shared registry is full, a copy of it (at
/// most `max_series` hashes). A VM reads shared data only for a label set it
/// has not used yet and only until the registry is full.
#[derive(Debug)]
pub struct SeriesTable {
    metric: String,
    labels: Vec<String>,
    id: Result<MetricId, HostError>,
    max_series: usize,
    registry_key: String,
    overflow_values: Vec<&'static str>,
    overflow_counter: Option<MetricId>,
    known: RefCell<HashSet<u64>>,
    full: RefCell<Option<HashSet<u64>>>,
    /// The label values of the last admitted series: most records repeat
    /// it, and it is found without hashing.
    last: RefCell<Vec<String>>,
}

impl SeriesTable {
    /// A table for `metric` whose series carry `labels`. Call at configure
    /// time: defines the metric with its label names and the overflow
    /// counter, and creates the shared registry if it does not exist yet.
    pub fn new(
        host: &impl Host,
        kind: MetricKind,
        metric: &str,
        labels: &[&str],
        max_series: usize,
    ) -> Self {
        let registry_key = format!("{REGISTRY_PREFIX}{metric}");
        // Create the registry before traffic. proxy-wasm has no atomic
        // create: two VMs racing here both write an empty registry, which is
        // harmless; a VM never overwrites an existing one.
        if let Ok((None, _)) = host.shared_data(&registry_key) {
            let _ = host.set_shared_data(&registry_key, &[], 0);
        }
        SeriesTable {
            metric: metric.to_string(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            id: host.define_metric(kind, metric, labels),
            max_series: max_series.min(MAX_SERIES_LIMIT),
            registry_key,
            overflow_values: vec![OVERFLOW; labels.len()],
            overflow_counter: host
                .define_metric(MetricKind::Counter, &overflow_counter_name(metric), &[])
                .ok(),
            known: RefCell::new(HashSet::new()),
            full: RefCell::new(None),
            last: RefCell::new(Vec::new()),
        }
    }

    /// The metric's name.
    pub fn metric(&self) -> &str {
        &self.metric
    }

    /// The overflow series' stat name, as the proxy-wasm host encodes it.
    pub fn overflow_name(&self) -> String {
        let pairs: Vec<(&str, &str)> = self
            .labels
            .iter()
            .map(String::as_str)
            .zip(self.overflow_values.iter().copied())
            .collect();
        encode(&self.metric, &pairs)
    }

    /// Label sets used by this VM so far.
    pub fn known_len(&self) -> usize {
        self.known.borrow().len()
    }

    /// Adds `by` to the series of `values` (sanitised, one per label), or to
    /// the overflow series when the Envoy-wide cap is reached.
    pub fn increment(
        &self,
        host: &impl Host,
        values: &[&str],
        by: i64,
    ) -> Result<Series, HostError> {
        self.write(host, values, |id, series| host.increment(id, series, by))
    }

    /// Records `value` on the series of `values` (sanitised, one per label),
    /// or on the overflow series when the Envoy-wide cap is reached.
    pub fn record(
        &self,
        host: &impl Host,
        values: &[&str],
        value: u64,
    ) -> Result<Series, HostError> {
        self.write(host, values, |id, series| host.record(id, series, value))
    }

    /// Resolves the series of `values` and writes to it with `write`.
    fn write(
        &self,
        host: &impl Host,
        values: &[&str],
        write: impl FnOnce(MetricId, &[&str]) -> Result<(), HostError>,
    ) -> Result<Series, HostError> {
        if values.len() != self.labels.len() {
            return Err(HostError::BadArgument);
        }
        let id = self.id?;
        let series = self.resolve(host, values);
        write(id, self.values_of(series, values))?;
        Ok(series)
    }

    fn values_of<'a>(&'a self, series: Series, values: &'a [&'a str]) -> &'a [&'a str] {
        match series {
            Series::Admitted => values,
            Series::Overflow => &self.overflow_values,
        }
    }

    /// Whether the label set `values` has its own series (admitting it if
    /// the Envoy-wide cap allows) or goes to overflow (counted).
    fn resolve(&self, host: &impl Host, values: &[&str]) -> Series {
        if self.is_last(values) {
            return Series::Admitted;
        }
        let hash = series_hash_of(&self.metric, &self.labels, values);
        if self.known.borrow().contains(&hash) {
            self.remember(values);
            return Series::Admitted;
        }
        // Shared data unavailable: fold into overflow (the total stays
        // exact, the overflow counter shows it) rather than lose the record.
        if self.admit(host, hash).unwrap_or(false) {
            self.known.borrow_mut().insert(hash);
            self.remember(values);
            Series::Admitted
        } else {
            if let Some(c) = self.overflow_counter {
                let _ = host.increment(c, &[], 1);
            }
            Series::Overflow
        }
    }

    /// Whether `values` are those of the last admitted series.
    fn is_last(&self, values: &[&str]) -> bool {
        let last = self.last.borrow();
        !last.is_empty()
            && last.len() == values.len()
            && last.iter().zip(values).all(|(a, b)| a == b)
    }

    /// Keeps `values` as the last admitted series (reusing the strings).
    fn remember(&self, values: &[&str]) {
        let Ok(mut last) = self.last.try_borrow_mut() else {
            return;
        };
        last.resize_with(values.len(), String::new);
        for (kept, value) in last.iter_mut().zip(values) {
            kept.clear();
            kept.push_str(value);
        }
    }

    /// Whether the label set hashed `hash` is (or can be made) one of the
    /// admitted series.
    fn admit(&self, host: &impl Host, hash: u64) -> Result<bool, HostError> {
        if let Some(full) = self.full.borrow().as_ref() {
            return Ok(full.contains(&hash));
        }
        for _ in 0..CAS_ATTEMPTS {
            let (blob, cas) = host.shared_data(&self.registry_key)?;
            let blob = blob.unwrap_or_default();
            if decode_registry(&blob).any(|h| h == hash) {
                return Ok(true);
            }
            if blob.len() / 8 >= self.max_series {
                // Full: it never changes again, so keep a copy and stop
                // reading shared data.
                *self.full.borrow_mut() = Some(decode_registry(&blob).collect());
                return Ok(false);
            }
            let mut grown = blob;
            grown.extend_from_slice(&hash.to_le_bytes());
            match host.set_shared_data(&self.registry_key, &grown, cas) {
                Ok(()) => return Ok(true),
                Err(HostError::CasMismatch) => continue,
                Err(e) => return Err(e),
            }
        }
        // Lost every race: fold this record into overflow (not cached, so
        // the series is tried again next time).
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeHost;

    #[test]
    fn names() {
        assert!(check_metric_name("istio_get_calls").is_ok());
        assert!(check_metric_name("_x9").is_ok());
        for bad in ["", "9x", "a.b", "a-b", "a;b", "a=b", "ä"] {
            assert!(check_metric_name(bad).is_err(), "{bad}");
        }
        assert!(check_metric_name("upstream_rq_200").is_err());
        assert!(check_metric_name("upstream_rq_5xx").is_err());
        assert!(check_metric_name("upstream_rq_total").is_ok());
        assert!(check_metric_name(&"a".repeat(101)).is_err());
        assert!(check_label_name("response_code").is_ok());
        assert!(check_label_name("response code").is_err());
    }

    #[test]
    fn suffix_clashes_are_found() {
        assert_eq!(
            suffix_clash(&["code", "response_code"]),
            Some(("code", "response_code"))
        );
        assert_eq!(suffix_clash(&["request_operation", "response_code"]), None);
        assert_eq!(suffix_clash(&[]), None);
    }

    #[test]
    fn encoding_is_istio_style() {
        assert_eq!(
            encode("istio_get_calls", &[("a", "1"), ("b", "x.y")]),
            "a=.=1;.;b=.=x.y;.;istio_get_calls"
        );
        assert_eq!(encode("m", &[]), "m");
        assert_eq!(tag_regex("response_code"), r"(response_code=\.=(.*?);\.;)");
    }

    #[test]
    fn sanitising_blocks_separators_and_bounds_length() {
        assert_eq!(sanitize_value(b"ListBooks", 64), "ListBooks");
        assert_eq!(
            sanitize_value(b"reviews.default.svc.cluster.local", 64),
            "reviews.default.svc.cluster.local"
        );
        assert_eq!(sanitize_value(b"/books/1?a=b", 64), "/books/1_a_b");
        assert_eq!(sanitize_value(b"a;.;b=.=c", 64), "a_._b_._c");
        assert_eq!(sanitize_value(b"\"q\"\\\n\r\t ", 64), "_q______");
        assert_eq!(sanitize_value(b"a...b", 64), "a._.b");
        // Istio's unanchored extractors must find nothing.
        assert_eq!(sanitize_value(b"cache.a.b", 64), "cache_a.b");
        assert_eq!(sanitize_value(b"xcomponent.x.y", 64), "xcomponent_x.y");
        assert_eq!(sanitize_value(b"tag.q", 64), "tag_q");
        assert_eq!(sanitize_value(b"wasm_filter.z", 64), "wasm_filter_z");
        assert_eq!(sanitize_value(b"rbac.denied", 64), "rbac_denied");
        assert_eq!(sanitize_value(b"a.shadow_allowed", 64), "a_shadow_allowed");
        assert_eq!(
            sanitize_value(b"a.istio_dry_run_allow_", 64),
            "a_istio_dry_run_allow_"
        );
        assert_eq!(
            sanitize_value(b"a.istio_dry_run.istio_dry_run_x", 64),
            "a_istio_dry_run_istio_dry_run_x"
        );
        assert_eq!(
            sanitize_value(b"a.istio_dry_run.shadow_x", 64),
            "a_istio_dry_run_shadow_x"
        );
        assert_eq!(
            sanitize_value(b"cached.example.com", 64),
            "cached.example.com"
        );
        assert_eq!(sanitize_value("é€".as_bytes(), 64), "__");
        assert_eq!(sanitize_value(&[0xff, b'a'], 64), "_a");
        assert_eq!(sanitize_value(b"", 64), UNKNOWN);
        let long = sanitize_value(&vec![b'x'; 10_000], 64);
        assert_eq!(long.len(), 64);
        let long = sanitize_value("€".repeat(5000).as_bytes(), 10);
        assert_eq!(long, "__________");
        for v in [&b"a;.;b"[..], b"=.=", b";", b"x=.=y;.;z", b"....", b"\"\\"] {
            let s = sanitize_value(v, 64);
            assert!(!s.contains(';') && !s.contains('=') && !s.contains(".."));
            assert!(!s.contains('"') && !s.contains('\\'));
        }
    }

    #[test]
    fn hash_is_fixed() {
        assert_eq!(series_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(series_hash("a"), 0xaf63_dc4c_8601_ec8c);
        let labels = ["l1".to_string(), "l2".to_string()];
        assert_eq!(
            series_hash_of("m", &labels, &["x", "y.z"]),
            series_hash(&encode("m", &[("l1", "x"), ("l2", "y.z")]))
        );
    }

    #[test]
    fn cap_folds_new_series_into_overflow() {
        let host = FakeHost::new();
        let t = SeriesTable::new(&host, MetricKind::Counter, "m", &["l"], 2);
        let add = |v: &str| t.increment(&host, &[v], 1).unwrap();
        assert_eq!(add("a"), Series::Admitted);
        assert_eq!(add("b"), Series::Admitted);
        assert_eq!(add("a"), Series::Admitted);
        assert_eq!(add("c"), Series::Overflow);
        assert_eq!(add("d"), Series::Overflow);
        assert_eq!(add("b"), Series::Admitted);
        assert_eq!(host.metric("l=.=a;.;m"), 2);
        assert_eq!(host.metric("l=.=overflow;.;m"), 2);
        assert_eq!(host.metric("m_overflow_total"), 2);
        assert!(host
            .metric_names()
            .contains(&"l=.=overflow;.;m".to_string()));
        assert_eq!(t.known_len(), 2);
    }

    #[test]
    fn cap_is_shared_between_vms() {
        // Two tables on one host = two VMs sharing Envoy's shared data.
        let host = FakeHost::new();
        let vm1 = SeriesTable::new(&host, MetricKind::Counter, "m", &["l"], 3);
        let vm2 = SeriesTable::new(&host, MetricKind::Counter, "m", &["l"], 3);
        assert_eq!(vm1.increment(&host, &["a"], 1), Ok(Series::Admitted));
        assert_eq!(vm2.increment(&host, &["b"], 1), Ok(Series::Admitted));
        assert_eq!(vm1.increment(&host, &["c"], 1), Ok(Series::Admitted));
        // Full across both: vm2 cannot add d, but still sees a and c.
        assert_eq!(vm2.increment(&host, &["d"], 1), Ok(Series::Overflow));
        assert_eq!(vm2.increment(&host, &["a"], 1), Ok(Series::Admitted));
        assert_eq!(vm2.increment(&host, &["c"], 1), Ok(Series::Admitted));
        assert_eq!(vm1.increment(&host, &["b"], 1), Ok(Series::Admitted));
        assert_eq!(vm1.increment(&host, &["e"], 1), Ok(Series::Overflow));
        assert_eq!(host.metric("m_overflow_total"), 2);
    }

    #[test]
    fn zero_cap_sends_everything_to_overflow() {
        let host = FakeHost::new();
        let t = SeriesTable::new(&host, MetricKind::Histogram, "h", &["a", "b"], 0);
        let s = t.record(&host, &["1", "2"], 5).unwrap();
        assert_eq!(s, Series::Overflow);
        assert_eq!(host.samples("a=.=overflow;.;b=.=overflow;.;h"), vec![5]);
        assert_eq!(t.overflow_name(), "a=.=overflow;.;b=.=overflow;.;h");
    }
}
