//! Compiling a configuration into metrics, and recording them per stream.

use crate::config::{default_metrics, parse_metric, Document, Kind, MetricConfig};
use crate::{istio_service, FILTER_NAME};
use filter_common::attributes;
use filter_common::cel::{self, Expression};
use filter_common::config::{ConfigError, ConfigSource};
use filter_common::diagnostics::Diagnostics;
use filter_common::host::{Host, LogLevel, MetricKind};
use filter_common::metrics::{
    self, SeriesTable, MAX_SERIES_LIMIT, MAX_VALUE_LENGTH_LIMIT, OVERFLOW_COUNTER_SUFFIX, UNKNOWN,
};
use std::cell::RefCell;
use std::io::Write as _;

/// Counter of configurations with errors (+1 per such configuration per VM).
pub const CONFIG_ERRORS: &str = "wasm_filter.get_calls.type.config.error_count";
/// Counter of streams a metric could not record (condition or value failed
/// to evaluate or had the wrong type, or a host call failed).
pub const RUNTIME_ERRORS: &str = "wasm_filter.get_calls.type.runtime.error_count";
/// Prefix of every configuration error line.
pub const CONFIG_ERROR_PREFIX: &str = "get_calls: Config Error:";

/// Prefixes that Istio's sidecar bootstrap extracts, unanchored, right after
/// a dot (`(\.istio_dry_run_(allow|deny)_)`, `(\.shadow_(allowed|denied))`).
/// A metric's name (alone after `wasmcustom.` when it has no labels, and in
/// its overflow counter) and its first label (right after `wasmcustom.`)
/// must not start with one, or Istio would cut it out of the stat name and
/// add a label of its own.
const ISTIO_CAPTURED_PREFIXES: [&str; 2] = ["shadow_", "istio_dry_run_"];

/// Why Istio's extractors would capture `name`, if they would.
fn istio_captured(name: &str) -> Option<String> {
    ISTIO_CAPTURED_PREFIXES
        .iter()
        .find(|p| name.starts_with(**p))
        .map(|p| {
            format!(
                "\"{name}\" starts with \"{p}\", which Istio's stat tag extractors capture \
                 after a dot (authz_dry_run_*); choose another name"
            )
        })
}

/// One compiled metric.
struct Metric {
    name: String,
    kind: Kind,
    value: Option<Expression>,
    condition: Option<Expression>,
    /// Sorted by label: the one fixed order.
    dimensions: Vec<(String, Dimension)>,
    max_value_length: usize,
    series: SeriesTable,
}

/// How a dimension is read.
enum Dimension {
    /// A plain attribute path (`request.url_path`, `xds.cluster_name`, or a
    /// bare filter-state name such as `istio_operationId`): read with
    /// `get_property`, which resolves it exactly as CEL would and serializes
    /// the value the same way, without a CEL evaluation.
    Property(Vec<String>),
    /// `string(<path>)` of an integer attribute of the catalog
    /// (`string(response.code)`): read with `get_property` (8 bytes
    /// little-endian) and printed in decimal, as CEL's `string()` would;
    /// `true` for a uint.
    IntProperty(Vec<String>, bool),
    /// The default `destination_service` expression: read with
    /// `get_property` ([`crate::istio_service`]), the compiled expression
    /// kept for the cases the reads leave open.
    IstioService(Expression),
    /// Any other expression: Envoy's CEL.
    Cel(Expression),
}

/// How to read a dimension's source: a plain path, `string()` of an
/// integer attribute of the catalog ([`attributes::CATALOG`]), or CEL
/// (`None`).
fn fast_dimension(source: &str) -> Option<Dimension> {
    if let Some(path) = plain_path(source) {
        return Some(Dimension::Property(path));
    }
    let inner = source.trim().strip_prefix("string(")?.strip_suffix(')')?;
    let path = plain_path(inner)?;
    match attributes::lookup(&path)?.kind {
        attributes::Kind::Int => Some(Dimension::IntProperty(path, false)),
        attributes::Kind::Uint => Some(Dimension::IntProperty(path, true)),
        _ => None,
    }
}

