//! The Istio resources: WasmPlugin, EnvoyFilter (ECDS) and Telemetry.

use crate::filters::Filter;
use crate::yaml::{map, n, s, seq, Doc};
use serde_json::Value as Json;
use serde_yaml_ng::Value;

/// Image repository of the WasmPlugin URLs.
pub const OCI_REPO: &str = "ghcr.io/wasm-telemetry-filters";
/// Where the EnvoyFilters' remote modules are downloaded from.
pub const RELEASES: &str =
    "https://github.com/wasm-telemetry-filters/wasm-telemetry-filters/releases/download";
/// Namespace and workload the examples target.
pub const NAMESPACE: &str = "default";
/// The `app` label of the workload the examples target.
pub const APP: &str = "reviews";
/// The Envoy Wasm filter's type URL.
pub const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";

/// What the generator needs to know about one built module.
#[derive(Debug, Clone)]
pub struct Built {
    /// The filter.
    pub filter: Filter,
    /// Version of the release (`0.1.0`).
    pub version: String,
    /// The example configuration (`pluginConfig`).
    pub config: Json,
    /// The same, keys in the example's order (for rendering).
    pub ordered: Value,
    /// sha256 of the module bytes, hex (EnvoyFilter remote code).
    pub module_sha256: String,
    /// Manifest digest of the Wasm-artifact image, hex without `sha256:`
    /// (WasmPlugin `sha256` for an `oci://` URL).
    pub image_digest: String,
}

impl Built {
    /// `oci://<repo>/<dir>:<version>`.
    pub fn url(&self) -> String {
        format!("oci://{OCI_REPO}/{}:{}", self.filter.dir, self.version)
    }
    /// The release download URL of the module.
    pub fn remote_uri(&self) -> String {
        format!("{RELEASES}/v{}/{}.wasm", self.version, self.filter.module)
    }
    /// ECDS resource and HTTP filter name of the EnvoyFilter form.
    pub fn ecds_name(&self) -> String {
        format!("istio.{}", self.filter.module)
    }
    /// Environment variables the example configuration reads
    /// (trace-tags `environment` sources), with the value the examples use.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        collect_env(&self.config, &mut out);
        out
    }
}

fn collect_env(v: &Json, out: &mut Vec<(String, String)>) {
    match v {
        Json::Object(m) => {
            if let Some(name) = m.get("environment").and_then(Json::as_str) {
                if !out.iter().any(|(k, _)| k == name) {
                    let value = if name == "DEPLOYMENT_TRACK" {
                        "canary"
                    } else {
                        ""
                    };
                    out.push((name.to_string(), value.to_string()));
                }
            }
            m.values().for_each(|x| collect_env(x, out));
        }
        Json::Array(a) => a.iter().for_each(|x| collect_env(x, out)),
        _ => {}
    }
}

pub(crate) fn metadata(name: &str) -> Value {
    map([("name", s(name)), ("namespace", s(NAMESPACE))])
}

/// `app: <APP>`, the labels every resource selects.
pub(crate) fn app_labels() -> Value {
    map([("app", s(APP))])
}

fn selector() -> Value {
    map([("matchLabels", app_labels())])
}

/// A config patch's `patch`: `operation` applied with `value`.
pub(crate) fn patch(operation: &str, value: Value) -> Value {
    map([("operation", s(operation)), ("value", value)])
}

/// An EnvoyFilter `match` on the inbound HTTP connection manager; `filter`
/// adds more to its `filter` (e.g. a `subFilter`).
pub(crate) fn inbound_hcm<'a>(filter: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
    let hcm = [("name", s("envoy.filters.network.http_connection_manager"))];
    map([
        ("context", s("SIDECAR_INBOUND")),
        (
            "listener",
            map([(
                "filterChain",
                map([("filter", map(hcm.into_iter().chain(filter)))]),
            )]),
        ),
    ])
}

/// The filter state trace-tags writes for tag `t`, as an Envoy format string.
fn trace_tag_state(t: &str) -> String {
    format!("%FILTER_STATE(wasm.trace_tag.{t}:PLAIN)%")
}

/// Why FAIL_OPEN, written next to every `failStrategy`.
pub const FAIL_OPEN_REASON: &str = "\
FAIL_OPEN: telemetry must never turn a good request into an error.
- Image fetch fails: the agent puts an allow-all filter in the plugin's
  place only for FAIL_OPEN (deny-all otherwise: every request 403).
