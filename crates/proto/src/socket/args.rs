//! Event and ack arguments: how a Rust value becomes a list of JSON arguments, and how received
//! arguments become Rust values.
//!
//! Sending: a tuple is several arguments (`("a", 1)` → `"a",1`), `()` is none, anything else
//! is one argument. Byte strings anywhere become binary attachments.
//!
//! Receiving: [`Args`] keeps each argument as raw JSON until a type is asked for.

use bytes::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde::ser::{self, Serialize, Serializer};
use serde_json::Value;

use super::binary::{Attachments, BinDe, serialize_with_placeholders};
use crate::value::Value as DynValue;

/// Received arguments of an event or an ack, still raw.
#[derive(Clone, Debug, PartialEq)]
pub enum Args {
    /// Arguments of a packet without attachments: each one's raw JSON text.
    Text(Vec<Bytes>),
    /// Arguments of a binary packet: parsed values (placeholders checked) and the
    /// attachments.
    Binary {
        /// The argument values, placeholders included.
        values: Vec<Value>,
        /// The attachments, in order.
        attachments: Vec<Bytes>,
    },
    /// Arguments of a packet in a binary format (the msgpack parser): values, binary in
    /// place.
    Values(Vec<DynValue>),
}

fn value_error(e: crate::value::ValueError) -> ArgsError {
    ArgsError(serde::de::Error::custom(e))
}

