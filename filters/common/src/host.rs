//! The only door from a filter's logic to Envoy.

/// Why a host call failed: the proxy-wasm status codes, plus any other value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    /// 1: the thing asked for does not exist (or not in this context).
    NotFound,
    /// 2: the host rejected an argument.
    BadArgument,
    /// 3: the value could not be serialized.
    SerializationFailure,
    /// 4: the host could not parse the input.
    ParseFailure,
    /// 7: empty.
    Empty,
    /// 8: compare-and-swap mismatch on shared data.
    CasMismatch,
    /// 10: internal failure (for CEL: a runtime evaluation error).
    InternalFailure,
    /// 12: not implemented by this host.
    Unimplemented,
    /// Any other status value.
    Other(u32),
}

impl HostError {
    /// Maps a raw proxy-wasm status to `Ok(())` or the error it names.
    pub fn check(status: u32) -> Result<(), HostError> {
        match status {
            0 => Ok(()),
            1 => Err(HostError::NotFound),
            2 => Err(HostError::BadArgument),
            3 => Err(HostError::SerializationFailure),
            4 => Err(HostError::ParseFailure),
            7 => Err(HostError::Empty),
            8 => Err(HostError::CasMismatch),
            10 => Err(HostError::InternalFailure),
            12 => Err(HostError::Unimplemented),
            other => Err(HostError::Other(other)),
        }
    }
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostError::Other(s) => write!(f, "host status {s}"),
            e => write!(f, "{e:?}"),
        }
    }
}

/// Envoy's log levels as proxy-wasm numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// 0
    Trace = 0,
    /// 1
    Debug = 1,
    /// 2
    Info = 2,
    /// 3
    Warn = 3,
    /// 4
    Error = 4,
    /// 5
    Critical = 5,
}

/// Kind of an Envoy stat defined by a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Monotonic counter.
    Counter = 0,
    /// Gauge.
    Gauge = 1,
    /// Histogram.
    Histogram = 2,
}

/// A metric id handed out by the host for one VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MetricId(pub u32);

/// An expression compiled by the host's CEL engine: its token and source.
/// The token is released when the value is dropped, i.e. when the
/// configuration that owns it goes. Filters use [`crate::cel::Expression`],
/// which wraps it.
pub struct HostExpression {
    token: u32,
    source: Box<str>,
    release: fn(u32),
}

impl HostExpression {
    /// Wraps a token; `release` is called with it on drop.
    pub fn new(token: u32, source: &str, release: fn(u32)) -> Self {
        HostExpression {
            token,
            source: source.into(),
            release,
        }
    }

    /// The host's token for this expression.
    pub fn token(&self) -> u32 {
        self.token
    }

    /// The CEL source text.
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl Drop for HostExpression {
    fn drop(&mut self) {
        (self.release)(self.token);
    }
}

impl std::fmt::Debug for HostExpression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HostExpression({:?})", self.source)
    }
}

/// A value read from the host and shared without copying: the per-request
/// read cache ([`crate::shared_reads`]) hands out clones of one allocation.
pub type Bytes = std::rc::Rc<[u8]>;

/// Everything a filter's logic may ask of Envoy. No method panics; every
/// failure comes back as a [`HostError`].
pub trait Host {
    /// Reads an Envoy attribute (`["request", "url_path"]`). `Ok(None)` when absent.
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError>;
    /// Reads one request header as raw bytes (values need not be UTF-8).
    fn request_header(&self, name: &str) -> Result<Option<Vec<u8>>, HostError>;
    /// [`Host::property`] as a shared value. The read cache answers repeated
    /// reads without copying; other hosts wrap the value they read.
    fn property_shared(&self, path: &[&str]) -> Result<Option<Bytes>, HostError> {
        self.property(path).map(|v| v.map(Bytes::from))
    }
    /// [`Host::request_header`] as a shared value (see
    /// [`Host::property_shared`]). Pass names lower-cased (at configure
    /// time): the cache then compares bytes only.
    fn request_header_shared(&self, name: &str) -> Result<Option<Bytes>, HostError> {
        self.request_header(name).map(|v| v.map(Bytes::from))
    }
    /// All request headers in one read, serialized as proxy-wasm does
    /// (read with [`crate::header_map::find`]), where one map read costs
    /// less than several single reads (Wasm: one call into Envoy and one
    /// allocation callback instead of one each per header). `Ok(None)`:
    /// not offered; read headers one by one.
    fn request_header_map(&self) -> Result<Option<Vec<u8>>, HostError> {
        Ok(None)
    }
    /// Sets (replaces) a request header.
    fn set_request_header(&self, name: &str, value: &[u8]) -> Result<(), HostError>;
    /// Removes a request header (absent is not an error).
    fn remove_request_header(&self, name: &str) -> Result<(), HostError>;
    /// An environment variable the VM was given (`vm_config.environment_variables`).
    fn env_var(&self, name: &str) -> Option<String>;
    /// Writes filter state `wasm.<name>` (single-segment name, stream context only).
    fn set_attribute(&self, name: &str, value: &[u8]) -> Result<(), HostError>;
    /// Compiles a CEL expression with Envoy's engine (configure time only).
    fn compile(&self, source: &str) -> Result<HostExpression, HostError>;
    /// Evaluates a compiled expression against the current stream: Envoy's
    /// serialized result, or a typed value where the host evaluates CEL
    /// itself (read either with [`crate::cel::CelValue`]'s accessors).
    fn evaluate(
        &self,
        expr: &HostExpression,
    ) -> Result<crate::cel_value::CelValue<'static>, HostError>;
    /// Defines (or finds, once per VM) a metric at configure time. A
    /// labelled metric is defined once by its name and its label names, in
    /// the order given (`&[]` for a plain metric); each increment or record
    /// then passes one value per label, in that order. How the labels reach
    /// Envoy is the host's business (real stat tags, or names tag-encoded
    /// per series by [`crate::metrics::encode`]). Callers sanitise values.
    fn define_metric(
        &self,
        kind: MetricKind,
        name: &str,
        label_names: &[&str],
    ) -> Result<MetricId, HostError>;
    /// Adds `by` to a counter or gauge, on the series of `label_values`.
    fn increment(&self, metric: MetricId, label_values: &[&str], by: i64) -> Result<(), HostError>;
    /// Records a histogram sample (or sets a gauge), on the series of
    /// `label_values`.
    fn record(&self, metric: MetricId, label_values: &[&str], value: u64) -> Result<(), HostError>;
    /// Reads shared data (shared by all VMs with the same `vm_id` in one
    /// Envoy): the value and its compare-and-swap token.
    fn shared_data(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError>;
    /// Writes shared data; `cas` 0 writes unconditionally, otherwise the write
    /// fails with [`HostError::CasMismatch`] if someone wrote in between.
    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostError>;
    /// Logs one line through Envoy. Failures are ignored.
    fn log(&self, level: LogLevel, message: &str);
    /// Whether [`crate::cel::compile`] may give expressions a native form
    /// (evaluated in the module). Real hosts: yes.
    fn native_cel(&self) -> bool {
        true
    }
    /// Tags the request's active span. proxy-wasm cannot:
    /// [`HostError::Unimplemented`] (callers fall back to filter state).
    fn set_span_tag(&self, name: &str, value: &str) -> Result<(), HostError> {
        let _ = (name, value);
        Err(HostError::Unimplemented)
    }
}
