//! The filters' outputs over Envoy's gRPC access-log and metrics services,
//! through a real Envoy and the real `grpc-collector` process: every log
//! entry arrives exactly once with its operation id; across a collector
//! restart Envoy reconnects, what is sent afterwards arrives and the loss
//! shows in Envoy's counters; a stalled collector makes Envoy drop entries
//! and count them in `logs_dropped`; the metrics stream carries
//! `istio_get_calls` with the counts `/stats/prometheus` shows.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use envoy_harness::grpc_sinks::{self, GrpcCollector, LOGS_DROPPED, LOGS_WRITTEN};
use envoy_harness::process::poll;
use envoy_harness::{Envoy, EnvoyBuilder, Wasm};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

const CLUSTER: &str = "grpc_collector";
const OPERATION: &str = "wasm.istio_operationId";
const LABELS: [&str; 3] = ["destination_service", "request_operation", "response_code"];
/// Envoy's upstream counters of the collector's cluster that show a stream
/// that could not be opened (collector down), verified on Envoy 1.40.
const CONNECT_FAIL: &str = "cluster.grpc_collector.upstream_cx_connect_fail";
const STREAMS_FAILED: &str = "cluster.grpc_collector.upstream_rq_pending_failure_eject";
/// Entries handed to a gRPC stream (also when that stream then fails).
const FLUSHED: &str = "access_logs.grpc_access_log.grpc_entries_flushed";

const OPERATIONS: &str = r#"{"attributes":[{"output_attribute":"istio_operationId","match":[
  {"value":"ListBooks","condition":"request.url_path == '/books' && request.method == 'GET'"},
  {"value":"GetBook","condition":"request.url_path.matches('^/books/[[:alnum:]]*$') && request.method == 'GET'"}]}]}"#;

/// attributegen → get_calls, the gRPC access logger (operation id, test id)
/// and get_calls' labels as tags.
fn builder(collector: &GrpcCollector) -> EnvoyBuilder {
    let mut b = Envoy::builder()
        .filter(Wasm::new("attributegen").config(OPERATIONS))
        .filter(Wasm::new("get_calls"))
        .log_attribute("istio_operationId")
        .cluster(grpc_sinks::cluster(CLUSTER, collector.port()))
        .access_logger(grpc_sinks::http_grpc_access_logger(
            CLUSTER,
            "filters",
            &["istio_operationId"],
            &["x-test-id"],
        ));
    for l in LABELS {
        b = b.stats_tag(l, &format!(r"({l}=\.=(.*?);\.;)"));
    }
    b
}

fn stat(envoy: &Envoy, name: &str) -> u64 {
    envoy.stat(name).unwrap().unwrap_or(0)
}

/// Polls `cond` every 25 ms for up to 10 s: whether it came to hold.
fn within_10s(mut cond: impl FnMut() -> bool) -> bool {
    poll(Duration::from_secs(10), Duration::from_millis(25), || {
        cond().then_some(())
    })
    .is_some()
}

/// Waits until an Envoy counter reaches `n`.
fn wait_counter(envoy: &Envoy, name: &str, n: u64) {
    assert!(
        within_10s(|| stat(envoy, name) >= n),
        "{name} stays at {} < {n}",
        stat(envoy, name)
    );
}

/// Sends a mix of requests: with an operation id (ListBooks, GetBook) and
/// without (other paths, POST). Returns test id → expected operation id.
fn send_mix(envoy: &Envoy, n: usize, tag: &str) -> BTreeMap<String, Option<&'static str>> {
    let mut sent = BTreeMap::new();
    for i in 0..n {
        let (method, path, op) = match i % 4 {
            0 => ("GET", "/books".to_string(), Some("ListBooks")),
            1 => ("GET", format!("/books/{tag}{i}"), Some("GetBook")),
            2 => ("GET", format!("/other/{tag}{i}"), None),
            _ => ("POST", "/books".to_string(), None),
        };
        let resp = envoy.request(method, &path).send().unwrap();
        assert_eq!(resp.status, 200);
        sent.insert(resp.test_id.clone(), op);
    }
    sent
}

/// The collector's entries by test id (each entry once per id).
fn by_test_id(entries: &[Value]) -> HashMap<String, Vec<&Value>> {
    let mut out: HashMap<String, Vec<&Value>> = HashMap::new();
    for e in entries {
        if let Some(id) = e["request_headers"]["x-test-id"].as_str() {
            out.entry(id.to_string()).or_default().push(e);
        }
    }
    out
}

