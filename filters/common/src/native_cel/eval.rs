//! The compiled form and its evaluation, with CEL's semantics for the
//! supported subset.

use super::attributes::{self, Attribute, Kind};
use super::cmp::Cmp;
use super::pattern::Pattern;
use crate::host::Host;
use crate::shared_reads::SharedPrefix;
use std::borrow::Cow;

/// A CEL value of the supported subset. Strings and bytes borrow the
/// compiled literals they come from and share the values the request's
/// read cache holds, so evaluating one copies nothing until `+` builds a
/// new string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val<'n> {
    /// bool
    Bool(bool),
    /// int
    Int(i64),
    /// string (kept as bytes: CEL compares strings bytewise)
    Str(Text<'n>),
    /// bytes
    Bytes(Text<'n>),
}

/// The bytes of a string or bytes value.
#[derive(Debug, Clone)]
pub enum Text<'n> {
    /// A literal of the compiled form.
    Borrowed(&'n [u8]),
    /// A value the host gave (an attribute or header, or a prefix of one).
    Shared(SharedPrefix),
    /// Built by the evaluation (or a literal, in the compiled form).
    Owned(Vec<u8>),
}

/// Room reserved when `+` starts a new string beyond the two operands, so a
/// chain (`a + ' ' + b`) grows in place.
const CONCAT_SLACK: usize = 32;

impl<'n> Text<'n> {
    /// `self` followed by `tail`.
    fn concat(self, tail: &[u8]) -> Text<'n> {
        let mut out = match self {
            Text::Owned(v) => v,
            other => {
                let mut v = Vec::with_capacity(other.len() + tail.len() + CONCAT_SLACK);
                v.extend_from_slice(&other);
                v
            }
        };
        out.extend_from_slice(tail);
        Text::Owned(out)
    }

    /// As a `Cow` (a shared value is copied).
    fn into_cow(self) -> Cow<'n, [u8]> {
        match self {
            Text::Borrowed(b) => Cow::Borrowed(b),
            Text::Shared(s) => Cow::Owned(s.as_bytes().to_vec()),
            Text::Owned(v) => Cow::Owned(v),
        }
    }
}

impl std::ops::Deref for Text<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Text::Borrowed(b) => b,
            Text::Shared(s) => s.as_bytes(),
            Text::Owned(v) => v,
        }
    }
}

impl PartialEq for Text<'_> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Text<'_> {}

impl From<Vec<u8>> for Text<'_> {
    fn from(v: Vec<u8>) -> Self {
        Text::Owned(v)
    }
}

impl<'n> From<Val<'n>> for crate::cel_value::CelValue<'n> {
    fn from(v: Val<'n>) -> Self {
        use crate::cel_value::CelValue;
        match v {
            Val::Bool(b) => CelValue::Bool(b),
            Val::Int(n) => CelValue::Int(n),
            Val::Str(s) | Val::Bytes(s) => CelValue::Bytes(s.into_cow()),
        }
    }
}

impl Val<'_> {
    /// A literal of the compiled form, borrowed.
    fn borrowed(&self) -> Val<'_> {
        match self {
            Val::Bool(b) => Val::Bool(*b),
            Val::Int(n) => Val::Int(*n),
            Val::Str(s) => Val::Str(Text::Borrowed(s)),
            Val::Bytes(b) => Val::Bytes(Text::Borrowed(b)),
        }
    }
}

/// Why no value came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fail {
    /// A CEL error (missing attribute, no matching overload, overflow).
    Error,
    /// Leave this evaluation to Envoy.
    Fallback,
}

/// String predicates with one argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrFn {
    StartsWith,
    EndsWith,
    Contains,
}

