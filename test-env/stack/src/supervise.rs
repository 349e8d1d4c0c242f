//! Supervision of the local stack's processes (`scripts/stack.sh`): each
//! service is started detached (`setsid`), its PID and binary recorded in the
//! state directory, recognised again later by that binary in
//! `/proc/<pid>/cmdline`, polled until ready, and stopped by its PID.

use envoy_harness::process::poll;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The state directory of one stack: PID files, logs, generated configs.
pub struct Supervisor {
    state: PathBuf,
}

impl Supervisor {
    /// Supervises the processes recorded under `state`.
    pub fn new(state: impl Into<PathBuf>) -> Supervisor {
        Supervisor {
            state: state.into(),
        }
    }

    /// The state directory.
    pub fn state(&self) -> &Path {
        &self.state
    }

    fn file(&self, name: &str, ext: &str) -> PathBuf {
        self.state.join(format!("{name}.{ext}"))
    }

    /// The PID of service `name` if it recorded one and that process is
    /// still alive and still runs the binary it was started with.
    pub fn live_pid(&self, name: &str) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.file(name, "pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmd =
            std::fs::read_to_string(self.file(name, "cmd")).unwrap_or_else(|_| name.to_string());
        let mut cmdline = Vec::new();
        std::fs::File::open(format!("/proc/{pid}/cmdline"))
            .and_then(|mut f| f.read_to_end(&mut cmdline))
            .ok()?;
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        (running(pid) && cmdline.contains(cmd.as_str())).then_some(pid)
    }

    /// Starts `program args…` detached as service `name`, its output in
    /// `<state>/<name>.log`; records its PID and binary.
    pub fn start(&self, name: &str, program: &Path, args: &[String]) -> Result<u32, String> {
        self.start_with_env(name, program, args, &[])
    }

    /// [`Supervisor::start`] with `env` added to the inherited environment.
    pub fn start_with_env(
        &self,
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
    ) -> Result<u32, String> {
        let log = std::fs::File::create(self.file(name, "log"))
            .map_err(|e| format!("{name}: log file: {e}"))?;
        let log2 = log
            .try_clone()
            .map_err(|e| format!("{name}: log file: {e}"))?;
        std::fs::write(self.file(name, "cmd"), program.to_string_lossy().as_bytes())
            .map_err(|e| format!("{name}: {e}"))?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
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
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {name} ({}): {e}", program.display()))?;
        let pid = child.id();
        // Not waited for: the service outlives this program (init reaps it).
        drop(child);
        std::fs::write(self.file(name, "pid"), format!("{pid}\n"))
            .map_err(|e| format!("{name}: {e}"))?;
        Ok(pid)
    }

    /// Stops the recorded services in `names` (SIGTERM, SIGKILL after 5 s),
    /// saying which on stderr, and forgets their PIDs.
    pub fn stop_all(&self, names: &[&str]) {
        let mut any = false;
        for name in names {
            if let Some(pid) = self.live_pid(name) {
                stop_pid(pid);
                eprintln!("stopped {name} (pid {pid})");
                any = true;
            }
            let _ = std::fs::remove_file(self.file(name, "pid"));
        }
        if !any {
            eprintln!(
                "no stack processes running (state: {})",
                self.state.display()
            );
        }
    }

    /// Polls `ready` every 100 ms for `secs` seconds; fails early (with the
    /// end of its log) when service `name` exits, or after the time.
    pub fn wait_until(
        &self,
        name: &str,
        what: &str,
        secs: u64,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), String> {
        let outcome = poll(
            Duration::from_secs(secs),
            Duration::from_millis(100),
            || {
                if ready() {
                    Some(Ok(()))
                } else if self.live_pid(name).is_none() {
                    Some(Err(format!(
                        "{name} exited during start-up; its log ({}):",
                        self.file(name, "log").display()
                    )))
                } else {
                    None
                }
            },
        )
        .unwrap_or_else(|| Err(format!("{name} not {what} after {secs}s; its log:")));
        outcome.map_err(|msg| format!("{msg}\n{}", self.log_tail(name, 40)))
    }

    /// The last `n` lines of service `name`'s log.
    pub fn log_tail(&self, name: &str, n: usize) -> String {
        let text = std::fs::read_to_string(self.file(name, "log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let skip = lines.len().saturating_sub(n);
        lines.into_iter().skip(skip).collect::<Vec<_>>().join("\n")
    }
}

/// Whether a PID is a live process (an exited one not yet reaped is a
/// zombie: done).
pub fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // The state follows the command name in parentheses.
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|st| st != "Z"))
        })
        .unwrap_or(false)
}

/// SIGTERM, then SIGKILL if it still runs after 5 s.
fn stop_pid(pid: u32) {
    let Ok(raw) = i32::try_from(pid) else { return };
    // SAFETY: plain kill(2) on a PID this stack recorded and recognised.
    unsafe { libc::kill(raw, libc::SIGTERM) };
    let gone = poll(Duration::from_secs(5), Duration::from_millis(100), || {
        (!running(pid)).then_some(())
    });
    if gone.is_none() {
        // SAFETY: as above.
        unsafe { libc::kill(raw, libc::SIGKILL) };
    }
}

/// Whether a plain-TCP listener on 127.0.0.1:`port` accepts connections.
pub fn tcp_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(1),
    )
    .is_ok()
}

/// Whether `GET url` answers 2xx.
pub fn http_ok(agent: &ureq::Agent, url: &str) -> bool {
    agent.get(url).call().is_ok_and(|r| r.status().is_success())
}
