//! Errors and reasons reported by the client.

use std::fmt;

use serde_json::Value;

/// Why [`ClientBuilder::build`](crate::ClientBuilder::build) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The URL is not `http(s)://` or `ws(s)://` with a host.
    #[error("invalid URL {0:?}")]
    InvalidUrl(String),
    /// A header name or value is invalid.
    #[error("invalid header {0:?}")]
    InvalidHeader(String),
    /// The transport list is empty.
    #[error("no transport allowed")]
    NoTransport,
    /// A root certificate, the client certificate or its key could not be used.
    #[error("invalid TLS configuration: {0}")]
    Tls(String),
    /// The proxy URL is not `http://host[:port]`.
    #[error("invalid proxy URL {0:?}")]
    InvalidProxy(String),
}

/// Why an emit failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The data could not be serialised.
    #[error("cannot serialise the event: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The event name is reserved (`connect`, `disconnect`, ...).
    #[error("reserved event name {0:?}")]
    ReservedEvent(String),
    /// The socket is disconnected and its offline buffer is full.
    #[error("offline buffer full")]
    BufferFull,
    /// Too many acknowledgements are already awaited on this socket.
    #[error("too many pending acknowledgements")]
    TooManyPendingAcks,
    /// The client was closed (its task has ended).
    #[error("client closed")]
    Closed,
}

/// Why an acknowledgement did not arrive.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// The emit itself failed.
    #[error(transparent)]
    Emit(#[from] EmitError),
    /// No ack within the timeout (after every retry, with `retries`).
    #[error("operation has timed out")]
    Timeout,
    /// The socket disconnected before the ack arrived (not with `retries`, which resends).
    #[error("socket has been disconnected")]
    Disconnected,
    /// The packet was removed from the offline buffer before it was sent
    /// ([`Socket::clear_send_buffer`](crate::Socket::clear_send_buffer)).
    #[error("removed from the offline buffer")]
    Discarded,
    /// The client was closed.
    #[error("client closed")]
    Closed,
}

/// Why a socket disconnected, with the reason strings of `socket.io-client`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The server disconnected the socket (`socket.disconnect()`); no reconnection.
    IoServerDisconnect,
    /// The client called [`Socket::disconnect`](crate::Socket::disconnect); no reconnection.
    IoClientDisconnect,
    /// The server sent nothing for `pingInterval + pingTimeout`.
    PingTimeout,
    /// The connection was closed (server restart, network cut, server `close`).
    TransportClose,
    /// The connection failed.
    TransportError,
    /// The server sent an invalid packet.
    ParseError,
}

impl DisconnectReason {
    /// The reason string of `socket.io-client`.
    pub fn as_str(&self) -> &'static str {
        match self {
            DisconnectReason::IoServerDisconnect => "io server disconnect",
            DisconnectReason::IoClientDisconnect => "io client disconnect",
            DisconnectReason::PingTimeout => "ping timeout",
            DisconnectReason::TransportClose => "transport close",
            DisconnectReason::TransportError => "transport error",
            DisconnectReason::ParseError => "parse error",
        }
    }

    /// Whether the client reconnects by itself after this reason (when reconnection is on).
    pub fn will_reconnect(&self) -> bool {
        !matches!(
            self,
            DisconnectReason::IoServerDisconnect | DisconnectReason::IoClientDisconnect
        )
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the transport said when a connection ended: the `details` argument of the
/// `disconnect` event of `socket.io-client` (`disconnect(reason, details)`), for `transport
/// close` and `transport error`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DisconnectDetails {
    /// The description of `engine.io-client`: `websocket connection closed`, `transport
    /// closed by the server`, `websocket error`, `xhr poll error` or `xhr post error`.
    pub description: String,
    /// The WebSocket close code (`1000`, `1005` for none, `1006` for a connection that ended
    /// without a close frame), or the HTTP status of a polling request that failed.
    pub code: Option<u16>,
    /// The underlying error, for logs.
    pub context: Option<String>,
}

impl DisconnectDetails {
    pub(crate) fn new(description: &str, code: Option<u16>, context: Option<String>) -> Self {
        DisconnectDetails {
            description: description.to_owned(),
            code,
            context,
        }
    }
}

/// Where a connection error comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectErrorKind {
    /// The server refused the namespace (CONNECT_ERROR: a middleware error or an unknown
    /// namespace). The socket does not reconnect.
    Server,
    /// The connection could not be opened (refused, TLS, HTTP error, malformed handshake).
    /// The client retries if reconnection is on.
    Transport,
    /// The handshake took longer than the `timeout` option.
    Timeout,
    /// Every reconnection attempt failed; the socket gives up.
    ReconnectFailed,
}

/// A failed connection attempt, as the `connect_error` event of `socket.io-client`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectError {
    /// Where it comes from.
    pub kind: ConnectErrorKind,
    /// The message (the server's `err.message` for [`ConnectErrorKind::Server`]).
    pub message: String,
    /// The server's `err.data`, if any.
    pub data: Option<Value>,
}

impl ConnectError {
    pub(crate) fn new(kind: ConnectErrorKind, message: impl Into<String>) -> Self {
        ConnectError {
            kind,
            message: message.into(),
            data: None,
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectError {}
