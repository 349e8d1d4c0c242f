//! filter-profile: the bundle's jobs, built natively, driven by an in-memory
//! host over the benchmark's request (`scripts/bench`'s `GET /reviews/0`),
//! so that callgrind can count the module's own instructions per request
//! and split them by function. Run it through `scripts/profile-native.sh`.
//!
//! `filter-profile <config> [requests]`: configures the bundle with one of
//! the benchmark's configurations (as bundle sections), prints the host
//! calls one request makes, then runs `requests` requests (default 10,000)
//! in [`profile_requests`], the function callgrind collects.
//!
//! `filter-profile --wasm <config>` prints the Wasm module that
//! configuration runs in and its plugin configuration, tab-separated
//! (`scripts/profile-v8.sh` drives the shipped module with them).

mod bench_host;

use bench_host::BenchHost;
use filter_common::host::{Host, MetricKind};
use filter_common::job::Phase;
use filter_common::pipeline::Pipeline;
use filter_common::shared_reads::RequestCache;
use serde_json::{json, Value};
use std::rc::Rc;

/// The bundle's jobs over the in-memory host.
type Jobs = Pipeline<BenchHost>;

/// The benchmark's own configurations (one file, shared with `scripts/bench`).
#[path = "../../bench/src/configs.rs"]
mod configs;

use configs::{bookinfo_classes, bookinfo_ops, bookinfo_templates, trace_tags_config};

/// The bookinfo operations as route templates, as an attributegen config.
fn templates() -> Value {
    json!({"attributes": [{"output_attribute": "istio_operationId", "match": bookinfo_templates()}]})
}

/// The configurations, as bundle documents (one section: that job alone).
fn config(id: &str) -> Option<Value> {
    Some(match id {
        "ag-templates" => json!({"attributegen": templates()}),
        "ag-cel-bookinfo" => {
            json!({"attributegen": {"attributes": [bookinfo_ops(), bookinfo_classes()]}})
        }
        "get-calls" => json!({"get_calls": null}),
        "trace-tags" => json!({"trace_tags": trace_tags_config()}),
        "bundle" => json!({"attributegen": templates(), "get_calls": null,
                           "trace_tags": trace_tags_config()}),
        "empty" => json!({}),
        _ => return None,
    })
}

/// What the adapter keeps per stream (`filters/common/src/wasm/adapter.rs`).
struct Stream {
    plan: Rc<Jobs>,
    heartbeat: Option<filter_common::host::MetricId>,
    state: RequestCache,
}

/// One request as the adapter drives it: stream context created, heartbeat,
/// request headers, response headers, log, stream dropped.
fn one_request(root: &(Rc<Jobs>, Option<filter_common::host::MetricId>), host: &BenchHost) {
    let stream = Box::new(Stream {
        plan: Rc::clone(&root.0),
        heartbeat: root.1,
        state: RequestCache::default(),
    });
    host.response.set(false);
    if let Some(id) = stream.heartbeat {
        let _ = host.increment(id, &[], 1);
    }
    stream.plan.run(Phase::RequestHeaders, host, &stream.state);
    host.response.set(true);
    stream.plan.run(Phase::ResponseHeaders, host, &stream.state);
    stream.plan.run(Phase::Log, host, &stream.state);
    drop(stream);
}

/// The requests callgrind collects (`--toggle-collect=*profile_requests*`).
#[inline(never)]
fn profile_requests(
    root: &(Rc<Jobs>, Option<filter_common::host::MetricId>),
    host: &BenchHost,
    n: u64,
) {
    for _ in 0..n {
        one_request(root, host);
    }
}

/// The Wasm module a configuration runs in and that module's plugin
/// configuration (a separate filter's is its bundle section), for
/// `scripts/profile-v8.sh`.
fn wasm_module(id: &str, doc: &Value) -> (&'static str, String) {
    let section = |name: &str| match &doc[name] {
        Value::Null => String::new(),
        v => v.to_string(),
    };
    match id {
        "ag-templates" | "ag-cel-bookinfo" => ("attributegen", section("attributegen")),
        "get-calls" => ("get_calls", section("get_calls")),
        "trace-tags" => ("trace_tags", section("trace_tags")),
        _ => ("telemetry_bundle", doc.to_string()),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--wasm") {
        let id = args.get(1).map_or("bundle", String::as_str);
        let Some(doc) = config(id) else {
            eprintln!("unknown configuration {id}");
            std::process::exit(2);
        };
        let (module, config) = wasm_module(id, &doc);
        println!("{module}\t{config}");
        return;
    }
    let id = args.first().map_or("bundle", String::as_str);
    let n: u64 = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let Some(doc) = config(id) else {
        eprintln!("usage: filter-profile <ag-templates|ag-cel-bookinfo|get-calls|trace-tags|bundle|empty> [requests]");
        std::process::exit(2);
    };
    let host = BenchHost::default();
    let jobs = telemetry_bundle::configure(Some(doc.to_string().as_bytes()), &host);
    // One heartbeat per module, as the adapter defines it (`M::NAME`).
    let module_name = match id {
        "ag-templates" | "ag-cel-bookinfo" => "attributegen",
        "get-calls" => "get_calls",
        "trace-tags" => "trace_tags",
        _ => "telemetry_bundle",
    };
    let heartbeat = host
        .define_metric(
            MetricKind::Counter,
            &filter_common::heartbeat_metric(module_name),
            &[],
        )
        .ok();
    let root = (Rc::new(jobs), heartbeat);
    // warm the caches (metric ids, series) as a running VM has them
    one_request(&root, &host);
    host.counting.set(true);
    let _ = host.take_calls();
    one_request(&root, &host);
    host.counting.set(false);
    let calls = host.take_calls();
    println!("{id}: host calls of one request (module side, after warm-up):");
    let mut total = 0;
    for (call, count) in &calls {
        println!("  {count:>3}  {call}");
        total += count;
    }
    println!("  {total:>3}  in all");
    profile_requests(&root, &host, n);
    println!("{id}: {n} requests profiled");
}
