//! From the parsed subset ([`super::parse`]) to the native form, or `None`
//! when any node is outside what the evaluator supports.

use super::attributes;
use super::eval::{Node, StrFn, Val};
use super::parse::{parse, Ast, Op};
use super::pattern::Pattern;
use super::Native;

/// Longest source compiled natively, deepest bracket nesting and most binary
/// operator characters: configuration conditions are short, and these bound
/// the recursion of the evaluator (a chain of operators is a deep tree) on
/// the module's 1 MiB stack (anything larger is left to Envoy).
const MAX_SOURCE: usize = 1024;
const MAX_NESTING: usize = 24;
const MAX_OPERATORS: usize = 128;

/// Compiles `source` to the native form when it is in the supported subset.
///
/// [`crate::cel::compile`] calls it only with a source Envoy's CEL accepted,
/// so the result agrees with Envoy's reading of the text; on any other input
/// it still never panics.
pub fn compile(source: &str) -> Option<Native> {
    if source.len() > MAX_SOURCE || !shallow(source) {
        return None;
    }
    node(&parse(source)?).map(Native)
}

/// Bracket nesting and operator count within the limits (counted over the
/// whole text, string literals included: conservative).
fn shallow(source: &str) -> bool {
    let shape = SourceShape::of(source);
    shape.deepest <= MAX_NESTING && shape.operators <= MAX_OPERATORS
}

/// What bounds an evaluator's recursion on a CEL source, counted over the
/// whole text (string literals included: conservative).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceShape {
    /// Deepest bracket nesting (`(`, `[`, `{`).
    pub deepest: usize,
    /// Operator characters (`+ - * / % & | = < > ! ?`).
    pub operators: usize,
    /// Member selections (`.`).
    pub dots: usize,
}

impl SourceShape {
    /// Counts `source`'s nesting, operators and selections.
    pub fn of(source: &str) -> SourceShape {
        let mut depth = 0usize;
        let mut shape = SourceShape::default();
        for b in source.bytes() {
            match b {
                b'(' | b'[' | b'{' => {
                    depth += 1;
                    shape.deepest = shape.deepest.max(depth);
                }
                b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                b'+' | b'-' | b'*' | b'/' | b'%' | b'&' | b'|' | b'=' | b'<' | b'>' | b'!'
                | b'?' => shape.operators += 1,
                b'.' => shape.dots += 1,
                _ => {}
            }
        }
        shape
    }
}

fn node(e: &Ast) -> Option<Node> {
    match e {
        Ast::Bool(b) => Some(Node::Lit(Val::Bool(*b))),
        Ast::Int(n) => Some(Node::Lit(Val::Int(*n))),
        Ast::Str(s) => Some(Node::Lit(Val::Str(s.clone().into_bytes().into()))),
        Ast::Bytes(b) => Some(Node::Lit(Val::Bytes(b.clone().into()))),
        Ast::Ident(name) => attributes::filter_state(name).map(Node::Attr),
        Ast::Select(..) => {
            let path = select_path(e)?;
            match path.as_slice() {
                [map, headers, key] if *headers == "headers" => {
                    attributes::header_map(map, key).map(Node::Attr)
                }
                _ => attributes::lookup(&path).map(Node::Attr),
            }
        }
        Ast::Index(map, key) => {
            let path = select_path(map)?;
            match (path.as_slice(), &**key) {
                ([map, headers], Ast::Str(key)) if *headers == "headers" => {
                    attributes::header_map(map, key).map(Node::Attr)
                }
                _ => None,
            }
        }
        Ast::Call(target, name, args) => call(target.as_deref(), name, args),
        Ast::Not(x) => Some(Node::Not(boxed(x)?)),
        Ast::Cond(c, a, b) => Some(Node::Cond(boxed(c)?, boxed(a)?, boxed(b)?)),
        Ast::Binary(op, l, r) => {
            let (l, r) = (boxed(l)?, boxed(r)?);
            Some(match op {
                Op::And => Node::And(l, r),
                Op::Or => Node::Or(l, r),
                Op::Add => Node::Add(l, r),
                Op::Cmp(cmp) => Node::Cmp(*cmp, l, r),
            })
        }
    }
}

/// `a.b.c` as `["a", "b", "c"]`.
fn select_path(e: &Ast) -> Option<Vec<&str>> {
    match e {
        Ast::Ident(name) => Some(vec![name.as_str()]),
        Ast::Select(operand, field) => {
            let mut path = select_path(operand)?;
            path.push(field.as_str());
            Some(path)
        }
        _ => None,
    }
}

fn boxed(e: &Ast) -> Option<Box<Node>> {
    node(e).map(Box::new)
}

fn string_literal(e: &Ast) -> Option<&str> {
    match e {
        Ast::Str(s) => Some(s.as_str()),
        _ => None,
    }
}

fn call(target: Option<&Ast>, name: &str, args: &[Ast]) -> Option<Node> {
    match (target, name, args) {
        (Some(x), "matches", [pattern]) | (None, "matches", [x, pattern]) => Some(Node::Matches(
            boxed(x)?,
            Pattern::new(string_literal(pattern)?)?,
        )),
        (Some(x), "startsWith", [arg]) => {
            Some(Node::Str(StrFn::StartsWith, boxed(x)?, boxed(arg)?))
        }
        (Some(x), "endsWith", [arg]) => Some(Node::Str(StrFn::EndsWith, boxed(x)?, boxed(arg)?)),
        (Some(x), "contains", [arg]) => Some(Node::Str(StrFn::Contains, boxed(x)?, boxed(arg)?)),
        (None, "string", [x]) => Some(Node::ToString(boxed(x)?)),
        _ => None,
    }
}
