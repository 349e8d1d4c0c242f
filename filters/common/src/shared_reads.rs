//! The one per-request read cache, shared by every job of a module.
//!
//! [`RequestCache`] lives in the stream context for the whole request;
//! [`CachingHost`] wraps the real host for one callback and answers repeated
//! reads from the cache: a property or header is read from Envoy at most once
//! per request (values that are still absent are re-read in a later phase,
//! since `response.*` appears only after the response starts), and an
//! attribute one job wrote is handed to the next in memory.
//!
//! Hits allocate nothing: entries are found by comparing the path's segments
//! (no joined key per call) and header names bytewise (callers lower-case
//! them at configure time), and [`Host::property_shared`] /
//! [`Host::request_header_shared`] hand out the cached [`Bytes`] itself.
//! Misses allocate no key either: every key of the request is appended to
//! one buffer ([`Keys`]), which a request allocates once.
//! [`method`] and [`url_path`] read the request line through it.

use crate::host::{Bytes, Host, HostError, HostExpression, LogLevel, MetricId, MetricKind};
use std::cell::{Cell, RefCell};

/// The filter-state prefix of attributes written with [`Host::set_attribute`].
const FILTER_STATE_PREFIX: &str = "wasm.";

/// Separator of a property path's segments in a cache key.
const SEGMENT_SEPARATOR: u8 = 0;

/// One cached read: its key and the value (`None`: absent when read).
type Entry = (Key, Option<Bytes>);

/// Room for a request's keys, reserved at its first miss: the bundle's
/// keys (three property paths, three header names, three attribute names)
/// take about 160 bytes.
const KEYS_CAPACITY: usize = 256;

/// A key's place in [`Keys`].
#[derive(Debug, Clone, Copy)]
struct Key {
    start: usize,
    end: usize,
}

/// Every key of one request's entries, back to back in one buffer: one
/// allocation per request instead of one per key. The keys of entries a
/// later phase drops stay until the request ends (a few bytes each).
#[derive(Debug, Default)]
struct Keys(String);

impl Keys {
    /// The text of `key`.
    fn get(&self, key: Key) -> &str {
        self.0.get(key.start..key.end).unwrap_or_default()
    }

    /// Appends a key written by `write` and returns its place.
    fn push(&mut self, write: impl FnOnce(&mut String)) -> Key {
        if self.0.capacity() == 0 {
            self.0.reserve(KEYS_CAPACITY);
        }
        let start = self.0.len();
        write(&mut self.0);
        Key {
            start,
            end: self.0.len(),
        }
    }

    /// `path`'s segments joined with NUL.
    fn push_path(&mut self, path: &[&str]) -> Key {
        self.push(|out| {
            for (i, segment) in path.iter().enumerate() {
                if i > 0 {
                    out.push(char::from(SEGMENT_SEPARATOR));
                }
                out.push_str(segment);
            }
        })
    }

    /// A header name, lower-cased.
    fn push_header(&mut self, name: &str) -> Key {
        self.push(|out| {
            let start = out.len();
            out.push_str(name);
            if let Some(added) = out.get_mut(start..) {
                added.make_ascii_lowercase();
            }
        })
    }

    /// A name as it is.
    fn push_name(&mut self, name: &str) -> Key {
        self.push(|out| out.push_str(name))
    }
}

/// Per-request cache of host reads and of attributes written.
#[derive(Debug, Default)]
pub struct RequestCache {
    /// The entries' keys.
    keys: RefCell<Keys>,
    /// Keyed by the path's segments joined with NUL (written on a miss only).
    properties: RefCell<Vec<Entry>>,
    /// Keyed by the lower-cased header name.
    headers: RefCell<Vec<Entry>>,
    attributes: RefCell<Vec<(Key, Bytes)>>,
    /// This phase's request-header map, when read whole
    /// ([`RequestCache::read_header_map`]): header misses are answered from it.
    header_map: RefCell<Option<Vec<u8>>>,
    /// Header names looked up beyond the cache in this phase.
    header_misses: Cell<u32>,
    reads: Cell<u32>,
}

impl RequestCache {
    /// Starts a new phase: absent values may exist now, and values that
    /// move on during a request (`response.*`, `upstream.*`, sizes,
    /// durations, other filters' filter state) may have changed, so only
    /// present values of the request's fixed properties are kept.
    /// (`response.grpc_status` is 2, derived from HTTP 200, on response
    /// headers, and the trailers' status in the log phase.)
    pub fn next_phase(&self) {
        let keys = self.keys.borrow();
        self.properties
            .borrow_mut()
            .retain(|(k, v)| v.is_some() && fixed_for_the_request(keys.get(*k)));
        self.headers.borrow_mut().retain(|(_, v)| v.is_some());
        self.header_map.replace(None);
        self.header_misses.set(0);
    }

    /// Reads the whole request-header map from `host` in one call (where the
    /// host offers it), so the rest of this phase's header reads are
    /// answered from it. Headers found absent in it are read again in a
    /// later phase, as after a single read.
    pub fn read_header_map<H: Host + ?Sized>(&self, host: &H) {
        if let Ok(Some(map)) = host.request_header_map() {
            self.reads.set(self.reads.get().saturating_add(1));
            self.header_map.replace(Some(map));
        }
    }

