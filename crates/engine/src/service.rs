//! The tower `Layer` and `Service` that route Engine.IO requests.

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use ferrio_proto::engine::{Protocol, Sid, TransportKind, payload::Encoder};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use hyper::upgrade::OnUpgrade;
use tokio::sync::oneshot;
use tower_layer::Layer;
use tower_service::Service;

use crate::body::BoxError;
use crate::compression::BLOCKING_THRESHOLD;
use crate::cookie::CookieTemplate;
use crate::cors::Cors;
use crate::driver::Cmd;
use crate::errors::HttpError;
use crate::{ConnectionError, Engine, EngineBody, EngineHandler, Handshake, ws};

/// The peer address of a connection, as a request extension. [`crate::serve`] inserts it;
/// other servers may insert it too so that [`Handshake::remote_addr`] is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

/// What the engine derives once from its [`crate::EngineConfig`] for its HTTP answers.
pub(crate) struct HttpSettings {
    cors: Cors,
    cookie: Option<CookieTemplate>,
}

impl HttpSettings {
    pub(crate) fn new(config: &crate::EngineConfig) -> Self {
        HttpSettings {
            cors: Cors::new(&config.cors),
            cookie: config.cookie.as_ref().map(CookieTemplate::new),
        }
    }

    fn set_cookie(&self, sid: Sid, headers: &mut HeaderMap) {
        if let Some(c) = &self.cookie {
            c.set(sid, headers);
        }
    }
}

/// A tower [`Layer`] that answers Engine.IO requests at the configured path and passes every
/// other request to the wrapped service.
pub struct EngineLayer<H> {
    engine: Engine<H>,
}

impl<H> Clone for EngineLayer<H> {
    fn clone(&self) -> Self {
        EngineLayer {
            engine: self.engine.clone(),
        }
    }
}

impl<H> EngineLayer<H> {
    /// A layer serving `engine`.
    pub fn new(engine: Engine<H>) -> Self {
        EngineLayer { engine }
    }
}

impl<H, S> Layer<S> for EngineLayer<H> {
    type Service = EngineService<H, S>;

    fn layer(&self, inner: S) -> Self::Service {
        EngineService {
            engine: self.engine.clone(),
            inner,
        }
    }
}

/// A tower [`Service`] that answers Engine.IO requests and passes others to `S`.
pub struct EngineService<H, S> {
    engine: Engine<H>,
    inner: S,
}

impl<H, S: Clone> Clone for EngineService<H, S> {
    fn clone(&self) -> Self {
        EngineService {
            engine: self.engine.clone(),
            inner: self.inner.clone(),
        }
    }
}

impl<H: EngineHandler> Engine<H> {
    /// A tower layer serving this engine in front of another service.
    pub fn layer(&self) -> EngineLayer<H> {
        EngineLayer::new(self.clone())
    }

    /// A service serving this engine alone; other paths get 404.
    pub fn service(&self) -> EngineService<H, NotFound> {
        self.layer().layer(NotFound)
    }
}

/// A service answering every request with 404.
#[derive(Clone, Copy, Debug, Default)]
pub struct NotFound;

impl<B> Service<Request<B>> for NotFound {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Request<B>) -> Self::Future {
        let mut res = Response::new(String::new());
        *res.status_mut() = StatusCode::NOT_FOUND;
        std::future::ready(Ok(res))
    }
}

impl<H, S, ReqBody, ResBody> Service<Request<ReqBody>> for EngineService<H, S>
where
    H: EngineHandler,
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
    ResBody: Send + 'static,
{
    type Response = Response<EngineBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if req.uri().path().starts_with(&self.engine.shared.path) {
            let engine = self.engine.clone();
            ResponseFuture {
                kind: FutureKind::Engine {
                    fut: Box::pin(async move { Ok(handle(engine, req).await) }),
                },
            }
        } else {
            ResponseFuture {
                kind: FutureKind::Inner {
                    fut: self.inner.call(req),
                },
            }
        }
    }
}

type EngineFuture<B, E> = Pin<Box<dyn Future<Output = Result<Response<EngineBody<B>>, E>> + Send>>;

pin_project_lite::pin_project! {
    /// The future of [`EngineService`].
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        kind: FutureKind<F, B, E>,
    }
}

