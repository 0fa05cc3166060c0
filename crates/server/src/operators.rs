//! Broadcast operators: `to`, `except`, `broadcast`, `local`, `volatile`, `compress`,
//! `timeout`, then `emit`, `emit_with_ack`, `fetch_sockets`, `sockets_join`, `sockets_leave`,
//! `disconnect_sockets`, `server_side_emit`: each goes through the namespace's adapter, so with
//! a cluster adapter it reaches every server.

use std::sync::Arc;
use std::time::Duration;

use ferrio_proto::engine::Sid;
use ferrio_proto::socket::RESERVED_EVENTS;
use ferrio_proto::value::{self, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::SendError;
use crate::ack::{AckStream, ack_channel};
use crate::adapter::{
    AdapterError, BroadcastOptions, BroadcastPacket, Gathered, HandshakeInfo, Room, RoomEvent,
    SocketInfo,
};
use crate::listeners::ListenerId;
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
///
/// `emit` reaches the local sockets before it returns and queues one publish for the other
/// servers (unless [`local`](BroadcastOperator::local)); an error means the cluster part could
/// not be queued (the local part was delivered).
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

/// Refuses the event names the client reserves for itself (Node throws on them).
pub(crate) fn check_event(event: &str) -> Result<(), SendError> {
    if RESERVED_EVENTS.contains(&event) {
        return Err(SendError::ReservedEvent(event.to_owned()));
    }
    Ok(())
}

impl BroadcastOperator {
    pub(crate) fn new(ns: Arc<Namespace>) -> Self {
        BroadcastOperator {
            ns,
            opts: BroadcastOptions::default(),
        }
    }

    /// Leaves out a socket: its own room goes into `except`, as Node does.
    pub(crate) fn except_sid(mut self, sid: Sid) -> Self {
        self.opts.except.push(Room::Owned(sid.to_string()));
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
        self.opts.flags.local = true;
        self
    }

    /// Dropped for clients that cannot take it now, instead of queued.
    pub fn volatile(mut self) -> Self {
        self.opts.flags.volatile = true;
        self
    }

    /// Per-message compression: `false` sends the packet uncompressed to every recipient (no
    /// permessage-deflate; polling responses holding only such packets are not
    /// HTTP-compressed). Carried to other servers.
    pub fn compress(mut self, compress: bool) -> Self {
        self.opts.flags.compress = Some(compress);
        self
    }

    /// Timeout for [`BroadcastOperator::emit_with_ack`] and [`fetch_sockets`]
    /// (`fetch_sockets` waits for other servers at most this long, else the adapter's request
    /// timeout).
    ///
    /// [`fetch_sockets`]: BroadcastOperator::fetch_sockets
    pub fn timeout(mut self, d: Duration) -> Self {
        self.opts.flags.timeout = Some(d);
        self
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.ns.name
    }

    /// The options built so far.
    pub fn options(&self) -> &BroadcastOptions {
        &self.opts
    }

    /// Emits to every target: a tuple is several arguments, `()` none, anything else one;
    /// `bytes::Bytes` values anywhere become binary attachments. A local target whose queue is
    /// full is disconnected (or skipped with `volatile`); the broadcaster never waits for a
    /// slow client.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), SendError> {
        check_event(event)?;
        let parser = self.ns.encoder();
        let encoded = parser.encode_event(&self.ns.name, None, event, data)?;
        let packet = BroadcastPacket::from_encoded(&self.ns.name, parser, event, None, encoded);
        self.ns.adapter.broadcast(&packet, &self.opts)?;
        Ok(())
    }

    /// Emits to every target with one ack id, and streams each socket's answer (then a
    /// timeout for each socket that did not answer). The timeout is the operator's
    /// [`timeout`](BroadcastOperator::timeout), else the server's `ack_timeout`; without
    /// either it is zero, as on Node (where a broadcast with acks needs `timeout()`): the
    /// packet is sent and every target times out at once (an answer is always too late).
    pub fn emit_with_ack<T, V>(&self, event: &str, data: &T) -> Result<AckStream<V>, SendError>
    where
        T: Serialize + ?Sized,
        V: DeserializeOwned,
    {
        check_event(event)?;
        let timeout = self
            .opts
            .flags
            .timeout
            .or(self.ns.shared.config.ack_timeout)
            .unwrap_or(Duration::ZERO);
        let id = self.ns.next_ack_id();
        let parser = self.ns.encoder();
        let encoded = parser.encode_event(&self.ns.name, Some(id), event, data)?;
        let packet = BroadcastPacket::from_encoded(&self.ns.name, parser, event, Some(id), encoded);
        let mut opts = self.opts.clone();
        opts.flags.timeout = Some(timeout);
        let (sink, stream) = ack_channel(timeout);
        self.ns.adapter.broadcast_with_ack(&packet, &opts, sink)?;
        Ok(stream)
    }

    /// Emits a `message` event (Node's `send`).
    pub fn send<T: Serialize + ?Sized>(&self, data: &T) -> Result<(), SendError> {
        self.emit("message", data)
    }

    /// The target sockets on this server.
    pub fn sockets(&self) -> Vec<SocketRef> {
        self.ns.targets(&self.opts)
    }

    /// The target sockets of every server (`fetchSockets`): what each server answered in
    /// time, and how many did not answer.
    pub async fn fetch_sockets(&self) -> Result<Gathered<RemoteSocket>, AdapterError> {
        self.ns.ready().await;
        let found = self.ns.adapter.fetch_sockets(&self.opts).await?;
        let ns = self.ns.clone();
        Ok(found.map(|info| RemoteSocket {
            info,
            ns: ns.clone(),
        }))
    }

    /// Makes the target sockets join rooms (`socketsJoin`), on every server.
    pub fn sockets_join(&self, rooms: impl IntoRooms) -> Result<(), AdapterError> {
        self.ns
            .adapter
            .sockets_join(&self.opts, &rooms.into_rooms())
    }

    /// Makes the target sockets leave rooms (`socketsLeave`), on every server.
    pub fn sockets_leave(&self, rooms: impl IntoRooms) -> Result<(), AdapterError> {
        self.ns
            .adapter
            .sockets_leave(&self.opts, &rooms.into_rooms())
    }

    /// Disconnects the target sockets (`disconnectSockets`; `close`: their whole
    /// connections), on every server.
    pub fn disconnect_sockets(&self, close: bool) -> Result<(), AdapterError> {
        self.ns.adapter.disconnect_sockets(&self.opts, close)
    }

    /// Sends an event to the server-side handlers of this namespace on the other servers
    /// (Node's `serverSideEmit`; the operator's rooms do not apply). A tuple is several
    /// arguments.
    pub fn server_side_emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), AdapterError> {
        self.ns.adapter.server_side_emit(server_data(event, data)?)
    }

    /// Sends an event to the other servers and gathers one answer from each, waiting at most
    /// `timeout`.
    pub async fn server_side_emit_with_ack<T, V>(
        &self,
        event: &str,
        data: &T,
        timeout: Duration,
    ) -> Result<Gathered<V>, AdapterError>
    where
        T: Serialize + ?Sized,
        V: DeserializeOwned,
    {
        self.ns.ready().await;
        let answers = self
            .ns
            .adapter
            .server_side_emit_with_ack(server_data(event, data)?, timeout)
            .await?;
        let mut values = Vec::with_capacity(answers.values.len());
        for v in &answers.values {
            values.push(value::from_value(v).map_err(|e| AdapterError::Encode(e.to_string()))?);
        }
        Ok(Gathered {
            values,
            missing: answers.missing,
            missing_nodes: answers.missing_nodes,
        })
    }

    /// The number of servers in the cluster (1 with the in-memory adapter).
    pub async fn server_count(&self) -> Result<usize, AdapterError> {
        self.ns.ready().await;
        self.ns.adapter.server_count().await
    }

    /// Every room of the namespace across the cluster.
    pub async fn all_rooms(&self) -> Result<Gathered<Room>, AdapterError> {
        self.ns.ready().await;
        self.ns.adapter.all_rooms().await
    }

    /// Number of sockets in the namespace (this server).
    pub fn socket_count(&self) -> usize {
        self.ns.len()
    }

    /// Every socket of the namespace on this server, ignoring the operator's filters.
    pub fn all_sockets(&self) -> Vec<SocketRef> {
        self.ns.all_sockets()
    }

    /// The rooms of the namespace that have sockets on this server (each socket's own room
    /// included), ignoring the operator's filters: Node's `nsp.adapter.rooms`. The members of
    /// one room: `io.of(ns).to(room).sockets()`; across the cluster:
    /// [`all_rooms`](BroadcastOperator::all_rooms).
    pub fn rooms(&self) -> Vec<Room> {
        self.ns.rooms.rooms()
    }

    /// Adds a function called with every change of the namespace's room index on this server
    /// (Node's adapter events `create-room`, `delete-room`, `join-room`, `leave-room`), in
    /// Node's order, after the ones already added. It runs on the task that joined or left
    /// (right after the change, outside any lock): keep it short.
    pub fn on_room_event(&self, f: impl Fn(&RoomEvent) + Send + Sync + 'static) -> ListenerId {
        self.ns.room_listeners.add(Arc::new(f), false)
    }

    /// Removes one room event listener, or all of them with `None`.
    pub fn off_room_event(&self, listener: Option<ListenerId>) {
        self.ns.room_listeners.remove(listener);
    }
}

