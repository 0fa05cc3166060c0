//! Socket.IO protocol v5: packets, the header codec, binary attachments and argument
//! (de)serialisation; [`v4`] has what differs in protocol v4 (`socket.io-client` 2.x).

mod args;
mod binary;
pub mod msgpack;
mod packet;
mod parser;
pub mod v4;

pub use args::{ArgList, Args, ArgsError};
pub use packet::{
    DecodeLimits, Decoder, Encoded, Error, MAX_ACK_ID, MAX_NAMESPACE_LEN, Packet, PacketData,
    PacketType, RESERVED_EVENTS, encode_ack, encode_connect, encode_connect_empty,
    encode_connect_error, encode_disconnect, encode_event,
};
pub use parser::Parser;
