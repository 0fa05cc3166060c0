//! Engine.IO protocol v4: packets, the polling payload codec, session ids and the session state
//! machine; [`v3`] has the framing of protocol v3 (`socket.io-client` 2.x).

pub mod client;
mod packet;
pub mod payload;
mod session;
mod sid;
pub mod v3;

pub use packet::{DecodeError, Frame, Message, OpenPacket, Packet, PacketType};
pub use session::{
    CloseReason, Event, NOOP_DELAY, ProbeReply, Protocol, SendError, Session, SessionConfig,
    TransportKind,
};
pub use sid::{Sid, SidError};
