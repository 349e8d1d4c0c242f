//! get_calls through a real Envoy (2 workers): exact counts per label set,
//! attributegen's operation ids as a label, hostile label values and the
//! series cap, a histogram, configuration errors, and a real Prometheus
//! scraping `/stats/prometheus` and answering PromQL.

use envoy_harness::prometheus::family;
use envoy_harness::prometheus::sample;
use envoy_harness::{Envoy, EnvoyBuilder, Prometheus, Wasm};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const DEFAULT_LABELS: [&str; 3] = ["destination_service", "request_operation", "response_code"];
const CONFIG_ERRORS: &str = "wasmcustom.wasm_filter.get_calls.type.config.error_count";
const RUNTIME_ERRORS: &str = "wasmcustom.wasm_filter.get_calls.type.runtime.error_count";

/// attributegen in front: Istio's bookinfo-style operation ids.
const OPERATIONS: &str = r#"{"attributes":[{"output_attribute":"istio_operationId","match":[
  {"value":"ListBooks","condition":"request.url_path == '/books' && request.method == 'GET'"},
  {"value":"GetBook","condition":"request.url_path.matches('^/books/[[:alnum:]]*$') && request.method == 'GET'"},
  {"value":"CreateBook","condition":"request.url_path == '/books' && request.method == 'POST'"}]}]}"#;

/// The fixed extractors of Istio's sidecar bootstrap
/// (`tools/packaging/common/envoy_bootstrap.json`), several unanchored: a
/// label value must not trigger them.
const ISTIO_EXTRACTORS: [(&str, &str); 11] = [
    (
        "cluster_name",
        r"^cluster\.((.+?(\..+?\.svc\.cluster\.local)?)\.)",
    ),
    ("tcp_prefix", r"^tcp\.((.*?)\.)\w+?$"),
    ("response_code", r"_rq(_(\d{3}))$"),
    ("response_code_class", r"_rq(_(\dxx))$"),
    ("cache", r"(cache\.(.+?)\.)"),
    ("component", r"(component\.(.+?)\.)"),
    ("tag", r"(tag\.(.+?);\.)"),
    ("wasm_filter", r"(wasm_filter\.(.+?)\.)"),
    ("authz_enforce_result", r"rbac(\.(allowed|denied))"),
    ("authz_dry_run_action", r"(\.istio_dry_run_(allow|deny)_)"),
    ("authz_dry_run_result", r"(\.shadow_(allowed|denied))"),
];

/// The documented plain-Envoy extractor for a label (= Istio's for
/// `extraStatTags`).
fn tag_regex(label: &str) -> String {
    format!(r"({label}=\.=(.*?);\.;)")
}

fn with_tags(mut b: EnvoyBuilder, labels: &[&str]) -> EnvoyBuilder {
    for l in labels {
        b = b.stats_tag(l, &tag_regex(l));
    }
    b
}

/// Sends `(method, path, upstream status, copies)` from `threads` threads,
/// each with its own keep-alive connection (its own agent), so
/// `exact_balance` spreads them over both workers. Every response must be
/// the upstream's.
fn send_all(envoy: &Envoy, plan: &[(&str, String, u16, usize)], threads: usize) {
    let mut jobs: Vec<(&str, String, u16)> = Vec::new();
    for (m, p, s, n) in plan {
        for _ in 0..*n {
            jobs.push((m, p.clone(), *s));
        }
    }
    let chunk = jobs.len().div_ceil(threads).max(1);
    let port = envoy.port();
    std::thread::scope(|scope| {
        for part in jobs.chunks(chunk) {
            scope.spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .allow_non_standard_methods(true)
                    .build()
                    .into();
                for (m, p, s) in part {
                    // An explicit empty body (content-length: 0).
                    let req = ureq::http::Request::builder()
                        .method(*m)
                        .uri(format!("http://127.0.0.1:{port}{p}"))
                        .header("x-upstream-status", s.to_string())
                        .body(&b""[..])
                        .unwrap();
                    let status = agent.run(req).unwrap().status().as_u16();
                    assert_eq!(status, *s, "{m} {p}");
                }
            });
        }
    });
}

