//! The connection's task: one per [`Client`](crate::Client) (one Engine.IO session at a time,
//! shared by every namespace). It owns all the state: the sans-IO session, the transports,
//! the namespaces, their ack tables and buffers. Handles talk to it through a bounded queue.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::future::poll_fn;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

use ferrio_proto::engine::client::{
    ClientCloseReason, ClientEvent, ClientSession, ClientSessionConfig,
};
use ferrio_proto::engine::{Frame, Message, TransportKind};
use ferrio_proto::socket::{
    Args, DecodeLimits, Decoder, Encoded, encode_connect, encode_connect_empty, encode_disconnect,
};

use crate::backoff::reconnect_delay;
use crate::config::{Auth, Config, Transport};
use crate::error::{AckError, ConnectError, ConnectErrorKind, DisconnectReason, EmitError};
use crate::socket::{Shared, SocketEvent};
use crate::transport::{Endpoint, WsRead, ws_write};

mod conn;
mod dispatch;
mod nsp;

use conn::{Conn, Fut, Io, Link, Probe, flush_and_close};
use nsp::{Nsp, NspState, Queued, with_ack_id};

/// A request from a handle.
pub(crate) enum Command {
    Connect {
        nsp: Arc<str>,
    },
    Disconnect {
        nsp: Arc<str>,
    },
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
    CloseAll,
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

/// The connection's task.
pub(crate) struct Driver {
    config: Arc<Config>,
    endpoint: Endpoint,
    cmd_rx: mpsc::Receiver<Command>,
    cmd_tx: mpsc::WeakSender<Command>,
    internal_tx: mpsc::UnboundedSender<Internal>,
    internal_rx: mpsc::UnboundedReceiver<Internal>,
    registry: Registry,
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
        registry: Registry,
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
            internal_tx,
            internal_rx,
            registry,
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
        loop {
            self.pump().await;
            let deadline = self.next_deadline();
            let accept = self.conn.as_ref().is_none_or(|c| {
                c.session.buffered() + self.config.max_attachments + 2
                    < self.config.max_buffered_packets
            });
            let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(
                deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)),
            ));
            tokio::select! {
                Some(i) = self.internal_rx.recv() => self.on_internal(i),
                cmd = self.cmd_rx.recv(), if accept => match cmd {
                    Some(c) => self.on_command(c),
                    None => {
                        self.close_all();
                        self.pump().await;
                        return;
                    }
                },
                io = poll_fn(|cx| match &mut self.conn {
                    Some(c) => c.poll_io(cx),
                    None => Poll::Pending,
                }) => self.on_io(io),
                () = sleep => self.on_timer(),
            }
        }
    }

    // ---------------------------------------------------------------- commands

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Connect { nsp } => self.connect_nsp(nsp),
            Command::Disconnect { nsp } => self.disconnect_nsp(&nsp),
            Command::CloseAll => self.close_all(),
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
            let packet = encode_disconnect(nsp);
            self.send_packet(&packet);
            self.notify(
                nsp,
                SocketEvent::Disconnect(DisconnectReason::IoClientDisconnect),
            );
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
            packet = with_ack_id(&packet, &nsp, ack_id);
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
            self.send_packet(&packet);
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
        let packet = with_ack_id(&head.packet, nsp, id);
        n.take_ack_id();
        self.send_packet(&packet);
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
                let get: Fut<Bytes> = Box::pin(async move { ep.get(None).await });
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
            decoder: Decoder::new({
                let mut l = DecodeLimits::default();
                l.max_attachments = self.config.max_attachments;
                l
            }),
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
                encode_connect(nsp, &obj)
            }
            (None, Some(v)) => encode_connect(nsp, &v),
            (None, None) => encode_connect_empty(nsp),
        };
        self.send_packet(&packet);
    }

    /// Queues a Socket.IO packet (text then attachments) on the session.
    fn send_packet(&mut self, packet: &Encoded) {
        let Some(c) = &mut self.conn else {
            return;
        };
        let frames = std::iter::once(Frame::Text(packet.text.clone()))
            .chain(packet.attachments.iter().cloned().map(Frame::Binary));
        for f in frames {
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
        flush_and_close(&self.endpoint, &mut conn, self.config.timeout);
        let client_close = reason == ClientCloseReason::ForcedClose;
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
                    self.notify(nsp, SocketEvent::Disconnect(r));
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
        match io {
            Io::Get(Ok(body)) => c.session.handle_payload(now, body),
            Io::Get(Err(e)) | Io::Post(Err(e)) => c.session.handle_transport_error(e.0),
            Io::Post(Ok(())) => {}
            Io::WsConnected(Ok(ws)) => c.link = Link::Ws(Box::new(ws)),
            Io::WsConnected(Err(e)) => c.session.handle_transport_error(e.0),
            Io::Ws(WsRead::Frame(f)) => c.session.handle_frame(now, f),
            Io::Ws(WsRead::Closed) => c.session.handle_transport_closed(),
            Io::Ws(WsRead::Error(e)) => c.session.handle_transport_error(e.0),
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
            self.open_engine();
        }
        if let Some(c) = &mut self.conn {
            c.session.handle_timeout(now);
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

    fn next_deadline(&self) -> Option<Instant> {
        let session = self.conn.as_ref().and_then(|c| c.session.poll_timeout());
        let ack = self.ack_deadlines.peek().map(|Reverse((t, _, _))| *t);
        let queue = self
            .sockets
            .values()
            .filter_map(|n| n.queue.front().and_then(|q| q.pending).and_then(|(_, d)| d))
            .min();
        [session, ack, queue, self.reconnect_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Processes session events and writes output until nothing changes.
    async fn pump(&mut self) {
        loop {
            while let Some(ev) = self.conn.as_mut().and_then(|c| c.session.poll_event()) {
                self.on_session_event(ev).await;
            }
            let Some(c) = &mut self.conn else {
                return;
            };
            let now = Instant::now();
            let timeout = self.config.timeout;
            // WebSocket output.
            if let Link::Ws(ws) = &mut c.link {
                let frames: Vec<Frame> = std::iter::from_fn(|| c.session.poll_transmit()).collect();
                if !frames.is_empty()
                    && let Err(e) = ws_write(ws, frames, timeout).await
                {
                    c.session.handle_transport_error(e.0);
                    continue;
                }
            }
            // Probe output.
            if let Probe::Open(ws) = &mut c.probe {
                let frames: Vec<Frame> =
                    std::iter::from_fn(|| c.session.poll_probe_transmit()).collect();
                if !frames.is_empty()
                    && let Err(e) = ws_write(ws, frames, timeout).await
                {
                    tracing::debug!(error = %e.0, "upgrade probe failed");
                    c.probe = Probe::None;
                    c.session.handle_probe_error();
                    continue;
                }
            }
            // Polling requests.
            if let (Link::Polling { get, post }, Some(sid)) = (&mut c.link, c.sid) {
                if get.is_none() && c.session.wants_poll() {
                    let ep = self.endpoint.clone();
                    *get = Some(Box::pin(async move { ep.get(Some(sid)).await }));
                }
                if post.is_none()
                    && let Some(body) = c.session.poll_payload()
                {
                    let ep = self.endpoint.clone();
                    *post = Some(Box::pin(async move { ep.post(sid, body).await }));
                }
            }
            // Upgrade.
            if c.session.wants_probe()
                && matches!(c.probe, Probe::None)
                && let Some(sid) = c.sid
            {
                let ep = self.endpoint.clone();
                c.probe = Probe::Connecting(Box::pin(async move { ep.websocket(Some(sid)).await }));
            }
            if c.session.is_pausing() && c.polling_idle() {
                c.session.handle_polling_paused(now);
                continue;
            }
            return;
        }
    }

    async fn on_session_event(&mut self, ev: ClientEvent) {
        match ev {
            ClientEvent::Opened(open) => {
                tracing::debug!(sid = %open.sid, "connection open");
                if let Some(c) = &mut self.conn {
                    c.sid = Some(open.sid);
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
                let timeout = self.config.timeout;
                let Some(c) = &mut self.conn else {
                    return;
                };
                let Probe::Open(mut ws) = std::mem::replace(&mut c.probe, Probe::None) else {
                    return;
                };
                tracing::debug!("upgraded to websocket");
                let frames: Vec<Frame> =
                    std::iter::from_fn(|| c.session.poll_probe_transmit()).collect();
                let r = ws_write(&mut ws, frames, timeout).await;
                c.link = Link::Ws(ws);
                if let Err(e) = r {
                    c.session.handle_transport_error(e.0);
                }
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
