//! Rust values into [`Value`]: `Serialize for Value`, [`to_value`] and [`to_args`].

use bytes::Bytes;
use serde::ser::{self, Serialize, Serializer};

use super::{Value, ValueError};

impl Serialize for Value {
    /// Binary is written as serde bytes, so it becomes an attachment in the Socket.IO text
    /// format and `bin` in msgpack.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use ser::{SerializeMap, SerializeSeq};
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(i) => serializer.serialize_i64(*i),
            Value::UInt(u) => serializer.serialize_u64(*u),
            Value::Float(f) => serializer.serialize_f64(*f),
            Value::String(s) => serializer.serialize_str(s),
            Value::Binary(b) => serializer.serialize_bytes(b),
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// A value written for JSON: binary as Node's `Buffer.toJSON()`, `{"type":"Buffer","data":[..]}`.
pub(crate) struct AsJson<'a>(pub(crate) &'a Value);

impl Serialize for AsJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::Binary(b) => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("type", "Buffer")?;
                map.serialize_entry("data", b.as_ref())?;
                map.end()
            }
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&AsJson(item))?;
                }
                seq.end()
            }
            Value::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, &AsJson(v))?;
                }
                map.end()
            }
            other => other.serialize(serializer),
        }
    }
}

/// Any serialisable value as a [`Value`]; serde byte strings (`bytes::Bytes`,
/// `serde_bytes::ByteBuf`) become [`Value::Binary`].
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, ValueError> {
    value.serialize(ValueSerializer)
}

/// The event arguments of a value, with the emit rule: a tuple is several arguments, `()` is
/// none, anything else is one.
pub fn to_args<T: Serialize + ?Sized>(value: &T) -> Result<Vec<Value>, ValueError> {
    value.serialize(ArgsSerializer)
}

/// Serialises into a [`Value`].
struct ValueSerializer;

fn int(v: i128) -> Result<Value, ValueError> {
    if let Ok(i) = i64::try_from(v) {
        Ok(Value::Int(i))
    } else if let Ok(u) = u64::try_from(v) {
        Ok(Value::UInt(u))
    } else {
        Err(ValueError("integer out of range".into()))
    }
}

fn key_string(key: Value) -> Result<String, ValueError> {
    match key {
        Value::String(s) => Ok(s),
        Value::Int(i) => Ok(i.to_string()),
        Value::UInt(u) => Ok(u.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(ValueError("map key must be a string".into())),
    }
}

impl Serializer for ValueSerializer {
    type Ok = Value;
    type Error = ValueError;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = VariantBuilder<SeqBuilder>;
    type SerializeMap = MapBuilder;
    type SerializeStruct = MapBuilder;
    type SerializeStructVariant = VariantBuilder<MapBuilder>;

    fn serialize_bool(self, v: bool) -> Result<Value, ValueError> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_i64(self, v: i64) -> Result<Value, ValueError> {
        Ok(Value::Int(v))
    }
    fn serialize_i128(self, v: i128) -> Result<Value, ValueError> {
        int(v)
    }
    fn serialize_u8(self, v: u8) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_u16(self, v: u16) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_u32(self, v: u32) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_u64(self, v: u64) -> Result<Value, ValueError> {
        Ok(Value::from(v))
    }
    fn serialize_u128(self, v: u128) -> Result<Value, ValueError> {
        u64::try_from(v)
            .map(Value::from)
            .map_err(|_| ValueError("integer out of range".into()))
    }
    fn serialize_f32(self, v: f32) -> Result<Value, ValueError> {
        Ok(Value::Float(f64::from(v)))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, ValueError> {
        Ok(Value::Float(v))
    }
    fn serialize_char(self, v: char) -> Result<Value, ValueError> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, ValueError> {
        Ok(Value::String(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, ValueError> {
        Ok(Value::Binary(Bytes::copy_from_slice(v)))
    }
    fn serialize_none(self) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, ValueError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, ValueError> {
        Ok(Value::String(variant.to_owned()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Value, ValueError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, ValueError> {
        Ok(Value::Map(vec![(variant.to_owned(), to_value(value)?)]))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, ValueError> {
        Ok(SeqBuilder(Vec::with_capacity(len.unwrap_or(0).min(4096))))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, ValueError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, ValueError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantBuilder<SeqBuilder>, ValueError> {
        Ok(VariantBuilder {
            variant,
            inner: self.serialize_seq(Some(len))?,
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapBuilder, ValueError> {
        Ok(MapBuilder {
            entries: Vec::with_capacity(len.unwrap_or(0).min(4096)),
            key: None,
        })
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<MapBuilder, ValueError> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantBuilder<MapBuilder>, ValueError> {
        Ok(VariantBuilder {
            variant,
            inner: self.serialize_map(Some(len))?,
        })
    }
}

/// Builds an array.
struct SeqBuilder(Vec<Value>);

impl SeqBuilder {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.0.push(to_value(value)?);
        Ok(())
    }
}

/// The sequence-like compound traits: each element is one child of the array.
macro_rules! seq_compounds {
    ($($trait:ident::$method:ident),*) => {$(
        impl ser::$trait for SeqBuilder {
            type Ok = Value;
            type Error = ValueError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
                self.push(value)
            }
            fn end(self) -> Result<Value, ValueError> {
                Ok(Value::Array(self.0))
            }
        }
    )*};
}

seq_compounds!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field
);

/// Builds an object.
struct MapBuilder {
    entries: Vec<(String, Value)>,
    key: Option<String>,
}

impl ser::SerializeMap for MapBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), ValueError> {
        self.key = Some(key_string(to_value(key)?)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| ValueError("map value without a key".into()))?;
        self.entries.push((key, to_value(value)?));
        Ok(())
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::Map(self.entries))
    }
}

impl ser::SerializeStruct for MapBuilder {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        self.entries.push((key.to_owned(), to_value(value)?));
        Ok(())
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::Map(self.entries))
    }
}

/// `{"variant": inner}` for tuple and struct variants.
struct VariantBuilder<C> {
    variant: &'static str,
    inner: C,
}

impl ser::SerializeTupleVariant for VariantBuilder<SeqBuilder> {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.inner.push(value)
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::Map(vec![(
            self.variant.to_owned(),
            Value::Array(self.inner.0),
        )]))
    }
}

impl ser::SerializeStructVariant for VariantBuilder<MapBuilder> {
    type Ok = Value;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        ser::SerializeStruct::serialize_field(&mut self.inner, key, value)
    }
    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::Map(vec![(
            self.variant.to_owned(),
            Value::Map(self.inner.entries),
        )]))
    }
}

/// The top level of an emit: a tuple is several arguments, `()` none, anything else one.
struct ArgsSerializer;

/// Elements of a top-level tuple: one argument each.
struct ArgsTuple(Vec<Value>);

impl ser::SerializeTuple for ArgsTuple {
    type Ok = Vec<Value>;
    type Error = ValueError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.0.push(to_value(value)?);
        Ok(())
    }
    fn end(self) -> Result<Vec<Value>, ValueError> {
        Ok(self.0)
    }
}

