use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::msgpack::{self, DecodeError};
use super::*;

fn hex(s: &str) -> Bytes {
    let s: String = s.split_whitespace().collect();
    Bytes::from(
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>(),
    )
}

fn broadcast(packet_data: Vec<Value>, rooms: &[&str], except: &[&str], flags: Value) -> Value {
    Value::Array(vec![
        "5WKaeZ".into(),
        Value::map([
            ("type", Value::from(2)),
            ("data", Value::Array(packet_data)),
            ("nsp", "/".into()),
        ]),
        Value::map([
            (
                "rooms",
                rooms
                    .iter()
                    .map(|r| Value::from(*r))
                    .collect::<Vec<_>>()
                    .into(),
            ),
            (
                "except",
                except
                    .iter()
                    .map(|r| Value::from(*r))
                    .collect::<Vec<_>>()
                    .into(),
            ),
            ("flags", flags),
        ]),
    ])
}

/// The three broadcasts captured from `@socket.io/redis-adapter` 8.3 (interop.md 2.1).
#[test]
fn redis_adapter_golden_bytes() {
    let cases = [
        (
            "93a635574b61655a83a47479706502a46461746193a463686174a568656c6c6f01a36e7370a12f83a5726f6f6d7390a665786365707490a5666c61677380",
            broadcast(
                vec!["chat".into(), "hello".into(), 1.into()],
                &[],
                &[],
                Value::Map(vec![]),
            ),
        ),
        (
            "93a635574b61655a83a47479706502a46461746192a46368617481a16101a36e7370a12f83a5726f6f6d7391a5726f6f6d31a665786365707490a5666c61677380",
            broadcast(
                vec!["chat".into(), Value::map([("a", Value::from(1))])],
                &["room1"],
                &[],
                Value::Map(vec![]),
            ),
        ),
        (
            "93a635574b61655a83a47479706502a46461746192a362696ec403010203a36e7370a12f83a5726f6f6d7392a27231a27232a665786365707491a27233a5666c61677381a8766f6c6174696c65c3",
            broadcast(
                vec!["bin".into(), Value::Binary(Bytes::from_static(&[1, 2, 3]))],
                &["r1", "r2"],
                &["r3"],
                Value::map([("volatile", Value::Bool(true))]),
            ),
        ),
    ];
    for (bytes, value) in cases {
        let bytes = hex(bytes);
        assert_eq!(msgpack::encode(&value), bytes.as_ref());
        assert_eq!(msgpack::decode(&bytes).unwrap(), value);
    }
}

/// `socket.io-msgpack-parser` 3.0.2 (interop.md 2.4).
#[test]
fn msgpack_parser_golden_bytes() {
    let bytes = hex("84a47479706502a36e7370a12fa46461746193a463686174a26869c4020102a2696403");
    let value = Value::map([
        ("type", Value::from(2)),
        ("nsp", "/".into()),
        (
            "data",
            Value::Array(vec![
                "chat".into(),
                "hi".into(),
                Value::Binary(Bytes::from_static(&[1, 2])),
            ]),
        ),
        ("id", Value::from(3)),
    ]);
    assert_eq!(msgpack::decode(&bytes).unwrap(), value);
    assert_eq!(msgpack::encode(&value), bytes.as_ref());
}

/// notepack 2.2 writes `undefined` as fixext1 type 0, also inside objects, and dates as
/// fixext8 type 0.
#[test]
fn notepack_2_extensions() {
    let obj = hex("82 a161 d40000 a162 01");
    assert_eq!(
        msgpack::decode(&obj).unwrap(),
        Value::map([("b", Value::from(1))])
    );
    assert_eq!(
        msgpack::decode(&hex("92 d40000 01")).unwrap(),
        Value::Array(vec![Value::Null, 1.into()])
    );
    // new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678)) = 1767323045678 ms.
    let date = hex("d7 00 0000019b7ca98f2e");
    assert_eq!(
        msgpack::decode(&date).unwrap(),
        Value::String("2026-01-02T03:04:05.678Z".into())
    );
    // The timestamp extension: 1767323045 s, 678 ms.
    let ts = hex("d7 ff a1a5d600695735a5");
    assert_eq!(
        msgpack::decode(&ts).unwrap(),
        Value::String("2026-01-02T03:04:05.678Z".into())
    );
}

