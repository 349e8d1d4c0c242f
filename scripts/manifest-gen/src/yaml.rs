//! Ordered YAML documents with comments.
//!
//! Kubernetes manifests read best in their usual key order (`apiVersion`,
//! `kind`, `metadata`, `spec`), which a JSON map would sort away; the
//! documents are built as ordered YAML mappings instead.

use serde_yaml_ng::{Mapping, Value};

/// An ordered mapping from `(key, value)` pairs.
pub fn map<'a>(pairs: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        m.insert(Value::String(k.to_string()), v);
    }
    Value::Mapping(m)
}

/// A YAML string.
pub fn s(text: &str) -> Value {
    Value::String(text.to_string())
}

/// A YAML integer.
pub fn n(number: i64) -> Value {
    Value::Number(number.into())
}

/// A YAML sequence.
pub fn seq(items: impl IntoIterator<Item = Value>) -> Value {
    Value::Sequence(items.into_iter().collect())
}

/// One document of a manifest: a value with a leading comment and comments
/// placed before given lines.
pub struct Doc {
    /// Comment lines printed before the document (without `# `).
    pub header: Vec<String>,
    /// The document.
    pub value: Value,
    /// `(line prefix, comment lines)`: the comment goes right before the
    /// first line that starts with the prefix (indentation included).
    pub notes: Vec<(String, Vec<String>)>,
}

impl Doc {
    /// A document with a header comment.
    pub fn new(header: &str, value: Value) -> Doc {
        Doc {
            header: header.lines().map(str::to_string).collect(),
            value,
            notes: Vec::new(),
        }
    }
    /// Puts `comment` before the first line starting with `line_prefix`.
    pub fn note(mut self, line_prefix: &str, comment: &str) -> Doc {
        self.notes.push((
            line_prefix.to_string(),
            comment.lines().map(str::to_string).collect(),
        ));
        self
    }
    /// The document as YAML text.
    pub fn render(&self) -> Result<String, String> {
        let body = serde_yaml_ng::to_string(&self.value).map_err(|e| e.to_string())?;
        let mut out = String::new();
        for h in &self.header {
            push_comment(&mut out, "", h);
        }
        let mut pending: Vec<&(String, Vec<String>)> = self.notes.iter().collect();
        for line in body.lines() {
            if let Some(i) = pending
                .iter()
                .position(|(p, _)| line.starts_with(p.as_str()))
            {
                let (_, comment) = pending.remove(i);
                let indent: String = line.chars().take_while(|c| *c == ' ').collect();
                for c in comment {
                    push_comment(&mut out, &indent, c);
                }
            }
            out.push_str(line);
            out.push('\n');
        }
        if let Some((p, _)) = pending.first() {
            return Err(format!("no line starts with {p:?} for its comment"));
        }
        Ok(out)
    }
}

fn push_comment(out: &mut String, indent: &str, text: &str) {
    out.push_str(indent);
    out.push('#');
    if !text.is_empty() {
        out.push(' ');
        out.push_str(text);
    }
    out.push('\n');
}

/// Documents joined with `---`.
pub fn render_all(docs: &[Doc]) -> Result<String, String> {
    let mut parts = Vec::new();
    for d in docs {
        parts.push(d.render()?);
    }
    Ok(parts.join("---\n"))
}

/// A `kubectl patch` body setting pod-template annotations:
/// `spec.template.metadata.annotations`.
pub fn pod_template_annotations<'a>(pairs: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
    map([(
        "spec",
        map([(
            "template",
            map([("metadata", map([("annotations", map(pairs))]))]),
        )]),
    )])
}