/// Every sent request arrived exactly once, with its operation id or none.
fn assert_exactly_once(entries: &[Value], sent: &BTreeMap<String, Option<&str>>) {
    let got = by_test_id(entries);
    for (id, op) in sent {
        let list = got.get(id).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(list.len(), 1, "entry {id} arrived {} times", list.len());
        let e = list[0];
        assert_eq!(
            e["filter_state"][OPERATION].as_str(),
            *op,
            "operation id of {id}: {e}"
        );
        assert!(e["method"] == "GET" || e["method"] == "POST", "{e}");
        assert_eq!(e["response_code"], 200, "{e}");
        assert_eq!(e["log_name"], "filters", "{e}");
    }
}

#[test]
fn steady_state_every_entry_arrives_once_with_its_operation_id() {
    let collector = GrpcCollector::start("").unwrap();
    let envoy = builder(&collector).start().unwrap();
    let sent = send_mix(&envoy, 40, "s");
    let entries = collector
        .wait_access_logs(Duration::from_secs(10), |e| e.len() >= sent.len())
        .unwrap();
    // Two more flush intervals: nothing arrives twice or late.
    std::thread::sleep(Duration::from_millis(300));
    let entries_after = collector.access_logs();
    assert_eq!(entries_after.len(), entries.len());
    assert_exactly_once(&entries_after, &sent);
    // The same operation ids as Envoy's own file access log prints.
    for (id, op) in &sent {
        let line = envoy.access_log_entry_for(id).unwrap();
        assert_eq!(line["attr.istio_operationId"].as_str(), *op, "{line}");
    }
    assert_eq!(stat(&envoy, LOGS_WRITTEN), sent.len() as u64);
    assert_eq!(stat(&envoy, LOGS_DROPPED), 0);
    let with_id = sent.values().filter(|o| o.is_some()).count();
    envoy_harness::report(
        "grpc_sinks_steady",
        &format!(
            "gRPC access log: {} requests ({with_id} with an operation id) → {} entries, each once; {LOGS_WRITTEN}={} {LOGS_DROPPED}=0",
            sent.len(),
            entries_after.len(),
            sent.len()
        ),
    );
}

