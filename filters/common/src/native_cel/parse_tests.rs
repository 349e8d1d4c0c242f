//! The subset parser against the full-grammar `cel-parser` crate (the
//! parser native CEL shipped with before): wherever the subset parser gives
//! a tree, the oracle must give the same one.

use super::oracle::agrees;
use super::parse::parse;

#[test]
fn accepts_the_subset_as_the_oracle_reads_it() {
    let conditions = include_str!("../../../../test-env/testdata/native-cel-conditions.txt");
    let mut sources: Vec<&str> = conditions
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    sources.extend([
        "request.method + ' ' + request.url_path",
        "request.method == 'GET'",
        "istio_operationId",
        "string(response.code)",
        "a ? b : c ? d : e",
        "a || b && c || d",
        "a && b && c && d && e",
        "a == b == c",
        "a + b + c == d",
        "!a",
        "!(!a)",
        "-1 == response.code",
        "- 1 == -9223372036854775808",
        "0x1F == 31",
        "b'bytes' == b\"x\"",
        "'it\\'s' + \"\\\"q\\\"\" + '\\\\' + '\\?\\`\\a\\b\\f\\v\\r'",
        "'héllo' == 'h\u{e9}llo'",
        "request.headers['x-tenant'] == 'acme'",
        "a[b][c].d(e, f)",
        "matches(request.path, '^/a')",
        "f()",
        "request._lrns('view') ? response.code == 200 : false",
        "x.f()",
        "(a)",
        "((a || b)) && (c)",
        " \t\r\n\u{c}a ",
        "_a1.b_2",
        "true != false",
        "request.url_path.matches('^/reviews/[[:alnum:]]*$') && request.method == 'GET'",
    ]);
    for s in sources {
        assert!(agrees(s), "{s:?} should be in the subset");
    }
}

#[test]
fn leaves_everything_else_to_envoy() {
    for s in [
        "1 - 2",
        "a * 2",
        "a / 2",
        "a % 2",
        "-a",
        "--1",
        "-0x1",
        "0X1",
        "b'\\n'",
        "!!a",
        "!!!a",
        "[1, 2]",
        "{'a': 1}",
        "A{b: 1}",
        "has(a.b)",
        "a.all(x, x)",
        "a.exists(x, x)",
        "a.map(x, x)",
        "a in b",
        "1.5",
        "1e3",
        "1u",
        "null",
        "r'raw'",
        "R\"raw\"",
        "'''triple'''",
        "\"\"\"triple\"\"\"",
        "'\\x41'",
        "'\\\"'",
        "\"\\'\"",
        "'\\u0041'",
        "'\\101'",
        "'line\nbreak'",
        "a // comment",
        ".a.b",
        "a ? b ? c : d : e",
        "9223372036854775808",
        "-9223372036854775809",
        "a &",
        "a = b",
        "",
        "a b",
        "(a",
        "a)",
        "f(a,)",
        "a.1",
        "if",
        "a.in",
        "a.b(",
    ] {
        assert!(
            parse(s).is_none(),
            "{s:?} should be left to Envoy: {:?}",
            parse(s)
        );
        // The oracle is not asked: it may panic on some invalid inputs.
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let deep = format!("{}a{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(parse(&deep).is_none());
    let ok = format!("{}a{}", "(".repeat(20), ")".repeat(20));
    assert!(agrees(&ok));
}

/// Random sentences over the subset's tokens and some outside it: every one
/// the subset parser accepts must read the same to the oracle (native
/// only: slow under the wasm32 test runner).
#[test]
#[cfg(not(target_arch = "wasm32"))]
fn random_sentences_agree_with_the_oracle() {
    const WORDS: [&str; 40] = [
        "a",
        "request",
        ".",
        "url_path",
        "method",
        "headers",
        "[",
        "]",
        "'x'",
        "\"y\"",
        "b'z'",
        "1",
        "-",
        "0x2",
        "true",
        "false",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "&&",
        "||",
        "!",
        "+",
        "?",
        ":",
        "(",
        ")",
        ",",
        "matches",
        "string",
        "startsWith",
        " ",
        "'\\n'",
        "in",
        "*",
        "null",
        "1.5",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut accepted = 0;
    for _ in 0..200_000 {
        let len = 1 + (next() % 9) as usize;
        let sentence: String = (0..len)
            .map(|_| WORDS[(next() % WORDS.len() as u64) as usize])
            .collect::<Vec<_>>()
            .join(if next() % 2 == 0 { " " } else { "" });
        if agrees(&sentence) {
            accepted += 1;
        }
    }
    assert!(
        accepted > 1_000,
        "only {accepted} sentences were in the subset"
    );
}
