//! The two transports: HTTP long-polling (hyper) and WebSocket (tokio-tungstenite), with the
//! cookie jar and TLS they share. Nothing here is public: the public API never shows hyper,
//! rustls or tungstenite types.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Sink, SinkExt, StreamExt};
use http::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use ferrio_proto::engine::{Frame, Sid};

use crate::config::{Config, Transport};
use crate::error::BuildError;
use crate::proxy::{self, Proxy};
use crate::tls;

/// A transport failure, for logs (it becomes the `transport error` reason), with the HTTP
/// status when the server answered with an error.
#[derive(Debug, Clone)]
pub(crate) struct TransportError(pub(crate) String, pub(crate) Option<u16>);

impl TransportError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        TransportError(message.into(), None)
    }
}

impl<E: std::error::Error> From<E> for TransportError {
    /// The error and its sources (`client error (Connect): invalid peer certificate: ...`).
    fn from(e: E) -> Self {
        let mut msg = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            source = s.source();
        }
        TransportError(msg, None)
    }
}

/// A cookie jar for one server: `name=value` pairs from `Set-Cookie`, sent back on every
/// request (so a load balancer's sticky-session cookie works). Attributes are ignored: the
/// client talks to one origin; an expired (`Max-Age=0`) cookie is removed.
#[derive(Debug, Default)]
pub(crate) struct CookieJar {
    cookies: BTreeMap<String, String>,
}

impl CookieJar {
    pub(crate) fn store(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            let mut parts = value.split(';');
            let Some((name, val)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let name = name.trim();
            if name.is_empty() || self.cookies.len() >= 64 && !self.cookies.contains_key(name) {
                continue;
            }
            let expired = parts.any(|a| {
                let a = a.trim().to_ascii_lowercase();
                a == "max-age=0" || a.starts_with("max-age=-")
            });
            if expired {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), val.trim().to_owned());
            }
        }
    }

    pub(crate) fn header(&self) -> Option<HeaderValue> {
        if self.cookies.is_empty() {
            return None;
        }
        let s: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        HeaderValue::try_from(s.join("; ")).ok()
    }
}

/// Everything needed to reach the server, shared by both transports.
#[derive(Clone)]
pub(crate) struct Endpoint {
    config: Arc<Config>,
    http: HyperClient<HttpsConnector<proxy::Connector>, Full<Bytes>>,
    tls: Arc<rustls::ClientConfig>,
    proxy: Option<Arc<Proxy>>,
    cookies: Option<Arc<Mutex<CookieJar>>>,
    cache_buster: Arc<AtomicU64>,
}

type WsStream = WebSocketStream<MaybeTlsStream<Counted>>;

impl Endpoint {
    pub(crate) fn new(config: Arc<Config>) -> Result<Self, BuildError> {
        let tls = tls::client_config(&config)?;
        let proxy = config.proxy.clone().map(Arc::new);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(proxy::Connector {
                proxy: proxy.clone(),
            });
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        // The cookie jar of `engine.io-client` in Node exists only with `withCredentials`.
        let cookies = config
            .with_credentials
            .then(|| Arc::new(Mutex::new(CookieJar::default())));
        Ok(Endpoint {
            config,
            http,
            tls: Arc::new(tls),
            proxy,
            cookies,
            cache_buster: Arc::default(),
        })
    }

    /// The Engine.IO URL for `transport`, with the session id once known.
    pub(crate) fn uri(&self, transport: Transport, sid: Option<Sid>) -> String {
        let c = &self.config;
        let scheme = match (transport, c.secure) {
            (Transport::Polling, false) => "http",
            (Transport::Polling, true) => "https",
            (Transport::WebSocket, false) => "ws",
            (Transport::WebSocket, true) => "wss",
        };
        let authority = c.url.authority().map_or("", |a| a.as_str());
        let mut url = format!("{scheme}://{authority}{}?", c.path);
        for (k, v) in &c.query {
            url.push_str(&encode_component(k));
            url.push('=');
            url.push_str(&encode_component(v));
            url.push('&');
        }
        url.push_str("EIO=4&transport=");
        url.push_str(match transport {
            Transport::Polling => "polling",
            Transport::WebSocket => "websocket",
        });
        if transport == Transport::Polling {
            let t = self.cache_buster.fetch_add(1, Ordering::Relaxed);
            url.push_str(&format!("&t={t:x}"));
        }
        if let Some(sid) = sid {
            url.push_str("&sid=");
            url.push_str(sid.as_str());
        }
        url
    }