    /// How many header names this phase looked up beyond the cache (each a
    /// host read unless a header map answered it).
    pub fn header_misses(&self) -> u32 {
        self.header_misses.get()
    }

    /// How many reads reached the host (for tests and benchmarks).
    pub fn host_reads(&self) -> u32 {
        self.reads.get()
    }

    fn property(&self, path: &[&str]) -> Option<Option<Bytes>> {
        let keys = self.keys.borrow();
        self.properties
            .borrow()
            .iter()
            .find(|(k, _)| key_is(keys.get(*k), path))
            .map(|(_, v)| v.clone())
    }

    fn header(&self, name: &str) -> Option<Option<Bytes>> {
        let keys = self.keys.borrow();
        self.headers
            .borrow()
            .iter()
            .find(|(k, _)| same_header(keys.get(*k), name))
            .map(|(_, v)| v.clone())
    }

    /// Caches a property read.
    fn put_property(&self, path: &[&str], value: Option<Bytes>) {
        let key = self.keys.borrow_mut().push_path(path);
        self.properties.borrow_mut().push((key, value));
    }

    /// Caches a header read (`None`: absent).
    fn put_header(&self, name: &str, value: Option<Bytes>) {
        let key = self.keys.borrow_mut().push_header(name);
        self.headers.borrow_mut().push((key, value));
    }

    /// Caches an attribute written.
    fn put_attribute(&self, name: &str, value: &[u8]) {
        let key = self.keys.borrow_mut().push_name(name);
        self.attributes.borrow_mut().push((key, value.into()));
    }

    /// Forgets what the cache had for header `name`.
    fn forget_header(&self, name: &str) {
        let keys = self.keys.borrow();
        self.headers
            .borrow_mut()
            .retain(|(k, _)| !same_header(keys.get(*k), name));
    }

    fn attribute(&self, path: &[&str]) -> Option<Bytes> {
        // An attribute an earlier job wrote (`wasm.<name>` in filter state),
        // asked for by its name (as CEL sees it) or as filter state.
        let name = match path {
            [name] => *name,
            ["filter_state", key] => key.strip_prefix(FILTER_STATE_PREFIX)?,
            _ => return None,
        };
        let keys = self.keys.borrow();
        self.attributes
            .borrow()
            .iter()
            .rev()
            .find(|(n, _)| keys.get(*n) == name)
            .map(|(_, v)| v.clone())
    }
}

/// Whether the cache key `key` is `path`'s segments joined with NUL.
fn key_is(key: &str, path: &[&str]) -> bool {
    let mut rest = key.as_bytes();
    for (i, segment) in path.iter().enumerate() {
        if i > 0 {
            match rest.split_first() {
                Some((&SEGMENT_SEPARATOR, tail)) => rest = tail,
                _ => return false,
            }
        }
        match rest.strip_prefix(segment.as_bytes()) {
            Some(tail) => rest = tail,
            None => return false,
        }
    }
    rest.is_empty()
}

/// Whether the cached (lower-case) header name `key` is `name`: bytes first,
/// then ignoring ASCII case for callers that did not lower-case.
fn same_header(key: &str, name: &str) -> bool {
    key == name || key.eq_ignore_ascii_case(name)
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
        self.property_shared(path).map(|v| v.map(|v| v.to_vec()))
    }

    fn property_shared(&self, path: &[&str]) -> Result<Option<Bytes>, HostError> {
        if let Some(v) = self.cache.attribute(path) {
            return Ok(Some(v));
        }
        if let Some(v) = self.cache.property(path) {
            return Ok(v);
        }
        let value = self.counted(|| self.host.property_shared(path))?;
        self.cache.put_property(path, value.clone());
        Ok(value)
    }

    fn request_header(&self, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        self.request_header_shared(name)
            .map(|v| v.map(|v| v.to_vec()))
    }

    fn request_header_shared(&self, name: &str) -> Result<Option<Bytes>, HostError> {
        if let Some(v) = self.cache.header(name) {
            return Ok(v);
        }
        let misses = &self.cache.header_misses;
        misses.set(misses.get().saturating_add(1));
        let from_map = self
            .cache
            .header_map
            .borrow()
            .as_deref()
            .map(|map| crate::header_map::find(map, name).map(Bytes::from));
        let value = match from_map {
            Some(v) => v,
            None => self.counted(|| self.host.request_header_shared(name))?,
        };
        self.cache.put_header(name, value.clone());
        Ok(value)
    }

    fn set_request_header(&self, name: &str, value: &[u8]) -> Result<(), HostError> {
        self.cache.forget_header(name);
        self.cache.header_map.replace(None);
        self.host.set_request_header(name, value)
    }

    fn request_header_map(&self) -> Result<Option<Vec<u8>>, HostError> {
        self.host.request_header_map()
    }

    fn remove_request_header(&self, name: &str) -> Result<(), HostError> {
        self.cache.forget_header(name);
        self.cache.put_header(name, None);
        self.cache.header_map.replace(None);
        self.host.remove_request_header(name)
    }

    fn env_var(&self, name: &str) -> Option<String> {
        self.host.env_var(name)
    }

    fn set_attribute(&self, name: &str, value: &[u8]) -> Result<(), HostError> {
        self.host.set_attribute(name, value)?;
        self.cache.put_attribute(name, value);
        Ok(())
    }

    fn compile(&self, source: &str) -> Result<HostExpression, HostError> {
        self.host.compile(source)
    }

    fn evaluate(
        &self,
        expr: &HostExpression,
    ) -> Result<crate::cel_value::CelValue<'static>, HostError> {
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

