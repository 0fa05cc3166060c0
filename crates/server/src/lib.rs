//! # ferrio
//!
//! A Socket.IO v5 server for Rust, wire-compatible with the official JavaScript `socket.io` 4
//! server and `socket.io-client` 4: namespaces (static and dynamic), rooms, events with
//! acknowledgements, binary payloads, broadcast operators, middlewares, and the Engine.IO v4
//! transports (WebSocket and HTTP long-polling with the upgrade), on hyper and tower.
//!
//! It is not a client (see `ferrio-client`) and not a cluster adapter by itself (the
//! [`Adapter`] trait is the plug-in point).
//!
//! ```no_run
//! use ferrio::{AckSender, Data, SocketIo, SocketRef};
//! use serde_json::Value;
//!
//! # async fn run() -> std::io::Result<()> {
//! let (svc, io) = SocketIo::builder().build_svc();
//! io.ns("/", async |socket: SocketRef, Data(auth): Data<Value>| {
//!     socket.emit("hello", &auth).ok();
//!     socket.on("chat", async |socket: SocketRef, Data(msg): Data<String>| {
//!         socket.broadcast().emit("chat", &msg).ok();
//!     });
//!     socket.on("ping", async |ack: AckSender| {
//!         ack.send("pong").ok();
//!     });
//! });
//! let listener = std::net::TcpListener::bind("127.0.0.1:3000")?;
//! ferrio::serve(listener, svc, std::future::pending()).await
//! # }
//! ```
//!
//! ## Ordering
//!
//! Handlers of one socket are started in the order the client sent the events, and then run
//! concurrently on that socket's task; a slow handler delays neither pings nor other sockets.
//! This holds through async packet middlewares too (an event waits for the one before it to be
//! through them). Register a socket's handlers in its connection handler before the first
//! `.await`.
//!
//! ## Handlers
//!
//! A handler is any `FnOnce + Clone` closure of extractors, so closures may capture clonable
//! state:
//!
//! ```
//! use ferrio::{Data, SocketIo, SocketRef};
//!
//! let io = SocketIo::builder().build();
//! let server = io.clone();
//! io.ns("/", async move |socket: SocketRef| {
//!     let server = server.clone();
//!     socket.on("shout", async move |Data(text): Data<String>| {
//!         server.emit("shout", &text.to_uppercase()).ok();
//!     });
//! });
//! ```
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

mod ack;
pub mod adapter;
mod client_bundle;
mod close;
pub mod cluster;
mod conn;
mod handler;
mod io;
mod layer;
mod listeners;
mod ns;
mod operators;
mod recovery;
mod server_event;
mod socket;
mod stats;
mod worker;

pub use ack::{AckCallback, AckError, AckFuture, AckSender, AckSink, AckStream};
pub use adapter::{
    Adapter, AdapterError, AdapterFactory, AdapterFuture, BroadcastFlags, BroadcastOptions,
    BroadcastPacket, Gathered, HandshakeInfo, LocalAdapter, LocalNamespace, Room, RoomEvent,
    SocketInfo,
};
pub use client_bundle::{CLIENT_FILES, ClientBundle, ClientBundleError};
pub use close::Closing;
pub use conn::{Conn, IoHandler};
/// The Engine.IO layer under the server: its settings, the tower service, and the types of the
/// [`EngineHandler`] that [`IoHandler`] implements.
pub use ferrio_engine::{
    AllowFuture, AllowRequest, AllowedOrigins, BoxError, CloseReason, ConnectionError,
    ConnectionErrorHook, CookieConfig, CookiePriority, CorsConfig, EngineBody, EngineConfig,
    EngineHandler, EngineService, EngineSocket, HeadersHook, HttpCompression, InvalidCookie,
    InvalidOriginPattern, Message as EngineMessage, NotFound, OriginPredicate, OriginRule,
    PerMessageDeflate, Rejection as HandshakeRejection, RemoteAddr, RequestBody, ResponseFuture,
    SameSite, SendError as EngineSendError, SendOptions, SessionConfig, Sid, Transports, serve,
};
pub use ferrio_proto::socket::{Args, DecodeLimits, Encoded, Parser};
/// The dynamic value of `socket.data`, cluster messages and server-side events (binary
/// included), with its conversions from and to Rust types.
pub use ferrio_proto::value;
pub use handler::{
    ConnectHandler, ConnectParts, Data, DisconnectDescription, DisconnectHandler, DisconnectParts,
    Event, Extension, FromConnectParts, FromDisconnectParts, FromMessageParts, HandlerOutput,
    HttpExtension, MaybeHttpExtension, MessageHandler, MessageParts, Rejection, State, TryData,
};
pub use io::{NamespaceBuilder, SocketIo, SocketIoBuilder, SocketIoConfig};
pub use layer::{SocketIoFuture, SocketIoLayer, SocketIoService};
pub use listeners::ListenerId;
pub use ns::{ConnectError, MiddlewareFuture};
pub use operators::{BroadcastOperator, IntoRooms, RemoteSocket};
pub use recovery::RecoveryConfig;
pub use server_event::ServerEvent;
pub use socket::{
    DisconnectReason, Extensions, Handshake, PacketMiddlewareFuture, Socket, SocketEmitter,
    SocketRef,
};
pub use stats::ServerStats;

/// Why an emit failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The client's queue was full: it is too slow and was disconnected (or, for volatile
    /// emits, the packet was dropped).
    #[error("client queue full")]
    Full,
    /// The socket is disconnected.
    #[error("socket closed")]
    Closed,
    /// The socket already waits for `max_pending_acks` acknowledgements (see
    /// [`SocketIoConfig::max_pending_acks`]).
    #[error("too many acknowledgements pending")]
    TooManyPendingAcks,
    /// The data could not be serialised.
    #[error("cannot serialise the payload: {0}")]
    Encode(#[from] serde_json::Error),
    /// The event name is reserved (`connect`, `disconnect`, ...): the client would drop the
    /// connection, so it is refused, as Node throws.
    #[error("\"{0}\" is a reserved event name")]
    ReservedEvent(String),
    /// Local sockets got the broadcast, but it could not be handed to the cluster.
    #[error("cluster: {0}")]
    Cluster(#[from] AdapterError),
}

impl From<ferrio_engine::SendError> for SendError {
    fn from(e: ferrio_engine::SendError) -> Self {
        match e {
            ferrio_engine::SendError::Full => SendError::Full,
            _ => SendError::Closed,
        }
    }
}
