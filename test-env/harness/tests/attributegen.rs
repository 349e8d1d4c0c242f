//! attributegen through a real Envoy: Istio's test vectors, the classify-
//! metrics example, phases, query strings, configuration errors.

use envoy_harness::{Envoy, Wasm};
use serde_json::{json, Value};
use std::time::Duration;

const CONFIG_ERRORS: &str = "wasmcustom.wasm_filter.attributegen.type.config.error_count";
const RUNTIME_ERRORS: &str = "wasmcustom.wasm_filter.attributegen.type.runtime.error_count";

fn vectors() -> Value {
    let path = envoy_harness::paths::workspace_root()
        .join("test-env/testdata/attributegen-test-vectors.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn attributegen(config: &str, log_attrs: &[&str]) -> Envoy {
    let mut b = Envoy::builder().filter(Wasm::new("attributegen").config(config));
    for a in log_attrs {
        b = b.log_attribute(a);
    }
    b.start().unwrap()
}

/// Sends a request; returns (status, its access-log entry).
fn send(envoy: &Envoy, method: &str, path: &str, upstream_status: u16) -> Value {
    let resp = envoy
        .request(method, path)
        .upstream_status(upstream_status)
        .send()
        .unwrap();
    assert_eq!(resp.status, upstream_status, "{method} {path}");
    envoy.access_log_entry(&resp).unwrap()
}

/// Every unit vector of Istio's attributegen, through Envoy: same request,
/// same response code, same filter state (or none).
#[test]
fn istio_unit_vectors() {
    let v = vectors();
    for case in v["unit"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let Some(request) = case.get("request") else {
            continue;
        }; // config-error vectors: below
        let config = match case.get("config_ref") {
            Some(r) => v["configs"][r.as_str().unwrap()].clone(),
            None => case["config"].clone(),
        };
        let expect = &case["expect"];
        let key = expect["key"]
            .as_str()
            .unwrap()
            .strip_prefix("wasm.")
            .unwrap();
        let envoy = attributegen(&config.to_string(), &[key]);
        let method = request[":method"].as_str().unwrap_or("GET");
        let path = request[":path"].as_str().unwrap();
        let status: u16 = case["response"][":status"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let entry = send(&envoy, method, path, status);
        let got = &entry[format!("attr.{key}")];
        if expect["found"].as_bool().unwrap() {
            assert_eq!(got, &expect["value"], "{name}: {entry}");
            assert_eq!(
                entry[format!("cel.{key}")],
                expect["value"],
                "{name}: CEL view"
            );
        } else {
            assert!(got.is_null(), "{name}: expected no value, got {got}");
        }
        let runtime = envoy.stat(RUNTIME_ERRORS).unwrap();
        let want_runtime = u64::from(
            expect["runtime_error_count_increments"]
                .as_bool()
                .unwrap_or(false),
        );
        assert_eq!(runtime, Some(want_runtime), "{name}: runtime errors");
        assert_eq!(
            envoy.stat(CONFIG_ERRORS).unwrap(),
            Some(0),
            "{name}: config errors"
        );
    }
}

/// The config-error vectors: traffic still flows, the error is counted once
/// per VM (Istio's harness configures twice and sees 2; Envoy 1.40 configures
/// the base VM, the main thread's and one per worker: 4 with 2 workers), and
/// one line names the field.
#[test]
fn istio_config_error_vectors() {
    if !envoy_harness::requires_wasm(
        "istio_config_error_vectors",
        "a bad configuration runs and is counted; the dynamic module rejects it (tests/dynamic_module.rs)",
    ) {
        return;
    }
    let v = vectors();
    for case in v["unit"].as_array().unwrap() {
        if case.get("request").is_some() {
            continue;
        }
        let name = case["name"].as_str().unwrap();
        let raw = match case.get("config_raw") {
            Some(r) => r.as_str().unwrap().to_string(),
            None => case["config"].to_string(),
        };
        let envoy = Envoy::builder()
            .concurrency(2)
            .filter(Wasm::new("attributegen").config(raw))
            .log_attribute("istio.operationId")
            .start()
            .unwrap();
        for _ in 0..4 {
            let entry = send(&envoy, "GET", "/status/207", 200);
            assert!(entry["attr.istio.operationId"].is_null(), "{name}");
        }
        assert_eq!(envoy.stat(CONFIG_ERRORS).unwrap(), Some(4), "{name}");
        let lines = envoy.wasm_log_lines();
        let errors: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains("Config Error"))
            .collect();
        assert!(!errors.is_empty(), "{name}: no Config Error line");
        if name.starts_with("BadExpr") {
            assert!(
                errors[0].contains("attributes[0].match[0].condition"),
                "{errors:?}"
            );
            assert!(errors[0].contains("if a = b then return"), "{errors:?}");
            assert!(errors[0].contains("\"istio.operationId\""), "{errors:?}");
            // Envoy's parser message comes right before our line
            let log = envoy.log();
            let lines: Vec<&str> = log.lines().collect();
            let ours = lines
                .iter()
                .position(|l| l.contains("Config Error: attributes[0]"))
                .unwrap();
            assert!(lines[..ours]
                .iter()
                .rev()
                .find(|l| l.starts_with('['))
                .unwrap()
                .contains("expr_create parse error"));
        } else {
            assert!(
                errors[0].contains("$: invalid JSON") && errors[0].contains("line 1 column"),
                "{errors:?}"
            );
        }
    }
}

/// istio/proxy's TestAttributeGen: two generators, 10 GETs → 2xx/GetMethod.
#[test]
fn istio_e2e_attributegen() {
    let v = vectors();
    let config = v["e2e_istio_proxy_TestAttributeGen"]["plugin_config"].to_string();
    let envoy = attributegen(&config, &["istio_responseClass", "istio_operationId"]);
    for _ in 0..10 {
        let e = send(&envoy, "GET", "/", 200);
        assert_eq!(e["attr.istio_responseClass"], "2xx");
        assert_eq!(e["attr.istio_operationId"], "GetMethod");
    }
    let e = send(&envoy, "POST", "/", 200);
    assert_eq!(e["attr.istio_operationId"], "PostMethod");
    let e = send(&envoy, "PUT", "/", 500);
    assert!(e["attr.istio_operationId"].is_null() && e["attr.istio_responseClass"].is_null());
}

/// istio/istio's TestCustomizeMetrics generators, incl. `response.grpc_status`
/// (2 for a plain HTTP 200, so the OK arm does not match).
#[test]
fn istio_integration_customize_metrics() {
    let v = vectors();
    let config = v["e2e_istio_integration_TestCustomizeMetrics"]["plugin_config"].to_string();
    let envoy = attributegen(
        &config,
        &[
            "istio_responseClass",
            "istio_operationId",
            "istio_grpcResponseStatus",
        ],
    );
    let e = send(&envoy, "GET", "/", 200);
    assert_eq!(e["attr.istio_responseClass"], "2xx");
    assert_eq!(e["attr.istio_operationId"], "getoperation");
    assert!(e["attr.istio_grpcResponseStatus"].is_null());
}

/// istio.io "Classifying Metrics Based on Request or Response": operations
/// (reviews) and response classes (productpage).
#[test]
fn classify_metrics_example() {
    let config = json!({"attributes": [
        {"output_attribute": "istio_operationId", "match": [
            {"value": "ListReviews", "condition": "request.url_path == '/reviews' && request.method == 'GET'"},
            {"value": "GetReview", "condition": "request.url_path.matches('^/reviews/[[:alnum:]]*$') && request.method == 'GET'"},
            {"value": "CreateReview", "condition": "request.url_path == '/reviews/' && request.method == 'POST'"}]},
        {"output_attribute": "istio_responseClass", "match": [
            {"value": "2xx", "condition": "response.code >= 200 && response.code <= 299"},
            {"value": "3xx", "condition": "response.code >= 300 && response.code <= 399"},
            {"value": "404", "condition": "response.code == 404"},
            {"value": "429", "condition": "response.code == 429"},
            {"value": "503", "condition": "response.code == 503"},
            {"value": "5xx", "condition": "response.code >= 500 && response.code <= 599"},
            {"value": "4xx", "condition": "response.code >= 400 && response.code <= 499"}]}]});
    let envoy = attributegen(
        &config.to_string(),
        &["istio_operationId", "istio_responseClass"],
    );
    for (method, path, code, op, class) in [
        ("GET", "/reviews", 200, Some("ListReviews"), "2xx"),
        ("GET", "/reviews?page=2", 200, Some("ListReviews"), "2xx"),
        ("GET", "/reviews/0", 200, Some("GetReview"), "2xx"),
        ("GET", "/reviews/abc", 404, Some("GetReview"), "404"),
        ("GET", "/reviews/a-b", 200, None, "2xx"),
        ("POST", "/reviews/", 201, Some("CreateReview"), "2xx"),
        ("POST", "/reviews", 429, None, "429"),
        ("DELETE", "/reviews/1", 503, None, "503"),
        ("GET", "/reviews", 504, Some("ListReviews"), "5xx"),
        ("GET", "/reviews", 302, Some("ListReviews"), "3xx"),
        ("GET", "/other", 418, None, "4xx"),
    ] {
        let e = send(&envoy, method, path, code);
        match op {
            Some(op) => assert_eq!(e["attr.istio_operationId"], op, "{method} {path}"),
            None => assert!(
                e["attr.istio_operationId"].is_null(),
                "{method} {path}: {e}"
            ),
        }
        assert_eq!(
            e["attr.istio_responseClass"], class,
            "{method} {path} {code}"
        );
        // Istio >= 1.24's Telemetry expression reads the same value
        assert_eq!(e["cel.istio_responseClass"], class);
    }
    assert_eq!(envoy.stat(RUNTIME_ERRORS).unwrap(), Some(0));
}

/// `request.url_path` excludes the query string, `request.path` includes it.
#[test]
fn query_strings() {
    let config = json!({"attributes": [
        {"output_attribute": "by_url_path", "match": [{"value": "ListBooks", "condition": "request.url_path == '/books'"}]},
        {"output_attribute": "by_path", "match": [{"value": "ListBooks", "condition": "request.path == '/books'"}]}]});
    let envoy = attributegen(&config.to_string(), &["by_url_path", "by_path"]);
    let e = send(&envoy, "GET", "/books?shelf=1&x=%20y", 200);
    assert_eq!(e["attr.by_url_path"], "ListBooks");
    assert!(e["attr.by_path"].is_null());
    let e = send(&envoy, "GET", "/books", 200);
    assert_eq!(e["attr.by_path"], "ListBooks");
}

/// ON_REQUEST runs on request headers, so a later filter sees its value in
/// the request phase and response attributes never match there;
/// AFTER_RESPONSE runs in on_log, too late for the request phase.
#[test]
fn on_request_versus_after_response() {
    let first = json!({"attributes": [
        {"output_attribute": "early", "phase": "ON_REQUEST", "match": [{"value": "ListBooks", "condition": "request.url_path == '/books'"}]},
        {"output_attribute": "late", "match": [{"value": "ListBooks", "condition": "request.url_path == '/books'"}]},
        {"output_attribute": "early_response", "phase": 1, "match": [{"value": "ok", "condition": "response.code == 200"}]},
        {"output_attribute": "late_response", "phase": 0, "match": [{"value": "ok", "condition": "response.code == 200"}]}]});
    // A second attributegen, ON_REQUEST, copies what it can see of the first.
    let second = json!({"attributes": [
        {"output_attribute": "saw_early", "phase": "ON_REQUEST", "match": [{"value": "yes", "condition": "early == b'ListBooks'"}]},
        {"output_attribute": "saw_late", "phase": "ON_REQUEST", "match": [{"value": "yes", "condition": "late == b'ListBooks'"}]}]});
    let envoy = Envoy::builder()
        .filter(Wasm::new("attributegen").config(first.to_string()))
        .filter(
            Wasm::new("attributegen")
                .name("second")
                .root_id("second")
                .config(second.to_string()),
        )
        .log_attribute("early")
        .log_attribute("late")
        .log_attribute("early_response")
        .log_attribute("late_response")
        .log_attribute("saw_early")
        .log_attribute("saw_late")
        .start()
        .unwrap();
    let e = send(&envoy, "GET", "/books", 200);
    assert_eq!(e["attr.early"], "ListBooks");
    assert_eq!(e["attr.late"], "ListBooks");
    assert_eq!(e["attr.saw_early"], "yes");
    assert!(
        e["attr.saw_late"].is_null(),
        "AFTER_RESPONSE value visible on request: {e}"
    );
    // response.code is absent on request headers: an evaluation error
    assert!(e["attr.early_response"].is_null());
    assert_eq!(e["attr.late_response"], "ok");
}

/// Protobuf-JSON leniency: lowerCamel keys, unknown keys, numeric phases,
/// `debug` as a string, an empty root id; debug logs each attribute set.
#[test]
fn lenient_json_and_debug_logging() {
    let config = r#"{"debug":"true","unknownTop":1,"attributes":[
        {"outputAttribute":"op","phase":1.0,"match":[{"value":"Any","condition":""}],"future":{}}]}"#;
    let envoy = Envoy::builder()
        .filter(Wasm::new("attributegen").root_id("").config(config))
        .log_attribute("op")
        .start()
        .unwrap();
    let e = send(&envoy, "GET", "/x", 200);
    assert_eq!(e["attr.op"], "Any");
    envoy
        .wait_for_log(
            "attributegen: set wasm.op = \"Any\"",
            Duration::from_secs(5),
        )
        .unwrap();
    assert_eq!(envoy.stat(CONFIG_ERRORS).unwrap(), Some(0));
}

