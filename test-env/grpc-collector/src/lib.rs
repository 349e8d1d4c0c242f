//! A collector for Envoy's gRPC access-log and metrics services.
//!
//! Implements `envoy.service.accesslog.v3.AccessLogService.StreamAccessLogs`
//! (Envoy's `envoy.access_loggers.http_grpc` / `tcp_grpc` loggers, Istio's
//! `envoyAccessLogService` and `envoyHttpAls` providers) and
//! `envoy.service.metrics.v3.MetricsService.StreamMetrics` (the
//! `envoy.stat_sinks.metrics_service` sink, Istio's `envoyMetricsService`),
//! with Envoy's protos from the `envoy-types` crate, and writes what arrives
//! as JSON lines:
//!
//! - access logs: one line per entry, with method, path, response code,
//!   request headers Envoy was told to log and the filter-state objects
//!   (`wasm.istio_operationId` …) decoded to text ([`access_log`]);
//! - metrics: one line per series of each snapshot, with the family's name,
//!   type, labels and value ([`metrics`]).

pub mod access_log;
pub mod filter_state;
pub mod metrics;
pub mod service;
pub mod sink;

pub use service::Collector;
