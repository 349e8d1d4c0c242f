//! From `cel-parser`'s AST to the native form, or `None` when any node is
//! outside the supported subset.

use super::attributes;
use super::eval::{Cmp, Node, StrFn, Val};
use super::pattern::Pattern;
use super::Native;
use cel_parser::ast::{operators, CallExpr, Expr, IdedExpr};
use cel_parser::reference::Val as Literal;

/// Longest source compiled natively, deepest bracket nesting and most binary
/// operator characters: configuration conditions are short, and these bound
/// the recursion of the parser and of the evaluator on the module's 1 MiB
/// stack (anything larger is left to Envoy).
const MAX_SOURCE: usize = 1024;
const MAX_NESTING: usize = 24;
const MAX_OPERATORS: usize = 128;

/// Compiles `source` to the native form when it is in the supported subset.
///
/// Call it only with a source Envoy's CEL accepted (as [`crate::cel::compile`]
/// does): the parser's error recovery can panic on some invalid inputs, and
/// a valid one (the same CEL grammar as Envoy's) never reaches it.
pub fn compile(source: &str) -> Option<Native> {
    if source.len() > MAX_SOURCE || !shallow(source) {
        return None;
    }
    let ast = cel_parser::Parser::new().parse(source).ok()?;
    node(&ast).map(Native)
}

/// Bracket nesting and operator count within the limits (counted over the
/// whole text, string literals included: conservative).
fn shallow(source: &str) -> bool {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut operators = 0usize;
    for b in source.bytes() {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'+' | b'-' | b'*' | b'/' | b'%' | b'&' | b'|' | b'=' | b'<' | b'>' | b'!' | b'?' => {
                operators += 1
            }
            _ => {}
        }
    }
    deepest <= MAX_NESTING && operators <= MAX_OPERATORS
}

fn node(e: &IdedExpr) -> Option<Node> {
    match &e.expr {
        Expr::Literal(lit) => literal(lit).map(Node::Lit),
        Expr::Ident(name) => attributes::filter_state(name).map(Node::Attr),
        Expr::Select(s) if !s.test => {
            let path = select_path(e)?;
            match path.as_slice() {
                [map, headers, key] if *headers == "headers" => {
                    attributes::header_map(map, key).map(Node::Attr)
                }
                _ => attributes::lookup(&path).map(Node::Attr),
            }
        }
        Expr::Call(c) => call(c),
        _ => None,
    }
}

fn literal(lit: &Literal) -> Option<Val<'static>> {
    Some(match lit {
        Literal::Boolean(b) => Val::Bool(*b),
        Literal::Int(n) => Val::Int(*n),
        Literal::String(s) => Val::Str(s.clone().into_bytes().into()),
        Literal::Bytes(b) => Val::Bytes(b.clone().into()),
        _ => return None,
    })
}

/// `a.b.c` as `["a", "b", "c"]`.
fn select_path(e: &IdedExpr) -> Option<Vec<&str>> {
    match &e.expr {
        Expr::Ident(name) => Some(vec![name.as_str()]),
        Expr::Select(s) if !s.test => {
            let mut path = select_path(&s.operand)?;
            path.push(s.field.as_str());
            Some(path)
        }
        _ => None,
    }
}

fn boxed(e: &IdedExpr) -> Option<Box<Node>> {
    node(e).map(Box::new)
}

fn string_literal(e: &IdedExpr) -> Option<&str> {
    match &e.expr {
        Expr::Literal(Literal::String(s)) => Some(s.as_str()),
        _ => None,
    }
}

fn call(c: &CallExpr) -> Option<Node> {
    let name = c.func_name.as_str();
    if let Some(target) = &c.target {
        let [arg] = c.args.as_slice() else {
            return None;
        };
        let f = match name {
            "matches" => {
                let pattern = Pattern::new(string_literal(arg)?)?;
                return Some(Node::Matches(boxed(target)?, pattern));
            }
            "startsWith" => StrFn::StartsWith,
            "endsWith" => StrFn::EndsWith,
            "contains" => StrFn::Contains,
            _ => return None,
        };
        return Some(Node::Str(f, boxed(target)?, boxed(arg)?));
    }
    match (name, c.args.as_slice()) {
        (operators::LOGICAL_NOT, [x]) => Some(Node::Not(boxed(x)?)),
        (operators::CONDITIONAL, [cond, a, b]) => {
            Some(Node::Cond(boxed(cond)?, boxed(a)?, boxed(b)?))
        }
        (operators::LOGICAL_AND | operators::LOGICAL_OR, [first, rest @ ..])
            if !rest.is_empty() =>
        {
            let mut acc = boxed(first)?;
            for next in rest {
                let next = boxed(next)?;
                acc = Box::new(if name == operators::LOGICAL_AND {
                    Node::And(acc, next)
                } else {
                    Node::Or(acc, next)
                });
            }
            Some(*acc)
        }
        (operators::INDEX, [map, key]) => {
            let path = select_path(map)?;
            match path.as_slice() {
                [map, headers] if *headers == "headers" => {
                    attributes::header_map(map, string_literal(key)?).map(Node::Attr)
                }
                _ => None,
            }
        }
        (operators::ADD, [l, r]) => Some(Node::Add(boxed(l)?, boxed(r)?)),
        ("string", [x]) => Some(Node::ToString(boxed(x)?)),
        ("matches", [x, pattern]) => Some(Node::Matches(
            boxed(x)?,
            Pattern::new(string_literal(pattern)?)?,
        )),
        (op, [l, r]) => {
            let cmp = match op {
                operators::EQUALS => Cmp::Eq,
                operators::NOT_EQUALS => Cmp::Ne,
                operators::LESS => Cmp::Lt,
                operators::LESS_EQUALS => Cmp::Le,
                operators::GREATER => Cmp::Gt,
                operators::GREATER_EQUALS => Cmp::Ge,
                _ => return None,
            };
            Some(Node::Cmp(cmp, boxed(l)?, boxed(r)?))
        }
        _ => None,
    }
}
