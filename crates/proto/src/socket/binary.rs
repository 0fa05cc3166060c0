//! Binary attachments in serde: a serializer that replaces every byte string with a
//! `{"_placeholder":true,"num":N}` object and collects the bytes, and a deserializer that puts
//! the bytes back where the placeholders stand.
//!
//! Byte strings are what serde calls bytes: `bytes::Bytes`, `serde_bytes::ByteBuf`, `&[u8]`
//! with `#[serde(with = "serde_bytes")]`. A plain `Vec<u8>` serialises as a list of numbers,
//! as `serde_json` does; on the receiving side a `Vec<u8>` still accepts an attachment.

use std::cell::RefCell;
use std::fmt;

use bytes::Bytes;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

/// The attachments collected while serialising.
pub(crate) type Attachments = RefCell<Vec<Bytes>>;

/// Serialises `value` through `inner`, replacing byte strings with placeholders.
pub(crate) fn serialize_with_placeholders<T, S>(
    value: &T,
    inner: S,
    bins: &Attachments,
) -> Result<S::Ok, S::Error>
where
    T: Serialize + ?Sized,
    S: Serializer,
{
    value.serialize(BinSer { inner, bins })
}

/// A value to serialise with placeholders, for nesting inside another serializer.
pub(crate) struct WithPlaceholders<'a, T: ?Sized> {
    pub(crate) value: &'a T,
    pub(crate) bins: &'a Attachments,
}

impl<T: Serialize + ?Sized> Serialize for WithPlaceholders<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(BinSer {
            inner: serializer,
            bins: self.bins,
        })
    }
}

struct BinSer<'b, S> {
    inner: S,
    bins: &'b Attachments,
}

struct Compound<'b, C> {
    inner: C,
    bins: &'b Attachments,
}

macro_rules! forward {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(fn $name(self, $($arg: $ty),*) -> Result<S::Ok, S::Error> {
            self.inner.$name($($arg),*)
        })*
    };
}

impl<'b, S: Serializer> Serializer for BinSer<'b, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Compound<'b, S::SerializeSeq>;
    type SerializeTuple = Compound<'b, S::SerializeTuple>;
    type SerializeTupleStruct = Compound<'b, S::SerializeTupleStruct>;
    type SerializeTupleVariant = Compound<'b, S::SerializeTupleVariant>;
    type SerializeMap = Compound<'b, S::SerializeMap>;
    type SerializeStruct = Compound<'b, S::SerializeStruct>;
    type SerializeStructVariant = Compound<'b, S::SerializeStructVariant>;

    forward! {
        serialize_bool(v: bool);
        serialize_i8(v: i8);
        serialize_i16(v: i16);
        serialize_i32(v: i32);
        serialize_i64(v: i64);
        serialize_i128(v: i128);
        serialize_u8(v: u8);
        serialize_u16(v: u16);
        serialize_u32(v: u32);
        serialize_u64(v: u64);
        serialize_u128(v: u128);
        serialize_f32(v: f32);
        serialize_f64(v: f64);
        serialize_char(v: char);
        serialize_str(v: &str);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(name: &'static str);
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str);
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<S::Ok, S::Error> {
        let num = {
            let mut bins = self.bins.borrow_mut();
            bins.push(Bytes::copy_from_slice(v));
            bins.len() - 1
        };
        let mut map = self.inner.serialize_map(Some(2))?;
        map.serialize_entry("_placeholder", &true)?;
        map.serialize_entry("num", &num)?;
        map.end()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        let bins = self.bins;
        self.inner.serialize_some(&WithPlaceholders { value, bins })
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        let bins = self.bins;
        self.inner
            .serialize_newtype_struct(name, &WithPlaceholders { value, bins })
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        let bins = self.bins;
        self.inner.serialize_newtype_variant(
            name,
            index,
            variant,
            &WithPlaceholders { value, bins },
        )
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        Ok(Compound {
            inner: self.inner.serialize_seq(len)?,
            bins: self.bins,
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        Ok(Compound {
            inner: self.inner.serialize_tuple(len)?,
            bins: self.bins,
        })
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        Ok(Compound {
            inner: self.inner.serialize_tuple_struct(name, len)?,
            bins: self.bins,
        })
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        Ok(Compound {
            inner: self
                .inner
                .serialize_tuple_variant(name, index, variant, len)?,
            bins: self.bins,
        })
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        Ok(Compound {
            inner: self.inner.serialize_map(len)?,
            bins: self.bins,
        })
    }

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        Ok(Compound {
            inner: self.inner.serialize_struct(name, len)?,
            bins: self.bins,
        })
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        Ok(Compound {
            inner: self
                .inner
                .serialize_struct_variant(name, index, variant, len)?,
            bins: self.bins,
        })
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

macro_rules! compound {
    ($trait:ident, $method:ident) => {
        impl<C: ser::$trait> ser::$trait for Compound<'_, C> {
            type Ok = C::Ok;
            type Error = C::Error;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
                let bins = self.bins;
                self.inner.$method(&WithPlaceholders { value, bins })
            }

            fn end(self) -> Result<C::Ok, C::Error> {
                self.inner.end()
            }
        }
    };
}

compound!(SerializeSeq, serialize_element);
compound!(SerializeTuple, serialize_element);
compound!(SerializeTupleStruct, serialize_field);
compound!(SerializeTupleVariant, serialize_field);

impl<C: ser::SerializeMap> ser::SerializeMap for Compound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), C::Error> {
        self.inner.serialize_key(key)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let bins = self.bins;
        self.inner
            .serialize_value(&WithPlaceholders { value, bins })
    }

    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

