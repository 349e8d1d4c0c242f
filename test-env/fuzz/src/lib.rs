//! Shared pieces of the fuzz targets: splitting one input into a
//! configuration and a request, a [`FakeHost`] primed from both, and the
//! invariants checked on what the filters wrote.
//!
//! A failed invariant panics, which libFuzzer reports as a crash.

use filter_common::fake::FakeHost;
use filter_common::host::HostError;
use filter_common::metrics::{
    check_label_name, tag_regex, ISTIO_FOREIGN_WORDS, TAG_SEPARATOR, UNKNOWN, VALUE_SEPARATOR,
};
use regex::Regex;
use std::cell::RefCell;
use std::collections::HashMap;

/// Separates the parts of a config target's input: the configuration, then
/// optionally the method, the path and CEL results. Never part of valid
/// UTF-8, so a plain JSON configuration is an input of one part.
pub const SEP: &[u8] = b"\x00\xff";

/// Most strings of a configuration given their own result (bounds the work
/// per input).
pub const MAX_SOURCES: usize = 256;

/// One config target input.
#[derive(Debug, Default)]
pub struct Input<'a> {
    /// The plugin configuration (JSON, or whatever the fuzzer made of it).
    pub config: &'a [u8],
    /// `:method` / `request.method`.
    pub method: &'a [u8],
    /// `:path` / `request.path`.
    pub path: &'a [u8],
    /// What expressions evaluate to, dealt out in turn; an empty one is an
    /// evaluation error.
    pub results: Vec<&'a [u8]>,
}

/// Splits `data` at every [`SEP`].
pub fn split_parts(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(at) = rest.windows(SEP.len()).position(|w| w == SEP) {
        let (head, tail) = rest.split_at(at);
        parts.push(head);
        rest = &tail[SEP.len()..];
    }
    parts.push(rest);
    parts
}

/// `config [SEP method [SEP path [SEP result]*]]`.
pub fn split(data: &[u8]) -> Input<'_> {
    let mut parts = split_parts(data).into_iter();
    Input {
        config: parts.next().unwrap_or_default(),
        method: parts.next().unwrap_or(b"GET"),
        path: parts.next().unwrap_or(b"/books/1?q=1"),
        results: parts.collect(),
    }
}

