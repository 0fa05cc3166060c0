//! The handle through which the layer above talks to one session.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use ferrio_proto::engine::{CloseReason, Frame, Protocol, SendError, Sid, TransportKind};
use futures_util::task::AtomicWaker;
use http::{Extensions, HeaderMap, HeaderName, HeaderValue, Method, Uri, Version};

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
    protocol: Protocol,
    handshake: Arc<Handshake>,
    transport: AtomicU8,
    poll_waiting: AtomicBool,
    /// Frames queued by handles for the driver. A queue that holds memory only while frames
    /// wait in it: a channel allocates its first block (about 1.3 KiB) up front, for every
    /// session.
    frames: Mutex<Frames>,
    /// Most entries in `frames` (`SessionConfig::max_buffered_packets`).
    frames_cap: usize,
    /// A close requested by a handle, for the driver (never blocked by data). A slot and a
    /// waker rather than a channel: a tokio channel allocates its first block (about 1.3 KiB)
    /// up front, for every session.
    close: Mutex<Option<CloseReason>>,
    /// Set with `close`, so that the driver's check is one atomic load.
    close_pending: AtomicBool,
    close_waker: AtomicWaker,
}

#[derive(Debug, Default)]
struct Frames {
    queue: VecDeque<Outgoing>,
    /// The driver, waiting for frames.
    waker: Option<Waker>,
    /// The driver is gone: sends fail with `SendError::Closed`.
    closed: bool,
}

/// The driver's end of a session's frame queue; dropping it closes the queue.
#[derive(Debug)]
pub(crate) struct FramesRx(EngineSocket);

impl FramesRx {
    /// The next queued frames; when there are none, the driver is woken when some are queued.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outgoing>> {
        let mut f = self.0.frames();
        if let Some(out) = f.queue.pop_front() {
            return Poll::Ready(Some(out));
        }
        // Empty: give the memory of a burst back.
        if f.queue.capacity() > 0 {
            f.queue = VecDeque::new();
        }
        match &f.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => f.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// The next queued frames, if any.
    pub(crate) fn try_recv(&mut self) -> Option<Outgoing> {
        self.0.frames().queue.pop_front()
    }
}

impl Drop for FramesRx {
    fn drop(&mut self) {
        let mut f = self.0.frames();
        f.closed = true;
        f.waker = None;
        let queued = std::mem::take(&mut f.queue);
        drop(f);
        drop(queued);
    }
}

/// What a handle queues for the driver: one frame, or frames that must stay together (a
/// Socket.IO packet and its binary attachments).
/// Each carries whether it may be compressed.
#[derive(Debug)]
pub(crate) enum Outgoing {
    One(Frame, bool),
    Group(Box<[Frame]>, bool),
}

/// How [`EngineSocket::send_with`] and [`EngineSocket::send_all_with`] send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendOptions {
    /// Drop the frames when the queue is full instead of closing the session. Default false.
    pub volatile: bool,
    /// The frames may be compressed (permessage-deflate on WebSocket, HTTP compression of
    /// the polling response that holds them). `false` is Node's `compress: false`. Default
    /// true.
    pub compress: bool,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions {
            volatile: false,
            compress: true,
        }
    }
}

impl SendOptions {
    /// Sets [`SendOptions::volatile`].
    pub fn volatile(mut self, volatile: bool) -> Self {
        self.volatile = volatile;
        self
    }

    /// Sets [`SendOptions::compress`].
    pub fn compress(mut self, compress: bool) -> Self {
        self.compress = compress;
        self
    }
}

impl EngineSocket {
    /// A session's handle, and the driver's end of its frame queue (at most `max_frames`
    /// entries).
    pub(crate) fn new(
        sid: Sid,
        protocol: Protocol,
        handshake: Arc<Handshake>,
        transport: TransportKind,
        max_frames: usize,
    ) -> (Self, FramesRx) {
        let socket = EngineSocket {
            inner: Arc::new(Inner {
                sid,
                protocol,
                handshake,
                transport: AtomicU8::new(transport_to_u8(transport)),
                poll_waiting: AtomicBool::new(false),
                frames: Mutex::new(Frames::default()),
                frames_cap: max_frames.max(1),
                close: Mutex::new(None),
                close_pending: AtomicBool::new(false),
                close_waker: AtomicWaker::new(),
            }),
        };
        let rx = FramesRx(socket.clone());
        (socket, rx)
    }

    fn frames(&self) -> MutexGuard<'_, Frames> {
        // Single pushes and pops: a poisoned lock leaves a consistent queue.
        self.inner.frames.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The session id.
    pub fn sid(&self) -> Sid {
        self.inner.sid
    }

    /// The Engine.IO protocol of the session: [`Protocol::V4`], or [`Protocol::V3`] for a
    /// `socket.io-client` 2.x accepted by [`crate::EngineConfig::allow_eio3`]. Frames are
    /// given and received in v4 form either way; the engine converts them.
    pub fn protocol(&self) -> Protocol {
        self.inner.protocol
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
        self.send_outgoing(Outgoing::One(frame, true))
    }

    /// Queues a frame with these options (volatile: as [`EngineSocket::try_send`]).
    pub fn send_with(&self, frame: Frame, opts: SendOptions) -> Result<(), SendError> {
        let out = Outgoing::One(frame, opts.compress);
        match opts.volatile {
            true => self.try_outgoing(out),
            false => self.send_outgoing(out),
        }
    }

    /// Queues frames that stay together (as [`EngineSocket::send_all`]) with these options.
    pub fn send_all_with(&self, frames: Vec<Frame>, opts: SendOptions) -> Result<(), SendError> {
        let out = Outgoing::Group(frames.into_boxed_slice(), opts.compress);
        match opts.volatile {
            true => self.try_outgoing(out),
            false => self.send_outgoing(out),
        }
    }

    /// Queues frames that are written back to back, with nothing from other senders between
    /// them (a packet and its attachments). Full queue: as [`EngineSocket::send`].
    pub fn send_all(&self, frames: Vec<Frame>) -> Result<(), SendError> {
        self.send_outgoing(Outgoing::Group(frames.into_boxed_slice(), true))
    }

    /// As [`EngineSocket::send_all`], but a full queue drops the frames (volatile delivery).
    pub fn try_send_all(&self, frames: Vec<Frame>) -> Result<(), SendError> {
        self.try_outgoing(Outgoing::Group(frames.into_boxed_slice(), true))
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
        self.try_outgoing(Outgoing::One(frame, true))
    }

    fn try_outgoing(&self, out: Outgoing) -> Result<(), SendError> {
        let mut f = self.frames();
        if f.closed {
            return Err(SendError::Closed);
        }
        if f.queue.len() >= self.inner.frames_cap {
            return Err(SendError::Full);
        }
        f.queue.push_back(out);
        let waker = f.waker.take();
        drop(f);
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
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
        self.frames().closed
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
