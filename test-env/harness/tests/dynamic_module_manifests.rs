//! The dynamic module's generated manifests (`envoyfilter-manifests/
//! dynamic-module/`), run in the real Envoy 1.40 with the built module
//! (`target/filters/libtelemetry_filters.so`), each as the consumer would
//! hand it to Envoy:
//!
//! - the plain-Envoy files as written (module path aside);
//! - Envoy Gateway's `EnvoyExtensionPolicy` as its translator builds the
//!   filter: the module found by name in the `EnvoyProxy`'s
//!   `dynamicModules` (local path), `filterName` as `filter_name`, `config`
//!   as the JSON text of a `StringValue`, no `metrics_namespace`;
//! - Istio's `EnvoyFilter` patch value spliced before a stand-in for
//!   `istio.stats`, as istiod would insert it.
//!
//! Each must classify the request (attributegen's filter state, read by
//! Envoy's access log) and count it (`istio_get_calls` on
//! `/stats/prometheus`, as Envoy names it before any relabelling).

use envoy_harness::paths::{wasm_dir, workspace_root};
use envoy_harness::Envoy;
use serde_json::{json, Value};

const MODULE_FILE: &str = manifest_gen::dynamic_module::MODULE_FILE;

fn built_module() -> String {
    let path = wasm_dir().join("libtelemetry_filters.so");
    assert!(
        path.exists(),
        "{} missing: run scripts/build.sh",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

/// The documents of a generated file, the module path pointed at the build.
fn docs(file: &str) -> Vec<Value> {
    let path = workspace_root()
        .join("envoyfilter-manifests/dynamic-module")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .replace(MODULE_FILE, &built_module());
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// Starts Envoy with `filters`, sends two requests, and checks the outputs;
/// returns the `/stats/prometheus` line of `istio_get_calls` for GetReview.
fn run(what: &str, filters: Vec<Value>) -> String {
    let mut b = Envoy::builder()
        .log_attribute("istio_operationId")
        .log_attribute("istio_responseClass");
    for f in filters {
        b = b.filter(f);
    }
    let envoy = b.start().unwrap_or_else(|e| panic!("{what}: {e}"));
    for (path, operation) in [("/reviews/7", "GetReview"), ("/reviews", "ListReviews")] {
        let resp = envoy.get(path).unwrap();
        assert_eq!(resp.status, 200, "{what}: {path}");
        let entry = envoy.access_log_entry(&resp).unwrap();
        assert_eq!(
            entry["attr.istio_operationId"], operation,
            "{what}: {entry}"
        );
        assert_eq!(entry["cel.istio_operationId"], operation, "{what}: {entry}");
        assert_eq!(entry["attr.istio_responseClass"], "2xx", "{what}: {entry}");
    }
    // Envoy's own text (no relabelling): what a scraper receives.
    let prom = envoy.prometheus_raw().unwrap();
    let line = prom
        .lines()
        .find(|l| l.contains("istio_get_calls{") && l.contains("request_operation=\"GetReview\""))
        .unwrap_or_else(|| panic!("{what}: no istio_get_calls for GetReview in\n{prom}"))
        .to_string();
    assert!(line.ends_with(" 1"), "{what}: {line}");
    envoy.stop();
    line
}

/// Plain Envoy: the bundle, and the three filters as separate entries.
#[test]
fn plain_envoy_files_run_as_written() {
    for file in [
        "envoy-dynamic-module.yaml",
        "envoy-dynamic-module-separate.yaml",
    ] {
        let filters: Vec<Value> = docs(file)
            .into_iter()
            .flat_map(|d| d.as_array().cloned().unwrap_or_default())
            .collect();
        assert!(!filters.is_empty(), "{file}");
        let line = run(file, filters);
        // metrics_namespace wasmcustom: Envoy prefixes it (a Wasm VM's
        // registration would strip it); the README's relabel rule restores
        // the Wasm filters' name.
        assert!(
            line.starts_with("envoy_wasmcustom_istio_get_calls{"),
            "{file}: {line}"
        );
    }
}

/// Envoy Gateway: the policy's filter as Envoy Gateway's translator builds
/// it from the policy and the EnvoyProxy's module registry.
#[test]
fn envoy_gateway_policy_as_its_translator_builds_it() {
    let docs = docs("envoy-gateway.yaml");
    let proxy = docs.iter().find(|d| d["kind"] == "EnvoyProxy").unwrap();
    let policy = docs
        .iter()
        .find(|d| d["kind"] == "EnvoyExtensionPolicy")
        .unwrap();
    let mut filters = Vec::new();
    for m in policy["spec"]["dynamicModule"].as_array().unwrap() {
        let entry = proxy["spec"]["dynamicModules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == m["name"])
            .expect("the policy's module is registered in the EnvoyProxy");
        assert_eq!(entry["source"]["type"], "Local");
        filters.push(json!({
            "name": format!("envoy.filters.http.dynamic_modules/{}", m["name"].as_str().unwrap()),
            "typed_config": {
                "@type": manifest_gen::dynamic_module::DYNAMIC_MODULE_TYPE,
                "dynamic_module_config": {
                    "module": {"local": {"filename": entry["source"]["local"]["path"]}},
                },
                "filter_name": m["filterName"],
                "filter_config": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": serde_json::to_string(&m["config"]).unwrap(),
                },
            },
        }));
    }
    let line = run("envoy-gateway.yaml", filters);
    envoy_harness::report(
        "dynamic-module-envoy-gateway",
        &format!("Envoy Gateway (no metrics_namespace): {line}"),
    );
}

/// Istio: the EnvoyFilter's patch value, inserted where `istio.stats`
/// would be (no istio.stats in this Envoy: last before the router).
#[test]
fn istio_envoyfilter_patch_as_istiod_inserts_it() {
    let docs = docs("istio-envoyfilter.yaml");
    let filter = docs.iter().find(|d| d["kind"] == "EnvoyFilter").unwrap();
    let patches = filter["spec"]["configPatches"].as_array().unwrap();
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0]["patch"]["operation"], "INSERT_BEFORE");
    assert_eq!(
        patches[0]["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"],
        "istio.stats"
    );
    let line = run(
        "istio-envoyfilter.yaml",
        vec![patches[0]["patch"]["value"].clone()],
    );
    assert!(
        line.starts_with("envoy_wasmcustom_istio_get_calls{"),
        "{line}"
    );
}
