//! The `socket.io-msgpack-parser` 3 format: each packet is one msgpack map
//! `{type, data, nsp, id?}` sent as one binary message. There are no BINARY_* types and no
//! attachments: binary is native (`bin`). Types are CONNECT to CONNECT_ERROR only.
//!
//! An [`Encoded`] of this format has an empty `text` and the packet as its only "attachment"
//! (the binary message to send). The decoder checks what the JavaScript parser checks (type,
//! string namespace, payload shape per type, integer id) and, as the default decoder does, that
//! an event name is a string or a number and not reserved.

use bytes::Bytes;
use serde::Serialize;

use super::args::Args;
use super::packet::{
    Encoded, Error, MAX_ACK_ID, MAX_NAMESPACE_LEN, Packet, PacketData, RESERVED_EVENTS,
};
use crate::value::{self, Value, ValueError, msgpack};

const CONNECT: i64 = 0;
const DISCONNECT: i64 = 1;
const EVENT: i64 = 2;
const ACK: i64 = 3;
const CONNECT_ERROR: i64 = 4;

fn packet(ty: i64, nsp: &str, data: Option<Value>, id: Option<u64>) -> Encoded {
    let mut fields = vec![("type".to_owned(), Value::from(ty))];
    if let Some(data) = data {
        fields.push(("data".to_owned(), data));
    }
    fields.push(("nsp".to_owned(), Value::from(nsp)));
    if let Some(id) = id {
        fields.push(("id".to_owned(), Value::from(id)));
    }
    Encoded {
        text: Bytes::new(),
        attachments: vec![Bytes::from(msgpack::encode(&Value::Map(fields)))],
    }
}

/// EVENT `[name, ...args]` (a tuple is several arguments, as for the default format).
pub fn encode_event<T: Serialize + ?Sized>(
    nsp: &str,
    id: Option<u64>,
    name: &str,
    data: &T,
) -> Result<Encoded, ValueError> {
    let mut items = vec![Value::from(name)];
    items.extend(value::to_args(data)?);
    Ok(packet(EVENT, nsp, Some(Value::Array(items)), id))
}

/// EVENT from `[name, ...args]` values.
pub fn encode_event_values(nsp: &str, id: Option<u64>, data: &[Value]) -> Encoded {
    packet(EVENT, nsp, Some(Value::Array(data.to_vec())), id)
}

/// ACK `[...args]`.
pub fn encode_ack<T: Serialize + ?Sized>(
    nsp: &str,
    id: u64,
    data: &T,
) -> Result<Encoded, ValueError> {
    Ok(packet(
        ACK,
        nsp,
        Some(Value::Array(value::to_args(data)?)),
        Some(id),
    ))
}

/// CONNECT (the client's, with its auth payload; or the server's reply `{sid, pid?}`).
pub fn encode_connect(nsp: &str, data: Option<Value>) -> Encoded {
    packet(CONNECT, nsp, data, None)
}

/// DISCONNECT.
pub fn encode_disconnect(nsp: &str) -> Encoded {
    packet(DISCONNECT, nsp, None, None)
}

/// CONNECT_ERROR `{message, data?}`.
pub fn encode_connect_error(nsp: &str, message: &str, data: Option<&serde_json::Value>) -> Encoded {
    let mut fields = vec![("message".to_owned(), Value::from(message))];
    if let Some(d) = data {
        fields.push(("data".to_owned(), Value::from(d.clone())));
    }
    packet(CONNECT_ERROR, nsp, Some(Value::Map(fields)), None)
}

/// The same EVENT with `arg` appended (the offset of connection state recovery).
pub fn append_arg(e: &Encoded, arg: Value) -> Encoded {
    let Some(Ok(Value::Map(mut fields))) = e.attachments.first().map(msgpack::decode) else {
        return e.clone();
    };
    if let Some((_, Value::Array(items))) = fields.iter_mut().find(|(k, _)| k == "data") {
        items.push(arg);
    }
    Encoded {
        text: Bytes::new(),
        attachments: vec![Bytes::from(msgpack::encode(&Value::Map(fields)))],
    }
}

