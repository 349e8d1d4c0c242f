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
fn dims(expr: &str, n: usize) -> String {
    let d: serde_json::Map<String, serde_json::Value> = (0..n)
        .map(|i| {
            (
                format!("l{i:02}x"),
                serde_json::Value::String(expr.to_string()),
            )
        })
        .collect();
    serde_json::json!({"metrics":[{"name":"m","dimensions":d}]}).to_string()
}
#[test]
fn cost() {
    let variants = [
        ("0 dims", dims("x", 0)),
        ("20 x path (property)", dims("request.path", 20)),
        ("20 x (path) (CEL)", dims("(request.path)", 20)),
        ("20 x fs (property)", dims("istio_operationId", 20)),
        ("20 x (fs) (CEL)", dims("(istio_operationId)", 20)),
    ];
    for round in 0..3 {
        for (n, c) in &variants {
            println!(
                "round {round} {n:22} {:7.2} us/req",
                measure_with(Some(Wasm::new("get_calls").config(c.clone())))
            );
        }
    }
}