/// Why arguments could not become the requested type.
#[derive(Debug, thiserror::Error)]
#[error("arguments do not match the expected type: {0}")]
pub struct ArgsError(#[from] serde_json::Error);

impl Args {
    /// No arguments.
    pub fn empty() -> Self {
        Args::Text(Vec::new())
    }

    /// How many arguments.
    pub fn len(&self) -> usize {
        match self {
            Args::Text(v) => v.len(),
            Args::Binary { values, .. } => values.len(),
            Args::Values(values) => values.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps the first `len` arguments (attachments stay; unused ones are not sent again).
    pub fn truncate(&mut self, len: usize) {
        match self {
            Args::Text(raw) => raw.truncate(len),
            Args::Binary { values, .. } => values.truncate(len),
            Args::Values(values) => values.truncate(len),
        }
    }

    /// Whether argument `i` is a binary attachment itself (not an object containing one).
    pub fn is_binary(&self, i: usize) -> bool {
        match self {
            Args::Text(_) => false,
            Args::Binary { values, .. } => matches!(
                values.get(i),
                Some(Value::Object(m)) if super::binary::placeholder_index(m).is_some()
            ),
            Args::Values(values) => matches!(values.get(i), Some(DynValue::Binary(_))),
        }
    }

    /// Whether the arguments carry binary attachments (or, in a binary format, binary).
    pub fn has_binary(&self) -> bool {
        match self {
            Args::Text(_) => false,
            Args::Binary { attachments, .. } => !attachments.is_empty(),
            Args::Values(values) => values.iter().any(DynValue::has_binary),
        }
    }

    /// The arguments as one value: with exactly one argument, that argument; otherwise the
    /// list of all of them (so a tuple type reads several arguments).
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ArgsError> {
        match self {
            Args::Text(raw) if raw.len() == 1 => Ok(serde_json::from_slice(&raw[0])?),
            Args::Text(raw) => {
                let mut buf =
                    Vec::with_capacity(raw.iter().map(|r| r.len() + 1).sum::<usize>() + 2);
                buf.push(b'[');
                for (i, r) in raw.iter().enumerate() {
                    if i > 0 {
                        buf.push(b',');
                    }
                    buf.extend_from_slice(r);
                }
                buf.push(b']');
                Ok(serde_json::from_slice(&buf)?)
            }
            Args::Binary {
                values,
                attachments,
            } => {
                if values.len() == 1 {
                    Ok(T::deserialize(BinDe {
                        value: &values[0],
                        bins: attachments,
                    })?)
                } else {
                    let all = Value::Array(values.clone());
                    Ok(T::deserialize(BinDe {
                        value: &all,
                        bins: attachments,
                    })?)
                }
            }
            Args::Values(values) => match values.as_slice() {
                [one] => crate::value::from_value(one).map_err(value_error),
                many => {
                    crate::value::from_value(&DynValue::Array(many.to_vec())).map_err(value_error)
                }
            },
        }
    }

    /// Argument `i` as a value.
    pub fn deserialize_arg<T: DeserializeOwned>(&self, i: usize) -> Option<Result<T, ArgsError>> {
        match self {
            Args::Text(raw) => raw
                .get(i)
                .map(|r| serde_json::from_slice(r).map_err(ArgsError)),
            Args::Binary {
                values,
                attachments,
            } => values.get(i).map(|v| {
                T::deserialize(BinDe {
                    value: v,
                    bins: attachments,
                })
                .map_err(ArgsError)
            }),
            Args::Values(values) => values
                .get(i)
                .map(|v| crate::value::from_value(v).map_err(value_error)),
        }
    }

    /// The arguments as [`Value`]s, attachments in place of their placeholders (for a packet
    /// that leaves the text wire format: a cluster message, the msgpack parser).
    pub fn to_values(&self) -> Result<Vec<DynValue>, ArgsError> {
        match self {
            Args::Text(raw) => raw
                .iter()
                .map(|r| serde_json::from_slice(r).map_err(ArgsError))
                .collect(),
            Args::Binary {
                values,
                attachments,
            } => values
                .iter()
                .map(|v| {
                    DynValue::deserialize(BinDe {
                        value: v,
                        bins: attachments,
                    })
                    .map_err(ArgsError)
                })
                .collect(),
            Args::Values(values) => Ok(values.clone()),
        }
    }

    /// Removes and returns the last argument if it is a string (a connection-state-recovery
    /// offset appended by the server).
    pub fn pop_string(&mut self) -> Option<String> {
        match self {
            Args::Text(raw) => {
                let last = raw.last()?;
                let s: String = serde_json::from_slice(last).ok()?;
                raw.pop();
                Some(s)
            }
            Args::Binary { values, .. } => match values.last()? {
                Value::String(_) => match values.pop() {
                    Some(Value::String(s)) => Some(s),
                    _ => None,
                },
                _ => None,
            },
            Args::Values(values) => match values.last()? {
                DynValue::String(_) => match values.pop() {
                    Some(DynValue::String(s)) => Some(s),
                    _ => None,
                },
                _ => None,
            },
        }
    }
}

impl Serialize for Args {
    /// Serialises as a tuple: sent again, the arguments stay separate arguments, and
    /// attachments stay attachments.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use ser::SerializeTuple;
        let mut t = serializer.serialize_tuple(self.len())?;
        match self {
            Args::Text(raw) => {
                for r in raw {
                    let v: Box<serde_json::value::RawValue> =
                        serde_json::from_slice(r).map_err(ser::Error::custom)?;
                    t.serialize_element(&v)?;
                }
            }
            Args::Binary {
                values,
                attachments,
            } => {
                for v in values {
                    t.serialize_element(&Rebinarise {
                        value: v,
                        bins: attachments,
                    })?;
                }
            }
            Args::Values(values) => {
                for v in values {
                    t.serialize_element(v)?;
                }
            }
        }
        t.end()
    }
}

/// [`Value`](crate::value::Value)s sent as arguments, one each (binary becomes attachments):
/// `encode_event(nsp, None, "chat", &ArgList(&values))`.
#[derive(Debug, Clone, Copy)]
pub struct ArgList<'a>(pub &'a [DynValue]);

impl Serialize for ArgList<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use ser::SerializeTuple;
        let mut t = serializer.serialize_tuple(self.0.len())?;
        for v in self.0 {
            t.serialize_element(v)?;
        }
        t.end()
    }
}

/// A received value whose placeholders are written back as byte strings.
struct Rebinarise<'a> {
    value: &'a Value,
    bins: &'a [Bytes],
}

