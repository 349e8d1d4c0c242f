//! Envoy's gRPC sinks and the project's collector for them: bootstrap pieces
//! for the HTTP gRPC access logger (`envoy.access_loggers.http_grpc`) and the
//! metrics-service stats sink (`envoy.stat_sinks.metrics_service`), and
//! [`GrpcCollector`], which runs the real `grpc-collector` process (it can be
//! killed and restarted on the same port and output directory).

use crate::process::poll;
use crate::{err, HarnessError, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The counters of Envoy's gRPC access loggers (all loggers of an Envoy
/// together), verified on Envoy 1.40: entries accepted by the logger (also
/// those later lost in a stream that fails to connect), and entries dropped
/// because the stream was backed up and the buffer full.
pub const LOGS_WRITTEN: &str = "access_logs.grpc_access_log.logs_written";
/// See [`LOGS_WRITTEN`].
pub const LOGS_DROPPED: &str = "access_logs.grpc_access_log.logs_dropped";

/// A static HTTP/2 cluster to the collector at `127.0.0.1:port`.
pub fn cluster(name: &str, port: u16) -> Value {
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "0.25s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": { "http2_protocol_options": {} },
            }
        },
        "load_assignment": { "cluster_name": name, "endpoints": [{ "lb_endpoints": [
            { "endpoint": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": port } } } } ] }] },
    })
}

/// An HCM access logger sending each entry over gRPC to `cluster`, with the
/// filter-state objects `wasm.<attribute>` of each attribute and the given
/// request headers, flushed every 100 ms.
pub fn http_grpc_access_logger(
    cluster: &str,
    log_name: &str,
    attributes: &[&str],
    request_headers: &[&str],
) -> Value {
    let objects: Vec<String> = attributes.iter().map(|a| format!("wasm.{a}")).collect();
    json!({
        "name": "envoy.access_loggers.http_grpc",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig",
            "common_config": {
                "log_name": log_name,
                "transport_api_version": "V3",
                "grpc_service": { "envoy_grpc": { "cluster_name": cluster } },
                "filter_state_objects_to_log": objects,
                "buffer_flush_interval": "0.1s",
            },
            "additional_request_headers_to_log": request_headers,
        }
    })
}

/// The bootstrap's `stats_sinks`: Envoy's metrics service over gRPC to
/// `cluster`, tags as labels (tag-extracted names), counters cumulative.
pub fn metrics_service_sinks(cluster: &str) -> Value {
    json!([{
        "name": "envoy.stat_sinks.metrics_service",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.config.metrics.v3.MetricsServiceConfig",
            "transport_api_version": "V3",
            "grpc_service": { "envoy_grpc": { "cluster_name": cluster } },
            "emit_tags_as_labels": true,
        }
    }])
}