- The VM traps: that one request fails with 503, then the filter is skipped
  until the next configuration (its heartbeat
  telemetry_filters_requests_total stops growing; see the README's alert). Istio 1.27+: FAIL_RELOAD restarts
  the VM instead.";

/// The WasmPlugin. `config` overrides the example's pluginConfig.
pub fn wasmplugin(b: &Built, name: &str, config: &Value, header: &str) -> Doc {
    let f = &b.filter;
    let mut spec = vec![
        ("selector", selector()),
        ("url", s(&b.url())),
        ("sha256", s(&b.image_digest)),
        ("imagePullPolicy", s("IfNotPresent")),
        ("phase", s(f.phase)),
        ("priority", n(f.priority)),
        ("failStrategy", s("FAIL_OPEN")),
    ];
    if f.server_only {
        spec.push(("match", seq([map([("mode", s("SERVER"))])])));
    }
    if let Some(vm) = vm_config(b) {
        spec.push(("vmConfig", vm));
    }
    spec.push(("pluginConfig", config.clone()));
    let value = map([
        ("apiVersion", s("extensions.istio.io/v1alpha1")),
        ("kind", s("WasmPlugin")),
        ("metadata", metadata(name)),
        ("spec", map(spec)),
    ]);
    Doc::new(header, value)
        .note("  sha256:", "Manifest digest of the image (Istio compares it with the pulled image's digest).")
        .note("  phase:", "Every phase runs before istio.stats; within a phase, higher priority runs first.\nChain: attributegen (AUTHN) -> trace-tags (STATS, 20) -> get-calls (STATS, 10) -> istio.stats.")
        .note("  failStrategy:", FAIL_OPEN_REASON)
}

/// `vmConfig` with the environment variables the example reads, if any.
fn vm_config(b: &Built) -> Option<Value> {
    let env = b.env();
    if env.is_empty() {
        return None;
    }
    let entries = env
        .iter()
        .map(|(k, v)| map([("name", s(k)), ("valueFrom", s("INLINE")), ("value", s(v))]));
    Some(map([("env", seq(entries))]))
}

/// What a TrafficExtension attaches to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    /// Sidecars, by `selector` (`app: reviews`).
    Sidecar,
    /// The ambient waypoint of the `reviews` Service (`targetRefs` kind
    /// `Service`; the waypoint's listeners are inbound: `SERVER`).
    Waypoint,
    /// A Kubernetes Gateway (`targetRefs` kind `Gateway`; a gateway's
    /// listeners count as `CLIENT`, so `match.mode: SERVER` would never
    /// match there and is left out).
    Gateway,
}

/// The Kubernetes Gateway the gateway variant targets (Istio's bookinfo).
pub const GATEWAY: &str = "bookinfo-gateway";

/// The TrafficExtension (Istio 1.30+): phase, priority and match as the
/// WasmPlugin's, the Wasm fields under `wasm`. `config` is the pluginConfig.
pub fn trafficextension(
    b: &Built,
    name: &str,
    attach: Attach,
    config: &Value,
    header: &str,
) -> Doc {
    let f = &b.filter;
    let mut spec = match attach {
        Attach::Sidecar => vec![("selector", selector())],
        Attach::Waypoint => vec![(
            "targetRefs",
            seq([map([
                ("kind", s("Service")),
                ("group", s("")),
                ("name", s(APP)),
            ])]),
        )],
        Attach::Gateway => vec![(
            "targetRefs",
            seq([map([
                ("kind", s("Gateway")),
                ("group", s("gateway.networking.k8s.io")),
                ("name", s(GATEWAY)),
            ])]),
        )],
    };
    spec.push(("phase", s(f.phase)));
    spec.push(("priority", n(f.priority)));
    if f.server_only && attach != Attach::Gateway {
        spec.push(("match", seq([map([("mode", s("SERVER"))])])));
    }
    let mut wasm = vec![
        ("url", s(&b.url())),
        ("sha256", s(&b.image_digest)),
        ("imagePullPolicy", s("IfNotPresent")),
        ("failStrategy", s("FAIL_OPEN")),
    ];
    if let Some(vm) = vm_config(b) {
        wasm.push(("vmConfig", vm));
    }
    wasm.push(("pluginConfig", config.clone()));
    spec.push(("wasm", map(wasm)));
    let value = map([
        ("apiVersion", s("extensions.istio.io/v1alpha1")),
        ("kind", s("TrafficExtension")),
        ("metadata", metadata(name)),
        ("spec", map(spec)),
    ]);
    let doc = Doc::new(header, value)
        .note("  phase:", "Every phase runs before istio.stats; within a phase, higher priority runs first,\nWasmPlugins (which istiod turns into TrafficExtensions) and TrafficExtensions\nsorted together. Chain: attributegen (AUTHN) -> trace-tags (STATS, 20) ->\nget-calls (STATS, 10) -> istio.stats.")
        .note("    sha256:", "Manifest digest of the image (Istio compares it with the pulled image's digest).")
        .note("    failStrategy:", FAIL_OPEN_REASON);
    match attach {
        Attach::Sidecar => doc,
        Attach::Waypoint => doc.note("  targetRefs:", "The waypoint that serves the reviews Service (ambient mode; label the Service\nor its namespace with istio.io/use-waypoint). Its listeners are inbound, so\nmatch.mode SERVER applies there as on a sidecar."),
        Attach::Gateway => doc.note("  targetRefs:", "A Kubernetes Gateway deployed by Istio (or a waypoint, by its Gateway name).\nA gateway's listeners count as CLIENT traffic: no match.mode SERVER here."),
    }
}

