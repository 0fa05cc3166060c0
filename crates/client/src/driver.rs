//! The connection's task: one per [`Client`](crate::Client) (one Engine.IO session at a time,
//! shared by every namespace). It owns all the state: the sans-IO session, the transports,
//! the namespaces, their ack tables and buffers. Handles talk to it through a bounded queue.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Sleep;

use ferrio_proto::engine::client::{
    ClientCloseReason, ClientEvent, ClientSession, ClientSessionConfig,
};
use ferrio_proto::engine::{Message, TransportKind};
use ferrio_proto::socket::{Args, DecodeLimits, Decoder, Encoded};

use crate::backoff::reconnect_delay;
use crate::config::{Auth, Config, Transport};
use crate::error::{
    AckError, ConnectError, ConnectErrorKind, DisconnectDetails, DisconnectReason, EmitError,
};
use crate::events::{ManagerEvent, ManagerListeners};
use crate::socket::{OutgoingEvent, Shared, SocketEvent};
use crate::transport::{Endpoint, TransportError, WsRead};

mod conn;
mod dispatch;
mod nsp;

use conn::{Conn, Fut, Io, Link, Probe, WriteError, flush_and_close};
use nsp::{Nsp, NspState, Queued, outgoing, with_ack_id};

/// A request from a handle that changes the state of a socket or the connection. Always
/// taken, even while the transport cannot write (so `disconnect()` never waits on a stalled
/// socket).
pub(crate) enum Control {
    Connect {
        nsp: Arc<str>,
    },
    Disconnect {
        nsp: Arc<str>,
    },
    CloseAll,
    Open,
    SendBuffer {
        nsp: Arc<str>,
        reply: oneshot::Sender<Vec<OutgoingEvent>>,
    },
    ClearSendBuffer {
        nsp: Arc<str>,
        reply: oneshot::Sender<usize>,
    },
}

/// A packet from a handle. Taken only while the session outbox has room: when the transport
/// falls behind, `emit` waits (backpressure).
pub(crate) enum Command {
    Emit {
        nsp: Arc<str>,
        packet: Encoded,
        volatile: bool,
        ack: Option<AckRequest>,
        reply: oneshot::Sender<Result<(), EmitError>>,
    },
    Ack {
        nsp: Arc<str>,
        packet: Encoded,
    },
}

/// The waiting side of an emit with ack.
pub(crate) struct AckRequest {
    pub(crate) tx: oneshot::Sender<Result<Args, AckError>>,
    pub(crate) timeout: Option<Duration>,
}

/// Messages from tasks the driver started itself (auth functions).
enum Internal {
    Auth {
        nsp: Arc<str>,
        generation: u64,
        value: Value,
    },
}

pub(crate) type Registry = Arc<Mutex<HashMap<Arc<str>, Arc<Shared>>>>;

/// Most items one source (commands, reads) yields in one pass of the loop, and most passes
/// before the task yields to others.
const BUDGET: usize = 64;

/// The connection's task.
pub(crate) struct Driver {
    config: Arc<Config>,
    endpoint: Endpoint,
    cmd_rx: mpsc::Receiver<Command>,
    cmd_tx: mpsc::WeakSender<Command>,
    ctl_rx: mpsc::Receiver<Control>,
    ctl_open: bool,
    timer: Pin<Box<Sleep>>,
    internal_tx: mpsc::UnboundedSender<Internal>,
    internal_rx: mpsc::UnboundedReceiver<Internal>,
    registry: Registry,
    manager: Arc<ManagerListeners>,
    sockets: HashMap<Arc<str>, Nsp>,
    /// Namespaces in the order they were first used: CONNECTs after a reconnection go in
    /// this order.
    order: Vec<Arc<str>>,
    conn: Option<Conn>,
    reconnect_at: Option<Instant>,
    attempts: u32,
    generation: u64,
    rng: StdRng,
    ack_deadlines: BinaryHeap<Reverse<(Instant, Arc<str>, u64)>>,
}