/// The same packet with `id` as its ack id (a client picks the id when it sends).
pub fn with_id(e: &Encoded, id: u64) -> Encoded {
    let Some(Ok(Value::Map(mut fields))) = e.attachments.first().map(msgpack::decode) else {
        return e.clone();
    };
    fields.retain(|(k, _)| k != "id");
    fields.push(("id".to_owned(), Value::from(id)));
    Encoded {
        text: Bytes::new(),
        attachments: vec![Bytes::from(msgpack::encode(&Value::Map(fields)))],
    }
}

fn bad(what: &'static str) -> Error {
    Error::InvalidPayload(what)
}

/// Reads one packet of this format.
pub fn decode(frame: &Bytes) -> Result<Packet, Error> {
    let v = msgpack::decode(frame).map_err(|_| bad("not a msgpack value"))?;
    let Value::Map(_) = v else {
        return Err(bad("a packet is a msgpack map"));
    };
    let ty = v
        .get("type")
        .and_then(Value::as_i64)
        .filter(|t| (CONNECT..=CONNECT_ERROR).contains(t))
        .ok_or(Error::UnknownType)?;
    let nsp = v
        .get("nsp")
        .and_then(Value::as_str)
        .ok_or(Error::InvalidNamespace)?;
    if nsp.len() > MAX_NAMESPACE_LEN || !nsp.starts_with('/') {
        return Err(Error::InvalidNamespace);
    }
    let id = match v.get("id") {
        None | Some(Value::Null) => None,
        Some(id) => {
            let id = id.as_u64().ok_or(bad("the packet id is not an integer"))?;
            if id > MAX_ACK_ID {
                return Err(Error::AckIdTooLarge);
            }
            Some(id)
        }
    };
    let data = v.get("data");
    let data = match ty {
        CONNECT => match data {
            None | Some(Value::Null) => PacketData::Connect(None),
            Some(auth @ Value::Map(_)) => PacketData::Connect(Some(Bytes::from(auth.to_json()))),
            Some(_) => return Err(bad("CONNECT payload must be an object")),
        },
        DISCONNECT => match data {
            None | Some(Value::Null) => PacketData::Disconnect,
            Some(_) => return Err(bad("DISCONNECT has no payload")),
        },
        CONNECT_ERROR => match data {
            Some(d @ (Value::Map(_) | Value::String(_))) => {
                PacketData::ConnectError(Bytes::from(d.to_json()))
            }
            _ => return Err(bad("CONNECT_ERROR payload is a string or an object")),
        },
        EVENT => {
            let items = data
                .and_then(Value::as_array)
                .ok_or(bad("EVENT payload is an array"))?;
            let (first, args) = items
                .split_first()
                .ok_or(bad("EVENT needs an event name"))?;
            let name = match first {
                Value::String(s) if RESERVED_EVENTS.contains(&s.as_str()) => {
                    return Err(Error::ReservedEvent);
                }
                Value::String(s) => s.clone(),
                n @ (Value::Int(_) | Value::UInt(_) | Value::Float(_)) => {
                    String::from_utf8_lossy(&n.to_json()).into_owned()
                }
                _ => return Err(bad("event name must be a string or a number")),
            };
            PacketData::Event {
                name,
                args: Args::Values(args.to_vec()),
                id,
            }
        }
        _ => {
            let items = data
                .and_then(Value::as_array)
                .ok_or(bad("ACK payload is an array"))?;
            PacketData::Ack {
                args: Args::Values(items.to_vec()),
                id,
            }
        }
    };
    Ok(Packet {
        nsp: nsp.to_owned(),
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Bytes {
        Bytes::from(
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect::<Vec<u8>>(),
        )
    }

    /// The packet captured from socket.io-msgpack-parser 3.0.2 (interop.md 2.4).
    #[test]
    fn golden_packet() {
        let frame = hex("84a47479706502a36e7370a12fa46461746193a463686174a26869c4020102a2696403");
        let p = decode(&frame).unwrap();
        assert_eq!(p.nsp, "/");
        let PacketData::Event { name, args, id } = p.data else {
            panic!("not an event");
        };
        assert_eq!((name.as_str(), id), ("chat", Some(3)));
        assert_eq!(
            args.to_values().unwrap(),
            vec![
                Value::from("hi"),
                Value::Binary(Bytes::from_static(&[1, 2]))
            ]
        );
        let again =
            encode_event("/", Some(3), "chat", &("hi", Bytes::from_static(&[1, 2]))).unwrap();
        assert!(again.text.is_empty());
        assert_eq!(
            decode(&again.attachments[0]).unwrap(),
            decode(&frame).unwrap()
        );
    }

    #[test]
    fn every_type_round_trips() {
        let cases = [
            encode_connect("/admin", Some(Value::map([("token", Value::from("t"))]))),
            encode_connect("/", None),
            encode_disconnect("/x"),
            encode_connect_error("/", "nope", Some(&serde_json::json!({"a": 1}))),
            encode_ack("/", 9, &(1, "two")).unwrap(),
            encode_event("/", None, "e", &()).unwrap(),
        ];
        let got: Vec<PacketData> = cases
            .iter()
            .map(|e| decode(&e.attachments[0]).unwrap().data)
            .collect();
        assert_eq!(
            got[0],
            PacketData::Connect(Some(Bytes::from_static(br#"{"token":"t"}"#)))
        );
        assert_eq!(got[1], PacketData::Connect(None));
        assert_eq!(got[2], PacketData::Disconnect);
        assert_eq!(
            got[3],
            PacketData::ConnectError(Bytes::from_static(br#"{"message":"nope","data":{"a":1}}"#))
        );
        let PacketData::Ack { args, id } = &got[4] else {
            panic!("ack");
        };
        assert_eq!(*id, Some(9));
        assert_eq!(
            args.deserialize::<(u8, String)>().unwrap(),
            (1, "two".to_owned())
        );
        let with = with_id(&cases[5], 12);
        assert!(matches!(
            decode(&with.attachments[0]).unwrap().data,
            PacketData::Event { id: Some(12), .. }
        ));
        let offset = append_arg(&cases[5], Value::from("off"));
        let PacketData::Event { args, .. } = decode(&offset.attachments[0]).unwrap().data else {
            panic!("event");
        };
        assert_eq!(args.to_values().unwrap(), vec![Value::from("off")]);
    }

    #[test]
    fn what_the_javascript_parser_refuses() {
        let bad = [
            Value::from(1),
            Value::map([("type", Value::from(5)), ("nsp", "/".into())]),
            Value::map([
                ("type", Value::from(2)),
                ("nsp", Value::from(1)),
                ("data", Value::Array(vec!["e".into()])),
            ]),
            Value::map([
                ("type", Value::from(2)),
                ("nsp", "/".into()),
                ("data", "e".into()),
            ]),
            Value::map([
                ("type", Value::from(2)),
                ("nsp", "/".into()),
                ("data", Value::Array(vec![])),
            ]),
            Value::map([
                ("type", Value::from(2)),
                ("nsp", "/".into()),
                ("data", Value::Array(vec!["disconnect".into()])),
            ]),
            Value::map([
                ("type", Value::from(2)),
                ("nsp", "/".into()),
                ("data", Value::Array(vec!["e".into()])),
                ("id", "x".into()),
            ]),
            Value::map([
                ("type", Value::from(1)),
                ("nsp", "/".into()),
                ("data", Value::from(1)),
            ]),
            Value::map([
                ("type", Value::from(0)),
                ("nsp", "/".into()),
                ("data", Value::from("s")),
            ]),
            Value::map([
                ("type", Value::from(4)),
                ("nsp", "/".into()),
                ("data", Value::from(1)),
            ]),
        ];
        for v in bad {
            assert!(decode(&Bytes::from(msgpack::encode(&v))).is_err(), "{v:?}");
        }
        assert!(decode(&Bytes::from_static(b"\xc1")).is_err());
    }
}
