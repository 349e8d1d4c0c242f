//! Small helpers shared by the harness's processes and HTTP calls: stopping
//! a child, polling until something holds, percent-encoding.

use std::process::Child;
use std::time::{Duration, Instant};

/// Stops a child process: SIGTERM, then SIGKILL after 5 s; reaps it.
pub fn stop(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        // SAFETY: plain kill(2) on our child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let exited = poll(Duration::from_secs(5), Duration::from_millis(20), || {
            matches!(child.try_wait(), Ok(Some(_))).then_some(())
        });
        if exited.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Calls `attempt` every `interval` until it gives `Some` (returned), or until
/// `timeout` has passed (`None`); it is called at least once. To give up
/// early (a process exited), make `T` a `Result` and return `Some(Err(…))`.
pub fn poll<T>(
    timeout: Duration,
    interval: Duration,
    mut attempt: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = attempt() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(interval);
    }
}

/// The JSON values of a JSON-lines file (lines that do not parse, and a
/// missing file, give nothing).
pub fn read_json_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Percent-encodes a query-string value.
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
