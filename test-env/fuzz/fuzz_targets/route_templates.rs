//! The route-template compiler. Input: lines of text; a line starting with
//! `?` is a request (`?METHOD /path`), any other a template. Never panics;
//! errors name real entries; when a group builds, each of its templates
//! answers (some template answers) a concrete path made from it by
//! substituting its parameters, for its own method (a `*` template: for any
//! method, including every method another template names). That last check
//! is skipped for groups with a parameter that has a static suffix in its
//! segment (`/{name}.txt/meta`): matchit 0.9 does not backtrack out of those
//! (`/files/{name}.txt/meta` and `/files/{name}/download` leave
//! `/files/a.txt/download` unanswered), a known limitation.
#![no_main]

use attributegen::templates::{Entry, Template, TemplateGroup};
use libfuzzer_sys::fuzz_target;

/// Most templates per input (a group is compiled once per configuration;
/// this only bounds the time per input).
const MAX_TEMPLATES: usize = 64;

/// Whether a parameter of `path` is followed by more than `/` in its segment.
fn has_param_suffix(path: &str) -> bool {
    let unescaped = path.replace("{{", "").replace("}}", "");
    let bytes = unescaped.as_bytes();
    bytes
        .iter()
        .enumerate()
        .any(|(i, b)| *b == b'}' && !matches!(bytes.get(i + 1), None | Some(b'/')))
}

/// A path `template` matches, in matchit's syntax: `{{`/`}}` are literal
/// braces, `{name}` one segment, `{*name}` the rest of the path. `None` if it
/// is not well formed (matchit then refuses it, too).
fn concrete(template: &str, value: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next()? {
                        '}' => break,
                        c => name.push(c),
                    }
                }
                if name.starts_with('*') {
                    out.push_str(value);
                    out.push_str("/x");
                } else {
                    out.push_str(value);
                }
            }
            '}' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut entries = Vec::new();
    let mut requests = Vec::new();
    for line in text.lines() {
        if let Some(request) = line.strip_prefix('?') {
            requests.push(request.split_once(' ').unwrap_or(("GET", request)));
            continue;
        }
        if entries.len() >= MAX_TEMPLATES {
            continue;
        }
        if let Ok(template) = Template::parse(line) {
            let _ = template.shape();
            entries.push(Entry {
                template,
                answer: entries.len(),
            });
        }
    }
    let group = match TemplateGroup::build(&entries) {
        Ok(group) => group,
        Err(errors) => {
            assert!(!errors.is_empty());
            for (i, reason) in errors {
                assert!(i < entries.len(), "error names entry {i}: {reason}");
            }
            return;
        }
    };
    assert_eq!(group.len(), entries.len());
    for (method, path) in requests {
        if let Some(answer) = group.lookup(method, path) {
            assert!(answer < entries.len());
        }
    }
    if entries.iter().any(|e| has_param_suffix(&e.template.path)) {
        return;
    }
    let methods: Vec<&str> = entries
        .iter()
        .filter_map(|e| e.template.method.as_deref())
        .collect();
    for e in &entries {
        let Some(path) = concrete(&e.template.path, "v1") else {
            continue;
        };
        let asked: Vec<&str> = match &e.template.method {
            Some(m) => vec![m.as_str()],
            None => methods.iter().copied().chain(["FUZZ"]).collect(),
        };
        for method in asked {
            let answer = group.lookup(method, &path);
            assert!(
                answer.is_some(),
                "{method} {path:?} (from {:?}) finds no template of {:?}",
                e.template,
                entries.iter().map(|e| &e.template).collect::<Vec<_>>()
            );
        }
    }
});
