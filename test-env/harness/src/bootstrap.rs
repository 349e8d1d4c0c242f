//! The generated Envoy bootstrap.

use crate::envoy::Envoy;
use crate::Result;
use serde_json::{json, Value};
use std::path::PathBuf;

/// One Wasm HTTP filter: a module by name, its JSON configuration and the
/// plugin settings a test may vary.
#[derive(Debug, Clone)]
pub struct Wasm {
    pub(crate) module: PathBuf,
    pub(crate) name: String,
    pub(crate) root_id: String,
    pub(crate) vm_id: String,
    pub(crate) config: Option<String>,
    pub(crate) failure_policy: Option<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) dynamic: bool,
}

impl Wasm {
    /// The project module `<name>.wasm` (see [`crate::paths::module`]),
    /// plugin name, root id and VM id all `<name>`, no configuration.
    pub fn new(name: &str) -> Self {
        Wasm {
            module: crate::paths::module(name),
            name: name.to_string(),
            root_id: name.to_string(),
            vm_id: name.to_string(),
            config: None,
            failure_policy: None,
            env: Vec::new(),
            dynamic: false,
        }
    }
    /// The plugin configuration, passed as a `StringValue` as Istio does.
    pub fn config(mut self, json: impl Into<String>) -> Self {
        self.config = Some(json.into());
        self
    }
    /// The test-only build of a project module (`target/filters/test/`,
    /// cargo feature `fault-injection`: `x-fault-inject: panic` traps the VM).
    pub fn fault_injecting(name: &str) -> Self {
        Wasm::new(name).module_path(
            crate::paths::wasm_dir()
                .join("test")
                .join(format!("{name}.wasm")),
        )
    }
    /// Another module file.
    pub fn module_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.module = path.into();
        self
    }
    /// Plugin name (Istio: `<namespace>.<name>`).
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }
    /// Root id (Istio: `pluginName`; may be empty).
    pub fn root_id(mut self, id: &str) -> Self {
        self.root_id = id.to_string();
        self
    }
    /// VM id; filters with the same id and code share one VM per thread.
    pub fn vm_id(mut self, id: &str) -> Self {
        self.vm_id = id.to_string();
        self
    }
    /// `FAIL_CLOSED`, `FAIL_OPEN` or `FAIL_RELOAD`.
    pub fn failure_policy(mut self, policy: &str) -> Self {
        self.failure_policy = Some(policy.to_string());
        self
    }
    /// Serve this filter's configuration over file-based ECDS (extension
    /// config discovery), so a test can change it while Envoy runs
    /// ([`crate::Envoy::update_wasm`]). The ECDS resource is the plugin name.
    pub fn dynamic(mut self) -> Self {
        self.dynamic = true;
        self
    }
    /// Whether the filter is served over ECDS.
    pub fn is_dynamic(&self) -> bool {
        self.dynamic
    }
    /// The plugin name.
    pub fn plugin_name(&self) -> &str {
        &self.name
    }
    /// The ECDS file (a `DiscoveryResponse`) serving this filter.
    pub fn ecds_document(&self, version: u64) -> Value {
        if let Some(bundled) = discovered_bundle(self) {
            return bundled.ecds_document(version);
        }
        let module = crate::dynamic_module::dynamic_module_mode()
            .then(|| crate::dynamic_module::replace(self))
            .flatten();
        let mut resource = module.unwrap_or_else(|| self.to_filter());
        resource["name"] = json!(self.name);
        json!({
            "version_info": version.to_string(),
            "resources": [{
                "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
                "name": self.name,
                "typed_config": resource["typed_config"],
            }]
        })
    }
    /// The HCM entry that takes this filter's configuration from `path`.
    pub(crate) fn to_discovered_filter(&self, path: &std::path::Path) -> Value {
        let type_url = match crate::dynamic_module::dynamic_module_mode()
            .then(|| crate::dynamic_module::replace(self))
            .flatten()
        {
            Some(_) => crate::dynamic_module::TYPE_URL,
            None => "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        };
        json!({
            "name": self.name,
            "config_discovery": {
                "config_source": { "path_config_source": { "path": path }, "resource_api_version": "V3" },
                "type_urls": [type_url],
            }
        })
    }
    /// An environment variable the VM sees.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// The `envoy.filters.http.wasm` filter entry.
    pub fn to_filter(&self) -> Value {
        let mut vm = json!({
            "vm_id": self.vm_id,
            "runtime": "envoy.wasm.runtime.v8",
            "code": { "local": { "filename": self.module } },
        });
        if !self.env.is_empty() {
            let kv: serde_json::Map<String, Value> = self
                .env
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            vm["environment_variables"] = json!({ "key_values": kv });
        }
        let mut config = json!({ "name": self.name, "root_id": self.root_id, "vm_config": vm });
        if let Some(c) = &self.config {
            config["configuration"] =
                json!({ "@type": "type.googleapis.com/google.protobuf.StringValue", "value": c });
        }
        if let Some(p) = &self.failure_policy {
            config["failure_policy"] = json!(p);
            if p == "FAIL_RELOAD" {
                config["reload_config"] =
                    json!({ "backoff": { "base_interval": "0.1s", "max_interval": "0.5s" } });
            }
        }
        json!({
            "name": "envoy.filters.http.wasm",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": config,
            }
        })
    }
}

