//! The filters' [`Host`] port over Envoy's dynamic-module callbacks.
//!
//! One type, three scopes: `config_new` (main thread: metrics are defined,
//! warnings collected so a bad configuration is rejected), a worker building
//! its copy of the jobs (metrics looked up among those defined), and one
//! stream (reads, writes, increments).

use crate::abi::{self, EnvoyBuffer, ModuleBuffer};
use crate::attributes::{self, Kind, Source};
use crate::metric_table::MetricTable;
use crate::{expressions, shared_data};
use filter_common::cel::CelValue;
use filter_common::host::{Bytes, Host, HostError, HostExpression, LogLevel, MetricId, MetricKind};
use std::cell::RefCell;
use std::sync::Arc;

/// Where a host call runs.
enum Scope {
    /// `config_new`: metrics may be defined; warnings are collected.
    Config {
        envoy: abi::ConfigEnvoyPtr,
        metrics: RefCell<MetricTable>,
        warnings: RefCell<Vec<String>>,
    },
    /// A worker configuring its copy of the jobs: metrics are found among
    /// those `config_new` defined; nothing else reaches Envoy.
    Worker { metrics: Arc<MetricTable> },
    /// A stream: reads, filter state, span tags, metric updates.
    Stream { envoy: abi::FilterEnvoyPtr },
}

/// A [`Host`] for one configuration, one worker's jobs or one stream.
pub struct DynHost {
    scope: Scope,
}

impl DynHost {
    /// The host of `config_new`.
    pub fn for_config(envoy: abi::ConfigEnvoyPtr) -> Self {
        DynHost {
            scope: Scope::Config {
                envoy,
                metrics: RefCell::new(MetricTable::default()),
                warnings: RefCell::new(Vec::new()),
            },
        }
    }

    /// The metrics defined and the warnings logged while configuring.
    pub fn finish(self) -> (MetricTable, Vec<String>) {
        match self.scope {
            Scope::Config {
                metrics, warnings, ..
            } => (metrics.into_inner(), warnings.into_inner()),
            _ => (MetricTable::default(), Vec::new()),
        }
    }

    /// The host a worker configures its copy of the jobs with.
    pub fn for_worker(metrics: Arc<MetricTable>) -> Self {
        DynHost {
            scope: Scope::Worker { metrics },
        }
    }

    /// The host of one stream.
    pub fn for_stream(envoy: abi::FilterEnvoyPtr) -> Self {
        DynHost {
            scope: Scope::Stream { envoy },
        }
    }

    /// Whether this host configures (`config_new`).
    pub fn is_config(&self) -> bool {
        matches!(self.scope, Scope::Config { .. })
    }

    fn stream(&self) -> Result<abi::FilterEnvoyPtr, HostError> {
        match self.scope {
            Scope::Stream { envoy } if !envoy.is_null() => Ok(envoy),
            _ => Err(HostError::NotFound),
        }
    }

    fn filter_state(&self, key: &[u8]) -> Result<Option<Raw>, HostError> {
        let envoy = self.stream()?;
        let mut out = EnvoyBuffer::empty();
        // SAFETY: `envoy` is Envoy's live stream; the key outlives the call.
        let found = unsafe {
            abi::envoy_dynamic_module_callback_http_get_filter_state_bytes(
                envoy,
                ModuleBuffer::of(key),
                &mut out,
            )
        };
        Ok(found.then_some(Raw::Envoy(out)))
    }