/// The `grpc-collector` binary: `$GRPC_COLLECTOR_BIN`, else built with cargo
/// (`cargo build -p grpc-collector`, quick when up to date).
pub fn collector_bin() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("GRPC_COLLECTOR_BIN").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(bin));
    }
    let root = crate::paths::workspace_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "-q",
            "-p",
            "grpc-collector",
            "--bin",
            "grpc-collector",
        ])
        .output()
        .map_err(|e| HarnessError(format!("cargo build -p grpc-collector: {e}")))?;
    if !out.status.success() {
        return err(format!(
            "cargo build -p grpc-collector failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("debug/grpc-collector"))
}

/// The collector process, listening on a fixed port and writing to a fixed
/// directory (`access-logs.jsonl`, `metrics.jsonl`, `collector.log`), so it
/// can be killed and started again in the same place.
#[derive(Debug)]
pub struct GrpcCollector {
    bin: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    metric_prefix: String,
}

impl GrpcCollector {
    /// Builds (if needed) and starts the collector on a free port, keeping
    /// the metric families whose names start with one of `metric_prefixes`
    /// (comma-separated; empty keeps all).
    pub fn start(metric_prefixes: &str) -> Result<GrpcCollector> {
        let dir = tempfile::Builder::new()
            .prefix("grpc-collector-")
            .tempdir()
            .map_err(|e| HarnessError(format!("temp dir: {e}")))?;
        let mut c = GrpcCollector {
            bin: collector_bin()?,
            port: crate::free_port()?,
            dir,
            child: None,
            metric_prefix: metric_prefixes.to_string(),
        };
        c.restart()?;
        Ok(c)
    }

    /// The port Envoy's cluster must point at.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The output directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the process (SIGKILL, as a crash would) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops (`SIGSTOP`) or resumes (`SIGCONT`) the process: a stalled
    /// collector keeps its connections open but reads nothing.
    pub fn pause(&self, paused: bool) {
        if let Some(child) = &self.child {
            let sig = if paused { libc::SIGSTOP } else { libc::SIGCONT };
            // SAFETY: plain kill(2) on our child's pid.
            unsafe { libc::kill(child.id() as i32, sig) };
        }
    }

    /// Starts the process (again) on the same port and output directory and
    /// waits until it accepts connections.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir().join("collector.log"))
            .map_err(|e| HarnessError(format!("collector log: {e}")))?;
        let mut cmd = Command::new(&self.bin);
        cmd.args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--out")
            .arg(self.dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if !self.metric_prefix.is_empty() {
            cmd.args(["--metric-prefix", &self.metric_prefix]);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| HarnessError(format!("cannot run {}: {e}", self.bin.display())))?;
        let port = self.port;
        let ready = poll(Duration::from_secs(10), Duration::from_millis(20), || {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(Err(status));
            }
            std::net::TcpStream::connect(("127.0.0.1", port))
                .is_ok()
                .then_some(Ok(()))
        });
        match ready {
            Some(Ok(())) => {}
            Some(Err(status)) => {
                return err(format!("grpc-collector exited ({status}):\n{}", self.log()))
            }
            None => {
                let _ = child.kill();
                return err(format!("grpc-collector not listening:\n{}", self.log()));
            }
        }
        self.child = Some(child);
        Ok(())
    }

    /// The collector's own log (stream openings and endings).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("collector.log")).unwrap_or_default()
    }

    /// Every access-log entry received so far (across restarts).
    pub fn access_logs(&self) -> Vec<Value> {
        crate::process::read_json_lines(&self.dir().join("access-logs.jsonl"))
    }

    /// Every metric series received so far (across restarts), one per
    /// series and snapshot.
    pub fn metrics(&self) -> Vec<Value> {
        crate::process::read_json_lines(&self.dir().join("metrics.jsonl"))
    }

    /// Waits until `done` holds for the access-log entries received so far
    /// and returns them.
    pub fn wait_access_logs(
        &self,
        timeout: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Result<Vec<Value>> {
        wait(timeout, || self.access_logs(), done, "access-log entries")
    }

    /// Waits until `done` holds for the metric series received so far and
    /// returns them.
    pub fn wait_metrics(
        &self,
        timeout: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Result<Vec<Value>> {
        wait(timeout, || self.metrics(), done, "metric series")
    }
}

impl Drop for GrpcCollector {
    fn drop(&mut self) {
        self.pause(false);
        if let Some(mut child) = self.child.take() {
            crate::process::stop(&mut child);
        }
        if std::thread::panicking() {
            eprintln!("---- grpc-collector log ----\n{}", self.log());
        }
    }
}

fn wait(
    timeout: Duration,
    read: impl Fn() -> Vec<Value>,
    done: impl Fn(&[Value]) -> bool,
    what: &str,
) -> Result<Vec<Value>> {
    let mut received = 0;
    poll(timeout, Duration::from_millis(25), || {
        let got = read();
        if done(&got) {
            return Some(got);
        }
        received = got.len();
        None
    })
    .ok_or_else(|| {
        HarnessError(format!(
            "condition on {what} not met after {timeout:?} ({received} received)"
        ))
    })
}
