//! # ferrio-proto
//!
//! The sans-IO protocol core of Ferrio: Engine.IO v4 packets, polling payloads and the per-session
//! state machine (heartbeat, upgrade, close, bounded outbox).
//!
//! This crate performs no I/O. It has no sockets, no async runtime and no clock: bytes come in
//! and go out as [`bytes::Bytes`], and time is passed in as an [`std::time::Instant`]. The same
//! core therefore serves the Ferrio server, the Rust client, the fuzzers and deterministic tests
//! that drive a fake clock.
//!
//! It is not a server: see `ferrio-engine` for the hyper/tower transport layer.
//!
//! ```
//! use bytes::Bytes;
//! use ferrio_proto::engine::{Frame, Message, Packet, payload};
//!
//! // A polling body with a text message and a binary message.
//! let frames = payload::decode(Bytes::from_static(b"4hello\x1ebAQIDBA=="), 16).unwrap();
//! assert_eq!(
//!     Packet::decode(frames[0].clone()).unwrap(),
//!     Packet::Message(Message::Text(Bytes::from_static(b"hello")))
//! );
//! assert_eq!(frames[1], Frame::Binary(Bytes::from_static(&[1, 2, 3, 4])));
//! ```
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod engine;
pub mod socket;
pub mod value;