    fn attribute(&self, id: u32, kind: Kind) -> Result<Option<Raw>, HostError> {
        let envoy = self.stream()?;
        // SAFETY: `envoy` is Envoy's live stream; out-pointers are locals.
        unsafe {
            match kind {
                Kind::Str => {
                    let mut out = EnvoyBuffer::empty();
                    let ok = abi::envoy_dynamic_module_callback_http_filter_get_attribute_string(
                        envoy, id, &mut out,
                    );
                    Ok(ok.then_some(Raw::Envoy(out)))
                }
                Kind::Int => {
                    let mut out = 0u64;
                    let ok = abi::envoy_dynamic_module_callback_http_filter_get_attribute_int(
                        envoy, id, &mut out,
                    );
                    Ok(ok.then(|| Raw::Inline(out.to_le_bytes(), 8)))
                }
                Kind::Bool => {
                    let mut out = false;
                    let ok = abi::envoy_dynamic_module_callback_http_filter_get_attribute_bool(
                        envoy, id, &mut out,
                    );
                    Ok(ok.then(|| Raw::Inline([u8::from(out), 0, 0, 0, 0, 0, 0, 0], 1)))
                }
            }
        }
    }

    /// The first value of header `name` in the map of `header_type`.
    fn header(&self, header_type: u32, name: &str) -> Result<Option<Raw>, HostError> {
        let envoy = self.stream()?;
        let mut out = EnvoyBuffer::empty();
        // SAFETY: `envoy` is Envoy's live stream; the key outlives the call.
        let found = unsafe {
            abi::envoy_dynamic_module_callback_http_get_header(
                envoy,
                header_type,
                ModuleBuffer::of(name.as_bytes()),
                &mut out,
                0,
                std::ptr::null_mut(),
            )
        };
        Ok(found.then_some(Raw::Envoy(out)))
    }

    /// The value at `path`, as Envoy lends it.
    fn read(&self, path: &[&str]) -> Result<Option<Raw>, HostError> {
        match attributes::source(path) {
            // attributegen's output, read back by the other filters.
            Source::WasmFilterState(name) => with_wasm_key(name, |key| self.filter_state(key)),
            Source::FilterState(key) => self.filter_state(key.as_bytes()),
            Source::Header(header_type, name) => self.header(header_type, name),
            Source::Attribute(id, kind) => self.attribute(id, kind),
            Source::Absent => {
                self.stream()?;
                Ok(None)
            }
            Source::Unsupported => Err(HostError::Unimplemented),
        }
    }

    fn set_header(&self, name: &str, value: ModuleBuffer) -> Result<(), HostError> {
        let envoy = self.stream()?;
        // SAFETY: `envoy` is Envoy's live stream; buffers outlive the call.
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_set_header(
                envoy,
                abi::REQUEST_HEADER,
                ModuleBuffer::of(name.as_bytes()),
                value,
            )
        };
        ok.then_some(()).ok_or(HostError::BadArgument)
    }
}

/// Sends one line to Envoy's `dynamic_modules` logger.
pub fn log_line(level: LogLevel, message: &str) {
    // SAFETY: plain values and a buffer that outlives the call.
    unsafe {
        if abi::envoy_dynamic_module_callback_log_enabled(level as u32) {
            abi::envoy_dynamic_module_callback_log(
                level as u32,
                ModuleBuffer::of(message.as_bytes()),
            );
        }
    }
}

/// Envoy's metrics result code as a host result.
fn metrics_result(status: u32) -> Result<(), HostError> {
    if status == abi::METRICS_SUCCESS {
        Ok(())
    } else {
        Err(HostError::Other(status))
    }
}

/// A value read from Envoy: its buffer (valid during the hook) or a
/// number's bytes.
enum Raw {
    Envoy(EnvoyBuffer),
    Inline([u8; 8], usize),
}

impl Raw {
    fn bytes(&self) -> &[u8] {
        match self {
            // SAFETY: Envoy's buffer is valid during the hook that read it,
            // and a `Raw` never leaves that hook.
            Raw::Envoy(b) => unsafe { b.as_slice() },
            Raw::Inline(bytes, n) => bytes.get(..*n).unwrap_or_default(),
        }
    }
}

