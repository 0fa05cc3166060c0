//! One Engine.IO connection seen by Socket.IO: packet decoding, namespace joins, dispatch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use ferrio_engine::{CloseReason, EngineHandler, EngineSocket, Message, Protocol, Sid};
use ferrio_proto::socket::{Decoder, Encoded, PacketData, v4};

use crate::adapter::Room;
use crate::close::DrainGuard;
use crate::handler::{ConnectParts, MessageParts};
use crate::io::IoInner;
use crate::ns::ConnectGuard;
use crate::socket::{DisconnectReason, Origin, SocketRef};
use crate::stats::PartialGauge;

/// The Engine.IO handler of a [`crate::SocketIo`].
pub struct IoHandler {
    io: Arc<IoInner>,
}

impl IoHandler {
    pub(crate) fn new(io: Arc<IoInner>) -> Self {
        IoHandler { io }
    }
}

/// What the Engine.IO driver keeps for a connection (owned by it: no lock).
pub struct Conn {
    decoder: Decoder,
    /// This connection's share of the partial-packet counters of [`crate::SocketIo::stats`].
    partials: PartialGauge,
    shared: Arc<ConnShared>,
    /// Until a namespace is joined: when the connection is closed for not joining one
    /// (`connect_timeout`). A deadline of the driver's timer, not a task of its own.
    connect_deadline: Option<std::time::Instant>,
    /// Counts the connection as open for `io.close()` until the driver drops it.
    _live: DrainGuard,
}

impl Conn {
    /// Brings the partial-packet counters up to date with the decoder.
    fn sync_partials(&mut self) {
        self.partials
            .update(self.decoder.is_pending(), self.decoder.dropped_partials());
    }
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").finish_non_exhaustive()
    }
}

enum Slot {
    /// Middlewares are running.
    Connecting,
    Connected(SocketRef),
}

/// The part of a connection that connect tasks and sockets reach.
pub(crate) struct ConnShared {
    engine: EngineSocket,
    sockets: Mutex<HashMap<String, Slot>>,
    joined_once: AtomicBool,
}

impl ConnShared {
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.sockets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets a namespace (after a disconnect).
    pub(crate) fn remove(&self, ns: &str) {
        self.slots().remove(ns);
    }

    /// Closes every socket of this connection.
    pub(crate) fn close_all(&self, reason: DisconnectReason, description: Option<&'static str>) {
        for s in self.take_connected() {
            s.0.close(reason, description);
        }
    }

    /// Empties the map; the sockets that were connected.
    fn take_connected(&self) -> Vec<SocketRef> {
        self.slots()
            .drain()
            .filter_map(|(_, s)| match s {
                Slot::Connected(s) => Some(s),
                Slot::Connecting => None,
            })
            .collect()
    }

    /// Disconnects every socket of this connection as the server does
    /// (`server namespace disconnect`, a DISCONNECT packet each): Node's
    /// `client._disconnect()`, behind `socket.disconnect(true)`.
    pub(crate) fn disconnect_all(&self) {
        for s in self.take_connected() {
            s.0.server_disconnect();
        }
    }

    fn send(&self, e: &Encoded) {
        let _ = crate::socket::send_frames(&self.engine, e, false, true);
    }
}

impl EngineHandler for IoHandler {
    type Session = Conn;

    fn on_connect(&self, engine: &EngineSocket) -> Conn {
        let shared = Arc::new(ConnShared {
            engine: engine.clone(),
            sockets: Mutex::new(HashMap::new()),
            joined_once: AtomicBool::new(false),
        });
        let timeout = self.io.shared.config.connect_timeout;
        let mut conn = Conn {
            partials: PartialGauge::new(self.io.shared.counters.clone()),
            decoder: Decoder::with_parser(
                self.io.shared.config.decode_limits.clone(),
                self.io.shared.config.parser,
            ),
            shared,
            connect_deadline: tokio::time::Instant::now().into_std().checked_add(timeout),
            _live: self.io.shared.live.guard(),
        };
        if is_v3(engine) {
            // Socket.IO v4: the client is in `/` without asking (Node's `client.connect("/")`).
            self.connect(&mut conn, engine, "/".to_owned(), empty_auth());
        }
        conn
    }

