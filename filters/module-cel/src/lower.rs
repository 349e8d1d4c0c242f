//! From the `cel` crate's AST to the typed [`Node`] tree. Every construct
//! outside the subset whose results are known to equal Envoy's (cel-cpp as
//! Envoy 1.40 configures it) is an error naming the reason.

use crate::catalog;
use crate::node::{ArithOp, CmpOp, Conv, DurationPart, Node, Read, StrFn};
use crate::value::{Type, Value};
use cel::common::ast::{operators as op, CallExpr, Expr, IdedExpr, LiteralValue};
use filter_common::native_cel::pattern::Pattern;

/// Why a construct is not compiled.
pub type Reason = String;

type Lowered = Result<(Node, Type), Reason>;

/// Lowers an expression and checks its types.
pub fn lower(e: &IdedExpr) -> Lowered {
    match &e.expr {
        Expr::Literal(lit) => literal(lit),
        Expr::Ident(_) | Expr::Select(_) => attribute(e),
        Expr::Call(call) => self::call(call),
        Expr::List(_) => Err("a list outside `x in [...]` is not supported".into()),
        Expr::Map(_) => Err("map literals are not supported".into()),
        Expr::Struct(_) => Err("message literals are not supported".into()),
        Expr::Comprehension(_) => Err(
            "macros over lists and maps (all, exists, exists_one, map, filter) are not supported"
                .into(),
        ),
        Expr::Unspecified => Err("unspecified expression".into()),
    }
}

fn literal(lit: &LiteralValue) -> Lowered {
    Ok(match lit {
        LiteralValue::Boolean(b) => (Node::Lit(Value::Bool(**b)), Type::Bool),
        LiteralValue::Int(n) => (Node::Lit(Value::Int(**n)), Type::Int),
        LiteralValue::UInt(n) => (Node::Lit(Value::Uint(**n)), Type::Uint),
        LiteralValue::Double(x) => (Node::Lit(Value::Double(**x)), Type::Double),
        LiteralValue::String(s) => (Node::Lit(Value::Str(s.as_bytes().to_vec())), Type::String),
        LiteralValue::Bytes(b) => (Node::Lit(Value::Bytes(b.to_vec())), Type::Bytes),
        LiteralValue::Null => {
            return Err("null is not supported (its comparisons depend on Envoy's options)".into())
        }
    })
}

/// `a.b.c` as `["a", "b", "c"]`, for identifiers and plain selections.
fn path(e: &IdedExpr) -> Option<Vec<&str>> {
    match &e.expr {
        Expr::Ident(name) => Some(vec![name.as_str()]),
        Expr::Select(s) if !s.test => {
            let mut p = path(&s.operand)?;
            p.push(s.field.as_str());
            Some(p)
        }
        _ => None,
    }
}

/// The catalogued header map this expression names, as a path.
fn header_map(e: &IdedExpr) -> Option<Vec<String>> {
    let p = path(e)?;
    (catalog::lookup(&p.join(".")) == Some(Type::HeaderMap))
        .then(|| p.iter().map(|s| s.to_string()).collect())
}

fn read(path: Vec<String>, ty: Type) -> Read {
    Read { path, ty }
}

/// An identifier or a selection: an attribute, a header, filter state, or
/// a presence test (`has()`).
fn attribute(e: &IdedExpr) -> Lowered {
    if let Expr::Select(s) = &e.expr {
        if let Some(mut map) = header_map(&s.operand) {
            map.push(s.field.clone());
            let r = read(map, Type::String);
            return Ok(if s.test {
                (Node::Has(r), Type::Bool)
            } else {
                (Node::Attr(r), Type::String)
            });
        }
        if s.test {
            let p = path(&s.operand)
                .map(|mut p| {
                    p.push(s.field.as_str());
                    p
                })
                .ok_or("has() is supported on attributes and headers only")?;
            let dotted = p.join(".");
            let ty = catalog::lookup(&dotted)
                .ok_or_else(|| format!("has({dotted}): not a known Envoy attribute"))?;
            let owned = p.iter().map(|s| s.to_string()).collect();
            return Ok((Node::Has(read(owned, ty)), Type::Bool));
        }
    }
    let p = path(e).ok_or("field selection on a computed value is not supported")?;
    let dotted = p.join(".");
    if let Some(ty) = catalog::lookup(&dotted) {
        if ty == Type::HeaderMap {
            return Err(format!(
                "{dotted} as a whole value is not supported (index it: {dotted}['name'])"
            ));
        }
        let owned = p.iter().map(|s| s.to_string()).collect();
        return Ok((Node::Attr(read(owned, ty)), ty));
    }
    match p.as_slice() {
        [name] if catalog::is_filter_state_name(name) => Ok((
            Node::Attr(read(vec![name.to_string()], Type::Bytes)),
            Type::Bytes,
        )),
        [name, ..] if catalog::is_filter_state_name(name) => Err(format!(
            "{dotted}: filter state `wasm.{name}` is bytes and has no fields"
        )),
        _ => Err(format!("{dotted}: not a known Envoy attribute")),
    }
}