impl Serialize for Rebinarise<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use ser::{SerializeMap, SerializeSeq};
        match self.value {
            Value::Object(map) => {
                if let Some(n) = super::binary::placeholder_index(map)
                    && let Some(b) = usize::try_from(n).ok().and_then(|n| self.bins.get(n))
                {
                    return serializer.serialize_bytes(b);
                }
                let mut m = serializer.serialize_map(Some(map.len()))?;
                for (k, v) in map {
                    m.serialize_entry(
                        k,
                        &Rebinarise {
                            value: v,
                            bins: self.bins,
                        },
                    )?;
                }
                m.end()
            }
            Value::Array(items) => {
                let mut s = serializer.serialize_seq(Some(items.len()))?;
                for v in items {
                    s.serialize_element(&Rebinarise {
                        value: v,
                        bins: self.bins,
                    })?;
                }
                s.end()
            }
            other => other.serialize(serializer),
        }
    }
}

/// Writes the arguments of `value` (each preceded by a comma) into `buf`, collecting
/// attachments.
pub(crate) fn write_args<T: Serialize + ?Sized>(
    value: &T,
    buf: &mut Vec<u8>,
    bins: &Attachments,
) -> Result<(), serde_json::Error> {
    value.serialize(TopSer { buf, bins })
}

/// Serialises the top level: a tuple is several arguments, `()` none, anything else one.
struct TopSer<'a> {
    buf: &'a mut Vec<u8>,
    bins: &'a Attachments,
}

impl<'a> TopSer<'a> {
    fn open(self, prefix: &str, close: &'static str) -> Json<'a> {
        self.buf.push(b',');
        self.buf.extend_from_slice(prefix.as_bytes());
        Json {
            buf: self.buf,
            bins: self.bins,
            first: true,
            close,
        }
    }

    /// `{"variant":` then `inner`, closed by `close` (enum variants with fields).
    fn open_variant(
        self,
        variant: &str,
        inner: u8,
        close: &'static str,
    ) -> Result<Json<'a>, serde_json::Error> {
        let mut j = self.open("{", close);
        j.key(variant)?;
        j.buf.push(inner);
        j.first = true;
        Ok(j)
    }
}

impl<'a> Serializer for TopSer<'a> {
    type Ok = ();
    type Error = serde_json::Error;
    type SerializeSeq = Json<'a>;
    type SerializeTuple = Args2<'a>;
    type SerializeTupleStruct = Json<'a>;
    type SerializeTupleVariant = Json<'a>;
    type SerializeMap = Json<'a>;
    type SerializeStruct = Json<'a>;
    type SerializeStructVariant = Json<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), serde_json::Error> {
        self.scalar(&v)
    }
    fn serialize_i8(self, v: i8) -> Result<(), serde_json::Error> {
        self.scalar(&v)
    }
    fn serialize_i16(self, v: i16) -> Result<(), serde_json::Error> {
        self.scalar(&v)
    }
    fn serialize_i32(self, v: i32) -> Result<(), serde_json::Error> {
        self.scalar(&v)
    }
    fn serialize_i64(self, v: i64) -> Result<(), serde_json::Error> {
        self.scalar(&v)
    }
    fn serialize_i128(self, v: i128) -> Result<(), serde_json::Error> {
        self.scalar(&v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), serde_json::Error> {
        self.scalar(&v)
    }
    fn serialize_u16(self, v: u16) -> Result<(), serde_json::Error> {
        self.scalar(&v)
    }
    fn serialize_u32(self, v: u32) -> Result<(), serde_json::Error> {
        self.scalar(&v)
    }
    fn serialize_u64(self, v: u64) -> Result<(), serde_json::Error> {
        self.scalar(&v)
    }
    fn serialize_u128(self, v: u128) -> Result<(), serde_json::Error> {
        self.scalar(&v)
    }
    fn serialize_f32(self, v: f32) -> Result<(), serde_json::Error> {
        self.scalar(&v)
    }
    fn serialize_f64(self, v: f64) -> Result<(), serde_json::Error> {
        self.scalar(&v)
    }
    fn serialize_char(self, v: char) -> Result<(), serde_json::Error> {
        self.scalar(&v)
    }
    fn serialize_str(self, v: &str) -> Result<(), serde_json::Error> {
        self.scalar(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), serde_json::Error> {
        self.scalar(&ByteStr(v))
    }
    fn serialize_none(self) -> Result<(), serde_json::Error> {
        self.scalar(&())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), serde_json::Error> {
        value.serialize(self)
    }
    /// `()` is no argument at all.
    fn serialize_unit(self) -> Result<(), serde_json::Error> {
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), serde_json::Error> {
        self.scalar(&())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), serde_json::Error> {
        self.scalar(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), serde_json::Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), serde_json::Error> {
        let mut j = self.open("", "}");
        j.buf.push(b'{');
        j.key(variant)?;
        j.value(value)?;
        j.finish()
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Json<'a>, serde_json::Error> {
        Ok(self.open("[", "]"))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Args2<'a>, serde_json::Error> {
        Ok(Args2 {
            buf: self.buf,
            bins: self.bins,
        })
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Json<'a>, serde_json::Error> {
        Ok(self.open("[", "]"))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Json<'a>, serde_json::Error> {
        self.open_variant(variant, b'[', "]}")
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Json<'a>, serde_json::Error> {
        Ok(self.open("{", "}"))
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Json<'a>, serde_json::Error> {
        Ok(self.open("{", "}"))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Json<'a>, serde_json::Error> {
        self.open_variant(variant, b'{', "}}")
    }
}

impl TopSer<'_> {
    fn scalar<T: Serialize + ?Sized>(self, v: &T) -> Result<(), serde_json::Error> {
        self.buf.push(b',');
        let mut ser = serde_json::Serializer::new(&mut *self.buf);
        serialize_with_placeholders(v, &mut ser, self.bins)
    }
}