/// No configuration at all (Istio sends no bytes for an empty pluginConfig):
/// no attributes, no errors, and the start-up line names the build.
#[test]
fn empty_configuration() {
    let envoy = Envoy::builder()
        .filter(Wasm::new("attributegen"))
        .log_attribute("istio_operationId")
        .start()
        .unwrap();
    let e = send(&envoy, "GET", "/books", 200);
    assert!(e["attr.istio_operationId"].is_null());
    assert_eq!(envoy.stat(CONFIG_ERRORS).unwrap(), Some(0));
    let lines = envoy.wasm_log_lines();
    let module = envoy_harness::module_of("attributegen");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{module} 0.1.0 (build "))),
        "{lines:?}"
    );
}

/// Two generators writing one attribute: the last one wins.
#[test]
fn last_writer_wins() {
    let config = json!({"attributes": [
        {"output_attribute": "op", "match": [{"value": "first"}]},
        {"output_attribute": "op", "match": [{"value": "second"}]}]});
    let envoy = attributegen(&config.to_string(), &["op"]);
    assert_eq!(send(&envoy, "GET", "/", 200)["attr.op"], "second");
}

/// A runtime error on every request: traffic flows, every error is counted,
/// and the log is rate-limited.
#[test]
fn runtime_errors_are_counted_and_throttled() {
    let config = json!({"attributes": [{"output_attribute": "op", "match": [
        {"value": "x", "condition": "request.headers['x-missing'] == 'a'"}]}]});
    let envoy = attributegen(&config.to_string(), &["op"]);
    for _ in 0..40 {
        send(&envoy, "GET", "/", 200);
    }
    assert_eq!(envoy.stat(RUNTIME_ERRORS).unwrap(), Some(40));
    let logged = envoy
        .wasm_log_lines()
        .iter()
        .filter(|l| l.contains("runtime error"))
        .count();
    assert_eq!(logged, 6, "logged at 1, 2, 4, 8, 16, 32");
}

