//! The oracle the subset parser ([`super::parse`]) is checked against: the
//! full-grammar `cel-parser` crate. Unit tests and the `native_cel_parser`
//! fuzz target use it (feature `parser-oracle`); modules never contain it.

use super::cmp::Cmp;
use super::parse::{parse, Ast, Op};
use cel_parser::ast::{operators, Expr, IdedExpr};
use cel_parser::reference::Val;

/// The oracle's tree in the subset's shape, `None` outside the subset.
/// `&&` / `||` chains are flattened on both sides: the oracle balances them
/// into a tree, the subset parser folds left, and both operators are
/// associative in CEL.
pub fn from_oracle(e: &IdedExpr) -> Option<Ast> {
    Some(match &e.expr {
        Expr::Literal(Val::Boolean(b)) => Ast::Bool(*b),
        Expr::Literal(Val::Int(n)) => Ast::Int(*n),
        Expr::Literal(Val::String(s)) => Ast::Str(s.clone()),
        Expr::Literal(Val::Bytes(b)) => Ast::Bytes(b.clone()),
        Expr::Ident(name) => Ast::Ident(name.clone()),
        Expr::Select(s) if !s.test => {
            Ast::Select(Box::new(from_oracle(&s.operand)?), s.field.clone())
        }
        Expr::Call(c) => {
            let args: Option<Vec<Ast>> = c.args.iter().map(from_oracle).collect();
            let mut args = args?;
            let op = match c.func_name.as_str() {
                operators::LOGICAL_AND => Some(Op::And),
                operators::LOGICAL_OR => Some(Op::Or),
                operators::EQUALS => Some(Op::Cmp(Cmp::Eq)),
                operators::NOT_EQUALS => Some(Op::Cmp(Cmp::Ne)),
                operators::LESS => Some(Op::Cmp(Cmp::Lt)),
                operators::LESS_EQUALS => Some(Op::Cmp(Cmp::Le)),
                operators::GREATER => Some(Op::Cmp(Cmp::Gt)),
                operators::GREATER_EQUALS => Some(Op::Cmp(Cmp::Ge)),
                operators::ADD => Some(Op::Add),
                _ => None,
            };
            match (c.func_name.as_str(), op, c.target.as_ref()) {
                (_, Some(op), None) if args.len() == 2 => {
                    let r = args.pop()?;
                    let l = args.pop()?;
                    Ast::Binary(op, Box::new(l), Box::new(r))
                }
                (operators::LOGICAL_NOT, _, None) if args.len() == 1 => {
                    Ast::Not(Box::new(args.pop()?))
                }
                (operators::CONDITIONAL, _, None) if args.len() == 3 => {
                    let b = args.pop()?;
                    let a = args.pop()?;
                    let c = args.pop()?;
                    Ast::Cond(Box::new(c), Box::new(a), Box::new(b))
                }
                (operators::INDEX, _, None) if args.len() == 2 => {
                    let i = args.pop()?;
                    let m = args.pop()?;
                    Ast::Index(Box::new(m), Box::new(i))
                }
                // Operators' names (`_==_`, `!_`, `@in`, …) are never
                // identifiers; a function's name always is.
                (name, None, target)
                    if name.bytes().all(|b| b == b'_' || b.is_ascii_alphanumeric()) =>
                {
                    let target = match target {
                        Some(t) => Some(Box::new(from_oracle(t)?)),
                        None => None,
                    };
                    Ast::Call(target, name.to_string(), args)
                }
                _ => return None,
            }
        }
        _ => return None,
    })
}

/// Flattens `&&` / `||` chains (see [`from_oracle`]) everywhere in a tree.
pub fn normal(a: Ast) -> Ast {
    fn chain(op: Op, a: Ast, out: &mut Vec<Ast>) {
        match a {
            Ast::Binary(o, l, r) if o == op => {
                chain(op, *l, out);
                chain(op, *r, out);
            }
            other => out.push(normal(other)),
        }
    }
    let b = |x: Box<Ast>| Box::new(normal(*x));
    match a {
        Ast::Binary(op @ (Op::And | Op::Or), l, r) => {
            let mut parts = Vec::new();
            chain(op, *l, &mut parts);
            chain(op, *r, &mut parts);
            // A chain as a call of its flattened operands, for comparison only.
            Ast::Call(None, format!("{op:?}"), parts)
        }
        Ast::Binary(op, l, r) => Ast::Binary(op, b(l), b(r)),
        Ast::Select(x, f) => Ast::Select(b(x), f),
        Ast::Index(x, i) => Ast::Index(b(x), b(i)),
        Ast::Call(t, n, args) => Ast::Call(t.map(b), n, args.into_iter().map(normal).collect()),
        Ast::Not(x) => Ast::Not(b(x)),
        Ast::Cond(c, x, y) => Ast::Cond(b(c), b(x), b(y)),
        leaf => leaf,
    }
}

/// Parses `source` with the subset parser and, where it gives a tree,
/// asserts that the oracle reads the same tree; returns whether the subset
/// parser accepted. The oracle is asked only about accepted sources (it can
/// panic on some invalid ones).
///
/// # Panics
///
/// When the two disagree: that is what it checks.
#[allow(clippy::panic)]
pub fn agrees(source: &str) -> bool {
    let Some(mine) = parse(source) else {
        return false;
    };
    let oracle = cel_parser::Parser::new()
        .parse(source)
        .unwrap_or_else(|e| panic!("{source:?}: accepted here, rejected by the oracle: {e:?}"));
    let theirs = from_oracle(&oracle).unwrap_or_else(|| {
        panic!("{source:?}: accepted here as {mine:?}, the oracle gives {oracle:?}")
    });
    assert_eq!(normal(mine), normal(theirs), "{source:?}");
    true
}
