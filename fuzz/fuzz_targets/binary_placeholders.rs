//! The binary placeholder deserialiser (`crates/proto/src/socket/binary.rs`, reached through
//! `Args::deserialize` and `Args::deserialize_arg`): arbitrary JSON arguments with valid,
//! out-of-range and malformed `{"_placeholder":true,"num":N}` objects anywhere in them, and
//! arbitrary attachments.
//!
//! Invariants checked:
//! - nothing panics, whatever type is asked for;
//! - a type that reads anything (`Mirror`) gets exactly the tree of the JSON with every
//!   placeholder (`_placeholder: true`) replaced by the bytes of its attachment, in place; it
//!   fails exactly when a placeholder has no valid `num` or names an attachment that does not
//!   exist; objects whose `_placeholder` is not `true` stay objects;
//! - `Vec<u8>` and `Bytes` read an attachment alike;
//! - arguments sent again (`encode_event`) and decoded (`Decoder`) read the same.
#![no_main]

use std::collections::BTreeMap;
use std::fmt;

use arbitrary::Arbitrary;
use bytes::Bytes;
use ferrio_proto::socket::{Args, DecodeLimits, Decoder, PacketData, encode_event};
use libfuzzer_sys::fuzz_target;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

#[derive(Arbitrary, Debug)]
struct Input {
    args: Vec<J>,
    attachments: Vec<Vec<u8>>,
}

/// A JSON tree with placeholders, valid or not.
#[derive(Arbitrary, Debug)]
enum J {
    Null,
    Bool(bool),
    U(u64),
    I(i64),
    F(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
    Placeholder(u8),
    Weird(Weird),
}

/// Objects that look like placeholders but are not, or name a huge index.
#[derive(Arbitrary, Debug)]
enum Weird {
    NumString(u8),
    NumNegative(i8),
    NumFloat(u8),
    NumHuge(u64),
    ExtraKey(u8),
    NotTrue(u8),
    NoNum,
    OnlyNum(u8),
}

const MAX_DEPTH: usize = 12;

impl J {
    fn into_value(self, depth: usize) -> Value {
        if depth > MAX_DEPTH {
            return Value::Null;
        }
        let ph = |num: Value| {
            let mut m = Map::new();
            m.insert("_placeholder".into(), Value::Bool(true));
            m.insert("num".into(), num);
            m
        };
        match self {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(b),
            J::U(u) => Value::from(u),
            J::I(i) => Value::from(i),
            J::F(f) => Value::from(f),
            J::Str(s) => Value::String(s),
            J::Arr(items) => {
                Value::Array(items.into_iter().map(|j| j.into_value(depth + 1)).collect())
            }
            J::Obj(fields) => Value::Object(
                fields
                    .into_iter()
                    .map(|(k, j)| (k, j.into_value(depth + 1)))
                    .collect(),
            ),
            J::Placeholder(n) => Value::Object(ph(Value::from(n % 8))),
            J::Weird(w) => Value::Object(match w {
                Weird::NumString(n) => ph(Value::String(n.to_string())),
                Weird::NumNegative(n) => ph(Value::from(i64::from(n).min(-1))),
                Weird::NumFloat(n) => {
                    ph(Number::from_f64(f64::from(n) + 0.5).map_or(Value::Null, Value::Number))
                }
                Weird::NumHuge(n) => ph(Value::from(n | (1 << 63))),
                Weird::ExtraKey(n) => {
                    let mut m = ph(Value::from(n % 8));
                    m.insert("extra".into(), Value::Null);
                    m
                }
                Weird::NotTrue(n) => {
                    let mut m = ph(Value::from(n % 8));
                    m.insert("_placeholder".into(), Value::from(1));
                    m
                }
                Weird::NoNum => {
                    let mut m = Map::new();
                    m.insert("_placeholder".into(), Value::Bool(true));
                    m
                }
                Weird::OnlyNum(n) => {
                    let mut m = Map::new();
                    m.insert("num".into(), Value::from(n));
                    m
                }
            }),
        }
    }
}

/// Any value, read through `deserialize_any`, bytes kept apart from sequences.
#[derive(Clone, Debug, PartialEq)]
enum Mirror {
    Null,
    Bool(bool),
    U(u64),
    I(i64),
    F(u64),
    Str(String),
    Bytes(Vec<u8>),
    Seq(Vec<Mirror>),
    Map(Vec<(String, Mirror)>),
}

impl<'de> Deserialize<'de> for Mirror {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MirrorVisitor)
    }
}

struct MirrorVisitor;

