//! A real-Envoy test harness for the project's Wasm filters.
//!
//! ```no_run
//! use envoy_harness::{Envoy, Wasm};
//! let envoy = Envoy::builder()
//!     .filter(Wasm::new("attributegen").config(r#"{"attributes":[]}"#))
//!     .log_attribute("istio_operationId")
//!     .start()
//!     .unwrap();
//! let resp = envoy.request("GET", "/books").upstream_status(404).send().unwrap();
//! assert_eq!(resp.status, 404);
//! let line = envoy.access_log_entry(&resp).unwrap();
//! println!("{}", line["attr.istio_operationId"]);
//! ```
//!
//! Each [`Envoy`] gets free ports, its own temp dir, a generated bootstrap
//! (filters in the order given, an upstream whose response code the request
//! chooses, a JSON access log that prints filter state, the admin endpoint,
//! short flush intervals). It is stopped when dropped, also when a test
//! panics, and then its log is printed.

mod bootstrap;
mod client;
pub mod collector;
pub mod dynamic_module;
mod envoy;
pub mod grpc_sinks;
pub mod grpc_upstream;
pub mod h2_client;
pub mod httpd;
pub mod paths;
pub mod process;
pub mod prometheus;
pub mod tls;
mod upstream;
pub mod version;

pub use bootstrap::{
    bundle_mode, heartbeat_stat, module_of, EnvoyBuilder, HttpFilter, Wasm, HEARTBEAT_FLUSH,
};
pub use client::{RequestBuilder, Response};
pub use collector::{Collector, Span, SpanFormat};
pub use dynamic_module::dynamic_module_mode;
pub use envoy::Envoy;
pub use grpc_upstream::GrpcUpstream;
pub use h2_client::{H2Client, H2Request, H2Response};
pub use prometheus::Prometheus;
pub use upstream::{RecordedRequest, Upstream};
pub use version::{envoy_version, requires_envoy, requires_wasm, EnvoyVersion};

/// Errors of the harness: a message, with Envoy's log when there is one.
#[derive(Debug)]
pub struct HarnessError(pub String);

impl std::fmt::Display for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HarnessError {}

/// Result type of the harness.
pub type Result<T> = std::result::Result<T, HarnessError>;

pub(crate) fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(HarnessError(msg.into()))
}

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| HarnessError(format!("no free port: {e}")))
}

/// Saves a test's figures to `target/test-reports/<name>.txt`, so that
/// `scripts/test.sh` can print them after the run (cargo hides a passing
/// test's output).
pub fn report(name: &str, text: &str) {
    let dir = paths::workspace_root().join("target/test-reports");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join(format!("{name}.txt")),
        format!("{}\n", text.trim_end()),
    );
}

/// The configurations (`google.protobuf.StringValue` values) embedded
/// anywhere in a manifest or bootstrap document, in document order.
pub fn string_value_configs(doc: &serde_json::Value) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if m.get("@type").and_then(serde_json::Value::as_str)
                    == Some("type.googleapis.com/google.protobuf.StringValue")
                {
                    if let Some(s) = m.get("value").and_then(serde_json::Value::as_str) {
                        out.push(s.to_string());
                    }
                }
                m.values().for_each(|x| walk(x, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(doc, &mut out);
    out
}
