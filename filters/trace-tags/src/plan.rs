//! Compiling a configuration into tags, and producing their values per
//! request.
//!
//! Envoy applies HCM `tracing.custom_tags` when it finishes the downstream
//! span, which happens **before** any filter's `on_log`. So every value is
//! written by the response-headers phase at the latest: request-phase tags on
//! request headers, response-phase tags on response headers.
//!
//! Anti-spoofing: the request headers the filter owns (its tag headers) are
//! removed on request headers, before anything reads them, then the filter
//! writes its own values. Envoy 1.40 lets a Wasm filter write request headers
//! only during `on_http_request_headers` (from `on_http_response_headers` the
//! call returns `BadArgument`), and the router forwards that same header map,
//! so a tag header always reaches the upstream (with the filter's value, never
//! the client's) and only request-phase tags can be headers. Filter state has
//! neither limit: it never leaves the proxy and is written in both phases.
//!
//! Optionally a request-phase tag is also propagated upstream as a W3C
//! `baggage` entry; the client's entries under the filter's keys are dropped.

use crate::config::{parse_tag, Phase, PluginConfig, TagConfig, ValueType, MAX_VALUE_LENGTH_LIMIT};
use crate::FILTER_NAME;
use filter_common::cel::{self, Expression};
use filter_common::config::{ConfigError, ConfigSource};
use filter_common::diagnostics::Diagnostics;
use filter_common::host::{Bytes, Host, HostError, LogLevel};
use std::borrow::Cow;

/// Counter of configuration errors (+1 per error found, per VM).
pub const CONFIG_ERRORS: &str = "wasm_filter.trace_tags.type.config.error_count";
/// Counter of sources that failed at run time (CEL error, wrong result type,
/// unreadable attribute); the tag then gets its default.
pub const RUNTIME_ERRORS: &str = "wasm_filter.trace_tags.type.runtime.error_count";

/// Where a tag's value comes from, compiled.
enum Source {
    /// Literal or environment variable: known at configuration time.
    Fixed(Option<String>),
    /// A request header as the client sent it (lower-cased name).
    Header(String),
    /// A CEL expression and how to print its result.
    Expression(Expression, ValueType),
    /// A filter-state key.
    Attribute(String),
}

/// One tag, compiled.
struct Tag {
    name: String,
    source: Source,
    default: Option<String>,
    phase: Phase,
    /// Filter-state name (without `wasm.`), when written there.
    filter_state: Option<String>,
    /// Request header, when written there.
    header: Option<String>,
    /// Propagated as a W3C `baggage` entry.
    baggage: bool,
}

/// A compiled configuration: immutable, shared by every stream of a VM.
pub struct Plan {
    tags: Vec<Tag>,
    /// Every header the filter owns (stripped from client requests).
    owned_headers: Vec<String>,
    /// Baggage keys the filter owns (stripped from the client's `baggage`).
    baggage_keys: Vec<String>,
    max_len: usize,
    diagnostics: Diagnostics,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            tags: Vec::new(),
            owned_headers: Vec::new(),
            baggage_keys: Vec::new(),
            max_len: crate::config::DEFAULT_MAX_VALUE_LENGTH,
            diagnostics: Diagnostics::default(),
        }
    }
}

/// [`configure_source`] of raw JSON (a separate filter's configuration).
pub fn configure(raw: Option<&[u8]>, host: &impl Host) -> Plan {
    configure_source(ConfigSource::Raw(raw), host)
}

