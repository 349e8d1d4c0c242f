use envoy_harness::{Envoy, Wasm};

fn cpu_ns(pid: u32) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let s = std::fs::read_to_string(e.path().join("schedstat")).unwrap_or_default();
        total += s
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}

fn measure(b: envoy_harness::EnvoyBuilder) -> f64 {
    let envoy = b
        .direct_response(200)
        .component_log_level("wasm:warn")
        .start()
        .unwrap();
    for _ in 0..300 {
        envoy
            .request("GET", "/books/1")
            .header("x-tenant", "acme")
            .send()
            .unwrap();
    }
    let n = 3000;
    let before = cpu_ns(envoy.pid());
    for _ in 0..n {
        envoy
            .request("GET", "/books/1")
            .header("x-tenant", "acme")
            .send()
            .unwrap();
    }
    let after = cpu_ns(envoy.pid());
    (after - before) as f64 / n as f64 / 1000.0
}

const FIVE: &str = r#"{"tags":[
    {"name":"deployment","literal":"canary"},
    {"name":"region","environment":"REGION","default":"unknown-region"},
    {"name":"tenant","header":"x-tenant","default":"anonymous"},
    {"name":"route","expression":"request.method + ' ' + request.url_path"},
    {"name":"status","phase":"RESPONSE","expression":"response.code","type":"INT"}]}"#;
const FIVE_HDR: &str = r#"{"header_prefix":"x-trace-tag-","tags":[
    {"name":"deployment","literal":"canary"},
    {"name":"region","environment":"REGION","default":"unknown-region"},
    {"name":"tenant","header":"x-tenant","default":"anonymous"},
    {"name":"route","expression":"request.method + ' ' + request.url_path"},
    {"name":"status","phase":"RESPONSE","expression":"response.code","type":"INT"}]}"#;

#[test]
#[ignore]
fn scratch_cost() {
    for round in 0..3 {
        let base = measure(Envoy::builder());
        let empty =
            measure(Envoy::builder().filter(Wasm::new("trace_tags").config(r#"{"tags":[]}"#)));
        let lit = measure(Envoy::builder().filter(
            Wasm::new("trace_tags").config(r#"{"tags":[{"name":"d","literal":"canary"}]}"#),
        ));
        let five = measure(
            Envoy::builder().filter(Wasm::new("trace_tags").config(FIVE).env("REGION", "eu")),
        );
        let hdr = measure(
            Envoy::builder().filter(Wasm::new("trace_tags").config(FIVE_HDR).env("REGION", "eu")),
        );
        eprintln!("COST round {round}: router {base:.1} us; empty +{:.1}; 1 literal +{:.1}; 5 tags fs +{:.1}; 5 tags fs+hdr +{:.1}",
            empty - base, lit - base, five - base, hdr - base);
    }
}
