//! The dynamic module `libtelemetry_filters.so` itself (whatever
//! `DYNAMIC_MODULE` says): configurations it rejects, a module or filter
//! Envoy cannot find, and exact counts with several workers.

use envoy_harness::dynamic_module::{filter, module_path, TYPE_URL};
use envoy_harness::prometheus::family;
use envoy_harness::Envoy;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Lines of Envoy's log containing `needle`.
fn lines_with(log: &str, needle: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// Envoy's log when start-up fails, or a panic when it started.
fn start_fails(builder: envoy_harness::EnvoyBuilder) -> String {
    match builder.start() {
        Ok(envoy) => panic!("Envoy started: {}", envoy.log()),
        Err(e) => e.0,
    }
}

#[test]
fn bad_configuration_is_rejected_with_one_line_naming_field_reason_and_version() {
    let bad = r#"{"attributes":[{"output_attribute":"op","match":[{"value":"x","condition":"request.path =="}]}]}"#;
    let log = start_fails(Envoy::builder().filter(filter("attributegen", bad)));
    let rejected = lines_with(&log, "configuration rejected");
    assert_eq!(rejected.len(), 1, "{log}");
    let line = &rejected[0];
    assert!(
        line.contains("telemetry_filters 0.1.0 (build ")
            && line.contains("attributegen configuration rejected")
            && line.contains("condition"),
        "{line}"
    );
}

#[test]
fn expressions_outside_the_native_subset_are_rejected_clearly() {
    let config = r#"{"attributes":[{"output_attribute":"op","match":[{"value":"x","condition":"request.headers.exists(h, h == 'x')"}]}]}"#;
    let log = start_fails(Envoy::builder().filter(filter("attributegen", config)));
    let rejected = lines_with(&log, "configuration rejected");
    assert_eq!(rejected.len(), 1, "{log}");
    assert!(
        rejected[0].contains("request.headers.exists(h, h == 'x')")
            && rejected[0].contains("the dynamic module evaluates CEL itself"),
        "{}",
        rejected[0]
    );
}

#[test]
fn unknown_filter_name_is_rejected() {
    let log = start_fails(Envoy::builder().filter(filter("attribute_gen", "{}")));
    let rejected = lines_with(&log, "configuration rejected");
    assert_eq!(rejected.len(), 1, "{log}");
    assert!(
        rejected[0].contains("filter_name: unknown filter \"attribute_gen\""),
        "{}",
        rejected[0]
    );
}

#[test]
fn missing_shared_object_is_rejected() {
    let missing = module_path().with_file_name("libno_such_module.so");
    let entry = json!({
        "name": "envoy.filters.http.dynamic_modules",
        "typed_config": {
            "@type": TYPE_URL,
            "dynamic_module_config": {
                "name": "no_such_module",
                "module": { "local": { "filename": missing } },
            },
            "filter_name": "attributegen",
            "filter_config": { "@type": "type.googleapis.com/google.protobuf.StringValue", "value": "{}" },
        }
    });
    let log = start_fails(Envoy::builder().filter(entry));
    assert!(log.contains("libno_such_module.so"), "{log}");
}

/// Two workers, many parallel requests: every request counted exactly once,
/// every access-log line carries attributegen's filter state.
#[test]
fn two_workers_count_exactly() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 50;
    let attributegen = r#"{"attributes":[{"output_attribute":"istio_operationId","match":[
        {"value":"GetBook","condition":"request.url_path.startsWith('/books')"},
        {"value":"Other"}]}]}"#;
    let get_calls = r#"{"metrics":[{"name":"dm_calls","dimensions":{"op":"istio_operationId"}}]}"#;
    let envoy = Envoy::builder()
        .concurrency(2)
        .filter(filter("attributegen", attributegen))
        .filter(filter("get_calls", get_calls))
        .log_attribute("istio_operationId")
        .start()
        .unwrap();
    let port = envoy.port();
    let failed = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let failed = Arc::clone(&failed);
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                for i in 0..PER_THREAD {
                    let path = if (t + i) % 2 == 0 {
                        "/books/1"
                    } else {
                        "/other"
                    };
                    let ok = agent
                        .get(&format!("http://127.0.0.1:{port}{path}"))
                        .call()
                        .map(|r| r.status() == 200)
                        .unwrap_or(false);
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let total = THREADS * PER_THREAD;
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    let entries = envoy
        .wait_access_log_len(total as usize, std::time::Duration::from_secs(10))
        .unwrap();
    let ops = |op: &str| {
        entries
            .iter()
            .filter(|e| e["attr.istio_operationId"] == op)
            .count() as u64
    };
    assert_eq!(
        ops("GetBook") + ops("Other"),
        total,
        "filter state on every line"
    );
    // Envoy's own names: `envoy_wasmcustom_` + name (no Wasm VM registered
    // the `wasmcustom` namespace); labels are real stat tags.
    let text = envoy.prometheus_raw().unwrap();
    let series = family(&text, "envoy_wasmcustom_dm_calls");
    let count = |op: &str| {
        series
            .iter()
            .filter(|(labels, _)| labels.get("op").map(String::as_str) == Some(op))
            .map(|(_, v)| *v as u64)
            .sum::<u64>()
    };
    assert_eq!(count("GetBook"), ops("GetBook"), "{text}");
    assert_eq!(count("Other"), ops("Other"), "{text}");
    assert_eq!(
        envoy
            .stat(&envoy_harness::heartbeat_stat("attributegen"))
            .unwrap(),
        Some(total),
        "heartbeat"
    );
}