/// Parses and compiles a configuration. Never fails: each problem is logged
/// once (naming the tag and the field) and counted in [`CONFIG_ERRORS`]; a bad
/// tag is left out, the others work. An unparseable document yields no tags.
pub fn configure_source(source: ConfigSource<'_>, host: &impl Host) -> Plan {
    let diagnostics = Diagnostics::define(host, FILTER_NAME);
    let (mut plan, errors) = match source.parse::<PluginConfig>() {
        Ok(config) => compile(&config, host),
        Err(e) => (Plan::default(), vec![e]),
    };
    for e in &errors {
        diagnostics.config_error(host, e);
    }
    diagnostics.count_configuration(host, errors.len());
    plan.diagnostics = diagnostics;
    host.log(
        LogLevel::Debug,
        &format!(
            "{FILTER_NAME}: {} tag{} configured ({})",
            plan.tags.len(),
            if plan.tags.len() == 1 { "" } else { "s" },
            plan.tags
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    plan
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(':')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Compiles a parsed configuration: the plan of every valid tag, and every
/// error found (each naming the tag and the field).
pub fn compile(config: &PluginConfig, host: &impl Host) -> (Plan, Vec<ConfigError>) {
    let mut errors = Vec::new();
    let mut plan = Plan::default();
    if config.max_value_length == 0 || config.max_value_length > MAX_VALUE_LENGTH_LIMIT {
        errors.push(ConfigError::new(
            "max_value_length",
            format!(
                "must be between 1 and {MAX_VALUE_LENGTH_LIMIT}, got {}; using {}",
                config.max_value_length, plan.max_len
            ),
        ));
    } else {
        plan.max_len = config.max_value_length;
    }
    let header_prefix = config.header_prefix.to_ascii_lowercase();
    if !header_prefix.is_empty() && !valid_header_name(&header_prefix) {
        errors.push(ConfigError::new(
            "header_prefix",
            format!(
                "{:?} is not a valid header name prefix; no tag headers are written",
                config.header_prefix
            ),
        ));
    }
    let header_prefix = if valid_header_name(&header_prefix) {
        header_prefix
    } else {
        String::new()
    };
    if config.filter_state && config.filter_state_prefix.contains('\0') {
        errors.push(ConfigError::new(
            "filter_state_prefix",
            "must not contain a NUL character",
        ));
        return (plan, errors);
    }

    // First pass: parse every tag, so every owned header is known before
    // header sources are checked against them.
    let mut parsed = Vec::with_capacity(config.tags.len());
    for (i, raw) in config.tags.iter().enumerate() {
        let label = raw
            .get("name")
            .or_else(|| raw.get("tag"))
            .and_then(|n| n.as_str())
            .map_or(String::new(), |n| format!(" (\"{n}\")"));
        let at = |field: &str| {
            if field.is_empty() {
                format!("tags[{i}]{label}")
            } else {
                format!("tags[{i}]{label}.{field}")
            }
        };
        match parse_tag(raw) {
            Ok(t) => parsed.push((t, at(""), i)),
            Err(e) => errors.push(ConfigError::new(at(&e.path), e.reason + "; tag skipped")),
        }
    }
    for (t, _, _) in &parsed {
        if let Some(h) = tag_header(t, &header_prefix) {
            if valid_header_name(&h) && !plan.owned_headers.contains(&h) {
                plan.owned_headers.push(h);
            }
        }
    }
    for (t, at, _) in parsed {
        match compile_tag(&t, config, &header_prefix, &plan, host) {
            Ok(tag) => {
                if plan.tags.iter().any(|o| o.name == tag.name) {
                    errors.push(ConfigError::new(
                        format!("{at}.name"),
                        "duplicate tag name; the first one is kept",
                    ));
                } else {
                    if tag.baggage {
                        plan.baggage_keys.push(tag.name.clone());
                    }
                    plan.tags.push(tag);
                }
            }
            Err((field, reason)) => errors.push(ConfigError::new(
                format!("{at}.{field}"),
                reason + "; tag skipped",
            )),
        }
    }
    (plan, errors)
}

fn tag_header(t: &TagConfig, prefix: &str) -> Option<String> {
    match &t.request_header {
        Some(h) => Some(h.to_ascii_lowercase()),
        None if !prefix.is_empty() => Some(format!("{prefix}{}", t.name.to_ascii_lowercase())),
        None => None,
    }
}

fn compile_tag(
    t: &TagConfig,
    config: &PluginConfig,
    header_prefix: &str,
    plan: &Plan,
    host: &impl Host,
) -> Result<Tag, (&'static str, String)> {
    if !valid_name(&t.name) {
        return Err((
            "name",
            format!(
                "{:?} is not a valid tag name (1 to 128 letters, digits, '_', '-', '.')",
                t.name
            ),
        ));
    }
    let sources = [
        t.literal.is_some(),
        t.environment.is_some(),
        t.header.is_some(),
        t.expression.is_some(),
        t.attribute.is_some(),
    ];
    match sources.iter().filter(|s| **s).count() {
        1 => {}
        0 => {
            return Err((
                "source",
                "needs one source: literal, environment, header, expression or attribute".into(),
            ))
        }
        _ => {
            return Err((
                "source",
                "has more than one of literal, environment, header, expression, attribute".into(),
            ))
        }
    }
    let cap = |v: &str| clean(v, plan.max_len).map(Cow::into_owned);
    let default = t.default.as_deref().and_then(cap);
    let mut phase = Phase::Request;
    let source = if let Some(v) = &t.literal {
        if t.default.is_some() {
            return Err(("default", "a literal tag has no default".into()));
        }
        Source::Fixed(cap(v))
    } else if let Some(name) = &t.environment {
        if name.is_empty() {
            return Err(("environment", "must name a variable".into()));
        }
        Source::Fixed(host.env_var(name).as_deref().and_then(cap))
    } else if let Some(name) = &t.header {
        let name = name.to_ascii_lowercase();
        if !valid_header_name(&name) {
            return Err(("header", format!("{name:?} is not a valid header name")));
        }
        if plan.owned_headers.contains(&name) {
            return Err((
                "header",
                format!("{name:?} is a header this filter writes (and strips from clients)"),
            ));
        }
        Source::Header(name)
    } else if let Some(src) = &t.expression {
        let ty = match &t.value_type {
            Some(v) => ValueType::parse(v).map_err(|e| ("type", e))?,
            None => ValueType::String,
        };
        let expr = cel::compile(host, src).map_err(|e| {
            (
                "expression",
                format!(
                    "CEL expression {src:?} does not compile ({e}); the CEL parser's message, \
                     with the position, is the log line just before this one"
                ),
            )
        })?;
        Source::Expression(expr, ty)
    } else if let Some(key) = &t.attribute {
        if key.is_empty() {
            return Err(("attribute", "must name a filter-state key".into()));
        }
        Source::Attribute(key.clone())
    } else {
        return Err(("source", "no source".into()));
    };
    if t.value_type.is_some() && !matches!(source, Source::Expression(..)) {
        return Err(("type", "only an expression tag has a type".into()));
    }
    if let Some(p) = &t.phase {
        if !matches!(source, Source::Expression(..) | Source::Attribute(_)) {
            return Err((
                "phase",
                "only expression and attribute tags have a phase".into(),
            ));
        }
        phase = Phase::parse(p).map_err(|e| ("phase", e))?;
    }
    let mut header = tag_header(t, header_prefix);
    if let Some(h) = &header {
        if !valid_header_name(h) {
            return Err((
                "request_header",
                format!("{h:?} is not a valid header name"),
            ));
        }
    }
    if phase == Phase::Response {
        if t.request_header.is_some() {
            return Err((
                "request_header",
                "a RESPONSE-phase tag cannot be a request header (Envoy lets a Wasm filter \
                 write request headers only on request headers); use its filter state"
                    .into(),
            ));
        }
        if t.baggage {
            return Err((
                "baggage",
                "a RESPONSE-phase tag cannot be propagated: the upstream request is gone".into(),
            ));
        }
        // With header_prefix its header is still owned (stripped from
        // clients) but never written.
        header = None;
    }
    Ok(Tag {
        name: t.name.clone(),
        source,
        default,
        phase,
        filter_state: config
            .filter_state
            .then(|| format!("{}{}", config.filter_state_prefix, t.name)),
        header,
        baggage: t.baggage,
    })
}

/// The W3C baggage header.
const BAGGAGE: &str = "baggage";
/// W3C baggage limits: total bytes and list members.
const BAGGAGE_MAX_BYTES: usize = 8192;
const BAGGAGE_MAX_MEMBERS: usize = 180;

/// Percent-encodes a baggage value: everything outside the W3C
/// `baggage-octet` set, and `%` itself, becomes `%XX` (UTF-8 bytes).
pub fn baggage_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        let plain =
            matches!(b, 0x21 | 0x23..=0x24 | 0x26..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E);
        if plain {
            out.push(char::from(b));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            for nibble in [b >> 4, b & 0xf] {
                out.push(HEX.get(usize::from(nibble)).map_or('0', |h| char::from(*h)));
            }
        }
    }
    out
}

/// Makes a tag value safe: control characters (which no header may carry)
/// become spaces, then the value is cut to `max` bytes at a character
/// boundary. Empty means no value. A value that needs neither is borrowed.
pub fn clean(value: &str, max: usize) -> Option<Cow<'_, str>> {
    if value.is_empty() {
        return None;
    }
    if value.len() <= max && !value.chars().any(char::is_control) {
        return Some(Cow::Borrowed(value));
    }
    let mut out = String::with_capacity(value.len().min(max));
    for c in value.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    (!out.is_empty()).then_some(Cow::Owned(out))
}

