//! A real Prometheus (Debian's `prometheus` package) scraping an Envoy's
//! `/stats/prometheus`, queried over its HTTP API.
//!
//! ```no_run
//! # use envoy_harness::{Envoy, Prometheus};
//! # let envoy = Envoy::builder().start().unwrap();
//! let prom = Prometheus::scrape(&envoy).unwrap();
//! let result = prom
//!     .wait_for("sum(istio_get_calls)", std::time::Duration::from_secs(20), |r| !r.is_empty())
//!     .unwrap();
//! println!("{result:?}");
//! ```

use crate::envoy::Envoy;
use crate::process::poll;
use crate::{err, free_port, HarnessError, Result};
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A Prometheus server on a free port with its own temp dir, stopped on drop.
pub struct Prometheus {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    agent: ureq::Agent,
}

/// The binary: `$PROMETHEUS_BIN`, else `prometheus` on `PATH`.
pub fn prometheus_bin() -> PathBuf {
    std::env::var_os("PROMETHEUS_BIN")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("prometheus"), PathBuf::from)
}

impl Prometheus {
    /// Starts Prometheus scraping `envoy`'s admin `/stats/prometheus` every
    /// second, and waits until it is ready.
    pub fn scrape(envoy: &Envoy) -> Result<Prometheus> {
        Self::scrape_target(&format!("127.0.0.1:{}", envoy.admin_port()))
    }

    /// Starts Prometheus scraping `host:port` at `/stats/prometheus`.
    pub fn scrape_target(target: &str) -> Result<Prometheus> {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start(target) {
                Ok(p) => return Ok(p),
                Err(e) if e.0.contains("address already in use") => last = e.0,
                Err(e) => return Err(e),
            }
        }
        err(last)
    }

    fn try_start(target: &str) -> Result<Prometheus> {
        let dir = tempfile::Builder::new()
            .prefix("prometheus-harness-")
            .tempdir()
            .map_err(|e| HarnessError(format!("temp dir: {e}")))?;
        let port = free_port()?;
        let config = dir.path().join("prometheus.yml");
        let yaml = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n- job_name: envoy\n  metrics_path: /stats/prometheus\n  \
             static_configs:\n  - targets: ['{target}']\n{}",
            if crate::dynamic_module::dynamic_module_mode() {
                crate::dynamic_module::RELABEL_YAML
            } else {
                ""
            }
        );
        std::fs::write(&config, yaml).map_err(|e| HarnessError(format!("prometheus.yml: {e}")))?;
        let log = std::fs::File::create(dir.path().join("prometheus.log"))
            .map_err(|e| HarnessError(format!("log file: {e}")))?;
        let log2 = log
            .try_clone()
            .map_err(|e| HarnessError(format!("log file: {e}")))?;
        let bin = prometheus_bin();
        let mut cmd = Command::new(&bin);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| {
            HarnessError(format!(
                "cannot run Prometheus at {}: {e} (apt-get install prometheus, or set PROMETHEUS_BIN)",
                bin.display()
            ))
        })?;
        let mut prom = Prometheus {
            child,
            dir,
            port,
            agent: crate::client::agent(),
        };
        prom.wait_ready(Duration::from_secs(30))?;
        Ok(prom)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let ready = poll(timeout, Duration::from_millis(50), || {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(Err(status));
            }
            self.get("/-/ready")
                .is_ok_and(|(code, _)| code == 200)
                .then_some(Ok(()))
        });
        match ready {
            Some(Ok(())) => Ok(()),
            Some(Err(status)) => err(format!(
                "Prometheus exited during start-up ({status}):\n{}",
                self.log()
            )),
            None => err(format!(
                "Prometheus not ready after {timeout:?}:\n{}",
                self.log()
            )),
        }
    }

    fn get(&self, path_and_query: &str) -> Result<(u16, String)> {
        let url = format!("http://127.0.0.1:{}{path_and_query}", self.port);
        let mut resp = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| HarnessError(format!("prometheus {path_and_query}: {e}")))?;
        let code = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| HarnessError(format!("prometheus {path_and_query}: {e}")))?;
        Ok((code, body))
    }

    /// Its HTTP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Prometheus's own log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// A PromQL instant query (`/api/v1/query`): the `data.result` array.
    pub fn query(&self, promql: &str) -> Result<Vec<Value>> {
        let (code, body) = self.get(&format!(
            "/api/v1/query?query={}",
            crate::process::percent_encode(promql)
        ))?;
        let v: Value = serde_json::from_str(&body)
            .map_err(|e| HarnessError(format!("query {promql}: {e}: {body}")))?;
        if code != 200 || v["status"] != "success" {
            return err(format!("query {promql}: HTTP {code}: {body}"));
        }
        Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
    }

    /// Repeats `query` until `done` accepts the result (or the time is up:
    /// then the last result is in the error).
    pub fn wait_for(
        &self,
        promql: &str,
        timeout: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Result<Vec<Value>> {
        let mut last = Vec::new();
        poll(timeout, Duration::from_millis(200), || {
            match self.query(promql) {
                Ok(result) if done(&result) => Some(Ok(result)),
                Ok(result) => {
                    last = result;
                    None
                }
                Err(e) => Some(Err(e)),
            }
        })
        .unwrap_or_else(|| {
            err(format!(
                "query {promql}: not as expected after {timeout:?}: {last:?}\n{}",
                self.log()
            ))
        })
    }

    /// The scrape targets (`/api/v1/targets`): `data.activeTargets`, each
    /// with `health` and `lastError`.
    pub fn targets(&self) -> Result<Vec<Value>> {
        let (_, body) = self.get("/api/v1/targets")?;
        let v: Value = serde_json::from_str(&body)
            .map_err(|e| HarnessError(format!("targets: {e}: {body}")))?;
        Ok(v["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        crate::process::stop(&mut self.child);
    }
}

/// Label values and the value of one series of a query result.
pub fn sample(result: &Value) -> (serde_json::Map<String, Value>, f64) {
    let labels = result["metric"].as_object().cloned().unwrap_or_default();
    let value = result["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    (labels, value)
}

/// `name{labels} value` lines of one family in Envoy's Prometheus output,
/// as (labels, value). Asserts each line is well-formed on the way.
pub fn family(text: &str, name: &str) -> Vec<(std::collections::BTreeMap<String, String>, f64)> {
    let line_re = |l: &str| -> Option<(std::collections::BTreeMap<String, String>, f64)> {
        let rest = l.strip_prefix(name)?.strip_prefix('{')?;
        let (labels, value) = rest.split_once("} ")?;
        let mut map = std::collections::BTreeMap::new();
        if !labels.is_empty() {
            for kv in labels.split("\",") {
                let (k, v) = kv.split_once("=\"")?;
                map.insert(k.to_string(), v.trim_end_matches('"').to_string());
            }
        }
        Some((map, value.parse().ok()?))
    };
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .map(|l| line_re(l).unwrap_or_else(|| panic!("malformed line {l:?}")))
        .collect()
}