/// An HTTP filter in the chain: one of ours, or any raw Envoy filter (Lua,
/// `set_filter_state`, …) for side-by-side tests.
#[derive(Debug, Clone)]
pub enum HttpFilter {
    /// A Wasm filter.
    Wasm(Wasm),
    /// A filter entry as Envoy's JSON.
    Raw(Value),
}

impl From<Wasm> for HttpFilter {
    fn from(w: Wasm) -> Self {
        HttpFilter::Wasm(w)
    }
}

impl From<Value> for HttpFilter {
    fn from(v: Value) -> Self {
        HttpFilter::Raw(v)
    }
}

/// Builds and starts an [`Envoy`].
#[derive(Debug, Clone)]
pub struct EnvoyBuilder {
    pub(crate) filters: Vec<HttpFilter>,
    pub(crate) concurrency: u32,
    pub(crate) log_attributes: Vec<String>,
    pub(crate) log_fields: Vec<(String, String)>,
    pub(crate) stats_tags: Vec<(String, String)>,
    pub(crate) hcm_extra: serde_json::Map<String, Value>,
    pub(crate) clusters: Vec<Value>,
    pub(crate) component_log_level: String,
    pub(crate) direct_response: Option<u16>,
    pub(crate) exact_balance: bool,
    pub(crate) runtime: serde_json::Map<String, Value>,
    pub(crate) cpu_affinity: Vec<usize>,
    pub(crate) access_loggers: Vec<Value>,
    pub(crate) bootstrap_extra: serde_json::Map<String, Value>,
    pub(crate) downstream_tls: Option<(String, String)>,
    pub(crate) upstream_h2c: Option<u16>,
    pub(crate) run_under: Vec<String>,
    pub(crate) ready_timeout: std::time::Duration,
}

impl Default for EnvoyBuilder {
    fn default() -> Self {
        EnvoyBuilder {
            filters: Vec::new(),
            concurrency: 1,
            log_attributes: Vec::new(),
            log_fields: Vec::new(),
            stats_tags: Vec::new(),
            hcm_extra: serde_json::Map::new(),
            clusters: Vec::new(),
            // The filters' debug lines, from either runtime.
            component_log_level: "wasm:debug,dynamic_modules:debug".to_string(),
            direct_response: None,
            exact_balance: false,
            runtime: serde_json::Map::new(),
            cpu_affinity: Vec::new(),
            access_loggers: Vec::new(),
            bootstrap_extra: serde_json::Map::new(),
            downstream_tls: None,
            upstream_h2c: None,
            run_under: Vec::new(),
            ready_timeout: std::time::Duration::from_secs(60),
        }
    }
}

