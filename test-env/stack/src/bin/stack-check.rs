//! The stack's assertions, made through its own surfaces after a traffic
//! run (used by `scripts/test-compose.sh` for both the Docker and the
//! local-process stack):
//!
//! - Prometheus's HTTP API: the Envoy target is up; `istio_get_calls` per
//!   operation and code, `stack_requests_total` per operation, method and
//!   code, and the latency histogram's `_count` per operation equal the
//!   traffic generator's tally exactly;
//! - the span collector: one span per request, per operation, each with the
//!   trace-tags tags (`request_operation`, `tenant`, `deployment`,
//!   `status_class`) consistent with its HTTP status;
//! - Envoy's access log: every request with attributegen's operation id,
//!   and its trace id among the collector's spans;
//! - with `--grpc-access-log FILE` (grpc-collector's JSON lines): every
//!   request's entry arrived over Envoy's gRPC access-log service exactly
//!   once, with its operation id, method and code;
//! - the Grafana dashboard: every panel query and the variable's query run
//!   against this Prometheus and return data; every data link's label is one
//!   the panel's results carry and a span tag the collector has.
//!
//! Prints one line per check and `N passed, N failed`; exits 1 on any
//! failure.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use telemetry_stack::{agent, encode, flag, get, parse_flags, Tally};

const USAGE: &str = "stack-check --prometheus URL --collector URL --access-log FILE --tally FILE \
--dashboard FILE [--timeout 60] [--deployment local-stack] [--grpc-access-log FILE] \
[--without-latency REASON]";

/// The latency histogram's name (left out of the dynamic module's stack:
/// `--without-latency`).
const LATENCY_METRIC: &str = "stack_request_duration_milliseconds";

struct Checks {
    passed: u32,
    failed: u32,
    skipped: u32,
}

impl Checks {
    /// Reports a check that this stack cannot run, and why.
    fn skip(&mut self, name: &str, why: &str) {
        self.skipped += 1;
        println!("skip {name}: {why}");
    }

    fn report(&mut self, name: &str, result: Result<String, String>) {
        match result {
            Ok(detail) => {
                self.passed += 1;
                println!("ok   {name}: {detail}");
            }
            Err(e) => {
                self.failed += 1;
                println!("FAIL {name}: {e}");
            }
        }
    }
}

struct Ctx {
    http: ureq::Agent,
    prometheus: String,
    collector: String,
    timeout: Duration,
}

