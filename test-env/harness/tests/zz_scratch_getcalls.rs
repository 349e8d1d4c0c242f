use envoy_harness::{Envoy, Wasm};
use std::process::Command;
fn cpu_ns(pid: u32) -> u64 {
    let mut t = 0;
    for e in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let p = e.unwrap().path().join("schedstat");
        if let Ok(s) = std::fs::read_to_string(p) {
            t += s.split_whitespace().next().unwrap().parse::<u64>().unwrap();
        }
    }
    t
}
fn measure(config: Option<&str>) -> f64 {
    let mut b = Envoy::builder()
        .direct_response(200)
        .component_log_level("wasm:warn");
    if let Some(c) = config {
        b = b.filter(Wasm::new("get_calls").config(c));
    }
    let envoy = b.start().unwrap();
    let url = format!("http://127.0.0.1:{}/reviews/0", envoy.port());
    Command::new("wrk")
        .args(["-t1", "-c8", "-d1s", &url])
        .output()
        .unwrap();
    let rq = |e: &Envoy| {
        e.stat("http.ingress.downstream_rq_total")
            .unwrap()
            .unwrap_or(0)
    };
    let (c0, r0) = (cpu_ns(envoy.pid()), rq(&envoy));
    Command::new("wrk")
        .args(["-t1", "-c8", "-d3s", &url])
        .output()
        .unwrap();
    let (c1, r1) = (cpu_ns(envoy.pid()), rq(&envoy));
    (c1 - c0) as f64 / 1000.0 / (r1 - r0) as f64
}
fn measure_with(f: Option<Wasm>) -> f64 {
    let mut b = Envoy::builder()
        .direct_response(200)
        .component_log_level("wasm:warn");
    if let Some(f) = f {
        b = b.filter(f);
    }
    let envoy = b.start().unwrap();
    let url = format!("http://127.0.0.1:{}/reviews/0", envoy.port());
    Command::new("wrk")
        .args(["-t1", "-c8", "-d1s", &url])
        .output()
        .unwrap();
    let rq = |e: &Envoy| {
        e.stat("http.ingress.downstream_rq_total")
            .unwrap()
            .unwrap_or(0)
    };
    let (c0, r0) = (cpu_ns(envoy.pid()), rq(&envoy));
    Command::new("wrk")
        .args(["-t1", "-c8", "-d3s", &url])
        .output()
        .unwrap();
    let (c1, r1) = (cpu_ns(envoy.pid()), rq(&envoy));
    (c1 - c0) as f64 / 1000.0 / (r1 - r0) as f64
}
#[test]
fn cost() {
    let simple = r#"{"metrics":[{"name":"istio_get_calls","condition":"request.method == 'GET'","dimensions":{"request_operation":"istio_operationId","response_code":"string(response.code)","destination_service":"xds.cluster_name"}}]}"#;
    let nodest = r#"{"metrics":[{"name":"istio_get_calls","condition":"request.method == 'GET'","dimensions":{"request_operation":"istio_operationId","response_code":"string(response.code)"}}]}"#;
    for round in 0..3 {
        for n in ["floor", "default", "simple-dest", "no-dest"] {
            let f = match n {
                "floor" => None,
                "default" => Some(Wasm::new("get_calls")),
                "simple-dest" => Some(Wasm::new("get_calls").config(simple)),
                _ => Some(Wasm::new("get_calls").config(nodest)),
            };
            println!("round {round} {n:14} {:7.2} us/req", measure_with(f));
        }
    }
}