pin_project_lite::pin_project! {
    #[project = ResponseProj]
    enum FutureKind<F, B, E> {
        Inner { #[pin] fut: F },
        Engine { fut: EngineFuture<B, E> },
    }
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<EngineBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            ResponseProj::Inner { fut } => fut
                .poll(cx)
                .map(|r| r.map(|res| res.map(EngineBody::inner))),
            ResponseProj::Engine { fut } => fut.as_mut().poll(cx),
        }
    }
}

/// Answers one Engine.IO request.
async fn handle<H, B, RB>(engine: Engine<H>, req: Request<B>) -> Response<EngineBody<RB>>
where
    H: EngineHandler,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let (mut parts, body) = req.into_parts();
    let http = &engine.shared.http;
    // An error answer to an upgrade request ends the connection (as Node destroys the
    // socket): the client asked to leave HTTP, so nothing more is expected on it.
    let wants_upgrade = parts.headers.contains_key(header::UPGRADE);
    if !is_single_chunked(&parts.headers) {
        // hyper decodes one `chunked` when it is the last coding; anything more (`chunked`
        // twice, in one header or two) is framing a proxy may read differently.
        tracing::debug!("refused Transfer-Encoding: only one `chunked` is accepted");
        let mut res = refuse(&engine, HttpError::BadRequest, &parts);
        close_connection(&mut res);
        return res;
    }
    let allowed = match http.cors.check(&parts.headers) {
        Ok(allowed) => allowed,
        Err(e) => {
            let mut res = refuse(&engine, e, &parts);
            if wants_upgrade {
                close_connection(&mut res);
            }
            return res;
        }
    };
    if parts.method == Method::OPTIONS {
        return http.cors.preflight(allowed.as_ref(), &parts.headers);
    }
    let mut res = match route(&engine, &mut parts, body).await {
        Ok((mut res, opened)) => {
            // Node's order: the CORS middleware, the sticky cookie, `initial_headers`, then
            // `headers`, so that a hook sees (and may replace) what came before it.
            if let Some(allowed) = &allowed {
                http.cors.apply(allowed, res.headers_mut());
            }
            let cfg = engine.config();
            if let Some(sid) = opened {
                http.set_cookie(sid, res.headers_mut());
                if let Some(hook) = &cfg.initial_headers {
                    hook.call(res.headers_mut(), &parts);
                }
            }
            if let Some(hook) = &cfg.headers {
                hook.call(res.headers_mut(), &parts);
            }
            res
        }
        Err(e) => {
            let mut res = refuse(&engine, e, &parts);
            if let Some(allowed) = &allowed {
                http.cors.apply(allowed, res.headers_mut());
            }
            res
        }
    };
    if wants_upgrade && res.status() != StatusCode::SWITCHING_PROTOCOLS {
        close_connection(&mut res);
    }
    res
}

/// The answer to a refused request, after telling the `connection_error` hook.
fn refuse<H, RB>(
    engine: &Engine<H>,
    error: HttpError,
    request: &http::request::Parts,
) -> Response<EngineBody<RB>> {
    tracing::debug!(uri = %request.uri, ?error, "engine.io request refused");
    if let Some(hook) = &engine.shared.config.connection_error {
        hook.call(&ConnectionError {
            status: error.status(),
            code: error.code(),
            message: error.message(),
            request,
        });
    }
    error.response()
}

