//! The variants: what each one adds to the common bootstrap.
//!
//! Every variant starts from [`base`]: one worker, a `direct_response` route,
//! no access log, Zipkin tracing of every request to a discarding collector
//! (the harness's upstream). A variant adds filters, tracing custom tags or an
//! access logger, nothing else.

use envoy_harness::{EnvoyBuilder, Wasm};
use serde_json::{json, Value};

pub use crate::configs::{bookinfo_classes, bookinfo_ops, bookinfo_templates, trace_tags_config};

/// Request path every variant serves (hits Istio's second bookinfo rule,
/// the `matches()` one, and the `GET /reviews/{id}` template).
pub const PATH: &str = "/reviews/0";
/// Header the trace-tag variants read.
pub const TENANT_HEADER: (&str, &str) = ("x-tenant", "acme");

/// What an Istio sidecar's inbound request carries besides the tenant
/// (`--mesh-headers`): tracing, forwarding and client headers as a browser
/// behind a gateway sends them, 18 in all with their typical lengths.
pub const MESH_HEADERS: [(&str, &str); 18] = [
    ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"),
    ("accept", "application/json, text/plain, */*"),
    ("accept-encoding", "gzip, deflate, br"),
    ("accept-language", "en-US,en;q=0.9"),
    ("cookie", "session=5f2b8c1e9a7d4e3f; theme=dark; _ga=GA1.2.1234567890.1700000000"),
    ("authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIiwiaXNzIjoibWVzaCJ9.c2lnbmF0dXJl"),
    ("x-request-id", "0b7f3c6e-1d2a-4e5b-9c8d-7a6b5c4d3e2f"),
    ("x-forwarded-for", "10.12.3.4, 10.0.0.1"),
    ("x-forwarded-proto", "https"),
    ("x-envoy-attempt-count", "1"),
    ("x-envoy-external-address", "10.12.3.4"),
    ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
    ("x-b3-spanid", "e457b5a2e4d86bd1"),
    ("x-b3-parentspanid", "05e3ac9a4f6e3b90"),
    ("x-b3-sampled", "1"),
    ("traceparent", "00-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-01"),
    ("x-forwarded-client-cert", "By=spiffe://cluster.local/ns/default/sa/reviews;Hash=4a6b1c0f8e2d9a7b3c5e1f0d2a4b6c8e9f1a3b5c7d9e0f2a4b6c8d0e2f4a6b8c;Subject=\"\";URI=spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"),
    ("x-envoy-peer-metadata-id", "router~10.0.0.1~istio-ingressgateway-5d8f7b9c4-x2k7p.istio-system~istio-system.svc.cluster.local"),
];

static MESH: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Sends [`MESH_HEADERS`] with every request from now on (`--mesh-headers`).
pub fn use_mesh_headers() {
    let _ = MESH.set(true);
}

/// Whether requests carry [`MESH_HEADERS`] (`--mesh-headers`).
pub fn mesh_headers() -> bool {
    MESH.get().copied().unwrap_or(false)
}

/// The headers every benchmark request carries besides the request line and
/// `host`: the tenant, and the mesh's with `--mesh-headers`.
pub fn request_headers() -> Vec<(&'static str, &'static str)> {
    let mut h = vec![TENANT_HEADER];
    if mesh_headers() {
        h.extend(MESH_HEADERS);
    }
    h
}

/// One variant.
pub struct Variant {
    /// Short id (`--only`, table rows).
    pub id: &'static str,
    /// What it is.
    pub label: String,
    /// Adds the variant's pieces to the common bootstrap.
    pub build: std::rc::Rc<dyn Fn(EnvoyBuilder) -> EnvoyBuilder>,
    /// Module files it loads (for sizes).
    pub modules: Vec<&'static str>,
    /// Where its Wasm modules come from, when not the built ones
    /// (`--before DIR`).
    pub module_dir: Option<std::path::PathBuf>,
}

impl Variant {
    /// The variant's bootstrap: the common one plus its pieces, its Wasm
    /// modules read from [`Variant::module_dir`] when it has one.
    pub fn bootstrap(&self) -> EnvoyBuilder {
        let Some(dir) = &self.module_dir else {
            return (self.build)(base(true));
        };
        // The harness resolves a module's path when the filter is declared,
        // from FILTERS_WASM_DIR; the benchmark's one thread sets it around
        // that.
        let saved = std::env::var_os("FILTERS_WASM_DIR");
        std::env::set_var("FILTERS_WASM_DIR", dir);
        let builder = (self.build)(base(true));
        match saved {
            Some(v) => std::env::set_var("FILTERS_WASM_DIR", v),
            None => std::env::remove_var("FILTERS_WASM_DIR"),
        }
        builder
    }

