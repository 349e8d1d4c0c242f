//! The scraping and alerting side: PodMonitor, PrometheusRule, the mesh
//! settings for labels and trace sampling.

use crate::yaml::{map, pod_template_annotations, s, seq, Doc};
use serde_yaml_ng::Value;

/// Prometheus name of a module's heartbeat on an Istio sidecar: Envoy stat
/// `wasmcustom.wasm_filter.<module>.telemetry_filters_requests_total`, whose
/// `wasm_filter.<module>.` Istio's bootstrap extracts as the `wasm_filter`
/// label (verified with that extractor in a real Envoy).
pub const HEARTBEAT: &str = "telemetry_filters_requests_total";

/// The heartbeat's name in earlier builds (one per job, `requests_total`, which an
/// application's own `requests_total` on Istio's merged page could collide
/// with). The alert matches both names, so it keeps working while pods
/// still run older modules.
pub const LEGACY_HEARTBEAT: &str = "requests_total";

/// Prometheus Operator PodMonitor for every sidecar's `:15090/stats/prometheus`.
pub fn podmonitor() -> Doc {
    let value = map([
        ("apiVersion", s("monitoring.coreos.com/v1")),
        ("kind", s("PodMonitor")),
        (
            "metadata",
            map([
                ("name", s("istio-sidecars")),
                ("namespace", s("istio-system")),
            ]),
        ),
        (
            "spec",
            map([
                (
                    "selector",
                    map([(
                        "matchExpressions",
                        seq([map([
                            ("key", s("security.istio.io/tlsMode")),
                            ("operator", s("Exists")),
                        ])]),
                    )]),
                ),
                ("namespaceSelector", map([("any", Value::Bool(true))])),
                ("jobLabel", s("envoy-stats")),
                (
                    "podMetricsEndpoints",
                    seq([map([
                        ("port", s("http-envoy-prom")),
                        ("path", s("/stats/prometheus")),
                        ("interval", s("15s")),
                    ])]),
                ),
            ]),
        ),
    ]);
    Doc::new(
        "Prometheus Operator: scrape every sidecar's Envoy directly (istio-proxy port\n\
         15090, named http-envoy-prom, path /stats/prometheus), where the filters'\n\
         metrics are: istio_get_calls{...},\n\
         telemetry_filters_requests_total{wasm_filter=\"<module>\"} (the heartbeat),\n\
         type_config_error_count{wasm_filter=\"<filter>\"}. Pods with a sidecar carry\n\
         the label security.istio.io/tlsMode. Not applied to a cluster here.",
        value,
    )
}

/// Alerts: a filter skipped after a VM failure, and rejected configurations.
pub fn prometheusrule(filters: &[&str]) -> Doc {
    let list = filters.join("|");
    // Per pod and filter: the heartbeat exists (the filter is deployed
    // there) but is flat, while the pod serves inbound requests.
    let skipped = format!(
        "(sum by (namespace, pod, wasm_filter) (rate({{__name__=~\"{HEARTBEAT}|{LEGACY_HEARTBEAT}\", wasm_filter=~\"{list}\"}}[5m])) == 0)\n\
         and on (namespace, pod)\n\
         (sum by (namespace, pod) (rate(istio_requests_total{{reporter=\"destination\"}}[5m])) > 0)\n"
    );
    // Errors since the last 10 minutes, or a proxy that started with them
    // (a new series has no earlier sample for increase() to compare with).
    let errors = format!("type_config_error_count{{wasm_filter=~\"{list}\"}}");
    let config = format!(
        "sum by (namespace, pod, wasm_filter) (increase({errors}[10m])) > 0\n\
         or\n\
         sum by (namespace, pod, wasm_filter) ({errors} > 0 unless {errors} offset 10m)\n"
    );
    let rule = |name: &str, expr: String, wait: &str, summary: &str| {
        map([
            ("alert", s(name)),
            ("expr", s(&expr)),
            ("for", s(wait)),
            ("labels", map([("severity", s("warning"))])),
            ("annotations", map([("summary", s(summary))])),
        ])
    };
    let value = map([
        ("apiVersion", s("monitoring.coreos.com/v1")),
        ("kind", s("PrometheusRule")),
        (
            "metadata",
            map([("name", s("wasm-telemetry-filters")), ("namespace", s("istio-system"))]),
        ),
        (
            "spec",
            map([(
                "groups",
                seq([map([
                    ("name", s("wasm-telemetry-filters")),
                    (
                        "rules",
                        seq([
                            rule(
                                "WasmTelemetryFilterSkipped",
                                skipped,
                                "10m",
                                "{{ $labels.wasm_filter }} in {{ $labels.namespace }}/{{ $labels.pod }} counts no request while the pod serves traffic: its VM failed and FAIL_OPEN skips it until the next configuration (kubectl logs <pod> -c istio-proxy | grep -e critical -e 'Wasm VM')",
                            ),
                            rule(
                                "WasmTelemetryFilterConfigRejected",
                                config,
                                "1m",
                                "{{ $labels.wasm_filter }} in {{ $labels.namespace }}/{{ $labels.pod }} rejected its configuration (kubectl logs <pod> -c istio-proxy | grep 'Config Error')",
                            ),
                        ]),
                    ),
                ])]),
            )]),
        ),
    ]);
    Doc::new(
        "Alerts for the filters (Prometheus Operator). Each module counts every\n\
         request it sees in wasmcustom.wasm_filter.<module>.telemetry_filters_requests_total,\n\
         shown as telemetry_filters_requests_total{wasm_filter=\"<module>\"} by Istio's\n\
         wasm_filter tag extractor (earlier builds: requests_total, one per job; the\n\
         alert matches both). A pod that serves traffic while that counter is flat\n\
         has its module skipped (FAIL_OPEN after a VM failure). Not applied to a\n\
         cluster here.",
        value,
    )
}

