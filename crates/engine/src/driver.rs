//! The per-session driver: one task owns a [`Session`] and its transports.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use ferrio_proto::engine::{
    CloseReason, Event, Frame, ProbeReply, Session, TransportKind, payload::Encoder,
};
use futures_util::{Sink, SinkExt, Stream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Sleep;
use tracing::Instrument;

use crate::errors::HttpError;
use crate::socket::{FramesRx, Outgoing};
use crate::ws::{self, CloseFrame, Incoming, WsStream};
use crate::{Engine, EngineHandler, EngineSocket};

/// A request from the HTTP side to a session's driver.
pub(crate) enum Cmd {
    /// A polling GET waits for data.
    Poll(oneshot::Sender<Result<Encoder, HttpError>>),
    /// A polling POST body.
    Post {
        body: Bytes,
        /// Sent as `application/octet-stream` (the v3 binary payload).
        binary: bool,
        reply: oneshot::Sender<Result<(), HttpError>>,
    },
    /// A WebSocket arrived with this session's id: the upgrade probe.
    Probe(Box<WsStream>),
}

/// How long a session closed by the server during an upgrade waits for a last poll.
const SHORT_LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// Where the answer to a polling POST goes.
type PostReply = oneshot::Sender<Result<(), HttpError>>;

/// Most input items handled in one pass before the driver yields to other tasks.
const BUDGET: usize = 64;

pub(crate) struct Driver<H: EngineHandler> {
    engine: Engine<H>,
    session: Session,
    socket: EngineSocket,
    /// None for a session opened on WebSocket (see `Entry::cmd`).
    cmd_rx: Option<mpsc::Receiver<Box<Cmd>>>,
    frames_rx: FramesRx,
    timer: Pin<Box<Sleep>>,
    ws: Option<WsStream>,
    ws_dirty: bool,
    ws_close: Option<CloseFrame>,
    /// Boxed: most sessions never probe, and the driver is allocated for every one.
    probe: Option<Box<WsStream>>,
    probe_out: Option<Frame>,
    probe_dirty: bool,
    pending_get: Option<oneshot::Sender<Result<Encoder, HttpError>>>,
    /// After a server-side close on polling: wait this long for a GET to deliver the rest.
    linger_until: Option<Instant>,
    /// `linger_until` has passed.
    linger_expired: bool,
    /// The handler's state; taken when the session closes.
    state: Option<H::Session>,
    /// The session closed while a WebSocket probe was attached.
    closed_during_upgrade: bool,
    /// The answer to a polling POST, held until its messages are all handed to the handler.
    post_reply: Option<(PostReply, Result<(), HttpError>)>,
}

impl<H: EngineHandler> Driver<H> {
    pub(crate) fn new(
        engine: Engine<H>,
        session: Session,
        socket: EngineSocket,
        cmd_rx: Option<mpsc::Receiver<Box<Cmd>>>,
        frames_rx: FramesRx,
        ws: Option<WsStream>,
    ) -> Self {
        Driver {
            engine,
            session,
            socket,
            cmd_rx,
            frames_rx,
            timer: Box::pin(tokio::time::sleep_until(tokio::time::Instant::now())),
            ws,
            ws_dirty: false,
            ws_close: None,
            probe: None,
            probe_out: None,
            probe_dirty: false,
            pending_get: None,
            linger_until: None,
            linger_expired: false,
            state: None,
            post_reply: None,
            closed_during_upgrade: false,
        }
    }

    /// Runs the session to its end. The driver is boxed: the task's future then holds a
    /// pointer to it, not copies of it in each of its states (the unboxed future of this
    /// function was about 6 KiB per session).
    pub(crate) async fn run(mut self: Box<Self>) {
        let span = tracing::debug_span!("session", sid = %self.session.sid());
        async move {
            tracing::debug!(
                transport = self.session.transport().as_str(),
                "session opened"
            );
            self.state = Some(self.engine.handler().on_connect(&self.socket));
            poll_fn(|cx| self.poll(cx)).await;
            // Boxed: its state (a WebSocket being closed, a timer) would otherwise be part of
            // every session's task for its whole life.
            Box::pin(self.finish()).await;
        }
        .instrument(span)
        .await
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        for _ in 0..BUDGET {
            let now = clock_now();
            let mut progress = false;
            // A deadline that has passed is applied before any request is looked at, so that
            // a poll arriving just after a missed pong finds the session gone, as on Node,
            // even when the timer task has not run yet.
            if self.session.poll_timeout().is_some_and(|t| t <= now) {
                self.session.handle_timeout(now);
                progress = true;
            }
            progress |= self.poll_control(cx);
            progress |= self.poll_commands(cx, now);
            progress |= self.poll_ws_read(cx, now);
            progress |= self.poll_probe(cx, now);
            progress |= self.poll_frames(cx);
            progress |= self.poll_get_aborted(cx);
            progress |= self.poll_timer(cx, now);
            progress |= self.dispatch_events(cx, now);
            progress |= self.poll_write(cx);
            if self.session.closed().is_some() && self.is_done(now) {
                self.socket.set_poll_waiting(false);
                return Poll::Ready(());
            }
            if !progress {
                self.socket.set_poll_waiting(self.pending_get.is_some());
                return Poll::Pending;
            }
        }
        // Out of budget: let other tasks run, then come back.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn poll_control(&mut self, cx: &mut Context<'_>) -> bool {
        match self.socket.poll_close_request(cx) {
            Poll::Ready(reason) => {
                // Frames queued before the close request still go out first.
                while self.session.has_capacity() {
                    match self.frames_rx.try_recv() {
                        Some(out) => self.queue(out),
                        None => break,
                    }
                }
                self.session.close(reason);
                true
            }
            _ => false,
        }
    }

    fn poll_commands(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let mut progress = false;
        for _ in 0..BUDGET {
            let Some(rx) = self.cmd_rx.as_mut() else {
                break;
            };
            let Poll::Ready(Some(cmd)) = rx.poll_recv(cx) else {
                break;
            };
            progress = true;
            match *cmd {
                Cmd::Poll(reply) => self.on_poll(reply),
                Cmd::Post {
                    body,
                    binary,
                    reply,
                } => self.on_post(now, body, binary, reply),
                Cmd::Probe(ws) => self.on_probe(now, ws),
            }
        }
        progress
    }

    fn on_poll(&mut self, reply: oneshot::Sender<Result<Encoder, HttpError>>) {
        if self.session.closed().is_some() && !self.delivers_after_close() {
            // Closed with nothing left to deliver: the session is gone for this request.
            let _ = reply.send(Err(HttpError::SessionIdUnknown));
            return;
        }
        if self.session.transport() != TransportKind::Polling {
            let _ = reply.send(Err(HttpError::BadRequest));
            return;
        }
        if self.pending_get.is_some() {
            // Overlapping GETs: refuse the new one and close; the first one gets `1`.
            let _ = reply.send(Err(HttpError::BadRequest));
            tracing::debug!("overlapping polling GET: closing");
            self.session
                .handle_transport_closed(CloseReason::TransportError("overlap from client"));
            return;
        }
        self.pending_get = Some(reply);
    }

    fn on_post(
        &mut self,
        now: Instant,
        body: Bytes,
        binary: bool,
        reply: oneshot::Sender<Result<(), HttpError>>,
    ) {
        if self.session.closed().is_some() {
            let result = match self.delivers_after_close() {
                true => Ok(()),
                false => Err(HttpError::SessionIdUnknown),
            };
            let _ = reply.send(result);
            return;
        }
        if self.session.transport() != TransportKind::Polling || self.post_reply.is_some() {
            let _ = reply.send(Err(HttpError::BadRequest));
            return;
        }
        if binary {
            self.session.handle_binary_payload(now, body);
        } else {
            self.session.handle_payload(now, body);
        }
        let result = match self.session.closed() {
            Some(CloseReason::ParseError) => {
                tracing::debug!("invalid polling payload: closing");
                Err(HttpError::BadRequest)
            }
            _ => Ok(()),
        };
        // Answered once the handler has taken every message of the body.
        self.post_reply = Some((reply, result));
    }

    fn on_probe(&mut self, now: Instant, ws: Box<WsStream>) {
        if self.probe.is_none() && self.session.start_probe(now) {
            tracing::debug!("upgrade probe started");
            self.probe = Some(ws);
        } else {
            tracing::debug!("WebSocket refused for this session: closing it");
            tokio::spawn(close_quietly(*ws, None));
        }
    }

    fn poll_ws_read(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let mut progress = false;
        for _ in 0..BUDGET {
            let Some(ws) = self.ws.as_mut() else {
                break;
            };
            if self.session.closed().is_some() || self.session.peek_event().is_some() {
                // Closed, or the handler has not taken what was read (backpressure).
                break;
            }
            let item = match Pin::new(ws).poll_next(cx) {
                Poll::Ready(item) => item,
                Poll::Pending => break,
            };
            progress = true;
            match item {
                Some(Ok(msg)) => match ws::from_message(msg) {
                    Incoming::Frame(frame) => self.session.handle_frame(now, frame),
                    // The codec queues the pong itself; it goes out with the next flush.
                    Incoming::Control => self.ws_dirty = true,
                    Incoming::Closed => {
                        self.session
                            .handle_transport_closed(CloseReason::TransportClose);
                    }
                },
                Some(Err(e)) => {
                    let (close, detail) = ws::close_for_error(&e);
                    tracing::debug!("websocket read failed: {e}");
                    self.ws_close = close;
                    self.session
                        .handle_transport_closed(CloseReason::TransportError(detail));
                }
                None => self
                    .session
                    .handle_transport_closed(CloseReason::TransportClose),
            }
        }
        progress
    }

    fn poll_probe(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let mut progress = false;
        for _ in 0..BUDGET {
            let Some(probe) = self.probe.as_deref_mut() else {
                break;
            };
            if !self.session.is_probing() {
                // Timed out, aborted or the session closed.
                tracing::debug!("upgrade probe dropped");
                self.drop_probe();
                return true;
            }
            // Write what the probe owes first.
            if self.probe_out.is_some() {
                match Pin::new(&mut *probe).poll_ready(cx) {
                    Poll::Ready(Ok(())) => {
                        if let Some(f) = self.probe_out.take() {
                            let _ = Pin::new(&mut *probe).start_send(ws::to_message(f, true));
                            self.probe_dirty = true;
                        }
                    }
                    Poll::Ready(Err(_)) => {
                        self.session.abort_probe();
                        continue;
                    }
                    Poll::Pending => {}
                }
            }
            if self.probe_dirty && Pin::new(&mut *probe).poll_flush(cx).is_ready() {
                self.probe_dirty = false;
            }
            let item = match Pin::new(&mut *probe).poll_next(cx) {
                Poll::Ready(item) => item,
                Poll::Pending => break,
            };
            progress = true;
            let frame = match item {
                Some(Ok(msg)) => match ws::from_message(msg) {
                    Incoming::Frame(f) => f,
                    Incoming::Control => {
                        self.probe_dirty = true;
                        continue;
                    }
                    Incoming::Closed => {
                        self.session.abort_probe();
                        continue;
                    }
                },
                _ => {
                    self.session.abort_probe();
                    continue;
                }
            };
            match self.session.handle_probe_frame(now, frame) {
                ProbeReply::Send(f) => self.probe_out = Some(f),
                ProbeReply::Upgraded => {
                    tracing::debug!("upgraded to websocket");
                    self.ws = self.probe.take().map(|ws| *ws);
                    self.ws_dirty = self.probe_dirty;
                    self.socket.set_transport(TransportKind::WebSocket);
                    // A poll still waiting is ended with a noop.
                    if let Some(tx) = self.pending_get.take() {
                        let _ = tx.send(Ok(self.session.noop_payload()));
                    }
                    if let Some(f) = self.probe_out.take() {
                        // Not sent yet: it is owed on what is now the transport.
                        if let Some(ws) = self.ws.as_mut() {
                            let _ = Pin::new(ws).start_send(ws::to_message(f, true));
                            self.ws_dirty = true;
                        }
                    }
                    return true;
                }
                ProbeReply::Aborted => {
                    tracing::debug!("upgrade aborted by an unexpected packet");
                }
            }
        }
        progress
    }

    fn drop_probe(&mut self) {
        self.probe_out = None;
        self.probe_dirty = false;
        if let Some(ws) = self.probe.take() {
            let closed = self.session.closed().is_some();
            self.closed_during_upgrade |= closed;
            // Closed by the server during the upgrade: a client that already sent `5` reads
            // the last packets on this socket (Node flushes them after the upgrade); one that
            // was still probing drops them with the probe and polls again, and gets them from
            // the (short) linger below.
            let rest = if closed
                && matches!(
                    self.session.closed(),
                    Some(CloseReason::ForcedClose | CloseReason::ServerShuttingDown)
                ) {
                self.session.queued_frames_with()
            } else {
                Vec::new()
            };
            let timeout = self.engine.config().close_timeout;
            tokio::spawn(async move {
                let _ = tokio::time::timeout(timeout, async move {
                    let mut ws = *ws;
                    for (f, compress) in rest {
                        ws.feed(ws::to_message(f, compress)).await?;
                    }
                    ws.close(None).await
                })
                .await;
            });
        }
    }

    fn poll_frames(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        for _ in 0..BUDGET {
            if self.session.closed().is_some() || !self.session.has_capacity() {
                break;
            }
            let Poll::Ready(Some(out)) = self.frames_rx.poll_recv(cx) else {
                break;
            };
            progress = true;
            self.queue(out);
        }
        progress
    }

    /// Moves frames from the channel into the session outbox. The caller checked the
    /// capacity: a group goes in whole (it may pass the bound by its own size, at most the
    /// attachments of one packet), so its frames stay together.
    fn queue(&mut self, out: Outgoing) {
        match out {
            Outgoing::One(frame, compress) => {
                let _ = self.session.send_with(frame, compress);
            }
            Outgoing::Group(frames, compress) => {
                for frame in frames {
                    self.session.push_unbounded_with(frame, compress);
                }
            }
        }
    }

    fn poll_get_aborted(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(tx) = self.pending_get.as_mut() else {
            return false;
        };
        if tx.poll_closed(cx).is_ready() {
            self.pending_get = None;
            tracing::debug!("pending polling GET aborted by the client");
            self.session
                .handle_transport_closed(CloseReason::TransportError(
                    "poll connection closed prematurely",
                ));
            return true;
        }
        false
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let handler_deadline = self
            .state
            .as_ref()
            .and_then(|state| self.engine.handler().poll_timeout(state));
        let deadline = [
            self.session.poll_timeout(),
            self.linger_until,
            handler_deadline,
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(deadline) = deadline else {
            return false;
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        if self.timer.as_mut().poll(cx).is_ready() {
            let at = now.max(deadline.into_std());
            self.session.handle_timeout(at);
            if handler_deadline.is_some_and(|d| d <= at)
                && let Some(state) = self.state.as_mut()
            {
                self.engine
                    .handler()
                    .handle_timeout(state, &self.socket, at);
            }
            if self.linger_until.is_some_and(|l| at >= l) {
                // The wait for a last poll is over (it is not started again: `is_done`).
                self.linger_expired = true;
                self.pending_get = None;
            }
            return true;
        }
        false
    }

    /// Hands events to the handler, as long as it is ready for messages.
    fn dispatch_events(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let mut progress = false;
        let handler = self.engine.handler();
        while let Some(event) = self.session.peek_event() {
            let is_message = matches!(event, Event::Message(_));
            // Once closed, what is left goes through without waiting.
            if is_message
                && self.session.closed().is_none()
                && let Some(state) = self.state.as_mut()
                && handler.poll_ready(state, cx).is_pending()
            {
                // Backpressure: nothing more is read, so the heartbeat waits too.
                self.session.set_reading_held(now, true);
                return progress;
            }
            let Some(event) = self.session.poll_event() else {
                break;
            };
            progress = true;
            match event {
                Event::Message(m) => {
                    if let Some(state) = self.state.as_mut() {
                        handler.on_message(state, &self.socket, m);
                    }
                }
                Event::Closed(reason) => {
                    tracing::debug!(%reason, "session closed");
                    if let Some(state) = self.state.take() {
                        handler.on_disconnect(state, &self.socket, reason);
                    }
                }
            }
        }
        // Every message was taken: reading goes on (and so does the heartbeat).
        self.session.set_reading_held(now, false);
        if let Some((reply, result)) = self.post_reply.take() {
            let _ = reply.send(result);
            progress = true;
        }
        progress
    }

    fn poll_write(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        if let Some(tx) = self.pending_get.take() {
            match self.session.poll_payload() {
                Some(payload) => {
                    let _ = tx.send(Ok(payload));
                    progress = true;
                }
                None => self.pending_get = Some(tx),
            }
        }
        // On close, the rest is written by `finish`.
        if self.session.closed().is_some() {
            return progress;
        }
        let Some(ws) = self.ws.as_mut() else {
            return progress;
        };
        while self.session.has_output() {
            match Pin::new(&mut *ws).poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => {
                    tracing::debug!("websocket write failed: {e}");
                    self.session
                        .handle_transport_closed(CloseReason::TransportError("write failed"));
                    return true;
                }
                Poll::Pending => break,
            }
            let Some((frame, compress)) = self.session.poll_transmit_with() else {
                break;
            };
            if let Err(e) = Pin::new(&mut *ws).start_send(ws::to_message(frame, compress)) {
                tracing::debug!("websocket write failed: {e}");
                self.session
                    .handle_transport_closed(CloseReason::TransportError("write failed"));
                return true;
            }
            self.ws_dirty = true;
            progress = true;
        }
        if self.ws_dirty {
            match Pin::new(&mut *ws).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.ws_dirty = false,
                Poll::Ready(Err(e)) => {
                    tracing::debug!("websocket flush failed: {e}");
                    self.session
                        .handle_transport_closed(CloseReason::TransportError("write failed"));
                    progress = true;
                }
                Poll::Pending => {}
            }
        }
        progress
    }

    /// Whether a poll that reaches a closed polling session still gets its last packets: after
    /// a close by the server (`close()`, shutdown: the queue and `1`). After a close by the
    /// client (`1` posted), an error or a missed pong the session is gone, as on Node: only a
    /// poll already waiting at the close is answered (the noop, or `1`), later ones get 400.
    fn delivers_after_close(&self) -> bool {
        self.ws.is_none()
            && self.session.transport() == TransportKind::Polling
            && self.session.has_output()
            && matches!(
                self.session.closed(),
                Some(CloseReason::ForcedClose | CloseReason::ServerShuttingDown)
            )
    }

    /// Whether the session waits for that poll: after a close by the server for
    /// `close_timeout` (Node's polling transport waits for the next poll to drain its buffer).
    fn lingers(&self) -> bool {
        self.delivers_after_close()
    }

    /// Once closed: whether anything is still owed to a polling client.
    fn is_done(&mut self, now: Instant) -> bool {
        if !self.lingers() {
            return true;
        }
        match self.linger_until {
            None => {
                // Closed during an upgrade, the client either switched (and got the packets on
                // the probe socket) or polls again at once after the failed probe.
                let short = self.closed_during_upgrade || self.probe.is_some();
                let wait = if short {
                    SHORT_LINGER.min(self.engine.config().close_timeout)
                } else {
                    self.engine.config().close_timeout
                };
                self.linger_until = Some(now + wait);
                false
            }
            Some(l) => self.linger_expired || now >= l,
        }
    }

    async fn finish(mut self: Box<Self>) {
        self.engine.remove(self.session.sid());
        self.drop_probe();
        std::future::poll_fn(|cx| {
            self.dispatch_events(cx, clock_now());
            Poll::Ready(())
        })
        .await;
        if let Some(tx) = self.pending_get.take() {
            let payload = match self.session.poll_payload() {
                Some(p) => p,
                None => self.session.noop_payload(),
            };
            let _ = tx.send(Ok(payload));
        }
        if let Some(mut ws) = self.ws.take() {
            let mut rest = Vec::new();
            while let Some(f) = self.session.poll_transmit_with() {
                rest.push(f);
            }
            let close = self.ws_close.take();
            let timeout = self.engine.config().close_timeout;
            let _ = tokio::time::timeout(timeout, async move {
                for (f, compress) in rest {
                    // After the peer's close frame nothing more may be sent; the close below
                    // still flushes the reply to it that the codec queued.
                    if ws.feed(ws::to_message(f, compress)).await.is_err() {
                        break;
                    }
                }
                match close {
                    // Ours, after a protocol violation: the close frame with its code.
                    Some(frame) => ws.close(Some(frame)).await,
                    // A close frame without a code, or, when the peer closed first, the reply
                    // to its close frame that the codec queued (sending a new one would fail).
                    None => SinkExt::close(&mut ws).await,
                }
            })
            .await;
        }
    }
}

/// The time on tokio's clock (so that tests with a paused clock drive every deadline).
pub(crate) fn clock_now() -> Instant {
    tokio::time::Instant::now().into_std()
}

pub(crate) async fn close_quietly(mut ws: WsStream, frame: Option<CloseFrame>) {
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), ws.close(frame)).await;
}
