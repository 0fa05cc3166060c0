//! The way back in: what an adapter may do to the sockets of its namespace on this server.

use std::sync::{Arc, Weak};
use std::time::Instant;

use ferrio_proto::engine::Sid;
use ferrio_proto::socket::{Args, Encoded, Parser};
use ferrio_proto::value::Value;

use super::{BroadcastOptions, BroadcastPacket, Room, SocketInfo};
pub use crate::ack::AckCallback;
use crate::ack::AckTx;
use crate::ns::Namespace;
use crate::server_event::ServerEvent;
use crate::socket::SocketRef;

/// Answers a server-side event from another server (called at most once).
pub type ServerAckFn = Box<dyn FnOnce(Value) + Send>;

/// A handle to the sockets of one namespace on this server, given to its adapter when the
/// namespace is created. Every method acts on this server only, synchronously, and does nothing
/// once the namespace is gone. Cheap to clone.
#[derive(Clone)]
pub struct LocalNamespace {
    name: Arc<str>,
    ns: Weak<Namespace>,
}

impl std::fmt::Debug for LocalNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalNamespace")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl LocalNamespace {
    pub(crate) fn new(name: &str, ns: Weak<Namespace>) -> Self {
        LocalNamespace {
            name: Arc::from(name),
            ns,
        }
    }

    /// The namespace name (`/`, `/admin`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The packet format of this server's clients (packets from other servers are encoded in
    /// it for the local sockets).
    pub fn parser(&self) -> Parser {
        self.ns.upgrade().map_or(Parser::Default, |ns| ns.parser())
    }

    /// Sends the packet to the local sockets matching `opts`: one encoding, a reference to the
    /// same bytes for each socket. With connection state recovery on, an event without ack
    /// that is not volatile gets this server's offset and is kept for replay.
    pub fn broadcast(&self, packet: &BroadcastPacket, opts: &BroadcastOptions) {
        let Some(ns) = self.ns.upgrade() else {
            return;
        };
        let mut encoded = packet.encoded().clone();
        if !opts.flags.volatile
            && packet.ack_id().is_none()
            && let Some(store) = &ns.recovery
        {
            encoded = store.record(encoded, opts);
        }
        let mut args = None;
        for socket in ns.targets(opts) {
            notify_outgoing(&socket, packet.event(), &encoded, &mut args);
            if let Err(e) = socket.send_encoded(
                &encoded,
                opts.flags.volatile,
                opts.flags.compress.unwrap_or(true),
            ) {
                tracing::debug!(sid = %socket.id(), "broadcast not delivered: {e}");
            }
        }
    }

    /// Sends a packet expecting acks to the local sockets matching `opts`, with one ack id
    /// for all of them (the packet's own, or a new one of this namespace for a packet from
    /// another server); each answer goes to `on_ack` until the timeout of `opts` (or the
    /// server's `ack_timeout`; without either, until the answer or the disconnect). A socket
    /// that already waits for `max_pending_acks` answers is skipped. Returns the sockets
    /// reached.
    ///
    /// `on_count` gets the number of matching sockets before anything is sent (Node's client
    /// count: a server answering another one publishes it before any ack can come back).
    pub fn broadcast_with_ack(
        &self,
        packet: &BroadcastPacket,
        opts: &BroadcastOptions,
        on_ack: AckCallback,
        on_count: impl FnOnce(usize),
    ) -> Vec<Sid> {
        let Some(ns) = self.ns.upgrade() else {
            on_count(0);
            return Vec::new();
        };
        let (id, encoded) = match packet.ack_id() {
            Some(id) => (id, packet.encoded().clone()),
            None => {
                let id = ns.next_ack_id();
                ns.shared.counters.count_encoded();
                match packet.encode_with_ack(id) {
                    Ok(e) => (id, e),
                    Err(e) => {
                        tracing::warn!(ns = %self.name, "broadcast with ack not delivered: {e}");
                        on_count(0);
                        return Vec::new();
                    }
                }
            }
        };
        let timeout = opts.flags.timeout.or(ns.shared.config.ack_timeout);
        let deadline = timeout.map(|t| Instant::now() + t);
        let targets: Vec<_> = ns
            .targets(opts)
            .into_iter()
            .filter(|socket| {
                let ok = socket.register_ack(id, AckTx::Callback(on_ack.clone()), deadline);
                if !ok {
                    tracing::debug!(sid = %socket.id(), "too many pending acks: broadcast skipped");
                }
                ok
            })
            .collect();
        on_count(targets.len());
        let mut reached = Vec::with_capacity(targets.len());
        let mut args = None;
        for socket in targets {
            notify_outgoing(&socket, packet.event(), &encoded, &mut args);
            match socket.send_encoded(
                &encoded,
                opts.flags.volatile,
                opts.flags.compress.unwrap_or(true),
            ) {
                Ok(()) => reached.push(socket.id()),
                Err(_) => socket.forget_ack(id),
            }
        }
        reached
    }

    /// Makes the local sockets matching `opts` join `rooms`.
    pub fn sockets_join(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        if let Some(ns) = self.ns.upgrade() {
            for s in ns.targets(opts) {
                s.join(rooms.to_vec());
            }
        }
    }

    /// Makes the local sockets matching `opts` leave `rooms`.
    pub fn sockets_leave(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        if let Some(ns) = self.ns.upgrade() {
            for s in ns.targets(opts) {
                s.leave(rooms.to_vec());
            }
        }
    }

    /// Disconnects the local sockets matching `opts` (`close`: their whole connections).
    pub fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        if let Some(ns) = self.ns.upgrade() {
            for s in ns.targets(opts) {
                s.disconnect(close);
            }
        }
    }

    /// Describes the local sockets matching `opts`.
    pub fn fetch_sockets(&self, opts: &BroadcastOptions) -> Vec<SocketInfo> {
        self.ns
            .upgrade()
            .map(|ns| ns.targets(opts).iter().map(|s| s.info()).collect())
            .unwrap_or_default()
    }

    /// The ids of the local sockets in any of `rooms` (all when empty).
    pub fn socket_ids(&self, rooms: &[Room]) -> Vec<Sid> {
        let opts = BroadcastOptions {
            rooms: rooms.to_vec(),
            ..Default::default()
        };
        self.ns
            .upgrade()
            .map(|ns| ns.rooms.sockets(&opts))
            .unwrap_or_default()
    }

    /// The rooms that have local sockets.
    pub fn rooms(&self) -> Vec<Room> {
        self.ns
            .upgrade()
            .map(|ns| ns.rooms.rooms())
            .unwrap_or_default()
    }

    /// Whether a room has local sockets.
    pub fn has_room(&self, room: &str) -> bool {
        self.ns.upgrade().is_some_and(|ns| ns.rooms.has_room(room))
    }

    /// Whether `room` is the own room (the id) of a local socket.
    pub fn is_socket_room(&self, room: &str) -> bool {
        self.ns
            .upgrade()
            .is_some_and(|ns| ns.rooms.is_socket_room(room))
    }

    /// Runs the server-side handler of `data[0]` (an event another server sent with
    /// `server_side_emit`); `ack` answers it. Unknown events are ignored (the ack is dropped,
    /// so the sender counts this server as not answering).
    pub fn server_side_event(&self, data: Vec<Value>, ack: Option<ServerAckFn>) {
        let Some(ns) = self.ns.upgrade() else {
            return;
        };
        let Some((event, args)) = data.split_first() else {
            return;
        };
        let Some(event) = event.as_str() else {
            return;
        };
        let Some(handler) = ns.handlers.server_event(event) else {
            tracing::debug!(ns = %self.name, event, "no server-side handler");
            return;
        };
        let ev = ServerEvent::new(event.to_owned(), args.to_vec(), ack);
        tokio::spawn(handler(ev));
    }
}

/// Tells a recipient's outgoing listeners about a broadcast, reading the arguments back once
/// for all recipients (only when one has a listener).
fn notify_outgoing(socket: &SocketRef, event: &str, encoded: &Encoded, args: &mut Option<Args>) {
    if !socket.has_outgoing_listeners() {
        return;
    }
    if args.is_none() {
        *args = crate::socket::outgoing_args(encoded, socket.ns.parser());
    }
    if let Some(args) = args {
        socket.notify_outgoing_args(event, args);
    }
}