/// Every string (keys and values) in a JSON document, deduplicated, in
/// document order; nothing if it does not parse. Invalid UTF-8 is replaced
/// first: serde skips the strings of fields it ignores without checking them.
pub fn json_strings(config: &[u8]) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        if out.len() >= MAX_SOURCES {
            return;
        }
        match v {
            serde_json::Value::String(s) if !out.contains(s) => out.push(s.clone()),
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            serde_json::Value::Object(o) => {
                for (k, v) in o {
                    if !out.contains(k) {
                        out.push(k.clone());
                    }
                    walk(v, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&String::from_utf8_lossy(config)) {
        walk(&v, &mut out);
    }
    out.truncate(MAX_SOURCES);
    out
}

/// Results dealt out when the input brings none: a true bool, a string, an
/// 8-byte integer, an error.
const DEFAULT_RESULTS: [&[u8]; 4] = [&[1], b"op-1", &[200, 0, 0, 0, 0, 0, 0, 0], b""];

/// A fake Envoy for `input`: the request's method and path as headers and
/// properties; each string of the configuration (and each of `sources`)
/// evaluates, as a CEL expression, to the next result in turn, and is also a
/// request header, an environment variable and a filter-state attribute with
/// that value. A method starting with `!` makes every other expression fail
/// to compile.
pub fn host_for(input: &Input<'_>, sources: &[String]) -> FakeHost {
    let host = FakeHost::new();
    let path = input.path;
    let url_path = path
        .iter()
        .position(|b| *b == b'?' || *b == b'#')
        .map_or(path, |at| &path[..at]);
    host.set_header(":method", input.method)
        .set_header(":path", path)
        .set_property("request.method", input.method)
        .set_property("request.path", path)
        .set_property("request.url_path", url_path)
        .set_property("response.code", &200_i64.to_le_bytes());
    let reject = input.method.first() == Some(&b'!');
    let results: &[&[u8]] = if input.results.is_empty() {
        &DEFAULT_RESULTS
    } else {
        &input.results
    };
    for (i, source) in sources.iter().enumerate() {
        let result = results[i % results.len()];
        if reject && i % 2 == 1 {
            host.reject(source);
        }
        host.eval(
            source,
            if result.is_empty() {
                Err(HostError::InternalFailure)
            } else {
                Ok(result.to_vec())
            },
        );
        host.set_header(source, result)
            .set_env(source, &String::from_utf8_lossy(result))
            .set_property(&format!("filter_state.{source}"), result)
            .set_property(&format!("filter_state.wasm.{source}"), result);
    }
    host
}

/// Whether a byte may appear in a sanitised label value (the documented
/// allow-list of `filter_common::metrics::sanitize_value`).
fn allowed(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"_-./:@~+".contains(&c)
}

/// Checks a value made by `sanitize_value(raw, max_len)`: never empty, only
/// allow-listed bytes (so no `=`, `;`, `=.=`, `;.;`), no `..`, no word that an
/// Istio bootstrap extractor would cut, at most `max_len` bytes (or
/// `unknown`), and stable when sanitised again.
pub fn check_sanitized(raw: &[u8], value: &str, max_len: usize) {
    let ctx = || format!("raw {raw:?} max_len {max_len} -> {value:?}");
    assert!(!value.is_empty(), "empty value: {}", ctx());
    assert!(
        value.len() <= max_len || value == UNKNOWN,
        "too long: {}",
        ctx()
    );
    assert!(value.bytes().all(allowed), "bad byte: {}", ctx());
    assert!(
        !value.contains(VALUE_SEPARATOR) && !value.contains(TAG_SEPARATOR),
        "separator: {}",
        ctx()
    );
    assert!(!value.contains(".."), "empty segment: {}", ctx());
    for word in ISTIO_FOREIGN_WORDS {
        assert!(
            !value.contains(&format!("{word}.")),
            "foreign word {word}.: {}",
            ctx()
        );
    }
    for word in [".shadow_", ".istio_dry_run_"] {
        assert!(!value.contains(word), "foreign word {word}: {}", ctx());
    }
    if max_len >= UNKNOWN.len() {
        let again = filter_common::metrics::sanitize_value(value.as_bytes(), max_len);
        assert_eq!(again, value, "not stable: {}", ctx());
    }
}

thread_local! {
    static REGEXES: RefCell<HashMap<String, Regex>> = RefCell::new(HashMap::new());
}

/// Runs `f` with the compiled regex `pattern` (cached).
fn with_regex<T>(pattern: &str, f: impl FnOnce(&Regex) -> T) -> T {
    REGEXES.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() > 4096 {
            cache.clear();
        }
        let re = cache
            .entry(pattern.to_string())
            .or_insert_with(|| Regex::new(pattern).expect("tag regex compiles"));
        f(re)
    })
}

/// Istio's sidecar-bootstrap extractors that are not anchored (see
/// `ISTIO_FOREIGN_WORDS`): none may match a name the filters make.
const FOREIGN_EXTRACTORS: [&str; 5] = [
    r"(cache\.(.+?)\.)",
    r"(component\.(.+?)\.)",
    r"(tag\.(.+?);\.)",
    r"(wasm_filter\.(.+?)\.)",
    r"rbac(\.(allowed|denied))",
];