impl Plan {
    /// Number of tags.
    pub fn len(&self) -> usize {
        self.tags.len()
    }

    /// True when the plan writes nothing.
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    /// Request headers: strips the owned headers, then produces the
    /// request-phase tags and writes them to filter state and headers.
    pub fn on_request(&self, host: &impl Host) {
        for h in &self.owned_headers {
            if let Err(e) = host.remove_request_header(h) {
                self.runtime_error(
                    host,
                    h,
                    &format!("removing the client's header failed ({e})"),
                );
            }
        }
        let mut baggage = Vec::new();
        for tag in self.tags.iter().filter(|t| t.phase == Phase::Request) {
            self.with_value(tag, host, &mut |value| {
                self.write_filter_state(tag, value, host);
                self.write_span_tag(tag, value, host);
                if let (Some(h), Some(v)) = (&tag.header, value) {
                    if let Err(e) = host.set_request_header(h, v.as_bytes()) {
                        self.runtime_error(
                            host,
                            &tag.name,
                            &format!("writing header {h} failed ({e})"),
                        );
                    }
                }
                if let (true, Some(v)) = (tag.baggage, value) {
                    baggage.push((tag.name.as_str(), v.to_string()));
                }
            });
        }
        if !self.baggage_keys.is_empty() {
            self.write_baggage(&baggage, host);
        }
    }