impl EnvoyBuilder {
    /// Appends a filter; filters run in the order added, router last.
    pub fn filter(mut self, f: impl Into<HttpFilter>) -> Self {
        self.filters.push(f.into());
        self
    }
    /// Worker threads (`--concurrency`), default 1.
    pub fn concurrency(mut self, n: u32) -> Self {
        self.concurrency = n;
        self
    }
    /// Prints filter state `wasm.<name>` in the access log, as
    /// `attr.<name>` (`%FILTER_STATE(…:PLAIN)%`) and `cel.<name>`
    /// (`%CEL(filter_state['wasm.<name>'])%`).
    pub fn log_attribute(mut self, name: &str) -> Self {
        self.log_attributes.push(name.to_string());
        self
    }
    /// Adds an access-log field with any format string.
    pub fn log_field(mut self, key: &str, format: &str) -> Self {
        self.log_fields.push((key.to_string(), format.to_string()));
        self
    }
    /// Adds a `stats_config.stats_tags` extractor.
    pub fn stats_tag(mut self, tag: &str, regex: &str) -> Self {
        self.stats_tags.push((tag.to_string(), regex.to_string()));
        self
    }
    /// Sets a field of the HTTP connection manager (e.g. `tracing`).
    pub fn hcm(mut self, key: &str, value: Value) -> Self {
        self.hcm_extra.insert(key.to_string(), value);
        self
    }
    /// Adds a cluster (e.g. a trace collector).
    pub fn cluster(mut self, cluster: Value) -> Self {
        self.clusters.push(cluster);
        self
    }
    /// `--component-log-level`, default `wasm:debug`.
    pub fn component_log_level(mut self, level: &str) -> Self {
        self.component_log_level = level.to_string();
        self
    }
    /// Answer every request from Envoy itself (`direct_response`) with this
    /// code instead of proxying to the upstream (benchmarks).
    pub fn direct_response(mut self, code: u16) -> Self {
        self.direct_response = Some(code);
        self
    }
    /// Sets a runtime key in a static `layered_runtime` layer (e.g.
    /// `tracing.zipkin.min_flush_spans`).
    pub fn runtime(mut self, key: &str, value: Value) -> Self {
        self.runtime.insert(key.to_string(), value);
        self
    }
    /// Spreads connections evenly over the workers (listener
    /// `connection_balance_config.exact_balance`), so a test with several
    /// connections and `concurrency(2)` reaches both workers.
    pub fn exact_balance(mut self) -> Self {
        self.exact_balance = true;
        self
    }
    /// Pins Envoy (every thread) to these CPUs from exec on, as
    /// `taskset -c` would (benchmarks: Envoy on one core, load on another).
    pub fn cpu_affinity(mut self, cpus: &[usize]) -> Self {
        self.cpu_affinity = cpus.to_vec();
        self
    }
    /// Adds an HCM access logger after the harness's JSON file logger (e.g.
    /// [`crate::grpc_sinks::http_grpc_access_logger`]).
    pub fn access_logger(mut self, logger: Value) -> Self {
        self.access_loggers.push(logger);
        self
    }
    /// Sets a top-level bootstrap field (e.g. `stats_sinks`).
    pub fn bootstrap_field(mut self, key: &str, value: Value) -> Self {
        self.bootstrap_extra.insert(key.to_string(), value);
        self
    }
    /// Also accepts TLS on the listener, as a sidecar's inbound listener
    /// does: a `tls_inspector` listener filter picks a filter chain that
    /// terminates TLS with this certificate and key (PEM), offering ALPN
    /// `h2` and `http/1.1`; plaintext (HTTP/1.1 or h2c) keeps the other
    /// chain. Both chains run the same HTTP connection manager.
    pub fn downstream_tls(mut self, cert_pem: &str, key_pem: &str) -> Self {
        self.downstream_tls = Some((cert_pem.to_string(), key_pem.to_string()));
        self
    }
    /// Sends upstream traffic over HTTP/2 with prior knowledge (h2c) to
    /// this port of 127.0.0.1 (e.g. a [`crate::GrpcUpstream`]) instead of the
    /// harness's HTTP/1.1 upstream; the route timeout becomes 60 s so held
    /// streams live long enough.
    pub fn upstream_h2c(mut self, port: u16) -> Self {
        self.upstream_h2c = Some(port);
        self
    }
    /// Runs Envoy's binary under this command line (e.g. valgrind with its
    /// options): the process started is `command… envoy <args>`, with the
    /// same pid, session and CPU pinning.
    pub fn run_under(mut self, command: &[&str]) -> Self {
        self.run_under = command.iter().map(|s| s.to_string()).collect();
        self
    }
    /// How long [`EnvoyBuilder::start`] waits for Envoy to be ready
    /// (default 60 s; an Envoy under valgrind needs minutes).
    pub fn ready_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }
    /// Starts Envoy and waits until it is ready.
    pub fn start(self) -> Result<Envoy> {
        Envoy::start(self)
    }

    /// The bootstrap for these ports and paths.
    pub(crate) fn bootstrap(
        &self,
        admin_port: u16,
        listener_port: u16,
        upstream_port: u16,
        access_log: &std::path::Path,
    ) -> Value {
        let mut log_format = serde_json::Map::new();
        for (k, v) in [
            ("test_id", "%REQ(X-TEST-ID)%"),
            ("method", "%REQ(:METHOD)%"),
            ("path", "%REQ(:PATH)%"),
            ("code", "%RESPONSE_CODE%"),
            ("details", "%RESPONSE_CODE_DETAILS%"),
        ] {
            log_format.insert(k.to_string(), json!(v));
        }
        for a in &self.log_attributes {
            log_format.insert(
                format!("attr.{a}"),
                json!(format!("%FILTER_STATE(wasm.{a}:PLAIN)%")),
            );
            log_format.insert(
                format!("cel.{a}"),
                json!(format!("%CEL(filter_state['wasm.{a}'])%")),
            );
        }
        for (k, v) in &self.log_fields {
            log_format.insert(k.clone(), json!(v));
        }
        let filters = if bundle_mode() {
            bundle(&self.filters)
        } else {
            self.filters.clone()
        };
        let mut http_filters: Vec<Value> = filters
            .iter()
            .map(|f| match f {
                HttpFilter::Wasm(w) if w.dynamic => {
                    w.to_discovered_filter(&ecds_path(access_log, &w.name))
                }
                HttpFilter::Wasm(w) => crate::dynamic_module::dynamic_module_mode()
                    .then(|| crate::dynamic_module::replace(w))
                    .flatten()
                    .unwrap_or_else(|| w.to_filter()),
                HttpFilter::Raw(v) => v.clone(),
            })
            .collect();
        http_filters.push(json!({
            "name": "envoy.filters.http.router",
            "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" }
        }));
        let route = match self.direct_response {
            Some(code) => json!({ "match": { "prefix": "/" },
                                  "direct_response": { "status": code, "body": { "inline_string": "ok" } } }),
            None => {
                let timeout = if self.upstream_h2c.is_some() {
                    "60s"
                } else {
                    "10s"
                };
                json!({ "match": { "prefix": "/" }, "route": { "cluster": "upstream", "timeout": timeout } })
            }
        };
        let mut hcm = json!({
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "ingress",
            "common_http_protocol_options": { "max_headers_count": 500 },
            "max_request_headers_kb": 96,
            "route_config": { "name": "local", "virtual_hosts": [
                { "name": "all", "domains": ["*"], "routes": [route] } ] },
            "http_filters": http_filters,
            "access_log": [{
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                    "path": access_log,
                    "log_format": { "json_format": log_format },
                }
            }],
        });
        if let Some(loggers) = hcm["access_log"].as_array_mut() {
            loggers.extend(self.access_loggers.iter().cloned());
        }
        for (k, v) in &self.hcm_extra {
            hcm[k] = v.clone();
        }
        let upstream_port = self.upstream_h2c.unwrap_or(upstream_port);
        let mut upstream = json!({
            "name": "upstream",
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": { "cluster_name": "upstream", "endpoints": [{ "lb_endpoints": [
                { "endpoint": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": upstream_port } } } } ] }] },
        });
        if self.upstream_h2c.is_some() {
            upstream["typed_extension_protocol_options"] = json!({
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": { "http2_protocol_options": {} } } });
        }
        let mut clusters = vec![upstream];
        clusters.extend(self.clusters.iter().cloned());
        let stats_tags: Vec<Value> = self
            .stats_tags
            .iter()
            .map(|(t, r)| json!({ "tag_name": t, "regex": r }))
            .collect();
        let mut bootstrap = json!({
            "node": { "id": "envoy-harness", "cluster": "envoy-harness" },
            "admin": { "address": { "socket_address": { "address": "127.0.0.1", "port_value": admin_port } } },
            "stats_flush_interval": "1s",
            "stats_config": { "stats_tags": stats_tags },
            "static_resources": {
                "listeners": [{
                    "name": "main",
                    "address": { "socket_address": { "address": "127.0.0.1", "port_value": listener_port } },
                    "filter_chains": self.filter_chains(hcm),
                }],
                "clusters": clusters,
            },
        });
        if self.downstream_tls.is_some() {
            bootstrap["static_resources"]["listeners"][0]["listener_filters"] = json!([{
                "name": "envoy.filters.listener.tls_inspector",
                "typed_config": { "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector" } }]);
        }
        if self.exact_balance {
            if let Some(l) = bootstrap
                .pointer_mut("/static_resources/listeners/0")
                .and_then(Value::as_object_mut)
            {
                l.insert(
                    "connection_balance_config".to_string(),
                    json!({ "exact_balance": {} }),
                );
            }
        }
        for (k, v) in &self.bootstrap_extra {
            bootstrap[k] = v.clone();
        }
        if !self.runtime.is_empty() {
            bootstrap["layered_runtime"] = json!({ "layers": [
                { "name": "harness", "static_layer": self.runtime } ] });
        }
        bootstrap
    }
}

impl EnvoyBuilder {
    /// The listener's filter chains: plaintext, and TLS first when
    /// [`EnvoyBuilder::downstream_tls`] is set.
    fn filter_chains(&self, hcm: Value) -> Value {
        let filters = json!([{ "name": "envoy.filters.network.http_connection_manager", "typed_config": hcm }]);
        let Some((cert, key)) = &self.downstream_tls else {
            return json!([{ "filters": filters }]);
        };
        json!([
            { "filter_chain_match": { "transport_protocol": "tls" },
              "transport_socket": { "name": "envoy.transport_sockets.tls", "typed_config": {
                  "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                  "common_tls_context": {
                      "alpn_protocols": ["h2", "http/1.1"],
                      "tls_certificates": [{ "certificate_chain": { "inline_string": cert },
                                             "private_key": { "inline_string": key } }] } } },
              "filters": filters },
            { "filters": filters },
        ])
    }
}