/// Runs `f` with the filter-state key `wasm.<name>` (built on the stack
/// when short: the request path allocates nothing for it).
fn with_wasm_key<T>(name: &str, f: impl FnOnce(&[u8]) -> T) -> T {
    const PREFIX: &[u8] = b"wasm.";
    let mut buf = [0u8; 128];
    match buf.get_mut(..PREFIX.len() + name.len()) {
        Some(key) => {
            let (prefix, rest) = key.split_at_mut(PREFIX.len());
            prefix.copy_from_slice(PREFIX);
            rest.copy_from_slice(name.as_bytes());
            f(key)
        }
        None => f(format!("wasm.{name}").as_bytes()),
    }
}

/// Runs `f` with the label values lent to Envoy as buffers (on the stack
/// for up to 16 labels).
fn with_buffers<T>(values: &[&str], f: impl FnOnce(&[ModuleBuffer]) -> T) -> T {
    let mut slots = [ModuleBuffer::null(); 16];
    match slots.get_mut(..values.len()) {
        Some(lent) => {
            for (slot, v) in lent.iter_mut().zip(values) {
                *slot = ModuleBuffer::of(v.as_bytes());
            }
            f(lent)
        }
        None => f(&buffers(values)),
    }
}

/// Label names or values lent to Envoy for one call.
fn buffers(values: &[&str]) -> Vec<ModuleBuffer> {
    values
        .iter()
        .map(|v| ModuleBuffer::of(v.as_bytes()))
        .collect()
}