    /// Rewrites the W3C `baggage` request header: the client's entries
    /// under the filter's keys are dropped (they would be spoofed tags
    /// downstream), the others kept, then the filter's entries appended
    /// within the 8192-byte limit of the W3C specification.
    fn write_baggage(&self, ours: &[(&str, String)], host: &impl Host) {
        let incoming = match host.request_header(BAGGAGE) {
            Ok(v) => v.map(|b| String::from_utf8_lossy(&b).into_owned()),
            Err(e) => {
                self.runtime_error(host, BAGGAGE, &format!("reading the header failed ({e})"));
                None
            }
        };
        let mut members: Vec<String> = incoming
            .iter()
            .flat_map(|h| h.split(','))
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .filter(|m| {
                let end = m.find(['=', ';']).unwrap_or(m.len());
                let key = m.get(..end).unwrap_or_default().trim();
                !self.baggage_keys.iter().any(|k| k == key)
            })
            .map(str::to_string)
            .collect();
        let mut len: usize = members.iter().map(|m| m.len() + 1).sum();
        for (key, value) in ours {
            let member = format!("{key}={}", baggage_encode(value));
            if len + member.len() + 1 > BAGGAGE_MAX_BYTES || members.len() >= BAGGAGE_MAX_MEMBERS {
                self.runtime_error(host, key, "the baggage header is full; entry not added");
                continue;
            }
            len += member.len() + 1;
            members.push(member);
        }
        let result = if members.is_empty() {
            host.remove_request_header(BAGGAGE)
        } else {
            host.set_request_header(BAGGAGE, members.join(",").as_bytes())
        };
        if let Err(e) = result {
            self.runtime_error(host, BAGGAGE, &format!("writing the header failed ({e})"));
        }
    }

    /// Response headers: produces the response-phase tags and writes them to
    /// filter state. The span is finished before `on_log`, so this is the
    /// last chance.
    pub fn on_response(&self, host: &impl Host) {
        for tag in self.tags.iter().filter(|t| t.phase == Phase::Response) {
            self.with_value(tag, host, &mut |value| {
                self.write_filter_state(tag, value, host);
                self.write_span_tag(tag, value, host);
            });
        }
    }