/// `[event, ...args]` for a server-side event.
fn server_data<T: Serialize + ?Sized>(event: &str, data: &T) -> Result<Vec<Value>, AdapterError> {
    let mut out = vec![Value::from(event)];
    out.extend(value::to_args(data).map_err(|e| AdapterError::Encode(e.to_string()))?);
    Ok(out)
}

/// A socket found by [`BroadcastOperator::fetch_sockets`], on this server or another one:
/// its description, and operations that reach it wherever it lives (through the adapter, as
/// Node's `RemoteSocket`).
#[derive(Clone)]
pub struct RemoteSocket {
    info: SocketInfo,
    ns: Arc<Namespace>,
}

impl std::fmt::Debug for RemoteSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSocket")
            .field("id", &self.info.id)
            .field("rooms", &self.info.rooms)
            .finish_non_exhaustive()
    }
}

impl RemoteSocket {
    /// The socket id.
    pub fn id(&self) -> Sid {
        self.info.id
    }

    /// The handshake, as Node serialises it.
    pub fn handshake(&self) -> &HandshakeInfo {
        &self.info.handshake
    }

    /// The rooms (its own id included) when it was fetched.
    pub fn rooms(&self) -> &[Room] {
        &self.info.rooms
    }

    /// `socket.data` when it was fetched, read as `T`.
    pub fn data<T: DeserializeOwned>(&self) -> Option<T> {
        value::from_value(&self.info.data).ok()
    }