#[test]
fn integers_and_floats_in_their_smallest_form() {
    let cases: [(Value, &str); 14] = [
        (0.into(), "00"),
        (127.into(), "7f"),
        (128.into(), "cc80"),
        (255.into(), "ccff"),
        (256.into(), "cd0100"),
        (65536.into(), "ce00010000"),
        (4_294_967_296u64.into(), "cf0000000100000000"),
        ((-1).into(), "ff"),
        ((-32).into(), "e0"),
        ((-33).into(), "d0df"),
        ((-129).into(), "d1ff7f"),
        ((-32769).into(), "d2ffff7fff"),
        (Value::Float(2.0), "02"),
        (Value::Float(1.5), "cb3ff8000000000000"),
    ];
    for (v, h) in cases {
        assert_eq!(msgpack::encode(&v), hex(h).as_ref(), "{v:?}");
    }
    assert_eq!(
        msgpack::decode(&hex("ca3fc00000")).unwrap(),
        Value::Float(1.5)
    );
    assert_eq!(
        msgpack::decode(&hex("cfffffffffffffffff")).unwrap(),
        Value::UInt(u64::MAX)
    );
}

#[test]
fn long_strings_arrays_and_maps() {
    let s = "x".repeat(40);
    let packed = msgpack::encode(&Value::String(s.clone()));
    assert_eq!(&packed[..2], &[0xd9, 40]);
    let items = Value::Array(vec![Value::Null; 20]);
    let packed = msgpack::encode(&items);
    assert_eq!(&packed[..3], &[0xdc, 0, 20]);
    assert_eq!(msgpack::decode(&Bytes::from(packed)).unwrap(), items);
    let bin = Value::Binary(Bytes::from(vec![7u8; 300]));
    let packed = msgpack::encode(&bin);
    assert_eq!(&packed[..3], &[0xc5, 1, 44]);
    assert_eq!(msgpack::decode(&Bytes::from(packed)).unwrap(), bin);
}

