//! Static checks of the stack's files (no Docker, no Envoy): the Grafana
//! dashboard against a JSON Schema of Grafana's provisioning format plus
//! what a schema cannot say (unique ids, no overlapping panels, datasource
//! uids that the provisioning defines), the provisioning files, the compose
//! file (pinned, overridable images; loopback-only ports) and the Envoy
//! bootstrap (filter order, phases, stats tags for every label, the lines
//! `scripts/stack.sh` rewrites). The stack's real behaviour is asserted by
//! `scripts/test-compose.sh`.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml(rel: &str) -> Value {
    serde_yaml_ng::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn dashboard() -> Value {
    serde_json::from_str(&read("compose/grafana/dashboards/telemetry-filters.json")).unwrap()
}

fn panels(d: &Value) -> Vec<&Value> {
    let top: Vec<&Value> = d["panels"].as_array().unwrap().iter().collect();
    let mut all = top.clone();
    for p in top {
        all.extend(p["panels"].as_array().into_iter().flatten());
    }
    all
}

#[test]
fn dashboard_matches_the_provisioning_schema() {
    let schema: Value =
        serde_json::from_str(&read("compose/grafana/dashboard.schema.json")).unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let d = dashboard();
    let errors: Vec<String> = validator
        .iter_errors(&d)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");

    // The schema rejects what Grafana rejects or silently drops.
    let mut wrapped = serde_json::json!({ "dashboard": d.clone() });
    assert!(!validator.is_valid(&wrapped), "API envelope accepted");
    wrapped = d.clone();
    wrapped["panels"][0]["gridPos"]["w"] = 30.into();
    assert!(
        !validator.is_valid(&wrapped),
        "panel wider than 24 accepted"
    );
    wrapped = d.clone();
    wrapped["panels"][0]["targets"][0]
        .as_object_mut()
        .unwrap()
        .remove("refId");
    assert!(
        !validator.is_valid(&wrapped),
        "target without refId accepted"
    );
    wrapped = d;
    wrapped["uid"] = "has spaces".into();
    assert!(!validator.is_valid(&wrapped), "bad uid accepted");
}

#[test]
fn dashboard_layout_ids_and_datasources_are_consistent() {
    let d = dashboard();
    let ps = panels(&d);
    let ids: BTreeSet<i64> = ps.iter().map(|p| p["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), ps.len(), "panel ids must be unique");
    // No two panels overlap, none sticks out of the 24-column grid.
    let rects: Vec<(i64, i64, i64, i64)> = ps
        .iter()
        .map(|p| {
            let g = &p["gridPos"];
            let r = (
                g["x"].as_i64().unwrap(),
                g["y"].as_i64().unwrap(),
                g["w"].as_i64().unwrap(),
                g["h"].as_i64().unwrap(),
            );
            assert!(r.0 + r.2 <= 24, "{} sticks out", p["title"]);
            r
        })
        .collect();
    for (i, a) in rects.iter().enumerate() {
        for b in rects.iter().skip(i + 1) {
            let apart =
                a.0 + a.2 <= b.0 || b.0 + b.2 <= a.0 || a.1 + a.3 <= b.1 || b.1 + b.3 <= a.1;
            assert!(apart, "panels at {a:?} and {b:?} overlap");
        }
    }
    // Every datasource uid used is provisioned, with the right type.
    let provisioned: Vec<(String, String)> =
        yaml("compose/grafana/provisioning/datasources/datasources.yaml")["datasources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|ds| {
                (
                    ds["uid"].as_str().unwrap().to_string(),
                    ds["type"].as_str().unwrap().to_string(),
                )
            })
            .collect();
    let text = d.to_string();
    let mut refs = Vec::new();
    collect_datasources(&d, &mut refs);
    assert!(!refs.is_empty());
    for (ty, uid) in refs {
        assert!(
            provisioned.contains(&(uid.clone(), ty.clone())),
            "datasource {ty}/{uid} is not provisioned: {provisioned:?}"
        );
    }
    // The trace links go to the provisioned Jaeger datasource and service.
    assert!(
        text.contains("%22uid%22%3A%22jaeger%22"),
        "Explore link to the jaeger datasource"
    );
    assert!(text.contains("service=envoy-stack"), "Jaeger UI link");
    // Required panels of issue 5.
    let titles: Vec<&str> = ps.iter().map(|p| p["title"].as_str().unwrap()).collect();
    for want in [
        "Requests per operation",
        "Errors per operation",
        "Latency per operation",
        "istio_get_calls per operation and code",
    ] {
        assert!(
            titles.iter().any(|t| t.starts_with(want)),
            "no panel {want:?} in {titles:?}"
        );
    }
    for p in &ps {
        let links = p["fieldConfig"]["defaults"]["links"]
            .as_array()
            .map_or(0, Vec::len);
        assert!(links >= 1, "{} has no data link to traces", p["title"]);
    }
}

fn collect_datasources(v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Object(ds)) = m.get("datasource") {
                if let (Some(t), Some(u)) = (
                    ds.get("type").and_then(Value::as_str),
                    ds.get("uid").and_then(Value::as_str),
                ) {
                    out.push((t.to_string(), u.to_string()));
                }
            }
            m.values().for_each(|x| collect_datasources(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_datasources(x, out)),
        _ => {}
    }
}

