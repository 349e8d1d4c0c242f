//! The compose stack's Envoy and Prometheus configurations rewritten for
//! local processes on loopback: only the lines marked `# stack.sh: <what>`
//! change (addresses, ports, paths), and the result is checked for any
//! compose-only host or path left behind.

use regex::Regex;
use std::path::Path;

/// The loopback ports of one local stack.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// Envoy's listener.
    pub listen: u16,
    /// Envoy's admin endpoint.
    pub admin: u16,
    /// Prometheus.
    pub prometheus: u16,
    /// The span collector (OTLP/HTTP).
    pub collector: u16,
    /// The book-store upstream.
    pub bookstore: u16,
    /// The gRPC access-log and metrics collector.
    pub grpc: u16,
}

fn re(pattern: &str) -> Regex {
    // The patterns are constants of this file, tested below.
    Regex::new(pattern).unwrap_or_else(|e| unreachable!("{pattern}: {e}"))
}

/// Replaces the first match of `pattern` on every line that contains
/// `marker` (and, with `at_end`, ends with it).
fn rewrite(text: &str, marker: &str, at_end: bool, pattern: &str, with: &str) -> String {
    let re = re(pattern);
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let marked = if at_end {
            body.ends_with(marker)
        } else {
            body.contains(marker)
        };
        if marked {
            out.push_str(&re.replacen(line, 1, regex::NoExpand(with)));
        } else {
            out.push_str(line);
        }
    }
    out
}

const HOSTPORT: &str = r"\{ address: [^,]*, port_value: [0-9]* \}";

fn loopback(port: u16) -> String {
    format!("{{ address: 127.0.0.1, port_value: {port} }}")
}

/// Envoy's configuration (`test-env/compose/envoy/envoy.yaml`) for local
/// processes: ports, the access log in `state`, the modules in `filters`.
pub fn envoy_yaml(compose: &str, p: Ports, state: &Path, filters: &Path) -> String {
    let mut t = compose.to_string();
    for (marker, port) in [
        ("# stack.sh: admin", p.admin),
        ("# stack.sh: listener", p.listen),
        ("# stack.sh: bookstore", p.bookstore),
        ("# stack.sh: grpc-collector", p.grpc),
    ] {
        t = rewrite(&t, marker, false, HOSTPORT, &loopback(port));
    }
    t = rewrite(
        &t,
        "# stack.sh: collector",
        true,
        HOSTPORT,
        &loopback(p.collector),
    );
    t = rewrite(
        &t,
        "# stack.sh: collector uri",
        false,
        r"http://[^ ]*",
        &format!("http://127.0.0.1:{}/v1/traces", p.collector),
    );
    t = rewrite(
        &t,
        "# stack.sh: access log",
        false,
        r"path: [^ ]*",
        &format!("path: \"{}\"", state.join("access.log").display()),
    );
    rewrite(
        &t,
        "# stack.sh: module",
        false,
        "/etc/envoy/filters/",
        &format!("{}/", filters.display()),
    )
}

/// Which runtime runs the filters of the local stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// The Wasm modules in Envoy's V8 (the compose configuration as written).
    Wasm,
    /// The same filters and JSON in the dynamic module `libtelemetry_filters.so`.
    DynamicModule,
}

impl Runtime {
    /// The runtime named `wasm` or `dynamic-module`.
    pub fn parse(name: &str) -> Option<Runtime> {
        match name {
            "wasm" => Some(Runtime::Wasm),
            "dynamic-module" => Some(Runtime::DynamicModule),
            _ => None,
        }
    }

    /// The name [`Runtime::parse`] takes.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Wasm => "wasm",
            Runtime::DynamicModule => "dynamic-module",
        }
    }
}

const WASM_TYPE_URL: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";

/// Attributes Envoy 1.40's dynamic-module ABI has no attribute id for: the
/// module rejects a configuration whose CEL reads them.
pub const UNREADABLE_IN_DYNAMIC_MODULE: [&str; 3] = [
    "request.duration",
    "request.time",
    "response.backend_latency",
];

/// The stack's Envoy configuration for the dynamic module.
#[derive(Debug)]
pub struct DynamicModuleConfig {
    /// Envoy's configuration (JSON, which Envoy reads as YAML).
    pub envoy: String,
    /// The filters' VM environment variables, which the module reads from
    /// Envoy's process environment.
    pub env: Vec<(String, String)>,
    /// What was left out, and why (one line each).
    pub left_out: Vec<String>,
}