/// Sets a label value from the raw bytes read: sanitised, or [`UNKNOWN`]
/// when there are none.
fn put_value(value: &mut String, raw: Option<&[u8]>, max_len: usize) {
    match raw {
        Some(raw) => metrics::sanitize_value_into(raw, max_len, value),
        None => {
            value.clear();
            value.push_str(UNKNOWN);
        }
    }
}

/// Writes the label value of a CEL dimension: its result as Envoy
/// serializes it (a typed result from the module's own evaluation reads
/// the same), or `unknown` when it failed.
fn put_cel(value: &mut String, host: &impl Host, expr: &Expression, max_len: usize) {
    match cel::evaluate(host, expr) {
        Ok(v) => v.with_serialized(|raw| put_value(value, Some(raw), max_len)),
        Err(_) => put_value(value, None, max_len),
    }
}

/// Longest path read without a heap-allocated segment list.
const STACK_SEGMENTS: usize = 8;

/// Calls `read` with `path` as `&[&str]`, on the stack for paths of up to
/// [`STACK_SEGMENTS`] segments.
fn with_segments<R>(path: &[String], read: impl FnOnce(&[&str]) -> R) -> R {
    if path.len() <= STACK_SEGMENTS {
        let mut segments = [""; STACK_SEGMENTS];
        for (segment, s) in segments.iter_mut().zip(path) {
            *segment = s.as_str();
        }
        read(segments.get(..path.len()).unwrap_or_default())
    } else {
        read(&path.iter().map(String::as_str).collect::<Vec<_>>())
    }
}

/// The segments of `source` if it is a plain attribute path: identifiers
/// joined by dots, the first not a CEL literal or reserved word.
fn plain_path(source: &str) -> Option<Vec<String>> {
    let segments: Vec<&str> = source.trim().split('.').collect();
    let ident = |s: &&str| {
        let mut b = s.bytes();
        b.next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
            && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
    };
    let first = segments.first()?;
    (segments.iter().all(ident) && !cel::RESERVED_WORDS.contains(first))
        .then(|| segments.iter().map(|s| s.to_string()).collect())
}

/// A compiled configuration: shared by every stream of a VM.
#[derive(Default)]
pub struct Plan {
    debug: bool,
    metrics: Vec<Metric>,
    diagnostics: Diagnostics,
    /// Reused buffer for label values (a VM is single-threaded).
    scratch: RefCell<Vec<String>>,
}

/// [`configure_source`] of raw JSON (a separate filter's configuration).
pub fn configure(raw: Option<&[u8]>, host: &impl Host) -> Plan {
    configure_source(ConfigSource::Raw(raw), host)
}

/// Parses and compiles a configuration. Never fails: an unparseable document
/// yields no metrics; a bad metric is dropped and the others kept. Every
/// problem is one WARN line `get_calls: Config Error: <path>: <reason>`
/// naming the metric, and the configuration counts once in
/// [`CONFIG_ERRORS`].
pub fn configure_source(source: ConfigSource<'_>, host: &impl Host) -> Plan {
    let diagnostics = Diagnostics::define(host, FILTER_NAME);
    let (plan, errors) = compile(source, host);
    for e in &errors {
        diagnostics.config_error(host, e);
    }
    diagnostics.count_configuration(host, errors.len());
    if plan.debug {
        for m in &plan.metrics {
            let labels: Vec<&str> = m.dimensions.iter().map(|(l, _)| l.as_str()).collect();
            host.log(
                LogLevel::Debug,
                &format!(
                    "{FILTER_NAME}: metric {} ({:?}) labels [{}]",
                    m.name,
                    m.kind,
                    labels.join(",")
                ),
            );
        }
    }
    Plan {
        diagnostics,
        ..plan
    }
}

