//! What adapters carry: the broadcast packet (encoded for local sockets, as values for other
//! servers) and the description of a socket (`fetchSockets`).

use std::sync::OnceLock;

use ferrio_proto::engine::Sid;
use ferrio_proto::socket::{ArgList, Encoded, PacketData, Parser, msgpack};
use ferrio_proto::value::{self, Value};
use serde::{Deserialize, Serialize};

use super::{AdapterError, Room};

/// An EVENT on its way to many sockets. It is encoded once for the sockets of this server (the
/// Engine.IO `4` prefix included, attachments apart) and, for other servers, described as Node's
/// `packet.data`: `[event, ...args]` with binary as [`Value::Binary`]. Each form is computed
/// from the other at most once, when first asked for.
#[derive(Debug)]
pub struct BroadcastPacket {
    nsp: String,
    parser: Parser,
    event: String,
    ack_id: Option<u64>,
    encoded: OnceLock<Encoded>,
    data: OnceLock<Result<Vec<Value>, AdapterError>>,
}

impl BroadcastPacket {
    /// A packet already encoded for this server's sockets (with its ack id, if any).
    pub(crate) fn from_encoded(
        nsp: &str,
        parser: Parser,
        event: &str,
        ack_id: Option<u64>,
        encoded: Encoded,
    ) -> Self {
        BroadcastPacket {
            nsp: nsp.to_owned(),
            parser,
            event: event.to_owned(),
            ack_id,
            encoded: OnceLock::from(encoded),
            data: OnceLock::new(),
        }
    }

    /// A packet from Node's `packet.data`, `[event, ...args]` (from another server), to be
    /// encoded in `parser`'s format for this server's sockets.
    pub fn from_data(nsp: &str, parser: Parser, data: Vec<Value>) -> Result<Self, AdapterError> {
        let event = match data.first() {
            Some(Value::String(s)) => s.clone(),
            Some(v @ (Value::Int(_) | Value::UInt(_) | Value::Float(_))) => {
                String::from_utf8_lossy(&v.to_json()).into_owned()
            }
            _ => {
                return Err(AdapterError::Encode(
                    "packet data must start with the event name".into(),
                ));
            }
        };
        Ok(BroadcastPacket {
            nsp: nsp.to_owned(),
            parser,
            event,
            ack_id: None,
            encoded: OnceLock::new(),
            data: OnceLock::from(Ok(data)),
        })
    }

    /// The namespace.
    pub fn nsp(&self) -> &str {
        &self.nsp
    }

    /// The event name.
    pub fn event(&self) -> &str {
        &self.event
    }

    /// The ack id the packet was encoded with (a broadcast with acks started here).
    pub fn ack_id(&self) -> Option<u64> {
        self.ack_id
    }

    /// The packet encoded for this server's sockets.
    pub fn encoded(&self) -> &Encoded {
        self.encoded.get_or_init(|| {
            let data = match self.data.get() {
                Some(Ok(data)) => data.as_slice(),
                _ => &[],
            };
            self.encode_args(self.ack_id, data.get(1..).unwrap_or(&[]))
        })
    }

    /// The packet encoded with another ack id (a broadcast with acks from another server gets
    /// an id of this server's namespace).
    pub(crate) fn encode_with_ack(&self, id: u64) -> Result<Encoded, AdapterError> {
        let data = self.data()?;
        Ok(self.encode_args(Some(id), data.get(1..).unwrap_or(&[])))
    }

    /// Node's `packet.data`: `[event, ...args]`.
    pub fn data(&self) -> Result<&[Value], AdapterError> {
        self.data
            .get_or_init(|| decode_data(self.encoded(), self.parser))
            .as_ref()
            .map(Vec::as_slice)
            .map_err(Clone::clone)
    }

    /// Node's packet object, `{type: 2, data, nsp}`.
    pub fn to_value(&self) -> Result<Value, AdapterError> {
        Ok(Value::map([
            ("type", Value::from(2)),
            ("data", Value::Array(self.data()?.to_vec())),
            ("nsp", Value::from(self.nsp.as_str())),
        ]))
    }

    fn encode_args(&self, id: Option<u64>, args: &[Value]) -> Encoded {
        if !self.parser.is_text() {
            let mut data = Vec::with_capacity(args.len() + 1);
            data.push(Value::from(self.event.as_str()));
            data.extend_from_slice(args);
            return msgpack::encode_event_values(&self.nsp, id, &data);
        }
        // Values always serialise (their keys are strings); an empty event is the fallback
        // that cannot be reached.
        self.parser
            .encode_event(&self.nsp, id, &self.event, &ArgList(args))
            .unwrap_or_else(|_| Encoded {
                text: bytes::Bytes::from_static(b"42[\"\"]"),
                attachments: Vec::new(),
            })
    }
}

/// Reads back `[event, ...args]` from a packet this server encoded.
fn decode_data(e: &Encoded, parser: Parser) -> Result<Vec<Value>, AdapterError> {
    let bad = |what: &str| AdapterError::Encode(format!("cannot describe the packet: {what}"));
    match e.decode(parser).map(|p| p.data) {
        Some(PacketData::Event { name, args, .. }) => {
            let mut data = Vec::with_capacity(args.len() + 1);
            data.push(Value::String(name));
            data.extend(args.to_values().map_err(|e| bad(&e.to_string()))?);
            Ok(data)
        }
        _ => Err(bad("not an event")),
    }
}

