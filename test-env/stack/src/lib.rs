//! The observability stack's own programs (`test-env/docker-compose.yaml`
//! and `scripts/stack.sh`):
//!
//! - `bookstore`: the upstream, a small book-store API (list, get, create,
//!   delete, plus routes that answer 4xx and 5xx);
//! - `traffic`: a bounded traffic generator that exercises those routes
//!   through Envoy and prints a tally of what it got, per operation;
//! - `collector`: a span collector (OTLP/HTTP and Zipkin JSON, decoded by
//!   the harness's collector) with a JSON API to read the spans back;
//! - `stack`: starts, feeds and stops the stack as local processes
//!   (`scripts/stack.sh` is its wrapper);
//! - `stack-check`: the assertions the stack's tests make through its own
//!   surfaces (Prometheus, the collector, Envoy's access log, the dashboard).

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

pub mod bookstore;
pub mod local_config;
pub mod supervise;

/// One request the traffic generator sends per round: the operation id
/// attributegen should give it, method, path (`{id}` = a book id).
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// Expected `istio_operationId` (`unknown` when attributegen has none).
    pub operation: &'static str,
    /// HTTP method.
    pub method: &'static str,
    /// Path; `{new}` is the id of the book created earlier in the round.
    pub path: &'static str,
    /// Request body (JSON), if any.
    pub body: Option<&'static str>,
}