/// Envoy's configuration `envoy_yaml` (already rewritten for loopback) with
/// every Wasm filter of the project replaced by the dynamic module's filter
/// of the same `root_id` and the same JSON configuration, the module at
/// `module`; get-calls metrics that read an attribute of
/// [`UNREADABLE_IN_DYNAMIC_MODULE`] are left out (the module would reject
/// the whole filter).
pub fn dynamic_module_config(
    envoy_yaml: &str,
    module: &Path,
) -> Result<DynamicModuleConfig, String> {
    let mut doc: serde_json::Value =
        serde_yaml_ng::from_str(envoy_yaml).map_err(|e| format!("envoy.yaml: {e}"))?;
    let mut out = DynamicModuleConfig {
        envoy: String::new(),
        env: Vec::new(),
        left_out: Vec::new(),
    };
    let mut replaced = 0;
    replace_wasm_filters(&mut doc, module, &mut out, &mut replaced)?;
    if replaced == 0 {
        return Err("envoy.yaml: no Wasm filter of the project to replace".into());
    }
    out.envoy = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    Ok(out)
}

/// get-calls' JSON without the metrics the dynamic module cannot evaluate.
fn without_unreadable_metrics(json: &str, left_out: &mut Vec<String>) -> Result<String, String> {
    let mut config: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("get_calls configuration: {e}"))?;
    if let Some(metrics) = config
        .get_mut("metrics")
        .and_then(serde_json::Value::as_array_mut)
    {
        metrics.retain(|m| {
            let text = m.to_string();
            match UNREADABLE_IN_DYNAMIC_MODULE.iter().find(|a| text.contains(*a)) {
                Some(attribute) => {
                    left_out.push(format!(
                        "get_calls metric {}: reads {attribute}, which Envoy's dynamic-module ABI does not give",
                        m.get("name").unwrap_or(&serde_json::Value::Null)
                    ));
                    false
                }
                None => true,
            }
        });
    }
    Ok(config.to_string())
}