/// Parses and compiles, returning the plan of every valid metric and every
/// error found (all of them, not just the first).
pub fn compile(source: ConfigSource<'_>, host: &impl Host) -> (Plan, Vec<ConfigError>) {
    let doc = match source.parse::<Document>() {
        Ok(doc) => doc,
        Err(e) => {
            let e = ConfigError::new(e.path, format!("{}; no metrics are recorded", e.reason));
            return (Plan::default(), vec![e]);
        }
    };
    let mut errors = Vec::new();
    let configs: Vec<(String, MetricConfig)> = match &doc.metrics {
        None => default_metrics()
            .into_iter()
            .map(|m| ("default metric".to_string(), m))
            .collect(),
        Some(raw) => raw
            .iter()
            .enumerate()
            .filter_map(|(i, m)| match parse_metric(i, m) {
                Ok(m) => Some((format!("metrics[{i}]"), m)),
                Err(e) => {
                    let name = m.get("name").and_then(|n| n.as_str()).unwrap_or("?");
                    errors.push(ConfigError::new(
                        e.path,
                        format!("{} (metric \"{name}\" dropped)", e.reason),
                    ));
                    None
                }
            })
            .collect(),
    };
    let mut metrics = Vec::with_capacity(configs.len());
    let mut names: Vec<String> = Vec::new();
    for (path, config) in &configs {
        match compile_metric(path, config, &names, host) {
            Ok(m) => {
                names.push(m.name.clone());
                metrics.push(m);
            }
            Err(e) => errors.push(e),
        }
    }
    // Label extractors are global to Envoy: a label that is a suffix of
    // another (code, response_code) would also cut inside the longer tag.
    let mut all_labels: Vec<&str> = metrics
        .iter()
        .flat_map(|m| m.dimensions.iter().map(|(l, _)| l.as_str()))
        .collect();
    all_labels.sort_unstable();
    all_labels.dedup();
    if let Some((short, long)) = metrics::suffix_clash(&all_labels) {
        let owners = |l: &str| {
            metrics
                .iter()
                .filter(|m| m.dimensions.iter().any(|(d, _)| d == l))
                .map(|m| m.name.clone())
                .collect::<Vec<_>>()
                .join(", ")
        };
        errors.push(ConfigError::new(
            "metrics",
            format!(
                "label \"{short}\" (metric {}) is a suffix of label \"{long}\" (metric {}); its tag \
                 extractor would also match inside \"{long}=.=…\"; rename one (no metrics are recorded)",
                owners(short),
                owners(long)
            ),
        ));
        metrics.clear();
    }
    let plan = Plan {
        debug: doc.debug,
        metrics,
        ..Plan::default()
    };
    (plan, errors)
}

