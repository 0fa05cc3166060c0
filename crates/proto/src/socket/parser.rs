//! The packet format of a server or a client (Node's `parser` option): the default
//! `socket.io-parser` text format with binary attachments, or `socket.io-msgpack-parser`.
//! Both sides of a connection must use the same one.

use serde::Serialize;
use serde::ser::Error as _;

use super::msgpack;
use super::packet::{self, Encoded};
use crate::value::Value;

/// Which packet format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Parser {
    /// `socket.io-parser` (protocol 5): text packets, binary as attachments.
    #[default]
    Default,
    /// `socket.io-msgpack-parser` 3: one binary msgpack message per packet.
    MsgPack,
}

fn json_err(e: crate::value::ValueError) -> serde_json::Error {
    serde_json::Error::custom(e)
}

impl Parser {
    /// EVENT `[name, ...args]`.
    pub fn encode_event<T: Serialize + ?Sized>(
        self,
        nsp: &str,
        id: Option<u64>,
        name: &str,
        data: &T,
    ) -> Result<Encoded, serde_json::Error> {
        match self {
            Parser::Default => packet::encode_event(nsp, id, name, data),
            Parser::MsgPack => msgpack::encode_event(nsp, id, name, data).map_err(json_err),
        }
    }

    /// ACK `[...args]`.
    pub fn encode_ack<T: Serialize + ?Sized>(
        self,
        nsp: &str,
        id: u64,
        data: &T,
    ) -> Result<Encoded, serde_json::Error> {
        match self {
            Parser::Default => packet::encode_ack(nsp, id, data),
            Parser::MsgPack => msgpack::encode_ack(nsp, id, data).map_err(json_err),
        }
    }

    /// CONNECT with a payload (the server's reply, or a client's auth), or without.
    pub fn encode_connect(self, nsp: &str, data: Option<&serde_json::Value>) -> Encoded {
        match (self, data) {
            (Parser::Default, Some(d)) => packet::encode_connect(nsp, d),
            (Parser::Default, None) => packet::encode_connect_empty(nsp),
            (Parser::MsgPack, d) => msgpack::encode_connect(nsp, d.cloned().map(Value::from)),
        }
    }

    /// CONNECT_ERROR `{message, data?}`.
    pub fn encode_connect_error(
        self,
        nsp: &str,
        message: &str,
        data: Option<&serde_json::Value>,
    ) -> Encoded {
        match self {
            Parser::Default => packet::encode_connect_error(nsp, message, data),
            Parser::MsgPack => msgpack::encode_connect_error(nsp, message, data),
        }
    }

    /// DISCONNECT.
    pub fn encode_disconnect(self, nsp: &str) -> Encoded {
        match self {
            Parser::Default => packet::encode_disconnect(nsp),
            Parser::MsgPack => msgpack::encode_disconnect(nsp),
        }
    }

    /// Whether a packet of this format starts with a text message.
    pub fn is_text(self) -> bool {
        self == Parser::Default
    }
}
