//! The handle through which the layer above talks to one session.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::task::{Context, Poll};

use ferrio_proto::engine::{CloseReason, Frame, SendError, Sid, TransportKind};
use futures_util::task::AtomicWaker;
use http::{Extensions, HeaderMap, HeaderName, HeaderValue, Method, Uri, Version};
use tokio::sync::mpsc;

/// The HTTP request that opened a session (the first polling GET or the WebSocket upgrade).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Handshake {
    /// Request method.
    pub method: Method,
    /// Request URI (path and query).
    pub uri: Uri,
    /// Request headers.
    pub headers: HeaderMap,
    /// The query parameters, percent-decoded (the last value wins for a repeated key).
    pub query: HashMap<String, String>,
    /// The peer address, when the server knows it.
    pub remote_addr: Option<SocketAddr>,
    /// The HTTP version of the request.
    pub version: Version,
    /// The request's extensions, as the tower layers in front of the engine left them (an
    /// authenticated user, a decoded session cookie...). Hyper's upgrade handle and the
    /// [`crate::RemoteAddr`] (see `remote_addr`) are taken out.
    pub extensions: Extensions,
}

impl Handshake {
    /// The handshake of a request. The URI and headers are copied: hyper parses them as
    /// slices of its connection read buffer (8 KiB or more), which a kept `HeaderMap` would
    /// otherwise hold for the whole life of the session.
    pub(crate) fn from_parts(
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        remote_addr: Option<SocketAddr>,
    ) -> Self {
        let uri = detached_uri(uri);
        let headers = detached_headers(&headers);
        let query = uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        Handshake {
            method,
            uri,
            headers,
            query,
            remote_addr,
            version: Version::default(),
            extensions: Extensions::new(),
        }
    }
}

/// A copy of `uri` that shares no buffer.
fn detached_uri(uri: Uri) -> Uri {
    Uri::try_from(uri.to_string()).unwrap_or(uri)
}

/// A copy of `headers` that shares no buffer (standard names stay static).
fn detached_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let name =
            HeaderName::from_bytes(name.as_str().as_bytes()).unwrap_or_else(|_| name.clone());
        let mut copy = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        copy.set_sensitive(value.is_sensitive());
        out.append(name, copy);
    }
    out
}

/// A cheap, cloneable handle to one Engine.IO session. Sending never blocks: frames go into
/// the session's bounded queue, and its driver task writes them to the transport.
#[derive(Clone, Debug)]
pub struct EngineSocket {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    sid: Sid,
    handshake: Arc<Handshake>,
    transport: AtomicU8,
    poll_waiting: AtomicBool,
    frames: mpsc::Sender<Outgoing>,
    /// A close requested by a handle, for the driver (never blocked by data). A slot and a
    /// waker rather than a channel: a tokio channel allocates its first block (about 1.3 KiB)
    /// up front, for every session.
    close: Mutex<Option<CloseReason>>,
    /// Set with `close`, so that the driver's check is one atomic load.
    close_pending: AtomicBool,
    close_waker: AtomicWaker,
}

/// What a handle queues for the driver: one frame, or frames that must stay together (a
/// Socket.IO packet and its binary attachments).
#[derive(Debug)]
pub(crate) enum Outgoing {
    One(Frame),
    Group(Box<[Frame]>),
}

impl EngineSocket {
    pub(crate) fn new(
        sid: Sid,
        handshake: Arc<Handshake>,
        transport: TransportKind,
        frames: mpsc::Sender<Outgoing>,
    ) -> Self {
        EngineSocket {
            inner: Arc::new(Inner {
                sid,
                handshake,
                transport: AtomicU8::new(transport_to_u8(transport)),
                poll_waiting: AtomicBool::new(false),
                frames,
                close: Mutex::new(None),
                close_pending: AtomicBool::new(false),
                close_waker: AtomicWaker::new(),
            }),
        }
    }

    /// The session id.
    pub fn sid(&self) -> Sid {
        self.inner.sid
    }

    /// The request that opened the session.
    pub fn handshake(&self) -> &Arc<Handshake> {
        &self.inner.handshake
    }

    /// The transport in use now.
    pub fn transport(&self) -> TransportKind {
        match self.inner.transport.load(Ordering::Relaxed) {
            0 => TransportKind::Polling,
            _ => TransportKind::WebSocket,
        }
    }

    /// Whether a polling GET of this session is held by the server, waiting for data, as of
    /// the last time its driver went idle (for tests and metrics).
    pub fn is_poll_waiting(&self) -> bool {
        self.inner.poll_waiting.load(Ordering::Relaxed)
    }

