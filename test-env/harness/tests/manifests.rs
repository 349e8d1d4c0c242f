//! Every Istio manifest in `envoyfilter-manifests/` validates against the
//! `openAPIV3Schema` of Istio 1.30's CRD for its kind and version (with a real
//! JSON Schema validator); Wasm configurations embedded in them parse.

use envoy_harness::paths::workspace_root;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn yaml_docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// (group, version, kind) → schema, from the CRD files.
fn crd_schemas() -> Vec<(String, String, String, Value)> {
    let dir = workspace_root().join("test-env/testdata/istio-crds");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            for crd in yaml_docs(&path) {
                let group = crd["spec"]["group"].as_str().unwrap().to_string();
                let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_string();
                for v in crd["spec"]["versions"].as_array().unwrap() {
                    out.push((
                        group.clone(),
                        v["name"].as_str().unwrap().to_string(),
                        kind.clone(),
                        v["schema"]["openAPIV3Schema"].clone(),
                    ));
                }
            }
        }
    }
    out
}

fn manifests() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![workspace_root().join("envoyfilter-manifests")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn istio_manifests_match_the_crds() {
    let schemas = crd_schemas();
    let mut checked = 0;
    for file in manifests() {
        for doc in yaml_docs(&file) {
            // Plain-Envoy snippets (lists, bootstrap fragments) have no apiVersion.
            let Some(api) = doc["apiVersion"].as_str() else {
                continue;
            };
            let kind = doc["kind"].as_str().unwrap();
            let (group, version) = api.split_once('/').unwrap();
            let Some((.., schema)) = schemas
                .iter()
                .find(|(g, v, k, _)| g == group && v == version && k == kind)
            else {
                continue; // not an Istio kind
            };
            let validator = jsonschema::draft4::new(schema).unwrap();
            let errors: Vec<String> = validator
                .iter_errors(&doc)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{}: {kind}: {errors:#?}", file.display());
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} manifests checked");
}

/// A manifest that is not valid must fail, so the check above means something.
#[test]
fn the_schema_check_rejects_a_bad_wasmplugin() {
    let schemas = crd_schemas();
    let (.., schema) = schemas
        .iter()
        .find(|(_, v, k, _)| k == "WasmPlugin" && v == "v1alpha1")
        .unwrap();
    let validator = jsonschema::draft4::new(schema).unwrap();
    let bad: Value = serde_json::json!({"apiVersion": "extensions.istio.io/v1alpha1", "kind": "WasmPlugin",
        "metadata": {"name": "x"}, "spec": {"url": "oci://r/x:1", "phase": "LATER", "failStrategy": "SOMETIMES"}});
    assert!(!validator.is_valid(&bad));
}

/// The attributegen configurations inside the manifests (WasmPlugin
/// `pluginConfig`, EnvoyFilter `StringValue`) parse with the filter's own
/// configuration types.
#[test]
fn embedded_attributegen_configs_parse() {
    use attributegen::config::PluginConfig;
    use filter_common::config::parse_json;
    let mut seen = 0;
    for file in manifests() {
        let text = std::fs::read_to_string(&file).unwrap();
        // get-calls manifests name attributegen (filter order) but carry
        // get-calls configurations: tests/get_calls.rs parses those.
        if !text.contains("attributegen") || file.components().any(|c| c.as_os_str() == "get-calls")
        {
            continue;
        }
        for doc in yaml_docs(&file) {
            let mut configs = Vec::new();
            if doc["kind"] == "WasmPlugin" {
                configs.push(doc["spec"]["pluginConfig"].to_string());
            }
            configs.extend(envoy_harness::string_value_configs(&doc));
            for raw in configs {
                let c: PluginConfig = parse_json(Some(raw.as_bytes()))
                    .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                assert!(!c.attributes.is_empty(), "{}", file.display());
                seen += 1;
            }
        }
    }
    assert!(seen >= 2, "{seen}");
}

/// The plain-Envoy snippets (`envoy-http-filter.yaml`: a list of HTTP
/// filters) run as written in a real Envoy, module path aside.
#[test]
fn plain_envoy_snippets_run() {
    let wasm_dir = envoy_harness::paths::wasm_dir();
    for file in manifests() {
        if !file
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("envoy-http-filter")
        {
            continue;
        }
        let text = std::fs::read_to_string(&file)
            .unwrap()
            .replace("/etc/envoy/wasm", &wasm_dir.to_string_lossy());
        let filters: Vec<Value> = serde_yaml_ng::from_str(&text).unwrap();
        let mut b = envoy_harness::Envoy::builder().log_attribute("istio_operationId");
        for f in filters {
            b = b.filter(f);
        }
        let envoy = b
            .start()
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let resp = envoy.get("/books").unwrap();
        assert_eq!(resp.status, 200);
        let entry = envoy.access_log_entry(&resp).unwrap();
        if text.contains("attributegen") {
            assert_eq!(
                entry["attr.istio_operationId"],
                "ListBooks",
                "{}",
                file.display()
            );
        }
    }
}