/// Where the ECDS file of a dynamic filter lives (beside the access log).
pub(crate) fn ecds_path(access_log: &std::path::Path, name: &str) -> PathBuf {
    access_log.with_file_name(format!("ecds-{name}.json"))
}

/// Whether `TELEMETRY_BUNDLE=1`: the project's filters then run as jobs of
/// the one-VM bundle (`telemetry_bundle.wasm`) instead of as separate filters,
/// so the same tests cover both.
pub fn bundle_mode() -> bool {
    std::env::var("TELEMETRY_BUNDLE").is_ok_and(|v| v == "1")
}

/// How long after a request a Wasm module's heartbeat counts it: the module
/// adds the requests it saw on its root context's tick (every 2 s), so a
/// request shows within one tick; the rest is margin for a loaded machine.
pub const HEARTBEAT_FLUSH: std::time::Duration = std::time::Duration::from_millis(3000);

/// Envoy's name of the heartbeat counter that counts `filter`'s requests:
/// one per module, so the bundle's own when `TELEMETRY_BUNDLE=1` merges the
/// project's filters into it (`filter_common::heartbeat_metric`).
pub fn heartbeat_stat(filter: &str) -> String {
    let module = module_of(filter);
    format!("wasmcustom.wasm_filter.{module}.telemetry_filters_requests_total")
}