    /// A polling GET: the response body. Bounded by `timeout` when given (the handshake, or
    /// `request_timeout`); otherwise a GET waits as long as the server holds it (the
    /// heartbeat bounds that).
    pub(crate) async fn get(
        &self,
        sid: Option<Sid>,
        timeout: Option<Duration>,
    ) -> Result<Bytes, TransportError> {
        let uri = self.uri(Transport::Polling, sid);
        let fut = self.request(Method::GET, &uri, Bytes::new());
        match timeout {
            None => fut.await,
            Some(t) => match tokio::time::timeout(t, fut).await {
                Ok(r) => r,
                Err(_) => Err(TransportError::new("polling GET timed out")),
            },
        }
    }

    /// A polling POST of `body`, bounded by `timeout`.
    pub(crate) async fn post(
        &self,
        sid: Sid,
        body: Bytes,
        timeout: Duration,
    ) -> Result<(), TransportError> {
        let uri = self.uri(Transport::Polling, Some(sid));
        let fut = self.request(Method::POST, &uri, body);
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r.map(drop),
            Err(_) => Err(TransportError::new("polling POST timed out")),
        }
    }

    async fn request(
        &self,
        method: Method,
        uri: &str,
        body: Bytes,
    ) -> Result<Bytes, TransportError> {
        let uri: Uri = uri.parse()?;
        let mut req = Request::builder().method(method.clone()).uri(uri);
        if let Some(h) = req.headers_mut() {
            for (k, v) in &self.config.headers {
                h.append(k, v.clone());
            }
            if method == Method::POST {
                h.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain;charset=UTF-8"),
                );
            }
            if let Some(c) = self.cookie_header() {
                h.insert(COOKIE, c);
            }
        }
        let req = req.body(Full::new(body))?;
        let res = self.http.request(req).await?;
        let (parts, body) = res.into_parts();
        self.store_cookies(&parts.headers);
        let body = Limited::new(body, self.config.max_message_size)
            .collect()
            .await
            .map_err(|e| TransportError::new(format!("reading the response: {e}")))?
            .to_bytes();
        if parts.status != StatusCode::OK {
            return Err(TransportError(
                format!(
                    "HTTP {} {}",
                    parts.status,
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ),
                Some(parts.status.as_u16()),
            ));
        }
        Ok(body)
    }

    /// Opens a WebSocket (a direct connection, or a probe with `sid`), bounded by `timeout`.
    pub(crate) async fn websocket(&self, sid: Option<Sid>) -> Result<WsConn, TransportError> {
        match tokio::time::timeout(self.config.timeout, self.websocket_inner(sid)).await {
            Ok(r) => r,
            Err(_) => Err(TransportError::new("WebSocket connect timed out")),
        }
    }

    async fn websocket_inner(&self, sid: Option<Sid>) -> Result<WsConn, TransportError> {
        let mut req = self.uri(Transport::WebSocket, sid).into_client_request()?;
        for (k, v) in &self.config.headers {
            req.headers_mut().append(k, v.clone());
        }
        if let Some(c) = self.cookie_header() {
            req.headers_mut().insert(COOKIE, c);
        }
        let mut ws_config = WebSocketConfig::default();
        ws_config.max_message_size = Some(self.config.max_message_size);
        ws_config.max_frame_size = Some(self.config.max_message_size);
        let host = proxy::host_of(&self.config.url).unwrap_or("localhost");
        let port = self
            .config
            .url
            .port_u16()
            .unwrap_or(if self.config.secure { 443 } else { 80 });
        let tcp = proxy::connect(self.proxy.as_deref(), host, port).await?;
        let written = Arc::new(AtomicU64::new(0));
        let stream = Counted {
            inner: tcp,
            written: written.clone(),
        };
        let connector = Connector::Rustls(self.tls.clone());
        let (stream, response) = tokio_tungstenite::client_async_tls_with_config(
            req,
            stream,
            Some(ws_config),
            Some(connector),
        )
        .await?;
        self.store_cookies(response.headers());
        let seen = written.load(Ordering::Relaxed);
        Ok(WsConn {
            stream,
            out: None,
            dirty: false,
            written,
            seen,
            stalled_since: None,
        })
    }

    fn cookie_header(&self) -> Option<HeaderValue> {
        self.cookies
            .as_ref()?
            .lock()
            .ok()
            .and_then(|jar| jar.header())
    }

    fn store_cookies(&self, headers: &HeaderMap) {
        if let Some(jar) = &self.cookies
            && let Ok(mut jar) = jar.lock()
        {
            jar.store(headers);
        }
    }
}

