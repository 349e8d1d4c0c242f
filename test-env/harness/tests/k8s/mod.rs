//! Kubernetes' checks of a custom resource against its CRD, as the API
//! server makes them: the structural `openAPIV3Schema` with unknown fields
//! rejected (the API server would prune them silently) except under
//! `x-kubernetes-preserve-unknown-fields`, and the `x-kubernetes-validations`
//! CEL rules, evaluated with the `cel` crate plus the Kubernetes library
//! functions the Istio CRDs use (`isURL`, `url(…).getScheme()`).

use serde_json::{json, Value};
use std::sync::Arc;

/// The CRD schema made strict: every object schema that lists `properties`
/// and does not preserve unknown fields gets `additionalProperties: false`;
/// the root also knows `apiVersion`, `kind` and `metadata`.
pub fn strict(schema: &Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                let preserve = m.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
                if m.contains_key("properties")
                    && !preserve
                    && !m.contains_key("additionalProperties")
                {
                    m.insert("additionalProperties".into(), json!(false));
                }
                m.values_mut().for_each(walk);
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut s = schema.clone();
    if let Some(props) = s.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert("apiVersion".into(), json!({"type": "string"}));
        props.insert("kind".into(), json!({"type": "string"}));
        props.insert(
            "metadata".into(),
            json!({"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string", "minLength": 1},
                "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}}},
                "additionalProperties": false}),
        );
    }
    walk(&mut s);
    s
}

/// One `x-kubernetes-validations` rule found on the way, and its outcome.
#[derive(Debug)]
pub struct RuleResult {
    /// JSON pointer of the value the rule applied to.
    pub at: String,
    /// The CEL rule.
    pub rule: String,
    /// Its message.
    pub message: String,
    /// `Ok(true)`: passed; `Ok(false)`: failed; `Err`: could not evaluate.
    pub outcome: Result<bool, String>,
}

/// Evaluates every `x-kubernetes-validations` rule that applies to `doc`
/// (schema nodes reached through `properties`, `items` and
/// `additionalProperties`), with `self` bound to the value at that node.
pub fn evaluate_rules(schema: &Value, doc: &Value) -> Vec<RuleResult> {
    let mut out = Vec::new();
    walk_rules(schema, doc, String::new(), &mut out);
    out
}

fn walk_rules(schema: &Value, value: &Value, at: String, out: &mut Vec<RuleResult>) {
    for r in schema["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let rule = r["rule"].as_str().unwrap_or_default().to_string();
        out.push(RuleResult {
            at: at.clone(),
            message: r["message"].as_str().unwrap_or_default().to_string(),
            outcome: eval(&rule, value),
            rule,
        });
    }
    match value {
        Value::Object(m) => {
            for (k, v) in m {
                if let Some(s) = schema["properties"].get(k) {
                    walk_rules(s, v, format!("{at}/{k}"), out);
                } else if schema["additionalProperties"].is_object() {
                    walk_rules(&schema["additionalProperties"], v, format!("{at}/{k}"), out);
                }
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                walk_rules(&schema["items"], v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// The scheme of a URL (`oci`, `https`, …), if `text` starts with one.
fn scheme(text: &str) -> Option<&str> {
    let (s, _) = text.split_once(':')?;
    let mut b = s.bytes();
    (b.next().is_some_and(|c| c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c)))
    .then_some(s)
}

/// Kubernetes' `isURL`: an absolute URL (Go's `url.ParseRequestURI`).
fn is_url(text: &str) -> bool {
    !text.contains(char::is_whitespace)
        && (text.starts_with('/') || url::Url::parse(text).is_ok() && scheme(text).is_some())
}

fn eval(rule: &str, value: &Value) -> Result<bool, String> {
    let program = cel::Program::compile(rule).map_err(|e| format!("parse: {e}"))?;
    let mut ctx = cel::Context::default();
    let v = cel::to_value(value).map_err(|e| format!("value: {e}"))?;
    ctx.add_variable_from_value("self", v);
    ctx.add_function("isURL", |s: Arc<String>| is_url(&s))
        .map_err(|e| format!("{e:?}"))?;
    ctx.add_function("url", |s: Arc<String>| s)
        .map_err(|e| format!("{e:?}"))?;
    ctx.add_function(
        "getScheme",
        |cel::extractors::This(s): cel::extractors::This<Arc<String>>| {
            Arc::new(scheme(&s).unwrap_or_default().to_string())
        },
    )
    .map_err(|e| format!("{e:?}"))?;
    match program.execute(&ctx) {
        Ok(cel::Value::Bool(b)) => Ok(b),
        Ok(other) => Err(format!("not a bool: {other:?}")),
        Err(e) => Err(format!("{e}")),
    }
}
