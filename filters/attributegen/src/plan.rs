//! Compiling a configuration into generators, and running them per request.

use crate::config::{Phase, PluginConfig};
use crate::FILTER_NAME;
use filter_common::cel::{self, Expression};
use filter_common::config::{parse_json, ConfigError};
use filter_common::host::{Host, LogLevel, MetricId, MetricKind};
use filter_common::throttle::LogThrottle;

/// Counter of rejected configurations (Istio's name; +1 per rejected
/// configuration per VM).
pub const CONFIG_ERRORS: &str = "wasm_filter.attributegen.type.config.error_count";
/// Counter of conditions that failed to evaluate or did not return a bool.
pub const RUNTIME_ERRORS: &str = "wasm_filter.attributegen.type.runtime.error_count";

/// One arm of a generator's `match` list.
struct Arm {
    /// `None` for an empty condition: always true.
    condition: Option<Expression>,
    value: String,
}

/// One entry of `attributes`, compiled.
struct Generator {
    phase: Phase,
    output: String,
    arms: Vec<Arm>,
}

/// A compiled configuration: immutable, shared by every stream of a VM.
#[derive(Default)]
pub struct Plan {
    debug: bool,
    generators: Vec<Generator>,
    runtime_errors: Option<MetricId>,
    throttle: LogThrottle,
}

/// Parses and compiles a configuration, reporting problems through the host
/// as Istio's attributegen does: a bad configuration never fails the plugin;
/// it is logged (one line per error, naming the field), counted once in
/// [`CONFIG_ERRORS`], and yields a plan that produces no attributes.
pub fn configure(raw: Option<&[u8]>, host: &impl Host) -> Plan {
    let config_errors = host.define_metric(MetricKind::Counter, CONFIG_ERRORS).ok();
    let runtime_errors = host.define_metric(MetricKind::Counter, RUNTIME_ERRORS).ok();
    let compiled = parse_json::<PluginConfig>(raw)
        .map_err(|e| {
            report(host, &e);
            vec![e]
        })
        .and_then(|config| compile(&config, host));
    match compiled {
        Ok(mut plan) => {
            plan.runtime_errors = runtime_errors;
            if plan.debug {
                for g in &plan.generators {
                    host.log(
                        LogLevel::Debug,
                        &format!(
                            "{FILTER_NAME}: added generator for \"{}\" ({:?}, {} matches)",
                            g.output,
                            g.phase,
                            g.arms.len()
                        ),
                    );
                }
            }
            plan
        }
        Err(errors) => {
            host.log(
                LogLevel::Warn,
                &format!(
                    "{FILTER_NAME}: Config Error: configuration rejected ({} error{}); \
                     no attributes are produced until a valid configuration arrives",
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" }
                ),
            );
            if let Some(id) = config_errors {
                let _ = host.increment(id, 1);
            }
            Plan {
                runtime_errors,
                ..Plan::default()
            }
        }
    }
}

/// Logs one configuration error as one line.
fn report(host: &impl Host, e: &ConfigError) {
    host.log(LogLevel::Warn, &format!("{FILTER_NAME}: Config Error: {e}"));
}

/// Compiles every condition with Envoy's CEL; collects every error (not just
/// the first) so a validation run reports them all. Each error is logged as
/// it is found, so it directly follows Envoy's own CEL parser message.
pub fn compile(config: &PluginConfig, host: &impl Host) -> Result<Plan, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut fail = |e: ConfigError| {
        report(host, &e);
        errors.push(e);
    };
    let mut generators = Vec::with_capacity(config.attributes.len());
    for (i, attr) in config.attributes.iter().enumerate() {
        if attr.output_attribute.is_empty() {
            fail(ConfigError::new(
                format!("attributes[{i}].output_attribute"),
                "must not be empty",
            ));
        } else if attr.output_attribute.contains('\0') {
            fail(ConfigError::new(
                format!("attributes[{i}].output_attribute"),
                "must not contain a NUL character",
            ));
        }
        let mut arms = Vec::with_capacity(attr.matches.len());
        for (j, m) in attr.matches.iter().enumerate() {
            let condition = if m.condition.trim().is_empty() {
                None
            } else {
                match host.compile(&m.condition) {
                    Ok(expr) => Some(expr),
                    Err(e) => {
                        fail(ConfigError::new(
                            format!("attributes[{i}].match[{j}].condition"),
                            format!(
                                "CEL expression {:?} of attribute \"{}\" does not compile ({e}); \
                                 the CEL parser's message, with the position, is Envoy's log \
                                 line just before this one",
                                m.condition, attr.output_attribute
                            ),
                        ));
                        continue;
                    }
                }
            };
            arms.push(Arm {
                condition,
                value: m.value.clone(),
            });
        }
        generators.push(Generator {
            phase: attr.phase,
            output: attr.output_attribute.clone(),
            arms,
        });
    }
    if errors.is_empty() {
        Ok(Plan {
            debug: config.debug,
            generators,
            ..Plan::default()
        })
    } else {
        Err(errors)
    }
}

