//! The engine's HTTP events as hooks: Node's `initial_headers`, `headers` and
//! `connection_error`.

use std::fmt;
use std::sync::Arc;

use http::request::Parts;
use http::{HeaderMap, StatusCode};

/// A hook that adds or changes headers of the engine's responses (Node's `initial_headers`
/// and `headers` events), called with the response headers and the request being answered.
///
/// It runs on the request's task and must not block. The headers already hold the engine's
/// own (content type, CORS, the sticky cookie on a handshake), so a hook may also replace
/// them; it runs only for answers that serve a session (the handshake, polls, posts, the
/// WebSocket `101`), not for preflights or refusals.
///
/// ```
/// use ferrio_engine::{EngineConfig, HeadersHook};
/// use http::{HeaderValue, header};
///
/// let mut config = EngineConfig::default();
/// config.initial_headers = Some(HeadersHook::new(|headers, _request| {
///     headers.append(header::SET_COOKIE, HeaderValue::from_static("theme=dark; Path=/"));
/// }));
/// ```
#[derive(Clone)]
pub struct HeadersHook(Arc<HeadersFn>);

/// The function behind a [`HeadersHook`].
type HeadersFn = dyn Fn(&mut HeaderMap, &Parts) + Send + Sync;

impl HeadersHook {
    /// Wraps a function of the response headers and the request.
    pub fn new(f: impl Fn(&mut HeaderMap, &Parts) + Send + Sync + 'static) -> Self {
        HeadersHook(Arc::new(f))
    }

    pub(crate) fn call(&self, headers: &mut HeaderMap, request: &Parts) {
        (self.0)(headers, request);
    }
}

impl fmt::Debug for HeadersHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HeadersHook(..)")
    }
}

/// A request the engine refused (Node's `connection_error` event): what was answered and the
/// request it answered.
#[derive(Debug)]
#[non_exhaustive]
pub struct ConnectionError<'a> {
    /// The status of the answer (400, 403, 413, ...).
    pub status: StatusCode,
    /// Node's error code, for the refusals Node has one for: 0 transport unknown, 1 session id
    /// unknown, 2 bad handshake method, 3 bad request, 4 forbidden, 5 unsupported protocol
    /// version. `None` for the others (413 payload too large, 408 body timeout, 503 too many
    /// sessions, 426 WebSocket version, 500 method on a session).
    pub code: Option<u8>,
    /// The message of the answer (Node's message for codes 0 to 5; for code 4 the message of
    /// the refusal).
    pub message: &'a str,
    /// The request (the body, if any, is not kept).
    pub request: &'a Parts,
}

/// A hook called for every request the engine refuses, before the refusal is sent (Node's
/// `connection_error`). It runs on the request's task and must not block.
///
/// ```
/// use ferrio_engine::{ConnectionErrorHook, EngineConfig};
///
/// let mut config = EngineConfig::default();
/// config.connection_error = Some(ConnectionErrorHook::new(|e| {
///     eprintln!("refused {} {}: {:?} {}", e.request.method, e.request.uri, e.code, e.message);
/// }));
/// ```
#[derive(Clone)]
pub struct ConnectionErrorHook(Arc<dyn Fn(&ConnectionError<'_>) + Send + Sync>);

impl ConnectionErrorHook {
    /// Wraps a function of the refusal.
    pub fn new(f: impl Fn(&ConnectionError<'_>) + Send + Sync + 'static) -> Self {
        ConnectionErrorHook(Arc::new(f))
    }

    pub(crate) fn call(&self, error: &ConnectionError<'_>) {
        (self.0)(error);
    }
}

impl fmt::Debug for ConnectionErrorHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConnectionErrorHook(..)")
    }
}
