//! Compiling a configuration into generators, and running them per request.

use crate::config::{Phase, PluginConfig};
use crate::templates::{Entry, Template, TemplateGroup};
use crate::FILTER_NAME;
use filter_common::cel::{self, Expression};
use filter_common::config::{ConfigError, ConfigSource};
use filter_common::diagnostics::{log_config_error, Diagnostics};
use filter_common::host::{Host, LogLevel};
use filter_common::shared_reads;

/// Counter of rejected configurations (Istio's name; +1 per rejected
/// configuration per VM).
pub const CONFIG_ERRORS: &str = "wasm_filter.attributegen.type.config.error_count";
/// Counter of conditions that failed to evaluate or did not return a bool.
pub const RUNTIME_ERRORS: &str = "wasm_filter.attributegen.type.runtime.error_count";

/// One step of a generator's `match` list.
enum Step {
    /// A CEL entry; `condition` is `None` for an empty one (always true).
    Cel {
        condition: Option<Expression>,
        value: String,
    },
    /// Consecutive template entries, answered by the most specific one.
    Templates {
        group: TemplateGroup,
        values: Vec<String>,
    },
}

/// One entry of `attributes`, compiled.
struct Generator {
    phase: Phase,
    output: String,
    steps: Vec<Step>,
}

/// A compiled configuration: immutable, shared by every stream of a VM.
#[derive(Default)]
pub struct Plan {
    debug: bool,
    generators: Vec<Generator>,
    diagnostics: Diagnostics,
}

/// [`configure_source`] of raw JSON (a separate filter's configuration).
pub fn configure(raw: Option<&[u8]>, host: &impl Host) -> Plan {
    configure_source(ConfigSource::Raw(raw), host)
}

/// Parses and compiles a configuration, reporting problems through the host
/// as Istio's attributegen does: a bad configuration never fails the plugin;
/// it is logged (one line per error, naming the field), counted once in
/// [`CONFIG_ERRORS`], and yields a plan that produces no attributes.
pub fn configure_source(source: ConfigSource<'_>, host: &impl Host) -> Plan {
    let diagnostics = Diagnostics::define(host, FILTER_NAME);
    let compiled = source
        .parse::<PluginConfig>()
        .map_err(|e| {
            report(host, &e);
            vec![e]
        })
        .and_then(|config| compile(&config, host));
    match compiled {
        Ok(mut plan) => {
            plan.diagnostics = diagnostics;
            if plan.debug {
                for g in &plan.generators {
                    host.log(
                        LogLevel::Debug,
                        &format!(
                            "{FILTER_NAME}: added generator for \"{}\" ({:?}, {} steps)",
                            g.output,
                            g.phase,
                            g.steps.len()
                        ),
                    );
                }
            }
            plan
        }
        Err(errors) => {
            diagnostics.config_line(
                host,
                &format!(
                    "configuration rejected ({} error{}); \
                     no attributes are produced until a valid configuration arrives",
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" }
                ),
            );
            diagnostics.count_configuration(host, errors.len());
            Plan {
                diagnostics,
                ..Plan::default()
            }
        }
    }
}