fn validate(config: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.json");
    std::fs::write(&file, config).unwrap();
    // The validate command checks against the Wasm module and Envoy's CEL,
    // whatever runtime the suite runs.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_validate-config"))
        .env_remove("DYNAMIC_MODULE")
        .args(["--filter", "attributegen"])
        .arg(&file)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The validate command: 0 on a good config; on a bad one every error with
/// its JSON path and the CEL parser's position, exit code 1.
#[test]
fn validate_command() {
    let (code, out) = validate(
        r#"{"attributes":[{"output_attribute":"op","match":[{"value":"a","condition":"request.method == 'GET'"}]}]}"#,
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("valid attributegen configuration"), "{out}");

    let (code, out) = validate(
        r#"{"attributes":[{"output_attribute":"op","match":[
            {"value":"a","condition":"request.url_path == '/books' &&"},
            {"value":"b","condition":"request.method == 'GET'"},
            {"value":"c","condition":"if a = b then return 5"}]}]}"#,
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("attributes[0].match[0].condition"), "{out}");
    assert!(out.contains("<input>:1:32"), "{out}");
    assert!(out.contains("attributes[0].match[2].condition"), "{out}");
    assert!(out.contains("<input>:1:1"), "{out}");
    assert!(!out.contains("match[1]"), "{out}");
    assert!(out.contains("INVALID (2 problems)"), "{out}");

    let (code, out) = validate(r#"{"attributes":[{"output_attribute":"op","phase":"LATER"}]}"#);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("attributes[0].phase: unknown phase \"LATER\""),
        "{out}"
    );
}

