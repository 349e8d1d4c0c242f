//! Sharing host reads between jobs of one module (the one-VM bundle).
//!
//! [`RequestCache`] lives in the stream context for the whole request;
//! [`CachingHost`] wraps the real host for one callback and answers repeated
//! reads from the cache: a property or header is read from Envoy at most once
//! per request (values that are still absent are re-read in a later phase,
//! since `response.*` appears only after the response starts), and an
//! attribute one job wrote is handed to the next in memory.

use crate::host::{Host, HostError, HostExpression, LogLevel, MetricId, MetricKind};
use std::cell::RefCell;

/// The filter-state prefix of attributes written with [`Host::set_attribute`].
const FILTER_STATE_PREFIX: &str = "wasm.";

/// Per-request cache of host reads and of attributes written.
#[derive(Debug, Default)]
pub struct RequestCache {
    properties: RefCell<Vec<(String, Option<Vec<u8>>)>>,
    headers: RefCell<Vec<(String, Option<Vec<u8>>)>>,
    attributes: RefCell<Vec<(String, Vec<u8>)>>,
    reads: std::cell::Cell<u32>,
}

impl RequestCache {
    /// Starts a new phase: absent values may exist now, and values that
    /// move on during a request (`response.*`, `upstream.*`, sizes,
    /// durations, other filters' filter state) may have changed, so only
    /// present values of the request's fixed properties are kept.
    /// (`response.grpc_status` is 2, derived from HTTP 200, on response
    /// headers, and the trailers' status in the log phase.)
    pub fn next_phase(&self) {
        self.properties
            .borrow_mut()
            .retain(|(k, v)| v.is_some() && fixed_for_the_request(k));
        self.headers.borrow_mut().retain(|(_, v)| v.is_some());
    }

    /// How many reads reached the host (for tests and benchmarks).
    pub fn host_reads(&self) -> u32 {
        self.reads.get()
    }
}

/// Whether a property (its path joined by NUL, as the cache keys it) keeps
/// its value for the whole request once present: the request line and
/// identity, the connection's and the configuration's. Anything else is
/// read again in each phase.
fn fixed_for_the_request(key: &str) -> bool {
    let mut path = key.split('\0');
    match (path.next(), path.next()) {
        (Some("request"), Some(field)) => matches!(
            field,
            "path"
                | "url_path"
                | "host"
                | "scheme"
                | "method"
                | "query"
                | "id"
                | "protocol"
                | "useragent"
                | "referer"
                | "time"
        ),
        (Some("source" | "destination" | "connection" | "xds"), _) => true,
        (Some("plugin_name" | "plugin_root_id" | "plugin_vm_id"), None) => true,
        _ => false,
    }
}

/// A [`Host`] that answers reads from a [`RequestCache`] when it can.
pub struct CachingHost<'c, H: Host> {
    host: &'c H,
    cache: &'c RequestCache,
}

impl<'c, H: Host> CachingHost<'c, H> {
    /// Wraps `host` for one callback of the request `cache` belongs to.
    pub fn new(host: &'c H, cache: &'c RequestCache) -> Self {
        CachingHost { host, cache }
    }

    fn counted<T>(&self, read: impl FnOnce() -> T) -> T {
        self.cache
            .reads
            .set(self.cache.reads.get().saturating_add(1));
        read()
    }
}

