//! The generated `envoyfilter-manifests/monitoring/prometheusrule.yaml`:
//! `promtool` accepts its rules, and a real Prometheus scraping a real Envoy
//! answers its expressions as the README says: the "filter skipped" alert
//! fires once a VM trapped under `FAIL_OPEN` (the test-only fault-injecting
//! build), the "configuration rejected" alert for a proxy started with a bad
//! configuration. The metric names are those Istio's `wasm_filter` tag
//! extractor gives; Envoy's own request counter stands in for `istio.stats`'
//! `istio_requests_total` (no `istio.stats` here), and the skipped alert's
//! 5-minute windows are shortened to 5 seconds.

use envoy_harness::paths::workspace_root;
use envoy_harness::{Envoy, HttpFilter, Prometheus, Wasm};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Istio's fixed extractor (`tools/packaging/common/envoy_bootstrap.json`).
const WASM_FILTER_TAG: &str = "(wasm_filter\\.(.+?)\\.)";
const CONFIG: &str = r#"{"attributes":[{"output_attribute":"op","match":[{"value":"seen"}]}]}"#;

fn rules() -> Value {
    let path = workspace_root().join("envoyfilter-manifests/monitoring/prometheusrule.yaml");
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn expr(alert: &str) -> String {
    rules()["spec"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["alert"] == alert)
        .unwrap_or_else(|| panic!("no alert {alert}"))["expr"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn promtool_accepts_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, serde_yaml_ng::to_string(&rules()["spec"]).unwrap()).unwrap();
    let promtool = envoy_harness::prometheus::prometheus_bin().with_file_name("promtool");
    let promtool = if promtool.is_absolute() {
        promtool
    } else {
        "promtool".into()
    };
    let out = std::process::Command::new(&promtool)
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", promtool.display()));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("SUCCESS: 2 rules found"), "{text}");
}

/// An Envoy with `filter`, its stats tagged by Istio's `wasm_filter`
/// extractor, and a Prometheus scraping it.
fn scraped(filter: impl Into<HttpFilter>) -> (Envoy, Prometheus) {
    let envoy = Envoy::builder()
        .filter(filter)
        .stats_tag("wasm_filter", WASM_FILTER_TAG)
        .start()
        .unwrap();
    let prom = Prometheus::scrape(&envoy).unwrap();
    (envoy, prom)
}

fn send(envoy: &Envoy, n: usize) {
    for _ in 0..n {
        assert_eq!(envoy.get("/books").unwrap().status, 200);
    }
}

/// Sends traffic while waiting for `promql` to give a non-empty result.
fn wait_with_traffic(envoy: &Envoy, prom: &Prometheus, promql: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        send(envoy, 3);
        let r = prom.query(promql).unwrap();
        if !r.is_empty() {
            return r;
        }
        assert!(Instant::now() < deadline, "{promql}: {r:?}\n{}", prom.log());
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Once `ready` has a result (the series the alert reads are scraped),
/// `alert` has none.
fn assert_quiet(envoy: &Envoy, prom: &Prometheus, ready: &str, alert: &str, what: &str) {
    wait_with_traffic(envoy, prom, ready);
    assert!(prom.query(alert).unwrap().is_empty(), "{what}");
}

#[test]
fn skipped_alert_fires_after_a_vm_failure() {
    let (envoy, prom) = scraped(
        Wasm::fault_injecting("attributegen")
            .config(CONFIG)
            .failure_policy("FAIL_OPEN"),
    );
    let alert = expr("WasmTelemetryFilterSkipped")
        .replace("[5m]", "[5s]")
        .replace(
            "istio_requests_total{reporter=\"destination\"}",
            "envoy_http_downstream_rq_total",
        );
    // Healthy: the heartbeat grows with the traffic, no alert.
    assert_quiet(
        &envoy,
        &prom,
        "rate(telemetry_filters_requests_total{wasm_filter=\"attributegen\"}[5s]) > 0",
        &alert,
        "alert while healthy",
    );
    // The VM traps: that request fails, the filter is skipped from then on.
    let resp = envoy
        .request("GET", "/books")
        .header("x-fault-inject", "panic")
        .send()
        .unwrap();
    assert_eq!(resp.status, 503);
    let fired = wait_with_traffic(&envoy, &prom, &alert);
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(
        fired[0]["metric"]["wasm_filter"], "attributegen",
        "{fired:?}"
    );
}

#[test]
fn config_alert_fires_for_a_proxy_started_with_a_bad_configuration() {
    let (envoy, prom) =
        scraped(Wasm::new("attributegen").config(r#"{"attributes":[{"phase":"LATER"}]}"#));
    let alert = expr("WasmTelemetryFilterConfigRejected");
    let fired = wait_with_traffic(&envoy, &prom, &alert);
    assert_eq!(
        fired[0]["metric"]["wasm_filter"], "attributegen",
        "{fired:?}"
    );
    // A good proxy does not fire.
    let (good, prom) = scraped(Wasm::new("attributegen").config(CONFIG));
    assert_quiet(
        &good,
        &prom,
        "type_config_error_count{wasm_filter=\"attributegen\"}",
        &alert,
        "alert for a good configuration",
    );
}
