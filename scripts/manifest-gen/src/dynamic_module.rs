//! The filters as one Envoy dynamic module (`libtelemetry_filters.so`, the
//! `envoy.filters.http.dynamic_modules` extension): the plain-Envoy HTTP
//! filters, Envoy Gateway's `EnvoyProxy` and `EnvoyExtensionPolicy`, and an
//! experimental Istio `EnvoyFilter`. Each carries the filters' example
//! configuration unchanged: one configuration serves both runtimes.

use crate::istio::{app_labels, inbound_hcm, metadata, patch, GATEWAY};
use crate::yaml::{map, pod_template_annotations, s, seq, Doc};
use serde_yaml_ng::Value;

/// The Envoy HTTP filter's type URL.
pub const DYNAMIC_MODULE_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter";
/// Where the images of `envoyfilter-manifests/dynamic-module/Dockerfile`
/// put the module.
pub const MODULE_FILE: &str = "/usr/local/lib/telemetry-filters/libtelemetry_filters.so";
/// The module's name: `lib<name>.so` on `ENVOY_DYNAMIC_MODULES_SEARCH_PATH`.
pub const MODULE_NAME: &str = "telemetry_filters";
/// The module's stat namespace: the Wasm filters' (`wasmcustom`). Envoy's
/// Prometheus output prints it as `envoy_wasmcustom_<metric>` (only a Wasm
/// VM registers the namespace for stripping); one relabel rule gives the
/// Wasm filters' names back (the README's dynamic-module section).
pub const METRICS_NAMESPACE: &str = "wasmcustom";
/// The name Envoy Gateway's registry and policies use for the module.
pub const GATEWAY_MODULE: &str = "telemetry-filters";

/// The `filter_config` Envoy hands the module: the JSON text of `config`.
fn filter_config(config: &Value) -> Value {
    map([
        (
            "@type",
            s("type.googleapis.com/google.protobuf.StringValue"),
        ),
        (
            "value",
            s(&serde_json::to_string(config).unwrap_or_default()),
        ),
    ])
}

/// The `DynamicModuleFilter` typed config running `filter_name` with `config`.
pub fn typed_config(filter_name: &str, config: &Value) -> Value {
    map([
        ("@type", s(DYNAMIC_MODULE_TYPE)),
        (
            "dynamic_module_config",
            map([
                ("name", s(MODULE_NAME)),
                (
                    "module",
                    map([("local", map([("filename", s(MODULE_FILE))]))]),
                ),
                ("metrics_namespace", s(METRICS_NAMESPACE)),
            ]),
        ),
        ("filter_name", s(filter_name)),
        ("filter_config", filter_config(config)),
    ])
}

/// One entry of the HTTP connection manager's `http_filters`.
pub fn http_filter(filter_name: &str, config: &Value) -> Value {
    map([
        ("name", s(&format!("{MODULE_NAME}.{filter_name}"))),
        ("typed_config", typed_config(filter_name, config)),
    ])
}

/// `envoy-dynamic-module.yaml`: the bundle on plain Envoy.
pub fn envoy_bundle(bundle: &Value, head: &str) -> Doc {
    let header = format!(
        "The telemetry bundle (attributegen, trace-tags, get-calls in one filter) as an\n\
         Envoy dynamic module: one entry of the HTTP connection manager's http_filters,\n\
         before the router. Needs Envoy 1.40 (dynamic-module ABI v0.2.0, x86_64 Linux,\n\
         glibc; see the README's dynamic-module section) and the module file at\n\
         {MODULE_FILE}\n\
         (or drop `module` and put libtelemetry_filters.so on\n\
         ENVOY_DYNAMIC_MODULES_SEARCH_PATH). Outputs, as with the Wasm bundle:\n\
         \x20 access log:  %FILTER_STATE(wasm.istio_operationId:PLAIN)%\n\
         \x20 metrics:     envoy_wasmcustom_istio_get_calls{{destination_service,request_operation,\n\
         \x20              response_code}} (relabel to istio_get_calls: see the README)\n\
         \x20 spans:       tagged directly (no custom_tags needed)\n{head}"
    );
    Doc::new(&header, seq([http_filter("telemetry_bundle", bundle)])).note(
        "      metrics_namespace:",
        "Labels are real stat tags (no stats_tags extractors needed). /stats/prometheus\nprints envoy_wasmcustom_<metric>: a Prometheus metric_relabel_configs rule\n(regex envoy_wasmcustom_(.*), replacement $1) restores the Wasm filters' names.",
    )
}

/// `envoy-dynamic-module-separate.yaml`: the three filters as separate
/// entries, in chain order (attributegen first: the others read its output).
pub fn envoy_separate(filters: &[(&str, &Value)], head: &str) -> Doc {
    let header = format!(
        "attributegen, trace-tags and get-calls as separate entries of one dynamic\n\
         module, in chain order (attributegen first: the others read its output).\n\
         The module is loaded once; each entry has its own configuration.\n{head}"
    );
    Doc::new(
        &header,
        seq(filters
            .iter()
            .map(|(name, config)| http_filter(name, config))),
    )
}

