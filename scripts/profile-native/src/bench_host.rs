//! An in-memory [`Host`] answering as Envoy does for the benchmark's request
//! (`GET /reviews/0`, `x-tenant: acme`, a 200 direct response: no cluster),
//! doing in the module what the real host does there
//! (`filters/common/src/wasm/host.rs` and `hostcalls.rs`): a property path
//! is joined with NULs, every returned value is a fresh `Vec` (Envoy copies
//! it into memory the module allocates), metric ids are cached by name in a
//! map. It counts every call that would cross into Envoy, by kind.

use filter_common::host::{Host, HostError, HostExpression, LogLevel, MetricId, MetricKind};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};

/// Request headers of the benchmark's request (HTTP/1.1 through Envoy).
const HEADERS: [(&str, &[u8]); 6] = [
    (":method", b"GET"),
    (":path", b"/reviews/0"),
    (":authority", b"127.0.0.1:10000"),
    (":scheme", b"http"),
    ("x-tenant", b"acme"),
    ("x-request-id", b"0b7a4f86-5d3e-4a1e-9c4e-5f2b7d1c9e11"),
];

/// Calls that cross into Envoy, by kind (`get_property request.method`, …).
#[derive(Default)]
pub struct BenchHost {
    calls: RefCell<BTreeMap<String, u64>>,
    /// Whether calls are counted (off while profiling: counting allocates).
    pub counting: Cell<bool>,
    metric_ids: RefCell<HashMap<String, MetricId>>,
    next_id: Cell<u32>,
    /// Whether the response has started (`response.*` readable).
    pub response: Cell<bool>,
}

fn no_release(_: u32) {}

impl BenchHost {
    fn count(&self, kind: &str, detail: &str) {
        if !self.counting.get() {
            return;
        }
        *self
            .calls
            .borrow_mut()
            .entry(format!("{kind} {detail}"))
            .or_default() += 1;
    }

    /// Host calls so far, by kind, then forgets them.
    pub fn take_calls(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.calls.borrow_mut())
    }

    fn property_value(&self, joined: &str) -> Option<Vec<u8>> {
        match joined {
            "request\0method" => Some(b"GET".to_vec()),
            "request\0path" => Some(b"/reviews/0".to_vec()),
            "request\0url_path" => Some(b"/reviews/0".to_vec()),
            "request\0host" => Some(b"127.0.0.1:10000".to_vec()),
            "response\0code" if self.response.get() => Some(200i64.to_le_bytes().to_vec()),
            _ => None,
        }
    }
}

impl Host for BenchHost {
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
        // hostcalls::get_property joins the path for the ABI
        let joined = path.join("\0");
        self.count("get_property", &joined.replace('\0', "."));
        Ok(self.property_value(&joined))
    }
    fn request_header(&self, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        self.count("get_header_map_value", name);
        Ok(HEADERS
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_vec()))
    }
    fn set_request_header(&self, name: &str, _value: &[u8]) -> Result<(), HostError> {
        self.count("replace_header_map_value", name);
        Ok(())
    }
    fn remove_request_header(&self, name: &str) -> Result<(), HostError> {
        self.count("remove_header_map_value", name);
        Ok(())
    }
    fn env_var(&self, _name: &str) -> Option<String> {
        None
    }
    fn set_attribute(&self, name: &str, _value: &[u8]) -> Result<(), HostError> {
        self.count("set_property", name);
        Ok(())
    }
    fn compile(&self, source: &str) -> Result<HostExpression, HostError> {
        self.count("call_foreign_function", "expr_create");
        Ok(HostExpression::new(1, source, no_release))
    }
    fn evaluate(
        &self,
        expr: &HostExpression,
    ) -> Result<filter_common::cel::CelValue<'static>, HostError> {
        self.count("call_foreign_function", "expr_evaluate");
        // only reached when an expression has no native form
        eprintln!("host CEL evaluation of {:?}", expr.source());
        Err(HostError::InternalFailure)
    }
    fn define_metric(
        &self,
        _kind: MetricKind,
        name: &str,
        _label_names: &[&str],
    ) -> Result<MetricId, HostError> {
        // WasmHost: a map lookup by name, the host call only the first time
        // (the Wasm side's per-series names are not modelled here)
        if let Some(id) = self.metric_ids.borrow().get(name).copied() {
            return Ok(id);
        }
        self.count("define_metric", name);
        let id = MetricId(self.next_id.get() + 1);
        self.next_id.set(id.0);
        self.metric_ids.borrow_mut().insert(name.to_string(), id);
        Ok(id)
    }
    fn increment(
        &self,
        _metric: MetricId,
        _label_values: &[&str],
        _by: i64,
    ) -> Result<(), HostError> {
        self.count("increment_metric", "");
        Ok(())
    }
    fn record(
        &self,
        _metric: MetricId,
        _label_values: &[&str],
        _value: u64,
    ) -> Result<(), HostError> {
        self.count("record_metric", "");
        Ok(())
    }
    fn shared_data(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
        self.count("get_shared_data", key);
        Ok((None, 0))
    }
    fn set_shared_data(&self, key: &str, _value: &[u8], _cas: u32) -> Result<(), HostError> {
        self.count("set_shared_data", key);
        Ok(())
    }
    fn log(&self, level: LogLevel, message: &str) {
        self.count("log", "");
        if level >= LogLevel::Warn {
            eprintln!("{level:?}: {message}");
        }
    }
}