fn main() {
    let flags = parse_flags(USAGE);
    let need = |k: &str| {
        flags.get(k).cloned().unwrap_or_else(|| {
            eprintln!("--{k} is required\n{USAGE}");
            std::process::exit(2)
        })
    };
    let ctx = Ctx {
        http: agent(Duration::from_secs(10)),
        prometheus: need("prometheus").trim_end_matches('/').to_string(),
        collector: need("collector").trim_end_matches('/').to_string(),
        timeout: Duration::from_secs(flag(&flags, "timeout", 60, USAGE)),
    };
    let deployment = flags
        .get("deployment")
        .cloned()
        .unwrap_or_else(|| "local-stack".to_string());
    let tally = std::fs::read_to_string(need("tally"))
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str::<Value>(&t).map_err(|e| e.to_string()))
        .and_then(|v| Tally::from_json(&v));
    let tally = match tally {
        Ok(t) if t.total() > 0 => t,
        Ok(_) => fail_early("the tally is empty: no traffic was sent"),
        Err(e) => fail_early(&format!("reading the tally: {e}")),
    };
    let mut c = Checks {
        passed: 0,
        failed: 0,
        skipped: 0,
    };
    let without_latency = flags.get("without-latency").cloned();
    println!(
        "stack-check: {} requests in the tally; Prometheus {}, collector {}",
        tally.total(),
        ctx.prometheus,
        ctx.collector
    );

    c.report("prometheus scrapes envoy", target_up(&ctx));
    let by_op_code = |keep_get: bool| {
        tally.group(
            move |_, m, _| !keep_get || m == "GET",
            |op, _, c| vec![op.to_string(), c.to_string()],
        )
    };
    c.report(
        "istio_get_calls per operation and code = GETs sent",
        promql_equals(
            &ctx,
            "sum by (request_operation, response_code) (istio_get_calls)",
            &["request_operation", "response_code"],
            &by_op_code(true),
        ),
    );
    c.report(
        "stack_requests_total per operation, method and code = requests sent",
        promql_equals(
            &ctx,
            "sum by (request_operation, request_method, response_code) (stack_requests_total)",
            &["request_operation", "request_method", "response_code"],
            &tally.group(
                |_, _, _| true,
                |op, m, c| vec![op.to_string(), m.to_string(), c.to_string()],
            ),
        ),
    );
    let per_op = tally.group(|_, _, _| true, |op, _, _| vec![op.to_string()]);
    if let Some(why) = &without_latency {
        c.skip(
            "latency histogram _count per operation = requests sent",
            why,
        );
        c.skip(
            "latency histogram: every operation's p95 within (0, 10000] ms",
            why,
        );
    } else {
        c.report(
            "latency histogram _count per operation = requests sent",
            promql_equals(
                &ctx,
                &format!("sum by (request_operation) ({LATENCY_METRIC}_count)"),
                &["request_operation"],
                &per_op,
            ),
        );
        c.report(
            "latency histogram: every operation's p95 within (0, 10000] ms",
            latency_plausible(&ctx),
        );
    }

    let spans = spans_match(&ctx, &tally);
    let trace_ids = spans.as_ref().map(|(_, ids)| ids.clone()).ok();
    c.report(
        "collector: one span per request, per request_operation",
        spans.map(|(d, _)| d),
    );
    c.report(
        "collector: spans carry trace-tags' tags",
        span_tags(&ctx, &deployment),
    );
    c.report(
        "access log: operation ids per request, trace ids among the spans",
        retry(ctx.timeout, || {
            access_log(&need("access-log"), &tally, trace_ids.as_ref())
        }),
    );

    if let Some(path) = flags.get("grpc-access-log") {
        c.report(
            "gRPC access log: one entry per request, with its operation id",
            retry(ctx.timeout, || grpc_access_log(path, &tally)),
        );
    }

    match dashboard(&need("dashboard")) {
        Err(e) => c.report("dashboard", Err(e)),
        Ok(d) => {
            c.report("dashboard variable query", variable_query(&ctx, &d));
            for (title, expr, links) in panel_queries(&d) {
                let name = format!("dashboard panel {title:?}");
                match &without_latency {
                    Some(why) if expr.iter().any(|e| e.contains(LATENCY_METRIC)) => {
                        c.skip(&name, why)
                    }
                    _ => {
                        let r = panel_query(&ctx, &expr, &links);
                        c.report(&name, r);
                    }
                }
            }
        }
    }

    println!(
        "stack-check: {} passed, {} failed, {} skipped",
        c.passed, c.failed, c.skipped
    );
    std::process::exit(i32::from(c.failed > 0));
}

fn fail_early(msg: &str) -> ! {
    println!("FAIL {msg}");
    println!("stack-check: 0 passed, 1 failed");
    std::process::exit(1)
}

fn query(ctx: &Ctx, promql: &str) -> Result<Vec<Value>, String> {
    let url = format!("{}/api/v1/query?query={}", ctx.prometheus, encode(promql));
    let (code, body) = get(&ctx.http, &url)?;
    let v: Value = serde_json::from_str(&body).map_err(|e| format!("{promql}: {e}: {body}"))?;
    if code != 200 || v["status"] != "success" {
        return Err(format!("{promql}: HTTP {code}: {body}"));
    }
    Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
}