#[test]
fn hostile_msgpack_is_an_error_not_a_panic() {
    let cases: [(&str, DecodeError); 7] = [
        ("", DecodeError::Truncated),
        ("c1", DecodeError::InvalidMarker(0xc1)),
        ("dd ffffffff", DecodeError::Truncated),
        ("df ffffffff", DecodeError::Truncated),
        ("a2 ff fe", DecodeError::InvalidUtf8),
        ("81 c0 01", DecodeError::InvalidKey),
        ("01 02", DecodeError::Trailing),
    ];
    for (h, e) in cases {
        assert_eq!(msgpack::decode(&hex(h)), Err(e), "{h}");
    }
    let deep = Bytes::from(vec![0x91u8; 200]);
    assert_eq!(msgpack::decode(&deep), Err(DecodeError::TooDeep));
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct File {
    name: String,
    size: u32,
    data: Bytes,
    tags: Vec<String>,
    kind: Kind,
    maybe: Option<f64>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Kind {
    Image,
    Other(String),
}

#[test]
fn rust_values_round_trip() {
    let file = File {
        name: "a.png".into(),
        size: 2,
        data: Bytes::from_static(&[1, 2]),
        tags: vec!["x".into()],
        kind: Kind::Other("y".into()),
        maybe: None,
    };
    let v = to_value(&file).unwrap();
    assert_eq!(
        v.get("data"),
        Some(&Value::Binary(Bytes::from_static(&[1, 2])))
    );
    assert_eq!(
        v.get("kind"),
        Some(&Value::map([("Other", Value::from("y"))]))
    );
    let back: File = from_value(&v).unwrap();
    assert_eq!(back, file);
    let packed = msgpack::decode(&Bytes::from(msgpack::encode(&v))).unwrap();
    assert_eq!(from_value::<File>(&packed).unwrap(), file);
    assert_eq!(
        from_value::<Kind>(&Value::from("Image")).unwrap(),
        Kind::Image
    );
    // A Vec<u8> reads binary, integers read into floats.
    let raw: Vec<u8> = from_value(&Value::Binary(Bytes::from_static(&[9]))).unwrap();
    assert_eq!(raw, vec![9]);
    let f: f64 = from_value(&Value::from(3)).unwrap();
    assert_eq!(f, 3.0);
}

#[test]
fn args_follow_the_emit_rule() {
    assert_eq!(to_args(&()).unwrap(), vec![]);
    assert_eq!(to_args(&1).unwrap(), vec![Value::from(1)]);
    assert_eq!(
        to_args(&("a", 2)).unwrap(),
        vec![Value::from("a"), Value::from(2)]
    );
    assert_eq!(
        to_args(&vec![1, 2]).unwrap(),
        vec![Value::Array(vec![1.into(), 2.into()])]
    );
    assert_eq!(
        to_args(&Some(("a", 2))).unwrap(),
        vec![Value::from("a"), Value::from(2)]
    );
    assert_eq!(to_args(&None::<u8>).unwrap(), vec![Value::Null]);
}

#[test]
fn json_keeps_key_order_and_writes_binary_as_a_buffer() {
    let v = Value::from_json(br#"{"z":1,"a":[true,null,1.5,"s"],"m":{"k":-3}}"#).unwrap();
    assert_eq!(
        v,
        Value::map([
            ("z", Value::from(1)),
            (
                "a",
                Value::Array(vec![
                    true.into(),
                    Value::Null,
                    Value::Float(1.5),
                    "s".into()
                ])
            ),
            ("m", Value::map([("k", Value::from(-3))])),
        ])
    );
    assert_eq!(
        String::from_utf8(v.to_json()).unwrap(),
        r#"{"z":1,"a":[true,null,1.5,"s"],"m":{"k":-3}}"#
    );
    let bin = Value::map([("b", Value::Binary(Bytes::from_static(&[1, 2])))]);
    assert_eq!(
        String::from_utf8(bin.to_json()).unwrap(),
        r#"{"b":{"type":"Buffer","data":[1,2]}}"#
    );
    assert!(bin.has_binary());
    assert!(!v.has_binary());
}

/// Values go out as Socket.IO arguments (binary as attachments) and come back unchanged.
#[test]
fn values_through_the_socket_io_text_format() {
    use crate::socket::{ArgList, Decoder, PacketData, encode_event};
    let args = vec![
        Value::map([
            ("a", Value::from(1)),
            ("bin", Value::Binary(Bytes::from_static(&[1, 2]))),
        ]),
        Value::Binary(Bytes::from_static(&[3])),
        "s".into(),
    ];
    let e = encode_event("/chat", Some(7), "ev", &ArgList(&args)).unwrap();
    assert_eq!(
        e.text,
        Bytes::from_static(
            br#"452-/chat,7["ev",{"a":1,"bin":{"_placeholder":true,"num":0}},{"_placeholder":true,"num":1},"s"]"#
        )
    );
    let mut d = Decoder::default();
    assert!(d.handle_text(e.text.slice(1..)).unwrap().is_none());
    assert!(d.handle_binary(e.attachments[0].clone()).unwrap().is_none());
    let p = d.handle_binary(e.attachments[1].clone()).unwrap().unwrap();
    let PacketData::Event {
        name,
        args: got,
        id,
    } = p.data
    else {
        panic!("not an event");
    };
    assert_eq!((name.as_str(), id), ("ev", Some(7)));
    assert_eq!(got.to_values().unwrap(), args);
    // Without binary: the text form.
    let e = encode_event("/", None, "t", &ArgList(&[Value::from(1), Value::Null])).unwrap();
    assert_eq!(e.text, Bytes::from_static(br#"42["t",1,null]"#));
    let p = Decoder::default()
        .handle_text(e.text.slice(1..))
        .unwrap()
        .unwrap();
    let PacketData::Event { args: got, .. } = p.data else {
        panic!("not an event");
    };
    assert_eq!(got.to_values().unwrap(), vec![Value::from(1), Value::Null]);
}
