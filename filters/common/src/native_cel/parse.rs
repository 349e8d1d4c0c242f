//! A parser for the subset of CEL that native evaluation supports.
//!
//! It follows CEL's grammar (`CEL.g4`, the one Envoy's and cel-go's parsers
//! are generated from) for the constructs it accepts and gives `None` for
//! anything else: lists, maps, messages, doubles, uints, `null`, `in`,
//! `-` `*` `/` `%` between operands, macros (`has`, `all`, `map`, …), raw or
//! triple-quoted strings, escapes other than the single-character ones,
//! comments. `None` is always safe: the expression then stays with Envoy.
//!
//! Why not a CEL parser crate: the one that parses the full grammar
//! (`cel-parser`, on an ANTLR runtime) added ≈ 440 KB to each module, ≈ 15 MiB
//! of RSS and ≈ 0.8 s of start-up per filter, for a subset this small. That
//! crate stays as the test oracle: for every input this parser accepts, it
//! must give the same tree (`tests.rs`, and the `native_cel_parser` fuzz
//! target).
//!
//! Never panics, on any input; recursion is bounded by [`MAX_DEPTH`].

use super::cmp::Cmp;
use crate::cel::RESERVED_WORDS;

/// A parsed expression of the subset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ast {
    /// `true`, `false`
    Bool(bool),
    /// An int literal (a leading `-` is part of it, as in CEL's grammar).
    Int(i64),
    /// A string literal, unescaped.
    Str(String),
    /// A bytes literal (`b'…'`), unescaped.
    Bytes(Vec<u8>),
    /// A name.
    Ident(String),
    /// `operand.field`
    Select(Box<Ast>, String),
    /// `operand[index]`
    Index(Box<Ast>, Box<Ast>),
    /// `name(args)` or `target.name(args)`.
    Call(Option<Box<Ast>>, String, Vec<Ast>),
    /// `!x`
    Not(Box<Ast>),
    /// A binary operator.
    Binary(Op, Box<Ast>, Box<Ast>),
    /// `c ? a : b`
    Cond(Box<Ast>, Box<Ast>, Box<Ast>),
}

/// The binary operators of the subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `&&`
    And,
    /// `||`
    Or,
    /// `+`
    Add,
    /// `==` `!=` `<` `<=` `>` `>=`
    Cmp(Cmp),
}

/// Deepest nesting of sub-expressions parsed (the recursion bound).
pub const MAX_DEPTH: usize = 32;

/// CEL's macros (parsed by CEL into other shapes; left to Envoy here).
const MACROS: [&str; 6] = ["has", "all", "exists", "exists_one", "map", "filter"];

/// Parses `source`, or `None` when it is not in the subset.
pub fn parse(source: &str) -> Option<Ast> {
    let tokens = lex(source)?;
    let mut p = Parser {
        tokens: &tokens,
        at: 0,
        depth: 0,
    };
    let ast = p.expr()?;
    (p.at == tokens.len()).then_some(ast)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// An int literal's value, not yet negated or range-checked; `true` if
    /// written in hex.
    Int(u64, bool),
    Str(String),
    Bytes(Vec<u8>),
    /// `true`, `false`
    Bool(bool),
    /// Punctuation and operators.
    P(&'static str),
}

const PUNCT: [&str; 18] = [
    "&&", "||", "==", "!=", "<=", ">=", "<", ">", "!", "+", "-", "?", ":", "(", ")", ".", ",", "[",
];

fn lex(source: &str) -> Option<Vec<Tok>> {
    let b = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0c => i += 1,
            b']' => {
                out.push(Tok::P("]"));
                i += 1;
            }
            b'0'..=b'9' => {
                let (n, next) = int(b, i)?;
                out.push(Tok::Int(n, b.get(i + 1) == Some(&b'x')));
                i = next;
            }
            b'\'' | b'"' => {
                let (raw, next) = quoted(b, i)?;
                out.push(Tok::Str(String::from_utf8(raw).ok()?));
                i = next;
            }
            b'b' | b'B' if matches!(b.get(i + 1), Some(b'\'' | b'"')) => {
                let (raw, next) = quoted(b, i + 1)?;
                // Escapes in bytes literals: left to Envoy (the oracle,
                // `cel-parser` 0.10.1, refuses even `\n` there).
                if b.get(i..next)?.contains(&b'\\') {
                    return None;
                }
                out.push(Tok::Bytes(raw));
                i = next;
            }
            c if c == b'_' || c.is_ascii_alphabetic() => {
                let end = run_end(b, i, |c| c == b'_' || c.is_ascii_alphanumeric());
                let word = source.get(i..end)?;
                if matches!(b.get(end), Some(b'\'' | b'"')) {
                    return None; // a raw or other prefixed string literal
                }
                out.push(match word {
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    w if RESERVED_WORDS.contains(&w) => return None,
                    w => Tok::Ident(w.to_string()),
                });
                i = end;
            }
            _ => {
                let rest = b.get(i..)?;
                let p = PUNCT.iter().find(|p| rest.starts_with(p.as_bytes()))?;
                // `&` and `|` alone, `=`, `*`, `/` (comments too), `%`, `{`
                // are not in PUNCT: not in the subset.
                out.push(Tok::P(p));
                i += p.len();
            }
        }
    }
    Some(out)
}