impl<H: Host> Host for CachingHost<'_, H> {
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
        // An attribute an earlier job wrote (`wasm.<name>` in filter state),
        // asked for by its name (as CEL sees it) or as filter state.
        let written = match path {
            [name] => Some(*name),
            ["filter_state", key] => key.strip_prefix(FILTER_STATE_PREFIX),
            _ => None,
        };
        if let Some(name) = written {
            if let Some((_, v)) = self
                .cache
                .attributes
                .borrow()
                .iter()
                .rev()
                .find(|(n, _)| n == name)
            {
                return Ok(Some(v.clone()));
            }
        }
        let key = path.join("\0");
        if let Some((_, v)) = self
            .cache
            .properties
            .borrow()
            .iter()
            .find(|(k, _)| *k == key)
        {
            return Ok(v.clone());
        }
        let value = self.counted(|| self.host.property(path))?;
        self.cache
            .properties
            .borrow_mut()
            .push((key, value.clone()));
        Ok(value)
    }

    fn request_header(&self, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        if let Some((_, v)) = self
            .cache
            .headers
            .borrow()
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            return Ok(v.clone());
        }
        let value = self.counted(|| self.host.request_header(name))?;
        self.cache
            .headers
            .borrow_mut()
            .push((name.to_ascii_lowercase(), value.clone()));
        Ok(value)
    }

    fn set_request_header(&self, name: &str, value: &[u8]) -> Result<(), HostError> {
        self.cache
            .headers
            .borrow_mut()
            .retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.host.set_request_header(name, value)
    }

    fn remove_request_header(&self, name: &str) -> Result<(), HostError> {
        let mut headers = self.cache.headers.borrow_mut();
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        headers.push((name.to_ascii_lowercase(), None));
        drop(headers);
        self.host.remove_request_header(name)
    }

    fn env_var(&self, name: &str) -> Option<String> {
        self.host.env_var(name)
    }

    fn set_attribute(&self, name: &str, value: &[u8]) -> Result<(), HostError> {
        self.host.set_attribute(name, value)?;
        self.cache
            .attributes
            .borrow_mut()
            .push((name.to_string(), value.to_vec()));
        Ok(())
    }

    fn compile(&self, source: &str) -> Result<HostExpression, HostError> {
        self.host.compile(source)
    }

    fn evaluate(&self, expr: &HostExpression) -> Result<Vec<u8>, HostError> {
        self.host.evaluate(expr)
    }

    fn define_metric(
        &self,
        kind: MetricKind,
        name: &str,
        label_names: &[&str],
    ) -> Result<MetricId, HostError> {
        self.host.define_metric(kind, name, label_names)
    }

    fn increment(&self, metric: MetricId, values: &[&str], by: i64) -> Result<(), HostError> {
        self.host.increment(metric, values, by)
    }

    fn record(&self, metric: MetricId, values: &[&str], value: u64) -> Result<(), HostError> {
        self.host.record(metric, values, value)
    }

    fn set_span_tag(&self, name: &str, value: &str) -> Result<(), HostError> {
        self.host.set_span_tag(name, value)
    }

    fn shared_data(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
        self.host.shared_data(key)
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
        self.host.set_shared_data(key, value, cas)
    }

    fn log(&self, level: LogLevel, message: &str) {
        self.host.log(level, message);
    }

    fn native_cel(&self) -> bool {
        self.host.native_cel()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeHost;

    #[test]
    fn reads_reach_the_host_once() {
        let host = FakeHost::new();
        host.set_property("request.method", b"GET");
        host.set_header(":path", b"/a");
        let cache = RequestCache::default();
        let h = CachingHost::new(&host, &cache);
        for _ in 0..3 {
            assert_eq!(h.property(&["request", "method"]).unwrap().unwrap(), b"GET");
            assert_eq!(h.request_header(":path").unwrap().unwrap(), b"/a");
        }
        assert_eq!(cache.host_reads(), 2);
    }

    #[test]
    fn attributes_written_are_read_back_in_memory() {
        let host = FakeHost::new();
        let cache = RequestCache::default();
        let h = CachingHost::new(&host, &cache);
        h.set_attribute("istio_operationId", b"ListBooks").unwrap();
        assert_eq!(
            h.property(&["istio_operationId"]).unwrap().unwrap(),
            b"ListBooks"
        );
        assert_eq!(
            h.property(&["filter_state", "wasm.istio_operationId"])
                .unwrap()
                .unwrap(),
            b"ListBooks"
        );
        assert_eq!(host.attribute("istio_operationId").unwrap(), b"ListBooks");
        assert_eq!(cache.host_reads(), 0);
    }

    #[test]
    fn absent_values_are_read_again_in_a_later_phase() {
        let host = FakeHost::new();
        let cache = RequestCache::default();
        let h = CachingHost::new(&host, &cache);
        assert_eq!(h.property(&["response", "code"]).unwrap(), None);
        assert_eq!(h.property(&["response", "code"]).unwrap(), None);
        assert_eq!(cache.host_reads(), 1);
        host.set_property("response.code", &200i64.to_le_bytes());
        cache.next_phase();
        assert!(h.property(&["response", "code"]).unwrap().is_some());
        assert_eq!(cache.host_reads(), 2);
    }

    #[test]
    fn values_that_move_on_are_read_again_in_a_later_phase() {
        let host = FakeHost::new();
        host.set_property("request.method", b"POST");
        host.set_property("response.grpc_status", &2i64.to_le_bytes());
        let cache = RequestCache::default();
        let h = CachingHost::new(&host, &cache);
        let grpc_status = |h: &CachingHost<'_, FakeHost>| {
            h.property(&["response", "grpc_status"]).unwrap().unwrap()
        };
        assert_eq!(grpc_status(&h), 2i64.to_le_bytes());
        assert!(h.property(&["request", "method"]).unwrap().is_some());
        assert_eq!(cache.host_reads(), 2);
        // Trailers arrive: the log phase sees their status, not the one
        // derived from the HTTP code on response headers.
        host.set_property("response.grpc_status", &0i64.to_le_bytes());
        cache.next_phase();
        assert_eq!(grpc_status(&h), 0i64.to_le_bytes());
        assert!(h.property(&["request", "method"]).unwrap().is_some());
        assert_eq!(cache.host_reads(), 3, "request.method stays cached");
    }

    #[test]
    fn what_stays_cached_across_phases() {
        for fixed in [
            "request\0method",
            "request\0url_path",
            "source\0address",
            "xds\0cluster_name",
        ] {
            assert!(fixed_for_the_request(fixed), "{fixed}");
        }
        for moving in [
            "response\0grpc_status",
            "response\0code",
            "upstream\0address",
            "request\0duration",
            "request\0total_size",
            "filter_state\0wasm.x",
            "istio_operationId",
        ] {
            assert!(!fixed_for_the_request(moving), "{moving}");
        }
    }

    #[test]
    fn header_changes_update_the_cache() {
        let host = FakeHost::new();
        host.set_header("x-tag", b"client");
        let cache = RequestCache::default();
        let h = CachingHost::new(&host, &cache);
        assert_eq!(h.request_header("x-tag").unwrap().unwrap(), b"client");
        h.remove_request_header("x-tag").unwrap();
        assert_eq!(h.request_header("x-tag").unwrap(), None);
        h.set_request_header("x-tag", b"ours").unwrap();
        assert_eq!(h.request_header("x-tag").unwrap().unwrap(), b"ours");
    }
}
