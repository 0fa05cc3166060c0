//! Engine.IO v4 packets and their WebSocket frame form.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Sid;

/// An encoded Engine.IO packet, ready for the wire: one WebSocket frame, or one record of a
/// polling payload.
///
/// Outgoing data is kept in this form so that a packet is encoded once and shared (by refcount)
/// between every recipient of a broadcast.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Frame {
    /// A text packet: the type character followed by its data (`4hello`, `2`, `3probe`).
    /// The bytes must be valid UTF-8.
    Text(Bytes),
    /// A binary message: the raw bytes, with no type prefix (v4).
    Binary(Bytes),
}

impl Frame {
    /// A text `message` packet (`4` + `data`).
    pub fn text_message(data: &str) -> Self {
        let mut buf = BytesMut::with_capacity(data.len() + 1);
        buf.put_u8(b'4');
        buf.put_slice(data.as_bytes());
        Frame::Text(buf.freeze())
    }

    /// A binary `message` packet.
    pub fn binary_message(data: impl Into<Bytes>) -> Self {
        Frame::Binary(data.into())
    }

    /// Length of the frame on a WebSocket, in bytes.
    pub fn len(&self) -> usize {
        match self {
            Frame::Text(b) | Frame::Binary(b) => b.len(),
        }
    }

    /// Whether the frame holds no bytes at all (never true for a valid packet).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The seven Engine.IO packet types, in spec order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// `0`: handshake, server to client.
    Open,
    /// `1`: close the session.
    Close,
    /// `2`: heartbeat request (server to client; `2probe` from the client during an upgrade).
    Ping,
    /// `3`: heartbeat answer (client to server; `3probe` from the server during an upgrade).
    Pong,
    /// `4`: application data.
    Message,
    /// `5`: completes the upgrade to WebSocket (client to server).
    Upgrade,
    /// `6`: no operation; ends a pending poll (server to client).
    Noop,
}

impl PacketType {
    /// The type character on the wire.
    pub fn as_char(self) -> char {
        (self.as_byte()) as char
    }

    pub(crate) fn as_byte(self) -> u8 {
        match self {
            PacketType::Open => b'0',
            PacketType::Close => b'1',
            PacketType::Ping => b'2',
            PacketType::Pong => b'3',
            PacketType::Message => b'4',
            PacketType::Upgrade => b'5',
            PacketType::Noop => b'6',
        }
    }

    pub(crate) fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            b'0' => PacketType::Open,
            b'1' => PacketType::Close,
            b'2' => PacketType::Ping,
            b'3' => PacketType::Pong,
            b'4' => PacketType::Message,
            b'5' => PacketType::Upgrade,
            b'6' => PacketType::Noop,
            _ => return None,
        })
    }
}

/// The data of a `message` packet.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    /// Text data (valid UTF-8), without the `4` type character.
    Text(Bytes),
    /// Binary data.
    Binary(Bytes),
}

impl Message {
    /// Length of the data in bytes.
    pub fn len(&self) -> usize {
        match self {
            Message::Text(b) | Message::Binary(b) => b.len(),
        }
    }

    /// Whether the data is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A decoded Engine.IO packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    /// `0{...}`: the handshake data.
    Open(OpenPacket),
    /// `1`.
    Close,
    /// `2` with optional data (`2probe`).
    Ping(Bytes),
    /// `3` with optional data (`3probe`).
    Pong(Bytes),
    /// `4...` or a binary frame.
    Message(Message),
    /// `5`.
    Upgrade,
    /// `6`.
    Noop,
}