    /// Queues a frame. When the queue is full the client is too slow: the session is closed
    /// ([`CloseReason::SlowConsumer`], logged) and `SendError::Full` returned.
    pub fn send(&self, frame: Frame) -> Result<(), SendError> {
        self.send_outgoing(Outgoing::One(frame))
    }

    /// Queues frames that are written back to back, with nothing from other senders between
    /// them (a packet and its attachments). Full queue: as [`EngineSocket::send`].
    pub fn send_all(&self, frames: Vec<Frame>) -> Result<(), SendError> {
        self.send_outgoing(Outgoing::Group(frames.into_boxed_slice()))
    }

    /// As [`EngineSocket::send_all`], but a full queue drops the frames (volatile delivery).
    pub fn try_send_all(&self, frames: Vec<Frame>) -> Result<(), SendError> {
        self.try_outgoing(Outgoing::Group(frames.into_boxed_slice()))
    }

    fn send_outgoing(&self, out: Outgoing) -> Result<(), SendError> {
        match self.try_outgoing(out) {
            Err(SendError::Full) => {
                tracing::warn!(sid = %self.inner.sid, "outbound queue full: closing slow client");
                self.close_with(CloseReason::SlowConsumer);
                Err(SendError::Full)
            }
            other => other,
        }
    }

    /// Queues a frame, or drops it when the queue is full (volatile delivery).
    pub fn try_send(&self, frame: Frame) -> Result<(), SendError> {
        self.try_outgoing(Outgoing::One(frame))
    }

    fn try_outgoing(&self, out: Outgoing) -> Result<(), SendError> {
        self.inner.frames.try_send(out).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::Full,
            mpsc::error::TrySendError::Closed(_) => SendError::Closed,
        })
    }

    /// Closes the session from the server side (`forced close`). Queued frames are still
    /// written first.
    pub fn close(&self) {
        self.close_with(CloseReason::ForcedClose);
    }

    /// Closes the session with a given reason.
    pub fn close_with(&self, reason: CloseReason) {
        // Once one close is pending, later ones change nothing.
        let mut slot = self.inner.close.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(reason);
        }
        self.inner.close_pending.store(true, Ordering::Release);
        drop(slot);
        self.inner.close_waker.wake();
    }

    /// For the driver: a close requested by a handle, if any; otherwise the task is woken
    /// when one is.
    pub(crate) fn poll_close_request(&self, cx: &mut Context<'_>) -> Poll<CloseReason> {
        self.inner.close_waker.register(cx.waker());
        if !self.inner.close_pending.load(Ordering::Acquire) {
            return Poll::Pending;
        }
        let mut slot = self.inner.close.lock().unwrap_or_else(|p| p.into_inner());
        self.inner.close_pending.store(false, Ordering::Release);
        match slot.take() {
            Some(reason) => Poll::Ready(reason),
            None => Poll::Pending,
        }
    }

    /// Whether the session's driver is gone.
    pub fn is_closed(&self) -> bool {
        self.inner.frames.is_closed()
    }

    pub(crate) fn set_poll_waiting(&self, waiting: bool) {
        self.inner.poll_waiting.store(waiting, Ordering::Relaxed);
    }

    pub(crate) fn set_transport(&self, t: TransportKind) {
        self.inner
            .transport
            .store(transport_to_u8(t), Ordering::Relaxed);
    }
}

fn transport_to_u8(t: TransportKind) -> u8 {
    match t {
        TransportKind::Polling => 0,
        TransportKind::WebSocket => 1,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn handshake_shares_nothing_with_the_request_buffer() {
        // As hyper does: the URI and header values are slices of one read buffer.
        let buf = Bytes::from(
            b"/engine.io/?EIO=4&transport=websocket&x=%26a value x-custom-name".to_vec(),
        );
        let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
        let uri = Uri::from_maybe_shared(buf.slice(0..44)).unwrap();
        let mut headers = HeaderMap::new();
        headers.append(
            HeaderName::from_bytes(&buf[51..64]).unwrap(),
            HeaderValue::from_maybe_shared(buf.slice(45..50)).unwrap(),
        );
        headers.append(
            http::header::ORIGIN,
            HeaderValue::from_maybe_shared(buf.slice(45..50)).unwrap(),
        );
        let h = Handshake::from_parts(Method::GET, uri.clone(), headers, None);
        assert_eq!(h.uri, uri);
        assert_eq!(h.query.get("x").map(String::as_str), Some("&a"));
        assert_eq!(h.headers.get("x-custom-name").unwrap(), "value");
        assert_eq!(h.headers.get("origin").unwrap(), "value");
        for v in h.headers.values() {
            assert!(!range.contains(&(v.as_bytes().as_ptr() as usize)));
        }
        let path = h.uri.path_and_query().unwrap().as_str().as_ptr() as usize;
        assert!(!range.contains(&path));
    }
}
