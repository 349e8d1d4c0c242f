//! Changing a filter's configuration while traffic flows (file-based ECDS).

use envoy_harness::{Envoy, Wasm};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const V1: &str = r#"{"attributes":[{"output_attribute":"op","match":[{"value":"v1"}]}]}"#;
const V2: &str = r#"{"attributes":[{"output_attribute":"op","match":[{"value":"v2"}]}]}"#;
const BAD: &str = r#"{"attributes":[{"output_attribute":"op","match":[{"value":"x","condition":"request.path =="}]}]}"#;
const GET_CALLS_V1: &str =
    r#"{"metrics":[{"name":"upd_calls","condition":"request.method == 'GET'"}]}"#;
const GET_CALLS_V2: &str = r#"{"metrics":[{"name":"upd_calls","condition":"request.method == 'GET'"},{"name":"upd_other"}]}"#;
const CONFIG_ERRORS: &str = "wasmcustom.wasm_filter.attributegen.type.config.error_count";

#[test]
fn updates_take_effect_and_bad_ones_stop_attributes_not_traffic() {
    let envoy = Envoy::builder()
        .concurrency(2)
        .filter(Wasm::new("attributegen").config(V1).dynamic())
        .filter(Wasm::new("get_calls").config(GET_CALLS_V1).dynamic())
        .log_attribute("op")
        .start()
        .unwrap();
    let op = |envoy: &Envoy| {
        let r = envoy.get("/").unwrap();
        assert_eq!(r.status, 200);
        envoy.access_log_entry(&r).unwrap()["attr.op"].clone()
    };
    assert_eq!(op(&envoy), "v1");

    // Traffic in the background during every update: none may fail.
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let port = envoy.port();
    let bg = {
        let (stop, failed, sent) = (stop.clone(), failed.clone(), sent.clone());
        std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into();
            while !stop.load(Ordering::Relaxed) {
                let ok = agent
                    .get(&format!("http://127.0.0.1:{port}/bg"))
                    .call()
                    .map(|r| r.status() == 200)
                    .unwrap_or(false);
                sent.fetch_add(1, Ordering::Relaxed);
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };

    assert!(envoy
        .update_wasm(&Wasm::new("attributegen").config(V2).dynamic())
        .unwrap());
    assert_eq!(op(&envoy), "v2");

    if envoy_harness::dynamic_module_mode() {
        // The dynamic module rejects an invalid update (one log line that
        // names the filter: the bundle, when the job runs in it); Envoy
        // keeps serving with the previous configuration.
        let _ = envoy
            .update_wasm(&Wasm::new("attributegen").config(BAD).dynamic())
            .unwrap();
        let filter = envoy_harness::module_of("attributegen");
        envoy
            .wait_for_log(
                &format!("{filter} configuration rejected"),
                std::time::Duration::from_secs(5),
            )
            .unwrap();
        assert_eq!(op(&envoy), "v2");
    } else {
        // An invalid update is accepted by Envoy (the filter never fails
        // on_configure), counted, and from then on produces no attributes.
        let before = envoy.stat(CONFIG_ERRORS).unwrap().unwrap_or(0);
        assert!(envoy
            .update_wasm(&Wasm::new("attributegen").config(BAD).dynamic())
            .unwrap());
        assert!(op(&envoy).is_null());
        assert!(envoy.stat(CONFIG_ERRORS).unwrap().unwrap_or(0) > before);
    }

    // A good one brings attributes back.
    assert!(envoy
        .update_wasm(&Wasm::new("attributegen").config(V1).dynamic())
        .unwrap());
    assert_eq!(op(&envoy), "v1");

    // get-calls changes too: every GET is counted exactly once across it.
    assert!(envoy
        .update_wasm(&Wasm::new("get_calls").config(GET_CALLS_V2).dynamic())
        .unwrap());
    assert_eq!(op(&envoy), "v1");

    stop.store(true, Ordering::Relaxed);
    bg.join().unwrap();
    assert!(sent.load(Ordering::Relaxed) > 10, "background traffic ran");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during updates"
    );
    let served = envoy
        .stat("http.ingress.downstream_rq_2xx")
        .unwrap()
        .unwrap_or(0);
    envoy
        .wait_access_log_len(served as usize, std::time::Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        envoy.stat("wasmcustom.upd_calls").unwrap(),
        Some(served),
        "every GET counted once across the updates"
    );
}

/// A configuration update replaces the plugin's root contexts. Envoy
/// deletes the old ones without `on_done`: the heartbeat still loses no
/// request (the module adds what the old root context counted since its
/// last tick when it is deleted), counts none twice, and the per-VM memory
/// gauges do not multiply (a VM keeps its number across root contexts:
/// one gauge per VM Envoy created).
#[test]
fn updates_lose_no_heartbeat_and_add_no_vm_gauge() {
    let envoy = Envoy::builder()
        .filter(Wasm::new("attributegen").config(V1).dynamic())
        .start()
        .unwrap();
    let heartbeat = envoy_harness::heartbeat_stat("attributegen");
    let gauges = |envoy: &Envoy| -> Vec<String> {
        let page = envoy.admin_get("/stats?filter=memory_bytes").unwrap();
        page.lines()
            .filter_map(|l| Some(l.split_once(':')?.0.to_string()))
            .collect()
    };
    let wasm = !envoy_harness::dynamic_module_mode();
    assert!(!wasm || !gauges(&envoy).is_empty(), "no memory gauge");
    let mut sent = 0;
    for config in [V2, V1, V2] {
        for _ in 0..10 {
            assert_eq!(envoy.get("/").unwrap().status, 200);
            sent += 1;
        }
        // At once: mostly before the replaced root context's next tick.
        assert!(envoy
            .update_wasm(&Wasm::new("attributegen").config(config).dynamic())
            .unwrap());
    }
    let counted = envoy.wait_for_stat(&heartbeat, envoy_harness::HEARTBEAT_FLUSH, |n| n >= sent);
    assert_eq!(counted.unwrap(), sent, "{heartbeat}");
    // A whole tick later: nothing was added twice.
    std::thread::sleep(envoy_harness::HEARTBEAT_FLUSH);
    assert_eq!(envoy.stat(&heartbeat).unwrap(), Some(sent), "{heartbeat}");
    if wasm {
        // One gauge per VM Envoy created (it re-creates some on an update),
        // not one per root context (a root context per VM and update).
        let vms = envoy.stat("wasm.envoy.wasm.runtime.v8.created").unwrap();
        let after = gauges(&envoy);
        assert!(
            after.len() as u64 <= vms.unwrap_or(0),
            "{after:?} for {vms:?} VMs"
        );
    }
}