/// Routes a request that passed the CORS check. A handshake answer comes with the new
/// session's id.
async fn route<H, B, RB>(
    engine: &Engine<H>,
    parts: &mut http::request::Parts,
    body: B,
) -> Result<(Response<EngineBody<RB>>, Option<Sid>), HttpError>
where
    H: EngineHandler,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let query = Query::parse(parts.uri.query().unwrap_or("")).map_err(|name| {
        tracing::debug!(name, "query parameter given twice");
        HttpError::BadRequest
    })?;
    let cfg = engine.config();
    let transport = match query.transport.as_deref() {
        Some("polling") if cfg.transports.polling => TransportKind::Polling,
        Some("websocket") if cfg.transports.websocket => TransportKind::WebSocket,
        _ => return Err(HttpError::TransportUnknown),
    };
    if let Some(sid) = query.sid.as_deref() {
        let sid = Sid::parse(sid).map_err(|_| HttpError::SessionIdUnknown)?;
        let entry = engine.entry(sid).ok_or(HttpError::SessionIdUnknown)?;
        let res = match transport {
            TransportKind::Polling => {
                if entry.socket.transport() != TransportKind::Polling {
                    return Err(HttpError::BadRequest);
                }
                match parts.method {
                    Method::GET => poll(engine, entry, parts).await,
                    Method::POST => post(engine, entry, parts, body).await,
                    _ => Err(HttpError::MethodNotAllowed),
                }
            }
            TransportKind::WebSocket => {
                // As Node: the upgrade must speak the protocol of the session.
                let v3_request = query.eio.as_deref() == Some("3");
                if v3_request != matches!(entry.socket.protocol(), Protocol::V3 { .. }) {
                    tracing::debug!("upgrade with another protocol version than the session's");
                    return Err(HttpError::BadRequest);
                }
                let (res, deflate) = upgrade_response(parts, engine.config())?;
                let on_upgrade = take_upgrade(parts)?;
                let cfg = engine.config().clone();
                tokio::spawn(async move {
                    if let Some(ws) = ws::accept(on_upgrade, &cfg, deflate).await {
                        match &entry.cmd {
                            Some(cmd) => {
                                let _ = cmd.send(Box::new(Cmd::Probe(Box::new(ws)))).await;
                            }
                            // A session on WebSocket from the start has nothing to upgrade:
                            // refused, as its driver refuses a second probe.
                            None => {
                                tracing::debug!("WebSocket refused for this session: closing it");
                                crate::driver::close_quietly(ws, None).await;
                            }
                        }
                    }
                });
                Ok(res)
            }
        };
        return res.map(|res| (res, None));
    }

    // A handshake.
    if parts.method != Method::GET {
        return Err(HttpError::BadHandshakeMethod);
    }
    if transport == TransportKind::WebSocket && !ws::is_upgrade_request(&parts.headers) {
        return Err(HttpError::BadRequest);
    }
    let handshake = Arc::new(handshake_of(parts));
    if let Some(allow) = &cfg.allow_request {
        (allow.0)(handshake.clone())
            .await
            .map_err(|r| HttpError::Forbidden(r.message))?;
    }
    // Unlike Node, which takes anything but `4` for v3, only `EIO=3` is v3.
    let protocol = match query.eio.as_deref() {
        Some("4") => Protocol::V4,
        Some("3") if cfg.allow_eio3 => {
            if query.jsonp {
                // JSONP polling is a transport of its own on Node; it is not served here.
                return Err(HttpError::TransportUnknown);
            }
            Protocol::V3 {
                supports_binary: !query.b64,
            }
        }
        _ => return Err(HttpError::UnsupportedProtocolVersion),
    };
    if engine.is_closing() {
        return Err(HttpError::Unavailable);
    }
    match transport {
        TransportKind::Polling => {
            let sid = Engine::<H>::new_sid();
            let open = engine
                .open(sid, handshake, TransportKind::Polling, protocol, None)
                .ok_or(HttpError::Unavailable)?;
            Ok((payload_response(open.unwrap_or_default()), Some(sid)))
        }
        TransportKind::WebSocket => {
            let (res, deflate) = upgrade_response(parts, cfg)?;
            let on_upgrade = take_upgrade(parts)?;
            if engine.session_count() >= cfg.max_sessions {
                return Err(HttpError::Unavailable);
            }
            let sid = Engine::<H>::new_sid();
            let engine = engine.clone();
            tokio::spawn(async move {
                let cfg = engine.config().clone();
                if let Some(ws) = ws::accept(on_upgrade, &cfg, deflate).await {
                    engine.open(sid, handshake, TransportKind::WebSocket, protocol, Some(ws));
                }
            });
            Ok((res, Some(sid)))
        }
    }
}

/// The [`Handshake`] of a request: a copy of its parts, extensions included (without hyper's
/// upgrade handle, which belongs to the connection, and the [`RemoteAddr`]).
fn handshake_of(parts: &http::request::Parts) -> Handshake {
    let remote = parts.extensions.get::<RemoteAddr>().map(|r| r.0);
    let mut handshake = Handshake::from_parts(
        parts.method.clone(),
        parts.uri.clone(),
        parts.headers.clone(),
        remote,
    );
    handshake.version = parts.version;
    handshake.extensions = parts.extensions.clone();
    handshake.extensions.remove::<OnUpgrade>();
    // Already in `remote_addr`; without it, a session behind `serve` and no layer keeps an
    // empty map (no allocation).
    handshake.extensions.remove::<RemoteAddr>();
    handshake
}