impl<'de> Visitor<'de> for MirrorVisitor {
    type Value = Mirror;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("anything")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Mirror, E> {
        Ok(Mirror::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Mirror, E> {
        Ok(Mirror::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Mirror, E> {
        Ok(Mirror::Bool(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Mirror, E> {
        Ok(Mirror::U(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Mirror, E> {
        Ok(Mirror::I(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Mirror, E> {
        Ok(Mirror::F(v.to_bits()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Mirror, E> {
        Ok(Mirror::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Mirror, E> {
        Ok(Mirror::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Mirror, E> {
        Ok(Mirror::Bytes(v.to_vec()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Mirror, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Mirror::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Mirror, A::Error> {
        let mut fields = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Mirror>()? {
            fields.push((k, v));
        }
        Ok(Mirror::Map(fields))
    }
}

/// What the deserialiser must produce: `None` when a placeholder names a missing attachment.
fn expected(v: &Value, bins: &[Bytes]) -> Option<Mirror> {
    Some(match v {
        Value::Null => Mirror::Null,
        Value::Bool(b) => Mirror::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Mirror::U(u),
            (None, Some(i), _) => Mirror::I(i),
            (None, None, Some(f)) => Mirror::F(f.to_bits()),
            _ => unreachable!("a JSON number is u64, i64 or f64"),
        },
        Value::String(s) => Mirror::Str(s.clone()),
        Value::Array(items) => Mirror::Seq(
            items
                .iter()
                .map(|i| expected(i, bins))
                .collect::<Option<_>>()?,
        ),
        Value::Object(m) => {
            // socket.io-parser's rule: `_placeholder: true` stands for an attachment and needs
            // a valid `num`; other objects are data.
            match m.get("_placeholder") == Some(&Value::Bool(true)) {
                true => {
                    let n = m.get("num").and_then(Value::as_u64)?;
                    let bin = usize::try_from(n).ok().and_then(|n| bins.get(n))?;
                    Mirror::Bytes(bin.to_vec())
                }
                false => Mirror::Map(
                    m.iter()
                        .map(|(k, v)| Some((k.clone(), expected(v, bins)?)))
                        .collect::<Option<_>>()?,
                ),
            }
        }
    })
}

#[derive(serde::Deserialize, Debug)]
#[allow(dead_code)]
struct Typed {
    name: String,
    data: Bytes,
    raw: Vec<u8>,
    maybe: Option<Bytes>,
    list: Vec<Bytes>,
    map: BTreeMap<String, Bytes>,
}

#[derive(serde::Deserialize, Debug)]
#[allow(dead_code)]
enum Choice {
    A(Bytes),
    B { data: Vec<u8> },
    C,
}

fn exercise_typed(args: &Args) {
    let _ = args.deserialize::<Value>();
    let _ = args.deserialize::<Vec<Bytes>>();
    let _ = args.deserialize::<(String, Bytes)>();
    let _ = args.deserialize::<(Bytes, Vec<u8>, Option<Bytes>)>();
    let _ = args.deserialize::<Typed>();
    let _ = args.deserialize::<Vec<Typed>>();
    let _ = args.deserialize::<Choice>();
    let _ = args.deserialize::<BTreeMap<String, Vec<u8>>>();
    for i in 0..args.len().min(4) {
        let _ = args.deserialize_arg::<Typed>(i);
        let _ = args.deserialize_arg::<Option<Vec<Bytes>>>(i);
        let as_bytes = args.deserialize_arg::<Bytes>(i);
        let as_vec = args.deserialize_arg::<Vec<u8>>(i);
        // An attachment reads the same as `Bytes` and as `Vec<u8>`.
        if args.is_binary(i)
            && let (Some(Ok(b)), Some(Ok(v))) = (&as_bytes, &as_vec)
        {
            assert_eq!(b.as_ref(), v.as_slice());
        }
    }
}

fuzz_target!(|input: Input| {
    let values: Vec<Value> = input
        .args
        .into_iter()
        .take(8)
        .map(|j| j.into_value(0))
        .collect();
    let attachments: Vec<Bytes> = input
        .attachments
        .into_iter()
        .take(8)
        .map(Bytes::from)
        .collect();
    let args = Args::Binary {
        values: values.clone(),
        attachments: attachments.clone(),
    };
    exercise_typed(&args);

    // One argument reads as itself, several as their list.
    let all = if values.len() == 1 {
        values[0].clone()
    } else {
        Value::Array(values.clone())
    };
    let want = expected(&all, &attachments);
    let got = args.deserialize::<Mirror>().ok();
    assert_eq!(
        got, want,
        "the deserialiser and the placeholder rule disagree"
    );
    for (i, v) in values.iter().enumerate() {
        let got = args.deserialize_arg::<Mirror>(i).and_then(Result::ok);
        assert_eq!(got, expected(v, &attachments), "argument {i}");
    }

    // Sent again and decoded, the arguments read the same.
    let Some(want) = want else {
        return;
    };
    let Ok(encoded) = encode_event("/", Some(1), "ev", &args) else {
        return;
    };
    let mut limits = DecodeLimits::default();
    limits.max_attachments = usize::MAX;
    limits.max_depth = MAX_DEPTH + 4;
    let mut decoder = Decoder::new(limits);
    let mut out = decoder
        .handle_text(encoded.text.slice(1..))
        .expect("a re-encoded packet decodes");
    for a in &encoded.attachments {
        assert!(out.is_none(), "complete before its attachments");
        out = decoder
            .handle_binary(a.clone())
            .expect("attachment accepted");
    }
    let packet = out.expect("complete after its attachments");
    let PacketData::Event { args: again, .. } = packet.data else {
        panic!("re-encoded as another packet type");
    };
    assert_eq!(again.len(), args.len());
    assert_eq!(
        again.deserialize::<Mirror>().ok(),
        Some(want),
        "changed by a round trip"
    );
});