/// Logs one configuration error as one line.
fn report(host: &impl Host, e: &ConfigError) {
    log_config_error(host, FILTER_NAME, e);
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
        let mut steps = Vec::with_capacity(attr.matches.len());
        let mut pending: Vec<(usize, Template, &str)> = Vec::new();
        let mut earlier_shapes: Vec<(String, usize)> = Vec::new();
        let mut always_true: Option<usize> = None;
        for (j, m) in attr.matches.iter().enumerate() {
            let at = |field: &str| format!("attributes[{i}].match[{j}].{field}");
            if !m.template.trim().is_empty() {
                if !m.condition.trim().is_empty() {
                    fail(ConfigError::new(
                        format!("attributes[{i}].match[{j}]"),
                        "set either condition or template, not both",
                    ));
                    continue;
                }
                let template = match Template::parse(&m.template) {
                    Ok(t) => t,
                    Err(reason) => {
                        fail(ConfigError::new(
                            at("template"),
                            format!("{:?}: {reason}", m.template),
                        ));
                        continue;
                    }
                };
                if let Some(k) = always_true {
                    fail(ConfigError::new(
                        at("template"),
                        format!("{:?} can never match: match[{k}] before it has an empty condition, which always matches", m.template),
                    ));
                    continue;
                }
                let shape = template.shape();
                if let Some((_, k)) = earlier_shapes.iter().find(|(s, _)| *s == shape) {
                    fail(ConfigError::new(
                        at("template"),
                        format!("{:?} can never match: match[{k}] in an earlier group has the same template", m.template),
                    ));
                    continue;
                }
                pending.push((j, template, &m.value));
                continue;
            }
            flush_templates(i, &mut pending, &mut steps, &mut earlier_shapes, &mut fail);
            let condition = if m.condition.trim().is_empty() {
                always_true.get_or_insert(j);
                None
            } else {
                match cel::compile(host, &m.condition) {
                    Ok(expr) => Some(expr),
                    Err(e) => {
                        fail(ConfigError::new(
                            at("condition"),
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
            steps.push(Step::Cel {
                condition,
                value: m.value.clone(),
            });
        }
        flush_templates(i, &mut pending, &mut steps, &mut earlier_shapes, &mut fail);
        generators.push(Generator {
            phase: attr.phase,
            output: attr.output_attribute.clone(),
            steps,
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

/// Compiles the pending run of template entries into one step.
fn flush_templates(
    attr: usize,
    pending: &mut Vec<(usize, Template, &str)>,
    steps: &mut Vec<Step>,
    earlier_shapes: &mut Vec<(String, usize)>,
    fail: &mut impl FnMut(ConfigError),
) {
    if pending.is_empty() {
        return;
    }
    let entries: Vec<Entry> = pending
        .iter()
        .enumerate()
        .map(|(answer, (_, template, _))| Entry {
            template: template.clone(),
            answer,
        })
        .collect();
    earlier_shapes.extend(pending.iter().map(|(j, t, _)| (t.shape(), *j)));
    match TemplateGroup::build(&entries) {
        Ok(group) => {
            steps.push(Step::Templates {
                group,
                values: pending.iter().map(|(_, _, v)| v.to_string()).collect(),
            });
        }
        Err(errors) => {
            for (k, reason) in errors {
                let j = pending.get(k).map_or(0, |(j, _, _)| *j);
                fail(ConfigError::new(
                    format!("attributes[{attr}].match[{j}].template"),
                    reason,
                ));
            }
        }
    }
    pending.clear();
}

impl Plan {
    /// Whether any generator runs in `phase` (lets the adapter skip work).
    pub fn runs_in(&self, phase: Phase) -> bool {
        self.generators.iter().any(|g| g.phase == phase)
    }

    /// Whether a phase may read one value more than once (several
    /// generators, or CEL conditions): then a read cache pays for itself.
    pub fn rereads(&self) -> bool {
        self.generators.len() > 1
            || self
                .generators
                .iter()
                .any(|g| g.steps.iter().any(|s| matches!(s, Step::Cel { .. })))
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
    pub fn run<H: Host>(&self, phase: Phase, host: &H) -> usize {
        let mut written = 0;
        for g in self.generators.iter().filter(|g| g.phase == phase) {
            for step in &g.steps {
                let value = match step {
                    Step::Cel {
                        condition: None,
                        value,
                    } => value,
                    Step::Cel {
                        condition: Some(expr),
                        value,
                    } => {
                        match cel::evaluate(host, expr).map(|r| r.as_bool()) {
                            Ok(Ok(true)) => value,
                            Ok(Ok(false)) => continue,
                            // Istio: an error or a non-bool abandons this
                            // generator; later matches are not tried.
                            Ok(Err(e)) => {
                                self.runtime_error(host, g, expr.source(), &e.to_string());
                                break;
                            }
                            Err(e) => {
                                self.runtime_error(
                                    host,
                                    g,
                                    expr.source(),
                                    &format!("evaluation failed ({e})"),
                                );
                                break;
                            }
                        }
                    }
                    Step::Templates { group, values } => {
                        let (Some(method), Some(path)) =
                            (shared_reads::method(host), shared_reads::url_path(host))
                        else {
                            continue;
                        };
                        match group
                            .lookup(&method.text(), &path.text())
                            .and_then(|a| values.get(a))
                        {
                            Some(value) => value,
                            None => continue,
                        }
                    }
                };
                match host.set_attribute(&g.output, value.as_bytes()) {
                    Ok(()) => {
                        written += 1;
                        if self.debug {
                            host.log(
                                LogLevel::Debug,
                                &format!("{FILTER_NAME}: set wasm.{} = {:?}", g.output, value),
                            );
                        }
                    }
                    Err(e) => self.runtime_error(
                        host,
                        g,
                        "",
                        &format!("writing the attribute failed ({e})"),
                    ),
                }
                break;
            }
        }
        written
    }

    fn runtime_error(&self, host: &impl Host, g: &Generator, source: &str, why: &str) {
        self.diagnostics.runtime_error(host, || {
            format!(
                "attribute \"{}\" condition {source:?}: {why}; attribute skipped",
                g.output
            )
        });
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

    fn run(p: &Plan, phase: Phase, host: &FakeHost) -> usize {
        p.run(phase, host)
    }

    #[test]
    fn first_true_match_wins() {
        let host = FakeHost::new();
        host.eval_bool("list", false).eval_bool("get", true);
        let p = plan(&host, OPS);
        assert_eq!(run(&p, Phase::AfterResponse, &host), 1);
        assert_eq!(host.attribute("istio_operationId").unwrap(), b"GetBook");
    }

    #[test]
    fn empty_condition_is_true() {
        let host = FakeHost::new();
        host.eval_bool("list", false).eval_bool("get", false);
        let p = plan(&host, OPS);
        run(&p, Phase::AfterResponse, &host);
        assert_eq!(host.attribute("istio_operationId").unwrap(), b"Other");
    }

    #[test]
    fn error_abandons_the_generator_and_counts() {
        let host = FakeHost::new();
        host.eval("list", Err(HostError::InternalFailure))
            .eval_bool("get", true);
        let p = plan(&host, OPS);
        assert_eq!(run(&p, Phase::AfterResponse, &host), 0);
        assert_eq!(host.attribute("istio_operationId"), None);
        assert_eq!(host.metric(RUNTIME_ERRORS), 1);
        let warn = host.logs_at_least(LogLevel::Warn);
        assert!(
            warn[0].contains("\"istio_operationId\" condition \"list\""),
            "{warn:?}"
        );
    }

    #[test]
    fn non_bool_result_abandons_the_generator() {
        let host = FakeHost::new();
        host.eval("list", Ok(b"/status/207".to_vec()))
            .eval_bool("get", true);
        let p = plan(&host, OPS);
        run(&p, Phase::AfterResponse, &host);
        assert_eq!(host.attribute("istio_operationId"), None);
        assert_eq!(host.metric(RUNTIME_ERRORS), 1);
    }

    #[test]
    fn runtime_error_logs_are_throttled() {
        let host = FakeHost::new();
        let p = plan(&host, OPS); // "list" has no result: InternalFailure
        for _ in 0..100 {
            run(&p, Phase::AfterResponse, &host);
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
        assert_eq!(run(&p, Phase::AfterResponse, &host), 0);
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
        assert_eq!(run(&p, Phase::OnRequest, &host), 1);
        assert_eq!(host.attribute("y").unwrap(), b"early");
        assert_eq!(host.attribute("x"), None);
        assert_eq!(run(&p, Phase::AfterResponse, &host), 2);
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

    const MIXED: &str = r#"{"attributes":[{"output_attribute":"op","match":[
        {"value":"Health","condition":"health"},
        {"value":"GetBook","template":"GET /shelves/{shelf}/books/{book}"},
        {"value":"Featured","template":"GET /shelves/{shelf}/books/featured"},
        {"value":"AnyBook","template":"/shelves/{shelf}/books/{book}"},
        {"value":"ListBooks","template":"GET /books"},
        {"value":"Late","condition":"late"},
        {"value":"Slash","template":"GET /books/"}]}]}"#;

    fn request(host: &FakeHost, method: &str, path: &str) {
        host.reset_stream();
        host.set_header(":method", method.as_bytes());
        host.set_header(":path", path.as_bytes());
    }

    #[test]
    fn templates_most_specific_in_group_and_first_match_across() {
        let host = FakeHost::new();
        host.eval_bool("health", false).eval_bool("late", true);
        let p = plan(&host, MIXED);
        assert!(!p.is_empty(), "{:?}", host.logs());
        for (method, path, want) in [
            ("GET", "/shelves/s1/books/b2?x=1", "GetBook"),
            ("GET", "/shelves/s1/books/featured", "Featured"),
            ("DELETE", "/shelves/s1/books/b2", "AnyBook"),
            ("GET", "/books", "ListBooks"),
            ("GET", "/books/", "Late"), // CEL entry before the later group wins
            ("POST", "/books", "Late"),
        ] {
            request(&host, method, path);
            run(&p, Phase::AfterResponse, &host);
            assert_eq!(
                host.attribute("op").unwrap(),
                want.as_bytes(),
                "{method} {path}"
            );
        }
        host.eval_bool("health", true);
        request(&host, "GET", "/books");
        run(&p, Phase::AfterResponse, &host);
        assert_eq!(host.attribute("op").unwrap(), b"Health");
    }

    #[test]
    fn template_errors_name_the_entry() {
        let host = FakeHost::new();
        let p = plan(
            &host,
            r#"{"attributes":[{"output_attribute":"op","match":[
                {"value":"A","template":"GET /a/{x}"},
                {"value":"B","template":"GET /a/{y}"},
                {"value":"C","template":"get /c"},
                {"value":"D","template":"GET /d?q=1"},
                {"value":"E","template":"GET /e","condition":"true"},
                {"value":"F","condition":"f"},
                {"value":"G","template":"GET /a/{z}"},
                {"value":"H"},
                {"value":"I","template":"GET /i"}]}]}"#,
        );
        assert!(p.is_empty());
        let warn = host.logs_at_least(LogLevel::Warn).join("\n");
        assert!(warn.contains("match[1].template: collides"), "{warn}");
        assert!(
            warn.contains("match[2].template: \"get /c\": method"),
            "{warn}"
        );
        assert!(
            warn.contains("match[3].template: \"GET /d?q=1\": can never match"),
            "{warn}"
        );
        assert!(
            warn.contains("match[4]: set either condition or template"),
            "{warn}"
        );
        assert!(
            warn.contains("match[6].template: \"GET /a/{z}\" can never match: match[0]"),
            "{warn}"
        );
        assert!(
            warn.contains("match[8].template: \"GET /i\" can never match: match[7]"),
            "{warn}"
        );
        assert!(warn.contains("configuration rejected (6 errors)"), "{warn}");
    }

    #[test]
    fn a_read_cache_is_used_only_where_values_can_be_read_twice() {
        let host = FakeHost::new();
        let templates = r#"{"attributes":[{"output_attribute":"op","match":[
            {"value":"A","template":"GET /a"}]}]}"#;
        assert!(!plan(&host, templates).rereads());
        assert!(plan(&host, OPS).rereads());
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