/// Repeats `attempt` until it succeeds or the timeout passes (then its last
/// error).
fn retry<T>(
    timeout: Duration,
    mut attempt: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        match attempt() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => return Err(format!("after {timeout:?}: {e}")),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

fn target_up(ctx: &Ctx) -> Result<String, String> {
    retry(ctx.timeout, || {
        let (_, body) = get(&ctx.http, &format!("{}/api/v1/targets", ctx.prometheus))?;
        let v: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        let targets = v["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let envoy: Vec<&Value> = targets
            .iter()
            .filter(|t| t["labels"]["job"] == "envoy")
            .collect();
        match envoy.first() {
            Some(t) if t["health"] == "up" => Ok(format!("{} up", t["scrapeUrl"])),
            Some(t) => Err(format!(
                "{} {}: {}",
                t["scrapeUrl"], t["health"], t["lastError"]
            )),
            None => Err(format!("no envoy job among {targets:?}")),
        }
    })
}

fn promql_equals(
    ctx: &Ctx,
    promql: &str,
    labels: &[&str],
    want: &BTreeMap<Vec<String>, u64>,
) -> Result<String, String> {
    retry(ctx.timeout, || {
        let got: BTreeMap<Vec<String>, u64> = query(ctx, promql)?
            .iter()
            .map(|r| {
                let key = labels
                    .iter()
                    .map(|l| r["metric"][*l].as_str().unwrap_or("").to_string())
                    .collect();
                let v = r["value"][1]
                    .as_str()
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(-1.0);
                (key, v.round() as u64)
            })
            .filter(|(_, v)| *v > 0)
            .collect();
        if &got == want {
            Ok(format!(
                "{} series, {} in all",
                got.len(),
                got.values().sum::<u64>()
            ))
        } else {
            Err(format!("{promql}:\n  got  {got:?}\n  want {want:?}"))
        }
    })
}

fn latency_plausible(ctx: &Ctx) -> Result<String, String> {
    let promql = "histogram_quantile(0.95, sum by (le, request_operation) \
                  (stack_request_duration_milliseconds_bucket))";
    let result = query(ctx, promql)?;
    if result.is_empty() {
        return Err(format!("{promql}: no data"));
    }
    let mut shown = Vec::new();
    for r in &result {
        let op = r["metric"]["request_operation"].as_str().unwrap_or("?");
        let v: f64 = r["value"][1]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN);
        if !(v > 0.0 && v <= 10_000.0) {
            return Err(format!("{op}: p95 {v} ms"));
        }
        shown.push(format!("{op} {v:.1}"));
    }
    Ok(format!("p95 ms: {}", shown.join(", ")))
}

fn collector_spans(ctx: &Ctx) -> Result<Vec<Value>, String> {
    let (code, body) = get(&ctx.http, &format!("{}/api/spans", ctx.collector))?;
    if code != 200 {
        return Err(format!("collector /api/spans: HTTP {code}"));
    }
    let v: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

fn tag<'a>(span: &'a Value, key: &str) -> Option<&'a str> {
    span["tags"][key].as_str()
}

fn spans_match(ctx: &Ctx, tally: &Tally) -> Result<(String, BTreeSet<String>), String> {
    let want = tally.group(|_, _, _| true, |op, _, _| op.to_string());
    retry(ctx.timeout, || {
        let spans = collector_spans(ctx)?;
        let mut got: BTreeMap<String, u64> = BTreeMap::new();
        for s in &spans {
            *got.entry(tag(s, "request_operation").unwrap_or("(none)").to_string())
                .or_default() += 1;
        }
        if got == want {
            let ids = spans
                .iter()
                .filter_map(|s| s["trace_id"].as_str().map(str::to_string))
                .collect();
            Ok((format!("{} spans: {got:?}", spans.len()), ids))
        } else {
            Err(format!(
                "spans per request_operation:\n  got  {got:?}\n  want {want:?}"
            ))
        }
    })
}

