//! Evaluation of the typed tree with cel-cpp's semantics: strict operators
//! propagate errors, `&&` / `||` absorb them, arithmetic overflow and
//! division by zero are errors. Attributes are read through the host when
//! (and each time) a node needs them.

use crate::node::{ArithOp, CmpOp, Conv, Node, Read, StrFn};
use crate::value::Value;
use filter_common::host::{Host, HostError};
use std::cmp::Ordering;

/// Why no value came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fail {
    /// A CEL error (missing attribute, overflow, …): Envoy's result is an
    /// error too.
    Cel,
    /// The module cannot decide this input as Envoy would (e.g. `matches()`
    /// on a subject that is not ASCII).
    Undecided,
    /// The host failed.
    Host(HostError),
}

type Res = Result<Value, Fail>;

fn read<H: Host + ?Sized>(r: &Read, host: &H) -> Result<Option<Vec<u8>>, Fail> {
    let path: Vec<&str> = r.path.iter().map(String::as_str).collect();
    match host.property(&path) {
        Ok(v) => Ok(v),
        Err(HostError::NotFound) => Ok(None),
        Err(e) => Err(Fail::Host(e)),
    }
}

/// The worse of two failures of a strict operator's operands: a host
/// failure first, then a definite CEL error (whatever the other operand
/// is, Envoy's result is an error), then undecided.
fn worse(a: Fail, b: Fail) -> Fail {
    match (a, b) {
        (Fail::Host(e), _) | (_, Fail::Host(e)) => Fail::Host(e),
        (Fail::Cel, _) | (_, Fail::Cel) => Fail::Cel,
        _ => Fail::Undecided,
    }
}

/// Evaluates both operands of a strict operator.
fn both<H: Host + ?Sized>(l: &Node, r: &Node, host: &H) -> Result<(Value, Value), Fail> {
    match (eval(l, host), eval(r, host)) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(a), Err(b)) => Err(worse(a, b)),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// Evaluates `node` against the current stream.
pub fn eval<H: Host + ?Sized>(node: &Node, host: &H) -> Res {
    match node {
        Node::Lit(v) => Ok(v.clone()),
        Node::Attr(r) => {
            let raw = read(r, host)?.ok_or(Fail::Cel)?;
            Value::decode(r.ty, raw).ok_or(Fail::Host(HostError::SerializationFailure))
        }
        Node::Has(r) => Ok(Value::Bool(read(r, host)?.is_some())),
        Node::Not(x) => match eval(x, host)? {
            Value::Bool(b) => Ok(Value::Bool(!b)),
            _ => Err(Fail::Cel),
        },
        Node::And(l, r) => logic(l, r, host, false),
        Node::Or(l, r) => logic(l, r, host, true),
        Node::Cond(c, a, b) => match eval(c, host)? {
            Value::Bool(true) => eval(a, host),
            Value::Bool(false) => eval(b, host),
            _ => Err(Fail::Cel),
        },
        Node::Cmp(op, l, r) => {
            let (a, b) = both(l, r, host)?;
            compare(*op, &a, &b).map(Value::Bool)
        }
        Node::Arith(op, l, r) => {
            let (a, b) = both(l, r, host)?;
            arith(*op, a, b)
        }
        Node::Concat(l, r) => match both(l, r, host)? {
            (Value::Str(mut x), Value::Str(y)) => {
                x.extend_from_slice(&y);
                Ok(Value::Str(x))
            }
            (Value::Bytes(mut x), Value::Bytes(y)) => {
                x.extend_from_slice(&y);
                Ok(Value::Bytes(x))
            }
            _ => Err(Fail::Cel),
        },
        Node::Neg(x) => match eval(x, host)? {
            Value::Int(n) => n.checked_neg().map(Value::Int).ok_or(Fail::Cel),
            Value::Double(x) => Ok(Value::Double(-x)),
            _ => Err(Fail::Cel),
        },
        Node::In(x, items) => {
            let x = eval(x, host);
            let mut values = Vec::with_capacity(items.len());
            let mut failure: Option<Fail> = x.as_ref().err().copied();
            for item in items {
                match eval(item, host) {
                    Ok(v) => values.push(v),
                    Err(e) => failure = Some(failure.map_or(e, |f| worse(f, e))),
                }
            }
            if let Some(f) = failure {
                return Err(f);
            }
            let x = x?;
            for v in &values {
                if compare(CmpOp::Eq, &x, v)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        Node::Matches(x, pattern) => match eval(x, host)? {
            Value::Str(s) => pattern.is_match(&s).map(Value::Bool).ok_or(Fail::Undecided),
            _ => Err(Fail::Cel),
        },
        Node::Str(f, x, a) => match both(x, a, host)? {
            (Value::Str(s), Value::Str(a)) => Ok(Value::Bool(match f {
                StrFn::StartsWith => s.starts_with(&a),
                StrFn::EndsWith => s.ends_with(&a),
                StrFn::Contains => a.is_empty() || s.windows(a.len()).any(|w| w == a.as_slice()),
            })),
            _ => Err(Fail::Cel),
        },
        Node::Convert(conv, x) => convert(*conv, eval(x, host)?),
        Node::Duration(part, x) => match eval(x, host)? {
            Value::Duration(nanos) => Ok(Value::Int(part.of(nanos))),
            _ => Err(Fail::Cel),
        },
        Node::Size(x) => match eval(x, host)? {
            Value::Bytes(b) => i64::try_from(b.len())
                .map(Value::Int)
                .map_err(|_| Fail::Cel),
            // cel-cpp counts code points; how it counts in text that is
            // not UTF-8 is not verified.
            Value::Str(s) => match std::str::from_utf8(&s) {
                Ok(s) => i64::try_from(s.chars().count())
                    .map(Value::Int)
                    .map_err(|_| Fail::Cel),
                Err(_) => Err(Fail::Undecided),
            },
            _ => Err(Fail::Cel),
        },
    }
}

/// `&&` (`absorb` false) and `||` (`absorb` true) as CEL defines them: the
/// absorbing value on either side wins even over an error on the other.
fn logic<H: Host + ?Sized>(l: &Node, r: &Node, host: &H, absorb: bool) -> Res {
    let a = eval(l, host);
    if a == Ok(Value::Bool(absorb)) {
        return a;
    }
    let b = eval(r, host);
    if b == Ok(Value::Bool(absorb)) {
        return b;
    }
    match (a, b) {
        (Ok(Value::Bool(_)), Ok(Value::Bool(_))) => Ok(Value::Bool(!absorb)),
        // A host failure is reported as such; an undecided side could be
        // Envoy's absorbing value, so it beats a definite error.
        (Err(Fail::Host(e)), _) | (_, Err(Fail::Host(e))) => Err(Fail::Host(e)),
        (Err(Fail::Undecided), _) | (_, Err(Fail::Undecided)) => Err(Fail::Undecided),
        _ => Err(Fail::Cel),
    }
}

fn compare(op: CmpOp, a: &Value, b: &Value) -> Result<bool, Fail> {
    if let (Value::Double(x), Value::Double(y)) = (a, b) {
        // IEEE-754: every comparison with NaN is false except `!=`.
        return Ok(match op {
            CmpOp::Eq => x == y,
            CmpOp::Ne => x != y,
            CmpOp::Lt => x < y,
            CmpOp::Le => x <= y,
            CmpOp::Gt => x > y,
            CmpOp::Ge => x >= y,
        });
    }
    let order = match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Int(x), Value::Int(y))
        | (Value::Timestamp(x), Value::Timestamp(y))
        | (Value::Duration(x), Value::Duration(y)) => x.cmp(y),
        (Value::Uint(x), Value::Uint(y)) => x.cmp(y),
        (Value::Str(x), Value::Str(y)) | (Value::Bytes(x), Value::Bytes(y)) => x.cmp(y),
        // Types are checked at compile time; a host value of another shape
        // never gets here (it fails to decode).
        _ => return Err(Fail::Cel),
    };
    Ok(match op {
        CmpOp::Eq => order == Ordering::Equal,
        CmpOp::Ne => order != Ordering::Equal,
        CmpOp::Lt => order == Ordering::Less,
        CmpOp::Le => order != Ordering::Greater,
        CmpOp::Gt => order == Ordering::Greater,
        CmpOp::Ge => order != Ordering::Less,
    })
}