impl Plan {
    /// Whether any generator runs in `phase` (lets the adapter skip work).
    pub fn runs_in(&self, phase: Phase) -> bool {
        self.generators.iter().any(|g| g.phase == phase)
    }

    /// Number of generators.
    pub fn len(&self) -> usize {
        self.generators.len()
    }

    /// True when the plan produces nothing.
    pub fn is_empty(&self) -> bool {
        self.generators.is_empty()
    }

    /// Runs the generators of `phase` in order, writing matched values.
    /// Returns the number of attributes written.
    pub fn run(&self, phase: Phase, host: &impl Host) -> usize {
        let mut written = 0;
        for g in self.generators.iter().filter(|g| g.phase == phase) {
            for (j, arm) in g.arms.iter().enumerate() {
                let hit = match &arm.condition {
                    None => true,
                    Some(expr) => {
                        match host.evaluate(expr).map(|r| cel::as_bool(&r)) {
                            Ok(Ok(b)) => b,
                            // Istio: an error or a non-bool abandons this
                            // generator; later matches are not tried.
                            Ok(Err(e)) => {
                                self.runtime_error(host, g, j, &e.to_string());
                                break;
                            }
                            Err(e) => {
                                self.runtime_error(host, g, j, &format!("evaluation failed ({e})"));
                                break;
                            }
                        }
                    }
                };
                if hit {
                    match host.set_attribute(&g.output, arm.value.as_bytes()) {
                        Ok(()) => {
                            written += 1;
                            if self.debug {
                                host.log(
                                    LogLevel::Debug,
                                    &format!(
                                        "{FILTER_NAME}: set wasm.{} = {:?}",
                                        g.output, arm.value
                                    ),
                                );
                            }
                        }
                        Err(e) => self.runtime_error(
                            host,
                            g,
                            j,
                            &format!("writing the attribute failed ({e})"),
                        ),
                    }
                    break;
                }
            }
        }
        written
    }

    fn runtime_error(&self, host: &impl Host, g: &Generator, arm: usize, why: &str) {
        if let Some(id) = self.runtime_errors {
            let _ = host.increment(id, 1);
        }
        if let Some(n) = self.throttle.hit() {
            let source = g
                .arms
                .get(arm)
                .and_then(|a| a.condition.as_ref())
                .map_or("", |e| e.source());
            host.log(
                LogLevel::Warn,
                &format!(
                    "{FILTER_NAME}: attribute \"{}\" match[{arm}] condition {source:?}: {why}; \
                     attribute skipped ({n} runtime error{} so far in this VM, logged at powers of two)",
                    g.output,
                    if n == 1 { "" } else { "s" }
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use filter_common::fake::FakeHost;
    use filter_common::host::HostError;

    const OPS: &str = r#"{"attributes":[{"output_attribute":"istio_operationId","match":[
        {"value":"ListBooks","condition":"list"},
        {"value":"GetBook","condition":"get"},
        {"value":"Other","condition":""}]}]}"#;

    fn plan(host: &FakeHost, raw: &str) -> Plan {
        configure(Some(raw.as_bytes()), host)
    }

    #[test]
    fn first_true_match_wins() {
        let host = FakeHost::new();
        host.eval_bool("list", false).eval_bool("get", true);
        let p = plan(&host, OPS);
        assert_eq!(p.run(Phase::AfterResponse, &host), 1);
        assert_eq!(host.attribute("istio_operationId").unwrap(), b"GetBook");
    }

    #[test]
    fn empty_condition_is_true() {
        let host = FakeHost::new();
        host.eval_bool("list", false).eval_bool("get", false);
        let p = plan(&host, OPS);
        p.run(Phase::AfterResponse, &host);
        assert_eq!(host.attribute("istio_operationId").unwrap(), b"Other");
    }

    #[test]
    fn error_abandons_the_generator_and_counts() {
        let host = FakeHost::new();
        host.eval("list", Err(HostError::InternalFailure))
            .eval_bool("get", true);
        let p = plan(&host, OPS);
        assert_eq!(p.run(Phase::AfterResponse, &host), 0);
        assert_eq!(host.attribute("istio_operationId"), None);
        assert_eq!(host.metric(RUNTIME_ERRORS), 1);
        let warn = host.logs_at_least(LogLevel::Warn);
        assert!(warn[0].contains("match[0] condition \"list\""), "{warn:?}");
    }

