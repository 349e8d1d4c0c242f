//! What each `failure_policy` does when the filter's VM traps, through a
//! real Envoy, with the test-only fault-injecting build: a request carrying
//! `x-fault-inject: panic` makes attributegen panic on request headers.

use envoy_harness::{Envoy, Wasm};
use std::time::{Duration, Instant};

const HEARTBEAT: &str = "wasmcustom.wasm_filter.attributegen.telemetry_filters_requests_total";
const CONFIG: &str = r#"{"attributes":[{"output_attribute":"op","match":[{"value":"seen"}]}]}"#;

fn start(policy: Option<&str>) -> Envoy {
    let mut w = Wasm::fault_injecting("attributegen").config(CONFIG);
    if let Some(p) = policy {
        w = w.failure_policy(p);
    }
    Envoy::builder()
        .filter(w)
        .log_attribute("op")
        .start()
        .unwrap()
}

/// (status, details, attribute) of one request.
fn send(envoy: &Envoy, fault: bool) -> (u16, String, Option<String>) {
    let mut r = envoy.request("GET", "/books");
    if fault {
        r = r.header("x-fault-inject", "panic");
    }
    let resp = r.send().unwrap();
    let e = envoy.access_log_entry(&resp).unwrap();
    (
        resp.status,
        e["details"].as_str().unwrap_or("").to_string(),
        e["attr.op"].as_str().map(str::to_string),
    )
}

fn heartbeat(envoy: &Envoy) -> u64 {
    envoy.stat(HEARTBEAT).unwrap().unwrap_or(0)
}

/// The heartbeat once every request sent so far has had time to show in it.
fn settled_heartbeat(envoy: &Envoy) -> u64 {
    std::thread::sleep(envoy_harness::HEARTBEAT_FLUSH);
    heartbeat(envoy)
}

#[test]
fn fail_closed_fails_every_request_until_the_next_config() {
    for policy in [Some("FAIL_CLOSED"), None] {
        let envoy = start(policy);
        assert_eq!(
            send(&envoy, false),
            (200, "via_upstream".into(), Some("seen".into()))
        );
        let (code, details, _) = send(&envoy, true);
        assert_eq!(
            (code, details.as_str()),
            (503, "wasm_fail_stream"),
            "{policy:?}"
        );
        for _ in 0..3 {
            let (code, details, _) = send(&envoy, false);
            assert_eq!(
                (code, details.as_str()),
                (503, "wasm_fail_stream"),
                "{policy:?}"
            );
        }
        envoy
            .wait_for_log("panic: panicked at", Duration::from_secs(5))
            .unwrap();
    }
}

#[test]
fn fail_open_skips_the_filter_and_the_heartbeat_shows_it() {
    let envoy = start(Some("FAIL_OPEN"));
    assert_eq!(send(&envoy, false).0, 200);
    envoy
        .wait_for_stat(HEARTBEAT, envoy_harness::HEARTBEAT_FLUSH, |n| n == 1)
        .unwrap();
    let (code, details, _) = send(&envoy, true);
    assert_eq!((code, details.as_str()), (503, "wasm_fail_stream"));
    let beats = settled_heartbeat(&envoy);
    for _ in 0..5 {
        // traffic flows, but telemetry is silently lost
        assert_eq!(send(&envoy, false), (200, "via_upstream".into(), None));
    }
    assert_eq!(
        settled_heartbeat(&envoy),
        beats,
        "the filter no longer runs"
    );
    // the critical log line says why
    envoy
        .wait_for_log("[critical][wasm]", Duration::from_secs(5))
        .unwrap();
}

#[test]
fn fail_reload_brings_the_filter_back() {
    let envoy = start(Some("FAIL_RELOAD"));
    assert_eq!(send(&envoy, false).0, 200);
    assert_eq!(send(&envoy, true).0, 503);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, _, attr) = send(&envoy, false);
        if code == 200 && attr.as_deref() == Some("seen") {
            break;
        }
        assert!(Instant::now() < deadline, "not reloaded: {code} {attr:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let stats = envoy.admin_get("/stats?filter=vm_reload").unwrap();
    assert!(stats.contains("vm_reload_success: 1"), "{stats}");
}