impl Host for DynHost {
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
        Ok(self.read(path)?.map(|v| v.bytes().to_vec()))
    }

    fn property_shared(&self, path: &[&str]) -> Result<Option<Bytes>, HostError> {
        Ok(self.read(path)?.map(|v| Bytes::from(v.bytes())))
    }

    fn request_header(&self, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        Ok(self
            .header(abi::REQUEST_HEADER, name)?
            .map(|v| v.bytes().to_vec()))
    }

    fn request_header_shared(&self, name: &str) -> Result<Option<Bytes>, HostError> {
        Ok(self
            .header(abi::REQUEST_HEADER, name)?
            .map(|v| Bytes::from(v.bytes())))
    }

    fn set_request_header(&self, name: &str, value: &[u8]) -> Result<(), HostError> {
        self.set_header(name, ModuleBuffer::of(value))
    }

    fn remove_request_header(&self, name: &str) -> Result<(), HostError> {
        self.set_header(name, ModuleBuffer::null())
    }

    fn env_var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn set_attribute(&self, name: &str, value: &[u8]) -> Result<(), HostError> {
        let envoy = self.stream()?;
        // SAFETY: `envoy` is Envoy's live stream; buffers outlive the call.
        let ok = with_wasm_key(name, |key| unsafe {
            abi::envoy_dynamic_module_callback_http_set_filter_state_bytes(
                envoy,
                ModuleBuffer::of(key),
                ModuleBuffer::of(value),
            )
        });
        ok.then_some(()).ok_or(HostError::BadArgument)
    }

    fn compile(&self, source: &str) -> Result<HostExpression, HostError> {
        expressions::compile(source).inspect_err(|_| {
            self.log(LogLevel::Warn, &expressions::unsupported_reason(source));
        })
    }

    fn evaluate(&self, expr: &HostExpression) -> Result<CelValue<'static>, HostError> {
        expressions::evaluate(self, expr)
    }

    fn define_metric(
        &self,
        kind: MetricKind,
        name: &str,
        label_names: &[&str],
    ) -> Result<MetricId, HostError> {
        match &self.scope {
            Scope::Stream { .. } => Err(HostError::Unimplemented),
            Scope::Worker { metrics } => metrics.find(kind, name, label_names),
            Scope::Config { envoy, metrics, .. } => {
                if let Ok(id) = metrics.borrow().find(kind, name, label_names) {
                    return Ok(id);
                }
                let names = buffers(label_names);
                let mut envoy_id = 0usize;
                // SAFETY: Envoy's config object during `config_new`; the
                // buffers outlive the call.
                let status = unsafe {
                    match kind {
                        MetricKind::Counter => {
                            abi::envoy_dynamic_module_callback_http_filter_config_define_counter(
                                *envoy,
                                ModuleBuffer::of(name.as_bytes()),
                                names.as_ptr(),
                                names.len(),
                                &mut envoy_id,
                            )
                        }
                        MetricKind::Histogram => {
                            abi::envoy_dynamic_module_callback_http_filter_config_define_histogram(
                                *envoy,
                                ModuleBuffer::of(name.as_bytes()),
                                names.as_ptr(),
                                names.len(),
                                &mut envoy_id,
                            )
                        }
                        MetricKind::Gauge => return Err(HostError::Unimplemented),
                    }
                };
                metrics_result(status)?;
                metrics
                    .borrow_mut()
                    .insert(kind, name, label_names, envoy_id)
            }
        }
    }

    fn increment(&self, metric: MetricId, label_values: &[&str], by: i64) -> Result<(), HostError> {
        let by = u64::try_from(by).map_err(|_| HostError::BadArgument)?;
        let (kind, id) = crate::metric_table::decode(metric);
        if kind != MetricKind::Counter {
            return Err(HostError::BadArgument);
        }
        /// Where the increment goes.
        enum Target {
            Config(abi::ConfigEnvoyPtr),
            Stream(abi::FilterEnvoyPtr),
        }
        let target = match &self.scope {
            Scope::Worker { .. } => return Err(HostError::NotFound),
            Scope::Config { envoy, .. } => Target::Config(*envoy),
            Scope::Stream { .. } => Target::Stream(self.stream()?),
        };
        // SAFETY: Envoy's live config or stream; buffers outlive the call.
        let status = with_buffers(label_values, |values| unsafe {
            match target {
                Target::Config(config) => {
                    abi::envoy_dynamic_module_callback_http_filter_config_increment_counter(
                        config,
                        id,
                        values.as_ptr(),
                        values.len(),
                        by,
                    )
                }
                Target::Stream(stream) => {
                    abi::envoy_dynamic_module_callback_http_filter_increment_counter(
                        stream,
                        id,
                        values.as_ptr(),
                        values.len(),
                        by,
                    )
                }
            }
        });
        metrics_result(status)
    }

    fn record(&self, metric: MetricId, label_values: &[&str], value: u64) -> Result<(), HostError> {
        let (kind, id) = crate::metric_table::decode(metric);
        if kind != MetricKind::Histogram {
            return Err(HostError::BadArgument);
        }
        let envoy = self.stream()?;
        // SAFETY: Envoy's live stream; buffers outlive the call.
        let status = with_buffers(label_values, |values| unsafe {
            abi::envoy_dynamic_module_callback_http_filter_record_histogram_value(
                envoy,
                id,
                values.as_ptr(),
                values.len(),
                value,
            )
        });
        metrics_result(status)
    }

    fn shared_data(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
        Ok(shared_data::get(key))
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
        shared_data::set(key, value, cas)
    }

    fn log(&self, level: LogLevel, message: &str) {
        match &self.scope {
            Scope::Config { warnings, .. } if level >= LogLevel::Warn => {
                warnings.borrow_mut().push(message.to_owned());
            }
            // Each worker repeats what `config_new` already said.
            Scope::Worker { .. } => {}
            _ => log_line(level, message),
        }
    }

    fn set_span_tag(&self, name: &str, value: &str) -> Result<(), HostError> {
        let envoy = self.stream()?;
        // SAFETY: `envoy` is Envoy's live stream.
        let span = unsafe { abi::envoy_dynamic_module_callback_http_get_active_span(envoy) };
        if span.is_null() {
            return Err(HostError::NotFound);
        }
        // SAFETY: the span belongs to the live stream; buffers outlive the call.
        unsafe {
            abi::envoy_dynamic_module_callback_http_span_set_tag(
                span,
                ModuleBuffer::of(name.as_bytes()),
                ModuleBuffer::of(value.as_bytes()),
            );
        }
        Ok(())
    }
}