#[test]
fn collector_restart_loses_only_entries_sent_while_it_was_down() {
    let mut collector = GrpcCollector::start("").unwrap();
    let envoy = builder(&collector).start().unwrap();

    let before = send_mix(&envoy, 8, "a");
    collector
        .wait_access_logs(Duration::from_secs(10), |e| e.len() >= before.len())
        .unwrap();
    let (fails0, streams0) = (stat(&envoy, CONNECT_FAIL), stat(&envoy, STREAMS_FAILED));

    // Down: Envoy still counts the entries as written, and as flushed when it
    // hands them to a new stream on the next flush; that stream cannot
    // connect and fails, and the entries in it are gone.
    collector.kill();
    let down = send_mix(&envoy, 10, "d");
    let upto = (before.len() + down.len()) as u64;
    wait_counter(&envoy, LOGS_WRITTEN, upto);
    wait_counter(&envoy, FLUSHED, upto);
    wait_counter(&envoy, CONNECT_FAIL, fails0 + 1);
    wait_counter(&envoy, STREAMS_FAILED, streams0 + 1);
    // No stream to the collector is left pending with entries in it.
    assert!(
        within_10s(|| {
            stat(&envoy, "cluster.grpc_collector.upstream_rq_active") == 0
                && stat(&envoy, "cluster.grpc_collector.upstream_rq_pending_active") == 0
        }),
        "a stream to the collector stays open"
    );

    // Up again, same port: Envoy reconnects on a later flush. Probe until an
    // entry arrives; from then on, everything must arrive.
    collector.restart().unwrap();
    let reconnect = Instant::now();
    let mut probes = BTreeMap::new();
    loop {
        probes.extend(send_mix(&envoy, 1, "p"));
        std::thread::sleep(Duration::from_millis(100));
        let entries = collector.access_logs();
        let got = by_test_id(&entries);
        if probes.keys().any(|id| got.contains_key(id)) {
            break;
        }
        assert!(
            reconnect.elapsed() < Duration::from_secs(15),
            "Envoy did not reconnect"
        );
    }
    let reconnected_after = reconnect.elapsed();
    let after = send_mix(&envoy, 20, "u");
    let total = before.len() + down.len() + probes.len() + after.len();
    wait_counter(&envoy, LOGS_WRITTEN, total as u64);
    let entries = collector
        .wait_access_logs(Duration::from_secs(10), |e| {
            let got = by_test_id(e);
            after.keys().all(|id| got.contains_key(id))
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let now = collector.access_logs();
    let entries = if now.len() >= entries.len() {
        now
    } else {
        entries
    };
    assert_exactly_once(&entries, &before);
    assert_exactly_once(&entries, &after);
    let got = by_test_id(&entries);
    let lost: Vec<&String> = down.keys().filter(|id| !got.contains_key(*id)).collect();
    assert_eq!(
        lost.len(),
        down.len(),
        "entries sent while down arrived: {:?} of {:?}\n{}",
        down.keys()
            .filter(|id| got.contains_key(*id))
            .collect::<Vec<_>>(),
        down.keys().collect::<Vec<_>>(),
        envoy.admin_get("/stats?filter=grpc").unwrap()
    );
    assert!(
        probes
            .keys()
            .all(|id| got.get(id).is_none_or(|l| l.len() == 1)),
        "a probe arrived twice"
    );
    let probes_lost = probes.keys().filter(|id| !got.contains_key(*id)).count();

    // Envoy's counters: every entry counted as written, none as dropped
    // (the buffer never filled); the loss is the streams that failed, and
    // written − received is exactly what was sent while down (+ lost probes).
    let (written, dropped) = (stat(&envoy, LOGS_WRITTEN), stat(&envoy, LOGS_DROPPED));
    let (fails, streams) = (stat(&envoy, CONNECT_FAIL), stat(&envoy, STREAMS_FAILED));
    assert_eq!(written, total as u64);
    assert_eq!(dropped, 0);
    assert!(fails > fails0, "{CONNECT_FAIL} {fails0} → {fails}");
    assert!(
        streams > streams0,
        "{STREAMS_FAILED} {streams0} → {streams}"
    );
    assert_eq!(
        written - entries.len() as u64,
        (down.len() + probes_lost) as u64,
        "written − received"
    );
    envoy_harness::report(
        "grpc_sinks_restart",
        &format!(
            "collector restart: {} sent before, {} while down (all lost), reconnected after {reconnected_after:?} ({} probes, {probes_lost} lost), {} after (all arrived once)\n\
             Envoy: {LOGS_WRITTEN}={written} {LOGS_DROPPED}={dropped} received={} {CONNECT_FAIL} +{} {STREAMS_FAILED} +{}",
            before.len(),
            down.len(),
            probes.len(),
            after.len(),
            entries.len(),
            fails - fails0,
            streams - streams0
        ),
    );
}

/// The series of `name` in the newest snapshot that has them.
fn latest_series(metrics: &[Value], name: &str) -> BTreeMap<BTreeMap<String, String>, f64> {
    let snapshot = metrics
        .iter()
        .filter(|m| m["name"] == name)
        .filter_map(|m| m["snapshot"].as_u64())
        .max();
    metrics
        .iter()
        .filter(|m| m["name"] == name && m["snapshot"].as_u64() == snapshot)
        .map(|m| {
            let labels = m["labels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            (labels, m["value"].as_f64().unwrap())
        })
        .collect()
}

#[test]
fn metrics_stream_carries_get_calls_with_the_counts_prometheus_shows() {
    let collector = GrpcCollector::start("wasmcustom.,access_logs.").unwrap();
    // A second sink without emit_tags_as_labels, to its own collector.
    let raw = GrpcCollector::start("wasmcustom.").unwrap();
    let mut sinks = grpc_sinks::metrics_service_sinks(CLUSTER);
    let mut untagged = grpc_sinks::metrics_service_sinks("grpc_collector_raw");
    untagged[0]["typed_config"]["emit_tags_as_labels"] = json!(false);
    sinks.as_array_mut().unwrap().push(untagged[0].clone());
    let envoy = builder(&collector)
        .cluster(grpc_sinks::cluster("grpc_collector_raw", raw.port()))
        .bootstrap_field("stats_sinks", sinks)
        .start()
        .unwrap();
    for (path, status, n) in [
        ("/books", 200, 3),
        ("/books/b1", 200, 2),
        ("/books/b2", 404, 1),
    ] {
        for _ in 0..n {
            let r = envoy
                .request("GET", path)
                .upstream_status(status)
                .send()
                .unwrap();
            assert_eq!(r.status, status);
        }
    }
    envoy.request("POST", "/books").send().unwrap();
    let prom = envoy_harness::prometheus::family(&envoy.prometheus().unwrap(), "istio_get_calls")
        .into_iter()
        .collect::<BTreeMap<_, _>>();
    let label = |op: &str, code: &str| -> BTreeMap<String, String> {
        [
            ("destination_service", "upstream"),
            ("request_operation", op),
            ("response_code", code),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    let expected: BTreeMap<_, f64> = [
        (label("ListBooks", "200"), 3.0),
        (label("GetBook", "200"), 2.0),
        (label("GetBook", "404"), 1.0),
    ]
    .into_iter()
    .collect();
    assert_eq!(prom, expected, "/stats/prometheus");

    // With tags as labels the family is the tag-extracted name, which keeps
    // Envoy's `wasmcustom.` namespace (the Prometheus page strips it).
    let name = "wasmcustom.istio_get_calls";
    let started = Instant::now();
    collector
        .wait_metrics(Duration::from_secs(10), |m| latest_series(m, name) == prom)
        .unwrap();
    let took = started.elapsed();
    let metrics = collector.metrics();
    let one = metrics.iter().rev().find(|m| m["name"] == name).unwrap();
    assert_eq!(one["type"], "counter");
    assert!(
        !metrics.iter().any(|m| m["name"] == "istio_get_calls"),
        "a family without the prefix"
    );

    // Without (Istio's bootstrap): one family per series, named with the
    // tags encoded and no labels; the collector splits the name back into
    // the same series, keeping the name as sent in "stat".
    // The dynamic module's labels are real stat tags, never encoded names.
    let full = "wasmcustom.destination_service=.=upstream;.;request_operation=.=ListBooks;.;response_code=.=200;.;istio_get_calls";
    if !envoy_harness::dynamic_module_mode() {
        let raw_metrics = raw
            .wait_metrics(Duration::from_secs(10), |m| latest_series(m, name) == prom)
            .unwrap();
        assert!(
            raw_metrics.iter().any(|m| m["stat"] == full),
            "no family named {full}"
        );
    }

    // The access-log counters reach the collector too.
    let written = collector
        .wait_metrics(Duration::from_secs(10), |m| {
            latest_series(m, LOGS_WRITTEN).values().next() == Some(&7.0)
        })
        .map(|m| latest_series(&m, LOGS_WRITTEN));
    assert!(written.is_ok(), "{LOGS_WRITTEN} in the metrics stream");
    envoy_harness::report(
        "grpc_sinks_metrics",
        &format!(
            "metrics service: {name} series = /stats/prometheus istio_get_calls ({} series) within {took:?}; without emit_tags_as_labels the families are named like {full}",
            prom.len()
        ),
    );
}

/// The bootstrap pieces of `envoyfilter-manifests/grpc-collector/` run as
/// written (collector address aside) and deliver entries and metrics.
#[test]
fn manifest_bootstrap_pieces_deliver() {
    let collector = GrpcCollector::start("wasmcustom.").unwrap();
    let path = envoy_harness::paths::workspace_root()
        .join("envoyfilter-manifests/grpc-collector/envoy-grpc-sinks.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("address: grpc-collector,", "address: 127.0.0.1,")
        .replace(
            "port_value: 18000",
            &format!("port_value: {}", collector.port()),
        )
        .replace("buffer_flush_interval: 1s", "buffer_flush_interval: 0.1s");
    let doc: Value = serde_yaml_ng::from_str(&text).unwrap();
    let mut b = Envoy::builder()
        .filter(Wasm::new("attributegen").config(OPERATIONS))
        .filter(Wasm::new("get_calls"))
        .bootstrap_field("stats_sinks", doc["stats_sinks"].clone());
    for c in doc["clusters"].as_array().unwrap() {
        b = b.cluster(c.clone());
    }
    for l in doc["access_log"].as_array().unwrap() {
        b = b.access_logger(l.clone());
    }
    let envoy = b.start().unwrap();
    let resp = envoy
        .request("GET", "/books")
        .header("x-request-id", "manifest-1")
        .send()
        .unwrap();
    assert_eq!(resp.status, 200);
    let entries = collector
        .wait_access_logs(Duration::from_secs(10), |e| !e.is_empty())
        .unwrap();
    assert_eq!(entries[0]["filter_state"][OPERATION], "ListBooks");
    assert_eq!(entries[0]["request_headers"]["x-request-id"], "manifest-1");
    assert_eq!(entries[0]["log_name"], "telemetry-filters");
    collector
        .wait_metrics(Duration::from_secs(10), |m| {
            m.iter().any(|s| {
                s["name"] == "wasmcustom.istio_get_calls"
                    && s["labels"]["request_operation"] == "ListBooks"
            })
        })
        .unwrap();
}

/// A collector that stops reading (SIGSTOP) backs the stream up; once
/// Envoy's buffer is full, further entries are dropped and counted in
/// `logs_dropped`. After it resumes, the stream drains: the collector gets
/// exactly the entries Envoy counted as written, and every request is either
/// written or dropped.
#[test]
fn stalled_collector_shows_in_logs_dropped() {
    let collector = GrpcCollector::start("").unwrap();
    let mut cluster = grpc_sinks::cluster(CLUSTER, collector.port());
    cluster["per_connection_buffer_limit_bytes"] = json!(16384);
    let mut logger = grpc_sinks::http_grpc_access_logger(
        CLUSTER,
        "filters",
        &["istio_operationId"],
        &["x-test-id", "x-padding"],
    );
    logger["typed_config"]["common_config"]["buffer_size_bytes"] = json!(16384);
    let envoy = Envoy::builder()
        .filter(Wasm::new("attributegen").config(OPERATIONS))
        .cluster(cluster)
        .access_logger(logger)
        .start()
        .unwrap();
    let first = send_mix(&envoy, 4, "a");
    collector
        .wait_access_logs(Duration::from_secs(10), |e| e.len() >= first.len())
        .unwrap();

    collector.pause(true);
    let started = Instant::now();
    let padding = "x".repeat(16 * 1024);
    let mut sent = first.len() as u64;
    while stat(&envoy, LOGS_DROPPED) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "nothing dropped after {sent} requests"
        );
        for _ in 0..20 {
            let r = envoy
                .request("GET", "/books")
                .header("x-padding", &padding)
                .send()
                .unwrap();
            assert_eq!(r.status, 200);
            sent += 1;
        }
    }
    let stalled_for = started.elapsed();
    collector.pause(false);

    // Drained: the collector gets exactly what Envoy counted as written.
    wait_counter_sum(&envoy, sent);
    let (written, dropped) = (stat(&envoy, LOGS_WRITTEN), stat(&envoy, LOGS_DROPPED));
    collector
        .wait_access_logs(Duration::from_secs(20), |e| e.len() as u64 >= written)
        .unwrap();
    assert_eq!(written + dropped, sent, "written + dropped = requests");
    assert!(dropped > 0);
    // From then on nothing is dropped again.
    let after = send_mix(&envoy, 8, "r");
    sent += after.len() as u64;
    wait_counter_sum(&envoy, sent);
    let entries = collector
        .wait_access_logs(Duration::from_secs(10), |e| e.len() as u64 >= written + 8)
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(collector.access_logs().len(), entries.len());
    assert_exactly_once(&entries, &after);
    assert_eq!(stat(&envoy, LOGS_DROPPED), dropped);
    let written = stat(&envoy, LOGS_WRITTEN);
    assert_eq!(entries.len() as u64, written, "received = {LOGS_WRITTEN}");
    envoy_harness::report(
        "grpc_sinks_stalled",
        &format!(
            "stalled collector (SIGSTOP, {stalled_for:?}): {sent} requests, {LOGS_WRITTEN}={written} (all received after SIGCONT), {LOGS_DROPPED}={dropped} (= requests − received)"
        ),
    );
}

/// Waits until every request is accounted for as written or dropped.
fn wait_counter_sum(envoy: &Envoy, n: u64) {
    assert!(
        within_10s(|| stat(envoy, LOGS_WRITTEN) + stat(envoy, LOGS_DROPPED) >= n),
        "written + dropped < {n}"
    );
}
