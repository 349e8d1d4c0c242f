//! CEL evaluated inside the module for the common shapes, so a request does
//! not pay a host `expr_evaluate` (several µs each, far more with
//! `matches()`, whose regex Envoy compiles on every evaluation).
//!
//! At configure time the source (already accepted by Envoy's own CEL) is
//! parsed by a parser of just this subset ([`parse`]; the full-grammar
//! `cel-parser` crate is its test oracle) and [`compile`]d into a [`Native`]
//! form when every node is in the supported subset:
//!
//! - literals: bool, int, string, bytes;
//! - attributes: `request.method`, `request.url_path`, `request.path`,
//!   `request.host` (from the request headers, as CEL reads them), the string
//!   and int attributes of [`attributes`], `request.headers['x']` /
//!   `response.headers['x']`, `xds.cluster_name`, and a bare name, which is
//!   filter state `wasm.<name>` (bytes, as this project's filters write it);
//! - `==` `!=` `<` `<=` `>` `>=` on two ints, two strings or two bytes;
//!   `&&` `||` `!` `?:` with CEL's error absorption (`error && false` is
//!   false); `+` on strings, bytes, ints (overflow is an error);
//! - `string()` of an int, string or bytes; `matches()`, `startsWith()`,
//!   `endsWith()`, `contains()` on strings with literal arguments.
//!
//! Anything else stays with Envoy. At run time, a case whose result could
//! differ from Envoy's (values of an unexpected type or width, a non-ASCII
//! subject for `matches()`, `string()` of bytes that are not UTF-8) makes the
//! whole expression fall back to `expr_evaluate` for that request, so the
//! results are Envoy's in every case. A missing attribute is a CEL error, as
//! in Envoy.

mod attributes;
pub mod cmp;
mod compile;
mod eval;
#[cfg(any(test, feature = "parser-oracle"))]
pub mod oracle;
pub mod parse;
pub mod pattern;

use crate::host::Host;

pub use compile::{compile, SourceShape};

/// A compiled expression the module evaluates itself.
#[derive(Debug)]
pub struct Native(eval::Node);

/// What a native evaluation gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<'n> {
    /// The value (literals borrowed from the compiled expression).
    Value(crate::cel_value::CelValue<'n>),
    /// A CEL runtime error (Envoy: `InternalFailure`).
    Error,
    /// Not decided here for this request: ask Envoy.
    Fallback,
}

impl Native {
    /// Evaluates against the current stream, reading through `host`.
    pub fn evaluate<H: Host + ?Sized>(&self, host: &H) -> Outcome<'_> {
        match eval::eval(&self.0, host) {
            Ok(v) => Outcome::Value(v.into()),
            Err(eval::Fail::Error) => Outcome::Error,
            Err(eval::Fail::Fallback) => Outcome::Fallback,
        }
    }
}

#[cfg(test)]
mod parse_tests;
#[cfg(test)]
mod tests;