fn worker_connections(envoy: &Envoy) -> Vec<u64> {
    (0..2)
        .map(|w| {
            envoy
                .stat(&format!(
                    "listener.127.0.0.1_{}.worker_{w}.downstream_cx_total",
                    envoy.port()
                ))
                .unwrap()
                .unwrap_or(0)
        })
        .collect()
}

fn default_envoy() -> Envoy {
    with_tags(
        Envoy::builder()
            .filter(Wasm::new("attributegen").config(OPERATIONS))
            .filter(Wasm::new("get_calls"))
            .concurrency(2)
            .exact_balance(),
        &DEFAULT_LABELS,
    )
    .start()
    .unwrap()
}

/// The default configuration (no bytes): GETs only, exact per label set,
/// over two workers, operation ids from attributegen, `unknown` without one.
#[test]
fn default_config_counts_gets_exactly_over_two_workers() {
    let envoy = default_envoy();
    let plan = [
        ("GET", "/books".to_string(), 200, 40),
        ("GET", "/books/42".to_string(), 200, 30),
        ("GET", "/books/7".to_string(), 404, 10),
        ("GET", "/other".to_string(), 200, 20),
        ("POST", "/books".to_string(), 201, 25),
        ("DELETE", "/books/1".to_string(), 200, 5),
    ];
    send_all(&envoy, &plan, 4);
    envoy
        .wait_access_log_len(130, Duration::from_secs(10))
        .unwrap();
    let workers = worker_connections(&envoy);
    assert!(
        workers.iter().all(|c| *c > 0),
        "both workers must serve: {workers:?}"
    );

    let text = envoy.prometheus().unwrap();
    let got: BTreeMap<(String, String, String), f64> = family(&text, "istio_get_calls")
        .into_iter()
        .map(|(l, v)| {
            assert_eq!(
                l.keys().collect::<Vec<_>>(),
                DEFAULT_LABELS.iter().collect::<Vec<_>>()
            );
            (
                (
                    l["request_operation"].clone(),
                    l["response_code"].clone(),
                    l["destination_service"].clone(),
                ),
                v,
            )
        })
        .collect();
    let want: BTreeMap<(String, String, String), f64> = [
        (("GetBook", "200"), 30.0),
        (("GetBook", "404"), 10.0),
        (("ListBooks", "200"), 40.0),
        (("unknown", "200"), 20.0),
    ]
    .into_iter()
    .map(|((op, code), n)| ((op.into(), code.into(), "upstream".into()), n))
    .collect();
    assert_eq!(got, want, "{text}");
    // Nothing left in the name, no envoy_ prefix, no untagged leftovers.
    assert!(
        !text.contains("request_operation_"),
        "tag text left in a name:\n{text}"
    );
    assert!(!text.contains("envoy_istio_get_calls"));
    assert!(text.contains("# TYPE istio_get_calls counter"));
    assert_eq!(envoy.stat(CONFIG_ERRORS).unwrap(), Some(0));
    assert_eq!(envoy.stat(RUNTIME_ERRORS).unwrap(), Some(0));
    assert_eq!(
        envoy
            .stat("wasmcustom.istio_get_calls_overflow_total")
            .unwrap(),
        Some(0)
    );
}

