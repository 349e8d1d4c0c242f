//! Hostile requests through a real Envoy: long paths, many headers,
//! separator characters, invalid UTF-8, odd methods, many distinct paths.
//! Envoy's codec answers some inputs before any filter runs; for each input
//! the test records whether it reached the filters (heartbeat counter) and
//! asserts that no request failed because of a filter.

use envoy_harness::{Envoy, Wasm};
use serde_json::json;

fn attributegen_config() -> String {
    json!({"attributes": [
        {"output_attribute": "istio_operationId", "match": [
            {"value": "GetBook", "template": "GET /books/{id}"},
            {"value": "ListBooks", "template": "GET /books"},
            {"value": "Spoofed", "condition": "'x-user' in request.headers && request.headers['x-user'] == 'a;.;b=.=c'"},
            {"value": "Other", "condition": ""}]},
        {"output_attribute": "istio_responseClass", "match": [
            {"value": "2xx", "condition": "response.code >= 200 && response.code <= 299"},
            {"value": "other", "condition": ""}]}]})
    .to_string()
}

fn start() -> Envoy {
    Envoy::builder()
        .concurrency(2)
        .exact_balance()
        // Envoy answers itself: what reaches the filters is all that counts.
        .direct_response(200)
        .filter(Wasm::new("attributegen").config(attributegen_config()))
        .log_attribute("istio_operationId")
        .start()
        .unwrap()
}

fn beats(envoy: &Envoy) -> u64 {
    envoy
        .stat(&envoy_harness::heartbeat_stat("attributegen"))
        .unwrap()
        .unwrap_or(0)
}

/// Sends one raw request; returns (status, reached the filters): the
/// heartbeat counts it within [`envoy_harness::HEARTBEAT_FLUSH`].
fn raw(envoy: &Envoy, head: &[u8]) -> (u16, bool) {
    let before = beats(envoy);
    let mut req = head.to_vec();
    req.extend_from_slice(b"host: test\r\nconnection: close\r\n\r\n");
    let (status, _) = envoy.raw_request(&req).unwrap();
    let heartbeat = envoy_harness::heartbeat_stat("attributegen");
    let reached = envoy
        .wait_for_stat(&heartbeat, envoy_harness::HEARTBEAT_FLUSH, |n| n > before)
        .is_ok();
    (status, reached)
}

#[test]
fn hostile_inputs_never_fail_because_of_a_filter() {
    let envoy = start();
    let long_path = format!("GET /books/{} HTTP/1.1\r\n", "a".repeat(60_000));
    let many_headers: String = (0..400).map(|i| format!("x-h{i}: v{i}\r\n")).collect();
    let mut cases: Vec<(&str, Vec<u8>, u16, bool)> = vec![
        ("long path (60 kB)", long_path.into_bytes(), 200, true),
        (
            "400 headers",
            format!("GET /books HTTP/1.1\r\n{many_headers}").into_bytes(),
            200,
            true,
        ),
        (
            "separators in a header",
            b"GET /other HTTP/1.1\r\nx-user: a;.;b=.=c\r\n".to_vec(),
            200,
            true,
        ),
        (
            "quotes and backslashes",
            b"GET /books/\"x\\y HTTP/1.1\r\nx-user: \"'\\\\\r\n".to_vec(),
            200,
            true,
        ),
        (
            "odd method",
            b"PROPFIND /books HTTP/1.1\r\n".to_vec(),
            200,
            true,
        ),
        (
            "lower-case method",
            b"get /books HTTP/1.1\r\n".to_vec(),
            400,
            false,
        ),
        (
            "method with dash",
            b"M-SEARCH * HTTP/1.1\r\n".to_vec(),
            400,
            false,
        ),
        (
            "space in path",
            b"GET /a b HTTP/1.1\r\n".to_vec(),
            400,
            false,
        ),
        (
            "header without colon",
            b"GET / HTTP/1.1\r\nbroken\r\n".to_vec(),
            400,
            false,
        ),
    ];
    let mut invalid = b"GET /books/1 HTTP/1.1\r\nx-user: ".to_vec();
    invalid.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    invalid.extend_from_slice(b"\r\n");
    cases.push(("invalid UTF-8 header value", invalid, 200, true));
    let mut invalid_path = b"GET /books/".to_vec();
    invalid_path.extend_from_slice(&[0xff, 0xfe]);
    invalid_path.extend_from_slice(b" HTTP/1.1\r\n");
    cases.push(("invalid UTF-8 in the path", invalid_path, 400, false));

    let mut report = Vec::new();
    for (name, head, want_status, want_reached) in &cases {
        let (status, reached) = raw(&envoy, head);
        report.push(format!(
            "{name}: {status}, reached filters: {reached} (expected {want_status}, {want_reached})"
        ));
    }
    eprintln!("{}", report.join("\n"));
    envoy_harness::report("hostile-inputs", &report.join("\n"));
    for (line, (_, _, want_status, want_reached)) in report.iter().zip(&cases) {
        assert!(
            line.contains(&format!(
                ": {want_status}, reached filters: {want_reached} "
            )),
            "{line}"
        );
    }
    // No access-log line says a filter failed the stream.
    let log = envoy.access_log();
    for e in &log {
        eprintln!(
            "{} {} {}",
            e["code"], e["details"], e["attr.istio_operationId"]
        );
    }
    assert!(
        log.iter().all(|e| e["details"] != "wasm_fail_stream"),
        "{log:?}"
    );
    let by_path = |p: &str| {
        log.iter()
            .find(|e| e["path"].as_str().is_some_and(|x| x.starts_with(p)))
            .cloned()
    };
    assert_eq!(
        by_path("/books/aaaa").unwrap()["attr.istio_operationId"],
        "GetBook"
    );
    assert_eq!(
        envoy
            .stat("wasmcustom.wasm_filter.attributegen.type.runtime.error_count")
            .unwrap(),
        Some(0)
    );
    // The header condition matched where the client sent that value: CEL
    // sees separator characters as plain text.
    assert!(log.iter().any(|e| e["attr.istio_operationId"] == "Spoofed"));
}

/// 10,000 distinct paths: every request classified, counts exact, no
/// failure.
#[test]
fn ten_thousand_distinct_paths() {
    let envoy = start();
    let n = 10_000u64;
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let port = envoy.port();
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let mut ok = 0u64;
                for i in (t..n).step_by(4) {
                    let r = agent
                        .get(&format!("http://127.0.0.1:{port}/books/id{i}"))
                        .call();
                    if r.map(|r| r.status() == 200).unwrap_or(false) {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    let ok: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(ok, n);
    let heartbeat = envoy_harness::heartbeat_stat("attributegen");
    envoy
        .wait_for_stat(&heartbeat, envoy_harness::HEARTBEAT_FLUSH, |b| b == n)
        .unwrap();
    let log = envoy
        .wait_access_log_len(n as usize, std::time::Duration::from_secs(20))
        .unwrap();
    assert_eq!(
        log.iter()
            .filter(|e| e["attr.istio_operationId"] == "GetBook")
            .count() as u64,
        n
    );
    // both workers served traffic
    let stats = envoy
        .admin_get("/stats?filter=worker_.*downstream_rq")
        .unwrap();
    eprintln!("{stats}");
}