/// Route templates: Istio's operation.json rewritten as templates gives the
/// same answers (trailing slash significant), the most specific template of
/// a group wins, CEL entries keep first-match order, in both phases.
#[test]
fn route_templates() {
    let config = json!({"attributes": [
        {"output_attribute": "op", "match": [
            {"value": "ListBooks", "template": "GET /books"},
            {"value": "GetBook", "template": "GET /shelves/{shelf}/books/{book}"},
            {"value": "Featured", "template": "GET /shelves/{shelf}/books/featured"},
            {"value": "CreateBook1", "template": "POST /books/"},
            {"value": "AnyShelf", "template": "/shelves/{shelf}"},
            {"value": "Teapot", "condition": "response.code == 418"},
            {"value": "Files", "template": "GET /files/{*path}"}]},
        {"output_attribute": "early", "phase": "ON_REQUEST", "match": [
            {"value": "GetBook", "template": "GET /shelves/{shelf}/books/{book}"}]}]});
    let envoy = attributegen(&config.to_string(), &["op", "early"]);
    for (method, path, code, want) in [
        ("GET", "/books", 200, Some("ListBooks")),
        ("GET", "/books?page=3", 200, Some("ListBooks")),
        ("POST", "/books", 200, None),
        ("POST", "/books/", 201, Some("CreateBook1")),
        ("GET", "/books/", 200, None),
        ("GET", "/shelves/a101/books/b1122", 200, Some("GetBook")),
        ("GET", "/shelves/-----/books/b1122", 200, Some("GetBook")),
        ("GET", "/shelves/a101/books/featured", 200, Some("Featured")),
        ("DELETE", "/shelves/a101", 204, Some("AnyShelf")),
        ("GET", "/files/a/b/c.txt", 418, Some("Teapot")),
        ("GET", "/files/a/b/c.txt", 200, Some("Files")),
    ] {
        let e = send(&envoy, method, path, code);
        match want {
            Some(w) => assert_eq!(e["attr.op"], w, "{method} {path}: {e}"),
            None => assert!(e["attr.op"].is_null(), "{method} {path}: {e}"),
        }
        let early = path.starts_with("/shelves/") && path.contains("/books/") && method == "GET";
        assert_eq!(!e["attr.early"].is_null(), early, "{method} {path}: {e}");
    }
    assert_eq!(envoy.stat(RUNTIME_ERRORS).unwrap(), Some(0));
}