/// Label values from a client (headers, paths, CEL literals with separators,
/// quotes, backslashes, newlines, 10 kB) stay well-formed and bounded; past
/// the series cap the total stays exact; a real Prometheus accepts the
/// scrape.
#[test]
fn hostile_label_values_stay_well_formed_and_bounded() {
    if !envoy_harness::requires_wasm(
        "hostile_label_values_stay_well_formed_and_bounded",
        "it reads the Wasm runtime's tag-encoded stat names (`wasmcustom.<metric>.<label>.<value>…`); the module's series are real stat tags, checked by tests/dynamic_module.rs",
    ) {
        return;
    }
    let config = json!({ "metrics": [
        { "name": "hostile_calls",
          "dimensions": {
              "header": "request.headers['x-label']",
              "literal": "'a\"b\\\\c\\nd;.;e=.=f\\u00e9'"
          } },
        { "name": "path_calls", "max_series": 100,
          "dimensions": { "path": "request.url_path" } }
    ]});
    let envoy = with_tags(
        Envoy::builder()
            .filter(Wasm::new("get_calls").config(config.to_string()))
            .concurrency(2)
            .exact_balance()
            .hcm("max_request_headers_kb", json!(128))
            .hcm(
                "common_http_protocol_options",
                json!({ "max_headers_count": 500 }),
            ),
        &["header", "literal", "path"],
    );
    let envoy = ISTIO_EXTRACTORS
        .iter()
        .fold(envoy, |b, (t, r)| b.stats_tag(t, r))
        .start()
        .unwrap();

    let big = "x".repeat(10 * 1024);
    let hostile = [
        "a;.;path=.=forged",
        "x=.=y",
        "\"quoted\"",
        "back\\slash",
        "..",
        "ünï€ode",
        "tab\there",
        "} 999\n",
        // Words Istio's bootstrap extracts unanchored.
        "cache.a.b",
        "xcomponent.x.y",
        "tag.q",
        "a.shadow_allowed",
        "rbac.denied",
        "wasm_filter.z.k",
        big.as_str(),
    ];
    for h in hostile {
        let v = h.trim_end_matches('\n'); // a header cannot carry a newline
        let r = envoy
            .request("GET", "/h")
            .header("x-label", v)
            .send()
            .unwrap();
        assert_eq!(r.status, 200, "{h:?}");
    }
    let big_seen = envoy
        .upstream()
        .received()
        .iter()
        .any(|r| r.header("x-label").is_some_and(|v| v.len() == big.len()));
    assert!(
        big_seen,
        "the 10 kB header must reach the filter and upstream"
    );

    // 10,000 distinct paths as a dimension; the cap is 100.
    let paths: Vec<(&str, String, u16, usize)> = (0..10_000)
        .map(|i| ("GET", format!("/p/{i}"), 200, 1))
        .collect();
    send_all(&envoy, &paths, 8);
    let total = hostile.len() + 10_000;
    envoy
        .wait_access_log_len(total, Duration::from_secs(20))
        .unwrap();
    assert_eq!(envoy.upstream().received().len(), total);
    let workers = worker_connections(&envoy);
    assert!(workers.iter().all(|c| *c > 0), "{workers:?}");

    let text = envoy.prometheus().unwrap();
    let allowed = |v: &str| {
        v.len() <= 64
            && v.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"_-./:@~+".contains(&c))
            && !v.contains("..")
    };
    // Every hostile value gets its own well-formed series with both labels.
    let hostile_series = family(&text, "hostile_calls");
    let counted: f64 = hostile_series.iter().map(|(_, v)| v).sum();
    assert_eq!(counted as usize, total, "{hostile_series:?}");
    for (labels, _) in &hostile_series {
        assert_eq!(labels.keys().collect::<Vec<_>>(), ["header", "literal"]);
        assert!(labels.values().all(|v| allowed(v)), "{labels:?}");
        assert_eq!(labels["literal"], "a_b_c_d_._e_._f_");
    }
    assert!(hostile_series
        .iter()
        .any(|(l, _)| l["header"] == "a_._path_._forged"));
    assert!(hostile_series
        .iter()
        .any(|(l, _)| l["header"] == "x".repeat(64)));
    assert!(hostile_series.iter().any(|(l, _)| l["header"] == "unknown")); // no header
                                                                           // The cap: 100 paths plus overflow, total exact.
    let path_series = family(&text, "path_calls");
    // "/h" (sent first) and 99 of the paths get series; the rest overflow.
    assert_eq!(path_series.len(), 100 + 1, "{path_series:?}");
    let sum: f64 = path_series.iter().map(|(_, v)| v).sum();
    assert_eq!(sum as usize, total);
    let overflow = path_series
        .iter()
        .find(|(l, _)| l["path"] == "overflow")
        .map(|(_, v)| *v as u64)
        .unwrap();
    assert_eq!(
        envoy.stat("wasmcustom.path_calls_overflow_total").unwrap(),
        Some(overflow)
    );
    assert_eq!(overflow as usize, 10_000 - 99);
    assert!(path_series.iter().all(|(l, _)| allowed(&l["path"])));
    // No stat name carries a forged or extra separator.
    let stats = envoy.admin_get("/stats?filter=hostile_calls").unwrap();
    for line in stats.lines() {
        let name = line.split(": ").next().unwrap_or_default();
        if name.ends_with("_overflow_total") {
            continue;
        }
        assert_eq!(name.matches("=.=").count(), 2, "{name}");
        assert_eq!(name.matches(";.;").count(), 2, "{name}");
    }
    // A real Prometheus scrapes it without error.
    let prom = Prometheus::scrape(&envoy).unwrap();
    let r = prom
        .wait_for("sum(path_calls)", Duration::from_secs(20), |r| {
            r.first().is_some_and(|s| sample(s).1 as usize == total)
        })
        .unwrap();
    assert_eq!(r.len(), 1);
    let targets = prom.targets().unwrap();
    assert_eq!(targets[0]["health"], "up", "{targets:?}");
    assert_eq!(targets[0]["lastError"], "", "{targets:?}");
    let n = prom.query("count(path_calls)").unwrap();
    assert_eq!(sample(&n[0]).1 as usize, path_series.len());
}

