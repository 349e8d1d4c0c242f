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
}