/// Colliding and unreachable templates are configuration errors.
#[test]
fn route_template_errors_through_validate() {
    let (code, out) = validate(
        r#"{"attributes":[{"output_attribute":"op","match":[
            {"value":"A","template":"GET /a/{x}"},
            {"value":"B","template":"GET /a/{y}"},
            {"value":"C","template":"GET /c?x=1"}]}]}"#,
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("attributes[0].match[1].template: collides"),
        "{out}"
    );
    assert!(
        out.contains("attributes[0].match[2].template") && out.contains("never match"),
        "{out}"
    );
}

/// An OpenAPI document becomes a configuration that classifies requests by
/// operationId through Envoy.
#[test]
fn openapi_import() {
    let doc = std::fs::read_to_string(
        envoy_harness::paths::workspace_root().join("test-env/configs/bookstore-openapi.yaml"),
    )
    .unwrap();
    let conv = openapi_to_attributegen::convert(&doc, &openapi_to_attributegen::Options::default())
        .unwrap();
    let envoy = attributegen(&conv.config.to_string(), &["istio_operationId"]);
    for (method, path, want) in [
        ("GET", "/api/books", Some("ListBooks")),
        ("POST", "/api/books", Some("CreateBook")),
        ("GET", "/api/books/b1", Some("GetBook")),
        ("GET", "/api/books/featured", Some("ListFeaturedBooks")),
        ("DELETE", "/api/books/b1", Some("DeleteBook")),
        ("GET", "/api/shelves/s1/books", Some("ListShelfBooks")),
        ("GET", "/books", None),
        ("PUT", "/api/books/b1", None),
    ] {
        let e = send(&envoy, method, path, 200);
        match want {
            Some(w) => assert_eq!(e["attr.istio_operationId"], w, "{method} {path}"),
            None => assert!(e["attr.istio_operationId"].is_null(), "{method} {path}"),
        }
    }
}

