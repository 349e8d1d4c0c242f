//! CEL types and values of the evaluated subset, and Envoy's serialization
//! of a result (`serializeValue` in Envoy's Wasm `context.cc`).

use filter_common::cel::CelValue;
use std::borrow::Cow;

/// The CEL type of a (sub)expression, known at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// `bool`
    Bool,
    /// `int` (int64)
    Int,
    /// `uint` (uint64)
    Uint,
    /// `double`
    Double,
    /// `string`
    String,
    /// `bytes`
    Bytes,
    /// `google.protobuf.Timestamp`
    Timestamp,
    /// `google.protobuf.Duration`
    Duration,
    /// `map(string, string)`: request or response headers or trailers.
    HeaderMap,
}

impl Type {
    /// CEL's name of the type, for error messages.
    pub fn name(self) -> &'static str {
        match self {
            Type::Bool => "bool",
            Type::Int => "int",
            Type::Uint => "uint",
            Type::Double => "double",
            Type::String => "string",
            Type::Bytes => "bytes",
            Type::Timestamp => "timestamp",
            Type::Duration => "duration",
            Type::HeaderMap => "map(string, string)",
        }
    }
}

impl std::fmt::Display for Type {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A value of the evaluated subset. Strings are kept as bytes: Envoy's
/// strings need not be UTF-8 and CEL compares them bytewise.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// bool
    Bool(bool),
    /// int
    Int(i64),
    /// uint
    Uint(u64),
    /// double
    Double(f64),
    /// string
    Str(Vec<u8>),
    /// bytes
    Bytes(Vec<u8>),
    /// timestamp, nanoseconds since the Unix epoch
    Timestamp(i64),
    /// duration, nanoseconds
    Duration(i64),
}

impl From<Value> for CelValue<'static> {
    /// The typed value; timestamps and durations as their nanoseconds
    /// (Envoy serializes them so).
    fn from(v: Value) -> Self {
        match v {
            Value::Bool(b) => CelValue::Bool(b),
            Value::Int(n) | Value::Timestamp(n) | Value::Duration(n) => CelValue::Int(n),
            Value::Uint(n) => CelValue::Uint(n),
            Value::Double(x) => CelValue::Double(x),
            Value::Str(s) | Value::Bytes(s) => CelValue::Bytes(Cow::Owned(s)),
        }
    }
}

impl Value {
    /// Decodes a host property of type `ty`, serialized as Envoy serializes
    /// it (bool one byte; int, uint, timestamp and duration 8 bytes
    /// little-endian, nanoseconds for the last two; double 8 bytes IEEE-754
    /// little-endian; string and bytes raw: [`CelValue::into_bytes`]); `None`
    /// when the bytes do not have that type's shape.
    pub fn decode(ty: Type, raw: Vec<u8>) -> Option<Value> {
        let eight = |raw: &[u8]| <[u8; 8]>::try_from(raw).ok();
        Some(match ty {
            Type::Bool => match raw.as_slice() {
                [b] => Value::Bool(*b != 0),
                _ => return None,
            },
            Type::Int => Value::Int(i64::from_le_bytes(eight(&raw)?)),
            Type::Uint => Value::Uint(u64::from_le_bytes(eight(&raw)?)),
            Type::Double => Value::Double(f64::from_le_bytes(eight(&raw)?)),
            Type::Timestamp => Value::Timestamp(i64::from_le_bytes(eight(&raw)?)),
            Type::Duration => Value::Duration(i64::from_le_bytes(eight(&raw)?)),
            Type::String => Value::Str(raw),
            Type::Bytes => Value::Bytes(raw),
            Type::HeaderMap => return None,
        })
    }
}