/// A prefix of a shared value (`request.url_path` of `:path`), without a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedPrefix {
    bytes: Bytes,
    len: usize,
}

impl SharedPrefix {
    /// The whole of `bytes`.
    pub fn whole(bytes: Bytes) -> Self {
        let len = bytes.len();
        SharedPrefix { bytes, len }
    }

    /// `bytes` without a query string or fragment (see [`without_query`]).
    pub fn without_query(bytes: Bytes) -> Self {
        let len = without_query(&bytes).len();
        SharedPrefix { bytes, len }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }

    /// As text, replacing invalid UTF-8 (borrowed when valid).
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.as_bytes())
    }
}

/// A request header, falling back to the attribute `request.<property>` when
/// the header map is not available in this phase (as CEL's request
/// attributes read it). `header` must be lower-case.
pub fn header_or_property<H: Host + ?Sized>(
    host: &H,
    header: &str,
    property: &str,
) -> Option<Bytes> {
    match host.request_header_shared(header) {
        Ok(Some(v)) => Some(v),
        _ => host.property_shared(&["request", property]).ok().flatten(),
    }
}

/// The request method (`:method`, else `request.method`).
pub fn method<H: Host + ?Sized>(host: &H) -> Option<SharedPrefix> {
    header_or_property(host, ":method", "method").map(SharedPrefix::whole)
}

/// The request path without query string or fragment, as CEL's
/// `request.url_path` (from `:path`, else `request.path`, cut at `?` or `#`).
pub fn url_path<H: Host + ?Sized>(host: &H) -> Option<SharedPrefix> {
    header_or_property(host, ":path", "path").map(SharedPrefix::without_query)
}

/// A request path without its query string or fragment (`request.url_path`).
pub fn without_query(path: &[u8]) -> &[u8] {
    let end = path
        .iter()
        .position(|b| *b == b'?' || *b == b'#')
        .unwrap_or(path.len());
    path.get(..end).unwrap_or_default()
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

    #[test]
    fn hits_need_no_joined_key_and_share_the_value() {
        let host = FakeHost::new();
        host.set_property("a.b", b"1").set_property("a.bc", b"2");
        let cache = RequestCache::default();
        let h = CachingHost::new(&host, &cache);
        let first = h.property_shared(&["a", "b"]).unwrap().unwrap();
        let again = h.property_shared(&["a", "b"]).unwrap().unwrap();
        assert!(Bytes::ptr_eq(&first, &again));
        assert_eq!(&*h.property_shared(&["a", "bc"]).unwrap().unwrap(), b"2");
        assert_eq!(h.property_shared(&["a"]).unwrap(), None);
        assert_eq!(cache.host_reads(), 3);
        assert!(key_is("a\0b", &["a", "b"]));
        assert!(!key_is("a\0b", &["a", "b", ""]));
        assert!(!key_is("a\0b", &["ab"]));
        assert!(key_is("", &[]));
    }

    #[test]
    fn header_names_match_in_any_case() {
        let host = FakeHost::new();
        host.set_header("x-tag", b"v");
        let cache = RequestCache::default();
        let h = CachingHost::new(&host, &cache);
        assert_eq!(&*h.request_header_shared("X-Tag").unwrap().unwrap(), b"v");
        assert_eq!(&*h.request_header_shared("x-tag").unwrap().unwrap(), b"v");
        assert_eq!(cache.host_reads(), 1);
    }

    #[test]
    fn url_path_drops_query_and_fragment() {
        let host = FakeHost::new();
        host.set_header(":path", b"/books?x=1#top");
        host.set_header(":method", b"GET");
        assert_eq!(url_path(&host).unwrap().text(), "/books");
        assert_eq!(method(&host).unwrap().text(), "GET");
    }

    #[test]
    fn request_line_falls_back_to_attributes() {
        let host = FakeHost::new();
        host.set_property("request.path", b"/a#b");
        host.set_property("request.method", b"POST");
        assert_eq!(url_path(&host).unwrap().as_bytes(), b"/a");
        assert_eq!(method(&host).unwrap().as_bytes(), b"POST");
    }

    #[test]
    fn missing_request_line_is_none() {
        let host = FakeHost::new();
        assert_eq!(url_path(&host), None);
        assert_eq!(method(&host), None);
    }
}