/// Where the run of bytes matching `keep` that starts at `start` ends.
fn run_end(b: &[u8], start: usize, keep: impl Fn(u8) -> bool) -> usize {
    b.get(start..)
        .and_then(|rest| rest.iter().position(|c| !keep(*c)))
        .map_or(b.len(), |n| start + n)
}

/// An unsigned int literal at `i`: decimal or `0x` hex; `None` for doubles,
/// uints (`1u`) and out-of-range values.
fn int(b: &[u8], i: usize) -> Option<(u64, usize)> {
    // CEL's hex prefix is `0x` only (`0X` is not an int literal).
    let hex = b.get(i) == Some(&b'0') && b.get(i + 1) == Some(&b'x');
    let start = if hex { i + 2 } else { i };
    let radix = if hex { 16 } else { 10 };
    let end = run_end(b, start, |c| {
        if hex {
            c.is_ascii_hexdigit()
        } else {
            c.is_ascii_digit()
        }
    });
    if end == start {
        return None;
    }
    // A following `.`, exponent, `u` or letter makes it something else.
    if b.get(end)
        .is_some_and(|c| *c == b'.' || *c == b'_' || c.is_ascii_alphanumeric())
    {
        return None;
    }
    let digits = std::str::from_utf8(b.get(start..end)?).ok()?;
    let n = u64::from_str_radix(digits, radix).ok()?;
    Some((n, end))
}

/// A single- or double-quoted literal at `i` (the quote), unescaped; `None`
/// for triple quotes, line breaks and escapes other than `\\ \` \? \a \b \f
/// \n \r \t \v` and the enclosing quote's.
fn quoted(b: &[u8], i: usize) -> Option<(Vec<u8>, usize)> {
    let q = *b.get(i)?;
    if b.get(i + 1) == Some(&q) && b.get(i + 2) == Some(&q) {
        return None;
    }
    let mut out = Vec::new();
    let mut j = i + 1;
    loop {
        let c = *b.get(j)?;
        j += 1;
        match c {
            c if c == q => return Some((out, j)),
            b'\n' | b'\r' => return None,
            b'\\' => {
                let e = *b.get(j)?;
                j += 1;
                out.push(match e {
                    // The other quote escaped: left to Envoy (the oracle,
                    // `cel-parser` 0.10.1, keeps its backslash).
                    b'\'' | b'"' if e != q => return None,
                    b'\\' | b'\'' | b'"' | b'`' | b'?' => e,
                    b'a' => 0x07,
                    b'b' => 0x08,
                    b'f' => 0x0c,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'v' => 0x0b,
                    _ => return None,
                });
            }
            c => out.push(c),
        }
    }
}