fn compile_metric(
    path: &str,
    config: &MetricConfig,
    earlier: &[String],
    host: &impl Host,
) -> Result<Metric, ConfigError> {
    let name = &config.name;
    let err = |field: &str, reason: String| {
        let at = if field.is_empty() {
            path.to_string()
        } else {
            format!("{path}.{field}")
        };
        ConfigError::new(at, format!("metric \"{name}\": {reason} (metric dropped)"))
    };
    metrics::check_metric_name(name).map_err(|e| err("name", e))?;
    if earlier.iter().any(|n| n == name) {
        return Err(err(
            "name",
            "a metric of this name is already defined".into(),
        ));
    }
    if name.ends_with(OVERFLOW_COUNTER_SUFFIX)
        || earlier
            .iter()
            .any(|n| metrics::overflow_counter_name(n) == *name)
    {
        return Err(err(
            "name",
            format!("names ending in {OVERFLOW_COUNTER_SUFFIX} are reserved for overflow counters"),
        ));
    }
    for label in config.dimensions.keys() {
        metrics::check_label_name(label).map_err(|e| err(&format!("dimensions.{label}"), e))?;
    }
    if let Some(reason) = istio_captured(name) {
        return Err(err("name", reason));
    }
    // Labels are encoded in sorted order: only the first follows a dot.
    if let Some(first) = config.dimensions.keys().next() {
        if let Some(reason) = istio_captured(first) {
            return Err(err(&format!("dimensions.{first}"), reason));
        }
    }
    let max_series = usize::try_from(config.max_series)
        .ok()
        .filter(|n| *n <= MAX_SERIES_LIMIT)
        .ok_or_else(|| err("max_series", format!("must be at most {MAX_SERIES_LIMIT}")))?;
    let max_value_length = usize::try_from(config.max_value_length)
        .ok()
        .filter(|n| (1..=MAX_VALUE_LENGTH_LIMIT).contains(n))
        .ok_or_else(|| {
            err(
                "max_value_length",
                format!("must be between 1 and {MAX_VALUE_LENGTH_LIMIT}"),
            )
        })?;
    let compile = |field: &str, source: &str| -> Result<Option<Expression>, ConfigError> {
        if source.trim().is_empty() {
            return Ok(None);
        }
        cel::compile(host, source).map(Some).map_err(|e| {
            err(
                field,
                format!(
                    "CEL expression {source:?} does not compile ({e}); the CEL parser's message, \
                     with the position, is the log line just before this one"
                ),
            )
        })
    };
    let value = compile("value", &config.value)?;
    let condition = compile("condition", &config.condition)?;
    let mut dimensions = Vec::with_capacity(config.dimensions.len());
    for (label, source) in &config.dimensions {
        let field = format!("dimensions.{label}");
        if let Some(dim) = fast_dimension(source) {
            dimensions.push((label.clone(), dim));
            continue;
        }
        match compile(&field, source)? {
            Some(expr) if istio_service::is_default_expression(source) => {
                dimensions.push((label.clone(), Dimension::IstioService(expr)))
            }
            Some(expr) => dimensions.push((label.clone(), Dimension::Cel(expr))),
            None => return Err(err(&field, "expression is empty".into())),
        }
    }
    let kind = match config.kind {
        Kind::Counter => MetricKind::Counter,
        Kind::Histogram => MetricKind::Histogram,
    };
    let labels: Vec<&str> = dimensions.iter().map(|(l, _)| l.as_str()).collect();
    let series = SeriesTable::new(host, kind, name, &labels, max_series);
    Ok(Metric {
        name: name.clone(),
        kind: config.kind,
        value,
        condition,
        dimensions,
        max_value_length,
        series,
    })
}

impl Plan {
    /// Number of metrics.
    pub fn len(&self) -> usize {
        self.metrics.len()
    }

    /// True when nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }

    /// Names of the metrics, in configuration order.
    pub fn names(&self) -> Vec<&str> {
        self.metrics.iter().map(|m| m.name.as_str()).collect()
    }

    /// Records every metric for the current stream (call in `on_log`).
    /// Returns how many metrics recorded something.
    pub fn run(&self, host: &impl Host) -> usize {
        self.metrics.iter().filter(|m| self.record(m, host)).count()
    }