/// Conditions the module evaluates itself (filters/common/src/native_cel)
/// give Envoy's answers: each condition is one generator writing "true" or
/// "false" (nothing on a CEL error), logged beside Envoy's own `%CEL()%` of
/// the same expression, over requests that make each one true, false or an
/// error. (`%CEL()%` in Envoy 1.40 rejects `string()` and gives no value
/// for string `+`, so those are pinned by unit tests and trace-tags' tests.)
#[test]
fn native_cel_agrees_with_envoys_cel() {
    let path =
        envoy_harness::paths::workspace_root().join("test-env/testdata/native-cel-conditions.txt");
    let text = std::fs::read_to_string(path).unwrap();
    let conditions: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let attributes: Vec<Value> = conditions
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({"output_attribute": format!("c{i}"), "match": [
                {"value": "true", "condition": c},
                {"value": "false", "condition": format!("!({c})")}]})
        })
        .collect();
    let config = json!({ "attributes": attributes }).to_string();
    let mut b = Envoy::builder().filter(Wasm::new("attributegen").config(&config));
    for (i, c) in conditions.iter().enumerate() {
        b = b
            .log_attribute(&format!("c{i}"))
            .log_field(&format!("envoy.c{i}"), &format!("%CEL({c})%"));
    }
    let envoy = b.start().unwrap();
    let requests = [
        ("GET", "/reviews", 200, Some("acme")),
        ("GET", "/reviews/abc?x=1", 200, None),
        ("GET", "/Reviews/Abc", 404, Some("other")),
        ("POST", "/reviews/", 503, None),
        ("GET", "/reviews/a-b#frag", 200, Some("acme")),
        ("PUT", "/ratings", 200, None),
    ];
    for (method, path, status, tenant) in requests {
        let mut req = envoy.request(method, path).upstream_status(status);
        if let Some(t) = tenant {
            req = req.header("x-tenant", t);
        }
        let resp = req.send().unwrap();
        let entry = envoy.access_log_entry(&resp).unwrap();
        for (i, c) in conditions.iter().enumerate() {
            let ours = entry[format!("attr.c{i}")].as_str().map(str::to_string);
            let theirs = match &entry[format!("envoy.c{i}")] {
                Value::Bool(b) => Some(b.to_string()),
                Value::String(s) if s == "true" || s == "false" => Some(s.clone()),
                _ => None, // a CEL error: Envoy logs nothing
            };
            assert_eq!(ours, theirs, "{method} {path} ({status}): {c}\n{entry}");
        }
    }
    // Errors abandon their generator and are counted, as in Istio.
    assert!(envoy.stat(RUNTIME_ERRORS).unwrap().unwrap_or(0) > 0);
}

/// From the second request on, a phase that looked up two or more request
/// headers reads the whole header map in one call (Envoy's trace log shows
/// it), and it answers as the single reads did: the operation from `:method`
/// and `:path`, a query string cut, no match for another method.
#[test]
fn request_headers_are_read_as_one_map() {
    if !envoy_harness::requires_wasm(
        "request_headers_are_read_as_one_map",
        "the dynamic module reads Envoy's headers in place; it has no map read",
    ) {
        return;
    }
    let config = json!({"attributes": [
        {"output_attribute": "op", "match": [
            {"value": "GetBook", "template": "GET /shelves/{shelf}/books/{book}"}]}]});
    let envoy = Envoy::builder()
        .filter(Wasm::new("attributegen").config(config.to_string()))
        .log_attribute("op")
        .component_log_level("wasm:trace")
        .start()
        .unwrap();
    let requests = [
        ("GET", "/shelves/1/books/2", Some("GetBook")),
        ("GET", "/shelves/1/books/3?page=2", Some("GetBook")),
        ("POST", "/shelves/1/books/2", None),
        ("GET", "/shelves/1", None),
        ("GET", "/shelves/9/books/9", Some("GetBook")),
    ];
    for (method, path, want) in requests {
        let e = send(&envoy, method, path, 200);
        match want {
            Some(w) => assert_eq!(e["attr.op"], w, "{method} {path}: {e}"),
            None => assert!(e["attr.op"].is_null(), "{method} {path}: {e}"),
        }
    }
    let log = envoy.log();
    let count = |call: &str| {
        log.lines()
            .filter(|l| l.contains("[vm->host]") && l.contains(call) && !l.contains("return:"))
            .count()
    };
    let maps = count("proxy_get_header_map_pairs");
    assert!(
        maps >= requests.len() - 1,
        "one map read per request after the first, got {maps}"
    );
    assert!(
        count("proxy_get_header_map_value") <= 2,
        "single header reads only in the first request"
    );
}