    /// Where the variant's module `name` is read from.
    pub fn module_path(&self, name: &str) -> std::path::PathBuf {
        match &self.module_dir {
            Some(dir) => dir.join(format!("{name}.wasm")),
            None => envoy_harness::paths::module(name),
        }
    }

    /// The same variant with its Wasm modules from `dir`, as `<id>-before`.
    pub fn with_modules_of(&self, dir: &std::path::Path) -> Variant {
        Variant {
            id: Box::leak(format!("{}-before", self.id).into_boxed_str()),
            label: format!("{} (modules of {})", self.label, dir.display()),
            build: std::rc::Rc::clone(&self.build),
            modules: self.modules.clone(),
            module_dir: Some(dir.to_path_buf()),
        }
    }
}

fn v(
    id: &'static str,
    label: impl Into<String>,
    modules: Vec<&'static str>,
    build: impl Fn(EnvoyBuilder) -> EnvoyBuilder + 'static,
) -> Variant {
    Variant {
        id,
        label: label.into(),
        build: std::rc::Rc::new(build),
        modules,
        module_dir: None,
    }
}

/// Tracing of every request to Zipkin at the upstream (which discards), with
/// these custom tags.
pub fn tracing(custom_tags: Value) -> Value {
    json!({
        "random_sampling": { "value": 100 },
        "custom_tags": custom_tags,
        "provider": { "name": "envoy.tracers.zipkin", "typed_config": {
            "@type": "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig",
            "collector_cluster": "upstream",
            "collector_endpoint": "/api/v2/spans",
            "collector_endpoint_version": "HTTP_PROTO" } }
    })
}

/// The common bootstrap of every variant.
pub fn base(trace: bool) -> EnvoyBuilder {
    let b = EnvoyBuilder::default()
        .concurrency(1)
        .direct_response(200)
        .component_log_level("wasm:warn")
        .cpu_affinity(&[0])
        .hcm("access_log", json!([]))
        // spans are sent in batches of 1000: a few POSTs per second
        .runtime("tracing.zipkin.min_flush_spans", json!(1000));
    if trace {
        b.hcm("tracing", tracing(json!([])))
    } else {
        b
    }
}

const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];

/// `n` route templates: the three bookinfo ones and `n - 3` generated ones
/// (`METHOD /svcA/resB/{id}`, every one distinct).
pub fn templates(n: usize) -> Value {
    let mut m = bookinfo_templates();
    for i in 0..n.saturating_sub(3) {
        m.push(json!({"value": format!("Op{i}"),
            "template": format!("{} /svc{}/res{}/{{id}}", METHODS[i % 4], i / 50, i % 50)}));
    }
    json!({"attributes": [{"output_attribute": "istio_operationId", "match": m}]})
}

/// `n` CEL rules: `n - 3` generated ones that do not match, then the three
/// bookinfo rules (the request hits the second of them, so it evaluates
/// `n - 1` conditions: first-match order puts most rules before it).
pub fn cel_rules(n: usize) -> Value {
    let mut m: Vec<Value> = (0..n.saturating_sub(3))
        .map(|i| {
            json!({"value": format!("Op{i}"), "condition": format!(
                "request.url_path == '/svc{}/res{}' && request.method == '{}'", i / 50, i % 50, METHODS[i % 4])})
        })
        .collect();
    if let Some(ops) = bookinfo_ops()["match"].as_array() {
        m.extend(ops.iter().cloned());
    }
    json!({"attributes": [{"output_attribute": "istio_operationId", "match": m}]})
}

fn attributegen(config: &Value) -> Wasm {
    Wasm::new("attributegen").config(config.to_string())
}

/// attributegen with the bookinfo operations as templates.
pub fn attributegen_templates() -> Wasm {
    attributegen(&json!({"attributes": [
        {"output_attribute": "istio_operationId", "match": bookinfo_templates()}]}))
}