/// A byte string, serialised as bytes (so that it becomes an attachment).
struct ByteStr<'a>(&'a [u8]);

impl Serialize for ByteStr<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

/// The elements of a top-level tuple: one argument each.
pub(crate) struct Args2<'a> {
    buf: &'a mut Vec<u8>,
    bins: &'a Attachments,
}

impl ser::SerializeTuple for Args2<'_> {
    type Ok = ();
    type Error = serde_json::Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
        self.buf.push(b',');
        let mut ser = serde_json::Serializer::new(&mut *self.buf);
        serialize_with_placeholders(value, &mut ser, self.bins)
    }

    fn end(self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// One top-level argument that is a JSON array or object, written by hand so that each child
/// is serialised straight into the buffer.
pub(crate) struct Json<'a> {
    buf: &'a mut Vec<u8>,
    bins: &'a Attachments,
    first: bool,
    close: &'static str,
}

impl Json<'_> {
    fn comma(&mut self) {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
    }

    fn key(&mut self, key: &str) -> Result<(), serde_json::Error> {
        self.comma();
        serde_json::to_writer(&mut *self.buf, key)?;
        self.buf.push(b':');
        Ok(())
    }

    fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), serde_json::Error> {
        let mut ser = serde_json::Serializer::new(&mut *self.buf);
        serialize_with_placeholders(value, &mut ser, self.bins)
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), serde_json::Error> {
        self.comma();
        self.value(value)
    }

    fn finish(self) -> Result<(), serde_json::Error> {
        self.buf.extend_from_slice(self.close.as_bytes());
        Ok(())
    }
}

fn map_key<T: Serialize + ?Sized>(key: &T) -> Result<String, serde_json::Error> {
    match serde_json::to_value(key)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(ser::Error::custom("map key must be a string")),
    }
}

/// The sequence-like compound traits: each element is one child of the array.
macro_rules! json_elements {
    ($($trait:ident::$method:ident),*) => {$(
        impl ser::$trait for Json<'_> {
            type Ok = ();
            type Error = serde_json::Error;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
                self.element(value)
            }
            fn end(self) -> Result<(), Self::Error> {
                self.finish()
            }
        }
    )*};
}

json_elements!(
    SerializeSeq::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Json<'_> {
    type Ok = ();
    type Error = serde_json::Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Self::Error> {
        let k = map_key(key)?;
        self.key(&k)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
        self.value(value)
    }
    fn end(self) -> Result<(), Self::Error> {
        self.finish()
    }
}

/// The struct-like compound traits: each field is a key and a value of the object.
macro_rules! json_fields {
    ($($trait:ident),*) => {$(
        impl ser::$trait for Json<'_> {
            type Ok = ();
            type Error = serde_json::Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Self::Error> {
                self.key(key)?;
                self.value(value)
            }
            fn end(self) -> Result<(), Self::Error> {
                self.finish()
            }
        }
    )*};
}

json_fields!(SerializeStruct, SerializeStructVariant);