#[test]
fn grafana_provisioning_files_are_in_grafanas_format() {
    let ds = yaml("compose/grafana/provisioning/datasources/datasources.yaml");
    assert_eq!(ds["apiVersion"], 1);
    for d in ds["datasources"].as_array().unwrap() {
        for k in ["name", "uid", "type", "url", "access"] {
            assert!(d[k].is_string(), "datasource field {k} in {d}");
        }
    }
    let dash = yaml("compose/grafana/provisioning/dashboards/dashboards.yaml");
    assert_eq!(dash["apiVersion"], 1);
    let p = &dash["providers"][0];
    assert_eq!(p["type"], "file");
    let folder = p["options"]["path"].as_str().unwrap();
    // The compose file mounts the dashboards exactly there.
    assert!(
        read("docker-compose.yaml").contains(&format!("./compose/grafana/dashboards:{folder}:ro"))
    );
}

#[test]
fn compose_images_are_pinned_overridable_and_ports_loopback_only() {
    let c = yaml("docker-compose.yaml");
    let services = c["services"].as_object().unwrap();
    for want in [
        "envoy",
        "bookstore",
        "traffic",
        "jaeger",
        "prometheus",
        "grafana",
    ] {
        assert!(services.contains_key(want), "service {want}");
    }
    for (name, s) in services {
        // YAML merge keys (`<<: *stack-tools`) are not resolved by the parser.
        let mut s = s.clone();
        if let Some(base) = s.get("<<").and_then(Value::as_object).cloned() {
            for (k, v) in base {
                s.as_object_mut().unwrap().entry(k).or_insert(v);
            }
        }
        let image = s["image"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no image"));
        // ${VAR:-default}: overridable, with a pinned default.
        let inner = image
            .strip_prefix("${")
            .and_then(|i| i.strip_suffix('}'))
            .unwrap_or_else(|| panic!("{name}: image {image} is not an environment variable"));
        let (var, default) = inner.split_once(":-").unwrap();
        assert!(var.ends_with("_IMAGE"), "{name}: {var}");
        let tag = default.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
        assert!(
            tag.chars().any(|c| c.is_ascii_digit()) && tag != "latest",
            "{name}: {default} not pinned"
        );
        for port in s["ports"].as_array().into_iter().flatten() {
            assert!(
                port.as_str().unwrap().starts_with("127.0.0.1:"),
                "{name}: {port} not on loopback"
            );
        }
    }
    assert_eq!(
        c["services"]["envoy"]["image"],
        "${ENVOY_IMAGE:-envoyproxy/envoy:v1.40.0}"
    );
    // The stand-in overlay puts the collector on Jaeger's OTLP port.
    let o = yaml("compose/local-standins.yaml");
    let ep: Vec<&str> = o["services"]["jaeger"]["entrypoint"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(ep.contains(&"0.0.0.0:4318"), "{ep:?}");
}

fn http_filters(envoy: &Value) -> Vec<Value> {
    envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"]
        .as_array()
        .unwrap()
        .clone()
}

fn wasm_config(f: &Value) -> Value {
    serde_json::from_str(
        f["typed_config"]["config"]["configuration"]["value"]
            .as_str()
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn envoy_bootstrap_order_phases_and_stats_tags() {
    let text = read("compose/envoy/envoy.yaml");
    let envoy: Value = serde_yaml_ng::from_str(&text).unwrap();
    let filters = http_filters(&envoy);
    let names: Vec<&str> = filters
        .iter()
        .map(|f| {
            f["typed_config"]["config"]["name"]
                .as_str()
                .unwrap_or(f["name"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        names,
        [
            "attributegen",
            "trace_tags",
            "get_calls",
            "envoy.filters.http.router"
        ]
    );
    for f in filters.iter().take(3) {
        let file = f["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"]
            .as_str()
            .unwrap();
        assert!(file.starts_with("/etc/envoy/filters/"), "{file}");
        assert_eq!(f["typed_config"]["config"]["failure_policy"], "FAIL_OPEN");
    }
    // attributegen's operation ids exist on request headers, so trace-tags sees them.
    let ag = wasm_config(&filters[0]);
    let op = &ag["attributes"][0];
    assert_eq!(op["output_attribute"], "istio_operationId");
    assert_eq!(op["phase"], "ON_REQUEST");
    let ops: BTreeSet<&str> = op["match"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(ops, telemetry_stack::OPERATIONS.iter().copied().collect());
    // trace-tags reads that attribute; every tag it writes is a custom tag.
    let tt = wasm_config(&filters[1]);
    let tags: Vec<&str> = tt["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(tt["tags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["attribute"] == "wasm.istio_operationId"));
    let hcm = &envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    let custom: Vec<&str> = hcm["tracing"]["custom_tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag"].as_str().unwrap())
        .collect();
    for t in &tags {
        assert!(
            custom.contains(t),
            "trace-tags tag {t} is not a custom tag: {custom:?}"
        );
        assert!(text.contains(&format!("%FILTER_STATE(wasm.trace_tag.{t}:PLAIN)%")));
    }
    // Every get-calls label has its stats_tags extractor; istio_get_calls is defined.
    let gc = wasm_config(&filters[2]);
    let extractors: Vec<&str> = envoy["stats_config"]["stats_tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag_name"].as_str().unwrap())
        .collect();
    let metrics = gc["metrics"].as_array().unwrap();
    assert!(metrics.iter().any(|m| m["name"] == "istio_get_calls"));
    for m in metrics {
        for label in m["dimensions"].as_object().unwrap().keys() {
            assert!(
                extractors.contains(&label.as_str()),
                "{label} has no stats_tags extractor"
            );
        }
    }
    for t in envoy["stats_config"]["stats_tags"].as_array().unwrap() {
        let name = t["tag_name"].as_str().unwrap();
        assert_eq!(t["regex"], format!(r"({name}=\.=(.*?);\.;)"));
    }
    // scripts/stack.sh rewrites exactly these lines.
    for marker in [
        "admin",
        "listener",
        "bookstore",
        "collector",
        "collector uri",
        "access log",
        "module",
    ] {
        let n = text
            .lines()
            .filter(|l| l.ends_with(&format!("# stack.sh: {marker}")))
            .count();
        let want = if marker == "module" { 3 } else { 1 };
        assert_eq!(n, want, "marker {marker}");
    }
    // Prometheus scrapes Envoy's admin endpoint.
    let prom = yaml("compose/prometheus/prometheus.yml");
    let job = &prom["scrape_configs"][0];
    assert_eq!(job["metrics_path"], "/stats/prometheus");
    assert_eq!(job["static_configs"][0]["targets"][0], "envoy:9901");
}
