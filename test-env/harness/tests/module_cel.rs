//! Differential test of `filters/module-cel` (the in-module CEL evaluator of
//! the dynamic-module runtime) against Envoy 1.40's own CEL.
//!
//! Every expression of `native-cel-conditions.txt`, of Istio's attributegen
//! vectors and of `module-cel-expressions.txt` is compiled by module-cel.
//! The ones that compile go into one access-log format, one
//! `%CEL(<expr>)%` field each, beside one `%CEL(<attribute>)%` field per
//! attribute any of them reads. For each request, the attribute values Envoy
//! logged feed a `FakeHost`, module-cel evaluates every expression against
//! it, and its answer must be what Envoy logged for that expression.
//!
//! Envoy 1.40's access-log formatter rejects `string()` and gives no value
//! for string `+` (both of which `expr_evaluate` takes), and its format
//! parser takes no line break inside `%CEL()%`: those expressions
//! are checked against `expr_evaluate` instead, as trace-tags' `expression`
//! tags (evaluated by Envoy on request or response headers, written to filter state
//! `wasm.trace_tag.<name>`, logged with `%FILTER_STATE(…:PLAIN)%`).

use envoy_harness::{Envoy, Wasm};
use filter_common::cel::{as_bool, as_int, as_text};
use filter_common::fake::FakeHost;
use filter_common::host::HostError;
use module_cel::{Program, Read, Type};
use serde_json::Value;

fn testdata(name: &str) -> String {
    let path = envoy_harness::paths::workspace_root()
        .join("test-env/testdata")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

/// Every non-empty `condition` in Istio's attributegen vectors.
fn conditions(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("condition", Value::String(c)) if !c.trim().is_empty() => out.push(c.clone()),
                    _ => conditions(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| conditions(v, out)),
        _ => {}
    }
}

/// (source file, expression), without duplicates.
fn expressions() -> Vec<(&'static str, String)> {
    let mut all: Vec<(&'static str, String)> = Vec::new();
    let mut add = |file: &'static str, exprs: Vec<String>| {
        for e in exprs {
            if !all.iter().any(|(_, seen)| *seen == e) {
                all.push((file, e));
            }
        }
    };
    add(
        "native-cel-conditions.txt",
        lines(&testdata("native-cel-conditions.txt")),
    );
    let vectors: Value = serde_json::from_str(&testdata("attributegen-test-vectors.json")).unwrap();
    let mut from_vectors = Vec::new();
    conditions(&vectors, &mut from_vectors);
    add("attributegen-test-vectors.json", from_vectors);
    add(
        "module-cel-expressions.txt",
        lines(&testdata("module-cel-expressions.txt")),
    );
    all
}

/// The CEL Envoy's access log shows a read with.
fn read_expr(r: &Read) -> String {
    match r.path.as_slice() {
        [name] => format!("filter_state['wasm.{name}']"),
        [map, kind, key] if kind == "headers" || kind == "trailers" => {
            format!("{map}.{kind}['{key}']")
        }
        p => p.join("."),
    }
}

/// An access-log value as text; `None` when Envoy had no value.
fn shown(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if s == "-" => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

/// The host bytes of a logged attribute value of type `ty`.
fn serialized(ty: Type, text: &str) -> Vec<u8> {
    let bad = format!("Envoy logged {text:?} for a {ty}");
    match ty {
        Type::String | Type::Bytes => text.as_bytes().to_vec(),
        Type::Int => text.parse::<i64>().expect(&bad).to_le_bytes().to_vec(),
        Type::Uint => text.parse::<u64>().expect(&bad).to_le_bytes().to_vec(),
        Type::Bool => vec![u8::from(text == "true")],
        _ => panic!("{bad}"),
    }
}

/// module-cel's answer rendered as the access log renders it.
fn rendered(p: &Program, result: &[u8]) -> String {
    match p.result_type() {
        Type::Bool => as_bool(result).unwrap().to_string(),
        Type::Int => as_int(result).unwrap().to_string(),
        Type::Uint => (as_int(result).unwrap() as u64).to_string(),
        _ => as_text(result).into_owned(),
    }
}

/// Where Envoy's answer for an expression is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Oracle {
    /// `%CEL(<expr>)%` in the access log.
    AccessLog,
    /// A trace-tags `expression` tag (`expr_evaluate`), for what the
    /// access-log formatter does not evaluate: `string()`, string `+`,
    /// expressions written over several lines.
    TraceTag,
}

