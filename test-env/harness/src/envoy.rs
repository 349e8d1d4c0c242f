//! A running Envoy process.

use crate::bootstrap::EnvoyBuilder;
use crate::client::{agent, RequestBuilder, Response};
use crate::upstream::Upstream;
use crate::{err, free_port, HarnessError, Result};
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A real Envoy with its upstream, stopped on drop.
pub struct Envoy {
    child: Child,
    dir: Option<tempfile::TempDir>,
    admin_port: u16,
    listener_port: u16,
    upstream: Upstream,
    agent: ureq::Agent,
    started: Instant,
    ready_after: Duration,
}

impl Envoy {
    /// A builder with one worker, no filters and the upstream behind it.
    pub fn builder() -> EnvoyBuilder {
        EnvoyBuilder::default()
    }

    pub(crate) fn start(builder: EnvoyBuilder) -> Result<Envoy> {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start(&builder) {
                Ok(e) => return Ok(e),
                // A port picked as free may have been taken meanwhile.
                Err(e) if e.0.contains("ddress already in use") => last = e.0,
                Err(e) => return Err(e),
            }
        }
        err(last)
    }

    fn try_start(builder: &EnvoyBuilder) -> Result<Envoy> {
        let upstream = Upstream::start()?;
        let dir = tempfile::Builder::new()
            .prefix("envoy-harness-")
            .tempdir()
            .map_err(|e| HarnessError(format!("temp dir: {e}")))?;
        let (admin_port, listener_port) = (free_port()?, free_port()?);
        let access_log = dir.path().join("access.log");
        let bootstrap = builder.bootstrap(admin_port, listener_port, upstream.port(), &access_log);
        for f in &builder.filters {
            if let crate::HttpFilter::Wasm(w) = f {
                if w.is_dynamic() {
                    let path = crate::bootstrap::ecds_path(&access_log, w.plugin_name());
                    write(&path, &w.ecds_document(1).to_string())?;
                }
            }
        }
        let config = dir.path().join("envoy.json");
        write(
            &config,
            &serde_json::to_string_pretty(&bootstrap).unwrap_or_default(),
        )?;
        let log = std::fs::File::create(dir.path().join("envoy.log"))
            .map_err(|e| HarnessError(format!("log file: {e}")))?;
        let log2 = log
            .try_clone()
            .map_err(|e| HarnessError(format!("log file: {e}")))?;
        let bin = crate::paths::envoy_bin();
        let mut cmd = match builder.run_under.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        cmd.arg("-c")
            .arg(&config)
            .args(["--concurrency", &builder.concurrency.to_string()])
            .arg("--disable-hot-restart")
            .args(["--log-level", "info"])
            .args(["--component-log-level", &builder.component_log_level])
            .args(["--file-flush-interval-msec", "50"])
            .stdin(Stdio::null())
            .envs(crate::dynamic_module::process_env(&builder.filters))
            .stdout(log)
            .stderr(log2);
        let cpus = builder.cpu_affinity.clone();
        // Detach from the caller's session so a signal to the test's process
        // group does not reach Envoy before we stop it ourselves; pin it.
        // SAFETY: setsid and sched_setaffinity are async-signal-safe; the
        // CPU list is allocated before fork.
        unsafe {
            cmd.pre_exec(move || {
                libc::setsid();
                if !cpus.is_empty() {
                    // SAFETY: a zeroed cpu_set_t is a valid empty set.
                    let mut set: libc::cpu_set_t = std::mem::zeroed();
                    for &c in &cpus {
                        libc::CPU_SET(c, &mut set);
                    }
                    if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let started = Instant::now();
        let child = cmd.spawn().map_err(|e| {
            HarnessError(format!(
                "cannot run Envoy at {}: {e} (scripts/test.sh or scripts/run.sh installs it (ensure_envoy in scripts/lib.sh); or set ENVOY_BIN or ENVOY_VERSION)",
                bin.display()
            ))
        })?;
        let mut envoy = Envoy {
            child,
            dir: Some(dir),
            admin_port,
            listener_port,
            upstream,
            agent: agent(),
            started,
            ready_after: Duration::ZERO,
        };
        envoy.wait_ready(builder.ready_timeout)?;
        envoy.ready_after = started.elapsed();
        Ok(envoy)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return err(format!(
                    "Envoy exited during start-up ({status}):\n{}",
                    self.log()
                ));
            }
            if let Ok(body) = self.admin_get("/ready") {
                if body.trim() == "LIVE" {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return err(format!(
                    "Envoy not ready after {timeout:?}:\n{}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The work directory (bootstrap, logs).
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new("."), |d| d.path())
    }

    /// Envoy's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Time from spawning Envoy to the admin endpoint answering LIVE.
    pub fn ready_after(&self) -> Duration {
        self.ready_after
    }

    /// When Envoy was spawned.
    pub fn started_at(&self) -> Instant {
        self.started
    }

    /// The listener's port.
    pub fn port(&self) -> u16 {
        self.listener_port
    }

    /// The admin port.
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// The upstream behind Envoy.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// A request to the listener; send it with [`RequestBuilder::send`].
    pub fn request(&self, method: &str, path: &str) -> RequestBuilder {
        RequestBuilder::new(
            self.agent.clone(),
            method,
            format!("http://127.0.0.1:{}{path}", self.listener_port),
        )
    }

    /// `GET path`, sent.
    pub fn get(&self, path: &str) -> Result<Response> {
        self.request("GET", path).send()
    }

    /// Sends raw bytes (one HTTP/1.1 request; add `connection: close`) to the
    /// listener and returns the response's status code (0 if none came) and
    /// its text. For what a well-behaved client would never send: invalid
    /// UTF-8, odd methods, huge header blocks.
    pub fn raw_request(&self, request: &[u8]) -> Result<(u16, String)> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.listener_port))
            .map_err(|e| HarnessError(format!("connect: {e}")))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| HarnessError(e.to_string()))?;
        s.write_all(request)
            .map_err(|e| HarnessError(format!("write: {e}")))?;
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text
            .strip_prefix("HTTP/1.1 ")
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        Ok((status, text))
    }

    /// GET on the admin endpoint, body as text.
    pub fn admin_get(&self, path: &str) -> Result<String> {
        let url = format!("http://127.0.0.1:{}{path}", self.admin_port);
        let mut resp = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| HarnessError(format!("admin {path}: {e}")))?;
        resp.body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| HarnessError(format!("admin {path}: {e}")))
    }

    /// POST on the admin endpoint (e.g. `/reset_counters`).
    pub fn admin_post(&self, path: &str) -> Result<String> {
        let url = format!("http://127.0.0.1:{}{path}", self.admin_port);
        let mut resp = self
            .agent
            .post(&url)
            .send_empty()
            .map_err(|e| HarnessError(format!("admin {path}: {e}")))?;
        resp.body_mut()
            .read_to_string()
            .map_err(|e| HarnessError(format!("admin {path}: {e}")))
    }

    /// Value of one counter or gauge by full name (`wasmcustom.x`), `None` if
    /// Envoy has no such stat.
    pub fn stat(&self, name: &str) -> Result<Option<u64>> {
        let filter = crate::process::percent_encode(&format!("^{}$", regex_escape(name)));
        let body = self.admin_get(&format!("/stats?format=json&filter={filter}"))?;
        let v: Value = serde_json::from_str(&body)
            .map_err(|e| HarnessError(format!("/stats: {e}: {body}")))?;
        Ok(v["stats"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["name"] == name)
            .and_then(|s| s["value"].as_u64()))
    }

    /// Polls [`Envoy::stat`] (a missing stat reads 0) until `want` holds;
    /// the last value read is in the error. For counters a module adds on
    /// its tick, such as the heartbeat ([`crate::HEARTBEAT_FLUSH`]).
    pub fn wait_for_stat(
        &self,
        name: &str,
        timeout: Duration,
        want: impl Fn(u64) -> bool,
    ) -> Result<u64> {
        let mut last = Ok(0);
        let found = crate::process::poll(timeout, Duration::from_millis(50), || {
            last = self.stat(name).map(Option::unwrap_or_default);
            match &last {
                Ok(v) if want(*v) => Some(*v),
                _ => None,
            }
        });
        match (found, last) {
            (Some(v), _) => Ok(v),
            (None, Ok(v)) => err(format!("{name} is {v} after {timeout:?}")),
            (None, Err(e)) => Err(e),
        }
    }

    /// The `/stats/prometheus` page.
    /// With `DYNAMIC_MODULE=1`, metric names as a Prometheus scrape with the
    /// README's relabel rule gives them
    /// ([`crate::dynamic_module::relabel`]); [`Envoy::prometheus_raw`] is
    /// Envoy's own text.
    pub fn prometheus(&self) -> Result<String> {
        self.prometheus_raw().map(crate::dynamic_module::relabel)
    }

    /// The `/stats/prometheus` page exactly as Envoy serves it.
    pub fn prometheus_raw(&self) -> Result<String> {
        self.admin_get("/stats/prometheus")
    }

    /// Envoy's own log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("envoy.log")).unwrap_or_default()
    }

    /// Log lines written by Wasm filters (`wasm log …`), message part only.
    pub fn wasm_log_lines(&self) -> Vec<String> {
        wasm_log_lines(&self.log())
    }

    /// Waits until Envoy's log has a line containing `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.log().lines().find(|l| l.contains(needle)) {
                return Ok(line.to_string());
            }
            if Instant::now() > deadline {
                return err(format!("no log line with {needle:?} after {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Every access-log entry so far.
    pub fn access_log(&self) -> Vec<Value> {
        crate::process::read_json_lines(&self.dir().join("access.log"))
    }

    /// Waits for the access-log entry of this response (by `x-test-id`).
    pub fn access_log_entry(&self, resp: &Response) -> Result<Value> {
        self.access_log_entry_for(&resp.test_id)
    }

    /// Waits for the access-log entry with this `test_id`.
    pub fn access_log_entry_for(&self, test_id: &str) -> Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(e) = self
                .access_log()
                .into_iter()
                .find(|e| e["test_id"] == test_id)
            {
                return Ok(e);
            }
            if Instant::now() > deadline {
                return err(format!("no access-log entry for {test_id}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the access log has at least `n` entries.
    pub fn wait_access_log_len(&self, n: usize, timeout: Duration) -> Result<Vec<Value>> {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.access_log();
            if log.len() >= n {
                return Ok(log);
            }
            if Instant::now() > deadline {
                return err(format!("access log has {} of {n} entries", log.len()));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Replaces the configuration of a filter started with [`Wasm::dynamic`]
    /// (same plugin name) while Envoy runs: writes the new ECDS file
    /// atomically and waits until Envoy has applied it (`config_reload`) or
    /// rejected it (`config_fail`). Returns true when applied.
    pub fn update_wasm(&self, wasm: &crate::Wasm) -> Result<bool> {
        let name = wasm.plugin_name();
        let path = crate::bootstrap::ecds_path(&self.dir().join("access.log"), name);
        let stat = |what: &str| -> Result<u64> {
            Ok(self
                .stat(&format!(
                    "extension_config_discovery.http_filter.{name}.{what}"
                ))?
                .unwrap_or(0))
        };
        let (reloads, fails) = (stat("config_reload")?, stat("config_fail")?);
        let version = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(2, |d| d.as_nanos() as u64);
        let tmp = path.with_extension("tmp");
        write(&tmp, &wasm.ecds_document(version).to_string())?;
        std::fs::rename(&tmp, &path).map_err(|e| HarnessError(format!("rename: {e}")))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if stat("config_reload")? > reloads {
                return Ok(true);
            }
            if stat("config_fail")? > fails {
                return Ok(false);
            }
            if Instant::now() > deadline {
                return err(format!(
                    "ECDS update of {name} not picked up:\n{}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops Envoy (SIGTERM, then SIGKILL after 5 s) and returns its log.
    pub fn stop(mut self) -> String {
        self.terminate();
        self.log()
    }

    fn terminate(&mut self) {
        crate::process::stop(&mut self.child);
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        self.terminate();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(150).collect();
            eprintln!("---- Envoy log (last {} lines) ----", tail.len());
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
            if let Some(dir) = self.dir.take() {
                let kept: PathBuf = dir.keep();
                eprintln!("---- bootstrap, logs kept in {} ----", kept.display());
            }
        }
    }
}

/// The message part of Wasm log lines in an Envoy log
/// (`… [wasm] wasm log <plugin> <root_id>: <message>`).
pub fn wasm_log_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| {
            if let Some((_, rest)) = l.split_once("wasm log ") {
                return Some(rest.split_once(": ").map_or(rest, |(_, m)| m).to_string());
            }
            // The same filters' lines from the dynamic module (DYNAMIC_MODULE=1).
            // `… [dynamic_modules] [source/…/abi_impl.cc:54] <message>`
            l.split_once("[dynamic_modules] [")
                .and_then(|(_, rest)| rest.split_once("] "))
                .map(|(_, m)| m.to_string())
        })
        .collect()
}

fn write(path: &Path, body: &str) -> Result<()> {
    std::fs::write(path, body).map_err(|e| HarnessError(format!("{}: {e}", path.display())))
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