struct Parser<'t> {
    tokens: &'t [Tok],
    at: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.at)
    }

    fn eat(&mut self, p: &str) -> bool {
        let hit = matches!(self.peek(), Some(Tok::P(q)) if *q == p);
        if hit {
            self.at += 1;
        }
        hit
    }

    fn expect(&mut self, p: &str) -> Option<()> {
        self.eat(p).then_some(())
    }

    /// `expr: or ('?' or ':' expr)?`
    fn expr(&mut self) -> Option<Ast> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        let cond = self.or()?;
        let out = if self.eat("?") {
            let a = self.or()?;
            self.expect(":")?;
            let b = self.expr()?;
            Ast::Cond(Box::new(cond), Box::new(a), Box::new(b))
        } else {
            cond
        };
        self.depth -= 1;
        Some(out)
    }

    fn or(&mut self) -> Option<Ast> {
        let mut acc = self.and()?;
        while self.eat("||") {
            acc = Ast::Binary(Op::Or, Box::new(acc), Box::new(self.and()?));
        }
        Some(acc)
    }

    fn and(&mut self) -> Option<Ast> {
        let mut acc = self.relation()?;
        while self.eat("&&") {
            acc = Ast::Binary(Op::And, Box::new(acc), Box::new(self.relation()?));
        }
        Some(acc)
    }

    fn relation(&mut self) -> Option<Ast> {
        let mut acc = self.calc()?;
        loop {
            let op = match self.peek() {
                Some(Tok::P("==")) => Op::Cmp(Cmp::Eq),
                Some(Tok::P("!=")) => Op::Cmp(Cmp::Ne),
                Some(Tok::P("<")) => Op::Cmp(Cmp::Lt),
                Some(Tok::P("<=")) => Op::Cmp(Cmp::Le),
                Some(Tok::P(">")) => Op::Cmp(Cmp::Gt),
                Some(Tok::P(">=")) => Op::Cmp(Cmp::Ge),
                _ => return Some(acc),
            };
            self.at += 1;
            acc = Ast::Binary(op, Box::new(acc), Box::new(self.calc()?));
        }
    }

    /// Only `+` of CEL's arithmetic; a binary `-` is not in the subset.
    fn calc(&mut self) -> Option<Ast> {
        let mut acc = self.unary()?;
        while self.eat("+") {
            acc = Ast::Binary(Op::Add, Box::new(acc), Box::new(self.unary()?));
        }
        if self.peek() == Some(&Tok::P("-")) {
            return None;
        }
        Some(acc)
    }

    /// `'!'? member`; a `-` only as the sign of an int literal. Two or more
    /// `!` are left to Envoy: its parser drops pairs of them, while
    /// `cel-parser` 0.10.1 (the test oracle) reads `!!a` as `!a`.
    fn unary(&mut self) -> Option<Ast> {
        if self.eat("!") {
            if self.peek() == Some(&Tok::P("!")) {
                return None;
            }
            return Some(Ast::Not(Box::new(self.member()?)));
        }
        self.member()
    }

    fn member(&mut self) -> Option<Ast> {
        let mut acc = self.primary()?;
        loop {
            if self.eat(".") {
                let Some(Tok::Ident(field)) = self.peek().cloned() else {
                    return None;
                };
                self.at += 1;
                if self.eat("(") {
                    if MACROS.contains(&field.as_str()) {
                        return None;
                    }
                    let args = self.args()?;
                    acc = Ast::Call(Some(Box::new(acc)), field, args);
                } else {
                    acc = Ast::Select(Box::new(acc), field);
                }
            } else if self.eat("[") {
                let index = self.expr()?;
                self.expect("]")?;
                acc = Ast::Index(Box::new(acc), Box::new(index));
            } else {
                return Some(acc);
            }
        }
    }

    fn primary(&mut self) -> Option<Ast> {
        let tok = self.peek()?.clone();
        self.at += 1;
        Some(match tok {
            Tok::Bool(b) => Ast::Bool(b),
            // A negative hex literal is left to Envoy (the oracle refuses it).
            Tok::P("-") => match self.peek() {
                Some(&Tok::Int(n, false)) => {
                    self.at += 1;
                    Ast::Int(0i64.checked_sub_unsigned(n)?)
                }
                _ => return None,
            },
            Tok::Int(n, _) => Ast::Int(i64::try_from(n).ok()?),
            Tok::Str(s) => Ast::Str(s),
            Tok::Bytes(b) => Ast::Bytes(b),
            Tok::Ident(name) => {
                if self.eat("(") {
                    if MACROS.contains(&name.as_str()) {
                        return None;
                    }
                    Ast::Call(None, name, self.args()?)
                } else {
                    Ast::Ident(name)
                }
            }
            Tok::P("(") => {
                let inner = self.expr()?;
                self.expect(")")?;
                inner
            }
            _ => return None,
        })
    }

    /// Arguments after `(`, through the closing `)`.
    fn args(&mut self) -> Option<Vec<Ast>> {
        let mut args = Vec::new();
        if self.eat(")") {
            return Some(args);
        }
        loop {
            args.push(self.expr()?);
            if self.eat(")") {
                return Some(args);
            }
            self.expect(",")?;
        }
    }
}