    #[test]
    fn non_bool_result_abandons_the_generator() {
        let host = FakeHost::new();
        host.eval("list", Ok(b"/status/207".to_vec()))
            .eval_bool("get", true);
        let p = plan(&host, OPS);
        p.run(Phase::AfterResponse, &host);
        assert_eq!(host.attribute("istio_operationId"), None);
        assert_eq!(host.metric(RUNTIME_ERRORS), 1);
    }

    #[test]
    fn runtime_error_logs_are_throttled() {
        let host = FakeHost::new();
        let p = plan(&host, OPS); // "list" has no result: InternalFailure
        for _ in 0..100 {
            p.run(Phase::AfterResponse, &host);
        }
        assert_eq!(host.metric(RUNTIME_ERRORS), 100);
        assert_eq!(host.logs_at_least(LogLevel::Warn).len(), 7); // 1,2,4,..,64
    }

    #[test]
    fn no_match_sets_nothing() {
        let host = FakeHost::new();
        host.eval_bool("a", false);
        let p = plan(
            &host,
            r#"{"attributes":[{"output_attribute":"x","match":[{"value":"A","condition":"a"}]}]}"#,
        );
        assert_eq!(p.run(Phase::AfterResponse, &host), 0);
        assert!(host.attribute_writes().is_empty());
    }

    #[test]
    fn last_writer_wins_and_phases_are_separate() {
        let host = FakeHost::new();
        let p = plan(
            &host,
            r#"{"attributes":[
                {"output_attribute":"x","match":[{"value":"first"}]},
                {"output_attribute":"x","match":[{"value":"second"}]},
                {"output_attribute":"y","phase":"ON_REQUEST","match":[{"value":"early"}]}]}"#,
        );
        assert!(p.runs_in(Phase::OnRequest) && p.runs_in(Phase::AfterResponse));
        assert_eq!(p.run(Phase::OnRequest, &host), 1);
        assert_eq!(host.attribute("y").unwrap(), b"early");
        assert_eq!(host.attribute("x"), None);
        assert_eq!(p.run(Phase::AfterResponse, &host), 2);
        assert_eq!(host.attribute("x").unwrap(), b"second");
    }

    #[test]
    fn bad_cel_rejects_the_whole_configuration_naming_every_error() {
        let host = FakeHost::new();
        host.reject("bad one").reject("bad two");
        let p = plan(
            &host,
            r#"{"attributes":[
                {"output_attribute":"ok","match":[{"value":"v","condition":"fine"}]},
                {"output_attribute":"op","match":[{"value":"a","condition":"bad one"},
                                                  {"value":"b","condition":"bad two"}]}]}"#,
        );
        assert!(p.is_empty());
        assert_eq!(host.metric(CONFIG_ERRORS), 1);
        let warn = host.logs_at_least(LogLevel::Warn);
        assert_eq!(warn.len(), 3, "{warn:?}");
        assert!(
            warn[0].contains("attributes[1].match[0].condition"),
            "{warn:?}"
        );
        assert!(warn[0].contains("\"bad one\"") && warn[0].contains("\"op\""));
        assert!(warn[1].contains("attributes[1].match[1].condition"));
        assert!(warn[2].contains("configuration rejected (2 errors)"));
    }

    #[test]
    fn unparseable_configuration_is_counted_not_fatal() {
        let host = FakeHost::new();
        let p = plan(&host, "attributes = [ output_attribute ];");
        assert!(p.is_empty());
        assert_eq!(host.metric(CONFIG_ERRORS), 1);
        let warn = host.logs_at_least(LogLevel::Warn);
        assert!(warn[0].contains("$: invalid JSON"), "{warn:?}");
    }

    #[test]
    fn empty_output_attribute_is_rejected() {
        let host = FakeHost::new();
        let p = plan(&host, r#"{"attributes":[{"match":[{"value":"v"}]}]}"#);
        assert!(p.is_empty());
        let warn = host.logs_at_least(LogLevel::Warn);
        assert!(warn[0].contains("attributes[0].output_attribute: must not be empty"));
    }

    #[test]
    fn no_configuration_means_no_attributes_and_no_error() {
        let host = FakeHost::new();
        let p = configure(None, &host);
        assert!(p.is_empty());
        assert_eq!(host.metric(CONFIG_ERRORS), 0);
        assert!(host.logs_at_least(LogLevel::Warn).is_empty());
    }
}