    /// Backpressure: the connection takes no more messages while one of its sockets has a
    /// full handler queue. The client is slowed down (its WebSocket is not read, its POST not
    /// answered) instead of disconnected.
    fn poll_ready(&self, conn: &mut Conn, cx: &mut Context<'_>) -> Poll<()> {
        let slots = conn.shared.slots();
        for slot in slots.values() {
            if let Slot::Connected(s) = slot
                && s.poll_ready(cx).is_pending()
            {
                return Poll::Pending;
            }
        }
        Poll::Ready(())
    }

    /// A binary packet's missing attachments are due (`DecodeLimits::attachment_timeout`), or
    /// no namespace was joined in time (`connect_timeout`).
    fn poll_timeout(&self, conn: &Conn) -> Option<std::time::Instant> {
        let connect = conn
            .connect_deadline
            .filter(|_| !conn.shared.joined_once.load(Ordering::Acquire));
        match (conn.decoder.poll_timeout(), connect) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn handle_timeout(&self, conn: &mut Conn, engine: &EngineSocket, now: std::time::Instant) {
        if conn.connect_deadline.is_some_and(|d| d <= now) {
            conn.connect_deadline = None;
            if !conn.shared.joined_once.load(Ordering::Acquire) {
                tracing::debug!(sid = %engine.sid(), "no namespace joined in time: closing");
                engine.close();
            }
        }
        let timed_out = conn.decoder.handle_timeout(now);
        conn.sync_partials();
        if timed_out {
            let dropped = conn.decoder.dropped_partials();
            tracing::debug!(sid = %engine.sid(), dropped, "attachments not in time: packet dropped");
        }
    }

    fn on_message(&self, conn: &mut Conn, engine: &EngineSocket, message: Message) {
        let now = tokio::time::Instant::now().into_std();
        let decoded = match message {
            Message::Text(t) => conn.decoder.handle_text_at(now, t),
            Message::Binary(b) => conn.decoder.handle_binary_at(now, b),
        };
        conn.sync_partials();
        let packet = match decoded {
            Ok(Some(p)) => p,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(sid = %engine.sid(), "invalid packet: {e}: closing");
                return protocol_error(conn, engine, DisconnectReason::ForcedClose);
            }
        };
        let nsp = packet.nsp;
        match packet.data {
            PacketData::Connect(auth) => {
                let (nsp, auth) = match is_v3(engine) {
                    // v4: no payload; the query of the namespace is the auth.
                    true => {
                        let (name, query) = v4::split_namespace(&nsp);
                        (name.to_owned(), serde_json::Value::Object(query))
                    }
                    false => {
                        let auth = match auth {
                            Some(raw) => {
                                serde_json::from_slice(&raw).unwrap_or(serde_json::Value::Null)
                            }
                            None => empty_auth(),
                        };
                        (nsp, auth)
                    }
                };
                self.connect(conn, engine, nsp, auth)
            }
            PacketData::Event { name, args, id } => match connected(conn, &nsp) {
                Some(socket) => socket.0.dispatch(MessageParts {
                    event: name,
                    args,
                    ack_id: id,
                }),
                None => {
                    tracing::debug!(sid = %engine.sid(), %nsp, "event for a namespace not joined");
                    protocol_error(conn, engine, DisconnectReason::ForcedServerClose);
                }
            },
            PacketData::Ack { args, id } => match connected(conn, &nsp) {
                Some(socket) => {
                    if let Some(id) = id {
                        socket.resolve_ack(id, args);
                    }
                }
                None => protocol_error(conn, engine, DisconnectReason::ForcedServerClose),
            },
            PacketData::Disconnect => {
                let slot = conn.shared.slots().remove(&nsp);
                match slot {
                    Some(Slot::Connected(socket)) => socket
                        .0
                        .close(DisconnectReason::ClientNamespaceDisconnect, None),
                    Some(Slot::Connecting) => {}
                    None => protocol_error(conn, engine, DisconnectReason::ForcedServerClose),
                }
            }
            PacketData::ConnectError(_) => {
                tracing::debug!(sid = %engine.sid(), "CONNECT_ERROR from a client: closing");
                protocol_error(conn, engine, DisconnectReason::ForcedClose);
            }
        }
    }

