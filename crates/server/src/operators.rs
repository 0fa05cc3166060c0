//! Broadcast operators: `to`, `except`, `broadcast`, `local`, `volatile`, `compress`,
//! `timeout`, then `emit`, `emit_with_ack`, `sockets`, `join`, `leave`, `disconnect`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrio_proto::engine::Sid;
use ferrio_proto::socket::encode_event;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::SendError;
use crate::ack::AckStream;
use crate::adapter::{BroadcastOptions, Room};
use crate::ns::Namespace;
use crate::socket::SocketRef;

/// Room arguments: a name, a list of names.
pub trait IntoRooms {
    /// The rooms.
    fn into_rooms(self) -> Vec<Room>;
}

impl IntoRooms for &'static str {
    fn into_rooms(self) -> Vec<Room> {
        vec![Room::Borrowed(self)]
    }
}

impl IntoRooms for String {
    fn into_rooms(self) -> Vec<Room> {
        vec![Room::Owned(self)]
    }
}

impl IntoRooms for Room {
    fn into_rooms(self) -> Vec<Room> {
        vec![self]
    }
}

impl IntoRooms for Sid {
    fn into_rooms(self) -> Vec<Room> {
        vec![Room::Owned(self.to_string())]
    }
}

impl<T: IntoRooms> IntoRooms for Vec<T> {
    fn into_rooms(self) -> Vec<Room> {
        self.into_iter().flat_map(IntoRooms::into_rooms).collect()
    }
}

impl<T: IntoRooms, const N: usize> IntoRooms for [T; N] {
    fn into_rooms(self) -> Vec<Room> {
        self.into_iter().flat_map(IntoRooms::into_rooms).collect()
    }
}

/// A broadcast being built. Nothing is encoded until `emit`; then the packet is encoded once
/// and each recipient gets a reference to the same bytes.
#[derive(Clone)]
pub struct BroadcastOperator {
    ns: Arc<Namespace>,
    opts: BroadcastOptions,
}

impl std::fmt::Debug for BroadcastOperator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BroadcastOperator")
            .field("ns", &self.ns.name)
            .field("opts", &self.opts)
            .finish()
    }
}

impl BroadcastOperator {
    pub(crate) fn new(ns: Arc<Namespace>) -> Self {
        BroadcastOperator {
            ns,
            opts: BroadcastOptions::default(),
        }
    }

    pub(crate) fn except_sid(mut self, sid: Sid) -> Self {
        self.opts.except_sids.push(sid);
        self
    }

    /// Only sockets in these rooms (union over several calls).
    pub fn to(mut self, rooms: impl IntoRooms) -> Self {
        self.opts.rooms.extend(rooms.into_rooms());
        self
    }

    /// Same as [`BroadcastOperator::to`].
    pub fn within(self, rooms: impl IntoRooms) -> Self {
        self.to(rooms)
    }

    /// Leaves out sockets in these rooms.
    pub fn except(mut self, rooms: impl IntoRooms) -> Self {
        self.opts.except.extend(rooms.into_rooms());
        self
    }

    /// This server only (no cluster fan-out).
    pub fn local(mut self) -> Self {
        self.opts.local = true;
        self
    }

    /// Dropped for clients whose queue is full, instead of disconnecting them.
    pub fn volatile(mut self) -> Self {
        self.opts.volatile = true;
        self
    }

    /// Per-message compression (accepted for API parity; WebSocket compression is off).
    pub fn compress(mut self, compress: bool) -> Self {
        self.opts.compress = compress;
        self
    }

    /// Timeout for [`BroadcastOperator::emit_with_ack`].
    pub fn timeout(mut self, d: Duration) -> Self {
        self.opts.timeout = Some(d);
        self
    }

    /// The options built so far.
    pub fn options(&self) -> &BroadcastOptions {
        &self.opts
    }

    fn targets(&self) -> Vec<SocketRef> {
        self.ns
            .adapter
            .sockets(&self.opts)
            .into_iter()
            .filter_map(|sid| self.ns.socket(sid))
            .collect()
    }

    /// Emits to every target. A target whose queue is full is disconnected (or skipped with
    /// `volatile`); the broadcaster never waits for a slow client.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), SendError> {
        let mut encoded = encode_event(&self.ns.name, None, event, data)?;
        if !self.opts.volatile
            && let Some(store) = &self.ns.recovery
        {
            encoded = store.record(encoded, &self.opts);
        }
        for socket in self.targets() {
            socket.notify_outgoing(event, &encoded);
            if let Err(e) = socket.send_encoded(&encoded, self.opts.volatile) {
                tracing::debug!(sid = %socket.id(), "broadcast not delivered: {e}");
            }
        }
        Ok(())
    }

    /// Emits to every target with one ack id, and streams each socket's answer (then a
    /// timeout for each socket that did not answer).
    pub fn emit_with_ack<T, V>(&self, event: &str, data: &T) -> Result<AckStream<V>, SendError>
    where
        T: Serialize + ?Sized,
        V: DeserializeOwned,
    {
        let timeout = self
            .opts
            .timeout
            .unwrap_or(self.ns.shared.config.ack_timeout);
        let id = self.ns.next_ack_id();
        let encoded = encode_event(&self.ns.name, Some(id), event, data)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let deadline = Instant::now() + timeout;
        let mut waiting = Vec::new();
        for socket in self.targets() {
            socket.register_many(id, tx.clone(), deadline);
            socket.notify_outgoing(event, &encoded);
            match socket.send_encoded(&encoded, self.opts.volatile) {
                Ok(()) => waiting.push(socket.id()),
                Err(_) => socket.forget_ack(id),
            }
        }
        drop(tx);
        Ok(AckStream::new(rx, waiting, timeout))
    }

    /// The target sockets (this server).
    pub fn sockets(&self) -> Vec<SocketRef> {
        self.targets()
    }

    /// The target sockets (`fetchSockets`). Async so that a cluster adapter can ask the
    /// other servers; with the in-memory adapter it returns at once.
    pub async fn fetch_sockets(&self) -> Vec<SocketRef> {
        self.targets()
    }

    /// Makes the target sockets join rooms (`socketsJoin`).
    pub fn sockets_join(&self, rooms: impl IntoRooms) {
        let rooms = rooms.into_rooms();
        for s in self.targets() {
            self.ns.adapter.add_all(s.id(), &rooms);
        }
    }

    /// Makes the target sockets leave rooms (`socketsLeave`).
    pub fn sockets_leave(&self, rooms: impl IntoRooms) {
        let rooms = rooms.into_rooms();
        for s in self.targets() {
            self.ns.adapter.del(s.id(), &rooms);
        }
    }

    /// Disconnects the target sockets (`disconnectSockets`; `close`: their whole
    /// connections).
    pub fn disconnect_sockets(&self, close: bool) {
        for s in self.targets() {
            s.disconnect(close);
        }
    }

    /// Number of sockets in the namespace (this server).
    pub fn socket_count(&self) -> usize {
        self.ns.len()
    }

    /// Every socket of the namespace, ignoring the operator's filters.
    pub fn all_sockets(&self) -> Vec<SocketRef> {
        self.ns.all_sockets()
    }
}
