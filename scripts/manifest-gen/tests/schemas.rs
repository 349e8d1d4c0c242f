//! The published JSON Schemas (`filters/<filter>/schema/`) say exactly what
//! the filters accept: every example validates (a real JSON Schema
//! validator) and is accepted by the filter's own parser; documents the
//! parser rejects, the schema rejects too, and the lenient forms the parser
//! accepts (lowerCamel keys, doubles, nulls), the schema accepts too.

use filter_common::fake::FakeHost;
use filter_common::host::LogLevel;
use manifest_gen::filters::{Schemas, FILTERS};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The filter's own configuration code (parse + compile, with a fake host
/// whose CEL compiles anything): the problems it logs.
fn parser_errors(dir: &str, config: &Value) -> Vec<String> {
    let host = FakeHost::new();
    let raw = config.to_string();
    let raw = Some(raw.as_bytes());
    match dir {
        "attributegen" => drop(attributegen::plan::configure(raw, &host)),
        "get-calls" => drop(get_calls::plan::configure(raw, &host)),
        "trace-tags" => drop(trace_tags::plan::configure(raw, &host)),
        "telemetry-bundle" => drop(telemetry_bundle::configure(raw, &host)),
        other => panic!("unknown filter {other}"),
    }
    host.logs_at_least(LogLevel::Warn)
}

#[test]
fn every_example_matches_its_schema_and_its_filter() {
    let schemas = Schemas::load(&root()).unwrap();
    for f in &FILTERS {
        let example = f.example(&root()).unwrap();
        let errors = schemas.errors(f.dir, &example);
        assert!(errors.is_empty(), "{}: {errors:#?}", f.dir);
        let errors = parser_errors(f.dir, &example);
        assert!(errors.is_empty(), "{}: {errors:#?}", f.dir);
    }
}

#[test]
fn schema_ids_carry_the_release_version() {
    for f in &FILTERS {
        let v = manifest_gen::filters::schema_version(&root(), f).unwrap();
        assert_eq!(v, env!("CARGO_PKG_VERSION"), "{}", f.dir);
    }
}

/// The bundle's example is the three filters' examples, one per section.
#[test]
fn bundle_example_is_the_three_examples() {
    let ex = |dir: &str| {
        manifest_gen::filters::by_dir(dir)
            .unwrap()
            .example(&root())
            .unwrap()
    };
    assert_eq!(
        ex("telemetry-bundle"),
        json!({"attributegen": ex("attributegen"), "trace_tags": ex("trace-tags"), "get_calls": ex("get-calls")})
    );
}

fn cases_valid() -> Vec<(&'static str, Value)> {
    vec![
        ("attributegen", json!({})),
        ("attributegen", json!({"attributes": null, "debug": null})),
        (
            "attributegen",
            json!({"debug": "true", "unknown": 1, "attributes": [{"outputAttribute": "a", "phase": 1.0, "x": {},
                "match": [{"template": "GET /books/{id}", "value": "GetBook"}, {"condition": "", "value": "other"},
                          {"condition": null, "template": "  ", "value": null}]}]}),
        ),
        (
            "attributegen",
            json!({"attributes": [{"output_attribute": "a", "phase": "PHASE_UNSPECIFIED"}]}),
        ),
        ("get-calls", json!({})),
        ("get-calls", json!({"metrics": null, "debug": "false"})),
        ("get-calls", json!({"metrics": []})),
        (
            "get-calls",
            json!({"metrics": [{"name": "h", "type": "histogram", "value": "response.total_size",
                "dimensions": {"op": "istio_operationId"}, "maxSeries": 10.0, "maxValueLength": 32}]}),
        ),
        (
            "get-calls",
            json!({"metrics": [{"name": "c", "type": 0, "dimensions": null, "condition": null}]}),
        ),
        ("trace-tags", json!({})),
        (
            "trace-tags",
            json!({"tags": [{"tag": "a", "expression": "1", "type": "int", "phase": 1, "defaultValue": "0"},
                            {"name": "b", "attribute": "wasm.x", "phase": "ON_REQUEST", "baggage": true},
                            {"name": "c", "header": "X-C", "literal": null, "requestHeader": "x-copy"}],
                   "maxValueLength": 64.0, "filterState": null, "headerPrefix": null, "filter_state_prefix": "t."}),
        ),
        ("telemetry-bundle", json!({})),
        (
            "telemetry-bundle",
            json!({"get_calls": null, "attributegen": null, "trace_tags": {"tags": []}}),
        ),
    ]
}