impl Driver {
    pub(crate) fn new(
        config: Arc<Config>,
        endpoint: Endpoint,
        cmd_rx: mpsc::Receiver<Command>,
        cmd_tx: mpsc::WeakSender<Command>,
        ctl_rx: mpsc::Receiver<Control>,
        registry: Registry,
        manager: Arc<ManagerListeners>,
    ) -> Self {
        let (internal_tx, internal_rx) = mpsc::unbounded_channel();
        let rng = match config.jitter_seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Driver {
            config,
            endpoint,
            cmd_rx,
            cmd_tx,
            ctl_rx,
            ctl_open: true,
            timer: Box::pin(tokio::time::sleep_until(tokio::time::Instant::now())),
            internal_tx,
            internal_rx,
            registry,
            manager,
            sockets: HashMap::new(),
            order: Vec::new(),
            conn: None,
            reconnect_at: None,
            attempts: 0,
            generation: 0,
            rng,
            ack_deadlines: BinaryHeap::new(),
        }
    }

    /// Runs until every handle is dropped.
    pub(crate) async fn run(mut self) {
        poll_fn(|cx| self.poll(cx)).await;
    }

    /// One hand-written poll loop over every source: control and packet commands, auth
    /// results, the transports' reads, the timer, then the session's output. No source is
    /// awaited inline and each is bounded per pass, so a transport that cannot write never
    /// delays pings, acks timers, reads or commands.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        for _ in 0..BUDGET {
            let mut progress = self.poll_internal(cx);
            progress |= self.poll_control(cx);
            match self.poll_commands(cx) {
                Some(p) => progress |= p,
                None => {
                    // Every handle is gone: close, write what is left on a task of its own.
                    self.close_all();
                    self.process(cx);
                    return Poll::Ready(());
                }
            }
            progress |= self.poll_io(cx);
            progress |= self.poll_timer(cx);
            progress |= self.process(cx);
            if !progress {
                return Poll::Pending;
            }
        }
        // Out of budget: let other tasks run, then come back.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn poll_internal(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        for _ in 0..BUDGET {
            let Poll::Ready(Some(i)) = self.internal_rx.poll_recv(cx) else {
                break;
            };
            progress = true;
            self.on_internal(i);
        }
        progress
    }

    fn poll_control(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        for _ in 0..BUDGET {
            if !self.ctl_open {
                break;
            }
            match self.ctl_rx.poll_recv(cx) {
                Poll::Ready(Some(c)) => {
                    progress = true;
                    // Packets the same handles sent before this go first, as far as the
                    // outbox takes them.
                    while self.accepts_packets() {
                        match self.cmd_rx.try_recv() {
                            Ok(cmd) => self.on_command(cmd),
                            Err(_) => break,
                        }
                    }
                    self.on_control(c);
                }
                Poll::Ready(None) => self.ctl_open = false,
                Poll::Pending => break,
            }
        }
        progress
    }

    /// Packet commands while the outbox has room; `None` once every handle is gone.
    fn poll_commands(&mut self, cx: &mut Context<'_>) -> Option<bool> {
        let mut progress = false;
        for _ in 0..BUDGET {
            if !self.accepts_packets() {
                break;
            }
            match self.cmd_rx.poll_recv(cx) {
                Poll::Ready(Some(c)) => {
                    progress = true;
                    self.on_command(c);
                }
                Poll::Ready(None) => return None,
                Poll::Pending => break,
            }
        }
        Some(progress)
    }

    /// Whether the session outbox has room for one more packet with its attachments.
    fn accepts_packets(&self) -> bool {
        self.conn.as_ref().is_none_or(|c| {
            c.session.buffered() + self.config.max_attachments + 2
                < self.config.max_buffered_packets
        })
    }

    fn poll_io(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        for _ in 0..BUDGET {
            let Some(c) = &mut self.conn else {
                break;
            };
            if c.session.is_closed() {
                break;
            }
            match c.poll_io(cx) {
                Poll::Ready(io) => {
                    progress = true;
                    self.on_io(io);
                    // Session events (a message, the open) are handled before the next read.
                    self.process(cx);
                }
                Poll::Pending => break,
            }
        }
        progress
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.next_deadline() else {
            return false;
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        if self.timer.as_mut().poll(cx).is_ready() {
            self.on_timer();
            return true;
        }
        false
    }

    // ---------------------------------------------------------------- commands

    fn on_control(&mut self, c: Control) {
        match c {
            Control::Connect { nsp } => self.connect_nsp(nsp),
            Control::Disconnect { nsp } => self.disconnect_nsp(&nsp),
            Control::CloseAll => self.close_all(),
            Control::Open => {
                if self.conn.is_none() && self.reconnect_at.is_none() {
                    self.open_engine();
                }
            }
            Control::SendBuffer { nsp, reply } => {
                let parser = self.config.parser;
                let events = self.sockets.get(&nsp).map_or_else(Vec::new, |n| {
                    n.send_buffer
                        .iter()
                        .filter_map(|(p, _)| outgoing(p, parser))
                        .collect()
                });
                let _ = reply.send(events);
            }
            Control::ClearSendBuffer { nsp, reply } => {
                let mut cleared = 0;
                if let Some(n) = self.sockets.get_mut(&nsp) {
                    cleared = n.send_buffer.len();
                    for (_, id) in std::mem::take(&mut n.send_buffer) {
                        if let Some(tx) = id.and_then(|id| n.acks.remove(&id)) {
                            let _ = tx.send(Err(AckError::Discarded));
                        }
                    }
                }
                let _ = reply.send(cleared);
            }
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Emit {
                nsp,
                packet,
                volatile,
                ack,
                reply,
            } => {
                let r = self.emit(nsp, packet, volatile, ack);
                let _ = reply.send(r);
            }
            Command::Ack { nsp, packet } => {
                if self
                    .sockets
                    .get(&nsp)
                    .is_some_and(|n| n.state == NspState::Connected)
                {
                    self.send_packet(&packet);
                }
            }
        }
    }

    fn on_internal(&mut self, i: Internal) {
        match i {
            Internal::Auth {
                nsp,
                generation,
                value,
            } => {
                let Some(n) = self.sockets.get(&nsp) else {
                    return;
                };
                if n.connect_generation == generation
                    && n.state == NspState::Connecting
                    && generation == self.generation
                {
                    self.send_connect(&nsp, Some(value));
                }
            }
        }
    }

    /// The namespaces in first-use order (only the active ones if `active`).
    fn names(&self, active: bool) -> Vec<Arc<str>> {
        self.order
            .iter()
            .filter(|k| self.sockets.get(*k).is_some_and(|n| n.active || !active))
            .cloned()
            .collect()
    }

    fn nsp_entry(&mut self, nsp: &Arc<str>) -> Option<&mut Nsp> {
        if !self.sockets.contains_key(nsp) {
            let shared = self.registry.lock().ok()?.get(nsp).cloned()?;
            self.sockets.insert(nsp.clone(), Nsp::new(shared));
            self.order.push(nsp.clone());
        }
        self.sockets.get_mut(nsp)
    }

    fn connect_nsp(&mut self, nsp: Arc<str>) {
        let Some(n) = self.nsp_entry(&nsp) else {
            return;
        };
        if n.active {
            return;
        }
        n.active = true;
        n.sync();
        match &self.conn {
            Some(c) if c.session.is_open() => self.start_connect(&nsp),
            Some(_) => {}
            None if self.reconnect_at.is_some() => {}
            None => self.open_engine(),
        }
    }

    fn disconnect_nsp(&mut self, nsp: &Arc<str>) {
        let Some(n) = self.sockets.get_mut(nsp) else {
            return;
        };
        let was_connected = n.state == NspState::Connected;
        n.active = false;
        n.state = NspState::Disconnected;
        n.id = None;
        n.fail_sent_acks();
        n.sync();
        if was_connected {
            let packet = self.config.parser.encode_disconnect(nsp);
            self.send_packet(&packet);
            self.notify_disconnect(nsp, DisconnectReason::IoClientDisconnect, None);
        }
        self.maybe_close_engine();
    }

    fn close_all(&mut self) {
        let names = self.names(false);
        for nsp in names {
            self.disconnect_nsp(&nsp);
        }
        self.reconnect_at = None;
        if let Some(c) = &mut self.conn {
            c.session.close();
        }
    }

    /// Closes the connection when no namespace wants it any more (as `socket.io-client`).
    fn maybe_close_engine(&mut self) {
        if self.sockets.values().any(|n| n.active) {
            return;
        }
        self.reconnect_at = None;
        self.attempts = 0;
        if let Some(c) = &mut self.conn {
            c.session.close();
        }
    }

    fn emit(
        &mut self,
        nsp: Arc<str>,
        packet: Encoded,
        volatile: bool,
        ack: Option<AckRequest>,
    ) -> Result<(), EmitError> {
        let now = Instant::now();
        let retries = self.config.retries.is_some();
        let default_timeout = self.config.ack_timeout;
        let max_acks = self.config.max_pending_acks;
        let cap = self.config.send_buffer_capacity;
        let Some(n) = self.nsp_entry(&nsp) else {
            return Err(EmitError::Closed);
        };
        let connected = n.state == NspState::Connected;
        if retries && !volatile {
            if n.queue.len() >= cap {
                return Err(EmitError::BufferFull);
            }
            let (tx, timeout) = match ack {
                Some(a) => (Some(a.tx), a.timeout.or(default_timeout)),
                None => (None, default_timeout),
            };
            n.queue.push_back(Queued {
                packet,
                tx,
                timeout,
                tries: 0,
                pending: None,
            });
            self.drain_queue(&nsp, false, now);
            return Ok(());
        }
        if volatile && !connected {
            return Ok(());
        }
        if !connected && n.send_buffer.len() >= cap {
            return Err(EmitError::BufferFull);
        }
        let mut id = None;
        let mut packet = packet;
        if let Some(a) = ack {
            if n.acks.len() >= max_acks {
                n.acks.retain(|_, tx| !tx.is_closed());
                if n.acks.len() >= max_acks {
                    return Err(EmitError::TooManyPendingAcks);
                }
            }
            let ack_id = n.take_ack_id();
            packet = with_ack_id(&packet, &nsp, ack_id, n.shared.parser);
            n.acks.insert(ack_id, a.tx);
            if let Some(t) = a.timeout.or(default_timeout) {
                self.ack_deadlines
                    .push(Reverse((now + t, nsp.clone(), ack_id)));
            }
            id = Some(ack_id);
        }
        let Some(n) = self.sockets.get_mut(&nsp) else {
            return Err(EmitError::Closed);
        };
        if connected {
            self.send_event(&nsp, &packet);
        } else {
            n.send_buffer.push_back((packet, id));
        }
        Ok(())
    }

    /// Sends the head of the `retries` queue if it is not in flight (or `force`).
    fn drain_queue(&mut self, nsp: &Arc<str>, force: bool, now: Instant) {
        let Some(n) = self.sockets.get_mut(nsp) else {
            return;
        };
        if n.state != NspState::Connected {
            return;
        }
        let id = n.next_ack_id;
        let Some(head) = n.queue.front_mut() else {
            return;
        };
        if head.pending.is_some() && !force {
            return;
        }
        head.tries += 1;
        head.pending = Some((id, head.timeout.map(|t| now + t)));
        let packet = with_ack_id(&head.packet, nsp, id, self.config.parser);
        n.take_ack_id();
        self.send_event(nsp, &packet);
    }

    /// The head of the `retries` queue got its ack, or ran out of time.
    fn complete_head(&mut self, nsp: &Arc<str>, result: Option<Args>, now: Instant) {
        let retries = self.config.retries.unwrap_or(0);
        let Some(n) = self.sockets.get_mut(nsp) else {
            return;
        };
        let Some(head) = n.queue.front_mut() else {
            return;
        };
        match result {
            Some(args) => {
                if let Some(head) = n.queue.pop_front()
                    && let Some(tx) = head.tx
                {
                    let _ = tx.send(Ok(args));
                }
            }
            None if head.tries > retries => {
                if let Some(head) = n.queue.pop_front()
                    && let Some(tx) = head.tx
                {
                    let _ = tx.send(Err(AckError::Timeout));
                }
            }
            None => head.pending = None,
        }
        self.drain_queue(nsp, false, now);
    }

    // ---------------------------------------------------------------- engine

    fn open_engine(&mut self) {
        self.generation += 1;
        self.reconnect_at = None;
        let first = self
            .config
            .transports
            .first()
            .copied()
            .unwrap_or(Transport::Polling);
        let mut config = ClientSessionConfig::default();
        config.handshake_timeout = self.config.timeout;
        config.upgrade =
            self.config.upgrade && self.config.transports.contains(&Transport::WebSocket);
        config.max_buffered_packets = self.config.max_buffered_packets;
        let (kind, link) = match first {
            Transport::Polling => {
                let ep = self.endpoint.clone();
                let timeout = self.config.request_timeout;
                let get: Fut<Bytes> = Box::pin(async move { ep.get(None, timeout).await });
                (
                    TransportKind::Polling,
                    Link::Polling {
                        get: Some(get),
                        post: None,
                    },
                )
            }
            Transport::WebSocket => {
                let ep = self.endpoint.clone();
                (
                    TransportKind::WebSocket,
                    Link::WsConnecting(Box::pin(async move { ep.websocket(None).await })),
                )
            }
        };
        tracing::debug!(transport = kind.as_str(), "opening connection");
        self.conn = Some(Conn {
            session: ClientSession::new(config, kind, Instant::now()),
            sid: None,
            link,
            probe: Probe::None,
            decoder: Decoder::with_parser(
                {
                    let mut l = DecodeLimits::default();
                    l.max_attachments = self.config.max_attachments;
                    l
                },
                self.config.parser,
            ),
            details: None,
            pings_seen: 0,
        });
    }

    /// Starts the CONNECT of a namespace (evaluating its auth).
    fn start_connect(&mut self, nsp: &Arc<str>) {
        let generation = self.generation;
        let default_auth = self.config.auth.clone();
        let Some(n) = self.sockets.get_mut(nsp) else {
            return;
        };
        n.state = NspState::Connecting;
        n.connect_generation = generation;
        let auth = n
            .shared
            .auth
            .lock()
            .ok()
            .and_then(|a| a.clone())
            .unwrap_or(default_auth);
        match auth {
            Auth::None => self.send_connect(nsp, None),
            Auth::Value(v) => self.send_connect(nsp, Some(v)),
            Auth::Fn(f) => {
                let tx = self.internal_tx.clone();
                let nsp = nsp.clone();
                tokio::spawn(async move {
                    let value = f().await;
                    let _ = tx.send(Internal::Auth {
                        nsp,
                        generation,
                        value,
                    });
                });
            }
        }
    }

    fn send_connect(&mut self, nsp: &Arc<str>, auth: Option<Value>) {
        let Some(n) = self.sockets.get(nsp) else {
            return;
        };
        let parser = self.config.parser;
        let packet = match (&n.pid, auth) {
            (Some(pid), auth) => {
                let mut obj = match auth {
                    Some(Value::Object(m)) => m,
                    _ => Map::new(),
                };
                obj.insert("pid".into(), Value::String(pid.clone()));
                if let Some(o) = &n.last_offset {
                    obj.insert("offset".into(), Value::String(o.clone()));
                }
                parser.encode_connect(nsp, Some(&Value::Object(obj)))
            }
            (None, auth) => parser.encode_connect(nsp, auth.as_ref()),
        };
        self.send_packet(&packet);
    }

    /// Queues an event packet of `nsp`, and shows it to the socket's outgoing listeners.
    fn send_event(&mut self, nsp: &Arc<str>, packet: &Encoded) {
        if let Some(n) = self.sockets.get(nsp)
            && let Ok(l) = n.shared.listeners.read()
            && !l.any_outgoing.is_empty()
            && let Some(event) = outgoing(packet, self.config.parser)
        {
            for h in &l.any_outgoing {
                tokio::spawn((h.handler)(event.clone()));
            }
        }
        self.send_packet(packet);
    }

    /// Queues a Socket.IO packet (text then attachments) on the session.
    fn send_packet(&mut self, packet: &Encoded) {
        let Some(c) = &mut self.conn else {
            return;
        };
        for f in packet.frames() {
            if let Err(e) = c.session.send(f) {
                tracing::warn!(error = %e, "packet dropped");
                return;
            }
        }
    }

    fn schedule_reconnect(&mut self) {
        let c = &self.config;
        if !c.reconnection || !self.sockets.values().any(|n| n.active) {
            self.deactivate_all(None);
            return;
        }
        if self.attempts >= c.reconnection_attempts {
            tracing::debug!("reconnection failed");
            self.attempts = 0;
            self.manager.emit(ManagerEvent::ReconnectFailed);
            let err = ConnectError::new(ConnectErrorKind::ReconnectFailed, "reconnection failed");
            self.deactivate_all(Some(err));
            return;
        }
        let delay = reconnect_delay(
            self.attempts,
            c.reconnection_delay,
            c.reconnection_delay_max,
            c.randomization_factor,
            self.rng.random::<f64>(),
        );
        self.attempts += 1;
        tracing::debug!(attempt = self.attempts, ?delay, "reconnecting");
        self.reconnect_at = Some(Instant::now() + delay);
    }

    fn deactivate_all(&mut self, err: Option<ConnectError>) {
        let names = self.names(true);
        for nsp in names {
            if let Some(n) = self.sockets.get_mut(&nsp) {
                n.active = false;
                n.sync();
            }
            if let Some(e) = &err {
                self.notify(&nsp, SocketEvent::ConnectError(e.clone()));
            }
        }
    }

    /// The session closed: notify the namespaces, close the transports, and reconnect if
    /// wanted.
    fn teardown(&mut self, reason: ClientCloseReason) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        self.generation += 1;
        let was_open = conn.sid.is_some();
        tracing::debug!(%reason, "connection closed");
        let details = conn.details.take().or_else(|| match reason {
            ClientCloseReason::TransportClose => Some(DisconnectDetails::new(
                "transport closed by the server",
                None,
                None,
            )),
            _ => None,
        });
        flush_and_close(&self.endpoint, &mut conn, self.config.timeout);
        let client_close = reason == ClientCloseReason::ForcedClose;
        let error = match &reason {
            ClientCloseReason::HandshakeTimeout => {
                Some(ConnectError::new(ConnectErrorKind::Timeout, "timeout"))
            }
            ClientCloseReason::TransportError(d) => {
                Some(ConnectError::new(ConnectErrorKind::Transport, d.clone()))
            }
            ClientCloseReason::TransportClose | ClientCloseReason::ParseError if !was_open => Some(
                ConnectError::new(ConnectErrorKind::Transport, reason.as_str()),
            ),
            _ => None,
        };
        if let Some(e) = &error {
            self.manager.emit(ManagerEvent::Error(e.clone()));
        }
        if was_open {
            self.manager.emit(ManagerEvent::Close {
                reason: reason.as_str(),
                details: details.clone(),
            });
        } else if self.attempts > 0
            && let Some(e) = error
        {
            self.manager.emit(ManagerEvent::ReconnectError(e));
        }
        let names = self.names(false);
        for nsp in &names {
            let Some(n) = self.sockets.get_mut(nsp) else {
                continue;
            };
            let was_connected = n.state == NspState::Connected;
            n.state = NspState::Disconnected;
            n.id = None;
            n.fail_sent_acks();
            n.sync();
            if client_close {
                continue;
            }
            if was_open {
                if n.active && !was_connected {
                    // A CONNECT was under way: it failed with the connection.
                    let err = ConnectError::new(ConnectErrorKind::Transport, reason.as_str());
                    self.notify(nsp, SocketEvent::ConnectError(err));
                }
                if was_connected {
                    let r = match &reason {
                        ClientCloseReason::PingTimeout => DisconnectReason::PingTimeout,
                        ClientCloseReason::ParseError => DisconnectReason::ParseError,
                        ClientCloseReason::TransportError(_) => DisconnectReason::TransportError,
                        _ => DisconnectReason::TransportClose,
                    };
                    self.notify_disconnect(nsp, r, details.clone());
                }
            } else if n.active {
                let kind = match reason {
                    ClientCloseReason::HandshakeTimeout => ConnectErrorKind::Timeout,
                    _ => ConnectErrorKind::Transport,
                };
                let message = match &reason {
                    ClientCloseReason::TransportError(d) => d.clone(),
                    other => other.as_str().to_owned(),
                };
                self.notify(
                    nsp,
                    SocketEvent::ConnectError(ConnectError::new(kind, message)),
                );
            }
        }
        if !client_close {
            self.schedule_reconnect();
        }
    }

    /// A Socket.IO protocol violation: the whole connection goes (`parse error`).
    fn protocol_error(&mut self, detail: &str) {
        tracing::warn!(detail, "invalid packet from the server");
        if let Some(c) = &mut self.conn {
            c.decoder.reset();
        }
        self.teardown(ClientCloseReason::ParseError);
    }

    // ---------------------------------------------------------------- I/O

    fn on_io(&mut self, io: Io) {
        let now = Instant::now();
        let Some(c) = &mut self.conn else {
            return;
        };
        let fail = |c: &mut Conn, description: &str, e: TransportError| {
            c.details = Some(DisconnectDetails::new(description, e.1, Some(e.0.clone())));
            c.session.handle_transport_error(e.0);
        };
        match io {
            Io::Get(Ok(body)) => c.session.handle_payload(now, body),
            Io::Get(Err(e)) => fail(c, "xhr poll error", e),
            Io::Post(Err(e)) => fail(c, "xhr post error", e),
            Io::Post(Ok(())) => {}
            Io::WsConnected(Ok(ws)) => c.link = Link::Ws(Box::new(ws)),
            Io::WsConnected(Err(e)) | Io::Ws(WsRead::Error(e)) => fail(c, "websocket error", e),
            Io::Ws(WsRead::Frame(f)) => c.session.handle_frame(now, f),
            Io::Ws(WsRead::Closed(code)) => {
                c.details = Some(DisconnectDetails::new(
                    "websocket connection closed",
                    code,
                    None,
                ));
                c.session.handle_transport_closed();
            }
            Io::ProbeConnected(Ok(ws)) => {
                c.probe = Probe::Open(Box::new(ws));
                c.session.handle_probe_open(now);
            }
            Io::ProbeConnected(Err(e)) => {
                tracing::debug!(error = %e.0, "upgrade probe failed");
                c.session.handle_probe_error();
            }
            Io::Probe(WsRead::Frame(f)) => c.session.handle_probe_frame(now, f),
            Io::Probe(_) => c.session.handle_probe_error(),
        }
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        if self.reconnect_at.is_some_and(|t| now >= t) && self.conn.is_none() {
            self.manager
                .emit(ManagerEvent::ReconnectAttempt(self.attempts));
            self.open_engine();
        }
        let timeout = self.config.timeout;
        if let Some(c) = &mut self.conn {
            c.session.handle_timeout(now);
            let bound = c.stall_bound(timeout);
            if c.stalled_since(now).is_some_and(|t| now >= t + bound) {
                let detail = format!("no byte written for {bound:?}");
                tracing::debug!(detail, "websocket write stalled: giving up the connection");
                c.details = Some(DisconnectDetails::new(
                    "websocket error",
                    None,
                    Some(format!("write stalled: {detail}")),
                ));
                c.session
                    .handle_transport_error(format!("write stalled: {detail}"));
            }
        }
        while let Some(Reverse((t, _, _))) = self.ack_deadlines.peek() {
            if *t > now {
                break;
            }
            if let Some(Reverse((_, nsp, id))) = self.ack_deadlines.pop()
                && let Some(tx) = self.sockets.get_mut(&nsp).and_then(|n| n.acks.remove(&id))
            {
                let _ = tx.send(Err(AckError::Timeout));
            }
        }
        let expired: Vec<Arc<str>> = self
            .sockets
            .iter()
            .filter(|(_, n)| {
                n.queue
                    .front()
                    .and_then(|q| q.pending)
                    .and_then(|(_, d)| d)
                    .is_some_and(|d| now >= d)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for nsp in expired {
            self.complete_head(&nsp, None, now);
        }
    }

    fn next_deadline(&mut self) -> Option<Instant> {
        let now = Instant::now();
        let timeout = self.config.timeout;
        let (session, stall) = match &mut self.conn {
            Some(c) => {
                let bound = c.stall_bound(timeout);
                (
                    c.session.poll_timeout(),
                    c.stalled_since(now).map(|t| t + bound),
                )
            }
            None => (None, None),
        };
        let ack = self.ack_deadlines.peek().map(|Reverse((t, _, _))| *t);
        let queue = self
            .sockets
            .values()
            .filter_map(|n| n.queue.front().and_then(|q| q.pending).and_then(|(_, d)| d))
            .min();
        [session, stall, ack, queue, self.reconnect_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Handles session events and starts or writes output until nothing changes; whether
    /// anything did. Writes go only as far as the socket takes them now.
    fn process(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        loop {
            while let Some(ev) = self.conn.as_mut().and_then(|c| c.session.poll_event()) {
                progress = true;
                self.on_session_event(ev);
            }
            let Some(c) = &mut self.conn else {
                return progress;
            };
            let pings = c.session.pings();
            while c.pings_seen < pings {
                c.pings_seen += 1;
                self.manager.emit(ManagerEvent::Ping);
            }
            let now = Instant::now();
            match c.poll_write(cx, now) {
                Ok(p) => progress |= p,
                Err(WriteError::Link(e)) => {
                    tracing::debug!(error = %e.0, "websocket write failed");
                    c.details = Some(DisconnectDetails::new(
                        "websocket error",
                        None,
                        Some(e.0.clone()),
                    ));
                    c.session.handle_transport_error(e.0);
                    progress = true;
                    continue;
                }
                Err(WriteError::Probe(e)) => {
                    tracing::debug!(error = %e.0, "upgrade probe failed");
                    c.probe = Probe::None;
                    c.session.handle_probe_error();
                    progress = true;
                    continue;
                }
            }
            // Polling requests.
            let post_timeout = self
                .config
                .request_timeout
                .unwrap_or_else(|| c.stall_bound(self.config.timeout));
            if let (Link::Polling { get, post }, Some(sid)) = (&mut c.link, c.sid) {
                if get.is_none() && c.session.wants_poll() {
                    let ep = self.endpoint.clone();
                    let timeout = self.config.request_timeout;
                    *get = Some(Box::pin(async move { ep.get(Some(sid), timeout).await }));
                    progress = true;
                }
                if post.is_none()
                    && let Some(body) = c.session.poll_payload()
                {
                    let ep = self.endpoint.clone();
                    *post = Some(Box::pin(
                        async move { ep.post(sid, body, post_timeout).await },
                    ));
                    progress = true;
                }
            }
            // Upgrade.
            if c.session.wants_probe()
                && matches!(c.probe, Probe::None)
                && let Some(sid) = c.sid
            {
                let ep = self.endpoint.clone();
                c.probe = Probe::Connecting(Box::pin(async move { ep.websocket(Some(sid)).await }));
                progress = true;
            }
            if c.session.is_pausing() && c.polling_idle() {
                c.session.handle_polling_paused(now);
                progress = true;
                continue;
            }
            return progress;
        }
    }

    fn on_session_event(&mut self, ev: ClientEvent) {
        match ev {
            ClientEvent::Opened(open) => {
                tracing::debug!(sid = %open.sid, "connection open");
                if let Some(c) = &mut self.conn {
                    c.sid = Some(open.sid);
                }
                self.manager.emit(ManagerEvent::Open);
                if self.attempts > 0 {
                    self.manager.emit(ManagerEvent::Reconnect(self.attempts));
                }
                self.attempts = 0;
                let names = self.names(true);
                for nsp in names {
                    self.start_connect(&nsp);
                }
            }
            ClientEvent::Message(Message::Text(t)) => {
                let r = match &mut self.conn {
                    Some(c) => c.decoder.handle_text(t),
                    None => return,
                };
                match r {
                    Ok(Some(p)) => self.on_packet(p),
                    Ok(None) => {}
                    Err(e) => self.protocol_error(&e.to_string()),
                }
            }
            ClientEvent::Message(Message::Binary(b)) => {
                let r = match &mut self.conn {
                    Some(c) => c.decoder.handle_binary(b),
                    None => return,
                };
                match r {
                    Ok(Some(p)) => self.on_packet(p),
                    Ok(None) => {}
                    Err(e) => self.protocol_error(&e.to_string()),
                }
            }
            ClientEvent::Upgraded => {
                let Some(c) = &mut self.conn else {
                    return;
                };
                let Probe::Open(ws) = std::mem::replace(&mut c.probe, Probe::None) else {
                    return;
                };
                tracing::debug!("upgraded to websocket");
                // The probe is the transport now; `5` and what was queued during the pause
                // are written on it first (see `Conn::poll_write`).
                c.link = Link::Ws(ws);
            }
            ClientEvent::UpgradeFailed => {
                if let Some(c) = &mut self.conn {
                    c.probe = Probe::None;
                }
            }
            ClientEvent::Closed(reason) => self.teardown(reason),
        }
    }
}