/// Every round of traffic, in order. Codes come from the bookstore:
/// 200/201/204 for the happy paths, 404 for a missing book, 400 for an
/// invalid body, 503 for reviews (backend down), 500 for the inventory.
pub const ROUND: &[Step] = &[
    step("ListBooks", "GET", "/books", None),
    step("ListBooks", "GET", "/books?page=2", None),
    step("GetBook", "GET", "/books/b1", None),
    step("GetBook", "GET", "/books/missing", None),
    step(
        "CreateBook",
        "POST",
        "/books",
        Some(r#"{"title":"Dune","author":"Frank Herbert"}"#),
    ),
    step("CreateBook", "POST", "/books", Some(r#"{"title":""}"#)),
    step("GetBook", "GET", "/books/{new}", None),
    step("DeleteBook", "DELETE", "/books/{new}", None),
    step("ListShelfBooks", "GET", "/shelves/fiction/books", None),
    step("GetBookReviews", "GET", "/books/b2/reviews", None),
    step("GetInventory", "GET", "/inventory", None),
    step("unknown", "GET", "/healthz", None),
];

const fn step(
    operation: &'static str,
    method: &'static str,
    path: &'static str,
    body: Option<&'static str>,
) -> Step {
    Step {
        operation,
        method,
        path,
        body,
    }
}

/// The operations attributegen knows in the stack's configuration.
pub const OPERATIONS: &[&str] = &[
    "ListBooks",
    "GetBook",
    "CreateBook",
    "DeleteBook",
    "ListShelfBooks",
    "GetBookReviews",
    "GetInventory",
];

/// Counts of responses by (operation, method, code), as the traffic
/// generator saw them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally(pub BTreeMap<(String, String, u16), u64>);

impl Tally {
    /// Counts one response.
    pub fn add(&mut self, operation: &str, method: &str, code: u16) {
        *self
            .0
            .entry((operation.to_string(), method.to_string(), code))
            .or_default() += 1;
    }

    /// Adds another tally.
    pub fn merge(&mut self, other: &Tally) {
        for (k, v) in &other.0 {
            *self.0.entry(k.clone()).or_default() += v;
        }
    }

    /// All responses.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Sum over the entries `keep` accepts, grouped by `key`.
    pub fn group<K: Ord>(
        &self,
        keep: impl Fn(&str, &str, u16) -> bool,
        key: impl Fn(&str, &str, u16) -> K,
    ) -> BTreeMap<K, u64> {
        let mut out = BTreeMap::new();
        for ((op, m, c), n) in &self.0 {
            if keep(op, m, *c) {
                *out.entry(key(op, m, *c)).or_default() += n;
            }
        }
        out
    }

    /// As JSON: `{"total": N, "requests": [{"operation","method","code","count"}]}`.
    pub fn to_json(&self) -> Value {
        let requests: Vec<Value> = self
            .0
            .iter()
            .map(|((op, m, c), n)| json!({"operation": op, "method": m, "code": c, "count": n}))
            .collect();
        json!({ "total": self.total(), "requests": requests })
    }

    /// Reads [`Tally::to_json`]'s output.
    pub fn from_json(v: &Value) -> Result<Tally, String> {
        let mut t = Tally::default();
        for r in v["requests"].as_array().ok_or("tally: no requests array")? {
            let op = r["operation"].as_str().ok_or("tally: operation")?;
            let m = r["method"].as_str().ok_or("tally: method")?;
            let c = r["code"]
                .as_u64()
                .and_then(|c| u16::try_from(c).ok())
                .ok_or("tally: code")?;
            let n = r["count"].as_u64().ok_or("tally: count")?;
            *t.0.entry((op.to_string(), m.to_string(), c)).or_default() += n;
        }
        Ok(t)
    }
}

/// An HTTP client that reports every status as a response (no redirects,
/// bounded timeouts).
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// GET `url`: status and body (at most 64 MiB).
pub fn get(agent: &ureq::Agent, url: &str) -> Result<(u16, String), String> {
    let mut resp = agent
        .get(url)
        .call()
        .map_err(|e| format!("GET {url}: {e}"))?;
    let code = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| format!("GET {url}: {e}"))?;
    Ok((code, body))
}

/// Percent-encodes a query parameter.
pub use envoy_harness::process::percent_encode as encode;

/// Command-line flags as `--name value` pairs (and bare `--flag`s as
/// `"true"`); anything else is an error naming the program's usage.
pub fn parse_flags(usage: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut args = std::env::args().skip(1).peekable();
    while let Some(a) = args.next() {
        if a == "-h" || a == "--help" {
            println!("{usage}");
            std::process::exit(0);
        }
        let Some(name) = a.strip_prefix("--") else {
            eprintln!("unexpected argument {a:?}\n{usage}");
            std::process::exit(2);
        };
        if let Some((k, v)) = name.split_once('=') {
            out.insert(k.to_string(), v.to_string());
        } else if args.peek().is_some_and(|n| !n.starts_with("--")) {
            out.insert(name.to_string(), args.next().unwrap_or_default());
        } else {
            out.insert(name.to_string(), "true".to_string());
        }
    }
    out
}

/// A flag's value parsed, or the default; exits with the usage when it
/// does not parse.
pub fn flag<T: std::str::FromStr>(
    flags: &BTreeMap<String, String>,
    name: &str,
    default: T,
    usage: &str,
) -> T {
    match flags.get(name) {
        None => default,
        Some(v) => v.parse().unwrap_or_else(|_| {
            eprintln!("--{name}: cannot parse {v:?}\n{usage}");
            std::process::exit(2)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_round_trips_and_groups() {
        let mut t = Tally::default();
        t.add("ListBooks", "GET", 200);
        t.add("ListBooks", "GET", 200);
        t.add("CreateBook", "POST", 201);
        let back = Tally::from_json(&t.to_json()).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.total(), 3);
        let gets = t.group(|_, m, _| m == "GET", |op, _, c| (op.to_string(), c));
        assert_eq!(gets.get(&("ListBooks".to_string(), 200)), Some(&2));
        assert_eq!(gets.len(), 1);
    }

    /// A round against the bookstore's logic gives the codes the README and
    /// the dashboard promise: every class of answer, on its route.
    #[test]
    fn a_round_gets_every_answer_from_the_bookstore() {
        let store = bookstore::Store::new(false);
        let mut created = String::from("none");
        let mut codes = Vec::new();
        for s in ROUND {
            let path = s.path.replace("{new}", &created);
            let (code, body) = bookstore::handle(&store, s.method, &path, s.body.unwrap_or(""));
            if code == 201 {
                created = body["id"].as_str().unwrap().to_string();
            }
            codes.push(code);
        }
        assert_eq!(
            codes,
            [200, 200, 200, 404, 201, 400, 200, 204, 200, 503, 500, 200]
        );
        assert_eq!(bookstore::handle(&store, "PATCH", "/books/b1", "").0, 405);
        assert_eq!(bookstore::handle(&store, "GET", "/nowhere", "").0, 404);
    }

    #[test]
    fn every_round_operation_is_known_or_unknown() {
        for s in ROUND {
            assert!(
                s.operation == "unknown" || OPERATIONS.contains(&s.operation),
                "{s:?}"
            );
        }
        for op in OPERATIONS {
            assert!(ROUND.iter().any(|s| s.operation == *op), "{op} never sent");
        }
    }
}
