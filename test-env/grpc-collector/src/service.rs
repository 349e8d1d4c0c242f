//! The gRPC services: Envoy's `AccessLogService.StreamAccessLogs` and
//! `MetricsService.StreamMetrics`, writing what they receive to sinks.

use crate::access_log::{self, Origin};
use crate::metrics::{self, NameFilter};
use crate::sink::Sink;
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::accesslog::v3::access_log_service_server::AccessLogService;
use envoy_types::pb::envoy::service::accesslog::v3::stream_access_logs_message::LogEntries;
use envoy_types::pb::envoy::service::accesslog::v3::{
    StreamAccessLogsMessage, StreamAccessLogsResponse,
};
use envoy_types::pb::envoy::service::metrics::v3::metrics_service_server::MetricsService;
use envoy_types::pb::envoy::service::metrics::v3::{StreamMetricsMessage, StreamMetricsResponse};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tonic::{Request, Response, Status, Streaming};

/// Both services, sharing the sinks and the counters.
#[derive(Debug, Clone)]
pub struct Collector {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    access_logs: Sink,
    metrics: Sink,
    filter: NameFilter,
    entries: AtomicU64,
    snapshots: AtomicU64,
}

impl Collector {
    /// A collector writing access-log entries to one sink and metric series
    /// to another, keeping the metric families `filter` keeps.
    pub fn new(access_logs: Sink, metrics: Sink, filter: NameFilter) -> Self {
        Collector {
            inner: Arc::new(Inner {
                access_logs,
                metrics,
                filter,
                entries: AtomicU64::new(0),
                snapshots: AtomicU64::new(0),
            }),
        }
    }

    /// Access-log entries received so far.
    pub fn entries(&self) -> u64 {
        self.inner.entries.load(Ordering::Relaxed)
    }

    /// Metric snapshots received so far.
    pub fn snapshots(&self) -> u64 {
        self.inner.snapshots.load(Ordering::Relaxed)
    }

    /// Handles one access-log message: remembers the stream's identifier
    /// (only the first message of a stream has it) and writes every entry.
    pub fn access_log_message(&self, origin: &mut Origin, msg: &StreamAccessLogsMessage) {
        if let Some(id) = &msg.identifier {
            origin.node = node_id(&id.node);
            origin.log_name = id.log_name.clone();
        }
        let lines: Vec<Value> = match &msg.log_entries {
            Some(LogEntries::HttpLogs(h)) => h
                .log_entry
                .iter()
                .map(|e| access_log::http_entry(origin, e))
                .collect(),
            Some(LogEntries::TcpLogs(t)) => t
                .log_entry
                .iter()
                .map(|e| access_log::tcp_entry(origin, e))
                .collect(),
            None => Vec::new(),
        };
        self.inner
            .entries
            .fetch_add(lines.len() as u64, Ordering::Relaxed);
        if let Err(e) = self.inner.access_logs.write_lines(&lines) {
            eprintln!("grpc-collector: cannot write access logs: {e}");
        }
    }

    /// Handles one metrics message (a snapshot): writes each kept series with
    /// the node and the snapshot's sequence number.
    pub fn metrics_message(&self, node: &mut String, msg: &StreamMetricsMessage) {
        if let Some(id) = &msg.identifier {
            *node = node_id(&id.node);
        }
        let snapshot = self.inner.snapshots.fetch_add(1, Ordering::Relaxed) + 1;
        let mut lines = Vec::new();
        for family in &msg.envoy_metrics {
            if !self
                .inner
                .filter
                .keeps(family.name.as_deref().unwrap_or_default())
            {
                continue;
            }
            for mut s in metrics::series(family) {
                if let Some(o) = s.as_object_mut() {
                    o.insert("node".into(), json!(node));
                    o.insert("snapshot".into(), json!(snapshot));
                }
                lines.push(s);
            }
        }
        if let Err(e) = self.inner.metrics.write_lines(&lines) {
            eprintln!("grpc-collector: cannot write metrics: {e}");
        }
    }
}

/// The `id` of a stream identifier's node (empty when it has none).
fn node_id(node: &Option<Node>) -> String {
    node.as_ref().map(|n| n.id.clone()).unwrap_or_default()
}