    fn record(&self, m: &Metric, host: &impl Host) -> bool {
        if let Some(cond) = &m.condition {
            match self.evaluate(host, m, "condition", cond, |v| v.as_bool()) {
                Some(true) => {}
                Some(false) | None => return false,
            }
        }
        let amount = match &m.value {
            None => 1,
            Some(expr) => match self.evaluate(host, m, "value", expr, |v| v.as_int()) {
                Some(v) => v,
                None => return false,
            },
        };
        if amount < 0 || (amount == 0 && m.kind == Kind::Counter) {
            if amount == 0 {
                return false; // a counter adds nothing
            }
            return self.runtime_error(host, m, "value", &format!("negative value {amount}"));
        }
        let Ok(mut values) = self.scratch.try_borrow_mut() else {
            return false;
        };
        // One reused string per dimension: no allocation once warm.
        values.resize_with(m.dimensions.len(), String::new);
        for ((_, dim), value) in m.dimensions.iter().zip(values.iter_mut()) {
            let max = m.max_value_length;
            match dim {
                Dimension::Property(path) => {
                    let raw = with_segments(path, |p| host.property_shared(p));
                    put_value(value, raw.ok().flatten().as_deref(), max);
                }
                Dimension::IntProperty(path, unsigned) => {
                    let raw = with_segments(path, |p| host.property_shared(p));
                    let number = raw
                        .ok()
                        .flatten()
                        .and_then(|raw| <[u8; 8]>::try_from(&*raw).ok());
                    // At most 20 digits and a sign: formatted on the stack.
                    let mut digits = [0u8; 24];
                    let text = number.and_then(|b| {
                        let mut out = digits.as_mut_slice();
                        let written = if *unsigned {
                            write!(out, "{}", u64::from_le_bytes(b))
                        } else {
                            write!(out, "{}", i64::from_le_bytes(b))
                        };
                        let left = out.len();
                        written.ok()?;
                        digits.get(..digits.len() - left)
                    });
                    put_value(value, text, max);
                }
                Dimension::IstioService(expr) => match istio_service::read(host) {
                    istio_service::Read::Value(v) => put_value(value, Some(&v), max),
                    istio_service::Read::Error => put_value(value, None, max),
                    istio_service::Read::Fallback => put_cel(value, host, expr, max),
                },
                Dimension::Cel(expr) => put_cel(value, host, expr, max),
            }
        }
        let values = values.get(..m.dimensions.len()).unwrap_or_default();
        with_segments(values, |values| self.write(host, m, values, amount))
    }

    fn write(&self, host: &impl Host, m: &Metric, values: &[&str], amount: i64) -> bool {
        let recorded = match m.kind {
            Kind::Counter => m.series.increment(host, values, amount),
            Kind::Histogram => m.series.record(host, values, amount.unsigned_abs()),
        };
        match recorded {
            Ok(_) => true,
            Err(e) => self.runtime_error(host, m, "record", &format!("host call failed ({e})")),
        }
    }