/// The two-part ECDS EnvoyFilter: an HTTP filter inserted before
/// `istio.stats` that takes its configuration from ECDS, and that
/// configuration (remote code + sha256, downloaded and cached by the agent).
/// `extra` patches follow. `pre_1_25`: for proxies older than Envoy 1.33
/// (Istio before 1.25), which have no `failure_policy`: `fail_open: true`.
pub fn envoyfilter(
    b: &Built,
    config: &Value,
    header: &str,
    extra: Vec<Value>,
    pre_1_25: bool,
) -> Doc {
    let f = &b.filter;
    let name = b.ecds_name();
    let insert = map([
        ("applyTo", s("HTTP_FILTER")),
        (
            "match",
            inbound_hcm([("subFilter", map([("name", s("istio.stats"))]))]),
        ),
        (
            "patch",
            patch(
                "INSERT_BEFORE",
                map([
                    ("name", s(&name)),
                    (
                        "config_discovery",
                        map([
                            (
                                "config_source",
                                map([("ads", map([])), ("initial_fetch_timeout", s("0s"))]),
                            ),
                            ("type_urls", seq([s(WASM_TYPE)])),
                        ]),
                    ),
                ]),
            ),
        ),
    ]);
    let mut vm = vec![
        ("vm_id", s(f.module)),
        ("runtime", s("envoy.wasm.runtime.v8")),
        (
            "code",
            map([(
                "remote",
                map([
                    (
                        "http_uri",
                        map([("uri", s(&b.remote_uri())), ("timeout", s("30s"))]),
                    ),
                    ("sha256", s(&b.module_sha256)),
                ]),
            )]),
        ),
    ];
    let env = b.env();
    if !env.is_empty() {
        let kv = env.iter().map(|(k, v)| (k.as_str(), s(v)));
        vm.push(("environment_variables", map([("key_values", map(kv))])));
    }
    let config = map([
        ("name", s(f.module)),
        ("root_id", s(f.module)),
        if pre_1_25 {
            ("fail_open", Value::Bool(true))
        } else {
            ("failure_policy", s("FAIL_OPEN"))
        },
        ("vm_config", map(vm)),
        (
            "configuration",
            map([
                (
                    "@type",
                    s("type.googleapis.com/google.protobuf.StringValue"),
                ),
                (
                    "value",
                    s(&serde_json::to_string(config).unwrap_or_default()),
                ),
            ]),
        ),
    ]);
    let ext = map([
        ("applyTo", s("EXTENSION_CONFIG")),
        (
            "patch",
            patch(
                "ADD",
                map([
                    ("name", s(&name)),
                    (
                        "typed_config",
                        map([("@type", s(WASM_TYPE)), ("config", config)]),
                    ),
                ]),
            ),
        ),
    ]);
    let mut patches = vec![insert, ext];
    patches.extend(extra);
    let value = map([
        ("apiVersion", s("networking.istio.io/v1alpha3")),
        ("kind", s("EnvoyFilter")),
        ("metadata", metadata(f.dir)),
        (
            "spec",
            map([
                ("workloadSelector", map([("labels", app_labels())])),
                ("priority", n(f.envoyfilter_priority)),
                ("configPatches", seq(patches)),
            ]),
        ),
    ]);
    let (policy_line, policy_note) = if pre_1_25 {
        ("            fail_open:", "Envoy < 1.33 (Istio before 1.25) has no failure_policy. fail_open: true (deprecated,\naccepted up to Envoy 1.40 with a warning): a VM that traps is skipped, even the\ntrapping request continues.")
    } else {
        ("            failure_policy:", "Envoy >= 1.33 (Istio 1.25+); older proxies: envoyfilter-pre-*.yaml (fail_open).\nFAIL_OPEN: a VM that traps fails one request (503), then is skipped.")
    };
    Doc::new(header, value)
        .note("  priority:", "EnvoyFilters apply in ascending priority; each INSERT_BEFORE istio.stats lands\nright before it, so: attributegen (10) -> trace-tags (20) -> get-calls (30) -> istio.stats.")
        .note(policy_line, policy_note)
        .note("                  sha256:", "sha256 of the module file itself (not of an image).")
}