/// The module (and dynamic-module filter) that runs the project filter
/// `filter`: the bundle when `TELEMETRY_BUNDLE=1`, else the filter's own.
pub fn module_of(filter: &str) -> &str {
    if bundle_mode() {
        "telemetry_bundle"
    } else {
        filter
    }
}

/// The bundle's section name of a project filter in its plain form (default
/// names, module and settings, JSON configuration), or `None`. Whether it is
/// served over ECDS is the caller's concern.
fn bundle_section(w: &Wasm) -> Option<(&'static str, Value)> {
    let job = ["attributegen", "get_calls", "trace_tags"]
        .into_iter()
        .find(|j| w.name == *j && w.root_id == *j && w.vm_id == *j)?;
    let plain = w.module == crate::paths::module(job) && w.failure_policy.is_none();
    if !plain {
        return None;
    }
    let config = match &w.config {
        None => Value::Null,
        Some(text) => serde_json::from_str(text).ok()?,
    };
    Some((job, config))
}

/// With `TELEMETRY_BUNDLE=1`, a plain project filter served over ECDS is
/// served as a bundle of its one job, under the same plugin name (the ECDS
/// resource), so configuration updates exercise the bundle too. `None` for
/// anything else (then the filter is served as it is).
fn discovered_bundle(w: &Wasm) -> Option<Wasm> {
    if !bundle_mode() || !w.dynamic {
        return None;
    }
    let (job, config) = bundle_section(w)?;
    let sections = serde_json::Map::from_iter([(job.to_string(), config)]);
    let mut bundled = bundle_filter(sections, w.env.clone());
    bundled.name = w.name.clone();
    bundled.dynamic = true;
    Some(bundled)
}