/// A compound at the top level: built as one value, then one argument.
struct One<C>(C);

macro_rules! one_compound {
    ($($trait:ident::$method:ident),*) => {$(
        impl<C: ser::$trait<Ok = Value, Error = ValueError>> ser::$trait for One<C> {
            type Ok = Vec<Value>;
            type Error = ValueError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
                self.0.$method(value)
            }
            fn end(self) -> Result<Vec<Value>, ValueError> {
                Ok(vec![self.0.end()?])
            }
        }
    )*};
}

one_compound!(
    SerializeSeq::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl<C: ser::SerializeMap<Ok = Value, Error = ValueError>> ser::SerializeMap for One<C> {
    type Ok = Vec<Value>;
    type Error = ValueError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), ValueError> {
        self.0.serialize_key(key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.0.serialize_value(value)
    }
    fn end(self) -> Result<Vec<Value>, ValueError> {
        Ok(vec![self.0.end()?])
    }
}

macro_rules! one_fields {
    ($($trait:ident),*) => {$(
        impl<C: ser::$trait<Ok = Value, Error = ValueError>> ser::$trait for One<C> {
            type Ok = Vec<Value>;
            type Error = ValueError;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), ValueError> {
                self.0.serialize_field(key, value)
            }
            fn end(self) -> Result<Vec<Value>, ValueError> {
                Ok(vec![self.0.end()?])
            }
        }
    )*};
}

one_fields!(SerializeStruct, SerializeStructVariant);

macro_rules! one_scalar {
    ($($method:ident($ty:ty);)*) => {$(
        fn $method(self, v: $ty) -> Result<Vec<Value>, ValueError> {
            Ok(vec![ValueSerializer.$method(v)?])
        }
    )*};
}

impl Serializer for ArgsSerializer {
    type Ok = Vec<Value>;
    type Error = ValueError;
    type SerializeSeq = One<SeqBuilder>;
    type SerializeTuple = ArgsTuple;
    type SerializeTupleStruct = One<SeqBuilder>;
    type SerializeTupleVariant = One<VariantBuilder<SeqBuilder>>;
    type SerializeMap = One<MapBuilder>;
    type SerializeStruct = One<MapBuilder>;
    type SerializeStructVariant = One<VariantBuilder<MapBuilder>>;

    one_scalar! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_i128(i128);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_u128(u128);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_str(&str);
        serialize_bytes(&[u8]);
    }

    fn serialize_none(self) -> Result<Vec<Value>, ValueError> {
        Ok(vec![Value::Null])
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Vec<Value>, ValueError> {
        value.serialize(self)
    }
    /// `()` is no argument at all.
    fn serialize_unit(self) -> Result<Vec<Value>, ValueError> {
        Ok(Vec::new())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Vec<Value>, ValueError> {
        Ok(vec![Value::Null])
    }
    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<Vec<Value>, ValueError> {
        Ok(vec![
            ValueSerializer.serialize_unit_variant(name, index, variant)?,
        ])
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Vec<Value>, ValueError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Vec<Value>, ValueError> {
        Ok(vec![
            ValueSerializer.serialize_newtype_variant(name, index, variant, value)?,
        ])
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<One<SeqBuilder>, ValueError> {
        Ok(One(ValueSerializer.serialize_seq(len)?))
    }
    fn serialize_tuple(self, len: usize) -> Result<ArgsTuple, ValueError> {
        Ok(ArgsTuple(Vec::with_capacity(len.min(4096))))
    }
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<One<SeqBuilder>, ValueError> {
        Ok(One(ValueSerializer.serialize_tuple_struct(name, len)?))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<One<VariantBuilder<SeqBuilder>>, ValueError> {
        Ok(One(
            ValueSerializer.serialize_tuple_variant(name, index, variant, len)?
        ))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<One<MapBuilder>, ValueError> {
        Ok(One(ValueSerializer.serialize_map(len)?))
    }
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<One<MapBuilder>, ValueError> {
        Ok(One(ValueSerializer.serialize_struct(name, len)?))
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<One<VariantBuilder<MapBuilder>>, ValueError> {
        Ok(One(
            ValueSerializer.serialize_struct_variant(name, index, variant, len)?
        ))
    }
}
