//! Engine.IO protocol v4: packets, the polling payload codec, session ids and the session state
//! machine.

pub mod client;
mod packet;
pub mod payload;
mod session;
mod sid;

pub use packet::{DecodeError, Frame, Message, OpenPacket, Packet, PacketType};
pub use session::{
    CloseReason, Event, NOOP_DELAY, ProbeReply, SendError, Session, SessionConfig, TransportKind,
};
pub use sid::{Sid, SidError};