    /// `socket.data` as a value.
    pub fn data_value(&self) -> &Value {
        &self.info.data
    }

    /// The description.
    pub fn info(&self) -> &SocketInfo {
        &self.info
    }

    /// The socket itself, when it lives on this server.
    pub fn local(&self) -> Option<SocketRef> {
        self.ns.socket(self.info.id)
    }

    fn me(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.ns.clone()).to(self.info.id)
    }

    /// Emits an event to this socket.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), SendError> {
        self.me().emit(event, data)
    }

    /// Emits an event and waits for the socket's answer (at most `timeout`).
    pub fn emit_with_ack<T, V>(
        &self,
        event: &str,
        data: &T,
        timeout: Duration,
    ) -> Result<AckStream<V>, SendError>
    where
        T: Serialize + ?Sized,
        V: DeserializeOwned,
    {
        self.me().timeout(timeout).emit_with_ack(event, data)
    }

    /// Makes the socket join rooms.
    pub fn join(&self, rooms: impl IntoRooms) -> Result<(), AdapterError> {
        self.me().sockets_join(rooms)
    }

    /// Makes the socket leave rooms.
    pub fn leave(&self, rooms: impl IntoRooms) -> Result<(), AdapterError> {
        self.me().sockets_leave(rooms)
    }

    /// Disconnects the socket (`close`: its whole connection).
    pub fn disconnect(&self, close: bool) -> Result<(), AdapterError> {
        self.me().disconnect_sockets(close)
    }
}
