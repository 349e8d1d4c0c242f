//! Clients cannot set operation ids, metric labels or span tags by sending
//! headers (or query parameters) named like them: every value comes from
//! the filters' own rules.

use envoy_harness::{Envoy, Wasm};
use serde_json::json;

#[test]
fn headers_named_like_outputs_change_nothing() {
    let attributegen = json!({"attributes": [{"output_attribute": "istio_operationId", "phase": "ON_REQUEST",
        "match": [{"value": "ListBooks", "template": "GET /books"}]}]});
    let trace_tags = json!({"tags": [
        {"name": "operation", "attribute": "wasm.istio_operationId", "default": "none"}]});
    let labels = ["destination_service", "request_operation", "response_code"];
    let mut b = Envoy::builder()
        .filter(Wasm::new("attributegen").config(attributegen.to_string()))
        .filter(Wasm::new("trace_tags").config(trace_tags.to_string()))
        .filter(Wasm::new("get_calls"))
        .log_attribute("istio_operationId")
        .log_attribute("trace_tag.operation");
    for l in labels {
        b = b.stats_tag(l, &format!("({l}=\\.=(.*?);\\.;)"));
    }
    let envoy = b.start().unwrap();
    let spoof = [
        ("istio_operationId", "Evil"),
        ("x-istio-operationid", "Evil"),
        ("wasm.istio_operationId", "Evil"),
        ("request_operation", "Evil"),
        ("x-request-operation", "Evil"),
        ("trace_tag.operation", "Evil"),
        ("x-trace-tag-operation", "Evil"),
    ];
    for path in [
        "/books?istio_operationId=Evil",
        "/other?request_operation=Evil",
    ] {
        let mut r = envoy.request("GET", path);
        for (k, v) in spoof {
            r = r.header(k, v);
        }
        let resp = r.send().unwrap();
        assert_eq!(resp.status, 200);
        let e = envoy.access_log_entry(&resp).unwrap();
        let want = if path.starts_with("/books") {
            json!("ListBooks")
        } else {
            json!(null)
        };
        assert_eq!(e["attr.istio_operationId"], want, "{path}");
        let tag = if path.starts_with("/books") {
            "ListBooks"
        } else {
            "none"
        };
        assert_eq!(e["attr.trace_tag.operation"], tag, "{path}");
    }
    let prom = envoy.prometheus().unwrap();
    let series: Vec<&str> = prom
        .lines()
        .filter(|l| l.starts_with("istio_get_calls{"))
        .collect();
    assert_eq!(series.len(), 2, "{series:?}");
    assert!(series.iter().all(|l| !l.contains("Evil")), "{series:?}");
    assert!(
        series
            .iter()
            .any(|l| l.contains("request_operation=\"ListBooks\"")),
        "{series:?}"
    );
    assert!(
        series
            .iter()
            .any(|l| l.contains("request_operation=\"unknown\"")),
        "{series:?}"
    );
}