fn span_tags(ctx: &Ctx, deployment: &str) -> Result<String, String> {
    let spans = collector_spans(ctx)?;
    let tenants = ["acme", "globex", "initech", "anonymous"];
    let mut seen_tenants = BTreeSet::new();
    for s in &spans {
        let code: u16 = tag(s, "http.status_code")
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let class = match code {
            500.. => "server_error",
            400..=499 => "client_error",
            _ => "ok",
        };
        let tenant = tag(s, "tenant").unwrap_or("");
        if !tenants.contains(&tenant) {
            return Err(format!("tenant {tenant:?} in {s}"));
        }
        seen_tenants.insert(tenant.to_string());
        if tag(s, "deployment") != Some(deployment) {
            return Err(format!("deployment is not {deployment:?} in {s}"));
        }
        if tag(s, "status_class") != Some(class) {
            return Err(format!(
                "status_class is not {class:?} (HTTP {code}) in {s}"
            ));
        }
    }
    if seen_tenants.len() < 3 {
        return Err(format!("only tenants {seen_tenants:?}"));
    }
    Ok(format!(
        "{} spans with request_operation, tenant ({}), deployment={deployment}, status_class",
        spans.len(),
        seen_tenants.into_iter().collect::<Vec<_>>().join(", ")
    ))
}

fn access_log(
    path: &str,
    tally: &Tally,
    trace_ids: Option<&BTreeSet<String>>,
) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut got: BTreeMap<String, u64> = BTreeMap::new();
    let mut missing_traces = 0;
    let mut lines = 0;
    for v in json_lines(&text) {
        if v.get("operation").is_none() {
            continue;
        }
        lines += 1;
        let op = v["operation"].as_str().unwrap_or("unknown").to_string();
        *got.entry(op).or_default() += 1;
        if let (Some(ids), Some(t)) = (trace_ids, v["trace_id"].as_str()) {
            if !ids.contains(t) {
                missing_traces += 1;
            }
        }
    }
    let want = tally.group(|_, _, _| true, |op, _, _| op.to_string());
    if got != want {
        return Err(format!(
            "access-log lines per operation:\n  got  {got:?}\n  want {want:?}"
        ));
    }
    if missing_traces > 0 {
        return Err(format!(
            "{missing_traces} access-log trace ids have no span at the collector"
        ));
    }
    Ok(format!("{lines} lines: {got:?}"))
}

/// grpc-collector's access-log entries (`"kind":"http"` lines; other lines,
/// e.g. a container log's, are skipped) per (operation, method, code) equal
/// the tally: each request arrived once, with attributegen's operation id
/// from filter state (`unknown` when none was written).
fn grpc_access_log(path: &str, tally: &Tally) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut got: BTreeMap<Vec<String>, u64> = BTreeMap::new();
    for v in json_lines(&text) {
        if v["kind"] != "http" {
            continue;
        }
        let op = v["filter_state"]["wasm.istio_operationId"]
            .as_str()
            .unwrap_or("unknown");
        let key = vec![
            op.to_string(),
            v["method"].as_str().unwrap_or("").to_string(),
            v["response_code"].to_string(),
        ];
        *got.entry(key).or_default() += 1;
    }
    let want = tally.group(
        |_, _, _| true,
        |op, m, c| vec![op.to_string(), m.to_string(), c.to_string()],
    );
    if got != want {
        return Err(format!(
            "gRPC access-log entries per (operation, method, code):\n  got  {got:?}\n  want {want:?}"
        ));
    }
    Ok(format!("{} entries", got.values().sum::<u64>()))
}

/// The JSON objects of a log, one a line; Docker's log may prefix them or
/// mix in other lines, which are skipped.
fn json_lines(text: &str) -> impl Iterator<Item = Value> + '_ {
    text.lines().filter_map(|line| {
        let at = line.find("{\"")?;
        serde_json::from_str(line.get(at..)?).ok()
    })
}

fn dashboard(path: &str) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))
}

/// Grafana's variables, as a test against a fresh stack sees them: all
/// operations, a one-minute rate window, a 15-minute range.
fn substitute(expr: &str) -> String {
    expr.replace("${operation:regex}", ".*")
        .replace("${operation}", ".*")
        .replace("$operation", ".*")
        .replace("$__rate_interval", "1m")
        .replace("$__interval", "15s")
        .replace("$__range", "15m")
}

