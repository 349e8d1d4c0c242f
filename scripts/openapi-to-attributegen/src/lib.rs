//! OpenAPI 3 → attributegen route templates.
//!
//! Each operation with an `operationId` becomes one match entry
//! `{"value": <operationId>, "template": "<METHOD> <base path><path>"}`. The
//! whole list is one template group, so the most specific template answers
//! (OpenAPI says the same: concrete paths before templated ones). Path
//! templates are already in the `{name}` syntax the filter uses.

use attributegen::templates::{Entry, Template, TemplateGroup};
use serde_json::{json, Value};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Options of a conversion.
#[derive(Debug, Clone)]
pub struct Options {
    /// Attribute written (default `istio_operationId`).
    pub output_attribute: String,
    /// Prefix for every path; `None` takes the path of `servers[0].url`.
    pub base_path: Option<String>,
    /// Phase (`AFTER_RESPONSE` or `ON_REQUEST`).
    pub phase: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            output_attribute: "istio_operationId".into(),
            base_path: None,
            phase: "AFTER_RESPONSE".into(),
        }
    }
}

/// The result: the configuration and warnings (skipped operations).
#[derive(Debug)]
pub struct Conversion {
    /// attributegen configuration.
    pub config: Value,
    /// Operations left out, and why.
    pub warnings: Vec<String>,
}

/// Parses JSON or YAML (JSON is YAML) and converts it.
pub fn convert(document: &str, options: &Options) -> Result<Conversion, String> {
    let doc: Value =
        serde_yaml_ng::from_str(document).map_err(|e| format!("not JSON or YAML: {e}"))?;
    let version = doc["openapi"].as_str().unwrap_or_default();
    if !version.starts_with("3.") {
        return Err(format!(
            "expected an OpenAPI 3 document (\"openapi\": \"3.x\"), got {:?}",
            doc.get("openapi").or(doc.get("swagger"))
        ));
    }
    let base = match &options.base_path {
        Some(b) => b.trim_end_matches('/').to_string(),
        None => server_path(&doc),
    };
    let paths = doc["paths"]
        .as_object()
        .ok_or("the document has no \"paths\" object")?;
    let mut matches = Vec::new();
    let mut warnings = Vec::new();
    let mut entries = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let upper = method.to_ascii_uppercase();
            let Some(id) = op["operationId"].as_str().filter(|s| !s.is_empty()) else {
                warnings.push(format!("{upper} {path}: no operationId, skipped"));
                continue;
            };
            let text = format!("{upper} {base}{path}");
            let template = Template::parse(&text).map_err(|e| format!("{text}: {e}"))?;
            entries.push(Entry {
                template,
                answer: matches.len(),
            });
            matches.push(json!({ "value": id, "template": text }));
        }
    }
    if let Err(errors) = TemplateGroup::build(&entries) {
        let lines: Vec<String> = errors
            .iter()
            .map(|(i, e)| {
                format!(
                    "{}: {e}",
                    matches
                        .get(*i)
                        .map_or(Value::Null, |m| m["template"].clone())
                )
            })
            .collect();
        return Err(format!(
            "templates that cannot be told apart:\n  {}",
            lines.join("\n  ")
        ));
    }
    if matches.is_empty() {
        return Err("no operation with an operationId".into());
    }
    let config = json!({ "attributes": [{
        "output_attribute": options.output_attribute,
        "phase": options.phase,
        "match": matches,
    }]});
    Ok(Conversion { config, warnings })
}

/// The path part of `servers[0].url` (`https://api.example.com/v1` → `/v1`).
fn server_path(doc: &Value) -> String {
    let url = doc["servers"][0]["url"].as_str().unwrap_or("");
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = if url.contains("://") {
        after_scheme
            .find('/')
            .map_or("", |i| after_scheme.get(i..).unwrap_or(""))
    } else {
        after_scheme
    };
    path.trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PETSTORE: &str = r#"
openapi: 3.0.3
servers: [{url: "https://api.example.com/v1"}]
paths:
  /pets:
    get: {operationId: listPets}
    post: {operationId: createPet}
  /pets/{petId}:
    get: {operationId: showPetById}
    delete: {summary: no id}
  /pets/mine:
    get: {operationId: myPets}
"#;

    #[test]
    fn converts_operations_with_base_path() {
        let c = convert(PETSTORE, &Options::default()).unwrap();
        let m = c.config["attributes"][0]["match"].as_array().unwrap();
        let find = |id: &str| m.iter().find(|e| e["value"] == id).unwrap()["template"].clone();
        assert_eq!(find("listPets"), "GET /v1/pets");
        assert_eq!(find("createPet"), "POST /v1/pets");
        assert_eq!(find("showPetById"), "GET /v1/pets/{petId}");
        assert_eq!(find("myPets"), "GET /v1/pets/mine");
        assert_eq!(m.len(), 4);
        assert_eq!(
            c.warnings,
            vec!["DELETE /pets/{petId}: no operationId, skipped"]
        );
    }

    #[test]
    fn json_input_and_explicit_base_path() {
        let doc = r#"{"openapi":"3.1.0","paths":{"/a/{x}":{"get":{"operationId":"getA"}}}}"#;
        let o = Options {
            base_path: Some("/api/".into()),
            ..Options::default()
        };
        let c = convert(doc, &o).unwrap();
        assert_eq!(
            c.config["attributes"][0]["match"][0]["template"],
            "GET /api/a/{x}"
        );
    }

    #[test]
    fn rejects_swagger_2_and_colliding_paths() {
        assert!(
            convert(r#"{"swagger":"2.0","paths":{}}"#, &Options::default())
                .unwrap_err()
                .contains("OpenAPI 3")
        );
        let doc = r#"{"openapi":"3.0.0","paths":{"/a/{x}":{"get":{"operationId":"a"}},"/a/{y}":{"get":{"operationId":"b"}}}}"#;
        let e = convert(doc, &Options::default()).unwrap_err();
        assert!(e.contains("cannot be told apart"), "{e}");
    }
}