macro_rules! compound_fields {
    ($($trait:ident),*) => {$(
        impl<C: ser::$trait> ser::$trait for Compound<'_, C> {
            type Ok = C::Ok;
            type Error = C::Error;

            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), C::Error> {
                let bins = self.bins;
                self.inner
                    .serialize_field(key, &WithPlaceholders { value, bins })
            }

            fn end(self) -> Result<C::Ok, C::Error> {
                self.inner.end()
            }
        }
    )*};
}

compound_fields!(SerializeStruct, SerializeStructVariant);

/// What an object is to the placeholder rule of `socket.io-parser`: one whose
/// `_placeholder` is `true` stands for an attachment (other keys do not matter) and needs a
/// valid `num`; any other object is data, `{"_placeholder":false}` included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placeholder {
    /// Not a placeholder.
    No,
    /// A placeholder for attachment `n` (which may not exist).
    Index(u64),
    /// A placeholder whose `num` is missing or not an unsigned integer.
    Invalid,
}

/// Classifies an object (see [`Placeholder`]).
pub(crate) fn placeholder(v: &Map<String, Value>) -> Placeholder {
    if v.get("_placeholder") != Some(&Value::Bool(true)) {
        return Placeholder::No;
    }
    match v.get("num").and_then(Value::as_u64) {
        Some(n) => Placeholder::Index(n),
        None => Placeholder::Invalid,
    }
}

/// If `v` is a valid placeholder object, its attachment index.
pub(crate) fn placeholder_index(v: &Map<String, Value>) -> Option<u64> {
    match placeholder(v) {
        Placeholder::Index(n) => Some(n),
        _ => None,
    }
}

/// Deserialises from a JSON value in which placeholders stand for `bins`.
pub(crate) struct BinDe<'a> {
    pub(crate) value: &'a Value,
    pub(crate) bins: &'a [Bytes],
}

type DeError = serde_json::Error;

fn bad(msg: impl fmt::Display) -> DeError {
    de::Error::custom(msg)
}

impl<'a> BinDe<'a> {
    fn attachment(&self) -> Option<Result<&'a Bytes, DeError>> {
        let Value::Object(map) = self.value else {
            return None;
        };
        match placeholder(map) {
            Placeholder::No => None,
            Placeholder::Invalid => Some(Err(bad("placeholder without a valid index"))),
            Placeholder::Index(n) => Some(
                usize::try_from(n)
                    .ok()
                    .and_then(|n| self.bins.get(n))
                    .ok_or_else(|| bad("placeholder refers to a missing attachment")),
            ),
        }
    }
}

impl<'de> de::Deserializer<'de> for BinDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if let Some(bin) = self.attachment() {
            return visitor.visit_borrowed_bytes(bin?);
        }
        match self.value {
            Value::Array(items) => visitor.visit_seq(Seq {
                items: items.iter(),
                bins: self.bins,
            }),
            Value::Object(map) => visitor.visit_map(Obj {
                iter: map.iter(),
                value: None,
                bins: self.bins,
            }),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if let Some(bin) = self.attachment() {
            // A `Vec<u8>` asks for a sequence: give it the bytes one by one.
            let bytes: &'de [u8] = bin?;
            return visitor.visit_seq(de::value::SeqDeserializer::<_, DeError>::new(
                bytes.iter().copied(),
            ));
        }
        self.deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        // Enums carrying binary are rare; they are read without attachments.
        self.value.deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct tuple tuple_struct map struct identifier ignored_any
    }
}