fn replace_wasm_filters(
    node: &mut serde_json::Value,
    module: &Path,
    out: &mut DynamicModuleConfig,
    replaced: &mut usize,
) -> Result<(), String> {
    use serde_json::Value;
    match node {
        Value::Object(map) => {
            if let Some(Value::Array(filters)) = map.get_mut("http_filters") {
                for f in filters.iter_mut() {
                    if f.pointer("/typed_config/@type").and_then(Value::as_str)
                        != Some(WASM_TYPE_URL)
                    {
                        continue;
                    }
                    let config = f
                        .pointer("/typed_config/config")
                        .cloned()
                        .unwrap_or_default();
                    let Some(name) = config
                        .get("root_id")
                        .and_then(Value::as_str)
                        .filter(|n| envoy_harness::dynamic_module::FILTERS.contains(n))
                    else {
                        continue;
                    };
                    let mut json = config
                        .pointer("/configuration/value")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned();
                    if name == "get_calls" && !json.trim().is_empty() {
                        json = without_unreadable_metrics(&json, &mut out.left_out)?;
                    }
                    if let Some(Value::Object(vars)) =
                        config.pointer("/vm_config/environment_variables/key_values")
                    {
                        for (k, v) in vars {
                            out.env
                                .push((k.clone(), v.as_str().unwrap_or_default().to_owned()));
                        }
                    }
                    *f = envoy_harness::dynamic_module::filter_in(name, &json, module);
                    *replaced += 1;
                }
            }
            for v in map.values_mut() {
                replace_wasm_filters(v, module, out, replaced)?;
            }
        }
        Value::Array(items) => {
            for v in items {
                replace_wasm_filters(v, module, out, replaced)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Prometheus's configuration, scraping the local Envoy's admin endpoint.
pub fn prometheus_yml(compose: &str, p: Ports) -> String {
    rewrite(
        compose,
        "# stack.sh: envoy admin",
        false,
        r"'[^']*'",
        &format!("'127.0.0.1:{}'", p.admin),
    )
}

/// The lines (`N:line`) of the rewritten configurations that still name a
/// compose host or path: a marked line the rewrite missed.
pub fn leftovers(envoy: &str, prometheus: &str) -> Vec<String> {
    let bad = re(
        r"address: (bookstore|jaeger|grpc-collector|0\.0\.0\.0)|//jaeger|/etc/envoy|/dev/stdout",
    );
    let numbered = |text: &str, test: &dyn Fn(&str) -> bool| -> Vec<String> {
        text.lines()
            .enumerate()
            .filter(|(_, l)| test(l))
            .map(|(i, l)| format!("{}:{l}", i + 1))
            .collect()
    };
    let mut out = numbered(envoy, &|l| bad.is_match(l));
    out.extend(numbered(prometheus, &|l| l.contains("envoy:9901")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORTS: Ports = Ports {
        listen: 1,
        admin: 2,
        prometheus: 3,
        collector: 4,
        bookstore: 5,
        grpc: 6,
    };

    #[test]
    fn the_compose_configs_rewrite_completely() {
        let root = envoy_harness::paths::workspace_root().join("test-env/compose");
        let envoy = std::fs::read_to_string(root.join("envoy/envoy.yaml")).unwrap();
        let prom = std::fs::read_to_string(root.join("prometheus/prometheus.yml")).unwrap();
        let e = envoy_yaml(&envoy, PORTS, Path::new("/state"), Path::new("/m"));
        let p = prometheus_yml(&prom, PORTS);
        assert!(leftovers(&e, &p).is_empty(), "{:?}", leftovers(&e, &p));
        assert!(e.contains("{ address: 127.0.0.1, port_value: 2 }  # stack.sh: admin"));
        assert!(e.contains("{ address: 127.0.0.1, port_value: 4 }  # stack.sh: collector\n"));
        assert!(e.contains("{ address: 127.0.0.1, port_value: 6 }  # stack.sh: grpc-collector"));
        assert!(e.contains("uri: http://127.0.0.1:4/v1/traces  # stack.sh: collector uri"));
        assert!(e.contains("path: \"/state/access.log\"  # stack.sh: access log"));
        assert!(e.contains("filename: /m/attributegen.wasm"));
        assert!(p.contains("'127.0.0.1:2'"));
        assert_eq!(e.lines().count(), envoy.lines().count());
    }

    #[test]
    fn the_dynamic_module_takes_the_wasm_filters_place_with_their_json() {
        let root = envoy_harness::paths::workspace_root().join("test-env/compose");
        let envoy = std::fs::read_to_string(root.join("envoy/envoy.yaml")).unwrap();
        let e = envoy_yaml(&envoy, PORTS, Path::new("/state"), Path::new("/m"));
        let dm = dynamic_module_config(&e, Path::new("/m/libtelemetry_filters.so")).unwrap();
        assert!(
            !dm.envoy.contains("envoy.filters.http.wasm"),
            "{}",
            dm.envoy
        );
        let doc: serde_json::Value = serde_json::from_str(&dm.envoy).unwrap();
        let filters = doc
            .pointer(
                "/static_resources/listeners/0/filter_chains/0/filters/0/typed_config/http_filters",
            )
            .and_then(serde_json::Value::as_array)
            .unwrap();
        let names: Vec<_> = filters
            .iter()
            .filter_map(|f| f.pointer("/typed_config/filter_name")?.as_str())
            .collect();
        assert_eq!(names, ["attributegen", "trace_tags", "get_calls"]);
        let ag = filters[0]
            .pointer("/typed_config/filter_config/value")
            .unwrap();
        assert!(ag.as_str().unwrap().contains("GET /books/{id}"));
        assert_eq!(
            filters[0].pointer("/typed_config/dynamic_module_config/module/local/filename"),
            Some(&serde_json::json!("/m/libtelemetry_filters.so"))
        );
        assert_eq!(
            dm.env,
            [("STACK_DEPLOYMENT".to_string(), "local-stack".to_string())]
        );
        let gc = filters[2]
            .pointer("/typed_config/filter_config/value")
            .unwrap();
        assert!(gc.as_str().unwrap().contains("istio_get_calls"));
        assert!(!gc.as_str().unwrap().contains("request.duration"));
        assert_eq!(dm.left_out.len(), 1, "{:?}", dm.left_out);
        assert!(dm.left_out[0].contains("stack_request_duration_milliseconds"));
        assert_eq!(
            Runtime::parse("dynamic-module"),
            Some(Runtime::DynamicModule)
        );
    }

    #[test]
    fn an_unmarked_line_is_reported() {
        let left = leftovers("a\n  address: jaeger\n", "x: ['envoy:9901']");
        assert_eq!(left, vec!["2:  address: jaeger", "1:x: ['envoy:9901']"]);
    }
}