    /// Calls `use_value` with the tag's value from its source, cleaned, else
    /// its default (borrowed where it needs no change).
    /// (`use_value` is a trait object: one copy of this function per host.)
    fn with_value(&self, tag: &Tag, host: &impl Host, use_value: &mut dyn FnMut(Option<&str>)) {
        let (raw, result, text);
        let value = match &tag.source {
            Source::Fixed(v) => v.as_deref().map(Cow::Borrowed),
            Source::Header(_) | Source::Attribute(_) => {
                raw = self.raw_value(tag, host);
                text = raw.as_deref().map(cel::as_text);
                text.as_deref().and_then(|t| clean(t, self.max_len))
            }
            Source::Expression(expr, ty) => {
                result = match cel::evaluate(host, expr) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        let why =
                            format!("expression {:?} failed to evaluate ({e})", expr.source());
                        self.runtime_error(host, &tag.name, &why);
                        None
                    }
                };
                text = result.as_ref().and_then(|r| match decode(r, *ty) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        let why = format!("expression {:?}: {e}", expr.source());
                        self.runtime_error(host, &tag.name, &why);
                        None
                    }
                });
                text.as_deref().and_then(|t| clean(t, self.max_len))
            }
        };
        use_value(value.as_deref().or(tag.default.as_deref()))
    }

    /// A header or attribute tag's raw value (`None` for other sources).
    fn raw_value(&self, tag: &Tag, host: &impl Host) -> Option<Bytes> {
        let (what, read) = match &tag.source {
            Source::Header(name) => (("header", name), host.request_header_shared(name)),
            Source::Attribute(key) => (
                ("filter state", key),
                host.property_shared(&["filter_state", key]),
            ),
            Source::Fixed(_) | Source::Expression(..) => return None,
        };
        read.unwrap_or_else(|e| {
            let why = format!("reading {} {} failed ({e})", what.0, what.1);
            self.runtime_error(host, &tag.name, &why);
            None
        })
    }

    fn write_filter_state(&self, tag: &Tag, value: Option<&str>, host: &impl Host) {
        if let (Some(key), Some(v)) = (&tag.filter_state, value) {
            if let Err(e) = host.set_attribute(key, v.as_bytes()) {
                self.runtime_error(
                    host,
                    &tag.name,
                    &format!("writing filter state wasm.{key} failed ({e})"),
                );
            }
        }
    }

    /// Tags the active span directly where the host can (Envoy's dynamic
    /// modules); proxy-wasm cannot (`Unimplemented`) and a request without
    /// a span (`NotFound`) has nothing to tag: neither is an error.
    fn write_span_tag(&self, tag: &Tag, value: Option<&str>, host: &impl Host) {
        let Some(v) = value else { return };
        match host.set_span_tag(&tag.name, v) {
            Ok(()) | Err(HostError::Unimplemented | HostError::NotFound) => {}
            Err(e) => {
                self.runtime_error(host, &tag.name, &format!("tagging the span failed ({e})"))
            }
        }
    }

    fn runtime_error(&self, host: &impl Host, tag: &str, why: &str) {
        self.diagnostics
            .runtime_error(host, || format!("tag \"{tag}\": {why}; default used"));
    }
}