struct Seq<'a> {
    items: std::slice::Iter<'a, Value>,
    bins: &'a [Bytes],
}

impl<'de> SeqAccess<'de> for Seq<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some(value) => seed
                .deserialize(BinDe {
                    value,
                    bins: self.bins,
                })
                .map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Obj<'a> {
    iter: serde_json::map::Iter<'a>,
    value: Option<&'a Value>,
    bins: &'a [Bytes],
}

impl<'de> MapAccess<'de> for Obj<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                let key = de::value::BorrowedStrDeserializer::<'de, DeError>::new(k.as_str());
                seed.deserialize(key).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let value = self
            .value
            .take()
            .ok_or_else(|| bad("map value requested before its key"))?;
        seed.deserialize(BinDe {
            value,
            bins: self.bins,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct File {
        name: String,
        data: Bytes,
        thumbs: Vec<Bytes>,
        raw: Vec<u8>,
        maybe: Option<Bytes>,
    }

    #[test]
    fn placeholders_round_trip_at_any_depth() {
        let file = File {
            name: "a.png".into(),
            data: Bytes::from_static(&[1, 2]),
            thumbs: vec![Bytes::from_static(&[3]), Bytes::from_static(&[4, 5])],
            raw: vec![9, 9],
            maybe: Some(Bytes::from_static(&[6])),
        };
        let bins = Attachments::default();
        let mut out = Vec::new();
        serialize_with_placeholders(&file, &mut serde_json::Serializer::new(&mut out), &bins)
            .unwrap();
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            r#"{"name":"a.png","data":{"_placeholder":true,"num":0},"thumbs":[{"_placeholder":true,"num":1},{"_placeholder":true,"num":2}],"raw":[9,9],"maybe":{"_placeholder":true,"num":3}}"#
        );
        let bins = bins.into_inner();
        assert_eq!(bins.len(), 4);
        let value: Value = serde_json::from_slice(&out).unwrap();
        let back: File = serde::Deserialize::deserialize(BinDe {
            value: &value,
            bins: &bins,
        })
        .unwrap();
        assert_eq!(back, file);
    }

    #[test]
    fn vec_u8_accepts_an_attachment() {
        let value: Value = serde_json::json!({"_placeholder": true, "num": 0});
        let bins = [Bytes::from_static(&[7, 8])];
        let v: Vec<u8> = serde::Deserialize::deserialize(BinDe {
            value: &value,
            bins: &bins,
        })
        .unwrap();
        assert_eq!(v, vec![7, 8]);
    }

    #[test]
    fn placeholders_follow_socket_io_parser() {
        let bins = [Bytes::from_static(&[7])];
        let read = |v: Value| -> Result<Value, DeError> {
            <Value as serde::Deserialize>::deserialize(BinDe {
                value: &v,
                bins: &bins,
            })
        };
        // `_placeholder` other than `true`: data.
        for v in [
            serde_json::json!({"_placeholder": false, "num": 0}),
            serde_json::json!({"_placeholder": 1, "num": 0}),
            serde_json::json!({"num": 0}),
        ] {
            assert_eq!(read(v.clone()).unwrap(), v);
        }
        // `_placeholder: true` with extra keys is still a placeholder: the bytes.
        let extra = serde_json::json!({"_placeholder": true, "num": 0, "x": 1});
        let b: Bytes = serde::Deserialize::deserialize(BinDe {
            value: &extra,
            bins: &bins,
        })
        .unwrap();
        assert_eq!(b.as_ref(), &[7]);
        // Without a valid index it is an error, not data.
        for v in [
            serde_json::json!({"_placeholder": true}),
            serde_json::json!({"_placeholder": true, "num": "0"}),
            serde_json::json!({"_placeholder": true, "num": -1}),
            serde_json::json!({"_placeholder": true, "num": 0.5}),
        ] {
            assert!(read(v.clone()).is_err(), "{v}");
        }
    }

    #[test]
    fn missing_attachment_is_an_error() {
        let value: Value = serde_json::json!({"_placeholder": true, "num": 3});
        let r: Result<Bytes, _> = serde::Deserialize::deserialize(BinDe {
            value: &value,
            bins: &[],
        });
        assert!(r.is_err());
    }
}