/// Custom tags reading what trace-tags (or the bundle) wrote.
pub fn trace_tags_custom_tags() -> Value {
    json!([
        {"tag": "tenant", "value": "%FILTER_STATE(wasm.trace_tag.tenant:PLAIN)%"},
        {"tag": "route", "value": "%FILTER_STATE(wasm.trace_tag.route:PLAIN)%"}])
}

/// The native equivalent: `request_header` and `%CEL()%` custom tags.
pub fn native_custom_tags() -> Value {
    json!([
        {"tag": "tenant", "request_header": {"name": "x-tenant", "default_value": "anonymous"}},
        {"tag": "route", "value": "%CEL(request.method + ' ' + request.url_path)%"}])
}

/// The bundle's one document, a section per job (the shape the one-VM module
/// is specified with in issue 6; adjust here if it changes).
pub fn bundle_config() -> Value {
    json!({
        "attributegen": {"attributes": [
            {"output_attribute": "istio_operationId", "match": bookinfo_templates()}]},
        "get_calls": null,
        "trace_tags": trace_tags_config(),
    })
}

/// Lua doing attributegen's bookinfo job (operations on request, response
/// classes on response), writing dynamic metadata.
pub const LUA: &str = r#"
function envoy_on_request(h)
  local hd = h:headers()
  local m, p = hd:get(":method"), hd:get(":path")
  local q = string.find(p, "?", 1, true)
  if q then p = string.sub(p, 1, q - 1) end
  local op
  if p == "/reviews" and m == "GET" then op = "ListReviews"
  elseif m == "GET" and string.match(p, "^/reviews/%w*$") then op = "GetReview"
  elseif p == "/reviews/" and m == "POST" then op = "CreateReview" end
  if op then h:streamInfo():dynamicMetadata():set("bench", "istio_operationId", op) end
end
function envoy_on_response(h)
  local c = tonumber(h:headers():get(":status")) or 0
  local class
  if c >= 200 and c <= 299 then class = "2xx"
  elseif c >= 300 and c <= 399 then class = "3xx"
  elseif c == 404 or c == 429 or c == 503 then class = tostring(c)
  elseif c >= 500 and c <= 599 then class = "5xx"
  elseif c >= 400 and c <= 499 then class = "4xx" end
  if class then h:streamInfo():dynamicMetadata():set("bench", "istio_responseClass", class) end
end
"#;

fn lua() -> Value {
    json!({"name": "envoy.filters.http.lua", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
        "default_source_code": {"inline_string": LUA}}})
}

/// Where the stats logger of `native-stats` reads the operation: the filter
/// state attributegen writes (nothing writes it when the logger runs alone).
pub const OPERATION_FROM_FILTER_STATE: &str = "%FILTER_STATE(wasm.istio_operationId:PLAIN)%";

/// Where the stats logger of `native-all` reads the operation: the dynamic
/// metadata the Lua filter (`LUA`) writes, so that the trio labels each
/// request with its operation as the bundle does.
pub const OPERATION_FROM_LUA: &str = "%DYNAMIC_METADATA(bench:istio_operationId)%";

/// `envoy.access_loggers.stats` doing get-calls' default job: a counter of
/// GET requests labelled by destination, operation (read with
/// `operation_format`) and response code.
pub fn stats_logger(operation_format: &str) -> Value {
    json!({"name": "envoy.access_loggers.stats",
        "filter": {"header_filter": {"header": {"name": ":method", "string_match": {"exact": "GET"}}}},
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.stats.v3.Config",
            "stat_prefix": "native",
            "counters": [{
                "stat": {"name": "istio_get_calls", "tags": [
                    {"name": "destination_service", "value_format": "%UPSTREAM_CLUSTER%"},
                    {"name": "request_operation", "value_format": operation_format},
                    {"name": "response_code", "value_format": "%RESPONSE_CODE%"}]},
                "value_fixed": 1}]}})
}