/// Why bytes could not be decoded as Engine.IO packets. Each becomes the close reason
/// `parse error` of the session that sent them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// An empty packet (no type character).
    #[error("empty packet")]
    Empty,
    /// The first character is not a packet type `0`..`6`.
    #[error("unknown packet type {0:#04x}")]
    UnknownType(u8),
    /// The data of an open packet is not the expected JSON object.
    #[error("invalid open packet: {0}")]
    InvalidOpen(String),
    /// A polling payload is not valid UTF-8.
    #[error("payload is not valid UTF-8")]
    InvalidUtf8,
    /// A `b` record of a polling payload is not valid base64.
    #[error("invalid base64 in binary record")]
    InvalidBase64,
    /// A polling payload holds more packets than allowed.
    #[error("too many packets in payload (limit {0})")]
    TooManyPackets(usize),
    /// An Engine.IO v3 payload whose length prefix is missing, not a number, or does not
    /// match the data that follows.
    #[error("invalid length prefix in v3 payload")]
    InvalidLength,
}

impl Packet {
    /// The type of this packet.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Open(_) => PacketType::Open,
            Packet::Close => PacketType::Close,
            Packet::Ping(_) => PacketType::Ping,
            Packet::Pong(_) => PacketType::Pong,
            Packet::Message(_) => PacketType::Message,
            Packet::Upgrade => PacketType::Upgrade,
            Packet::Noop => PacketType::Noop,
        }
    }

    /// Decodes one frame. Text data is sliced from the frame, not copied.
    pub fn decode(frame: Frame) -> Result<Packet, DecodeError> {
        let text = match frame {
            Frame::Binary(b) => return Ok(Packet::Message(Message::Binary(b))),
            Frame::Text(t) => t,
        };
        let first = *text.first().ok_or(DecodeError::Empty)?;
        let ty = PacketType::from_byte(first).ok_or(DecodeError::UnknownType(first))?;
        let data = text.slice(1..);
        Ok(match ty {
            PacketType::Open => Packet::Open(
                serde_json::from_slice(&data)
                    .map_err(|e| DecodeError::InvalidOpen(e.to_string()))?,
            ),
            PacketType::Close => Packet::Close,
            PacketType::Ping => Packet::Ping(data),
            PacketType::Pong => Packet::Pong(data),
            PacketType::Message => Packet::Message(Message::Text(data)),
            PacketType::Upgrade => Packet::Upgrade,
            PacketType::Noop => Packet::Noop,
        })
    }

    /// Encodes the packet as a frame.
    pub fn encode(&self) -> Frame {
        match self {
            Packet::Open(open) => {
                let mut buf = BytesMut::with_capacity(128);
                buf.put_u8(b'0');
                // Serialising a struct of strings and integers into memory cannot fail.
                let json = serde_json::to_vec(open).unwrap_or_default();
                buf.put_slice(&json);
                Frame::Text(buf.freeze())
            }
            Packet::Close => Frame::Text(Bytes::from_static(b"1")),
            Packet::Ping(d) => with_type(PacketType::Ping, d),
            Packet::Pong(d) => with_type(PacketType::Pong, d),
            Packet::Message(Message::Text(d)) => with_type(PacketType::Message, d),
            Packet::Message(Message::Binary(d)) => Frame::Binary(d.clone()),
            Packet::Upgrade => Frame::Text(Bytes::from_static(b"5")),
            Packet::Noop => Frame::Text(Bytes::from_static(b"6")),
        }
    }
}

fn with_type(ty: PacketType, data: &Bytes) -> Frame {
    if data.is_empty() {
        let s: &'static [u8] = match ty {
            PacketType::Ping => b"2",
            PacketType::Pong => b"3",
            _ => b"4",
        };
        return Frame::Text(Bytes::from_static(s));
    }
    if data.as_ref() == b"probe" {
        match ty {
            PacketType::Ping => return Frame::Text(Bytes::from_static(b"2probe")),
            PacketType::Pong => return Frame::Text(Bytes::from_static(b"3probe")),
            _ => {}
        }
    }
    let mut buf = BytesMut::with_capacity(data.len() + 1);
    buf.put_u8(ty.as_byte());
    buf.put_slice(data);
    Frame::Text(buf.freeze())
}