fn arith(op: ArithOp, a: Value, b: Value) -> Res {
    let overflow = Fail::Cel;
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => match op {
            ArithOp::Add => x.checked_add(y),
            ArithOp::Sub => x.checked_sub(y),
            ArithOp::Mul => x.checked_mul(y),
            ArithOp::Div => x.checked_div(y),
            ArithOp::Rem => x.checked_rem(y),
        }
        .map(Value::Int)
        .ok_or(overflow),
        (Value::Uint(x), Value::Uint(y)) => match op {
            ArithOp::Add => x.checked_add(y),
            ArithOp::Sub => x.checked_sub(y),
            ArithOp::Mul => x.checked_mul(y),
            ArithOp::Div => x.checked_div(y),
            ArithOp::Rem => x.checked_rem(y),
        }
        .map(Value::Uint)
        .ok_or(overflow),
        (Value::Double(x), Value::Double(y)) => match op {
            ArithOp::Add => Ok(Value::Double(x + y)),
            ArithOp::Sub => Ok(Value::Double(x - y)),
            ArithOp::Mul => Ok(Value::Double(x * y)),
            ArithOp::Div => Ok(Value::Double(x / y)),
            ArithOp::Rem => Err(Fail::Cel),
        },
        _ => Err(Fail::Cel),
    }
}

fn convert(conv: Conv, v: Value) -> Res {
    match (conv, v) {
        (Conv::String, Value::Int(n)) => Ok(Value::Str(n.to_string().into_bytes())),
        (Conv::String, Value::Uint(n)) => Ok(Value::Str(n.to_string().into_bytes())),
        (Conv::String, Value::Bool(b)) => Ok(Value::Str(b.to_string().into_bytes())),
        (Conv::String, Value::Str(s)) => Ok(Value::Str(s)),
        // cel-cpp: bytes that are not UTF-8 are an error.
        (Conv::String, Value::Bytes(b)) => match String::from_utf8(b) {
            Ok(s) => Ok(Value::Str(s.into_bytes())),
            Err(_) => Err(Fail::Cel),
        },
        (Conv::Int, Value::Int(n)) => Ok(Value::Int(n)),
        (Conv::Int, Value::Uint(n)) => i64::try_from(n).map(Value::Int).map_err(|_| Fail::Cel),
        (Conv::Uint, Value::Uint(n)) => Ok(Value::Uint(n)),
        (Conv::Uint, Value::Int(n)) => u64::try_from(n).map(Value::Uint).map_err(|_| Fail::Cel),
        _ => Err(Fail::Cel),
    }
}
