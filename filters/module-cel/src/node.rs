//! The compiled form: a tree whose every node has a type checked at
//! compile time.

use crate::value::{Type, Value};
use filter_common::native_cel::pattern::Pattern;

/// One host read: a property path and the CEL type of its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// The property path (`["request", "headers", "x-tenant"]`; a bare
    /// name, filter state `wasm.<name>`, is one segment).
    pub path: Vec<String>,
    /// The CEL type Envoy gives the value.
    pub ty: Type,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Arithmetic operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// String predicates with one string argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrFn {
    StartsWith,
    EndsWith,
    Contains,
}

/// Type conversions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conv {
    String,
    Int,
    Uint,
}

/// Accessors of a duration, as Envoy's CEL (cel-cpp) defines them: whole
/// hours, minutes and seconds, and the millisecond *component* (0 to 999:
/// `duration('1.5s').getMilliseconds()` is 500 in Envoy 1.40, measured),
/// each truncated toward zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationPart {
    Hours,
    Minutes,
    Seconds,
    Milliseconds,
}

impl DurationPart {
    /// The part of a duration of `nanos` nanoseconds.
    pub fn of(self, nanos: i64) -> i64 {
        const MS: i64 = 1_000_000;
        match self {
            DurationPart::Hours => nanos / (3_600_000 * MS),
            DurationPart::Minutes => nanos / (60_000 * MS),
            DurationPart::Seconds => nanos / (1_000 * MS),
            DurationPart::Milliseconds => (nanos / MS) % 1_000,
        }
    }
}

/// A compiled expression.
#[derive(Debug)]
pub enum Node {
    Lit(Value),
    Attr(Read),
    Has(Read),
    Not(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Cond(Box<Node>, Box<Node>, Box<Node>),
    Cmp(CmpOp, Box<Node>, Box<Node>),
    Arith(ArithOp, Box<Node>, Box<Node>),
    /// `+` of two strings or two bytes.
    Concat(Box<Node>, Box<Node>),
    Neg(Box<Node>),
    In(Box<Node>, Vec<Node>),
    Matches(Box<Node>, Pattern),
    Str(StrFn, Box<Node>, Box<Node>),
    Convert(Conv, Box<Node>),
    Size(Box<Node>),
    /// `d.getSeconds()` and the other accessors of a duration.
    Duration(DurationPart, Box<Node>),
}