/// The handshake data of the `open` packet. Exactly the five keys the reference server sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenPacket {
    /// The session id.
    pub sid: Sid,
    /// Transports the session may upgrade to: `["websocket"]` on polling, `[]` on WebSocket.
    pub upgrades: Vec<String>,
    /// How often the server pings.
    #[serde(with = "millis")]
    pub ping_interval: Duration,
    /// How long the server waits for the pong.
    #[serde(with = "millis")]
    pub ping_timeout: Duration,
    /// The largest polling payload the server accepts, in bytes.
    pub max_payload: u64,
}

mod millis {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        s.serialize_u64(ms)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &'static str) -> Frame {
        Frame::Text(Bytes::from_static(s.as_bytes()))
    }

    fn round_trip(s: &'static str, expected: Packet) {
        let decoded = Packet::decode(text(s)).unwrap();
        assert_eq!(decoded, expected, "decode {s:?}");
        assert_eq!(decoded.encode(), text(s), "encode {s:?}");
    }

    #[test]
    fn spec_examples_round_trip() {
        round_trip("1", Packet::Close);
        round_trip("2", Packet::Ping(Bytes::new()));
        round_trip("3", Packet::Pong(Bytes::new()));
        round_trip("2probe", Packet::Ping(Bytes::from_static(b"probe")));
        round_trip("3probe", Packet::Pong(Bytes::from_static(b"probe")));
        round_trip(
            "4hello",
            Packet::Message(Message::Text(Bytes::from_static(b"hello"))),
        );
        round_trip("4", Packet::Message(Message::Text(Bytes::new())));
        round_trip("4€ 😀", Packet::Message(Message::Text(Bytes::from("€ 😀"))));
        round_trip("5", Packet::Upgrade);
        round_trip("6", Packet::Noop);
    }

    #[test]
    fn binary_frame_is_a_message_without_prefix() {
        let f = Frame::Binary(Bytes::from_static(&[1, 2, 3, 4]));
        let p = Packet::decode(f.clone()).unwrap();
        assert_eq!(
            p,
            Packet::Message(Message::Binary(Bytes::from_static(&[1, 2, 3, 4])))
        );
        assert_eq!(p.encode(), f);
    }

    #[test]
    fn open_packet_has_exactly_the_five_keys() {
        let open = OpenPacket {
            sid: Sid::parse("lv_VI97HAXpY6yYWAAAC").unwrap(),
            upgrades: vec!["websocket".into()],
            ping_interval: Duration::from_millis(25000),
            ping_timeout: Duration::from_millis(20000),
            max_payload: 1_000_000,
        };
        let f = Packet::Open(open.clone()).encode();
        assert_eq!(
            f,
            text(
                r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
            )
        );
        assert_eq!(Packet::decode(f).unwrap(), Packet::Open(open));
    }

    #[test]
    fn invalid_packets_are_errors() {
        assert_eq!(Packet::decode(text("")), Err(DecodeError::Empty));
        assert_eq!(
            Packet::decode(text("7")),
            Err(DecodeError::UnknownType(b'7'))
        );
        assert_eq!(
            Packet::decode(text("abc")),
            Err(DecodeError::UnknownType(b'a'))
        );
        assert!(matches!(
            Packet::decode(text("0{")),
            Err(DecodeError::InvalidOpen(_))
        ));
        assert!(matches!(
            Packet::decode(text(r#"0{"sid":"x"}"#)),
            Err(DecodeError::InvalidOpen(_))
        ));
    }

    #[test]
    fn message_data_is_a_slice_of_the_frame() {
        let frame = Bytes::from_static(b"4shared");
        let Packet::Message(Message::Text(data)) =
            Packet::decode(Frame::Text(frame.clone())).unwrap()
        else {
            panic!("not a text message")
        };
        assert_eq!(data.as_ptr(), frame[1..].as_ptr());
    }
}
