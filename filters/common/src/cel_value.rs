//! The value of a CEL evaluation: typed when the module computed it (native
//! CEL, the dynamic module's evaluator), Envoy's serialized bytes when
//! `expr_evaluate` did (Envoy's serialization carries no type).
//!
//! Readers ask for the type they expect ([`CelValue::as_bool`] and the
//! others). A typed value answers exactly as its serialization would: a
//! typed value of another type decodes from the bytes Envoy would have
//! given, so results never depend on which evaluator ran.

use crate::cel::{self, DecodeError};
use std::borrow::Cow;

/// A CEL result.
#[derive(Debug, Clone, PartialEq)]
pub enum CelValue<'e> {
    /// bool
    Bool(bool),
    /// int (also timestamps and durations, in nanoseconds)
    Int(i64),
    /// uint
    Uint(u64),
    /// double
    Double(f64),
    /// A string or bytes value, or a result as Envoy serialized it.
    Bytes(Cow<'e, [u8]>),
}

impl CelValue<'_> {
    /// Runs `f` with Envoy's serialization of the value: bool one byte;
    /// int, uint, double 8 bytes little-endian; string and bytes raw.
    pub fn with_serialized<T>(&self, f: impl FnOnce(&[u8]) -> T) -> T {
        match self {
            CelValue::Bool(b) => f(&[u8::from(*b)]),
            CelValue::Int(n) => f(&n.to_le_bytes()),
            CelValue::Uint(n) => f(&n.to_le_bytes()),
            CelValue::Double(x) => f(&x.to_le_bytes()),
            CelValue::Bytes(b) => f(b),
        }
    }

    /// Envoy's serialization of the value.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            CelValue::Bytes(b) => b.into_owned(),
            other => other.with_serialized(<[u8]>::to_vec),
        }
    }

    /// A CEL bool ([`cel::as_bool`] of the serialization).
    pub fn as_bool(&self) -> Result<bool, DecodeError> {
        match self {
            CelValue::Bool(b) => Ok(*b),
            other => other.with_serialized(cel::as_bool),
        }
    }

    /// A CEL int, uint, timestamp or duration ([`cel::as_int`] of the
    /// serialization).
    pub fn as_int(&self) -> Result<i64, DecodeError> {
        match self {
            CelValue::Int(n) => Ok(*n),
            other => other.with_serialized(cel::as_int),
        }
    }

    /// A CEL double ([`cel::as_double`] of the serialization).
    pub fn as_double(&self) -> Result<f64, DecodeError> {
        match self {
            CelValue::Double(x) => Ok(*x),
            other => other.with_serialized(cel::as_double),
        }
    }

    /// A CEL string or bytes value as text, invalid UTF-8 replaced
    /// ([`cel::as_text`] of the serialization).
    pub fn as_text(&self) -> Cow<'_, str> {
        match self {
            CelValue::Bytes(b) => String::from_utf8_lossy(b),
            other => Cow::Owned(other.with_serialized(|b| cel::as_text(b).into_owned())),
        }
    }
}

impl From<Vec<u8>> for CelValue<'static> {
    /// A result as Envoy serialized it.
    fn from(bytes: Vec<u8>) -> Self {
        CelValue::Bytes(Cow::Owned(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed() -> Vec<CelValue<'static>> {
        vec![
            CelValue::Bool(true),
            CelValue::Bool(false),
            CelValue::Int(-2),
            CelValue::Int(36878),
            CelValue::Uint(7),
            CelValue::Double(1.5),
            CelValue::Bytes(Cow::Borrowed(b"GET")),
            CelValue::Bytes(Cow::Borrowed(b"x")),
            CelValue::Bytes(Cow::Borrowed(&[0xff, 0x66])),
        ]
    }

    #[test]
    fn typed_values_decode_as_their_serialization_does() {
        for v in typed() {
            let bytes = v.clone().into_bytes();
            let serialized = CelValue::from(bytes.clone());
            assert_eq!(v.as_bool(), serialized.as_bool(), "{v:?}");
            assert_eq!(v.as_int(), serialized.as_int(), "{v:?}");
            assert_eq!(
                v.as_double().map(f64::to_bits),
                serialized.as_double().map(f64::to_bits),
                "{v:?}"
            );
            assert_eq!(v.as_text(), serialized.as_text(), "{v:?}");
            assert_eq!(v.with_serialized(<[u8]>::to_vec), bytes, "{v:?}");
        }
    }

    #[test]
    fn the_expected_type_reads_directly() {
        assert_eq!(CelValue::Bool(true).as_bool(), Ok(true));
        assert_eq!(CelValue::Int(-2).as_int(), Ok(-2));
        assert_eq!(CelValue::Double(1.5).as_double(), Ok(1.5));
        assert_eq!(CelValue::Bytes(Cow::Borrowed(b"op")).as_text(), "op");
        assert!(CelValue::Int(1).as_bool().is_err());
        assert!(CelValue::Bool(true).as_int().is_err());
    }
}
