//! The filters' [`Host`] port over Envoy's dynamic-module callbacks.

use crate::abi::{self, EnvoyBuffer, ModuleBuffer};
use crate::attributes::{self, Kind};
use crate::shared_data;
use filter_common::cel::Expression;
use filter_common::host::{Host, HostError, LogLevel, MetricId, MetricKind};
use std::cell::RefCell;
use std::collections::HashMap;

/// Counters a configuration defined, by full name (frozen after `config_new`).
#[derive(Debug, Default)]
pub struct Metrics {
    by_name: HashMap<String, MetricId>,
}

/// Where a host call runs: configuration (main thread) or one stream.
enum Scope<'a> {
    /// `config_new`: metrics may be defined; log lines are collected.
    Config {
        envoy: abi::ConfigEnvoyPtr,
        metrics: RefCell<Metrics>,
        warnings: RefCell<Vec<String>>,
    },
    /// A stream: reads, filter state, increments of defined counters.
    Stream {
        envoy: abi::FilterEnvoyPtr,
        metrics: &'a Metrics,
    },
}

/// A [`Host`] for one configuration or one stream.
pub struct DynHost<'a> {
    scope: Scope<'a>,
}

impl DynHost<'static> {
    /// The host of `config_new`.
    pub fn for_config(envoy: abi::ConfigEnvoyPtr) -> Self {
        DynHost {
            scope: Scope::Config {
                envoy,
                metrics: RefCell::new(Metrics::default()),
                warnings: RefCell::new(Vec::new()),
            },
        }
    }

    /// The metrics defined and the warnings logged while configuring.
    pub fn finish(self) -> (Metrics, Vec<String>) {
        match self.scope {
            Scope::Config {
                metrics, warnings, ..
            } => (metrics.into_inner(), warnings.into_inner()),
            Scope::Stream { .. } => (Metrics::default(), Vec::new()),
        }
    }
}

impl<'a> DynHost<'a> {
    /// The host a worker configures its copy of the jobs with: metrics are
    /// looked up among those `config_new` defined.
    pub fn for_worker(metrics: &'a Metrics) -> Self {
        Self::for_stream(std::ptr::null_mut(), metrics)
    }

    /// The host of one stream.
    pub fn for_stream(envoy: abi::FilterEnvoyPtr, metrics: &'a Metrics) -> Self {
        DynHost {
            scope: Scope::Stream { envoy, metrics },
        }
    }

    fn stream(&self) -> Result<abi::FilterEnvoyPtr, HostError> {
        match self.scope {
            Scope::Stream { envoy, .. } if !envoy.is_null() => Ok(envoy),
            _ => Err(HostError::NotFound),
        }
    }

    fn filter_state(&self, key: &str) -> Result<Option<Vec<u8>>, HostError> {
        let envoy = self.stream()?;
        let mut out = EnvoyBuffer::empty();
        // SAFETY: `envoy` is Envoy's live stream; the key outlives the call.
        let found = unsafe {
            abi::envoy_dynamic_module_callback_http_get_filter_state_bytes(
                envoy,
                ModuleBuffer::of(key.as_bytes()),
                &mut out,
            )
        };
        // SAFETY: Envoy filled `out` with a buffer valid until the stream ends.
        Ok(found.then(|| unsafe { out.to_vec() }))
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

impl Host for DynHost<'_> {
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
        match path {
            // attributegen's output, read back by the other filters.
            [name] => return self.filter_state(&format!("wasm.{name}")),
            ["filter_state", key] => return self.filter_state(key),
            _ => {}
        }
        let envoy = self.stream()?;
        let Some((id, kind)) = attributes::lookup(path) else {
            return Err(HostError::Unimplemented);
        };
        // SAFETY: `envoy` is Envoy's live stream; out-pointers are locals.
        unsafe {
            match kind {
                Kind::Str => {
                    let mut out = EnvoyBuffer::empty();
                    let ok = abi::envoy_dynamic_module_callback_http_filter_get_attribute_string(
                        envoy, id, &mut out,
                    );
                    Ok(ok.then(|| out.to_vec()))
                }
                Kind::Int => {
                    let mut out = 0u64;
                    let ok = abi::envoy_dynamic_module_callback_http_filter_get_attribute_int(
                        envoy, id, &mut out,
                    );
                    Ok(ok.then(|| out.to_le_bytes().to_vec()))
                }
                Kind::Bool => {
                    let mut out = false;
                    let ok = abi::envoy_dynamic_module_callback_http_filter_get_attribute_bool(
                        envoy, id, &mut out,
                    );
                    Ok(ok.then(|| vec![u8::from(out)]))
                }
            }
        }
    }

