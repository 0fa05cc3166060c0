//! A dynamic value that can hold binary: what a Socket.IO packet carries once it leaves the
//! text wire format, e.g. between cluster nodes (Node's adapters publish the packet structure
//! with binaries as msgpack `bin`) or with the msgpack parser.
//!
//! [`Value`] is JSON's data model plus [`Value::Binary`]. Conversions are lossless:
//! - Rust values: [`to_value`], [`to_args`] (a tuple is several arguments, as for emits) and
//!   [`from_value`], with `bytes::Bytes` (and any serde byte string) as [`Value::Binary`];
//! - msgpack: [`msgpack::encode`] and [`msgpack::decode`], byte-compatible with `notepack.io`
//!   (integers in their smallest encoding, integral numbers as integers, `bin` for binary;
//!   notepack 2.2's `undefined` and `Date` extensions are understood);
//! - JSON: `Value` implements `Serialize` and `Deserialize`, so `serde_json` reads and writes it
//!   (binary has no JSON form; it is written as Node writes a `Buffer`,
//!   `{"type":"Buffer","data":[...]}`);
//! - the Socket.IO text format: [`crate::socket::ArgList`] emits values as arguments (binary
//!   becomes attachments) and [`crate::socket::Args::to_values`] reads received arguments.
//!
//! Maps keep their key order, so a value read and written again gives the same bytes.
//!
//! ```
//! use bytes::Bytes;
//! use ferrio_proto::value::{self, Value};
//!
//! let v = value::to_value(&("chat", Bytes::from_static(&[1, 2]))).unwrap();
//! assert_eq!(v, Value::Array(vec!["chat".into(), Value::Binary(Bytes::from_static(&[1, 2]))]));
//! let packed = value::msgpack::encode(&v);
//! assert_eq!(packed, [0x92, 0xa4, b'c', b'h', b'a', b't', 0xc4, 2, 1, 2]);
//! assert_eq!(value::msgpack::decode(&Bytes::from(packed)).unwrap(), v);
//! ```

pub mod date;
mod de;
pub mod msgpack;
mod ser;

use std::fmt;

use bytes::Bytes;

pub use de::from_value;
pub use ser::{to_args, to_value};

/// A JSON-like value that can also hold binary.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    /// `null` (JavaScript `null`, and `undefined` where it has to stand somewhere).
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer that fits in an `i64`.
    Int(i64),
    /// An integer above `i64::MAX`.
    UInt(u64),
    /// A floating-point number.
    Float(f64),
    /// A string.
    String(String),
    /// A byte string (a JavaScript `Buffer` or `ArrayBuffer`).
    Binary(Bytes),
    /// An array.
    Array(Vec<Value>),
    /// An object, with its keys in order.
    Map(Vec<(String, Value)>),
}

/// Why a value could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub(crate) String);

impl serde::ser::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ValueError(msg.to_string())
    }
}

impl serde::de::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ValueError(msg.to_string())
    }
}

impl Value {
    /// An object from key-value pairs, in order.
    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The value of `key`, if this is an object that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number as an `i64`, if it is an integer (or a float with an integral value) that
    /// fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            Value::UInt(u) => i64::try_from(u).ok(),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 => {
                Some(f as i64)
            }
            _ => None,
        }
    }

    /// The number as a `u64`, if it is a non-negative integer that fits.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::UInt(u) => Some(u),
            _ => self.as_i64().and_then(|i| u64::try_from(i).ok()),
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The bytes, if this is binary.
    pub fn as_binary(&self) -> Option<&Bytes> {
        match self {
            Value::Binary(b) => Some(b),
            _ => None,
        }
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Whether binary appears anywhere in this value (Node's `hasBinary`).
    pub fn has_binary(&self) -> bool {
        match self {
            Value::Binary(_) => true,
            Value::Array(items) => items.iter().any(Value::has_binary),
            Value::Map(entries) => entries.iter().any(|(_, v)| v.has_binary()),
            _ => false,
        }
    }

    /// The value as JSON text (binary as Node writes a `Buffer`).
    pub fn to_json(&self) -> Vec<u8> {
        // Writing into a Vec cannot fail, and every key is a string.
        serde_json::to_vec(&ser::AsJson(self)).unwrap_or_default()
    }

    /// Reads JSON text.
    pub fn from_json(json: &[u8]) -> Result<Value, serde_json::Error> {
        serde_json::from_slice(json)
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Value {
                Value::Int(i64::from(v))
            }
        }
    )*};
}

from_int!(i8, i16, i32, i64, u8, u16, u32);

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::UInt(v),
        }
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Value {
        Value::from(v as u64)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::String(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::String(v)
    }
}

impl From<Bytes> for Value {
    fn from(v: Bytes) -> Value {
        Value::Binary(v)
    }
}

impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Value {
        Value::Array(v)
    }
}

impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Value::UInt(u)
                } else {
                    Value::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(items) => {
                Value::Array(items.into_iter().map(Value::from).collect())
            }
            serde_json::Value::Object(map) => {
                Value::Map(map.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
            }
        }
    }
}

impl From<&Value> for serde_json::Value {
    /// Binary becomes Node's `{"type":"Buffer","data":[...]}`.
    fn from(v: &Value) -> serde_json::Value {
        match v {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::UInt(u) => serde_json::Value::from(*u),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Binary(b) => serde_json::json!({"type": "Buffer", "data": b.as_ref()}),
            Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(serde_json::Value::from).collect())
            }
            Value::Map(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::from(v)))
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests;