/// Checks a stat name made by `filter_common::metrics::encode`, as Envoy
/// reads it: `wasmcustom.` + name; the tag extractor of each label
/// ([`tag_regex`], run on the whole name as Envoy does) finds exactly that
/// label's value; removing what the extractors matched leaves exactly the
/// metric name; no foreign extractor matches.
pub fn check_encoded(name: &str, metric: &str, labels: &[(&str, &str)]) {
    let full = format!("wasmcustom.{name}");
    let mut cut: Vec<std::ops::Range<usize>> = Vec::new();
    for (label, value) in labels {
        with_regex(&tag_regex(label), |re| {
            let caps = re
                .captures(&full)
                .unwrap_or_else(|| panic!("no tag {label} in {full:?}"));
            let (Some(whole), Some(v)) = (caps.get(1), caps.get(2)) else {
                panic!("tag regex of {label} has no groups");
            };
            assert_eq!(
                v.as_str(),
                *value,
                "label {label} reads back wrong from {full:?}"
            );
            cut.push(whole.range());
        });
    }
    cut.sort_by_key(|r| r.start);
    let mut rest = String::new();
    let mut at = 0;
    for r in &cut {
        assert!(r.start >= at, "extractors overlap in {full:?}: {cut:?}");
        rest.push_str(&full[at..r.start]);
        at = r.end;
    }
    rest.push_str(&full[at..]);
    assert_eq!(
        rest,
        format!("wasmcustom.{metric}"),
        "left after extraction of {full:?}"
    );
    for pattern in FOREIGN_EXTRACTORS {
        with_regex(pattern, |re| {
            assert!(!re.is_match(&full), "{pattern} matches {full:?}");
        });
    }
    // `.shadow_` and `.istio_dry_run_` are checked on the values only
    // (check_sanitized): a first label (or a label-less metric) named
    // `shadow_…` or `istio_dry_run_…` follows `wasmcustom.` and would match;
    // such names come from the configuration, not from clients.
    for (_, value) in labels {
        for word in [".shadow_", ".istio_dry_run_"] {
            let tag = format!("{VALUE_SEPARATOR}{value}{TAG_SEPARATOR}");
            assert!(!tag.contains(word), "{word} in {tag:?} of {full:?}");
        }
    }
}

/// Checks a stat name the get-calls filter defined: either without labels,
/// or `label=.=value;.;…;.;metric` whose labels are valid names, whose values
/// are sanitised (at most `max_len` bytes), and which reads back as
/// [`check_encoded`] says.
pub fn check_stat_name(name: &str, max_len: usize) {
    if !name.contains(VALUE_SEPARATOR) {
        return;
    }
    let mut parts: Vec<&str> = name.split(TAG_SEPARATOR).collect();
    let metric = parts.pop().unwrap_or_default();
    assert!(
        !metric.contains(['=', ';']),
        "metric part {metric:?} of {name:?}"
    );
    let mut labels = Vec::new();
    for part in parts {
        let (label, value) = part
            .split_once(VALUE_SEPARATOR)
            .unwrap_or_else(|| panic!("tag {part:?} of {name:?} has no {VALUE_SEPARATOR}"));
        assert!(
            check_label_name(label).is_ok(),
            "label {label:?} of {name:?}"
        );
        assert!(!value.is_empty(), "empty value in {name:?}");
        assert!(
            value.len() <= max_len.max(UNKNOWN.len()),
            "long value in {name:?}"
        );
        assert!(value.bytes().all(allowed), "bad byte in {name:?}");
        assert!(!value.contains(".."), "empty segment in {name:?}");
        labels.push((label, value));
    }
    check_encoded(name, metric, &labels);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_config_and_request() {
        let input = split(b"{}\x00\xffPOST\x00\xff/a\x00\xff\x01\x00\xff");
        assert_eq!(input.config, b"{}");
        assert_eq!(input.method, b"POST");
        assert_eq!(input.path, b"/a");
        assert_eq!(input.results, vec![&[1u8][..], &b""[..]]);
        let plain = split(b"{\"a\":1}");
        assert_eq!(plain.config, b"{\"a\":1}");
        assert!(plain.results.is_empty());
    }

    #[test]
    fn encoded_names_read_back() {
        let labels = [("a", "x.y"), ("b", "unknown")];
        let name = filter_common::metrics::encode("m", &labels);
        check_encoded(&name, "m", &labels);
        check_stat_name(&name, 64);
    }

    #[test]
    fn json_strings_collects_keys_and_values() {
        assert_eq!(
            json_strings(br#"{"a":["b",{"c":"a"}]}"#),
            vec!["a", "b", "c"]
        );
        assert!(json_strings(b"not json").is_empty());
    }
}