/// What a WebSocket read produced.
pub(crate) enum WsRead {
    Frame(Frame),
    Closed(Option<u16>),
    Error(TransportError),
}

/// Turns one WebSocket message into an Engine.IO frame.
fn ws_read(msg: Option<Result<WsMessage, tungstenite::Error>>) -> Option<WsRead> {
    Some(match msg {
        None => WsRead::Closed(None),
        Some(Ok(WsMessage::Close(frame))) => {
            WsRead::Closed(Some(frame.map_or(1005, |f| u16::from(f.code))))
        }
        // A connection that ends without a close frame (a killed server) is a close too, as
        // the `close` event of a browser WebSocket (code 1006) for `engine.io-client`.
        Some(Err(
            tungstenite::Error::ConnectionClosed
            | tungstenite::Error::AlreadyClosed
            | tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            ),
        )) => WsRead::Closed(Some(1006)),
        Some(Err(tungstenite::Error::Io(e)))
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            WsRead::Closed(Some(1006))
        }
        Some(Err(e)) => WsRead::Error(e.into()),
        Some(Ok(WsMessage::Text(t))) => WsRead::Frame(Frame::Text(Bytes::from(t))),
        Some(Ok(WsMessage::Binary(b))) => WsRead::Frame(Frame::Binary(b)),
        // Pings are answered by tungstenite; pongs and raw frames carry nothing.
        Some(Ok(_)) => return None,
    })
}

/// Converts a frame for the wire. Frame text is UTF-8 by construction (our encoder writes
/// JSON); a broken one is an error rather than a silent drop.
fn to_message(frame: Frame) -> Result<WsMessage, TransportError> {
    Ok(match frame {
        Frame::Text(t) => match tungstenite::Utf8Bytes::try_from(t) {
            Ok(s) => WsMessage::Text(s),
            Err(_) => return Err(TransportError::new("non UTF-8 text frame")),
        },
        Frame::Binary(b) => WsMessage::Binary(b),
    })
}

/// One WebSocket, written without ever waiting: frames go into tungstenite's write buffer
/// (`write_buffer_size`, 128 KiB, plus at most one message) only while it is ready, and one
/// more waits in `out`; the rest stays in the session's bounded outbox. It also tracks since
/// when output has been waiting without a single byte reaching the socket (a stall).
pub(crate) struct WsConn {
    stream: WsStream,
    /// A frame taken from the session, waiting for the sink to be ready.
    out: Option<Frame>,
    /// Written but not flushed yet.
    dirty: bool,
    /// Bytes the socket has accepted so far (shared with [`Counted`]).
    written: Arc<AtomicU64>,
    seen: u64,
    stalled_since: Option<Instant>,
}

