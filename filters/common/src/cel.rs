//! CEL expressions evaluated by Envoy (`expr_create` / `expr_evaluate` /
//! `expr_delete`) and decoders for their serialized results.
//!
//! Envoy serializes a result without its type: strings and bytes as raw
//! bytes, integers as 8 bytes little-endian, doubles as 8-byte IEEE-754, bools
//! as one byte, timestamps and durations as int64 nanoseconds, maps and lists
//! as proxy-wasm pairs. The caller says which type it expects.
//!
//! Filters compile with [`compile`] and evaluate with [`evaluate`]: an
//! expression in the subset of [`crate::native_cel`] is then evaluated in the
//! module (same result, no `expr_evaluate`), everything else by Envoy. The
//! result is a [`CelValue`]: typed when the module computed it, Envoy's
//! bytes otherwise, read the same way.

pub use crate::cel_value::CelValue;
use crate::host::{Host, HostError, HostExpression};
#[cfg(feature = "native-cel")]
use crate::native_cel::{self, Native, Outcome};
use std::borrow::Cow;

/// A compiled expression: the host's compiled form and, when it is in the
/// native subset, the form the module evaluates itself.
pub struct Expression {
    compiled: HostExpression,
    #[cfg(feature = "native-cel")]
    native: Option<Native>,
}

impl Expression {
    /// Whether the module evaluates this expression itself (tests).
    #[cfg(all(test, feature = "native-cel"))]
    pub(crate) fn is_native(&self) -> bool {
        self.native.is_some()
    }

    /// Envoy's token for this expression.
    pub fn token(&self) -> u32 {
        self.compiled.token()
    }

    /// The CEL source text.
    pub fn source(&self) -> &str {
        self.compiled.source()
    }
}

impl std::fmt::Debug for Expression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Expression({:?})", self.source())
    }
}

/// Compiles `source` with Envoy's CEL (its errors are the configuration's)
/// and, when the host allows it and the expression is in the native subset,
/// also to the form the module evaluates itself.
pub fn compile<H: Host + ?Sized>(host: &H, source: &str) -> Result<Expression, HostError> {
    let compiled = host.compile(source)?;
    Ok(Expression {
        #[cfg(feature = "native-cel")]
        native: host
            .native_cel()
            .then(|| native_cel::compile(source))
            .flatten(),
        compiled,
    })
}

/// Evaluates `expr` for the current stream: in the module when it has a
/// native form (reads go through `host`, so a caching host shares them;
/// the value is typed, literals borrowed from `expr`), else, or when the
/// native form defers this request, with the host (Envoy's `expr_evaluate`
/// gives serialized bytes). A CEL runtime error is `InternalFailure`, as
/// from Envoy.
pub fn evaluate<'e, H: Host + ?Sized>(
    host: &H,
    expr: &'e Expression,
) -> Result<CelValue<'e>, HostError> {
    #[cfg(feature = "native-cel")]
    if let Some(native) = &expr.native {
        match native.evaluate(host) {
            Outcome::Value(v) => return Ok(v),
            Outcome::Error => return Err(HostError::InternalFailure),
            Outcome::Fallback => {}
        }
    }
    host.evaluate(&expr.compiled)
}

/// CEL's literal words and reserved words: never an identifier or a field
/// name (CEL spec, "Syntax").
pub const RESERVED_WORDS: [&str; 21] = [
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// A result that did not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// What was expected, e.g. `bool`.
    pub expected: &'static str,
    /// Length of what came back.
    pub len: usize,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "result is not a {} ({} bytes came back)",
            self.expected, self.len
        )
    }
}

/// A CEL bool: exactly one byte. Anything else (including a one-character
/// string) is an error, as in Istio's attributegen.
pub fn as_bool(result: &[u8]) -> Result<bool, DecodeError> {
    match result {
        [b] => Ok(*b != 0),
        _ => Err(DecodeError {
            expected: "bool",
            len: result.len(),
        }),
    }
}