/// The bundle filter with these job sections and environment variables.
fn bundle_filter(sections: serde_json::Map<String, Value>, env: Vec<(String, String)>) -> Wasm {
    let mut w = Wasm::new("telemetry_bundle").config(Value::Object(sections).to_string());
    w.env = env;
    w
}

/// A bundle being assembled: its sections and environment variables.
type Pending = (serde_json::Map<String, Value>, Vec<(String, String)>);

/// Merges runs of plain project filters into bundle filters (a job seen twice
/// starts a new bundle); anything else stays as it is.
fn bundle(filters: &[HttpFilter]) -> Vec<HttpFilter> {
    let mut out = Vec::new();
    let mut current: Option<Pending> = None;
    let flush = |current: &mut Option<Pending>, out: &mut Vec<HttpFilter>| {
        if let Some((sections, env)) = current.take() {
            out.push(HttpFilter::Wasm(bundle_filter(sections, env)));
        }
    };
    for f in filters {
        match f {
            // A filter served over ECDS stays on its own (`discovered_bundle`).
            HttpFilter::Wasm(w) => match bundle_section(w).filter(|_| !w.dynamic) {
                Some((job, config)) => {
                    if current.as_ref().is_some_and(|(s, _)| s.contains_key(job)) {
                        flush(&mut current, &mut out);
                    }
                    let (sections, env) = current.get_or_insert_with(Default::default);
                    sections.insert(job.to_string(), config);
                    env.extend(w.env.iter().cloned());
                }
                None => {
                    flush(&mut current, &mut out);
                    out.push(f.clone());
                }
            },
            HttpFilter::Raw(_) => {
                flush(&mut current, &mut out);
                out.push(f.clone());
            }
        }
    }
    flush(&mut current, &mut out);
    out
}
