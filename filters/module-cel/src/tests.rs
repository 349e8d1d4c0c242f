//! Native unit tests: compile-time rejections, cel-cpp's semantics, Envoy's
//! serialization, host reads.

use super::*;
use filter_common::cel::{as_bool, as_int};
use filter_common::fake::FakeHost;

fn host() -> FakeHost {
    let h = FakeHost::new();
    h.set_property("request.url_path", b"/reviews/r1")
        .set_property("request.path", b"/reviews/r1?x=1")
        .set_property("request.method", b"GET")
        .set_property("request.host", b"localhost:8080")
        .set_property("response.code", &200i64.to_le_bytes())
        .set_property("connection.id", &7u64.to_le_bytes())
        .set_property("connection.mtls", &[0])
        .set_property("request.duration", &1_500_000i64.to_le_bytes())
        .set_property("request.headers.x-tenant", b"acme")
        .set_property("request.headers.accept", b"text/plain")
        .set_property("istio_operationId", b"GetReview");
    h
}

fn eval(src: &str) -> Result<Vec<u8>, HostError> {
    compile(src)
        .unwrap_or_else(|e| panic!("{e}"))
        .evaluate(&host())
}

fn truth(src: &str) -> bool {
    as_bool(&eval(src).unwrap()).unwrap()
}

fn rejected(src: &str) -> String {
    match compile(src) {
        Ok(p) => panic!("{src} compiled: {p:?}"),
        Err(e) => {
            assert_eq!(e.source, src);
            e.reason
        }
    }
}

#[test]
fn attributegen_conditions() {
    assert!(truth(
        "request.url_path.matches('^/reviews/[[:alnum:]]*$') && request.method == 'GET'"
    ));
    assert!(!truth(
        "request.url_path == '/books' && request.method == 'GET'"
    ));
    assert!(truth("response.code >= 200 && response.code <= 299"));
    assert!(truth("request.headers['x-tenant'] == 'acme'"));
    assert!(truth("request.headers.accept == 'text/plain'"));
    assert!(truth("request.path.contains('?')"));
    assert!(truth("istio_operationId == b'GetReview'"));
    assert!(truth(
        "filter_state['wasm.istio_operationId'] == b'GetReview'"
    ));
}

#[test]
fn results_are_serialized_as_envoy_does() {
    assert_eq!(eval("request.method").unwrap(), b"GET");
    assert_eq!(as_int(&eval("response.code").unwrap()), Ok(200));
    assert_eq!(eval("response.code == 200").unwrap(), vec![1]);
    assert_eq!(eval("connection.id + 1u").unwrap(), 8u64.to_le_bytes());
    assert_eq!(eval("1.5").unwrap(), 1.5f64.to_le_bytes());
    assert_eq!(
        eval("request.duration").unwrap(),
        1_500_000i64.to_le_bytes()
    );
    assert_eq!(eval("string(response.code)").unwrap(), b"200");
    assert_eq!(eval("'a' + request.method").unwrap(), b"aGET");
    assert_eq!(eval("size('héllo')").unwrap(), 5i64.to_le_bytes());
    assert_eq!(eval("size(b'h\\xff')").unwrap(), 2i64.to_le_bytes());
}

#[test]
fn missing_attributes_and_overflow_are_errors() {
    assert_eq!(
        eval("response.grpc_status == 0"),
        Err(HostError::InternalFailure)
    );
    assert_eq!(
        eval("request.headers['x-none'] == 'a'"),
        Err(HostError::InternalFailure)
    );
    assert_eq!(
        eval("9223372036854775807 + response.code"),
        Err(HostError::InternalFailure)
    );
    assert_eq!(eval("response.code / 0"), Err(HostError::InternalFailure));
    assert_eq!(
        eval("-9223372036854775808 % -1"),
        Err(HostError::InternalFailure)
    );
    assert_eq!(eval("0u - connection.id"), Err(HostError::InternalFailure));
    assert_eq!(eval("uint(-1)"), Err(HostError::InternalFailure));
    assert_eq!(eval("string(b'\\xff')"), Err(HostError::InternalFailure));
}