/// The handshake of a socket as Node serialises it (`socket.handshake` in `fetchSockets`
/// answers): `{headers, time, address, xdomain, secure, issued, url, query, auth}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct HandshakeInfo {
    /// Request headers (lower-case names).
    pub headers: serde_json::Map<String, serde_json::Value>,
    /// When the socket connected, as JavaScript's `Date.toString()`.
    pub time: String,
    /// The peer address.
    pub address: String,
    /// Whether the request had an `Origin` header.
    pub xdomain: bool,
    /// Whether the connection was encrypted.
    pub secure: bool,
    /// When the socket connected, in milliseconds since the Unix epoch.
    pub issued: u64,
    /// The request path and query.
    pub url: String,
    /// The query parameters of the handshake request.
    pub query: serde_json::Map<String, serde_json::Value>,
    /// The CONNECT payload of the namespace.
    pub auth: serde_json::Value,
}

/// A socket of this or another server, as `fetchSockets` describes it:
/// `{id, handshake, rooms, data}`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SocketInfo {
    /// The socket id.
    pub id: Sid,
    /// The handshake.
    pub handshake: HandshakeInfo,
    /// The rooms (its own id included).
    pub rooms: Vec<Room>,
    /// `socket.data`.
    pub data: Value,
}

impl SocketInfo {
    /// Node's shape, `{id, handshake, rooms, data}`.
    pub fn to_value(&self) -> Value {
        Value::map([
            ("id", Value::from(self.id.as_str())),
            (
                "handshake",
                value::to_value(&self.handshake).unwrap_or_default(),
            ),
            (
                "rooms",
                Value::Array(self.rooms.iter().map(|r| Value::from(r.as_ref())).collect()),
            ),
            ("data", self.data.clone()),
        ])
    }

    /// Reads Node's shape; `None` when it is not a socket description.
    pub fn from_value(v: &Value) -> Option<SocketInfo> {
        let id = Sid::parse(v.get("id")?.as_str()?).ok()?;
        let handshake = v
            .get("handshake")
            .and_then(|h| value::from_value(h).ok())
            .unwrap_or_default();
        let rooms = v
            .get("rooms")
            .and_then(Value::as_array)
            .map(|rooms| {
                rooms
                    .iter()
                    .filter_map(|r| Some(Room::Owned(r.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Some(SocketInfo {
            id,
            handshake,
            rooms,
            data: v.get("data").cloned().unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use ferrio_proto::socket::encode_event;

    use super::*;

    #[test]
    fn both_forms_of_a_packet() {
        let e = encode_event("/", None, "chat", &("hi", Bytes::from_static(&[1]))).unwrap();
        let p = BroadcastPacket::from_encoded("/", Parser::Default, "chat", None, e.clone());
        assert_eq!(
            p.data().unwrap(),
            &[
                Value::from("chat"),
                Value::from("hi"),
                Value::Binary(Bytes::from_static(&[1]))
            ]
        );
        let q =
            BroadcastPacket::from_data("/", Parser::Default, p.data().unwrap().to_vec()).unwrap();
        assert_eq!(q.encoded(), &e);
        assert_eq!(
            q.encode_with_ack(5).unwrap().text,
            Bytes::from_static(br#"451-5["chat","hi",{"_placeholder":true,"num":0}]"#)
        );
        assert_eq!(
            value::msgpack::encode(&q.to_value().unwrap()),
            value::msgpack::encode(&Value::map([
                ("type", Value::from(2)),
                (
                    "data",
                    Value::Array(vec![
                        "chat".into(),
                        "hi".into(),
                        Value::Binary(Bytes::from_static(&[1]))
                    ])
                ),
                ("nsp", "/".into()),
            ]))
        );
        assert!(BroadcastPacket::from_data("/", Parser::Default, vec![]).is_err());
        // The msgpack format: one binary message, read back to the same data.
        let m =
            BroadcastPacket::from_data("/", Parser::MsgPack, p.data().unwrap().to_vec()).unwrap();
        assert!(m.encoded().text.is_empty());
        let back =
            BroadcastPacket::from_encoded("/", Parser::MsgPack, "chat", None, m.encoded().clone());
        assert_eq!(back.data().unwrap(), p.data().unwrap());
    }

    #[test]
    fn node_socket_description() {
        let node: Value = Value::from_json(
            br#"{"id":"ouotH0SVdsV_ntxSAAAA","handshake":{"headers":{"host":"x"},"time":"Sun Nov 22 2026 02:06:41 GMT+0000 (Coordinated Universal Time)",
 "address":"::ffff:127.0.0.1","xdomain":false,"secure":false,"issued":1795313201366,"url":"/socket.io/?EIO=4&transport=websocket",
 "query":{"EIO":"4","transport":"websocket"},"auth":{"token":"t"}},"rooms":["ouotH0SVdsV_ntxSAAAA","room1"],"data":{"user":"alice"}}"#,
        )
        .unwrap();
        let info = SocketInfo::from_value(&node).unwrap();
        assert_eq!(info.id.as_str(), "ouotH0SVdsV_ntxSAAAA");
        assert_eq!(info.handshake.issued, 1_795_313_201_366);
        assert_eq!(info.handshake.address, "::ffff:127.0.0.1");
        assert_eq!(info.handshake.auth, serde_json::json!({"token": "t"}));
        assert_eq!(
            info.rooms,
            vec![Room::from("ouotH0SVdsV_ntxSAAAA"), "room1".into()]
        );
        assert_eq!(info.data.get("user"), Some(&Value::from("alice")));
        assert_eq!(SocketInfo::from_value(&info.to_value()).unwrap(), info);
    }
}
