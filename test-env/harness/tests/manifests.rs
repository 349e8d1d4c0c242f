//! Every Istio manifest in `envoyfilter-manifests/` validates against the
//! `openAPIV3Schema` of Istio 1.30's CRD for its kind and version (a real
//! JSON Schema validator; unknown fields rejected; the CRDs' CEL rules
//! evaluated); every Wasm configuration embedded in them validates against
//! its filter's published JSON Schema and parses with the filter's own code.

use envoy_harness::paths::workspace_root;
use serde_json::Value;
use std::path::{Path, PathBuf};

mod k8s;

fn yaml_docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// (group, version, kind) → schema, from Istio's CRD files.
fn crd_schemas() -> Vec<(String, String, String, Value)> {
    crd_schemas_in(&workspace_root().join("test-env/testdata/istio-crds"))
}

/// (group, version, kind) → schema, from the CRD files in `dir`.
fn crd_schemas_in(dir: &Path) -> Vec<(String, String, String, Value)> {
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

/// Every Istio resource in the manifests: (file, document, kind, CRD schema).
fn istio_docs() -> Vec<(PathBuf, Value, String, Value)> {
    resources_of(&crd_schemas())
}

/// Every resource in the manifests whose kind `schemas` has: (file,
/// document, kind, CRD schema).
fn resources_of(
    schemas: &[(String, String, String, Value)],
) -> Vec<(PathBuf, Value, String, Value)> {
    let mut out = Vec::new();
    for file in manifests() {
        for doc in yaml_docs(&file) {
            // Plain-Envoy snippets (lists, bootstrap fragments) have no apiVersion.
            let Some(api) = doc["apiVersion"].as_str() else {
                continue;
            };
            let kind = doc["kind"].as_str().unwrap().to_string();
            let (group, version) = api.split_once('/').unwrap();
            let Some((.., schema)) = schemas
                .iter()
                .find(|(g, v, k, _)| g == group && v == version && *k == kind)
            else {
                continue; // not an Istio kind (PodMonitor, IstioOperator, …)
            };
            out.push((file.clone(), doc, kind, schema.clone()));
        }
    }
    out
}

/// Each Istio resource validates against its CRD's schema as the API server
/// checks it, and stricter: unknown fields are errors (the API server would
/// drop them silently) except where the CRD preserves them; every
/// `x-kubernetes-validations` rule on the way is evaluated and must hold.
#[test]
fn istio_manifests_match_the_crds() {
    let mut checked = Vec::new();
    let mut rules = 0;
    for (file, doc, kind, schema) in istio_docs() {
        let validator = jsonschema::draft4::new(&k8s::strict(&schema)).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {kind}: {errors:#?}", file.display());
        for r in k8s::evaluate_rules(&schema, &doc) {
            assert_eq!(
                r.outcome,
                Ok(true),
                "{}: {kind} at {}: rule {:?} ({})",
                file.display(),
                r.at,
                r.rule,
                r.message
            );
            rules += 1;
        }
        checked.push(format!("{} ({kind})", file.display()));
    }
    assert!(
        checked.len() >= 10,
        "only {} manifests checked",
        checked.len()
    );
    envoy_harness::report(
        "manifests",
        &format!(
            "manifests: {} Istio resources valid against Istio 1.30 CRDs (unknown fields rejected), {rules} x-kubernetes-validations rules evaluated and true",
            checked.len()
        ),
    );
}

/// Envoy Gateway's resources (`dynamic-module/envoy-gateway.yaml`) validate
/// the same way against Envoy Gateway's CRDs. The CRDs are not part of this
/// repository: point `ENVOY_GATEWAY_CRDS` at a folder holding
/// `gateway.envoyproxy.io`'s CRD files (e.g. Envoy Gateway's
/// `charts/gateway-helm/charts/crds/crds/generated/` of the release in
/// use); without it the test says it is skipped.
#[test]
fn envoy_gateway_manifests_match_the_crds() {
    let Some(dir) = std::env::var_os("ENVOY_GATEWAY_CRDS") else {
        let line = "SKIPPED envoy_gateway_manifests_match_the_crds: ENVOY_GATEWAY_CRDS names no folder of Envoy Gateway CRDs";
        eprintln!("{line}");
        envoy_harness::report("envoy-gateway-crds", line);
        return;
    };
    let schemas = crd_schemas_in(Path::new(&dir));
    let mut checked = Vec::new();
    let mut rules = 0;
    for (file, doc, kind, schema) in resources_of(&schemas) {
        let validator = jsonschema::draft4::new(&k8s::strict(&schema)).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {kind}: {errors:#?}", file.display());
        for r in k8s::evaluate_rules(&schema, &doc) {
            assert_eq!(
                r.outcome,
                Ok(true),
                "{}: {kind} at {}: rule {:?}",
                file.display(),
                r.at,
                r.rule
            );
            rules += 1;
        }
        checked.push(kind);
    }
    checked.sort();
    assert_eq!(
        checked,
        ["EnvoyExtensionPolicy", "EnvoyProxy"],
        "resources checked"
    );
    envoy_harness::report(
        "envoy-gateway-crds",
        &format!("Envoy Gateway: {checked:?} valid against the CRDs in {} (unknown fields rejected), {rules} rules evaluated and true", Path::new(&dir).display()),
    );
}

/// A manifest that is not valid must fail, so the checks above mean
/// something: bad enums, an unknown field, a CEL rule broken.
#[test]
fn the_crd_checks_reject_bad_resources() {
    let schemas = crd_schemas();
    let (.., schema) = schemas
        .iter()
        .find(|(_, v, k, _)| k == "WasmPlugin" && v == "v1alpha1")
        .unwrap();
    let validator = jsonschema::draft4::new(&k8s::strict(schema)).unwrap();
    let base = serde_json::json!({"apiVersion": "extensions.istio.io/v1alpha1", "kind": "WasmPlugin",
        "metadata": {"name": "x"}, "spec": {"url": "oci://r/x:1"}});
    assert!(validator.is_valid(&base));
    let mut bad = base.clone();
    bad["spec"]["phase"] = "LATER".into();
    bad["spec"]["failStrategy"] = "SOMETIMES".into();
    assert!(!validator.is_valid(&bad));
    let mut unknown = base.clone();
    unknown["spec"]["matchTraffic"] = serde_json::json!([{"mode": "SERVER"}]);
    assert!(!validator.is_valid(&unknown), "unknown field accepted");
    let mut digest = base.clone();
    digest["spec"]["sha256"] = "sha256:0123".into();
    assert!(!validator.is_valid(&digest));
    // pluginConfig preserves unknown fields: anything goes there.
    let mut config = base.clone();
    config["spec"]["pluginConfig"] = serde_json::json!({"anything": {"at": ["all"]}});
    assert!(validator.is_valid(&config));
    let failed = |doc: &Value| {
        k8s::evaluate_rules(schema, doc)
            .into_iter()
            .filter(|r| r.outcome != Ok(true))
            .map(|r| r.message)
            .collect::<Vec<_>>()
    };
    assert_eq!(failed(&base), Vec::<String>::new());
    let mut scheme = base.clone();
    scheme["spec"]["url"] = "ftp://r/x".into();
    assert_eq!(
        failed(&scheme),
        ["url must have schema one of [http, https, file, oci]"]
    );
    let mut both = base.clone();
    both["spec"]["selector"] = serde_json::json!({"matchLabels": {"app": "a"}});
    both["spec"]["targetRefs"] = serde_json::json!([{"kind": "Service", "name": "a"}]);
    assert_eq!(
        failed(&both),
        ["only one of targetRefs or selector can be set"]
    );
    let mut env = base.clone();
    env["spec"]["vmConfig"] =
        serde_json::json!({"env": [{"name": "A", "valueFrom": "HOST", "value": "x"}]});
    assert_eq!(
        failed(&env),
        ["value may only be set when valueFrom is INLINE"]
    );
}

/// The TrafficExtension checks mean something too: its own enums, the Wasm
/// fields only under `wasm`, and its CEL rules (one of wasm / lua, one of
/// selector / targetRefs, no cross-namespace target).
#[test]
fn the_crd_checks_reject_bad_trafficextensions() {
    let schemas = crd_schemas();
    let (.., schema) = schemas
        .iter()
        .find(|(_, v, k, _)| k == "TrafficExtension" && v == "v1alpha1")
        .expect("the TrafficExtension CRD in test-env/testdata/istio-crds");
    let validator = jsonschema::draft4::new(&k8s::strict(schema)).unwrap();
    let base = serde_json::json!({"apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "TrafficExtension", "metadata": {"name": "x"},
        "spec": {"phase": "STATS", "priority": 10, "wasm": {"url": "oci://r/x:1"}}});
    assert!(validator.is_valid(&base));
    let failed = |doc: &Value| {
        k8s::evaluate_rules(schema, doc)
            .into_iter()
            .filter(|r| r.outcome != Ok(true))
            .map(|r| r.message)
            .collect::<Vec<_>>()
    };
    assert_eq!(failed(&base), Vec::<String>::new());
    // WasmPlugin's flat form is not a TrafficExtension.
    let mut flat = base.clone();
    flat["spec"]["url"] = "oci://r/x:1".into();
    assert!(!validator.is_valid(&flat), "spec.url accepted");
    let mut phase = base.clone();
    phase["spec"]["phase"] = "LATER".into();
    assert!(!validator.is_valid(&phase));
    let mut fail = base.clone();
    fail["spec"]["wasm"]["failStrategy"] = "FAIL_OPEN_PLEASE".into();
    assert!(!validator.is_valid(&fail));
    let mut mode = base.clone();
    mode["spec"]["match"] = serde_json::json!([{"mode": "INBOUND"}]);
    assert!(!validator.is_valid(&mode));
    let mut neither = base.clone();
    neither["spec"].as_object_mut().unwrap().remove("wasm");
    assert_eq!(failed(&neither), ["exactly one of wasm or lua must be set"]);
    let mut both = base.clone();
    both["spec"]["lua"] = serde_json::json!({"inlineCode": "function envoy_on_request(h) end"});
    assert!(!validator.is_valid(&both), "wasm and lua accepted (oneOf)");
    assert_eq!(failed(&both), ["exactly one of wasm or lua must be set"]);
    let mut attach = base.clone();
    attach["spec"]["selector"] = serde_json::json!({"matchLabels": {"app": "a"}});
    attach["spec"]["targetRefs"] =
        serde_json::json!([{"kind": "Service", "group": "", "name": "a"}]);
    assert_eq!(
        failed(&attach),
        ["only one of targetRefs or selector can be set"]
    );
    let mut cross = base.clone();
    cross["spec"]["targetRefs"] = serde_json::json!([{"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "g", "namespace": "other"}]);
    assert_eq!(
        failed(&cross),
        ["cross namespace referencing is not currently supported"]
    );
}

/// Every filter and the bundle ship the three TrafficExtension forms.
#[test]
fn every_filter_has_its_trafficextensions() {
    let docs = istio_docs();
    for f in manifest_gen::filters::FILTERS {
        for (file, attach) in [
            ("trafficextension.yaml", "selector"),
            ("trafficextension-waypoint.yaml", "targetRefs"),
            ("trafficextension-gateway.yaml", "targetRefs"),
        ] {
            let path = workspace_root()
                .join("envoyfilter-manifests")
                .join(f.dir)
                .join(file);
            let (_, doc, kind, _) = docs
                .iter()
                .find(|(p, ..)| *p == path)
                .unwrap_or_else(|| panic!("{}: missing", path.display()));
            assert_eq!(kind, "TrafficExtension");
            assert!(doc["spec"][attach].is_object() || doc["spec"][attach].is_array());
            assert_eq!(doc["spec"]["wasm"]["failStrategy"], "FAIL_OPEN");
        }
    }
}

/// The filter a manifest's Wasm code is (image name of a WasmPlugin URL,
/// module file of an EnvoyFilter), if it is one of the project's.
fn filter_of(code: &str) -> Option<&'static manifest_gen::filters::Filter> {
    let last = code.rsplit('/').next()?;
    if let Some(module) = last.strip_suffix(".wasm") {
        return manifest_gen::filters::by_module(module);
    }
    manifest_gen::filters::by_dir(last.split(':').next()?)
}

/// The Wasm configurations of a manifest document: (code URL or file,
/// configuration JSON). WasmPlugin `pluginConfig`; EnvoyFilter and plain
/// Envoy `StringValue` configurations (direct or in a TypedStruct); the
/// dynamic module's `filter_config` and Envoy Gateway's `dynamicModule` `config`
/// (by `filter_name`, which is the Wasm module's name).
fn wasm_configs(doc: &Value) -> Vec<(String, Value)> {
    fn walk(v: &Value, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Object(m) => {
                if let (Some(vm), Some(cfg)) = (m.get("vm_config"), m.get("configuration")) {
                    let code = &vm["code"];
                    let url = code["remote"]["http_uri"]["uri"]
                        .as_str()
                        .or(code["local"]["filename"].as_str())
                        .unwrap_or_default();
                    let text = cfg["value"].as_str().unwrap_or_default();
                    out.push((url.to_string(), serde_json::from_str(text).unwrap()));
                }
                // The dynamic module: `filter_name` is the module's name.
                if let (Some(name), Some(cfg)) = (
                    m.get("filter_name").and_then(Value::as_str),
                    m.get("filter_config"),
                ) {
                    let text = cfg["value"].as_str().unwrap_or_default();
                    out.push((format!("{name}.wasm"), serde_json::from_str(text).unwrap()));
                }
                m.values().for_each(|x| walk(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if doc["kind"] == "WasmPlugin" {
        out.push((
            doc["spec"]["url"].as_str().unwrap().to_string(),
            doc["spec"]["pluginConfig"].clone(),
        ));
    }
    if doc["kind"] == "TrafficExtension" {
        let wasm = &doc["spec"]["wasm"];
        out.push((
            wasm["url"].as_str().unwrap().to_string(),
            wasm["pluginConfig"].clone(),
        ));
    }
    if doc["kind"] == "EnvoyExtensionPolicy" {
        for m in doc["spec"]["dynamicModule"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let name = m["filterName"].as_str().unwrap_or_default();
            out.push((format!("{name}.wasm"), m["config"].clone()));
        }
    }
    walk(doc, &mut out);
    out
}

/// Every configuration embedded in a manifest validates against its
/// filter's published JSON Schema and is accepted by the filter's own
/// parser (no configuration error logged).
#[test]
fn embedded_configs_match_the_filters_schemas() {
    use filter_common::host::LogLevel;
    let schemas = manifest_gen::filters::Schemas::load(&workspace_root()).unwrap();
    let mut seen = std::collections::BTreeMap::new();
    for file in manifests() {
        for doc in yaml_docs(&file) {
            let docs = match doc {
                Value::Array(items) => items, // plain-Envoy http_filters lists
                other => vec![other],
            };
            for doc in docs {
                for (code, config) in wasm_configs(&doc) {
                    let Some(f) = filter_of(&code) else {
                        continue;
                    };
                    let errors = schemas.errors(f.dir, &config);
                    assert!(
                        errors.is_empty(),
                        "{}: {}: {errors:#?}",
                        file.display(),
                        f.dir
                    );
                    let host = filter_common::fake::FakeHost::new();
                    let raw = config.to_string();
                    let raw = Some(raw.as_bytes());
                    match f.dir {
                        "attributegen" => drop(attributegen::plan::configure(raw, &host)),
                        "get-calls" => drop(get_calls::plan::configure(raw, &host)),
                        "trace-tags" => drop(trace_tags::plan::configure(raw, &host)),
                        _ => drop(telemetry_bundle::configure(raw, &host)),
                    }
                    let logged = host.logs_at_least(LogLevel::Warn);
                    assert!(
                        logged.is_empty(),
                        "{}: {}: {logged:#?}",
                        file.display(),
                        f.dir
                    );
                    *seen.entry(f.dir).or_insert(0) += 1;
                }
            }
        }
    }
    for dir in [
        "attributegen",
        "get-calls",
        "trace-tags",
        "telemetry-bundle",
    ] {
        assert!(seen.get(dir).copied().unwrap_or(0) >= 2, "{dir}: {seen:?}");
    }
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
