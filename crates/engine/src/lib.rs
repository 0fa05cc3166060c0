//! # ferrio-engine
//!
//! The Engine.IO v4 server of Ferrio, on hyper 1 and tower: HTTP long-polling and WebSocket
//! transports, the upgrade between them, heartbeats, Node's HTTP errors, CORS (the npm `cors`
//! package's headers) and `Origin` checks, the sticky cookie, compressed polling answers,
//! Node's `initial_headers`/`headers`/`connection_error` events as hooks, and a bounded
//! outbound queue per session.
//!
//! It knows nothing of Socket.IO: the layer above implements [`EngineHandler`] and talks to
//! each session through its [`EngineSocket`]. Each session is owned by one driver task that
//! runs the sans-IO state machine of `ferrio-proto`.
//!
//! ```no_run
//! use ferrio_engine::{Engine, EngineConfig, EngineHandler, EngineSocket, Frame, Message};
//! use ferrio_engine::CloseReason;
//!
//! /// Sends every message back.
//! struct Echo;
//!
//! impl EngineHandler for Echo {
//!     type Session = ();
//!     fn on_connect(&self, _socket: &EngineSocket) {}
//!     fn on_message(&self, _: &mut (), socket: &EngineSocket, message: Message) {
//!         let frame = match message {
//!             Message::Text(t) => Frame::text_message(std::str::from_utf8(&t).unwrap_or("")),
//!             Message::Binary(b) => Frame::Binary(b),
//!         };
//!         let _ = socket.send(frame);
//!     }
//!     fn on_disconnect(&self, _: (), _socket: &EngineSocket, _reason: CloseReason) {}
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let engine = Engine::new(EngineConfig::default(), Echo);
//! let listener = std::net::TcpListener::bind("127.0.0.1:3000")?;
//! ferrio_engine::serve(listener, engine.service(), std::future::pending()).await
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

mod body;
mod compression;
mod config;
mod cookie;
mod cors;
mod driver;
mod engine;
mod errors;
mod handler;
mod hooks;
mod raw_echo;
mod serve;
mod service;
mod socket;
mod ws;

pub use body::{BoxError, EngineBody};
pub use compression::HttpCompression;
pub use config::{AllowFuture, AllowRequest, EngineConfig, Rejection, Transports};
pub use cookie::{CookieConfig, CookiePriority, InvalidCookie, SameSite};
pub use cors::{AllowedOrigins, CorsConfig, InvalidOriginPattern, OriginPredicate, OriginRule};
pub use engine::Engine;
pub use ferrio_proto::engine::{
    CloseReason, Frame, Message, Protocol, SendError, SessionConfig, Sid, TransportKind,
};
pub use handler::EngineHandler;
pub use hooks::{ConnectionError, ConnectionErrorHook, HeadersHook};
#[doc(hidden)]
pub use raw_echo::raw_echo;
pub use serve::{RequestBody, serve};
pub use service::{EngineLayer, EngineService, NotFound, RemoteAddr, ResponseFuture};
pub use socket::{EngineSocket, Handshake, SendOptions};
pub use ws::deflate::PerMessageDeflate;