    fn on_disconnect(&self, conn: Conn, _engine: &EngineSocket, reason: CloseReason) {
        let description = match reason {
            CloseReason::TransportError(detail) => Some(detail),
            _ => None,
        };
        conn.shared
            .close_all(DisconnectReason::from(&reason), description);
    }
}

/// Whether the client speaks Engine.IO v3 / Socket.IO v4 (`socket.io-client` 2.x).
fn is_v3(engine: &EngineSocket) -> bool {
    matches!(engine.protocol(), Protocol::V3 { .. })
}

fn empty_auth() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

fn connected(conn: &Conn, nsp: &str) -> Option<SocketRef> {
    match conn.shared.slots().get(nsp) {
        Some(Slot::Connected(s)) => Some(s.clone()),
        _ => None,
    }
}

/// A protocol violation closes the whole connection, as Node's `Client` does: `forced close`
/// for a packet that does not decode, `forced server close` for a valid packet in the wrong
/// state (an event for a namespace not joined, a second CONNECT).
fn protocol_error(conn: &mut Conn, engine: &EngineSocket, reason: DisconnectReason) {
    conn.decoder.reset();
    conn.sync_partials();
    conn.shared.close_all(reason, None);
    engine.close();
}

impl IoHandler {
    fn connect(
        &self,
        conn: &mut Conn,
        engine: &EngineSocket,
        nsp: String,
        auth: serde_json::Value,
    ) {
        let v3 = is_v3(engine);
        let parser = self.io.shared.config.parser;
        {
            let mut slots = conn.shared.slots();
            if slots.contains_key(&nsp) {
                drop(slots);
                tracing::debug!(sid = %engine.sid(), %nsp, "second CONNECT for a namespace");
                return protocol_error(conn, engine, DisconnectReason::ForcedServerClose);
            }
            if slots.len() >= self.io.shared.config.max_namespaces_per_connection {
                drop(slots);
                tracing::debug!(sid = %engine.sid(), %nsp, "too many namespaces on one connection");
                conn.shared
                    .send(&parser.encode_connect_error(&nsp, "Too many namespaces", None));
                return;
            }
            let Some(guard) = self.io.namespace_for(&nsp, &auth) else {
                drop(slots);
                conn.shared
                    .send(&parser.encode_connect_error(&nsp, "Invalid namespace", None));
                return;
            };
            slots.insert(nsp.clone(), Slot::Connecting);
            let ns = guard.0.clone();
            // No recovery for v4 clients: they send no pid or offset.
            let restored = ns.recovery.as_ref().filter(|_| !v3).and_then(|store| {
                let pid = auth.get("pid")?.as_str()?;
                let offset = auth.get("offset")?.as_str()?;
                store
                    .restore(pid, offset)
                    .map(|r| (r, Sid::parse(pid).ok()))
            });
            let (origin, recovery) = match restored {
                Some((r, pid)) => (
                    Origin {
                        id: r.sid,
                        pid,
                        recovered: true,
                        extensions: r.extensions,
                        data: r.data,
                    },
                    Some((r.rooms, r.missed)),
                ),
                None => (
                    Origin {
                        // As Node for v4 clients: the Engine.IO id in `/` (the id the client
                        // reads); other namespaces get a fresh id (Node: `/nsp#` + that id).
                        id: match v3 && nsp == "/" {
                            true => engine.sid(),
                            false => new_id(),
                        },
                        pid: ns.recovery.as_ref().filter(|_| !v3).map(|_| new_id()),
                        recovered: false,
                        extensions: Default::default(),
                        data: Default::default(),
                    },
                    None,
                ),
            };
            let socket = SocketRef::new(
                origin,
                ns,
                engine.clone(),
                engine.handshake().clone(),
                auth.clone(),
                Arc::downgrade(&conn.shared),
            );
            let shared = conn.shared.clone();
            tokio::spawn(run_connect(shared, socket, nsp, auth, recovery, guard));
        }
    }
}