fn cases_invalid() -> Vec<(&'static str, Value)> {
    vec![
        (
            "attributegen",
            json!({"attributes": [{"output_attribute": "a", "phase": "LATER"}]}),
        ),
        (
            "attributegen",
            json!({"attributes": [{"match": [{"value": "x"}]}]}),
        ),
        (
            "attributegen",
            json!({"attributes": [{"output_attribute": "", "match": []}]}),
        ),
        (
            "attributegen",
            json!({"attributes": [{"output_attribute": "a", "match": [{"value": "x", "condition": "true", "template": "GET /a"}]}]}),
        ),
        (
            "attributegen",
            json!({"attributes": [{"output_attribute": "a", "match": [{"value": "x", "template": "books"}]}]}),
        ),
        ("attributegen", json!({"debug": "yes"})),
        ("get-calls", json!({"metric": []})),
        (
            "get-calls",
            json!({"metrics": [{"name": "x", "type": "GAUGE"}]}),
        ),
        ("get-calls", json!({"metrics": [{"type": "COUNTER"}]})),
        (
            "get-calls",
            json!({"metrics": [{"name": "x", "dimension": {}}]}),
        ),
        (
            "get-calls",
            json!({"metrics": [{"name": "x", "max_series": 1.5}]}),
        ),
        ("get-calls", json!({"metrics": [{"name": "bad-name"}]})),
        (
            "get-calls",
            json!({"metrics": [{"name": "x", "max_value_length": 0}]}),
        ),
        (
            "get-calls",
            json!({"metrics": [{"name": "x", "dimensions": {"a": ""}}]}),
        ),
        (
            "get-calls",
            json!({"metrics": [{"name": "upstream_rq_503"}]}),
        ),
        (
            "get-calls",
            json!({"metrics": [{"name": "shadow_allowed"}]}),
        ),
        ("trace-tags", json!({"tgas": []})),
        ("trace-tags", json!({"tags": [{"name": "a"}]})),
        (
            "trace-tags",
            json!({"tags": [{"name": "a", "literal": "x", "header": "y"}]}),
        ),
        (
            "trace-tags",
            json!({"tags": [{"name": "a b", "literal": "x"}]}),
        ),
        (
            "trace-tags",
            json!({"tags": [{"name": "a", "literal": "x", "default": "d"}]}),
        ),
        (
            "trace-tags",
            json!({"tags": [{"name": "a", "header": "h", "phase": "RESPONSE"}]}),
        ),
        (
            "trace-tags",
            json!({"tags": [{"name": "a", "expression": "x", "phase": "RESPONSE", "baggage": true}]}),
        ),
        (
            "trace-tags",
            json!({"tags": [{"name": "a", "literal": "x", "type": "INT"}]}),
        ),
        ("trace-tags", json!({"max_value_length": 0})),
        (
            "telemetry-bundle",
            json!({"attributegen": {"attributes": [{"phase": "LATER", "output_attribute": "a"}]}}),
        ),
        ("telemetry-bundle", json!({"get_call": null})),
        ("telemetry-bundle", json!({"trace_tags": {"tgas": []}})),
        ("telemetry-bundle", json!([])),
    ]
}

#[test]
fn schema_and_filter_agree_on_valid_documents() {
    let schemas = Schemas::load(&root()).unwrap();
    for (dir, doc) in cases_valid() {
        let s = schemas.errors(dir, &doc);
        let p = parser_errors(dir, &doc);
        assert!(s.is_empty(), "{dir} {doc}: schema rejects: {s:#?}");
        assert!(p.is_empty(), "{dir} {doc}: filter rejects: {p:#?}");
    }
}

#[test]
fn schema_and_filter_both_reject_invalid_documents() {
    let schemas = Schemas::load(&root()).unwrap();
    for (dir, doc) in cases_invalid() {
        assert!(
            !schemas.errors(dir, &doc).is_empty(),
            "{dir} {doc}: the schema accepts it"
        );
        assert!(
            !parser_errors(dir, &doc).is_empty(),
            "{dir} {doc}: the filter accepts it"
        );
    }
}