/// `envoy-gateway.yaml`: Envoy Gateway (v1.8+) registers the module in an
/// `EnvoyProxy` and runs it on a Gateway through an `EnvoyExtensionPolicy`.
pub fn envoy_gateway(bundle: &Value, head: &str) -> Vec<Doc> {
    let proxy = map([
        ("apiVersion", s("gateway.envoyproxy.io/v1alpha1")),
        ("kind", s("EnvoyProxy")),
        ("metadata", metadata("telemetry-filters")),
        (
            "spec",
            map([
                (
                    "provider",
                    map([
                        ("type", s("Kubernetes")),
                        (
                            "kubernetes",
                            map([(
                                "envoyDeployment",
                                map([(
                                    "container",
                                    map([(
                                        "image",
                                        s("ghcr.io/wasm-telemetry-filters/envoy-telemetry-filters:v1.40.0"),
                                    )]),
                                )]),
                            )]),
                        ),
                    ]),
                ),
                (
                    "dynamicModules",
                    seq([map([
                        ("name", s(GATEWAY_MODULE)),
                        (
                            "source",
                            map([
                                ("type", s("Local")),
                                ("local", map([("path", s(MODULE_FILE))])),
                            ]),
                        ),
                    ])]),
                ),
            ]),
        ),
    ]);
    let proxy_header = format!(
        "Envoy Gateway v1.8+ (dynamic modules): the EnvoyProxy registers the module\n\
         (only registered modules can be used by policies) and runs an Envoy 1.40\n\
         image that holds it (envoyfilter-manifests/dynamic-module/Dockerfile; Envoy\n\
         Gateway v1.9's default image is Envoy 1.39, see the README for what loads\n\
         where). Attach it to the Gateway with spec.infrastructure.parametersRef\n\
         (group gateway.envoyproxy.io, kind EnvoyProxy, name telemetry-filters) or to\n\
         the GatewayClass with parametersRef.\n{head}"
    );
    let policy = map([
        ("apiVersion", s("gateway.envoyproxy.io/v1alpha1")),
        ("kind", s("EnvoyExtensionPolicy")),
        ("metadata", metadata("telemetry-filters")),
        (
            "spec",
            map([
                (
                    "targetRefs",
                    seq([map([
                        ("group", s("gateway.networking.k8s.io")),
                        ("kind", s("Gateway")),
                        ("name", s(GATEWAY)),
                    ])]),
                ),
                (
                    "dynamicModule",
                    seq([map([
                        ("name", s(GATEWAY_MODULE)),
                        ("filterName", s("telemetry_bundle")),
                        ("config", bundle.clone()),
                    ])]),
                ),
            ]),
        ),
    ]);
    let policy_header =
        "The bundle on every route of the Gateway. Envoy Gateway hands `config` to the\n\
         module as its JSON text, the same configuration as the Wasm bundle's. Envoy\n\
         Gateway sets no metrics_namespace: the module's metrics appear under Envoy's\n\
         default namespace for dynamic modules (see the README's dynamic-module section).";
    vec![
        Doc::new(&proxy_header, proxy),
        Doc::new(policy_header, policy),
    ]
}

/// `istio-envoyfilter.yaml` (experimental): the bundle inserted before
/// `istio.stats` on inbound HTTP, the module in a sidecar image that holds it.
pub fn istio_envoyfilter(bundle: &Value, head: &str) -> Vec<Doc> {
    let filter = map([
        ("apiVersion", s("networking.istio.io/v1alpha3")),
        ("kind", s("EnvoyFilter")),
        ("metadata", metadata("telemetry-filters-dynamic-module")),
        (
            "spec",
            map([
                ("workloadSelector", map([("labels", app_labels())])),
                (
                    "configPatches",
                    seq([map([
                        ("applyTo", s("HTTP_FILTER")),
                        (
                            "match",
                            inbound_hcm([("subFilter", map([("name", s("istio.stats"))]))]),
                        ),
                        (
                            "patch",
                            patch("INSERT_BEFORE", http_filter("telemetry_bundle", bundle)),
                        ),
                    ])]),
                ),
            ]),
        ),
    ]);
    let header = format!(
        "EXPERIMENTAL: the bundle as a dynamic module in an Istio sidecar. Needs a proxy\n\
         whose Envoy has the envoy.filters.http.dynamic_modules extension and the\n\
         module's ABI (v0.2.0, Envoy 1.40): istio-proxy compiles the extension in from\n\
         Istio 1.31 (not in 1.29 or 1.30); this project tests the module on the official\n\
         Envoy 1.40 only, not on istio-proxy. The sidecar image must hold the module\n\
         (Dockerfile with BASE=istio/proxyv2:<version>), selected per pod with the\n\
         annotation below. Use the Wasm manifests everywhere else.\n{head}"
    );
    let annotations = pod_template_annotations([(
        "sidecar.istio.io/proxyImage",
        s("ghcr.io/wasm-telemetry-filters/proxyv2-telemetry-filters:1.31.0"),
    )]);
    let annotations_header =
        "The pod-template annotation that gives the workload a sidecar image holding\n\
         the module, e.g. kubectl patch deployment reviews-v1 --patch-file <this part>.";
    vec![
        Doc::new(&header, filter),
        Doc::new(annotations_header, annotations),
    ]
}