    /// Evaluates `m`'s `field` and reads its result as `read` does; a
    /// failure of either is a runtime error (counted, logged): `None`.
    fn evaluate<T>(
        &self,
        host: &impl Host,
        m: &Metric,
        field: &str,
        expr: &Expression,
        read: impl FnOnce(&cel::CelValue<'_>) -> Result<T, cel::DecodeError>,
    ) -> Option<T> {
        let why = match cel::evaluate(host, expr).map(|v| read(&v)) {
            Ok(Ok(v)) => return Some(v),
            Ok(Err(e)) => e.to_string(),
            Err(e) => format!("evaluation failed ({e})"),
        };
        self.runtime_error(host, m, field, &why);
        None
    }

    /// Counts and (throttled) logs a failure; returns false (not recorded).
    fn runtime_error(&self, host: &impl Host, m: &Metric, field: &str, why: &str) -> bool {
        self.diagnostics.runtime_error(host, || {
            let source = match field {
                "condition" => m.condition.as_ref().map_or("", |e| e.source()),
                "value" => m.value.as_ref().map_or("", |e| e.source()),
                _ => "",
            };
            format!(
                "metric \"{}\" {field} {source:?}: {why}; stream not recorded",
                m.name
            )
        });
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use filter_common::fake::FakeHost;
    use filter_common::host::HostError;

    fn default_host(get: bool, op: Option<&str>, code: &str) -> FakeHost {
        let host = FakeHost::new();
        host.eval_bool("request.method == 'GET'", get)
            .set_property("response.code", &code.parse::<i64>().unwrap().to_le_bytes());
        // The default destination_service is read, not evaluated: a
        // cluster without Istio metadata gives its name.
        host.set_property("xds.cluster_name", b"upstream");
        if let Some(op) = op {
            // A plain name: read with get_property, not CEL.
            host.set_property("istio_operationId", op.as_bytes());
        }
        host
    }

    fn series(op: &str, code: &str) -> String {
        format!(
            "destination_service=.=upstream;.;request_operation=.={op};.;response_code=.={code};.;istio_get_calls"
        )
    }

    #[test]
    fn default_counts_get_by_operation() {
        let host = default_host(true, Some("ListBooks"), "200");
        let p = configure(None, &host);
        assert_eq!(p.names(), ["istio_get_calls"]);
        for _ in 0..3 {
            assert_eq!(p.run(&host), 1);
        }
        assert_eq!(host.metric(&series("ListBooks", "200")), 3);
        assert!(host.logs_at_least(LogLevel::Warn).is_empty());
        assert_eq!(host.metric(CONFIG_ERRORS), 0);
    }

    #[test]
    fn default_skips_other_methods_and_labels_missing_operation_unknown() {
        let host = default_host(false, None, "200");
        let p = configure(Some(b"{}"), &host);
        assert_eq!(p.run(&host), 0);
        let host = default_host(true, None, "404");
        let p = configure(None, &host);
        p.run(&host);
        assert_eq!(host.metric(&series("unknown", "404")), 1);
        assert_eq!(host.metric(RUNTIME_ERRORS), 0);
    }

    #[test]
    fn hostile_values_cannot_forge_tags() {
        let host = default_host(true, Some("x;.;response_code=.=999"), "200");
        let p = configure(None, &host);
        p.run(&host);
        let names = host.metric_names();
        let name = names
            .iter()
            .find(|n| n.ends_with("istio_get_calls"))
            .unwrap();
        assert_eq!(name.matches("=.=").count(), 3, "{name}");
        assert_eq!(name.matches(";.;").count(), 3, "{name}");
        assert!(name.contains("request_operation=.=x_._response_code_._999;.;"));
    }

    #[test]
    fn histogram_records_value() {
        let host = FakeHost::new();
        host.eval(
            "int(request.headers['x-size'])",
            Ok(42i64.to_le_bytes().to_vec()),
        )
        .eval("'a'", Ok(b"a".to_vec()));
        let p = configure(
            Some(
                br#"{"metrics":[{"name":"sizes","type":"HISTOGRAM",
                    "value":"int(request.headers['x-size'])","dimensions":{"k":"'a'"}}]}"#,
            ),
            &host,
        );
        p.run(&host);
        p.run(&host);
        assert_eq!(host.samples("k=.=a;.;sizes"), vec![42, 42]);
    }

    #[test]
    fn counter_value_zero_is_skipped_negative_is_an_error() {
        let host = FakeHost::new();
        let p = configure(
            Some(br#"{"metrics":[{"name":"bytes","value":"n"}]}"#),
            &host,
        );
        host.eval("n", Ok(5i64.to_le_bytes().to_vec()));
        p.run(&host);
        host.eval("n", Ok(0i64.to_le_bytes().to_vec()));
        p.run(&host);
        host.eval("n", Ok((-1i64).to_le_bytes().to_vec()));
        p.run(&host);
        host.eval("n", Ok(b"str".to_vec()));
        p.run(&host);
        assert_eq!(host.metric("bytes"), 5);
        assert_eq!(host.metric(RUNTIME_ERRORS), 2);
    }

    #[test]
    fn counter_value_at_the_top_of_i64_is_added_twice() {
        let host = FakeHost::new();
        let p = configure(
            Some(br#"{"metrics":[{"name":"bytes","value":"n"}]}"#),
            &host,
        );
        host.eval("n", Ok(i64::MAX.to_le_bytes().to_vec()));
        p.run(&host);
        p.run(&host);
        // Two adds of i64::MAX wrap in the fake as in Envoy's 64-bit counter.
        assert_eq!(host.metric("bytes"), i64::MAX.wrapping_add(i64::MAX));
        assert_eq!(host.metric(RUNTIME_ERRORS), 0);
    }

    #[test]
    fn failing_condition_counts_runtime_error_and_throttles_logs() {
        let host = FakeHost::new();
        let p = configure(
            Some(br#"{"metrics":[{"name":"m","condition":"boom"}]}"#),
            &host,
        );
        for _ in 0..100 {
            assert_eq!(p.run(&host), 0);
        }
        assert_eq!(host.metric(RUNTIME_ERRORS), 100);
        let warn = host.logs_at_least(LogLevel::Warn);
        assert_eq!(warn.len(), 7);
        assert!(
            warn[0].contains("metric \"m\" condition \"boom\""),
            "{warn:?}"
        );
        host.eval("boom", Ok(b"xy".to_vec()));
        p.run(&host);
        assert_eq!(host.metric(RUNTIME_ERRORS), 101);
    }

    #[test]
    fn bad_metric_is_dropped_others_kept_one_line_each() {
        let host = FakeHost::new();
        host.reject("bad(");
        host.eval("'v'", Ok(b"v".to_vec()));
        let p = configure(
            Some(
                br#"{"metrics":[
                {"name":"good","dimensions":{"l":"'v'"}},
                {"name":"broken","dimensions":{"op":"bad("}},
                {"name":"typo","dimension":{}},
                {"name":"bad-name"},
                {"name":"good"},
                {"name":"gauge","type":"GAUGE"}]}"#,
            ),
            &host,
        );
        assert_eq!(p.names(), ["good"]);
        let warn = host.logs_at_least(LogLevel::Warn);
        assert_eq!(warn.len(), 5, "{warn:?}");
        assert!(warn.iter().all(|l| l.starts_with(CONFIG_ERROR_PREFIX)));
        assert!(warn[0].contains("metrics[2].dimension:") && warn[0].contains("\"typo\""));
        assert!(warn[1].contains("metrics[5].type:") && warn[1].contains("\"gauge\""));
        assert!(warn[2].contains("metrics[1].dimensions.op:"), "{warn:?}");
        assert!(warn[2].contains("metric \"broken\"") && warn[2].contains("\"bad(\""));
        assert!(warn[3].contains("metrics[3].name:") && warn[3].contains("bad-name"));
        assert!(warn[4].contains("metrics[4].name:") && warn[4].contains("already defined"));
        assert_eq!(host.metric(CONFIG_ERRORS), 1);
        p.run(&host);
        assert_eq!(host.metric("l=.=v;.;good"), 1);
    }

    #[test]
    fn names_istio_would_capture_are_rejected() {
        let host = FakeHost::new();
        host.eval("'v'", Ok(b"v".to_vec()));
        let p = configure(
            Some(
                br#"{"metrics":[
                {"name":"shadow_allowed"},
                {"name":"istio_dry_run_allow_calls","dimensions":{"l":"'v'"}},
                {"name":"first","dimensions":{"shadow_denied":"'v'","z":"'v'"}},
                {"name":"first_dry","dimensions":{"istio_dry_run_deny_x":"'v'"}},
                {"name":"later","dimensions":{"a":"'v'","shadow_allowed":"'v'"}},
                {"name":"my_shadow_allowed"}]}"#,
            ),
            &host,
        );
        // A later label follows ";.;", not a dot: Istio cannot capture it.
        assert_eq!(p.names(), ["later", "my_shadow_allowed"]);
        let warn = host.logs_at_least(LogLevel::Warn);
        assert_eq!(warn.len(), 4, "{warn:?}");
        assert!(warn[0].contains("metrics[0].name:") && warn[0].contains("\"shadow_\""));
        assert!(warn[1].contains("metrics[1].name:") && warn[1].contains("\"istio_dry_run_\""));
        assert!(
            warn[2].contains("metrics[2].dimensions.shadow_denied:"),
            "{warn:?}"
        );
        assert!(
            warn[3].contains("metrics[3].dimensions.istio_dry_run_deny_x:"),
            "{warn:?}"
        );
        assert_eq!(host.metric(CONFIG_ERRORS), 1);
    }

    #[test]
    fn unparseable_document_records_nothing() {
        let host = FakeHost::new();
        let p = configure(Some(b"metrics: [a]"), &host);
        assert!(p.is_empty());
        let warn = host.logs_at_least(LogLevel::Warn);
        assert_eq!(warn.len(), 1);
        assert!(warn[0].starts_with("get_calls: Config Error: $: invalid JSON"));
        assert_eq!(host.metric(CONFIG_ERRORS), 1);
    }

    #[test]
    fn suffix_labels_and_limits_are_rejected() {
        let host = FakeHost::new();
        let p = configure(
            Some(
                br#"{"metrics":[{"name":"a","dimensions":{"code":"x"}},
                                {"name":"b","dimensions":{"response_code":"y"}}]}"#,
            ),
            &host,
        );
        assert!(p.is_empty());
        let warn = host.logs_at_least(LogLevel::Warn);
        assert!(
            warn[0].contains("label \"code\" (metric a) is a suffix of label \"response_code\"")
        );
        let host = FakeHost::new();
        let p = configure(
            Some(
                br#"{"metrics":[{"name":"a","max_series":100000},
                                {"name":"b","max_value_length":0},
                                {"name":"c_overflow_total"},
                                {"name":"d","dimensions":{"x":""}}]}"#,
            ),
            &host,
        );
        assert!(p.is_empty());
        assert_eq!(host.logs_at_least(LogLevel::Warn).len(), 4);
    }

    #[test]
    fn dimension_errors_give_unknown_and_values_are_cut() {
        let host = FakeHost::new();
        host.set_property("long", &[b'x'; 10_000]);
        host.eval("bad()", Err(HostError::InternalFailure));
        let p = configure(
            Some(
                br#"{"metrics":[{"name":"m","max_value_length":8,
                     "dimensions":{"a":"long","b":"bad()","c":"request.missing"}}]}"#,
            ),
            &host,
        );
        p.run(&host);
        assert_eq!(
            host.metric("a=.=xxxxxxxx;.;b=.=unknown;.;c=.=unknown;.;m"),
            1
        );
        assert_eq!(host.metric(RUNTIME_ERRORS), 0);
    }

    #[test]
    fn plain_paths_are_read_as_properties() {
        assert_eq!(
            plain_path(" request.url_path "),
            Some(vec!["request".to_string(), "url_path".to_string()])
        );
        assert_eq!(plain_path("istio_operationId").map(|p| p.len()), Some(1));
        for cel in [
            "true",
            "null",
            "string(response.code)",
            "request.headers['x']",
            "a..b",
            ".a",
            "a.",
            "1a",
            "'lit'",
            "a == b",
        ] {
            assert_eq!(plain_path(cel), None, "{cel}");
        }
        assert!(matches!(
            fast_dimension("string(response.code)"),
            Some(Dimension::IntProperty(..))
        ));
        assert!(fast_dimension("string(request.path)").is_none());
        assert!(fast_dimension("string(response.code) + 'x'").is_none());
        // A plain path never reaches CEL: evaluate() would fail here.
        let host = FakeHost::new();
        host.set_property("xds.cluster_name", b"upstream");
        let p = configure(
            Some(br#"{"metrics":[{"name":"m","dimensions":{"c":"xds.cluster_name"}}]}"#),
            &host,
        );
        p.run(&host);
        assert_eq!(host.metric("c=.=upstream;.;m"), 1);
    }

    #[test]
    fn series_cap_keeps_totals_exact() {
        let host = FakeHost::new();
        let p = configure(
            Some(br#"{"metrics":[{"name":"paths","max_series":3,"dimensions":{"path":"p"}}]}"#),
            &host,
        );
        for i in 0..10 {
            host.set_property("p", format!("/p{i}").as_bytes());
            p.run(&host);
        }
        let total: i64 = host
            .metric_names()
            .iter()
            .filter(|n| n.ends_with(";.;paths"))
            .map(|n| host.metric(n))
            .sum();
        assert_eq!(total, 10);
        assert_eq!(host.metric("path=.=overflow;.;paths"), 7);
        assert_eq!(host.metric("paths_overflow_total"), 7);
    }
}
