//! An in-memory [`Host`] for native unit tests of the filters' logic.
//!
//! State-based: a test sets properties, headers and what each expression
//! source evaluates to, runs the logic, then reads attributes, metrics and
//! logs back.

use crate::host::{Host, HostError, HostExpression, LogLevel, MetricId, MetricKind};
use std::cell::RefCell;
use std::collections::HashMap;

/// A fake Envoy. Expressions "compile" unless their source is listed in
/// [`FakeHost::reject`]; they evaluate to whatever [`FakeHost::eval`] set
/// (missing: `InternalFailure`, as a CEL runtime error would).
#[derive(Default)]
pub struct FakeHost {
    properties: RefCell<HashMap<String, Vec<u8>>>,
    headers: RefCell<HashMap<String, Vec<u8>>>,
    results: RefCell<HashMap<String, Result<Vec<u8>, HostError>>>,
    rejected: RefCell<Vec<String>>,
    sources: RefCell<Vec<String>>,
    attributes: RefCell<Vec<(String, Vec<u8>)>>,
    families: RefCell<Vec<(MetricKind, String, Vec<String>)>>,
    metric_names: RefCell<Vec<String>>,
    metric_values: RefCell<HashMap<String, i64>>,
    logs: RefCell<Vec<(LogLevel, String)>>,
    env: RefCell<HashMap<String, String>>,
    shared: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    recorded: RefCell<HashMap<String, Vec<u64>>>,
    span_tags: RefCell<Vec<(String, String)>>,
    spans: std::cell::Cell<bool>,
    native_cel: std::cell::Cell<bool>,
    header_map: std::cell::Cell<bool>,
}

fn no_release(_: u32) {}

impl FakeHost {
    /// A fresh host.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets a property, path segments joined by `.` (`request.url_path`).
    pub fn set_property(&self, path: &str, value: &[u8]) -> &Self {
        self.properties
            .borrow_mut()
            .insert(path.to_string(), value.to_vec());
        self
    }
    /// Sets a request header.
    pub fn set_header(&self, name: &str, value: &[u8]) -> &Self {
        self.headers
            .borrow_mut()
            .insert(name.to_ascii_lowercase(), value.to_vec());
        self
    }
    /// Offers the request headers as one map read too, as the Wasm host
    /// does ([`Host::request_header_map`]).
    pub fn offer_header_map(&self) -> &Self {
        self.header_map.set(true);
        self
    }
    /// Sets what the expression with this source evaluates to.
    pub fn eval(&self, source: &str, result: Result<Vec<u8>, HostError>) -> &Self {
        self.results.borrow_mut().insert(source.to_string(), result);
        self
    }
    /// Sets a bool result for this expression source.
    pub fn eval_bool(&self, source: &str, value: bool) -> &Self {
        self.eval(source, Ok(vec![u8::from(value)]))
    }
    /// Sets an environment variable the VM sees.
    pub fn set_env(&self, name: &str, value: &str) -> &Self {
        self.env
            .borrow_mut()
            .insert(name.to_string(), value.to_string());
        self
    }
    /// Current request header value (after the filter's changes).
    pub fn header(&self, name: &str) -> Option<Vec<u8>> {
        self.headers
            .borrow()
            .get(&name.to_ascii_lowercase())
            .cloned()
    }
    /// Histogram samples recorded on the stat with this name (a labelled
    /// series by its tag-encoded name, as the Wasm host names it).
    pub fn samples(&self, name: &str) -> Vec<u64> {
        self.recorded
            .borrow()
            .get(name)
            .cloned()
            .unwrap_or_default()
    }
    /// Names of every stat, in order: plain metrics when defined, labelled
    /// series (tag-encoded, as the Wasm host names them) when first used.
    pub fn metric_names(&self) -> Vec<String> {
        self.metric_names.borrow().clone()
    }
    /// Lets [`Host::set_span_tag`] succeed (off by default: like
    /// proxy-wasm, the fake cannot tag a span).
    pub fn with_span_tags(&self) -> &Self {
        self.spans.set(true);
        self
    }
    /// Every span tag set, in order.
    pub fn span_tags(&self) -> Vec<(String, String)> {
        self.span_tags.borrow().clone()
    }
    /// The stat name of the series of `values` in metric `id`, noted in
    /// [`FakeHost::metric_names`] on first use.
    fn series_name(&self, id: MetricId, values: &[&str]) -> Result<String, HostError> {
        let families = self.families.borrow();
        let (_, name, labels) = families.get(id.0 as usize).ok_or(HostError::BadArgument)?;
        if labels.len() != values.len() {
            return Err(HostError::BadArgument);
        }
        let pairs: Vec<(&str, &str)> = labels
            .iter()
            .map(String::as_str)
            .zip(values.iter().copied())
            .collect();
        let series = crate::metrics::encode(name, &pairs);
        let mut names = self.metric_names.borrow_mut();
        if !names.contains(&series) {
            names.push(series.clone());
        }
        Ok(series)
    }
    /// Lets [`crate::cel::compile`] give expressions a native form (off by
    /// default, so sources stand for whatever [`FakeHost::eval`] says).
    pub fn with_native_cel(&self) -> &Self {
        self.native_cel.set(true);
        self
    }
    /// Makes compiling this source fail, as a CEL parse error would.
    pub fn reject(&self, source: &str) -> &Self {
        self.rejected.borrow_mut().push(source.to_string());
        self
    }
    /// Clears per-request state (attributes written), keeping expressions.
    pub fn reset_stream(&self) {
        self.attributes.borrow_mut().clear();
        self.properties.borrow_mut().clear();
        self.headers.borrow_mut().clear();
    }
    /// Last value written to `wasm.<name>`.
    pub fn attribute(&self, name: &str) -> Option<Vec<u8>> {
        self.attributes
            .borrow()
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
    /// Every attribute write, in order.
    pub fn attribute_writes(&self) -> Vec<(String, Vec<u8>)> {
        self.attributes.borrow().clone()
    }
    /// Current value of the stat with this name (a labelled series by its
    /// tag-encoded name; 0 if never incremented).
    pub fn metric(&self, name: &str) -> i64 {
        self.metric_values.borrow().get(name).copied().unwrap_or(0)
    }
    /// Every log line so far.
    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        self.logs.borrow().clone()
    }
    /// Log lines at `level` or above.
    pub fn logs_at_least(&self, level: LogLevel) -> Vec<String> {
        self.logs
            .borrow()
            .iter()
            .filter(|(l, _)| *l >= level)
            .map(|(_, m)| m.clone())
            .collect()
    }
}