/// Where Envoy's answer can be read as module-cel renders it; else why not.
fn oracle(p: &Program) -> Result<Oracle, &'static str> {
    let unmapped = |t: Type| matches!(t, Type::Double | Type::Timestamp | Type::Duration);
    if unmapped(p.result_type()) || p.reads().iter().any(|r| unmapped(r.ty)) {
        return Err("access-log rendering of doubles, timestamps, durations not mapped");
    }
    // The access-log format parser takes no line breaks inside %CEL()%.
    if p.source().contains("string(") || p.concatenates() || p.source().contains('\n') {
        return Ok(Oracle::TraceTag);
    }
    Ok(Oracle::AccessLog)
}

/// trace-tags' phase for an expression: on response headers only when it
/// reads the response (there, Envoy 1.40's `expr_evaluate` finds no
/// `request.method` or `request.url_path`: "Key not found in map").
fn phase(p: &Program) -> &'static str {
    if p.reads()
        .iter()
        .any(|r| r.path.first().is_some_and(|s| s == "response"))
    {
        "RESPONSE"
    } else {
        "REQUEST"
    }
}

/// trace-tags' `type` for a result type.
fn tag_type(t: Type) -> &'static str {
    match t {
        Type::Bool => "BOOL",
        Type::Int | Type::Uint => "INT",
        _ => "STRING",
    }
}

struct Req {
    method: &'static str,
    path: &'static str,
    tenant: Option<&'static str>,
    status: u16,
}

const fn req(
    method: &'static str,
    path: &'static str,
    tenant: Option<&'static str>,
    status: u16,
) -> Req {
    Req {
        method,
        path,
        tenant,
        status,
    }
}

const REQUESTS: &[Req] = &[
    req("GET", "/reviews", Some("acme"), 200),
    req("GET", "/reviews/abc", None, 200),
    req("GET", "/REVIEWS/xyz", Some("other"), 200),
    req("GET", "/reviews/", None, 404),
    req("POST", "/reviews", Some("acme"), 201),
    req("PUT", "/reviews/r1", Some("acme"), 200),
    req("GET", "/reviews?view=1", None, 200),
    req("GET", "/reviews/r1/view#frag", None, 200),
    req("GET", "/books", None, 200),
    req("GET", "/shelves/s1/books/b2", Some("acme"), 200),
    req("POST", "/books/", None, 201),
    req("POST", "/status/207", None, 207),
    req("GET", "/status", None, 200),
    req("DELETE", "/books/b1", None, 503),
    req("GET", "/view", None, 401),
    req("GET", "/y", None, 403),
    req("GET", "/z", Some("acme"), 429),
    req("GET", "/a", None, 302),
    req("HEAD", "/books", None, 500),
];

#[derive(Default)]
struct Tally {
    agreed: Vec<String>,
    rejected: Vec<String>,
    not_comparable: Vec<String>,
    disagreed: Vec<String>,
}