#[test]
fn logic_absorbs_errors_on_either_side() {
    assert!(!truth(
        "request.headers['x-none'] == 'a' && request.method == 'PUT'"
    ));
    assert!(truth(
        "request.headers['x-none'] == 'a' || request.method == 'GET'"
    ));
    assert!(truth(
        "request.method == 'GET' || request.headers['x-none'] == 'a'"
    ));
    assert_eq!(
        eval("request.headers['x-none'] == 'a' && request.method == 'GET'"),
        Err(HostError::InternalFailure)
    );
}

#[test]
fn presence_membership_and_conditionals() {
    assert!(truth("has(request.headers.accept)"));
    assert!(!truth("has(request.headers.cookie)"));
    assert!(truth("'x-tenant' in request.headers"));
    assert!(!truth("'x-none' in request.headers"));
    assert!(truth("has(response.code)"));
    assert!(!truth("has(response.grpc_status)"));
    assert!(truth("request.method in ['GET', 'HEAD']"));
    assert!(!truth("response.code in [404, 503]"));
    assert_eq!(
        eval("request.url_path.contains('view') ? 'v' : 'n'").unwrap(),
        b"v"
    );
}

#[test]
fn undecidable_inputs_are_unimplemented_not_guessed() {
    let h = host();
    h.set_property("request.url_path", "/révue".as_bytes());
    let p = compile("request.url_path.matches('^/r')").unwrap();
    assert_eq!(p.evaluate(&h), Err(HostError::Unimplemented));
    // ... unless the other side of || absorbs it.
    let p = compile("request.url_path.matches('^/r') || true").unwrap();
    assert_eq!(p.evaluate(&h), Ok(vec![1]));
}

#[test]
fn anything_that_could_differ_is_rejected_at_compile_time() {
    for (src, why) in [
        ("request.nope == 'x'", "not a known Envoy attribute"),
        ("plugin_name == 'x'", "not a known Envoy attribute"),
        ("response.code == 200u", "comparison of a int with a uint"),
        (
            "response.code == 200.0",
            "comparison of a int with a double",
        ),
        ("request.method == null", "null"),
        ("[1, 2].all(x, x > 0)", "macros"),
        ("request.headers", "as a whole value"),
        ("int(request.method)", "int() of a string"),
        ("string(1.5)", "string() of a double"),
        ("request.url_path.matches('\\\\d+')", "pattern outside"),
        (
            "request.url_path.matches(request.method)",
            "literal pattern",
        ),
        ("timestamp('2024-01-01T00:00:00Z')", "`timestamp`"),
        ("request.method.lowerAscii() == 'get'", "`lowerAscii`"),
        ("metadata.filter_metadata['x']", "indexing"),
        ("filter_state['envoy.x']", "wasm.<name>"),
        ("istio_operationId.x", "has no fields"),
        ("request.method == 'GET' && 1", "needs a bool"),
        ("request.method +", "parse error"),
        ("in(request.method, ['GET'])", "parse error"),
    ] {
        let reason = rejected(src);
        assert!(reason.contains(why), "{src}: {reason}");
    }
}

#[test]
fn compile_error_names_the_expression() {
    let e = compile("request.nope").unwrap_err();
    assert_eq!(
        e.to_string(),
        "CEL expression `request.nope`: request.nope: not a known Envoy attribute"
    );
}

#[test]
fn reads_lists_each_host_read_once() {
    let p = compile(
        "request.method == 'GET' && request.method != 'x' && has(response.code) && request.headers['a'] == 'b'",
    )
    .unwrap();
    let paths: Vec<String> = p.reads().iter().map(|r| r.path.join(".")).collect();
    assert_eq!(
        paths,
        ["request.method", "response.code", "request.headers.a"]
    );
    assert_eq!(p.result_type(), Type::Bool);
    assert_eq!(p.source(), "request.method == 'GET' && request.method != 'x' && has(response.code) && request.headers['a'] == 'b'");
}