fn boxed(e: &IdedExpr) -> Result<(Box<Node>, Type), Reason> {
    lower(e).map(|(n, t)| (Box::new(n), t))
}

fn expect(e: &IdedExpr, want: Type, what: &str) -> Result<Box<Node>, Reason> {
    let (n, t) = boxed(e)?;
    if t == want {
        Ok(n)
    } else {
        Err(format!("{what} needs a {want}, got a {t}"))
    }
}

fn call(c: &CallExpr) -> Lowered {
    let target = c.target.as_deref();
    let name = c.func_name.as_str();
    match (target, name, c.args.as_slice()) {
        (None, op::LOGICAL_AND, [l, r]) => logic(l, r, Node::And),
        (None, op::LOGICAL_OR, [l, r]) => logic(l, r, Node::Or),
        (None, op::LOGICAL_NOT, [x]) => Ok((Node::Not(expect(x, Type::Bool, "!")?), Type::Bool)),
        (None, op::CONDITIONAL, [c, a, b]) => {
            let c = expect(c, Type::Bool, "?: condition")?;
            let (a, ta) = boxed(a)?;
            let (b, tb) = boxed(b)?;
            if ta != tb {
                return Err(format!("?: branches of different types ({ta}, {tb})"));
            }
            Ok((Node::Cond(c, a, b), ta))
        }
        (None, op::EQUALS, [l, r]) => compare(CmpOp::Eq, l, r),
        (None, op::NOT_EQUALS, [l, r]) => compare(CmpOp::Ne, l, r),
        (None, op::LESS, [l, r]) => compare(CmpOp::Lt, l, r),
        (None, op::LESS_EQUALS, [l, r]) => compare(CmpOp::Le, l, r),
        (None, op::GREATER, [l, r]) => compare(CmpOp::Gt, l, r),
        (None, op::GREATER_EQUALS, [l, r]) => compare(CmpOp::Ge, l, r),
        (None, op::ADD, [l, r]) => arith(ArithOp::Add, l, r),
        (None, op::SUBSTRACT, [l, r]) => arith(ArithOp::Sub, l, r),
        (None, op::MULTIPLY, [l, r]) => arith(ArithOp::Mul, l, r),
        (None, op::DIVIDE, [l, r]) => arith(ArithOp::Div, l, r),
        (None, op::MODULO, [l, r]) => arith(ArithOp::Rem, l, r),
        (None, op::NEGATE, [x]) => {
            let (n, t) = boxed(x)?;
            match t {
                Type::Int | Type::Double => Ok((Node::Neg(n), t)),
                _ => Err(format!("unary - of a {t}")),
            }
        }
        (None, op::INDEX, [map, key]) => index(map, key),
        (None, op::IN, [x, list]) => membership(x, list),
        (Some(x), "matches", [p]) | (None, "matches", [x, p]) => {
            let subject = expect(x, Type::String, "matches()")?;
            let Expr::Literal(LiteralValue::String(source)) = &p.expr else {
                return Err("matches() needs a literal pattern".into());
            };
            let pattern = Pattern::new(source).ok_or_else(|| {
                format!(
                    "matches('{}'): pattern outside the RE2 subset regex-lite reads identically \
                     (no escapes, flags other than (?i), class set operations, counts over 1000)",
                    &**source
                )
            })?;
            Ok((Node::Matches(subject, pattern), Type::Bool))
        }
        (Some(x), "startsWith", [a]) => string_fn(StrFn::StartsWith, x, a),
        (Some(x), "endsWith", [a]) => string_fn(StrFn::EndsWith, x, a),
        (Some(x), "contains", [a]) => string_fn(StrFn::Contains, x, a),
        (None, "string", [x]) => convert(Conv::String, x),
        (None, "int", [x]) => convert(Conv::Int, x),
        (None, "uint", [x]) => convert(Conv::Uint, x),
        (None, "size", [x]) | (Some(x), "size", []) => {
            let (n, t) = boxed(x)?;
            match t {
                Type::String | Type::Bytes => Ok((Node::Size(n), Type::Int)),
                _ => Err(format!("size() of a {t}")),
            }
        }
        (Some(x), "getHours", []) => duration_part(DurationPart::Hours, x),
        (Some(x), "getMinutes", []) => duration_part(DurationPart::Minutes, x),
        (Some(x), "getSeconds", []) => duration_part(DurationPart::Seconds, x),
        (Some(x), "getMilliseconds", []) => duration_part(DurationPart::Milliseconds, x),
        (_, op::HAS, _) => Err("has() needs a field selection".into()),
        _ => Err(format!(
            "function or operator `{name}` ({} argument(s){}) is not supported",
            c.args.len(),
            if target.is_some() {
                ", as a method"
            } else {
                ""
            }
        )),
    }
}

/// `d.getSeconds()` and the like: on a duration only (the timestamp
/// accessors, which depend on a time zone, are not supported).
fn duration_part(part: DurationPart, x: &IdedExpr) -> Lowered {
    let x = expect(
        x,
        Type::Duration,
        "getHours(), getMinutes(), getSeconds() and getMilliseconds()",
    )?;
    Ok((Node::Duration(part, x), Type::Int))
}

