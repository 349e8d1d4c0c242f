//! Soak: ≥ 200,000 requests at a steady rate over two workers through all
//! three filters. Zero errors, exact counts, every VM's linear memory flat
//! and Envoy's RSS growth ≤ 5% between the first quarter and the end.
//! `SOAK_REQUESTS` and `SOAK_RPS` size it (longer mode: SOAK_REQUESTS=2000000).

use envoy_harness::{Envoy, Wasm};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Every `wasmcustom.*` stat whose name matches, by name.
fn stats(envoy: &Envoy, filter: &str) -> Vec<(String, u64)> {
    let body = envoy
        .admin_get(&format!("/stats?format=json&filter={filter}"))
        .unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    v["stats"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s["name"].as_str()?.to_string(), s["value"].as_u64()?)))
        .collect()
}

#[test]
fn soak_all_three_filters() {
    let total = env_u64("SOAK_REQUESTS", 200_000);
    let rps = env_u64("SOAK_RPS", 2_000);
    let attributegen = json!({"attributes": [{"output_attribute": "istio_operationId", "phase": "ON_REQUEST", "match": [
        {"value": "ListBooks", "template": "GET /books"},
        {"value": "GetBook", "template": "GET /books/{id}"}]}]});
    let trace_tags = json!({"tags": [
        {"name": "deployment", "literal": "soak"},
        {"name": "operation", "attribute": "wasm.istio_operationId", "default": "unknown"}]});
    let envoy = Envoy::builder()
        .concurrency(2)
        .exact_balance()
        .direct_response(200)
        .component_log_level("wasm:warn")
        .filter(Wasm::new("attributegen").config(attributegen.to_string()))
        .filter(Wasm::new("trace_tags").config(trace_tags.to_string()))
        .filter(Wasm::new("get_calls"))
        .start()
        .unwrap();
    let threads = 8u64;
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (sent, failed, port) = (sent.clone(), failed.clone(), envoy.port());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let per_thread = total / threads + u64::from(t < total % threads);
                let interval = Duration::from_secs_f64(threads as f64 / rps as f64);
                let begin = Instant::now();
                for i in 0..per_thread {
                    // steady rate: request i of this thread is due at begin + i*interval
                    let due = begin + interval.mul_f64(i as f64);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let path = if i % 2 == 0 {
                        "/books".to_string()
                    } else {
                        format!("/books/{}", i % 500)
                    };
                    let ok = agent
                        .get(&format!("http://127.0.0.1:{port}{path}"))
                        .call()
                        .map(|r| r.status() == 200)
                        .unwrap_or(false);
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // First quarter: RSS and every VM's linear memory.
    while sent.load(Ordering::Relaxed) < total / 4 {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(2500)); // one memory-gauge tick
    let rss_q1 = rss_kib(envoy.pid());
    let mem_q1 = stats(&envoy, "memory_bytes");
    for w in workers {
        w.join().unwrap();
    }
    let elapsed = start.elapsed();
    std::thread::sleep(Duration::from_millis(2500));
    let rss_end = rss_kib(envoy.pid());
    let mem_end = stats(&envoy, "memory_bytes");
    let achieved = total as f64 / elapsed.as_secs_f64();
    let summary = format!(
        "soak: {total} requests in {:.1} s ({achieved:.0}/s, target {rps}/s); RSS {rss_q1} → {rss_end} KiB ({:+.2}%); linear memory of {} VMs: {} → {} bytes in all",
        elapsed.as_secs_f64(),
        (rss_end as f64 / rss_q1 as f64 - 1.0) * 100.0,
        mem_q1.len(),
        mem_q1.iter().map(|(_, v)| v).sum::<u64>(),
        mem_end.iter().map(|(_, v)| v).sum::<u64>(),
    );
    eprintln!("{summary}");
    let mode = match (
        envoy_harness::bundle_mode(),
        envoy_harness::dynamic_module_mode(),
    ) {
        (_, true) => "soak-dynamic-module",
        (true, false) => "soak-bundle",
        (false, false) => "soak",
    };
    envoy_harness::report(mode, &summary);

    assert_eq!(failed.load(Ordering::Relaxed), 0, "failed requests");
    assert_eq!(
        envoy.stat("http.ingress.downstream_rq_2xx").unwrap(),
        Some(total)
    );
    for filter in ["attributegen", "trace_tags", "get_calls"] {
        let heartbeat = envoy_harness::heartbeat_stat(filter);
        let flush = envoy_harness::HEARTBEAT_FLUSH;
        let beats = envoy.wait_for_stat(&heartbeat, flush, |n| n == total);
        assert_eq!(beats.ok(), Some(total), "{filter} heartbeat");
    }
    // Wasm stat names carry their labels (Istio's tag encoding, ending in the
    // metric name); the module's labels are stat tags, so its series are
    // counted as Prometheus names them.
    let get_calls: u64 = if envoy_harness::dynamic_module_mode() {
        let text = envoy.prometheus().unwrap();
        envoy_harness::prometheus::family(&text, "istio_get_calls")
            .iter()
            .map(|(_, v)| *v as u64)
            .sum()
    } else {
        stats(&envoy, "istio_get_calls$")
            .iter()
            .map(|(_, v)| v)
            .sum()
    };
    assert_eq!(get_calls, total, "istio_get_calls over all series");
    // Memory: each VM's linear memory flat (the dynamic module has no VM),
    // RSS growth within 5%.
    if !envoy_harness::dynamic_module_mode() {
        assert!(!mem_q1.is_empty());
        assert_eq!(mem_q1, mem_end, "a VM's linear memory grew");
    }
    assert!(
        rss_end as f64 <= rss_q1 as f64 * 1.05,
        "RSS grew {rss_q1} → {rss_end} KiB"
    );
}
