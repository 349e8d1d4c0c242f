//! Each supported shape, pinned against what Envoy's CEL gives.

use super::compile;
use crate::fake::FakeHost;

/// An outcome with the value as Envoy serializes it (what the expected
/// values below were measured as).
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Value(Vec<u8>),
    Error,
    Fallback,
}

fn host() -> FakeHost {
    let host = FakeHost::new();
    host.set_header(":method", b"GET")
        .set_header(":path", b"/reviews/0?x=1#f")
        .set_header(":authority", b"bookinfo")
        .set_property("response.code", &200i64.to_le_bytes())
        .set_property("request.headers.x-tenant", b"acme")
        .set_property("xds.cluster_name", b"outbound|9080||reviews")
        .set_property("istio_operationId", b"GetReview");
    host
}

fn eval(source: &str, host: &FakeHost) -> Outcome {
    match compile(source)
        .unwrap_or_else(|| panic!("{source:?} should compile natively"))
        .evaluate(host)
    {
        super::Outcome::Value(v) => Outcome::Value(v.into_bytes()),
        super::Outcome::Error => Outcome::Error,
        super::Outcome::Fallback => Outcome::Fallback,
    }
}

fn is(source: &str, want: bool) {
    assert_eq!(
        eval(source, &host()),
        Outcome::Value(vec![u8::from(want)]),
        "{source}"
    );
}

#[test]
fn istio_bookinfo_rules() {
    is(
        "request.url_path == '/reviews' && request.method == 'GET'",
        false,
    );
    is(
        "request.url_path.matches('^/reviews/[[:alnum:]]*$') && request.method == 'GET'",
        true,
    );
    is(
        "request.url_path == '/reviews/' && request.method == 'POST'",
        false,
    );
    is("response.code >= 200 && response.code <= 299", true);
    is("response.code >= 300 && response.code <= 399", false);
    is("response.code == 404", false);
    is("response.code != 404", true);
    is("response.code < 201 && response.code > 199", true);
}

#[test]
fn attributes_and_values() {
    let h = host();
    assert_eq!(
        eval("request.path", &h),
        Outcome::Value(b"/reviews/0?x=1#f".to_vec())
    );
    assert_eq!(
        eval("request.url_path", &h),
        Outcome::Value(b"/reviews/0".to_vec())
    );
    assert_eq!(
        eval("request.host", &h),
        Outcome::Value(b"bookinfo".to_vec())
    );
    assert_eq!(
        eval("request.method + ' ' + request.url_path", &h),
        Outcome::Value(b"GET /reviews/0".to_vec())
    );
    assert_eq!(
        eval("string(response.code)", &h),
        Outcome::Value(b"200".to_vec())
    );
    assert_eq!(
        eval("response.code", &h),
        Outcome::Value(200i64.to_le_bytes().to_vec())
    );
    assert_eq!(
        eval("request.headers['x-tenant']", &h),
        Outcome::Value(b"acme".to_vec())
    );
    assert_eq!(
        eval("xds.cluster_name", &h),
        Outcome::Value(b"outbound|9080||reviews".to_vec())
    );
    assert_eq!(
        eval("istio_operationId", &h),
        Outcome::Value(b"GetReview".to_vec())
    );
    assert_eq!(
        eval("string(istio_operationId)", &h),
        Outcome::Value(b"GetReview".to_vec())
    );
    assert_eq!(
        eval("response.code + 1", &h),
        Outcome::Value(201i64.to_le_bytes().to_vec())
    );
    is("istio_operationId == b'GetReview'", true);
    is("string(istio_operationId) == 'GetReview'", true);
    is("request.url_path.startsWith('/reviews')", true);
    is("request.url_path.endsWith('/0')", true);
    is("request.url_path.contains('view')", true);
    is("matches(request.url_path, '^/rev')", true);
    is("request.url_path.matches('(?i)^/REVIEWS/[0-9]+$')", true);
    is("!(request.method == 'POST') ? true : false", true);
}

#[test]
fn missing_attributes_are_errors_absorbed_by_and_or() {
    let h = FakeHost::new();
    h.set_header(":method", b"GET");
    assert_eq!(eval("response.code == 200", &h), Outcome::Error);
    assert_eq!(eval("request.headers['x-none'] == 'a'", &h), Outcome::Error);
    assert_eq!(eval("nothing_here == b'x'", &h), Outcome::Error);
    // CEL: error && false is false, error || true is true.
    assert_eq!(
        eval("response.code == 200 && request.method == 'POST'", &h),
        Outcome::Value(vec![0])
    );
    assert_eq!(
        eval("response.code == 200 || request.method == 'GET'", &h),
        Outcome::Value(vec![1])
    );
    assert_eq!(
        eval("response.code == 200 && request.method == 'GET'", &h),
        Outcome::Error
    );
    assert_eq!(eval("!response.code", &h), Outcome::Error);
}