impl WsConn {
    /// The next frame, or the end of the socket. Reads never wait on writes: tungstenite
    /// queues the answers to WebSocket pings and flushes them when it can.
    pub(crate) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<WsRead> {
        loop {
            let msg = ready!(self.stream.poll_next_unpin(cx));
            if let Some(r) = ws_read(msg) {
                return Poll::Ready(r);
            }
        }
    }

    /// Writes the frames `next` yields while the socket takes them, then flushes; returns
    /// whether a frame was written. Never waits: what the socket cannot take now stays with
    /// the caller (at most one frame here), and the task is woken when it can.
    pub(crate) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        now: Instant,
        mut next: impl FnMut() -> Option<Frame>,
    ) -> Result<bool, TransportError> {
        let mut progress = false;
        loop {
            if self.out.is_none() {
                self.out = next();
            }
            if self.out.is_none() {
                break;
            }
            match Pin::new(&mut self.stream).poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(e.into()),
                Poll::Pending => break,
            }
            let Some(frame) = self.out.take() else { break };
            Pin::new(&mut self.stream).start_send(to_message(frame)?)?;
            self.dirty = true;
            progress = true;
        }
        if self.dirty {
            match Pin::new(&mut self.stream).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.dirty = false,
                Poll::Ready(Err(e)) => return Err(e.into()),
                Poll::Pending => {}
            }
        }
        self.track(now);
        Ok(progress)
    }

    /// Since when output has been waiting with no byte written, if it is.
    pub(crate) fn stalled_since(&mut self, now: Instant) -> Option<Instant> {
        self.track(now);
        self.stalled_since
    }

    /// Notes whether output waits, and restarts the stall clock when bytes moved (reads
    /// may flush too: tungstenite answers WebSocket pings from there).
    fn track(&mut self, now: Instant) {
        let written = self.written.load(Ordering::Relaxed);
        if self.out.is_none() && !self.dirty {
            self.stalled_since = None;
        } else if written != self.seen || self.stalled_since.is_none() {
            self.stalled_since = Some(now);
        }
        self.seen = written;
    }

    /// Writes what is left and `rest`, then closes the socket; bounded by `timeout`.
    pub(crate) async fn finish(mut self, rest: Vec<Frame>, timeout: Duration) {
        let write = async {
            for f in self.out.take().into_iter().chain(rest) {
                self.stream.feed(to_message(f)?).await?;
            }
            self.stream.close(None).await?;
            Ok::<(), TransportError>(())
        };
        let _ = tokio::time::timeout(timeout, write).await;
    }
}

/// The TCP stream under a WebSocket, counting the bytes the kernel accepted: the driver
/// tells a slow socket (bytes still move) from a stalled one (none do).
pub(crate) struct Counted {
    inner: TcpStream,
    written: Arc<AtomicU64>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &r {
            self.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Percent-encodes a query component (RFC 3986 unreserved characters kept).
fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_jar_keeps_name_value_pairs() {
        let mut jar = CookieJar::default();
        assert_eq!(jar.header(), None);
        let mut h = HeaderMap::new();
        h.append(
            SET_COOKIE,
            HeaderValue::from_static("io=abc; Path=/; HttpOnly"),
        );
        h.append(SET_COOKIE, HeaderValue::from_static("lb=node-2"));
        jar.store(&h);
        assert_eq!(jar.header().unwrap(), "io=abc; lb=node-2");
        let mut h = HeaderMap::new();
        h.append(SET_COOKIE, HeaderValue::from_static("io=gone; Max-Age=0"));
        h.append(SET_COOKIE, HeaderValue::from_static("junk"));
        jar.store(&h);
        assert_eq!(jar.header().unwrap(), "lb=node-2");
    }

    #[test]
    fn query_components_are_percent_encoded() {
        assert_eq!(encode_component("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(encode_component("AZaz09-_.~"), "AZaz09-_.~");
    }
}
