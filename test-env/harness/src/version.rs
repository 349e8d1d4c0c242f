//! The running Envoy's version (`envoy --version`), and skipping a test that
//! needs a newer one: it says so in one line and is counted as skipped in
//! `target/test-reports/skipped-by-version.txt`, never silently passed.

use std::fmt;
use std::io::Write;
use std::process::Command;
use std::sync::OnceLock;

/// An Envoy release: major, minor, patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EnvoyVersion(pub u32, pub u32, pub u32);

impl fmt::Display for EnvoyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

impl EnvoyVersion {
    /// Parses the version out of `envoy --version`'s line
    /// (`envoy  version: <sha>/1.40.0/Clean/RELEASE/BoringSSL`).
    pub fn parse_version_output(text: &str) -> Option<EnvoyVersion> {
        text.split(['/', ' ', '\n']).find_map(|part| {
            let mut it = part.split('.');
            let v = (it.next()?, it.next()?, it.next()?);
            if it.next().is_some() {
                return None;
            }
            Some(EnvoyVersion(
                v.0.parse().ok()?,
                v.1.parse().ok()?,
                v.2.parse().ok()?,
            ))
        })
    }
}

/// The version of the Envoy the harness runs (`paths::envoy_bin()`), asked
/// once per test binary; `None` when it cannot be run or parsed.
pub fn envoy_version() -> Option<EnvoyVersion> {
    static VERSION: OnceLock<Option<EnvoyVersion>> = OnceLock::new();
    *VERSION.get_or_init(|| {
        let out = Command::new(crate::paths::envoy_bin())
            .arg("--version")
            .output()
            .ok()?;
        EnvoyVersion::parse_version_output(&String::from_utf8_lossy(&out.stdout))
    })
}

/// True when the running Envoy is at least `needed`. Otherwise prints one
/// line naming the test, the version it needs (and why) and the version it
/// got, records it in `target/test-reports/skipped-by-version.txt`, and
/// returns false: the test then returns early.
///
/// ```no_run
/// if !envoy_harness::requires_envoy("value_tags", envoy_harness::EnvoyVersion(1, 37, 0), "`value` custom tags") {
///     return;
/// }
/// ```
pub fn requires_envoy(test: &str, needed: EnvoyVersion, why: &str) -> bool {
    let got = envoy_version();
    if got.is_some_and(|v| v >= needed) {
        return true;
    }
    let got = got.map_or_else(|| "an unknown version".to_string(), |v| v.to_string());
    record_skip(&format!(
        "SKIPPED {test}{}: needs Envoy {needed}+ ({why}), running {got}",
        mode()
    ));
    false
}

/// The runtime mode a skip line names: ` [bundle]`, ` [dynamic module]`, both
/// or nothing.
fn mode() -> String {
    let mut mode = String::new();
    if crate::bundle_mode() {
        mode.push_str(" [bundle]");
    }
    if crate::dynamic_module::dynamic_module_mode() {
        mode.push_str(" [dynamic module]");
    }
    mode
}

/// True unless the filters run as the Envoy dynamic module
/// (`DYNAMIC_MODULE=1`) and the test checks something only the Wasm runtime
/// has (a VM, its traps, its stats, a test-only Wasm module). Then, like
/// [`requires_envoy`], it prints one line naming the test and why, records
/// it in `target/test-reports/skipped-by-version.txt`, and returns false:
/// the test then returns early.
pub fn requires_wasm(test: &str, why: &str) -> bool {
    if !crate::dynamic_module::dynamic_module_mode() {
        return true;
    }
    record_skip(&format!(
        "SKIPPED {test}{}: needs the Wasm runtime ({why})",
        mode()
    ));
    false
}

/// Prints a skip line and appends it to the skip report.
fn record_skip(line: &str) {
    // Straight to stderr: the test runner's capture hides a passing test's
    // println!, and this line must show.
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
    let dir = crate::paths::workspace_root().join("target/test-reports");
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("skipped-by-version.txt"))
    {
        // One short write per line: O_APPEND keeps parallel tests' lines whole.
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_envoy_version_line() {
        let line = "envoy  version: 9e5580933739775e8bce696a57a2e1bc99368f23/1.40.0/Clean/RELEASE/BoringSSL\n";
        assert_eq!(
            EnvoyVersion::parse_version_output(line),
            Some(EnvoyVersion(1, 40, 0))
        );
        assert_eq!(
            EnvoyVersion::parse_version_output(
                "envoy  version: abc/1.36.4/Modified/RELEASE/BoringSSL"
            ),
            Some(EnvoyVersion(1, 36, 4))
        );
        assert_eq!(EnvoyVersion::parse_version_output("nothing"), None);
    }

    #[test]
    fn orders_versions() {
        assert!(EnvoyVersion(1, 36, 4) < EnvoyVersion(1, 37, 0));
        assert!(EnvoyVersion(1, 40, 0) >= EnvoyVersion(1, 40, 0));
    }
}