/// The dynamic module's HTTP filter running `filter_name` with `config`
/// (the same JSON as the Wasm module's; empty: the default configuration),
/// with the Wasm filters' stat namespace.
pub fn dynamic_module(filter_name: &str, config: &str) -> Value {
    json!({"name": format!("telemetry_filters.{filter_name}"), "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
        "dynamic_module_config": {
            "name": "telemetry_filters",
            "module": {"local": {"filename": dynamic_module_path()}},
            "metrics_namespace": "wasmcustom"},
        "filter_name": filter_name,
        "filter_config": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": config}}})
}

/// `libtelemetry_filters.so` beside the Wasm modules (`FILTERS_WASM_DIR`).
pub fn dynamic_module_path() -> std::path::PathBuf {
    envoy_harness::paths::wasm_dir().join("libtelemetry_filters.so")
}

/// The dynamic-module variants: the Wasm variants' jobs and configurations
/// in the native runtime (spans tagged directly: no custom tags).
pub fn dynamic_module_variants() -> Vec<Variant> {
    vec![
        v(
            "dm-empty",
            "dynamic module: no job (the hooks and the module's heartbeat counter only)",
            vec![],
            |b| b.filter(dynamic_module("telemetry_bundle", "{}")),
        ),
        v(
            "dm-ag-templates",
            "dynamic module: attributegen, bookinfo operations as 3 route templates",
            vec![],
            |b| {
                let c = json!({"attributes": [
                    {"output_attribute": "istio_operationId", "match": bookinfo_templates()}]});
                b.filter(dynamic_module("attributegen", &c.to_string()))
            },
        ),
        v(
            "dm-ag-cel-bookinfo",
            "dynamic module: attributegen, Istio's bookinfo CEL rules",
            vec![],
            |b| {
                let c = json!({"attributes": [bookinfo_ops(), bookinfo_classes()]});
                b.filter(dynamic_module("attributegen", &c.to_string()))
            },
        ),
        v(
            "dm-get-calls",
            "dynamic module: get-calls, default config",
            vec![],
            |b| b.filter(dynamic_module("get_calls", "")),
        ),
        v(
            "dm-trace-tags",
            "dynamic module: trace-tags, two tags (header, CEL), on the span directly",
            vec![],
            |b| {
                b.filter(dynamic_module(
                    "trace_tags",
                    &trace_tags_config().to_string(),
                ))
            },
        ),
        v(
            "dm-bundle",
            "dynamic module: the bundle (all three jobs in one filter)",
            vec![],
            |b| {
                b.filter(dynamic_module(
                    "telemetry_bundle",
                    &bundle_config().to_string(),
                ))
            },
        ),
    ]
}

/// Every variant, the floor first. `bundle` adds the one-VM module.
pub fn all(bundle: bool) -> Vec<Variant> {
    let mut out = vec![
        v("floor", "router only (the floor)", vec![], |b| b),
        v(
            "floor-no-tracing",
            "router only, tracing off (not the common bootstrap; for reference)",
            vec![],
            |_| base(false),
        ),
        v(
            "empty-wasm",
            "empty Rust Wasm filter (callbacks only, no host call; test-only)",
            vec!["bench_reference"],
            |b| b.filter(Wasm::new("bench_reference").config(r#"{"empty":true}"#)),
        ),
        v(
            "empty-wasm-min",
            "the empty filter exporting no per-request callback but create/delete (Δ to empty-wasm: 4 calls into V8; test-only)",
            vec!["bench_reference_min"],
            |b| b.filter(Wasm::new("bench_reference_min").config(r#"{"empty":true}"#)),
        ),
        v(
            "reference",
            "trivial reference filter (2 property reads, 1 filter-state write, 1 counter; test-only)",
            vec!["bench_reference"],
            |b| b.filter(Wasm::new("bench_reference")),
        ),
        v(
            "reads-3",
            "reads :path, :method and x-tenant one at a time on request headers (3 header reads; test-only)",
            vec!["bench_reference"],
            |b| {
                b.filter(Wasm::new("bench_reference").config(
                    json!({"reads": {"headers": [":path", ":method", "x-tenant"]}}).to_string(),
                ))
            },
        ),
        v(
            "reads-map",
            "reads the same three from one read of the request-header map (test-only)",
            vec!["bench_reference"],
            |b| {
                b.filter(Wasm::new("bench_reference").config(
                    json!({"reads": {"headers": [":path", ":method", "x-tenant"], "map": true}})
                        .to_string(),
                ))
            },
        ),
        v(
            "ag-templates",
            "attributegen, bookinfo operations as 3 route templates",
            vec!["attributegen"],
            |b| b.filter(attributegen_templates()),
        ),
        v(
            "ag-cel-ops",
            "attributegen, bookinfo operations as 3 CEL rules",
            vec!["attributegen"],
            |b| b.filter(attributegen(&json!({"attributes": [bookinfo_ops()]}))),
        ),
        v(
            "ag-cel-bookinfo",
            "attributegen, Istio's bookinfo CEL rules (3 operations + 7 response classes)",
            vec!["attributegen"],
            |b| b.filter(attributegen(&json!({"attributes": [bookinfo_ops(), bookinfo_classes()]}))),
        ),
        v(
            "hostcel-bookinfo",
            "straightforward host-CEL attributegen, same rules (test-only reference module)",
            vec!["bench_reference"],
            |b| {
                b.filter(Wasm::new("bench_reference").config(
                    json!({"host_cel": [bookinfo_ops(), bookinfo_classes()]}).to_string(),
                ))
            },
        ),
        v(
            "ag-templates-10",
            "attributegen, 10 route templates",
            vec!["attributegen"],
            |b| b.filter(attributegen(&templates(10))),
        ),
        v(
            "ag-templates-1000",
            "attributegen, 1,000 route templates",
            vec!["attributegen"],
            |b| b.filter(attributegen(&templates(1000))),
        ),
        v(
            "ag-templates-5000",
            "attributegen, 5,000 route templates",
            vec!["attributegen"],
            |b| b.filter(attributegen(&templates(5000))),
        ),
        v(
            "ag-cel-10",
            "attributegen, 10 CEL rules (request hits the 9th)",
            vec!["attributegen"],
            |b| b.filter(attributegen(&cel_rules(10))),
        ),
        v(
            "ag-cel-1000",
            "attributegen, 1,000 CEL rules (request hits the 999th)",
            vec!["attributegen"],
            |b| b.filter(attributegen(&cel_rules(1000))),
        ),
        v(
            "get-calls",
            "get-calls, default config",
            vec!["get_calls"],
            |b| b.filter(Wasm::new("get_calls")),
        ),
        v(
            "trace-tags",
            "trace-tags, two tags (header, CEL)",
            vec!["trace_tags"],
            |b| {
                b.filter(Wasm::new("trace_tags").config(trace_tags_config().to_string()))
                    .hcm("tracing", tracing(trace_tags_custom_tags()))
            },
        ),
        v(
            "three-separate",
            "attributegen (templates) + get-calls + trace-tags, three filters, three VMs",
            vec!["attributegen", "get_calls", "trace_tags"],
            |b| {
                b.filter(attributegen_templates())
                    .filter(Wasm::new("trace_tags").config(trace_tags_config().to_string()))
                    .filter(Wasm::new("get_calls"))
                    .hcm("tracing", tracing(trace_tags_custom_tags()))
            },
        ),
        v(
            "native-lua",
            "native: Lua doing attributegen's bookinfo job (dynamic metadata)",
            vec![],
            |b| b.filter(lua()),
        ),
        v(
            "native-stats-logger",
            "native: envoy.access_loggers.stats doing get-calls' job",
            vec![],
            |b| b.hcm("access_log", json!([stats_logger(OPERATION_FROM_FILTER_STATE)])),
        ),
        v(
            "native-custom-tags",
            "native: request_header + %CEL()% custom tags doing trace-tags' job",
            vec![],
            |b| b.hcm("tracing", tracing(native_custom_tags())),
        ),
        v(
            "native-all",
            "native: all three (Lua + stats logger + custom tags)",
            vec![],
            |b| {
                b.filter(lua())
                    .hcm("access_log", json!([stats_logger(OPERATION_FROM_LUA)]))
                    .hcm("tracing", tracing(native_custom_tags()))
            },
        ),
    ];
    if dynamic_module_path().is_file() {
        out.extend(dynamic_module_variants());
    }
    if bundle {
        out.push(v(
            "bundle",
            "telemetry-bundle: all three jobs in one filter, one VM",
            vec!["telemetry_bundle"],
            |b| {
                b.filter(Wasm::new("telemetry_bundle").config(bundle_config().to_string()))
                    .hcm("tracing", tracing(trace_tags_custom_tags()))
            },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_sizes() {
        assert_eq!(
            templates(5000)["attributes"][0]["match"]
                .as_array()
                .unwrap()
                .len(),
            5000
        );
        assert_eq!(
            cel_rules(1000)["attributes"][0]["match"]
                .as_array()
                .unwrap()
                .len(),
            1000
        );
        assert_eq!(
            templates(10)["attributes"][0]["match"][1]["template"],
            "GET /reviews/{id}"
        );
    }
}