fn logic(l: &IdedExpr, r: &IdedExpr, make: fn(Box<Node>, Box<Node>) -> Node) -> Lowered {
    let l = expect(l, Type::Bool, "&& and ||")?;
    let r = expect(r, Type::Bool, "&& and ||")?;
    Ok((make(l, r), Type::Bool))
}

fn compare(cmp: CmpOp, l: &IdedExpr, r: &IdedExpr) -> Lowered {
    let (l, tl) = boxed(l)?;
    let (r, tr) = boxed(r)?;
    if tl != tr {
        return Err(format!(
            "comparison of a {tl} with a {tr} (mixed-type comparisons depend on Envoy's CEL options)"
        ));
    }
    Ok((Node::Cmp(cmp, l, r), Type::Bool))
}

fn arith(a: ArithOp, l: &IdedExpr, r: &IdedExpr) -> Lowered {
    let (l, tl) = boxed(l)?;
    let (r, tr) = boxed(r)?;
    let ok = tl == tr
        && match a {
            ArithOp::Add => matches!(
                tl,
                Type::Int | Type::Uint | Type::Double | Type::String | Type::Bytes
            ),
            ArithOp::Sub | ArithOp::Mul | ArithOp::Div => {
                matches!(tl, Type::Int | Type::Uint | Type::Double)
            }
            ArithOp::Rem => matches!(tl, Type::Int | Type::Uint),
        };
    if !ok {
        return Err(format!("arithmetic {a:?} of a {tl} and a {tr}"));
    }
    if matches!(tl, Type::String | Type::Bytes) {
        return Ok((Node::Concat(l, r), tl));
    }
    Ok((Node::Arith(a, l, r), tl))
}

/// `headers['name']`, `filter_state['wasm.name']`.
fn index(map: &IdedExpr, key: &IdedExpr) -> Lowered {
    let Expr::Literal(LiteralValue::String(key)) = &key.expr else {
        return Err("indexing needs a literal string key".into());
    };
    let key: &str = key;
    if let Some(mut p) = header_map(map) {
        p.push(key.to_string());
        return Ok((Node::Attr(read(p, Type::String)), Type::String));
    }
    if path(map).as_deref() == Some(&["filter_state"][..]) {
        return match key.strip_prefix("wasm.") {
            Some(name)
                if !name.is_empty()
                    && !name.contains('.')
                    && catalog::is_filter_state_name(name) =>
            {
                Ok((
                    Node::Attr(read(vec![name.to_string()], Type::Bytes)),
                    Type::Bytes,
                ))
            }
            _ => Err(format!(
                "filter_state['{key}']: only keys `wasm.<name>` (no dots, not an attribute root) are readable"
            )),
        };
    }
    Err("indexing is supported on header maps and filter_state only".into())
}

/// `x in [a, b]` (same types) and `'name' in request.headers`.
fn membership(x: &IdedExpr, list: &IdedExpr) -> Lowered {
    if let Some(mut p) = header_map(list) {
        let Expr::Literal(LiteralValue::String(key)) = &x.expr else {
            return Err("`in` a header map needs a literal string key".into());
        };
        p.push(key.to_string());
        return Ok((Node::Has(read(p, Type::String)), Type::Bool));
    }
    let Expr::List(items) = &list.expr else {
        return Err("`in` is supported on list literals and header maps only".into());
    };
    if !items.optional_indices.is_empty() {
        return Err("optional list elements are not supported".into());
    }
    let (x, tx) = boxed(x)?;
    let items = items
        .elements
        .iter()
        .map(|e| {
            let (n, t) = lower(e)?;
            if t == tx {
                Ok(n)
            } else {
                Err(format!("`in` a list with a {t} element for a {tx} value"))
            }
        })
        .collect::<Result<Vec<_>, Reason>>()?;
    Ok((Node::In(x, items), Type::Bool))
}

fn string_fn(f: StrFn, x: &IdedExpr, a: &IdedExpr) -> Lowered {
    let what = match f {
        StrFn::StartsWith => "startsWith()",
        StrFn::EndsWith => "endsWith()",
        StrFn::Contains => "contains()",
    };
    let x = expect(x, Type::String, what)?;
    let a = expect(a, Type::String, what)?;
    Ok((Node::Str(f, x, a), Type::Bool))
}

fn convert(conv: Conv, x: &IdedExpr) -> Lowered {
    let (n, t) = boxed(x)?;
    let (ok, out) = match conv {
        Conv::String => (
            matches!(
                t,
                Type::Int | Type::Uint | Type::String | Type::Bytes | Type::Bool
            ),
            Type::String,
        ),
        Conv::Int => (matches!(t, Type::Int | Type::Uint), Type::Int),
        Conv::Uint => (matches!(t, Type::Int | Type::Uint), Type::Uint),
    };
    if !ok {
        return Err(format!(
            "{}() of a {t} is not supported (its formatting or parsing edge cases are not verified)",
            out.name()
        ));
    }
    Ok((Node::Convert(conv, n), out))
}