    fn request_header(&self, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        let envoy = self.stream()?;
        let mut out = EnvoyBuffer::empty();
        // SAFETY: `envoy` is Envoy's live stream; the key outlives the call.
        let found = unsafe {
            abi::envoy_dynamic_module_callback_http_get_header(
                envoy,
                abi::REQUEST_HEADER,
                ModuleBuffer::of(name.as_bytes()),
                &mut out,
                0,
                std::ptr::null_mut(),
            )
        };
        // SAFETY: Envoy filled `out` with a buffer valid during this hook.
        Ok(found.then(|| unsafe { out.to_vec() }))
    }

    fn set_request_header(&self, _name: &str, _value: &[u8]) -> Result<(), HostError> {
        Err(HostError::Unimplemented)
    }

    fn remove_request_header(&self, _name: &str) -> Result<(), HostError> {
        Err(HostError::Unimplemented)
    }

    fn env_var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn set_attribute(&self, name: &str, value: &[u8]) -> Result<(), HostError> {
        let envoy = self.stream()?;
        let key = format!("wasm.{name}");
        // SAFETY: `envoy` is Envoy's live stream; buffers outlive the call.
        let ok = unsafe {
            abi::envoy_dynamic_module_callback_http_set_filter_state_bytes(
                envoy,
                ModuleBuffer::of(key.as_bytes()),
                ModuleBuffer::of(value),
            )
        };
        if ok {
            Ok(())
        } else {
            Err(HostError::BadArgument)
        }
    }

    fn compile(&self, _source: &str) -> Result<Expression, HostError> {
        // No CEL host call in the dynamic-module ABI: only the native subset.
        Err(HostError::Unimplemented)
    }

    fn evaluate(&self, _expr: &Expression) -> Result<Vec<u8>, HostError> {
        Err(HostError::Unimplemented)
    }

    fn define_metric(&self, kind: MetricKind, name: &str) -> Result<MetricId, HostError> {
        match &self.scope {
            Scope::Stream { metrics, .. } => metrics
                .by_name
                .get(name)
                .copied()
                .ok_or(HostError::Unimplemented),
            Scope::Config { envoy, metrics, .. } => {
                if let Some(id) = metrics.borrow().by_name.get(name) {
                    return Ok(*id);
                }
                if kind != MetricKind::Counter {
                    return Err(HostError::Unimplemented);
                }
                let mut id = 0usize;
                // SAFETY: Envoy's config object during `config_new`.
                let status = unsafe {
                    abi::envoy_dynamic_module_callback_http_filter_config_define_counter(
                        *envoy,
                        ModuleBuffer::of(name.as_bytes()),
                        std::ptr::null(),
                        0,
                        &mut id,
                    )
                };
                if status != abi::METRICS_SUCCESS {
                    return Err(HostError::Other(status));
                }
                let id = MetricId(u32::try_from(id).map_err(|_| HostError::BadArgument)?);
                metrics.borrow_mut().by_name.insert(name.to_owned(), id);
                Ok(id)
            }
        }
    }

    fn increment(&self, metric: MetricId, by: i64) -> Result<(), HostError> {
        let by = u64::try_from(by).map_err(|_| HostError::BadArgument)?;
        // SAFETY: Envoy's live config or stream; no label buffers.
        let status = unsafe {
            match &self.scope {
                Scope::Config { envoy, .. } => {
                    abi::envoy_dynamic_module_callback_http_filter_config_increment_counter(
                        *envoy,
                        metric.0 as usize,
                        std::ptr::null(),
                        0,
                        by,
                    )
                }
                Scope::Stream { envoy, .. } if envoy.is_null() => return Err(HostError::NotFound),
                Scope::Stream { envoy, .. } => {
                    abi::envoy_dynamic_module_callback_http_filter_increment_counter(
                        *envoy,
                        metric.0 as usize,
                        std::ptr::null(),
                        0,
                        by,
                    )
                }
            }
        };
        if status == abi::METRICS_SUCCESS {
            Ok(())
        } else {
            Err(HostError::Other(status))
        }
    }

    fn record(&self, _metric: MetricId, _value: u64) -> Result<(), HostError> {
        Err(HostError::Unimplemented)
    }

    fn shared_data(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
        Ok(shared_data::get(key))
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
        shared_data::set(key, value, cas)
    }

    fn log(&self, level: LogLevel, message: &str) {
        if let Scope::Config { warnings, .. } = &self.scope {
            if level >= LogLevel::Warn {
                warnings.borrow_mut().push(message.to_owned());
                return;
            }
        }
        log_line(level, message);
    }
}