/// A CEL int, uint, timestamp or duration: exactly 8 bytes little-endian.
pub fn as_int(result: &[u8]) -> Result<i64, DecodeError> {
    <[u8; 8]>::try_from(result)
        .map(i64::from_le_bytes)
        .map_err(|_| DecodeError {
            expected: "64-bit integer",
            len: result.len(),
        })
}

/// A CEL double: exactly 8 bytes IEEE-754 little-endian.
pub fn as_double(result: &[u8]) -> Result<f64, DecodeError> {
    <[u8; 8]>::try_from(result)
        .map(f64::from_le_bytes)
        .map_err(|_| DecodeError {
            expected: "double",
            len: result.len(),
        })
}

/// A CEL string or bytes value as text; invalid UTF-8 is replaced.
pub fn as_text(result: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(result)
}

/// A decoded map entry (key, value), borrowed from the serialized result.
pub type Pair<'a> = (&'a [u8], &'a [u8]);

/// Decodes the proxy-wasm pairs encoding of a map or list:
/// `u32 n`, n × (`u32 key_len`, `u32 value_len`), then each `key\0value\0`.
/// Lists come back as keys with empty values. Never panics on bad input.
pub fn as_pairs(result: &[u8]) -> Result<Vec<Pair<'_>>, DecodeError> {
    let bad = || DecodeError {
        expected: "map or list",
        len: result.len(),
    };
    let read_u32 = |at: usize| -> Option<usize> {
        let bytes = result.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes(bytes.try_into().ok()?) as usize)
    };
    let n = read_u32(0).ok_or_else(bad)?;
    // Each entry needs at least 10 bytes; reject counts that cannot fit.
    if n > result.len() / 10 + 1 {
        return Err(bad());
    }
    let mut sizes = Vec::with_capacity(n);
    for i in 0..n {
        let at = 4 + i * 8;
        sizes.push((
            read_u32(at).ok_or_else(bad)?,
            read_u32(at + 4).ok_or_else(bad)?,
        ));
    }
    let mut pos = 4 + n * 8;
    let mut pairs = Vec::with_capacity(n);
    let mut take = |len: usize| -> Option<&[u8]> {
        let end = pos.checked_add(len)?;
        let value = result.get(pos..end)?;
        pos = end.checked_add(1)?; // skip the NUL terminator
        Some(value)
    };
    for (klen, vlen) in sizes {
        let key = take(klen).ok_or_else(bad)?;
        let value = take(vlen).ok_or_else(bad)?;
        pairs.push((key, value));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bool_is_exactly_one_byte() {
        assert_eq!(as_bool(&[1]), Ok(true));
        assert_eq!(as_bool(&[0]), Ok(false));
        assert!(as_bool(b"").is_err());
        assert!(as_bool(b"/status/207").is_err());
    }

    #[test]
    fn ints_and_doubles_are_eight_bytes_le() {
        assert_eq!(as_int(&[0x0e, 0x90, 0, 0, 0, 0, 0, 0]), Ok(36878));
        assert_eq!(as_double(&[0, 0, 0, 0, 0, 0, 0xf8, 0x3f]), Ok(1.5));
        assert!(as_int(&[1, 2, 3]).is_err());
    }

    #[test]
    fn text_replaces_invalid_utf8() {
        assert_eq!(as_text(b"op-1"), "op-1");
        assert_eq!(as_text(&[0x66, 0xff]), "f\u{fffd}");
    }

    #[test]
    fn pairs_decode_maps_and_reject_garbage() {
        let map = [
            2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, b'a', 0, b'b', 0, b'c', 0,
            b'd', 0,
        ];
        let pairs = as_pairs(&map).unwrap();
        assert_eq!(pairs, vec![(&b"a"[..], &b"b"[..]), (&b"c"[..], &b"d"[..])]);
        assert!(as_pairs(&[0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(as_pairs(&map[..20]).is_err());
        assert!(as_pairs(&[]).is_err());
    }
}