async fn poll<H, RB>(
    engine: &Engine<H>,
    entry: crate::engine::Entry,
    parts: &http::request::Parts,
) -> Result<Response<EngineBody<RB>>, HttpError> {
    let (tx, rx) = oneshot::channel();
    let cmd = entry.cmd.as_ref().ok_or(HttpError::BadRequest)?;
    cmd.send(Box::new(Cmd::Poll(tx)))
        .await
        .map_err(|_| HttpError::SessionIdUnknown)?;
    let payload = rx.await.map_err(|_| HttpError::SessionIdUnknown)??;
    // As Node: only a response holding some packet sent without `compress: false`.
    let coding = engine
        .shared
        .config
        .http_compression
        .as_ref()
        .filter(|_| payload.may_compress())
        .and_then(|c| Some((c, c.choose(payload.len(), &parts.headers)?)));
    let Some((compression, coding)) = coding else {
        return Ok(payload_response(payload));
    };
    let len = payload.len();
    let binary = payload.is_binary();
    let chunks = payload.into_chunks();
    let packed = if len < BLOCKING_THRESHOLD {
        compression.compress(coding, &chunks)
    } else {
        let compression = compression.clone();
        tokio::task::spawn_blocking(move || compression.compress(coding, &chunks))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    };
    // Compressing into memory cannot fail short of a bug; the packets are gone from the
    // session by now, so the session cannot go on without them.
    let packed = packed.map_err(|e| {
        tracing::error!("compressing a polling response failed: {e}");
        entry
            .socket
            .close_with(ferrio_proto::engine::CloseReason::TransportError(
                "compression failed",
            ));
        HttpError::BadRequest
    })?;
    let mut res = Response::new(EngineBody::full(packed));
    set_payload_headers(res.headers_mut(), binary);
    res.headers_mut()
        .insert(header::CONTENT_ENCODING, coding.header_value());
    Ok(res)
}

async fn post<H, B, RB>(
    engine: &Engine<H>,
    entry: crate::engine::Entry,
    parts: &http::request::Parts,
    body: B,
) -> Result<Response<EngineBody<RB>>, HttpError>
where
    H: EngineHandler,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    use ferrio_proto::engine::CloseReason;

    let is_binary = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().starts_with("application/octet-stream"));
    // Only the v3 binary payload is sent as binary.
    if is_binary && entry.socket.protocol() == Protocol::V4 {
        entry
            .socket
            .close_with(CloseReason::TransportError("invalid content"));
        return Err(HttpError::BadRequest);
    }
    if entry.post_busy.swap(true, Ordering::AcqRel) {
        entry
            .socket
            .close_with(CloseReason::TransportError("overlapping POST"));
        return Err(HttpError::BadRequest);
    }
    let _busy = BusyGuard(&entry.post_busy);
    let max = engine.config().session.max_payload;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        entry
            .socket
            .close_with(CloseReason::TransportError("payload too large"));
        return Err(HttpError::PayloadTooLarge);
    }
    let timeout = engine.config().body_read_timeout;
    let bytes = match read_body(body, max, timeout).await {
        Ok(b) => b,
        Err(ReadError::Stalled) => {
            tracing::debug!(?timeout, "polling POST body stalled");
            entry
                .socket
                .close_with(CloseReason::TransportError("request body timed out"));
            return Err(HttpError::RequestTimeout);
        }
        Err(ReadError::TooLarge) => {
            entry
                .socket
                .close_with(CloseReason::TransportError("payload too large"));
            return Err(HttpError::PayloadTooLarge);
        }
        Err(ReadError::Failed) => return Err(HttpError::BadRequest),
    };
    let (tx, rx) = oneshot::channel();
    let cmd = entry.cmd.as_ref().ok_or(HttpError::BadRequest)?;
    cmd.send(Box::new(Cmd::Post {
        body: bytes,
        binary: is_binary,
        reply: tx,
    }))
    .await
    .map_err(|_| HttpError::SessionIdUnknown)?;
    rx.await.map_err(|_| HttpError::SessionIdUnknown)??;
    let mut res = Response::new(EngineBody::full(Bytes::from_static(b"ok")));
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    Ok(res)
}

enum ReadError {
    /// No data for `body_read_timeout`.
    Stalled,
    /// Over `max_payload`.
    TooLarge,
    /// The connection failed or the body was malformed.
    Failed,
}

