//! [`Host`] on top of the safe host calls.

use super::hostcalls;
use super::metric_table;
use crate::cel_value::CelValue;
use crate::host::{Host, HostError, HostExpression, LogLevel, MetricId, MetricKind};

/// The host the filter runs in. Zero-sized: state lives in Envoy.
#[derive(Debug, Default, Clone, Copy)]
pub struct WasmHost;

fn release_expression(token: u32) {
    let _ = hostcalls::call_foreign_function("expr_delete", &token.to_le_bytes());
}

impl Host for WasmHost {
    fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
        hostcalls::get_property(path)
    }
    fn request_header(&self, name: &str) -> Result<Option<Vec<u8>>, HostError> {
        hostcalls::get_request_header(name)
    }
    fn request_header_map(&self) -> Result<Option<Vec<u8>>, HostError> {
        hostcalls::get_request_header_map()
    }
    fn set_request_header(&self, name: &str, value: &[u8]) -> Result<(), HostError> {
        hostcalls::set_request_header(name, value)
    }
    fn remove_request_header(&self, name: &str) -> Result<(), HostError> {
        hostcalls::remove_request_header(name)
    }
    fn env_var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    fn set_attribute(&self, name: &str, value: &[u8]) -> Result<(), HostError> {
        hostcalls::set_attribute(name, value)
    }
    fn compile(&self, source: &str) -> Result<HostExpression, HostError> {
        let out = hostcalls::call_foreign_function("expr_create", source.as_bytes())?;
        let token = <[u8; 4]>::try_from(out.as_deref().unwrap_or_default())
            .map(u32::from_le_bytes)
            .map_err(|_| HostError::InternalFailure)?;
        Ok(HostExpression::new(token, source, release_expression))
    }
    fn evaluate(&self, expr: &HostExpression) -> Result<CelValue<'static>, HostError> {
        hostcalls::call_foreign_function("expr_evaluate", &expr.token().to_le_bytes())
            .map(|r| CelValue::from(r.unwrap_or_default()))
    }
    fn define_metric(
        &self,
        kind: MetricKind,
        name: &str,
        label_names: &[&str],
    ) -> Result<MetricId, HostError> {
        metric_table::define(kind, name, label_names)
    }
    fn increment(&self, metric: MetricId, values: &[&str], by: i64) -> Result<(), HostError> {
        hostcalls::increment_metric(metric_table::series(metric, values)?, by)
    }
    fn record(&self, metric: MetricId, values: &[&str], value: u64) -> Result<(), HostError> {
        hostcalls::record_metric(metric_table::series(metric, values)?, value)
    }
    fn shared_data(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
        hostcalls::get_shared_data(key)
    }
    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
        hostcalls::set_shared_data(key, value, cas)
    }
    fn log(&self, level: LogLevel, message: &str) {
        hostcalls::log(level, message);
    }
}
