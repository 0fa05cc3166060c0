//! # ferrio-client
//!
//! A Socket.IO v4 client for Rust: the equivalent of the official `socket.io-client` 4, for
//! services, CLIs, bots and load tools that talk to any Socket.IO v4 server (Node's or
//! Ferrio's).
//!
//! - One [`Client`] (the official `Manager`) holds one Engine.IO connection, shared by every
//!   namespace [`Socket`] (`client.socket("/chat")`).
//! - HTTP long-polling, WebSocket, or polling upgraded to WebSocket (the default); TLS via
//!   rustls; cookies kept across requests (sticky sessions).
//! - Heartbeat (pings answered, a silent server detected), reconnection with the official
//!   exponential backoff, and every active namespace connected again after a reconnection.
//! - Events with serde-typed payloads, acks both ways ([`Socket::emit_with_ack`], and
//!   [`Event::ack`] for the server's requests), binary attachments (`bytes::Bytes`),
//!   `volatile` emits, an offline buffer, at-least-once `retries`, the client side of
//!   connection state recovery, and events as a [`Stream`](futures_util::Stream).
//! - The connection's own events ([`ManagerEvent`]: open, close, ping, reconnection
//!   attempts, ...), an HTTP proxy, client certificates, cookies with `with_credentials`.
//! - The connection's task never waits on a write: a server that stops reading delays
//!   nothing else, and is given up after `pingInterval + pingTimeout` without progress.
//!
//! It is not a server, and it speaks only Engine.IO v4 / Socket.IO v5 (servers ≥ 3.0).
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use ferrio_client::{Client, SocketEvent};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::builder("http://localhost:3000")
//!     .auth(serde_json::json!({ "token": "abc" }))
//!     .build()?;
//! // Connects by itself (`auto_connect`, the default); listeners added now see every event.
//! let socket = client.socket("/chat");
//!
//! // Callbacks: each runs on its own task.
//! socket.on("message", |event| async move {
//!     if let Ok(text) = event.data::<String>() {
//!         println!("message: {text}");
//!     }
//!     // Answer the server if it asked for an ack.
//!     let _ = event.ack(&"thanks").await;
//! });
//!
//! // Or a stream, for a loop.
//! let mut events = socket.events();
//! while let Some(event) = events.next().await {
//!     match event {
//!         SocketEvent::Connect(info) => {
//!             socket.emit("message", &"hello").await?;
//!             let answer = socket
//!                 .emit_with_ack("sum", &(1, 2))
//!                 .timeout(Duration::from_secs(5))
//!                 .await?;
//!             println!("{} joined; 1 + 2 = {}", info.id, answer.data::<i64>()?);
//!         }
//!         SocketEvent::Disconnect(reason) => println!("disconnected: {reason}"),
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod backoff;
mod bounded;
mod client;
mod config;
mod driver;
mod error;
mod events;
mod proxy;
mod socket;
mod tls;
mod transport;

pub use client::Client;
pub use config::{Auth, ClientBuilder, Transport};
pub use error::{
    AckError, BuildError, ConnectError, ConnectErrorKind, DisconnectDetails, DisconnectReason,
    EmitError,
};
pub use events::{ManagerEvent, ManagerEventStream, PacketInfo, PacketKind};
pub use ferrio_proto::socket::{Args, ArgsError, Parser};
pub use socket::{
    AckResponse, AckSender, ConnectInfo, EmitWithAck, Emitter, Event, EventStream, ListenerId,
    OutgoingEvent, Socket, SocketEvent,
};