/// The pod-template annotations for get-calls' labels and the stats
/// inclusion list, as a `kubectl patch` file.
pub fn pod_annotations(labels: &[String]) -> Doc {
    let value = pod_template_annotations([
        ("sidecar.istio.io/extraStatTags", s(&labels.join(","))),
        ("sidecar.istio.io/statsInclusionPrefixes", s("wasmcustom.")),
    ]);
    Doc::new(
        "Per workload instead of mesh-wide: pod-template annotations, e.g.\n  \
         kubectl patch deployment reviews-v1 -n default --patch-file pod-annotations.yaml\n\
         (a bootstrap change: the pods restart). extraStatTags turns get-calls'\n\
         name-encoded labels into Prometheus labels. The inclusion prefix\n\
         wasmcustom. keeps the filters' metrics (every Wasm metric's stat name\n\
         starts with it): Istio's default list already has the prefix \"wasm\", so\n\
         this matters only where that list was replaced. The same in ProxyConfig:\n  \
         proxy.istio.io/config: |\n    proxyStatsMatcher: {inclusionPrefixes: [wasmcustom.]}",
        value,
    )
}

/// Mesh-wide settings (IstioOperator overlay): get-calls' labels in
/// `extraStatTags`, and tracing sampling for trace-tags.
pub fn mesh_config(labels: &[String], tracing: bool) -> Doc {
    let mut default_config = serde_yaml_ng::Mapping::new();
    if !labels.is_empty() {
        default_config.insert(s("extraStatTags"), seq(labels.iter().map(|l| s(l))));
    }
    let mut mesh = serde_yaml_ng::Mapping::new();
    if tracing {
        mesh.insert(s("enableTracing"), Value::Bool(true));
        default_config.insert(
            s("tracing"),
            map([("sampling", Value::Number(10.0.into()))]),
        );
    }
    mesh.insert(s("defaultConfig"), Value::Mapping(default_config));
    let value = map([
        ("apiVersion", s("install.istio.io/v1alpha1")),
        ("kind", s("IstioOperator")),
        ("spec", map([("meshConfig", Value::Mapping(mesh))])),
    ]);
    let mut header = String::from(
        "Mesh-wide settings, as an IstioOperator overlay (istioctl install -f) or\n\
         the same meshConfig block in istiod's Helm values. Part of each proxy's\n\
         bootstrap: restart the workloads after a change\n  \
         kubectl rollout restart deployment/reviews-v1 -n default",
    );
    if !labels.is_empty() {
        header.push_str(
            "\nextraStatTags: for each name, Istio adds the tag extractor\n  \
             (<name>=\\.=(.*?);\\.;)\n\
             which is how get-calls encodes labels into its stat names, so\n\
             /stats/prometheus prints istio_get_calls{destination_service=\"…\",…} N.\n\
             (Envoy 1.40 accepts a response_code extractor next to Istio's own\n\
             \"_rq(_(\\d{3}))$\" one; both have been run together.)",
        );
    }
    if tracing {
        header.push_str(
            "\ntracing.sampling: percentage of requests traced (default 1). The\n\
             Telemetry's randomSamplingPercentage overrides it per workload.",
        );
    }
    Doc::new(&header, value)
}

#[cfg(test)]
mod tests {
    #[test]
    fn heartbeat_is_the_modules_name() {
        assert_eq!(super::HEARTBEAT, filter_common::HEARTBEAT_NAME);
        assert_eq!(
            filter_common::heartbeat_metric("telemetry_bundle"),
            format!("wasm_filter.telemetry_bundle.{}", super::HEARTBEAT)
        );
    }
}