/// Reads a whole body of at most `max` bytes, each wait for more data bounded by `timeout`
/// (a slow upload that keeps sending is fine; one that stops is not).
async fn read_body<B>(body: B, max: usize, timeout: Duration) -> Result<Bytes, ReadError>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(Limited::new(body, max));
    let mut out = BytesMut::new();
    loop {
        let frame = match tokio::time::timeout(timeout, body.frame()).await {
            Err(_) => return Err(ReadError::Stalled),
            Ok(None) => return Ok(out.freeze()),
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(e))) => {
                return Err(match e.downcast_ref::<http_body_util::LengthLimitError>() {
                    Some(_) => ReadError::TooLarge,
                    None => ReadError::Failed,
                });
            }
        };
        if let Ok(mut data) = frame.into_data() {
            while data.has_remaining() {
                let chunk = data.chunk();
                out.extend_from_slice(chunk);
                let n = chunk.len();
                data.advance(n);
            }
        }
    }
}

struct BusyGuard<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

fn payload_response<RB>(payload: Encoder) -> Response<EngineBody<RB>> {
    let binary = payload.is_binary();
    let mut res = Response::new(EngineBody::chunks(payload.into_chunks()));
    set_payload_headers(res.headers_mut(), binary);
    res
}

/// The headers of a polling answer: a text body, or the v3 binary payload.
fn set_payload_headers(h: &mut HeaderMap, binary: bool) {
    let content_type = match binary {
        true => "application/octet-stream",
        false => "text/plain; charset=UTF-8",
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn upgrade_response<RB>(
    parts: &http::request::Parts,
    config: &crate::EngineConfig,
) -> Result<(Response<EngineBody<RB>>, Option<ws::Negotiated>), HttpError> {
    if !ws::is_upgrade_request(&parts.headers) {
        return Err(HttpError::BadRequest);
    }
    ws::switching_protocols(parts, config).map_err(|e| {
        tracing::debug!(error = ?e, "WebSocket handshake refused");
        match e {
            ws::HandshakeError::Version => HttpError::UpgradeRequired,
            ws::HandshakeError::Invalid(_) => HttpError::BadRequest,
        }
    })
}

/// Whether `Transfer-Encoding` is absent or exactly one `chunked` (RFC 9112 section 7: a
/// sender applies `chunked` once, and as the last coding; hyper refuses other last codings).
fn is_single_chunked(headers: &HeaderMap) -> bool {
    let mut te = headers.get_all(header::TRANSFER_ENCODING).iter();
    match (te.next(), te.next()) {
        (None, _) => true,
        (Some(v), None) => v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"chunked"),
        (Some(_), Some(_)) => false,
    }
}

/// Makes hyper close the connection once `res` is written.
fn close_connection<RB>(res: &mut Response<EngineBody<RB>>) {
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}

/// The connection upgrade, which the HTTP server provides for HTTP/1.1 requests.
fn take_upgrade(parts: &mut http::request::Parts) -> Result<OnUpgrade, HttpError> {
    parts
        .extensions
        .remove::<OnUpgrade>()
        .ok_or(HttpError::BadRequest)
}

/// The query parameters the engine reads, borrowed from the query string unless escaped.
#[derive(Default)]
struct Query<'a> {
    transport: Option<Cow<'a, str>>,
    sid: Option<Cow<'a, str>>,
    eio: Option<Cow<'a, str>>,
    /// v3: `b64` with a value (binary as base64 text, as Node reads a truthy value).
    b64: bool,
    /// v3: `j` (JSONP polling).
    jsonp: bool,
}

impl<'a> Query<'a> {
    /// Parses the query as `application/x-www-form-urlencoded` (as `form_urlencoded::parse`:
    /// `&`-separated, empty pairs skipped, split at the first `=`, `+` and `%XX` decoded,
    /// invalid UTF-8 replaced); a parameter the engine reads given twice is ambiguous and
    /// refused (`Err` names it). Other names, `__proto__` or `constructor` included, are
    /// ignored, and their values not decoded. Runs for every polling request: nothing is
    /// allocated unless a name or value the engine reads is escaped.
    fn parse(q: &'a str) -> Result<Self, &'static str> {
        let mut out = Query::default();
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (slot, name) = match form_decode(k).as_ref() {
                "transport" => (&mut out.transport, "transport"),
                "sid" => (&mut out.sid, "sid"),
                "EIO" => (&mut out.eio, "EIO"),
                "b64" => {
                    out.b64 |= !v.is_empty();
                    continue;
                }
                "j" => {
                    out.jsonp = true;
                    continue;
                }
                _ => continue,
            };
            if slot.replace(form_decode(v)).is_some() {
                return Err(name);
            }
        }
        Ok(out)
    }
}