/// A compiled expression.
#[derive(Debug)]
pub enum Node {
    Lit(Val<'static>),
    Attr(Attribute),
    Not(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Cond(Box<Node>, Box<Node>, Box<Node>),
    Cmp(Cmp, Box<Node>, Box<Node>),
    Add(Box<Node>, Box<Node>),
    ToString(Box<Node>),
    Matches(Box<Node>, Pattern),
    Str(StrFn, Box<Node>, Box<Node>),
}

type Res<'n> = Result<Val<'n>, Fail>;

/// Evaluates `node`, reading attributes through `host`.
pub fn eval<'n, H: Host + ?Sized>(node: &'n Node, host: &H) -> Res<'n> {
    match node {
        Node::Lit(v) => Ok(v.borrowed()),
        Node::Attr(a) => {
            let raw = attributes::read(&a.source, host).ok_or(Fail::Error)?;
            match a.kind {
                Kind::Str => Ok(Val::Str(Text::Shared(raw))),
                Kind::Bytes => Ok(Val::Bytes(Text::Shared(raw))),
                Kind::Int => <[u8; 8]>::try_from(raw.as_bytes())
                    .map(|b| Val::Int(i64::from_le_bytes(b)))
                    .map_err(|_| Fail::Fallback),
            }
        }
        Node::Not(x) => match eval(x, host)? {
            Val::Bool(b) => Ok(Val::Bool(!b)),
            _ => Err(Fail::Error),
        },
        Node::And(l, r) => logic(l, r, host, false),
        Node::Or(l, r) => logic(l, r, host, true),
        Node::Cond(c, a, b) => match eval(c, host)? {
            Val::Bool(true) => eval(a, host),
            Val::Bool(false) => eval(b, host),
            _ => Err(Fail::Error),
        },
        Node::Cmp(op, l, r) => {
            let (l, r) = (eval(l, host)?, eval(r, host)?);
            let order = match (&l, &r) {
                (Val::Int(a), Val::Int(b)) => a.cmp(b),
                (Val::Str(a), Val::Str(b)) | (Val::Bytes(a), Val::Bytes(b)) => (**a).cmp(&**b),
                (Val::Bool(a), Val::Bool(b)) if matches!(op, Cmp::Eq | Cmp::Ne) => a.cmp(b),
                // Mixed types: Envoy's answer depends on its CEL options.
                _ => return Err(Fail::Fallback),
            };
            use std::cmp::Ordering::*;
            Ok(Val::Bool(match op {
                Cmp::Eq => order == Equal,
                Cmp::Ne => order != Equal,
                Cmp::Lt => order == Less,
                Cmp::Le => order != Greater,
                Cmp::Gt => order == Greater,
                Cmp::Ge => order != Less,
            }))
        }
        Node::Add(l, r) => match (eval(l, host)?, eval(r, host)?) {
            (Val::Int(a), Val::Int(b)) => a.checked_add(b).map(Val::Int).ok_or(Fail::Error),
            (Val::Str(a), Val::Str(b)) => Ok(Val::Str(a.concat(&b))),
            (Val::Bytes(a), Val::Bytes(b)) => Ok(Val::Bytes(a.concat(&b))),
            _ => Err(Fail::Error), // no matching overload
        },
        Node::ToString(x) => match eval(x, host)? {
            Val::Int(n) => Ok(Val::Str(n.to_string().into_bytes().into())),
            Val::Str(s) => Ok(Val::Str(s)),
            Val::Bytes(b) if std::str::from_utf8(&b).is_ok() => Ok(Val::Str(b)),
            _ => Err(Fail::Fallback),
        },
        Node::Matches(x, pattern) => match eval(x, host)? {
            Val::Str(s) => pattern.is_match(&s).map(Val::Bool).ok_or(Fail::Fallback),
            _ => Err(Fail::Error),
        },
        Node::Str(f, x, arg) => match (eval(x, host)?, eval(arg, host)?) {
            (Val::Str(s), Val::Str(a)) => Ok(Val::Bool(match f {
                StrFn::StartsWith => s.starts_with(&a),
                StrFn::EndsWith => s.ends_with(&a),
                StrFn::Contains => a.is_empty() || s.windows(a.len()).any(|w| w == &*a),
            })),
            _ => Err(Fail::Error),
        },
    }
}

/// `&&` (`absorb` false) and `||` (`absorb` true) as CEL defines them: the
/// absorbing value on either side wins even over an error on the other;
/// otherwise an error or a non-bool operand is an error.
fn logic<'n, H: Host + ?Sized>(l: &'n Node, r: &'n Node, host: &H, absorb: bool) -> Res<'n> {
    let a = eval(l, host);
    if a == Ok(Val::Bool(absorb)) {
        return Ok(Val::Bool(absorb));
    }
    let b = eval(r, host);
    if b == Ok(Val::Bool(absorb)) {
        return Ok(Val::Bool(absorb));
    }
    match (a, b) {
        (Err(Fail::Fallback), _) | (_, Err(Fail::Fallback)) => Err(Fail::Fallback),
        (Ok(Val::Bool(_)), Ok(Val::Bool(_))) => Ok(Val::Bool(!absorb)),
        _ => Err(Fail::Error),
    }
}
