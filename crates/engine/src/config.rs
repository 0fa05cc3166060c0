//! Engine.IO server settings.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ferrio_proto::engine::SessionConfig;

use crate::{
    ConnectionErrorHook, CookieConfig, CorsConfig, Handshake, HeadersHook, HttpCompression,
    PerMessageDeflate,
};

/// Settings of an Engine.IO server. The defaults are Node's `engine.io` 6 defaults, except
/// that browser `Origin`s are checked (same origin only) on every transport.
#[derive(Clone)]
#[non_exhaustive]
pub struct EngineConfig {
    /// Path prefix the server answers at; requests elsewhere pass through to the inner service.
    /// Normalised to end with `/`. Default `/engine.io/`.
    pub path: String,
    /// Heartbeat, upgrade and buffer settings of each session (see [`SessionConfig`]).
    pub session: SessionConfig,
    /// Which transports clients may use. Default both.
    pub transports: Transports,
    /// Which browser origins may connect (CORS on polling, `Origin` check on both transports).
    pub cors: CorsConfig,
    /// The optional sticky-session cookie set on the handshake. Default none.
    pub cookie: Option<CookieConfig>,
    /// An async hook that accepts or refuses each handshake. Default none (accept all).
    pub allow_request: Option<AllowRequest>,
    /// Compression of polling responses (Node's `httpCompression`). Default on: gzip,
    /// deflate or br above 1024 bytes, as the client accepts. `None` turns it off.
    pub http_compression: Option<HttpCompression>,
    /// permessage-deflate on WebSocket connections (Node's `perMessageDeflate`). Default
    /// `None` (off), as on Node. See [`PerMessageDeflate`] for what it costs per connection.
    pub per_message_deflate: Option<PerMessageDeflate>,
    /// Headers added to the handshake response: the first polling answer or the WebSocket
    /// `101` (Node's `initial_headers` event). Runs before [`EngineConfig::headers`].
    /// Default none.
    pub initial_headers: Option<HeadersHook>,
    /// Headers added to every response that serves a session, the handshake included (Node's
    /// `headers` event). Default none.
    pub headers: Option<HeadersHook>,
    /// Called for every request the engine refuses (Node's `connection_error` event).
    /// Default none.
    pub connection_error: Option<ConnectionErrorHook>,
    /// Buffered WebSocket output past which the driver writes before queueing more frames
    /// (frames are otherwise written once per wake-up). Default 128 KiB.
    pub ws_write_buffer_size: usize,
    /// Most bytes of WebSocket output buffered for one connection; past it the session
    /// closes with a transport error. Default 4 MiB.
    pub ws_max_write_buffer_size: usize,
    /// Most live sessions; past it handshakes are refused with 503. Default 1 000 000.
    pub max_sessions: usize,
    /// How long a session closed by the server waits for the client's next poll to hand over
    /// its last packets (the JS client polls again at once), and for a WebSocket close to
    /// complete. Default 2 s.
    pub close_timeout: Duration,
    /// How long the body of a polling POST may take to arrive once its headers are in (the
    /// headers have their own 30 s in [`crate::serve`]). Past it the request is answered
    /// `408`, the connection is closed and so is the session (`transport error`). Default
    /// 30 s.
    pub body_read_timeout: Duration,
    /// Whether Engine.IO v3 clients (`socket.io-client` 2.x, `EIO=3`) are accepted (Node's
    /// `allowEIO3`). Off, such a handshake is refused with `400`
    /// `{"code":5,"message":"Unsupported protocol version"}`, as is one with no or another
    /// `EIO` value either way. JSONP polling (`j=`) is not supported. Default false.
    pub allow_eio3: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            path: "/engine.io/".to_owned(),
            session: SessionConfig::default(),
            transports: Transports::default(),
            cors: CorsConfig::default(),
            cookie: None,
            allow_request: None,
            http_compression: Some(HttpCompression::default()),
            per_message_deflate: None,
            initial_headers: None,
            headers: None,
            connection_error: None,
            ws_write_buffer_size: 128 * 1024,
            ws_max_write_buffer_size: 4 * 1024 * 1024,
            max_sessions: 1_000_000,
            close_timeout: Duration::from_secs(2),
            body_read_timeout: Duration::from_secs(30),
            allow_eio3: false,
        }
    }
}

impl fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineConfig")
            .field("path", &self.path)
            .field("session", &self.session)
            .field("transports", &self.transports)
            .field("cors", &self.cors)
            .field("cookie", &self.cookie)
            .field("allow_request", &self.allow_request.is_some())
            .field("http_compression", &self.http_compression)
            .field("per_message_deflate", &self.per_message_deflate)
            .field("initial_headers", &self.initial_headers.is_some())
            .field("headers", &self.headers.is_some())
            .field("connection_error", &self.connection_error.is_some())
            .field("max_sessions", &self.max_sessions)
            .field("allow_eio3", &self.allow_eio3)
            .finish_non_exhaustive()
    }
}

impl EngineConfig {
    /// The path, normalised to start and end with `/`.
    pub(crate) fn normalised_path(&self) -> String {
        let trimmed = self.path.trim_end_matches('/');
        if trimmed.starts_with('/') {
            format!("{trimmed}/")
        } else {
            format!("/{trimmed}/")
        }
    }
}

/// The transports clients may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transports {
    /// HTTP long-polling.
    pub polling: bool,
    /// WebSocket (direct, or as an upgrade from polling).
    pub websocket: bool,
}

impl Default for Transports {
    fn default() -> Self {
        Transports {
            polling: true,
            websocket: true,
        }
    }
}

/// A handshake refused by [`AllowRequest`]: answered `403 {"code":4,"message":...}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The message sent to the client. Node's default is `Forbidden`.
    pub message: String,
}

impl Rejection {
    /// A rejection with Node's default message, `Forbidden`.
    pub fn forbidden() -> Self {
        Rejection {
            message: "Forbidden".to_owned(),
        }
    }
}

/// The future an [`AllowRequest`] hook returns.
pub type AllowFuture = Pin<Box<dyn Future<Output = Result<(), Rejection>> + Send>>;

/// An async hook called for every handshake (polling or WebSocket) before a session exists.
#[derive(Clone)]
pub struct AllowRequest(pub(crate) Arc<dyn Fn(Arc<Handshake>) -> AllowFuture + Send + Sync>);

impl AllowRequest {
    /// Wraps an async function of the handshake request.
    pub fn new<F, Fut>(f: F) -> Self
    where
        F: Fn(Arc<Handshake>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Rejection>> + Send + 'static,
    {
        AllowRequest(Arc::new(move |h| Box::pin(f(h))))
    }
}
