//! CEL evaluated inside a native filter module, for Envoy's dynamic-module
//! runtime: its ABI has no CEL host call (no `expr_create` /
//! `expr_evaluate`), so conditions outside `filter_common::native_cel`'s
//! subset are evaluated here.
//!
//! [`compile`] parses with the `cel` crate (full grammar, macros expanded)
//! and type-checks the tree against Envoy's attribute catalog
//! ([`catalog`]). Only constructs whose results are known to equal Envoy's
//! CEL (cel-cpp) compile; everything else (unknown attributes, functions,
//! macros, mixed-type comparisons, conversions with unverified edge cases,
//! `matches()` patterns RE2 could read differently) is a [`CompileError`]
//! naming the expression and the reason, never a silently different answer.
//!
//! [`Program::evaluate`] reads attributes lazily through the [`Host`] and
//! returns the value serialized exactly as Envoy's `expr_evaluate` does for
//! the proxy-wasm host, so callers decode it with `filter_common::cel`. A CEL
//! runtime error is `HostError::InternalFailure`, as from Envoy; an input
//! the module cannot decide as Envoy would (only `matches()` on a subject
//! that is not ASCII, and `size()` of a string that is not UTF-8) is
//! `HostError::Unimplemented`, never a guess.

pub mod catalog;
mod eval;
mod lower;
mod node;
mod value;

pub use node::Read;
pub use value::Type;

use filter_common::cel::CelValue;
use filter_common::host::{Host, HostError};

/// Longest source compiled, deepest bracket nesting and most operator
/// characters: they bound the parser's and the evaluator's recursion.
const MAX_SOURCE: usize = 4096;
const MAX_NESTING: usize = 32;
const MAX_OPERATORS: usize = 256;

/// An expression that does not compile: the source and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// The expression's source text.
    pub source: String,
    /// Why it is rejected.
    pub reason: String,
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CEL expression `{}`: {}", self.source, self.reason)
    }
}

impl std::error::Error for CompileError {}

/// A compiled expression.
#[derive(Debug)]
pub struct Program {
    source: Box<str>,
    root: node::Node,
    ty: Type,
    reads: Vec<Read>,
}

/// Compiles `source`, or says why it is not evaluated in the module.
pub fn compile(source: &str) -> Result<Program, CompileError> {
    let fail = |reason: String| CompileError {
        source: source.to_string(),
        reason,
    };
    if source.len() > MAX_SOURCE || !shallow(source) {
        return Err(fail(format!(
            "longer than {MAX_SOURCE} bytes, nested deeper than {MAX_NESTING} or with more than {MAX_OPERATORS} operators"
        )));
    }
    let parsed = cel::Program::compile(source).map_err(|e| fail(format!("parse error: {e}")))?;
    let (root, ty) = lower::lower(parsed.expression()).map_err(fail)?;
    if ty == Type::HeaderMap {
        return Err(fail("a header map result is not supported".into()));
    }
    let mut reads = Vec::new();
    collect_reads(&root, &mut reads);
    Ok(Program {
        source: source.into(),
        root,
        ty,
        reads,
    })
}

impl Program {
    /// Evaluates against the current stream: the typed value. A CEL
    /// runtime error (e.g. a missing attribute) is `InternalFailure`; an
    /// input the module cannot decide as Envoy would is `Unimplemented`; a
    /// host failure is the host's error.
    pub fn value<H: Host + ?Sized>(&self, host: &H) -> Result<CelValue<'static>, HostError> {
        match eval::eval(&self.root, host) {
            Ok(v) => Ok(v.into()),
            Err(eval::Fail::Cel) => Err(HostError::InternalFailure),
            Err(eval::Fail::Undecided) => Err(HostError::Unimplemented),
            Err(eval::Fail::Host(e)) => Err(e),
        }
    }

    /// [`Program::value`] serialized as Envoy's `expr_evaluate` serializes
    /// it (what the differential test compares).
    pub fn evaluate<H: Host + ?Sized>(&self, host: &H) -> Result<Vec<u8>, HostError> {
        self.value(host).map(CelValue::into_bytes)
    }

    /// The CEL source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The CEL type of the result.
    pub fn result_type(&self) -> Type {
        self.ty
    }

    /// Whether the expression concatenates strings or bytes (`+`): Envoy
    /// 1.40's access-log `%CEL()%` formatter gives no value for that, though
    /// `expr_evaluate` does.
    pub fn concatenates(&self) -> bool {
        fn walk(n: &node::Node) -> bool {
            use node::Node::*;
            match n {
                Lit(_) | Attr(_) | Has(_) => false,
                Concat(..) => true,
                Not(x) | Neg(x) | Matches(x, _) | Convert(_, x) | Size(x) | Duration(_, x) => {
                    walk(x)
                }
                And(a, b) | Or(a, b) | Cmp(_, a, b) | Arith(_, a, b) | Str(_, a, b) => {
                    walk(a) || walk(b)
                }
                Cond(c, a, b) => walk(c) || walk(a) || walk(b),
                In(x, items) => walk(x) || items.iter().any(walk),
            }
        }
        walk(&self.root)
    }

    /// Every host read the expression may make (values and presence
    /// tests), in source order, without duplicates.
    pub fn reads(&self) -> &[Read] {
        &self.reads
    }
}

fn collect_reads(n: &node::Node, out: &mut Vec<Read>) {
    use node::Node::*;
    match n {
        Lit(_) => {}
        Attr(r) | Has(r) => {
            if !out.contains(r) {
                out.push(r.clone());
            }
        }
        Not(x) | Neg(x) | Matches(x, _) | Convert(_, x) | Size(x) | Duration(_, x) => {
            collect_reads(x, out)
        }
        And(a, b) | Or(a, b) | Cmp(_, a, b) | Arith(_, a, b) | Concat(a, b) | Str(_, a, b) => {
            collect_reads(a, out);
            collect_reads(b, out);
        }
        Cond(c, a, b) => {
            collect_reads(c, out);
            collect_reads(a, out);
            collect_reads(b, out);
        }
        In(x, items) => {
            collect_reads(x, out);
            for i in items {
                collect_reads(i, out);
            }
        }
    }
}

/// Bracket nesting and operator count (selections included) within the
/// limits (counted over the whole text, string literals included:
/// conservative).
fn shallow(source: &str) -> bool {
    let shape = filter_common::native_cel::SourceShape::of(source);
    shape.deepest <= MAX_NESTING && shape.operators + shape.dots <= MAX_OPERATORS
}

#[cfg(test)]
mod tests;