#[test]
fn type_errors_are_errors_and_unclear_cases_go_to_envoy() {
    let h = host();
    // no matching overload: an error in Envoy too
    assert_eq!(eval("'x' + 1", &h), Outcome::Error);
    assert_eq!(eval("request.method && true", &h), Outcome::Error);
    assert_eq!(eval("response.code ? 1 : 2", &h), Outcome::Error);
    // mixed-type equality depends on Envoy's CEL options: Envoy decides
    assert_eq!(eval("response.code == '200'", &h), Outcome::Fallback);
    assert_eq!(
        eval("istio_operationId == 'GetReview'", &h),
        Outcome::Fallback
    );
    // non-ASCII subject for matches(), bytes that are not UTF-8 for string()
    h.set_header(":path", "/revi\u{e9}ws".as_bytes());
    assert_eq!(
        eval("request.url_path.matches('^/rev')", &h),
        Outcome::Fallback
    );
    h.set_property("istio_operationId", &[0xff, 0xfe]);
    assert_eq!(eval("string(istio_operationId)", &h), Outcome::Fallback);
    // an int attribute that is not 8 bytes
    h.set_property("response.code", b"200");
    assert_eq!(eval("response.code == 200", &h), Outcome::Fallback);
    // overflow
    h.set_property("response.code", &i64::MAX.to_le_bytes());
    assert_eq!(eval("response.code + 1", &h), Outcome::Error);
}

#[test]
fn outside_the_subset_stays_with_envoy() {
    for source in [
        "has(request.headers.x)",
        "size(request.path) > 0",
        "request.method in ['GET', 'POST']",
        "response.code == 200u",
        "response.code == 2.0",
        "xds.cluster_metadata.filter_metadata.istio",
        "connection.mtls",
        "request.url_path.matches('^/a/\\\\d+$')",
        "request.url_path.matches(request.method)",
        "request.url_path.matches('[a-z&&[^x]]')",
        "request.url_path.matches('(?s).')",
        "request.url_path.matches('a{1001}')",
        "request.time > timestamp('2020-01-01T00:00:00Z')",
        "[1, 2][0] == 1",
        "int('1') == 1",
        "request.method in ['GET'] || true",
    ] {
        assert!(compile(source).is_none(), "{source}");
    }
    let deep = format!("{}true{}", "(".repeat(30), ")".repeat(30));
    assert!(compile(&deep).is_none());
    let long = ["response.code == 1"; 100].join(" || ");
    assert!(compile(&long).is_none());
    let fine = ["response.code == 1"; 10].join(" || ");
    assert!(compile(&fine).is_some());
}

#[test]
fn headers_cut_query_and_fall_back_to_properties() {
    let h = FakeHost::new();
    h.set_property("request.path", b"/a#b")
        .set_property("request.method", b"PUT");
    assert_eq!(eval("request.url_path", &h), Outcome::Value(b"/a".to_vec()));
    is("request.url_path == '/reviews/0'", true);
    assert_eq!(eval("request.method", &h), Outcome::Value(b"PUT".to_vec()));
}

#[test]
fn compile_and_evaluate_through_the_host() {
    use crate::cel;
    use crate::host::HostError;
    let h = host();
    h.eval_bool("response.code == 200", false);
    // A plain fake host keeps sources opaque: Envoy's (fake) answer.
    let expr = cel::compile(&h, "response.code == 200").unwrap();
    assert!(!expr.is_native());
    assert_eq!(cel::evaluate(&h, &expr), Ok(cel::CelValue::from(vec![0])));
    h.with_native_cel();
    let expr = cel::compile(&h, "response.code == 200").unwrap();
    assert!(expr.is_native());
    assert_eq!(cel::evaluate(&h, &expr), Ok(cel::CelValue::Bool(true)));
    // Fallback: the host answers.
    h.eval("istio_operationId == 'GetReview'", Ok(vec![0]));
    let expr = cel::compile(&h, "istio_operationId == 'GetReview'").unwrap();
    assert_eq!(cel::evaluate(&h, &expr).map(|v| v.as_bool()), Ok(Ok(false)));
    // Error: InternalFailure, as Envoy reports it.
    let expr = cel::compile(&h, "request.headers['none'] == 'a'").unwrap();
    assert_eq!(cel::evaluate(&h, &expr), Err(HostError::InternalFailure));
}

#[test]
fn the_conditions_checked_against_envoy_are_native() {
    // test-env/harness/tests/attributegen.rs native_cel_agrees_with_envoys_cel
    // checks these against Envoy's own CEL.
    let conditions = include_str!("../../../../test-env/testdata/native-cel-conditions.txt");
    for source in conditions.lines().filter(|l| !l.is_empty()) {
        assert!(compile(source).is_some(), "{source}");
        assert!(compile(&format!("!({source})")).is_some(), "!({source})");
    }
}

#[test]
fn concatenation_starts_from_literals_and_shared_values_alike() {
    let h = host();
    for (source, want) in [
        ("'op: ' + request.method + '!'", &b"op: GET!"[..]),
        ("request.method + request.method", b"GETGET"),
        ("request.url_path + ''", b"/reviews/0"),
        ("'' + '' + 'a'", b"a"),
    ] {
        assert_eq!(eval(source, &h), Outcome::Value(want.to_vec()), "{source}");
    }
}