#[test]
fn host_failures_are_reported_as_such() {
    struct Failing;
    impl Host for Failing {
        fn property(&self, _: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
            Err(HostError::BadArgument)
        }
        fn request_header(&self, _: &str) -> Result<Option<Vec<u8>>, HostError> {
            Err(HostError::BadArgument)
        }
        fn set_request_header(&self, _: &str, _: &[u8]) -> Result<(), HostError> {
            Ok(())
        }
        fn remove_request_header(&self, _: &str) -> Result<(), HostError> {
            Ok(())
        }
        fn env_var(&self, _: &str) -> Option<String> {
            None
        }
        fn set_attribute(&self, _: &str, _: &[u8]) -> Result<(), HostError> {
            Ok(())
        }
        fn compile(&self, _: &str) -> Result<filter_common::host::HostExpression, HostError> {
            Err(HostError::Unimplemented)
        }
        fn evaluate(
            &self,
            _: &filter_common::host::HostExpression,
        ) -> Result<filter_common::cel::CelValue<'static>, HostError> {
            Err(HostError::Unimplemented)
        }
        fn define_metric(
            &self,
            _: filter_common::host::MetricKind,
            _: &str,
            _: &[&str],
        ) -> Result<filter_common::host::MetricId, HostError> {
            Err(HostError::Unimplemented)
        }
        fn increment(
            &self,
            _: filter_common::host::MetricId,
            _: &[&str],
            _: i64,
        ) -> Result<(), HostError> {
            Ok(())
        }
        fn record(
            &self,
            _: filter_common::host::MetricId,
            _: &[&str],
            _: u64,
        ) -> Result<(), HostError> {
            Ok(())
        }
        fn shared_data(&self, _: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
            Ok((None, 0))
        }
        fn set_shared_data(&self, _: &str, _: &[u8], _: u32) -> Result<(), HostError> {
            Ok(())
        }
        fn log(&self, _: filter_common::host::LogLevel, _: &str) {}
    }
    let p = compile("request.method == 'GET'").unwrap();
    assert_eq!(p.evaluate(&Failing), Err(HostError::BadArgument));
    let h = host();
    h.set_property("response.code", b"2");
    let p = compile("response.code").unwrap();
    assert_eq!(p.evaluate(&h), Err(HostError::SerializationFailure));
}

/// Envoy 1.40's answers, measured with `%CEL()%` in an access log:
/// `duration('1.5s').getMilliseconds()` 500, `.getSeconds()` 1,
/// `duration('150s').getMinutes()` 2, `duration('7200s').getHours()` 2,
/// `duration('2.25s').getMilliseconds()` 250, `duration('-1.5s')`:
/// `getMilliseconds()` -500 and `getSeconds()` -1.
#[test]
fn duration_accessors_give_envoys_answers() {
    use crate::node::DurationPart::{Hours, Milliseconds, Minutes, Seconds};
    let s = 1_000_000_000i64;
    assert_eq!(Milliseconds.of(s * 3 / 2), 500);
    assert_eq!(Seconds.of(s * 3 / 2), 1);
    assert_eq!(Minutes.of(150 * s), 2);
    assert_eq!(Hours.of(7200 * s), 2);
    assert_eq!(Milliseconds.of(s * 9 / 4), 250);
    assert_eq!(Milliseconds.of(-s * 3 / 2), -500);
    assert_eq!(Seconds.of(-s * 3 / 2), -1);
    // request.duration is 1.5 ms here.
    assert_eq!(
        as_int(&eval("request.duration.getMilliseconds()").unwrap()),
        Ok(1)
    );
    assert_eq!(
        as_int(
            &eval("request.duration.getSeconds() * 1000 + request.duration.getMilliseconds()")
                .unwrap()
        ),
        Ok(1)
    );
    assert!(rejected("request.time.getSeconds()").contains("needs a duration"));
    assert!(rejected("request.duration.getSeconds('UTC')").contains("not supported"));
}
