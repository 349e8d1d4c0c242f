//! The filters the manifests deploy: where their schema, example and module
//! are, and how each is placed in Istio's filter chain.

use serde_json::Value;
use std::path::{Path, PathBuf};

/// One deployable module and its place in the chain.
#[derive(Debug, Clone, Copy)]
pub struct Filter {
    /// Folder under `filters/` and under `envoyfilter-manifests/`; also the
    /// image name (`oci://…/<dir>:<version>`) and the Kubernetes name.
    pub dir: &'static str,
    /// Module file `target/filters/<module>.wasm`; also the root id.
    pub module: &'static str,
    /// WasmPlugin phase. Every phase runs before `istio.stats`.
    pub phase: &'static str,
    /// WasmPlugin priority: higher runs first within a phase.
    pub priority: i64,
    /// EnvoyFilter priority: EnvoyFilters apply in ascending priority and each
    /// `INSERT_BEFORE istio.stats` lands right before it, so a higher value
    /// ends up later in the chain.
    pub envoyfilter_priority: i64,
    /// WasmPlugin `match` modes (empty: all traffic).
    pub server_only: bool,
}

/// attributegen, trace-tags, get-calls (chain order), then the bundle.
pub const FILTERS: [Filter; 4] = [
    Filter {
        dir: "attributegen",
        module: "attributegen",
        phase: "AUTHN",
        priority: 10,
        envoyfilter_priority: 10,
        server_only: false,
    },
    Filter {
        dir: "trace-tags",
        module: "trace_tags",
        phase: "STATS",
        priority: 20,
        envoyfilter_priority: 20,
        server_only: false,
    },
    Filter {
        dir: "get-calls",
        module: "get_calls",
        phase: "STATS",
        priority: 10,
        envoyfilter_priority: 30,
        server_only: true,
    },
    Filter {
        dir: "telemetry-bundle",
        module: "telemetry_bundle",
        phase: "AUTHN",
        priority: 10,
        envoyfilter_priority: 10,
        server_only: true,
    },
];

/// The filter deployed from `envoyfilter-manifests/<dir>/`, if any.
pub fn by_dir(dir: &str) -> Option<&'static Filter> {
    FILTERS.iter().find(|f| f.dir == dir)
}

/// The filter whose module is `<module>.wasm`, if any.
pub fn by_module(module: &str) -> Option<&'static Filter> {
    FILTERS.iter().find(|f| f.module == module)
}

impl Filter {
    /// `filters/<dir>/schema/<dir>.config.schema.json`.
    pub fn schema_path(&self, root: &Path) -> PathBuf {
        root.join("filters")
            .join(self.dir)
            .join("schema")
            .join(format!("{}.config.schema.json", self.dir))
    }
    /// `filters/<dir>/schema/example.json`.
    pub fn example_path(&self, root: &Path) -> PathBuf {
        root.join("filters")
            .join(self.dir)
            .join("schema")
            .join("example.json")
    }
    /// `target/filters/<module>.wasm` (built by `scripts/build.sh`).
    pub fn module_path(&self, root: &Path) -> PathBuf {
        root.join("target/filters")
            .join(format!("{}.wasm", self.module))
    }
    /// The example configuration.
    pub fn example(&self, root: &Path) -> Result<Value, String> {
        read_json(&self.example_path(root))
    }
}

/// Reads a JSON file, errors naming the file.
pub fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Every filter's JSON Schema, compiled with the others registered under
/// their `$id`, so the bundle's `$ref`s to the filters' schemas resolve
/// without a network.
pub struct Schemas {
    validators: Vec<(&'static str, jsonschema::Validator)>,
}

impl Schemas {
    /// Loads and compiles every schema under `root`.
    pub fn load(root: &Path) -> Result<Schemas, String> {
        let mut docs = Vec::new();
        for f in &FILTERS {
            let path = f.schema_path(root);
            let doc = read_json(&path)?;
            let id = doc
                .get("$id")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{}: no $id", path.display()))?
                .to_string();
            docs.push((f.dir, path, id, doc));
        }
        let mut validators = Vec::new();
        for (dir, path, _, doc) in &docs {
            let mut options = jsonschema::options();
            for (other, _, id, other_doc) in &docs {
                if other != dir {
                    let resource = jsonschema::Resource::from_contents(other_doc.clone());
                    options = options.with_resource(id.as_str(), resource);
                }
            }
            let v = options
                .build(doc)
                .map_err(|e| format!("{}: not a valid JSON Schema: {e}", path.display()))?;
            validators.push((*dir, v));
        }
        Ok(Schemas { validators })
    }

    /// Validates `config` against the schema of the filter in `dir`: every
    /// error as `<JSON pointer>: <reason>`.
    pub fn errors(&self, dir: &str, config: &Value) -> Vec<String> {
        match self.validators.iter().find(|(d, _)| *d == dir) {
            None => vec![format!("no schema for {dir}")],
            Some((_, v)) => v
                .iter_errors(config)
                .map(|e| format!("{}: {e}", e.instance_path()))
                .collect(),
        }
    }
}

/// The version every schema `$id` must carry (`/v<version>/`).
pub fn schema_version(root: &Path, f: &Filter) -> Result<String, String> {
    let path = f.schema_path(root);
    let doc = read_json(&path)?;
    let id = doc.get("$id").and_then(Value::as_str).unwrap_or_default();
    id.split('/')
        .find_map(|s| s.strip_prefix('v').filter(|v| v.contains('.')))
        .map(str::to_string)
        .ok_or_else(|| format!("{}: $id {id:?} names no version", path.display()))
}
