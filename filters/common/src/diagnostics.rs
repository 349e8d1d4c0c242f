//! How every job reports problems: configuration errors (one WARN line
//! each, naming the field, and one count per configuration) and runtime
//! errors (one count each, WARN lines throttled to powers of two).
//!
//! The counting rule, the same for every filter and the bundle:
//! `wasm_filter.<filter>.type.config.error_count` goes up by 1 in each VM
//! that loads a configuration with at least one problem, however many
//! problems it has; `wasm_filter.<filter>.type.runtime.error_count` goes up
//! by 1 per failure on the request path.

use crate::config::ConfigError;
use crate::host::{Host, LogLevel, MetricId, MetricKind};
use crate::throttle::LogThrottle;

/// Name of a filter's configuration-error counter.
pub fn config_errors_metric(filter: &str) -> String {
    format!("wasm_filter.{filter}.type.config.error_count")
}

/// Name of a filter's runtime-error counter.
pub fn runtime_errors_metric(filter: &str) -> String {
    format!("wasm_filter.{filter}.type.runtime.error_count")
}

/// Logs one configuration problem of `filter`:
/// `<filter>: Config Error: <path>: <reason>` (for code that reports while
/// compiling, before a [`Diagnostics`] exists).
pub fn log_config_error(host: &impl Host, filter: &str, error: &ConfigError) {
    host.log(LogLevel::Warn, &format!("{filter}: Config Error: {error}"));
}

/// One job's error counters and log throttle, defined at configure time.
#[derive(Debug, Default)]
pub struct Diagnostics {
    filter: &'static str,
    config_errors: Option<MetricId>,
    runtime_errors: Option<MetricId>,
    throttle: LogThrottle,
}

impl Diagnostics {
    /// Defines `filter`'s two counters.
    pub fn define(host: &impl Host, filter: &'static str) -> Self {
        let counter = |name: String| host.define_metric(MetricKind::Counter, &name, &[]).ok();
        Diagnostics {
            filter,
            config_errors: counter(config_errors_metric(filter)),
            runtime_errors: counter(runtime_errors_metric(filter)),
            throttle: LogThrottle::default(),
        }
    }

    /// Defines only `filter`'s configuration-error counter (a module with
    /// no request path of its own, such as the bundle's document).
    pub fn config_only(host: &impl Host, filter: &'static str) -> Self {
        Diagnostics {
            filter,
            config_errors: host
                .define_metric(MetricKind::Counter, &config_errors_metric(filter), &[])
                .ok(),
            runtime_errors: None,
            throttle: LogThrottle::default(),
        }
    }

    /// Logs one configuration problem: `<filter>: Config Error: <path>: <reason>`.
    pub fn config_error(&self, host: &impl Host, error: &ConfigError) {
        log_config_error(host, self.filter, error);
    }

    /// Logs one configuration line: `<filter>: Config Error: <text>`.
    pub fn config_line(&self, host: &impl Host, text: &str) {
        host.log(
            LogLevel::Warn,
            &format!("{}: Config Error: {text}", self.filter),
        );
    }

    /// Counts a configuration after it was checked: +1 when it had any
    /// problem (`problems > 0`), whatever their number.
    pub fn count_configuration(&self, host: &impl Host, problems: usize) {
        if problems > 0 {
            if let Some(id) = self.config_errors {
                let _ = host.increment(id, &[], 1);
            }
        }
    }

    /// Counts one runtime error and, at its 1st, 2nd, 4th, 8th… occurrence
    /// in this VM, logs `<filter>: <what> (<n> runtime errors so far in this
    /// VM, logged at powers of two)`. `what` is built only when logged.
    pub fn runtime_error(&self, host: &impl Host, what: impl FnOnce() -> String) {
        if let Some(id) = self.runtime_errors {
            let _ = host.increment(id, &[], 1);
        }
        if let Some(n) = self.throttle.hit() {
            host.log(
                LogLevel::Warn,
                &format!(
                    "{}: {} ({n} runtime error{} so far in this VM, logged at powers of two)",
                    self.filter,
                    what(),
                    if n == 1 { "" } else { "s" }
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeHost;

    #[test]
    fn a_configuration_counts_once_however_many_problems() {
        let host = FakeHost::new();
        let d = Diagnostics::define(&host, "f");
        d.config_error(&host, &ConfigError::new("a", "bad"));
        d.config_error(&host, &ConfigError::new("b", "worse"));
        d.count_configuration(&host, 2);
        d.count_configuration(&host, 0);
        assert_eq!(host.metric("wasm_filter.f.type.config.error_count"), 1);
        assert_eq!(
            host.logs_at_least(LogLevel::Warn),
            vec!["f: Config Error: a: bad", "f: Config Error: b: worse"]
        );
    }

    #[test]
    fn runtime_errors_count_each_and_log_at_powers_of_two() {
        let host = FakeHost::new();
        let d = Diagnostics::define(&host, "f");
        for _ in 0..5 {
            d.runtime_error(&host, || "x failed; skipped".into());
        }
        assert_eq!(host.metric("wasm_filter.f.type.runtime.error_count"), 5);
        let warn = host.logs_at_least(LogLevel::Warn);
        assert_eq!(warn.len(), 3);
        assert_eq!(
            warn[0],
            "f: x failed; skipped (1 runtime error so far in this VM, logged at powers of two)"
        );
        assert!(warn[2].contains("(4 runtime errors so far"));
    }
}