impl Host for FakeHost {
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
        Ok(self.properties.borrow().get(&path.join(".")).cloned())
    }
    fn request_header(&self, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        Ok(self
            .headers
            .borrow()
            .get(&name.to_ascii_lowercase())
            .cloned())
    }
    fn request_header_map(&self) -> Result<Option<Vec<u8>>, HostError> {
        if !self.header_map.get() {
            return Ok(None);
        }
        let headers = self.headers.borrow();
        let mut pairs: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        pairs.sort();
        Ok(Some(crate::header_map::serialize(&pairs)))
    }
    fn set_request_header(&self, name: &str, value: &[u8]) -> Result<(), HostError> {
        self.headers
            .borrow_mut()
            .insert(name.to_ascii_lowercase(), value.to_vec());
        Ok(())
    }
    fn remove_request_header(&self, name: &str) -> Result<(), HostError> {
        self.headers.borrow_mut().remove(&name.to_ascii_lowercase());
        Ok(())
    }
    fn env_var(&self, name: &str) -> Option<String> {
        self.env.borrow().get(name).cloned()
    }
    fn set_attribute(&self, name: &str, value: &[u8]) -> Result<(), HostError> {
        self.attributes
            .borrow_mut()
            .push((name.to_string(), value.to_vec()));
        Ok(())
    }
    fn compile(&self, source: &str) -> Result<HostExpression, HostError> {
        if self.rejected.borrow().iter().any(|s| s == source) {
            return Err(HostError::BadArgument);
        }
        let mut sources = self.sources.borrow_mut();
        sources.push(source.to_string());
        Ok(HostExpression::new(
            (sources.len() - 1) as u32,
            source,
            no_release,
        ))
    }
    fn evaluate(
        &self,
        expr: &HostExpression,
    ) -> Result<crate::cel_value::CelValue<'static>, HostError> {
        self.results
            .borrow()
            .get(expr.source())
            .cloned()
            .unwrap_or(Err(HostError::InternalFailure))
            .map(crate::cel_value::CelValue::from)
    }
    fn define_metric(
        &self,
        kind: MetricKind,
        name: &str,
        label_names: &[&str],
    ) -> Result<MetricId, HostError> {
        let mut families = self.families.borrow_mut();
        if let Some(i) = families.iter().position(|(_, n, _)| n == name) {
            let same = families
                .get(i)
                .is_some_and(|(k, _, l)| *k == kind && l.iter().eq(label_names.iter()));
            return if same {
                Ok(MetricId(i as u32))
            } else {
                Err(HostError::BadArgument)
            };
        }
        families.push((
            kind,
            name.to_string(),
            label_names.iter().map(|l| l.to_string()).collect(),
        ));
        if label_names.is_empty() {
            self.metric_names.borrow_mut().push(name.to_string());
        }
        Ok(MetricId((families.len() - 1) as u32))
    }
    fn increment(&self, metric: MetricId, values: &[&str], by: i64) -> Result<(), HostError> {
        let name = self.series_name(metric, values)?;
        // Envoy's counters are 64-bit and wrap; so does the fake, so that a
        // huge configured value never panics a test or a fuzz run.
        let mut values = self.metric_values.borrow_mut();
        let total = values.entry(name).or_insert(0);
        *total = total.wrapping_add(by);
        Ok(())
    }
    fn record(&self, metric: MetricId, values: &[&str], value: u64) -> Result<(), HostError> {
        let name = self.series_name(metric, values)?;
        self.recorded
            .borrow_mut()
            .entry(name)
            .or_default()
            .push(value);
        Ok(())
    }
    fn set_span_tag(&self, name: &str, value: &str) -> Result<(), HostError> {
        if !self.spans.get() {
            return Err(HostError::Unimplemented);
        }
        self.span_tags
            .borrow_mut()
            .push((name.to_string(), value.to_string()));
        Ok(())
    }
    fn shared_data(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
        Ok(match self.shared.borrow().get(key) {
            Some((v, cas)) => (Some(v.clone()), *cas),
            None => (None, 0),
        })
    }
    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
        let mut shared = self.shared.borrow_mut();
        let current = shared.get(key).map_or(0, |(_, c)| *c);
        if cas != 0 && cas != current {
            return Err(HostError::CasMismatch);
        }
        shared.insert(
            key.to_string(),
            (value.to_vec(), current.wrapping_add(1).max(1)),
        );
        Ok(())
    }
    fn log(&self, level: LogLevel, message: &str) {
        self.logs.borrow_mut().push((level, message.to_string()));
    }
    fn native_cel(&self) -> bool {
        self.native_cel.get()
    }
}