async fn run_connect(
    conn: Arc<ConnShared>,
    socket: SocketRef,
    nsp: String,
    auth: serde_json::Value,
    recovery: Option<(Vec<Room>, Vec<Encoded>)>,
    // Keeps the namespace counted as busy until the socket is in it (or refused).
    _guard: ConnectGuard,
) {
    // A cluster adapter subscribes first: the socket joins once messages can reach it.
    socket.ns.ready().await;
    let handlers = socket.ns.handlers.clone();
    let skip = recovery.is_some()
        && socket
            .ns
            .recovery
            .as_ref()
            .is_some_and(|s| s.config().skip_middlewares);
    let middlewares = if skip {
        Vec::new()
    } else {
        handlers.middlewares()
    };
    for mw in middlewares {
        if let Err(e) = mw(socket.clone()).await {
            tracing::debug!(sid = %socket.id(), %nsp, "connection refused by middleware: {e}");
            conn.slots().remove(&nsp);
            let packet = match is_v3(&conn.engine) {
                // v4: ERROR with `err.data || err.message`, as Node.
                true => v4::encode_error(&nsp, &v4::error_payload(&e.message, e.data.as_ref())),
                false => socket
                    .ns
                    .parser()
                    .encode_connect_error(&nsp, &e.message, e.data.as_ref()),
            };
            conn.send(&packet);
            socket.0.release();
            return;
        }
    }
    {
        let mut slots = conn.slots();
        // The connection closed, or the client left, while the middlewares ran.
        if !matches!(slots.get(&nsp), Some(Slot::Connecting)) || conn.engine.is_closed() {
            socket.0.release();
            return;
        }
        slots.insert(nsp.clone(), Slot::Connected(socket.clone()));
    }
    conn.joined_once.store(true, Ordering::Release);
    socket.ns.insert(socket.clone());
    socket.join(socket.id().to_string());
    if !socket.0.set_connected() {
        // Closed while it joined (its connection closed, the client left): no reply.
        return;
    }
    if let Some((rooms, missed)) = recovery {
        socket.join(rooms);
        // Missed packets go before the CONNECT reply, as Node sends them.
        for e in &missed {
            let _ = socket.send_encoded(e, false, true);
        }
    }
    let reply = match socket.0.pid() {
        Some(pid) => serde_json::json!({ "sid": socket.id().as_str(), "pid": pid.as_str() }),
        None => serde_json::json!({ "sid": socket.id().as_str() }),
    };
    let handler = handlers
        .connect()
        .and_then(|h| h.call(socket.clone(), &ConnectParts { auth }));
    // The reply is sent by the first item of the socket's worker, and the connection handler
    // runs right after it: an event the client sends as soon as it reads the reply is queued
    // behind both, so the handlers it needs are registered.
    let reply = match is_v3(&conn.engine) {
        // v4: the CONNECT reply has no payload.
        true => v4::encode_connect(&nsp),
        false => socket.ns.parser().encode_connect(&nsp, Some(&reply)),
    };
    socket.0.run(Box::pin(async move {
        conn.send(&reply);
        if let Some(fut) = handler {
            fut.await;
        }
    }));
}

/// A socket id: 20 characters from a cryptographic RNG, as Node's `base64id`.
fn new_id() -> Sid {
    Sid::from_random_bytes(rand::random())
}