/// Reads a client stream to its end (or its first error, logged), handing
/// each message to `handle`; `what` names the stream in the log.
async fn drain<M>(request: Request<Streaming<M>>, what: &str, mut handle: impl FnMut(&M)) {
    let peer = request.remote_addr();
    let mut stream = request.into_inner();
    eprintln!("grpc-collector: {what} stream from {peer:?}");
    loop {
        match stream.message().await {
            Ok(Some(msg)) => handle(&msg),
            Ok(None) => break,
            Err(status) => {
                eprintln!("grpc-collector: {what} stream ended: {status}");
                break;
            }
        }
    }
}

#[tonic::async_trait]
impl AccessLogService for Collector {
    async fn stream_access_logs(
        &self,
        request: Request<Streaming<StreamAccessLogsMessage>>,
    ) -> Result<Response<StreamAccessLogsResponse>, Status> {
        let mut origin = Origin::default();
        drain(request, "access-log", |msg| {
            self.access_log_message(&mut origin, msg)
        })
        .await;
        Ok(Response::new(StreamAccessLogsResponse {}))
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn stream_metrics(
        &self,
        request: Request<Streaming<StreamMetricsMessage>>,
    ) -> Result<Response<StreamMetricsResponse>, Status> {
        let mut node = String::new();
        drain(request, "metrics", |msg| {
            self.metrics_message(&mut node, msg)
        })
        .await;
        Ok(Response::new(StreamMetricsResponse {}))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::data::accesslog::v3::HttpAccessLogEntry;
    use envoy_types::pb::envoy::service::accesslog::v3::stream_access_logs_message::{
        HttpAccessLogEntries, Identifier,
    };
    use envoy_types::pb::envoy::service::metrics::v3::stream_metrics_message;
    use envoy_types::pb::io::prometheus::client::{Counter, Metric, MetricFamily};
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Buf {
        fn lines(&self) -> Vec<Value> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }
    }

    fn node(id: &str) -> Option<Node> {
        Some(Node {
            id: id.into(),
            ..Default::default()
        })
    }

    #[test]
    fn identifier_of_the_first_message_applies_to_later_ones() {
        let (logs, metrics) = (Buf::default(), Buf::default());
        let c = Collector::new(
            Sink::writer(logs.clone()),
            Sink::writer(metrics.clone()),
            NameFilter::default(),
        );
        let entries = |n| {
            Some(LogEntries::HttpLogs(HttpAccessLogEntries {
                log_entry: vec![HttpAccessLogEntry::default(); n],
            }))
        };
        let mut origin = Origin::default();
        c.access_log_message(
            &mut origin,
            &StreamAccessLogsMessage {
                identifier: Some(Identifier {
                    node: node("envoy-1"),
                    log_name: "als".into(),
                }),
                log_entries: entries(1),
            },
        );
        c.access_log_message(
            &mut origin,
            &StreamAccessLogsMessage {
                identifier: None,
                log_entries: entries(2),
            },
        );
        let lines = logs.lines();
        assert_eq!(lines.len(), 3);
        assert!(lines
            .iter()
            .all(|l| l["node"] == "envoy-1" && l["log_name"] == "als"));
        assert_eq!(c.entries(), 3);
    }

    #[test]
    fn metrics_are_filtered_and_numbered_by_snapshot() {
        let metrics = Buf::default();
        let c = Collector::new(
            Sink::writer(Buf::default()),
            Sink::writer(metrics.clone()),
            NameFilter::parse("istio_"),
        );
        let family = |name: &str| MetricFamily {
            name: Some(name.into()),
            r#type: Some(0),
            metric: vec![Metric {
                counter: Some(Counter {
                    value: Some(1.0),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let msg = |id| StreamMetricsMessage {
            identifier: id,
            envoy_metrics: vec![family("istio_get_calls"), family("server.uptime")],
        };
        let mut n = String::new();
        c.metrics_message(
            &mut n,
            &msg(Some(stream_metrics_message::Identifier {
                node: node("envoy-1"),
            })),
        );
        c.metrics_message(&mut n, &msg(None));
        let lines = metrics.lines();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["name"], "istio_get_calls");
        assert_eq!(lines[1]["snapshot"], 2);
        assert_eq!(lines[1]["node"], "envoy-1");
        assert_eq!(c.snapshots(), 2);
    }
}