#[test]
fn module_cel_agrees_with_envoys_cel() {
    let exprs = expressions();
    let mut tally = Tally::default();
    let mut programs: Vec<(usize, &str, Program, Oracle)> = Vec::new();
    for (file, source) in &exprs {
        match module_cel::compile(source) {
            Ok(p) => match oracle(&p) {
                Ok(o) => programs.push((programs.len(), file, p, o)),
                Err(why) => tally
                    .not_comparable
                    .push(format!("{file}: {source:?}: {why}")),
            },
            Err(e) => tally.rejected.push(format!("{file}: {e}")),
        }
    }
    let mut reads: Vec<Read> = Vec::new();
    for (_, _, p, _) in &programs {
        for r in p.reads() {
            if !reads.contains(r) {
                reads.push(r.clone());
            }
        }
    }
    let mut builder = Envoy::builder();
    let mut tags = Vec::new();
    for (i, _, p, o) in &programs {
        let field = match o {
            Oracle::AccessLog => format!("%CEL({})%", p.source()),
            Oracle::TraceTag => {
                tags.push(serde_json::json!({
                    "name": format!("e{i}"),
                    "expression": p.source(),
                    "type": tag_type(p.result_type()),
                    "phase": phase(p),
                }));
                format!("%FILTER_STATE(wasm.trace_tag.e{i}:PLAIN)%")
            }
        };
        builder = builder.log_field(&format!("e{i}"), &field);
    }
    if !tags.is_empty() {
        let config = serde_json::json!({ "tags": tags, "max_value_length": 8192 });
        builder = builder.filter(Wasm::new("trace_tags").config(config.to_string()));
    }
    for (j, r) in reads.iter().enumerate() {
        builder = builder.log_field(&format!("a{j}"), &format!("%CEL({})%", read_expr(r)));
    }
    let envoy = builder.start().unwrap();

    // Per expression: the requests on which module-cel and Envoy differ.
    let mut differences: Vec<Vec<String>> = vec![Vec::new(); programs.len()];
    for r in REQUESTS {
        let mut request = envoy.request(r.method, r.path).upstream_status(r.status);
        if let Some(t) = r.tenant {
            request = request.header("x-tenant", t);
        }
        let resp = request.send().unwrap();
        let entry = envoy.access_log_entry(&resp).unwrap();
        let host = FakeHost::new();
        for (j, read) in reads.iter().enumerate() {
            if let Some(text) = shown(&entry[format!("a{j}")]) {
                host.set_property(&read.path.join("."), &serialized(read.ty, &text));
            }
        }
        for (i, _, p, _) in &programs {
            let theirs = shown(&entry[format!("e{i}")]);
            let ours = match p.evaluate(&host) {
                Ok(v) => Some(rendered(p, &v)),
                Err(HostError::InternalFailure) => None,
                Err(e) => Some(format!("<{e}>")),
            };
            if theirs != ours {
                differences[*i].push(format!(
                    "{} {} -> envoy {theirs:?}, module-cel {ours:?}",
                    r.method, r.path
                ));
            }
        }
    }
    // What trace-tags logged (configuration errors, failed evaluations).
    let log = envoy.stop();
    let wasm_log: Vec<&str> = log.lines().filter(|l| l.contains("wasm log")).collect();

    for (i, file, p, o) in &programs {
        let via = match o {
            Oracle::AccessLog => "",
            Oracle::TraceTag => " (via expr_evaluate)",
        };
        let line = format!("{file}: {:?}{via}", p.source());
        if !differences[*i].is_empty() {
            let logged: Vec<&&str> = wasm_log
                .iter()
                .filter(|l| !l.contains("tags configured"))
                .take(3)
                .collect();
            tally.disagreed.push(format!(
                "{line}: {}; Wasm log: {logged:?}",
                differences[*i].join("; ")
            ));
        } else {
            tally.agreed.push(line);
        }
    }
    let mut report = format!(
        "module-cel vs Envoy's CEL ({} expressions, {} requests): agreed {}, rejected at compile time {}, not compared {}, disagreed {}\n",
        exprs.len(),
        REQUESTS.len(),
        tally.agreed.len(),
        tally.rejected.len(),
        tally.not_comparable.len(),
        tally.disagreed.len()
    );
    for (title, items) in [
        ("agreed", &tally.agreed),
        ("rejected", &tally.rejected),
        ("not comparable", &tally.not_comparable),
        ("DISAGREED", &tally.disagreed),
    ] {
        for item in items {
            report.push_str(&format!("{title}: {item}\n"));
        }
    }
    println!("{report}");
    let out = envoy_harness::paths::workspace_root().join("target/test-reports");
    let _ = std::fs::create_dir_all(&out);
    let _ = std::fs::write(out.join("module-cel-agreement.txt"), &report);
    assert!(tally.disagreed.is_empty(), "{report}");
    // Every condition of the native subset and of Istio's vectors (but the
    // one that is not CEL) is evaluated in the module.
    for (file, source) in &exprs {
        if *file != "module-cel-expressions.txt" && !source.starts_with("if a = b") {
            assert!(
                tally
                    .agreed
                    .iter()
                    .any(|l| l.starts_with(&format!("{file}: {source:?}"))),
                "{source}: not agreed\n{report}"
            );
        }
    }
}