/// The HCM `tracing.custom_tags` MERGE patch reading trace-tags' filter
/// state (`value` tags, Envoy 1.37+) or, `headers`, the `x-trace-tag-<name>`
/// request headers (`request_header` tags, every Envoy).
pub fn tracing_patch(tags: &[String], headers: bool) -> Value {
    let custom = tags.iter().map(|t| {
        if headers {
            map([
                ("tag", s(t)),
                (
                    "request_header",
                    map([("name", s(&format!("x-trace-tag-{t}")))]),
                ),
            ])
        } else {
            map([("tag", s(t)), ("value", s(&trace_tag_state(t)))])
        }
    });
    map([
        ("applyTo", s("NETWORK_FILTER")),
        ("match", inbound_hcm([])),
        (
            "patch",
            patch(
                "MERGE",
                map([(
                    "typed_config",
                    map([
                        ("@type", s("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager")),
                        ("tracing", map([("custom_tags", seq(custom))])),
                    ]),
                )]),
            ),
        ),
    ])
}

/// `tagOverrides` of the standard metrics from attributegen's outputs.
/// `bare`: the Istio 1.18–1.23 form (`istio_operationId`).
pub fn metrics_overrides(outputs: &[String], bare: bool, mode: &str) -> Value {
    let read = |attr: &str| {
        if bare {
            attr.to_string()
        } else {
            format!("filter_state['wasm.{attr}']")
        }
    };
    // (tag, value) of each override the outputs allow.
    let tag = |name: &'static str, attr: &str| {
        outputs
            .iter()
            .any(|o| o == attr)
            .then(|| (name, map([("value", s(&read(attr)))])))
    };
    let operation = tag("request_operation", "istio_operationId");
    let response = tag("response_code", "istio_responseClass");
    let metric = |metric: &str, tags: Vec<(&str, Value)>| {
        map([
            ("match", map([("metric", s(metric)), ("mode", s(mode))])),
            ("tagOverrides", map(tags)),
        ])
    };
    let mut overrides = vec![metric(
        "REQUEST_COUNT",
        operation.iter().chain(&response).cloned().collect(),
    )];
    if let Some(op) = operation {
        overrides.push(metric("REQUEST_DURATION", vec![op]));
    }
    seq([map([
        ("providers", seq([map([("name", s("prometheus"))])])),
        ("overrides", seq(overrides)),
    ])])
}

/// Tracing section: `formatter` custom tags (1.29+) or `header` tags
/// (before 1.29), and the sampling percentage.
pub fn tracing(tags: &[String], headers: bool) -> Value {
    let custom = tags.iter().map(|t| {
        let v = if headers {
            map([("header", map([("name", s(&format!("x-trace-tag-{t}")))]))])
        } else {
            map([("formatter", map([("value", s(&trace_tag_state(t)))]))])
        };
        (t.as_str(), v)
    });
    seq([map([
        ("randomSamplingPercentage", Value::Number(10.0.into())),
        ("customTags", map(custom)),
    ])])
}

/// A Telemetry resource with the given sections.
pub fn telemetry(name: &str, api: &str, sections: Vec<(&str, Value)>, header: &str) -> Doc {
    let spec = std::iter::once(("selector", selector())).chain(sections);
    Doc::new(
        header,
        map([
            ("apiVersion", s(&format!("telemetry.istio.io/{api}"))),
            ("kind", s("Telemetry")),
            ("metadata", metadata(name)),
            ("spec", map(spec)),
        ]),
    )
}