/// One name or value of a form-urlencoded string: `+` is a space, `%XX` a byte (a `%` not
/// followed by two hex digits stays as it is), then UTF-8 with invalid sequences replaced.
fn form_decode(s: &str) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                b.get(i + 1).and_then(|&c| hex(c)),
                b.get(i + 2).and_then(|&c| hex(c)),
            ) {
                (Some(high), Some(low)) => {
                    out.push((high << 4) | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body fed from a channel, one frame per message.
    struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

    impl Body for ChannelBody {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            self.0
                .poll_recv(cx)
                .map(|b| b.map(|b| Ok(http_body::Frame::data(b))))
        }
    }

    /// The body timeout bounds each wait for data, not the whole body: a slow upload that
    /// keeps sending is read to the end, one that stops is cut (paused clock).
    #[tokio::test(start_paused = true)]
    async fn body_timeout_is_per_wait() {
        let timeout = Duration::from_millis(100);
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tokio::spawn(async move {
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_millis(80)).await;
                tx.send(Bytes::from_static(b"ab")).await.unwrap();
            }
        });
        let started = tokio::time::Instant::now();
        let body = read_body(ChannelBody(rx), 1000, timeout).await;
        assert_eq!(body.ok().as_deref(), Some(&b"abababababab"[..10]));
        assert_eq!(started.elapsed(), Duration::from_millis(400));

        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tx.send(Bytes::from_static(b"ab")).await.unwrap();
        let started = tokio::time::Instant::now();
        assert!(matches!(
            read_body(ChannelBody(rx), 1000, timeout).await,
            Err(ReadError::Stalled)
        ));
        assert_eq!(started.elapsed(), timeout);
        drop(tx);

        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tx.send(Bytes::from(vec![b'x'; 600])).await.unwrap();
        tx.send(Bytes::from(vec![b'x'; 600])).await.unwrap();
        drop(tx);
        assert!(matches!(
            read_body(ChannelBody(rx), 1000, timeout).await,
            Err(ReadError::TooLarge)
        ));
    }

    #[test]
    fn query_is_decoded_and_other_names_ignored() {
        let q = Query::parse("EIO=4&transport=polling&sid=a%5Fb&t=x&__proto__=1&constructor=2")
            .unwrap();
        assert_eq!(q.transport.as_deref(), Some("polling"));
        assert_eq!(q.sid.as_deref(), Some("a_b"));
        assert_eq!(q.eio.as_deref(), Some("4"));
    }

    #[test]
    fn query_parameter_given_twice_is_refused() {
        assert_eq!(
            Query::parse("EIO=4&transport=polling&transport=websocket").err(),
            Some("transport")
        );
        assert_eq!(
            Query::parse("EIO=4&transport=polling&sid=a&sid=a").err(),
            Some("sid")
        );
        assert_eq!(
            Query::parse("EIO=4&EIO=4&transport=polling").err(),
            Some("EIO")
        );
        // Percent-encoded names are the same names.
        assert_eq!(
            Query::parse("EIO=4&transport=polling&%73id=a&sid=b").err(),
            Some("sid")
        );
        // Case matters, as on Node: `eio` is another (unknown) name.
        assert!(Query::parse("EIO=4&eio=3&transport=polling").is_ok());
    }

    /// The fast decoder gives what `form_urlencoded` gives, escapes and broken escapes
    /// included.
    #[test]
    fn query_decoding_is_form_urlencoded() {
        for q in [
            "sid=a%5Fb",
            "sid=a+b%20c",
            "sid=%",
            "sid=%4",
            "sid=%4g",
            "sid=%zz%41",
            "sid=%E2%82%AC",
            "sid=%FF%FE",
            "sid=a=b=c",
            "sid",
            "sid=",
            "&&sid=x&",
            "%73%69%64=y",
            "s%69d=%2B+",
            "sid=%%41",
            "sid=abc%4",
        ] {
            let expected = form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "sid")
                .map(|(_, v)| v.into_owned());
            let got = Query::parse(q).unwrap().sid.map(|v| v.into_owned());
            assert_eq!(got, expected, "{q}");
        }
    }
}