/// (panel title, each target's expression, the labels its data links use).
fn panel_queries(d: &Value) -> Vec<(String, Vec<String>, Vec<String>)> {
    let mut out = Vec::new();
    let mut panels: Vec<&Value> = d["panels"].as_array().into_iter().flatten().collect();
    // Rows may nest panels.
    let nested: Vec<&Value> = panels
        .iter()
        .flat_map(|p| p["panels"].as_array().into_iter().flatten())
        .collect();
    panels.extend(nested);
    for p in panels {
        let exprs: Vec<String> = p["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["expr"].as_str().map(str::to_string))
            .collect();
        if exprs.is_empty() {
            continue;
        }
        let links: Vec<String> = p["fieldConfig"]["defaults"]["links"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["url"].as_str())
            .flat_map(link_labels)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        out.push((p["title"].as_str().unwrap_or("?").to_string(), exprs, links));
    }
    out
}

/// Labels a data-link URL reads: `${__field.labels.X}` / `${__data.fields.X}`
/// (with an optional `:format`).
fn link_labels(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    for marker in ["${__field.labels.", "${__data.fields."] {
        let mut rest = url;
        while let Some(at) = rest.find(marker) {
            let after = rest.get(at + marker.len()..).unwrap_or("");
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
            rest = after;
        }
    }
    out
}

fn panel_query(ctx: &Ctx, exprs: &[String], links: &[String]) -> Result<String, String> {
    let mut series = 0;
    for expr in exprs {
        let expr = substitute(expr);
        let result = retry(ctx.timeout, || {
            let r = query(ctx, &expr)?;
            if r.is_empty() {
                Err(format!("{expr}: no data"))
            } else {
                Ok(r)
            }
        })?;
        for label in links {
            if !result.iter().all(|r| r["metric"][label].is_string()) {
                return Err(format!(
                    "data link reads {label:?}, which {expr} does not return"
                ));
            }
            for r in &result {
                let value = r["metric"][label].as_str().unwrap_or("");
                let url = format!(
                    "{}/api/spans?limit=1&tag={}",
                    ctx.collector,
                    encode(&format!("{label}={value}"))
                );
                let (_, body) = get(&ctx.http, &url)?;
                if body.trim() == "[]" {
                    return Err(format!(
                        "data link to traces with {label}={value}: the collector has none"
                    ));
                }
            }
        }
        series += result.len();
    }
    let linked = if links.is_empty() {
        String::new()
    } else {
        format!("; data links by {links:?} lead to spans")
    };
    Ok(format!(
        "{} quer{}, {series} series{linked}",
        exprs.len(),
        if exprs.len() == 1 { "y" } else { "ies" }
    ))
}

fn variable_query(ctx: &Ctx, d: &Value) -> Result<String, String> {
    let mut done = Vec::new();
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        let q = v["query"]["query"]
            .as_str()
            .or(v["query"].as_str())
            .unwrap_or("");
        let Some(inner) = q
            .strip_prefix("label_values(")
            .and_then(|s| s.strip_suffix(')'))
        else {
            return Err(format!("variable {}: unsupported query {q:?}", v["name"]));
        };
        let (metric, label) = inner.split_once(',').ok_or(format!("query {q:?}"))?;
        let url = format!(
            "{}/api/v1/label/{}/values?match[]={}",
            ctx.prometheus,
            label.trim(),
            encode(metric.trim())
        );
        let (_, body) = get(&ctx.http, &url)?;
        let values: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        let n = values["data"].as_array().map_or(0, Vec::len);
        if n == 0 {
            return Err(format!("{q}: no values"));
        }
        done.push(format!(
            "${} = {n} values",
            v["name"].as_str().unwrap_or("?")
        ));
    }
    Ok(done.join(", "))
}