/// A real Prometheus scrapes Envoy; PromQL gives the count per operation;
/// a histogram shows an exact `_count` and plausible buckets and `_sum`.
#[test]
fn prometheus_promql_per_operation_and_histogram() {
    if !envoy_harness::requires_wasm(
        "prometheus_promql_per_operation_and_histogram",
        "int(request.headers[…]) is outside the dynamic module's native CEL subset",
    ) {
        return;
    }
    let config = json!({ "metrics": [
        { "name": "istio_get_calls",
          "condition": "request.method == 'GET'",
          "dimensions": { "request_operation": "istio_operationId",
                          "response_code": "string(response.code)" } },
        { "name": "book_request_size", "type": "HISTOGRAM",
          "value": "int(request.headers['x-size'])",
          "condition": "'x-size' in request.headers",
          "dimensions": { "request_operation": "istio_operationId" } }
    ]});
    let envoy = with_tags(
        Envoy::builder()
            .filter(Wasm::new("attributegen").config(OPERATIONS))
            .filter(Wasm::new("get_calls").config(config.to_string()))
            .concurrency(2)
            .exact_balance(),
        &["request_operation", "response_code"],
    )
    .start()
    .unwrap();
    let prom = Prometheus::scrape(&envoy).unwrap();
    let plan = [
        ("GET", "/books".to_string(), 200, 12),
        ("GET", "/books/1".to_string(), 200, 7),
        ("GET", "/nowhere".to_string(), 404, 3),
        ("POST", "/books".to_string(), 201, 4),
    ];
    send_all(&envoy, &plan, 4);
    // Histogram samples: 10 × 3, 10 × 30, 10 × 300 on ListBooks.
    for (size, n) in [(3, 10), (30, 10), (300, 10)] {
        for _ in 0..n {
            let r = envoy
                .request("GET", "/books")
                .header("x-size", &size.to_string())
                .send()
                .unwrap();
            assert_eq!(r.status, 200);
        }
    }
    envoy
        .wait_access_log_len(56, Duration::from_secs(10))
        .unwrap();

    let by_op = prom
        .wait_for(
            "sum by (request_operation) (istio_get_calls)",
            Duration::from_secs(30),
            |r| {
                let m: BTreeMap<String, f64> = r
                    .iter()
                    .map(|s| {
                        let (l, v) = sample(s);
                        (l["request_operation"].as_str().unwrap_or("").to_string(), v)
                    })
                    .collect();
                m.get("ListBooks") == Some(&42.0)
                    && m.get("GetBook") == Some(&7.0)
                    && m.get("unknown") == Some(&3.0)
                    && m.len() == 3
            },
        )
        .unwrap();
    assert_eq!(by_op.len(), 3);
    // One series per label set, labels exactly as declared.
    let series = prom.query("istio_get_calls").unwrap();
    for s in &series {
        let (labels, _) = sample(s);
        let keys: Vec<&String> = labels.keys().collect();
        assert_eq!(
            keys,
            [
                "__name__",
                "instance",
                "job",
                "request_operation",
                "response_code"
            ],
            "{s}"
        );
    }
    let not_found = prom
        .query(r#"istio_get_calls{request_operation="unknown",response_code="404"}"#)
        .unwrap();
    assert_eq!(sample(&not_found[0]).1, 3.0);

    // Histogram: exact count, plausible sum (Envoy's histograms are
    // approximate) and buckets, after a stats flush (1 s in the harness).
    let count = prom
        .wait_for(
            r#"book_request_size_count{request_operation="ListBooks"}"#,
            Duration::from_secs(30),
            |r| r.first().is_some_and(|s| sample(s).1 == 30.0),
        )
        .unwrap();
    assert_eq!(count.len(), 1);
    let sum = sample(
        &prom
            .query(r#"book_request_size_sum{request_operation="ListBooks"}"#)
            .unwrap()[0],
    )
    .1;
    assert!((sum - 3330.0).abs() < 3330.0 * 0.05, "sum {sum}");
    let buckets: BTreeMap<String, f64> = prom
        .query(r#"book_request_size_bucket{request_operation="ListBooks"}"#)
        .unwrap()
        .iter()
        .map(|s| {
            let (l, v) = sample(s);
            (l["le"].as_str().unwrap_or("").to_string(), v)
        })
        .collect();
    assert_eq!(buckets.get("5"), Some(&10.0), "{buckets:?}");
    assert_eq!(buckets.get("50"), Some(&20.0), "{buckets:?}");
    assert_eq!(buckets.get("500"), Some(&30.0), "{buckets:?}");
    assert_eq!(buckets.get("+Inf"), Some(&30.0), "{buckets:?}");
    let p50 = prom
        .query(r#"histogram_quantile(0.5, sum by (le) (book_request_size_bucket))"#)
        .unwrap();
    let p50 = sample(&p50[0]).1;
    assert!((25.0..=50.0).contains(&p50), "p50 {p50}");
}

/// A bad configuration never breaks traffic: one line naming the metric
/// and field, counted; the good metrics keep working.
#[test]
fn bad_config_is_logged_counted_and_never_breaks_traffic() {
    if !envoy_harness::requires_wasm(
        "bad_config_is_logged_counted_and_never_breaks_traffic",
        "a bad configuration runs and is counted; the dynamic module rejects it (tests/dynamic_module.rs)",
    ) {
        return;
    }
    let config = r#"{"metrics":[
        {"name":"ok_calls"},
        {"name":"broken","dimensions":{"op":"request.path +"}},
        {"name":"typo","dimension":{}}]}"#;
    let envoy = Envoy::builder()
        .filter(Wasm::new("get_calls").config(config))
        .start()
        .unwrap();
    for _ in 0..3 {
        assert_eq!(envoy.get("/x").unwrap().status, 200);
    }
    envoy
        .wait_access_log_len(3, Duration::from_secs(10))
        .unwrap();
    assert_eq!(envoy.stat("wasmcustom.ok_calls").unwrap(), Some(3));
    assert!(envoy.stat(CONFIG_ERRORS).unwrap().unwrap_or(0) >= 1);
    let lines: Vec<String> = envoy
        .wasm_log_lines()
        .into_iter()
        .filter(|l| l.contains("Config Error"))
        .collect();
    assert!(
        lines.iter().any(
            |l| l.starts_with("get_calls: Config Error: metrics[1].dimensions.op:")
                && l.contains("\"broken\"")
        ),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(
            |l| l.starts_with("get_calls: Config Error: metrics[2].dimension:")
                && l.contains("\"typo\"")
        ),
        "{lines:?}"
    );
    // Unparseable JSON: logged, counted, traffic flows.
    let envoy = Envoy::builder()
        .filter(Wasm::new("get_calls").config("metrics: [x]"))
        .start()
        .unwrap();
    assert_eq!(envoy.get("/x").unwrap().status, 200);
    envoy
        .wait_for_log(
            "get_calls: Config Error: $: invalid JSON",
            Duration::from_secs(5),
        )
        .unwrap();
}

/// Under Istio the default `destination_service` is the service host from
/// the cluster's `istio.services` metadata (as istiod's `addTelemetryMetadata`
/// writes it); a cluster with `istio` metadata but no services, or none at
/// all, gives the cluster name. Clusters shaped like Istio's, routed to by an
/// overridden route table; a direct response (no cluster) gives `unknown`,
/// as Envoy's CEL does.
#[test]
fn default_destination_service_reads_istio_cluster_metadata() {
    if !envoy_harness::requires_wasm(
        "default_destination_service_reads_istio_cluster_metadata",
        "the dynamic-module ABI cannot walk cluster metadata lists; the label is the cluster name",
    ) {
        return;
    }
    let backend = envoy_harness::Upstream::start().unwrap();
    let reviews = "outbound|9080||reviews.default.svc.cluster.local";
    let ratings = "outbound|9080||ratings.default.svc.cluster.local";
    let cluster = |name: &str, istio: Value| {
        json!({
            "name": name,
            "type": "STATIC",
            "connect_timeout": "1s",
            "metadata": { "filter_metadata": { "istio": istio } },
            "load_assignment": { "cluster_name": name, "endpoints": [{ "lb_endpoints": [
                { "endpoint": { "address": { "socket_address": {
                    "address": "127.0.0.1", "port_value": backend.port() } } } } ] }] },
        })
    };
    let route = |prefix: &str, cluster: &str| json!({ "match": { "prefix": prefix }, "route": { "cluster": cluster, "timeout": "10s" } });
    let envoy = with_tags(
        Envoy::builder()
            .filter(Wasm::new("get_calls"))
            // Envoy logs each host call: counts the CEL evaluations below.
            .component_log_level("wasm:trace")
            .cluster(cluster(
                reviews,
                json!({ "services": [{ "host": "reviews.default.svc.cluster.local",
                                       "name": "reviews", "namespace": "default" }] }),
            ))
            .cluster(cluster(
                ratings,
                json!({ "config": "/apis/networking.istio.io/v1/namespaces/default/destination-rule/ratings" }),
            ))
            .hcm(
                "route_config",
                json!({ "name": "local", "virtual_hosts": [{ "name": "all", "domains": ["*"],
                    "routes": [route("/reviews", reviews), route("/ratings", ratings),
                               json!({ "match": { "prefix": "/direct" }, "direct_response": { "status": 200 } }),
                               route("/", "upstream")] }] }),
            ),
        &DEFAULT_LABELS,
    )
    .start()
    .unwrap();
    let skip = envoy.log().lines().count();
    for path in [
        "/reviews/1",
        "/reviews/2",
        "/ratings/1",
        "/plain",
        "/direct",
    ] {
        assert_eq!(envoy.get(path).unwrap().status, 200, "{path}");
    }
    envoy
        .wait_access_log_len(5, Duration::from_secs(10))
        .unwrap();
    // The default destination_service is read with get_property, never
    // evaluated by Envoy's CEL: at most the condition `request.method ==
    // 'GET'` is (once per request, in a module without native CEL).
    let log = envoy.log();
    let evaluations = log
        .lines()
        .skip(skip)
        .filter(|l| {
            l.contains("[vm->host]")
                && l.contains("proxy_call_foreign_function")
                && !l.contains("return:")
        })
        .count();
    assert!(
        evaluations <= 5,
        "{evaluations} CEL evaluations for 5 requests"
    );
    assert_eq!(backend.received().len(), 3);
    let text = envoy.prometheus().unwrap();
    let got: BTreeMap<String, f64> = family(&text, "istio_get_calls")
        .into_iter()
        .map(|(l, v)| {
            assert_eq!(l["request_operation"], "unknown");
            (l["destination_service"].clone(), v)
        })
        .collect();
    let want: BTreeMap<String, f64> = [
        ("reviews.default.svc.cluster.local", 2.0),
        // '|' is not allowed in a label value: sanitised to '_'.
        ("outbound_9080__ratings.default.svc.cluster.local", 1.0),
        ("upstream", 1.0),
        // A direct response has no cluster: Envoy's CEL gives an error.
        ("unknown", 1.0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(got, want, "{text}");
    assert_eq!(envoy.stat(RUNTIME_ERRORS).unwrap(), Some(0));
}

fn manifest_dir() -> std::path::PathBuf {
    envoy_harness::paths::workspace_root().join("envoyfilter-manifests/get-calls")
}

fn yaml_docs(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// Label names of every metric of a get-calls configuration.
fn labels_of(config: &Value) -> Vec<String> {
    let mut out: Vec<String> = config["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|m| m["dimensions"].as_object().cloned().unwrap_or_default())
        .map(|(k, _)| k)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The get-calls configurations in the manifests compile without a single
/// error, and the labels they use are exactly the ones extracted by the
/// bootstrap snippet and by the Istio extraStatTags.
#[test]
fn manifest_configs_compile_and_tags_cover_their_labels() {
    use filter_common::fake::FakeHost;
    let check = |raw: &str| {
        let (plan, errors) = get_calls::plan::compile(
            filter_common::config::ConfigSource::Raw(Some(raw.as_bytes())),
            &FakeHost::new(),
        );
        assert!(errors.is_empty(), "{raw}: {errors:?}");
        assert!(!plan.is_empty(), "{raw}");
    };
    // Istio: WasmPlugin pluginConfig; labels == extraStatTags.
    let plugin = &yaml_docs(&manifest_dir().join("wasmplugin.yaml"))[0];
    let config = &plugin["spec"]["pluginConfig"];
    check(&config.to_string());
    let mesh = &yaml_docs(&manifest_dir().join("mesh-config.yaml"))[0];
    let mut extra: Vec<String> = mesh["spec"]["meshConfig"]["defaultConfig"]["extraStatTags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    extra.sort();
    assert_eq!(labels_of(config), extra);
    assert_eq!(extra, DEFAULT_LABELS);
    // Plain Envoy: the get_calls StringValue; labels == stats_tags, whose
    // regexes are exactly the documented ones.
    let filters = &yaml_docs(&manifest_dir().join("envoy-http-filter.yaml"))[0];
    let raw = filters
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["typed_config"]["config"]["name"] == "get_calls")
        .map(|f| {
            f["typed_config"]["config"]["configuration"]["value"]
                .as_str()
                .unwrap()
        })
        .unwrap();
    check(raw);
    let used = labels_of(&serde_json::from_str(raw).unwrap());
    let tags = &yaml_docs(&manifest_dir().join("envoy-stats-tags.yaml"))[0];
    let mut names = Vec::new();
    for t in tags["stats_config"]["stats_tags"].as_array().unwrap() {
        let name = t["tag_name"].as_str().unwrap();
        assert_eq!(t["regex"].as_str().unwrap(), tag_regex(name));
        names.push(name.to_string());
    }
    names.sort();
    assert_eq!(used, names);
}

/// The plain-Envoy snippets as written (module directory aside): the HTTP
/// filters and the bootstrap stats_tags give labelled series, counter and
/// histogram.
#[test]
fn plain_envoy_snippets_give_labelled_series() {
    let wasm_dir = envoy_harness::paths::wasm_dir();
    let text = std::fs::read_to_string(manifest_dir().join("envoy-http-filter.yaml"))
        .unwrap()
        .replace("/etc/envoy/wasm", &wasm_dir.to_string_lossy());
    let filters: Vec<Value> = serde_yaml_ng::from_str(&text).unwrap();
    let mut b = Envoy::builder().concurrency(2);
    for f in filters {
        b = b.filter(f);
    }
    let tags = &yaml_docs(&manifest_dir().join("envoy-stats-tags.yaml"))[0];
    for t in tags["stats_config"]["stats_tags"].as_array().unwrap() {
        b = b.stats_tag(
            t["tag_name"].as_str().unwrap(),
            t["regex"].as_str().unwrap(),
        );
    }
    let envoy = b.start().unwrap();
    for (path, n) in [("/books", 3), ("/books/1", 2)] {
        for _ in 0..n {
            assert_eq!(envoy.get(path).unwrap().status, 200);
        }
    }
    assert_eq!(envoy.request("POST", "/books").send().unwrap().status, 200);
    envoy
        .wait_access_log_len(6, Duration::from_secs(10))
        .unwrap();
    let text = envoy.prometheus().unwrap();
    let got: BTreeMap<String, f64> = family(&text, "istio_get_calls")
        .into_iter()
        .map(|(l, v)| {
            assert_eq!(l["destination_service"], "upstream");
            assert_eq!(l["response_code"], "200");
            (l["request_operation"].clone(), v)
        })
        .collect();
    assert_eq!(
        got,
        BTreeMap::from([("GetBook".to_string(), 2.0), ("ListBooks".to_string(), 3.0)])
    );
    // The histogram appears after a stats flush (1 s in the harness).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = envoy.prometheus().unwrap();
        let counts: BTreeMap<String, f64> = family(&text, "book_response_bytes_count")
            .into_iter()
            .map(|(l, v)| (l["request_operation"].clone(), v))
            .collect();
        // POST counts too (no condition): operation unknown.
        if counts
            == BTreeMap::from([
                ("GetBook".to_string(), 2.0),
                ("ListBooks".to_string(), 3.0),
                ("unknown".to_string(), 1.0),
            ])
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{counts:?}\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The validate command covers get-calls: errors with their field and the
/// CEL parser's position, exit code 1; a valid configuration exits 0.
#[test]
fn validate_command_reports_get_calls_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"metrics":[{"name":"ok_calls"},
            {"name":"broken","dimensions":{"op":"request.path +"}},
            {"name":"gauge","type":"GAUGE"}]}"#,
    )
    .unwrap();
    let good = dir.path().join("good.json");
    let plugin = &yaml_docs(&manifest_dir().join("wasmplugin.yaml"))[0];
    std::fs::write(&good, plugin["spec"]["pluginConfig"].to_string()).unwrap();
    let run = |file: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_validate-config"))
            .env_remove("DYNAMIC_MODULE")
            .args(["--filter", "get-calls"])
            .arg(file)
            .output()
            .unwrap()
    };
    let out = run(&bad);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("metrics[1].dimensions.op: metric \"broken\""),
        "{stdout}"
    );
    assert!(stdout.contains("CEL parser:"), "{stdout}");
    assert!(stdout.contains("metrics[2].type: GAUGE"), "{stdout}");
    assert!(stdout.contains("INVALID (2 problems)"), "{stdout}");
    let out = run(&good);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A new configuration while traffic flows (file-based ECDS): counts stay
/// exact, and the series registry outlives the configuration, so label sets
/// admitted before count against the new cap.
#[test]
fn reconfiguration_keeps_counts_and_the_series_registry() {
    if !envoy_harness::requires_wasm(
        "reconfiguration_keeps_counts_and_the_series_registry",
        "Envoy drops a dynamic-module configuration's stats with it: series not updated since a reconfiguration vanish",
    ) {
        return;
    }
    let config = |max: u32, extra: bool| {
        let mut metrics = vec![json!({ "name": "recfg_calls", "max_series": max,
                                       "dimensions": { "path": "request.url_path" } })];
        if extra {
            metrics.push(json!({ "name": "recfg_total" }));
        }
        json!({ "metrics": metrics }).to_string()
    };
    let envoy = with_tags(
        Envoy::builder()
            .filter(Wasm::new("get_calls").config(config(5, false)).dynamic())
            .concurrency(2),
        &["path"],
    )
    .start()
    .unwrap();
    for i in 0..10 {
        assert_eq!(envoy.get(&format!("/a/{i}")).unwrap().status, 200);
    }
    envoy
        .wait_access_log_len(10, Duration::from_secs(10))
        .unwrap();
    let applied = envoy
        .update_wasm(&Wasm::new("get_calls").config(config(8, true)).dynamic())
        .unwrap();
    assert!(applied, "{}", envoy.log());
    for i in 0..10 {
        assert_eq!(envoy.get(&format!("/b/{i}")).unwrap().status, 200);
    }
    envoy
        .wait_access_log_len(20, Duration::from_secs(10))
        .unwrap();
    let text = envoy.prometheus().unwrap();
    let series = family(&text, "recfg_calls");
    let sum: f64 = series.iter().map(|(_, v)| v).sum();
    assert_eq!(sum, 20.0, "{series:?}");
    // 5 admitted under the first configuration, 3 more under the second.
    assert_eq!(series.len(), 8 + 1, "{series:?}");
    let overflow = series
        .iter()
        .find(|(l, _)| l["path"] == "overflow")
        .map(|(_, v)| *v);
    assert_eq!(overflow, Some(12.0));
    assert_eq!(
        envoy.stat("wasmcustom.recfg_calls_overflow_total").unwrap(),
        Some(12)
    );
    assert_eq!(envoy.stat("wasmcustom.recfg_total").unwrap(), Some(10));
}