fn decode<'r>(
    result: &'r cel::CelValue<'_>,
    ty: ValueType,
) -> Result<Cow<'r, str>, cel::DecodeError> {
    Ok(match ty {
        ValueType::String => result.as_text(),
        ValueType::Int => Cow::Owned(result.as_int()?.to_string()),
        ValueType::Double => Cow::Owned(result.as_double()?.to_string()),
        ValueType::Bool => Cow::Owned(result.as_bool()?.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use filter_common::fake::FakeHost;

    const ALL: &str = r#"{"header_prefix":"x-tag-","tags":[
        {"name":"env","literal":"prod"},
        {"name":"region","environment":"REGION","default":"unknown-region"},
        {"name":"tenant","header":"x-tenant","default":"anonymous"},
        {"name":"route","expression":"request.url_path"},
        {"name":"status","expression":"response.code","type":"INT","phase":"RESPONSE"},
        {"name":"op","attribute":"wasm.istio_operationId","default":"unknown"},
        {"name":"late","attribute":"wasm.late","phase":"RESPONSE"}]}"#;

    fn plan(host: &FakeHost, raw: &str) -> Plan {
        configure(Some(raw.as_bytes()), host)
    }

    fn fs(host: &FakeHost, tag: &str) -> Option<String> {
        host.attribute(&format!("trace_tag.{tag}"))
            .map(|v| String::from_utf8(v).unwrap())
    }

    fn hdr(host: &FakeHost, name: &str) -> Option<String> {
        host.header(name).map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn a_host_that_can_tags_the_span_directly_in_both_phases() {
        let host = FakeHost::new();
        host.with_span_tags();
        host.eval("response.code", Ok(200i64.to_le_bytes().to_vec()));
        let p = plan(
            &host,
            r#"{"tags":[{"name":"env","literal":"prod"},
                {"name":"status","expression":"response.code","type":"INT","phase":"RESPONSE"}]}"#,
        );
        p.on_request(&host);
        p.on_response(&host);
        assert_eq!(
            host.span_tags(),
            vec![
                ("env".to_string(), "prod".to_string()),
                ("status".to_string(), "200".to_string())
            ]
        );
        assert_eq!(
            fs(&host, "env").as_deref(),
            Some("prod"),
            "filter state too"
        );
        assert!(host.logs_at_least(LogLevel::Warn).is_empty());
    }

    #[test]
    fn every_source_kind() {
        let host = FakeHost::new();
        host.set_env("REGION", "eu-west-1");
        host.eval("request.url_path", Ok(b"/books".to_vec()))
            .eval("response.code", Ok(404i64.to_le_bytes().to_vec()));
        let p = plan(&host, ALL);
        assert_eq!(p.len(), 7);
        assert!(host.logs_at_least(LogLevel::Warn).is_empty());
        host.set_header("x-tenant", b"acme");
        host.set_property("filter_state.wasm.istio_operationId", b"GetBook");
        host.set_property("filter_state.wasm.late", b"Late");
        p.on_request(&host);
        assert_eq!(fs(&host, "env").as_deref(), Some("prod"));
        assert_eq!(fs(&host, "region").as_deref(), Some("eu-west-1"));
        assert_eq!(fs(&host, "tenant").as_deref(), Some("acme"));
        assert_eq!(fs(&host, "route").as_deref(), Some("/books"));
        assert_eq!(fs(&host, "op").as_deref(), Some("GetBook"));
        assert_eq!(fs(&host, "status"), None);
        assert_eq!(fs(&host, "late"), None);
        for (h, v) in [
            ("x-tag-env", "prod"),
            ("x-tag-region", "eu-west-1"),
            ("x-tag-tenant", "acme"),
            ("x-tag-route", "/books"),
            ("x-tag-op", "GetBook"),
        ] {
            assert_eq!(hdr(&host, h).as_deref(), Some(v), "{h}");
        }
        p.on_response(&host);
        assert_eq!(fs(&host, "status").as_deref(), Some("404"));
        assert_eq!(fs(&host, "late").as_deref(), Some("Late"));
        // Response-phase tags are never headers.
        assert_eq!(hdr(&host, "x-tag-status"), None);
        assert_eq!(hdr(&host, "x-tag-late"), None);
        assert_eq!(host.metric(RUNTIME_ERRORS), 0);
    }

    #[test]
    fn missing_sources_give_defaults() {
        let host = FakeHost::new();
        let p = plan(&host, ALL);
        p.on_request(&host);
        p.on_response(&host);
        assert_eq!(fs(&host, "region").as_deref(), Some("unknown-region"));
        assert_eq!(fs(&host, "tenant").as_deref(), Some("anonymous"));
        assert_eq!(fs(&host, "op").as_deref(), Some("unknown"));
        assert_eq!(hdr(&host, "x-tag-op").as_deref(), Some("unknown"));
        // No result and no default: nothing written; the CEL errors count.
        assert_eq!(fs(&host, "route"), None);
        assert_eq!(hdr(&host, "x-tag-route"), None);
        assert_eq!(host.metric(RUNTIME_ERRORS), 2);
    }

    #[test]
    fn spoofed_headers_are_stripped_and_never_become_tags() {
        let host = FakeHost::new();
        let p = plan(&host, ALL);
        host.set_header("x-tag-env", b"spoofed")
            .set_header("x-tag-route", b"spoofed")
            .set_header("x-tag-status", b"spoofed");
        p.on_request(&host);
        assert_eq!(hdr(&host, "x-tag-env").as_deref(), Some("prod"));
        assert_eq!(hdr(&host, "x-tag-route"), None); // no value, no default
        assert_eq!(hdr(&host, "x-tag-status"), None); // response phase
        p.on_response(&host);
        assert_eq!(hdr(&host, "x-tag-status"), None);
    }

    #[test]
    fn explicit_request_header_without_filter_state() {
        let host = FakeHost::new();
        let p = plan(
            &host,
            r#"{"filter_state":false,
                "tags":[{"name":"env","literal":"prod","request_header":"X-Env"}]}"#,
        );
        host.set_header("x-env", b"spoofed");
        p.on_request(&host);
        assert_eq!(hdr(&host, "x-env").as_deref(), Some("prod"));
        assert!(host.attribute_writes().is_empty());
    }

    #[test]
    fn response_phase_tag_cannot_be_a_request_header() {
        let host = FakeHost::new();
        let p = plan(
            &host,
            r#"{"tags":[{"name":"s","expression":"x","phase":"RESPONSE","request_header":"x-s"}]}"#,
        );
        assert!(p.is_empty());
        let warn = host.logs_at_least(LogLevel::Warn);
        assert!(
            warn[0].contains("tags[0] (\"s\").request_header: a RESPONSE-phase tag"),
            "{warn:?}"
        );
    }

    #[test]
    fn baggage_entries_replace_the_clients_and_keep_the_rest() {
        let host = FakeHost::new();
        let p = plan(
            &host,
            r#"{"tags":[{"name":"tenant","header":"x-tenant","baggage":true},
                        {"name":"team","literal":"book store","baggage":true},
                        {"name":"other","literal":"x"}]}"#,
        );
        host.set_header("x-tenant", b"acme,inc")
            .set_header("baggage", b"userId=alice, tenant=evil;prop=1 ,team=evil");
        p.on_request(&host);
        assert_eq!(
            hdr(&host, "baggage").as_deref(),
            Some("userId=alice,tenant=acme%2Cinc,team=book%20store")
        );
        // Without values and without client entries: no header at all.
        let host = FakeHost::new();
        let p = plan(
            &host,
            r#"{"tags":[{"name":"tenant","header":"x-tenant","baggage":true}]}"#,
        );
        host.set_header("baggage", b"tenant=evil");
        p.on_request(&host);
        assert_eq!(hdr(&host, "baggage"), None);
        assert_eq!(baggage_encode("a%b=c\\\u{e9}"), "a%25b=c%5C%C3%A9");
    }

    #[test]
    fn response_phase_tag_cannot_be_baggage() {
        let host = FakeHost::new();
        let p = plan(
            &host,
            r#"{"tags":[{"name":"s","expression":"x","phase":"RESPONSE","baggage":true}]}"#,
        );
        assert!(p.is_empty());
        assert!(host.logs_at_least(LogLevel::Warn)[0].contains("(\"s\").baggage:"));
    }

    #[test]
    fn values_are_capped_and_cleaned() {
        assert_eq!(clean("abc", 2).as_deref(), Some("ab"));
        assert_eq!(clean("héllo", 2).as_deref(), Some("h")); // é is 2 bytes
        assert_eq!(clean("a\r\nb\0", 10).as_deref(), Some("a  b "));
        assert_eq!(clean("", 10), None);
        assert!(matches!(clean("as is", 5), Some(Cow::Borrowed("as is"))));
        let host = FakeHost::new();
        let p = plan(
            &host,
            r#"{"max_value_length":4,"tags":[{"name":"t","header":"x-t"}]}"#,
        );
        host.set_header("x-t", &[b'a', 0xff, b'b', b'c', b'd']);
        p.on_request(&host);
        // Invalid UTF-8 becomes U+FFFD (3 bytes), then the cut.
        assert_eq!(fs(&host, "t").as_deref(), Some("a\u{fffd}"));
    }

    #[test]
    fn expression_types() {
        let host = FakeHost::new();
        host.eval("b", Ok(vec![1]))
            .eval("d", Ok(1.5f64.to_le_bytes().to_vec()))
            .eval("bad", Ok(vec![1, 2, 3]));
        let p = plan(
            &host,
            r#"{"tags":[{"name":"b","expression":"b","type":"BOOL"},
                        {"name":"d","expression":"d","type":"DOUBLE"},
                        {"name":"i","expression":"bad","type":"INT","default":"n/a"}]}"#,
        );
        p.on_request(&host);
        assert_eq!(fs(&host, "b").as_deref(), Some("true"));
        assert_eq!(fs(&host, "d").as_deref(), Some("1.5"));
        assert_eq!(fs(&host, "i").as_deref(), Some("n/a"));
        assert_eq!(host.metric(RUNTIME_ERRORS), 1);
        let warn = host.logs_at_least(LogLevel::Warn);
        assert!(
            warn[0].contains("tag \"i\"") && warn[0].contains("64-bit integer"),
            "{warn:?}"
        );
    }

    #[test]
    fn eval_errors_are_throttled() {
        let host = FakeHost::new();
        host.eval("x", Err(HostError::InternalFailure));
        let p = plan(&host, r#"{"tags":[{"name":"x","expression":"x"}]}"#);
        for _ in 0..100 {
            p.on_request(&host);
        }
        assert_eq!(host.metric(RUNTIME_ERRORS), 100);
        assert_eq!(host.logs_at_least(LogLevel::Warn).len(), 7);
    }

    #[test]
    fn bad_tags_are_skipped_named_and_counted() {
        let host = FakeHost::new();
        host.reject("bad(");
        let p = plan(
            &host,
            r#"{"header_prefix":"x-tag-","tags":[
                {"name":"ok","literal":"v"},
                {"name":"cel","expression":"bad("},
                {"name":"two","literal":"a","header":"x-a"},
                {"name":"none"},
                {"name":"bad name!","literal":"a"},
                {"name":"own","header":"x-tag-ok"},
                {"name":"ph","literal":"a","phase":"RESPONSE"},
                {"name":"ty","expression":"e","type":"LIST"},
                {"name":"ok","literal":"dup"},
                {"name":"typo","litral":"a"}]}"#,
        );
        assert_eq!(p.len(), 1);
        let warn = host.logs_at_least(LogLevel::Warn);
        assert_eq!(warn.len(), 9, "{warn:?}");
        assert_eq!(host.metric(CONFIG_ERRORS), 1, "one per configuration");
        let expect = [
            "tags[1] (\"cel\").expression: CEL expression \"bad(\" does not compile",
            "tags[2] (\"two\").source: has more than one",
            "tags[3] (\"none\").source: needs one source",
            "tags[4] (\"bad name!\").name:",
            "tags[5] (\"own\").header: \"x-tag-ok\" is a header this filter writes",
            "tags[6] (\"ph\").phase: only expression and attribute",
            "tags[7] (\"ty\").type: unknown type \"LIST\"",
            "tags[8] (\"ok\").name: duplicate tag name",
            "tags[9] (\"typo\").litral: unknown field `litral`",
        ];
        for e in expect {
            assert!(
                warn.iter().any(|w| w.contains(e)),
                "missing {e:?} in {warn:?}"
            );
        }
        // The good tag still works.
        p.on_request(&host);
        assert_eq!(fs(&host, "ok").as_deref(), Some("v"));
    }

    #[test]
    fn unparseable_configuration_is_counted_not_fatal() {
        let host = FakeHost::new();
        let p = plan(&host, "tags: [a]");
        assert!(p.is_empty());
        assert_eq!(host.metric(CONFIG_ERRORS), 1);
        assert!(host.logs_at_least(LogLevel::Warn)[0].contains("$: invalid JSON"));
        let p = plan(&host, r#"{"max_value_length":0}"#);
        assert!(p.is_empty());
        assert_eq!(host.metric(CONFIG_ERRORS), 2);
    }

    #[test]
    fn no_configuration_means_no_tags_and_no_error() {
        let host = FakeHost::new();
        let p = configure(None, &host);
        assert!(p.is_empty());
        assert_eq!(host.metric(CONFIG_ERRORS), 0);
        p.on_request(&host);
        assert!(host.attribute_writes().is_empty());
    }
}
