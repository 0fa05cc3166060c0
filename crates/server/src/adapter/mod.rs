//! The adapter: how the operations of a namespace reach its sockets, on this server and, for
//! a cluster adapter, on every server of the cluster.
//!
//! Three layers, as in Node's `socket.io-adapter`:
//! - the **room index** of each namespace (in memory, synchronous, owned by the namespace);
//! - the **adapter** of each namespace (this module's [`Adapter`] trait, behind
//!   `Arc<dyn Adapter>`): broadcasts with and without acks, `socketsJoin`/`socketsLeave`/
//!   `disconnectSockets` by filter, `fetchSockets`, `serverSideEmit`, the server count and the
//!   room listing. [`LocalAdapter`] (the default) does everything on this server; the cluster
//!   adapters of [`crate::cluster`] also publish to the other servers;
//! - a **backend** for cluster adapters ([`crate::cluster::Backend`]), which only moves bytes.
//!
//! An adapter reaches the sockets of its own server through the [`LocalNamespace`] it is
//! created with: that is also how a message from another server is delivered here.
//!
//! The hot path stays synchronous: [`Adapter::broadcast`] delivers to local sockets before it
//! returns and hands the cluster publish to a bounded queue; only cluster-wide requests
//! (`fetch_sockets`, `server_side_emit_with_ack`, `all_rooms`, `server_count`) are `async`.

mod local;
mod packet;
mod rooms;

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ferrio_proto::value::Value;

pub use local::{AckCallback, LocalNamespace, ServerAckFn};
pub use packet::{BroadcastPacket, HandshakeInfo, SocketInfo};
pub use rooms::RoomEvent;
pub(crate) use rooms::{RoomChanges, RoomIndex};

use crate::ack::AckSink;

/// A room name.
pub type Room = Cow<'static, str>;

/// A boxed future returned by the async methods of an [`Adapter`].
pub type AdapterFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Who an operation reaches, and how: Node's `{rooms, except, flags}`.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct BroadcastOptions {
    /// Sockets in any of these rooms; every socket of the namespace when empty.
    pub rooms: Vec<Room>,
    /// Sockets in any of these rooms are left out. Leaving out the sender (`broadcast`,
    /// `socket.to`) puts the sender's own room (its id) here, as Node does.
    pub except: Vec<Room>,
    /// The flags.
    pub flags: BroadcastFlags,
}

/// The flags of a broadcast (Node's `BroadcastFlags`).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct BroadcastFlags {
    /// Only this server: nothing is published to the cluster.
    pub local: bool,
    /// Dropped for a client that cannot take it now instead of queued.
    pub volatile: bool,
    /// Per-message compression, when set (`Some(false)`: sent uncompressed; carried between
    /// nodes).
    pub compress: Option<bool>,
    /// How long to wait for acknowledgements.
    pub timeout: Option<Duration>,
}

/// Why an adapter operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// The queue of messages waiting to be published to the cluster is full (the cluster
    /// backend is slower than the traffic, or down). Local sockets got the message.
    #[error("cluster publish queue full")]
    QueueFull,
    /// The adapter was closed.
    #[error("adapter closed")]
    Closed,
    /// The cluster backend failed.
    #[error("cluster backend: {0}")]
    Backend(String),
    /// A value could not be encoded for the cluster.
    #[error("cannot encode for the cluster: {0}")]
    Encode(String),
    /// The cluster protocol has no such operation (e.g. `allRooms` with the sharded adapter,
    /// as in Node).
    #[error("not supported by this adapter: {0}")]
    Unsupported(&'static str),
}

/// What a cluster-wide request gathered: the values that arrived, and how many servers did
/// not answer before the request timed out (Node rejects the whole request instead).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Gathered<T> {
    /// Every value that arrived, this server's first.
    pub values: Vec<T>,
    /// How many servers did not answer in time (0 when complete).
    pub missing: usize,
    /// The ids of the servers that did not answer, where the protocol names them (servers
    /// seen recently that did not answer); may be shorter than `missing`.
    pub missing_nodes: Vec<String>,
}

impl<T> Gathered<T> {
    /// A complete answer.
    pub fn complete(values: Vec<T>) -> Self {
        Gathered {
            values,
            missing: 0,
            missing_nodes: Vec::new(),
        }
    }

    /// Whether every server answered.
    pub fn is_complete(&self) -> bool {
        self.missing == 0
    }

    /// The values, whatever is missing.
    pub fn into_values(self) -> Vec<T> {
        self.values
    }

    /// The same answer with each value converted.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Gathered<U> {
        Gathered {
            values: self.values.into_iter().map(f).collect(),
            missing: self.missing,
            missing_nodes: self.missing_nodes,
        }
    }
}

impl<T> std::ops::Deref for Gathered<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.values
    }
}

impl<T> IntoIterator for Gathered<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.values.into_iter()
    }
}

/// The adapter of one namespace. Object-safe: a namespace holds an `Arc<dyn Adapter>`.
///
/// Synchronous methods are short and never block: they deliver to local sockets through the
/// [`LocalNamespace`] the adapter was created with, and queue what goes to other servers.
pub trait Adapter: Send + Sync + 'static {
    /// Starts the adapter (a cluster adapter subscribes to its channels). The namespace accepts
    /// connections once this has finished; an error is logged and the namespace then serves
    /// its own sockets.
    fn init(&self) -> AdapterFuture<Result<(), AdapterError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Stops the adapter (a cluster adapter unsubscribes). Called when the namespace goes
    /// away (an empty child of a dynamic namespace) or the server closes.
    fn close(&self) -> AdapterFuture<()> {
        Box::pin(std::future::ready(()))
    }

    /// Sends a packet to the sockets matching `opts`, here and (unless `opts.flags.local`) on
    /// the other servers.
    fn broadcast(
        &self,
        packet: &BroadcastPacket,
        opts: &BroadcastOptions,
    ) -> Result<(), AdapterError>;

    /// Sends a packet that expects acknowledgements; client counts and acks go to `acks`.
    fn broadcast_with_ack(
        &self,
        packet: &BroadcastPacket,
        opts: &BroadcastOptions,
        acks: AckSink,
    ) -> Result<(), AdapterError>;

    /// Makes the matching sockets join `rooms` (`socketsJoin`).
    fn sockets_join(&self, opts: &BroadcastOptions, rooms: &[Room]) -> Result<(), AdapterError>;

    /// Makes the matching sockets leave `rooms` (`socketsLeave`).
    fn sockets_leave(&self, opts: &BroadcastOptions, rooms: &[Room]) -> Result<(), AdapterError>;

    /// Disconnects the matching sockets (`disconnectSockets`); `close` closes their whole
    /// connections.
    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) -> Result<(), AdapterError>;

    /// Describes the matching sockets of every server (`fetchSockets`).
    fn fetch_sockets(
        &self,
        opts: &BroadcastOptions,
    ) -> AdapterFuture<Result<Gathered<SocketInfo>, AdapterError>>;

    /// Emits `[event, ...args]` to the server-side handlers of the other servers
    /// (`serverSideEmit`).
    fn server_side_emit(&self, data: Vec<Value>) -> Result<(), AdapterError>;

    /// Emits `[event, ...args]` to the other servers and gathers one answer from each.
    fn server_side_emit_with_ack(
        &self,
        data: Vec<Value>,
        timeout: Duration,
    ) -> AdapterFuture<Result<Gathered<Value>, AdapterError>>;

    /// The number of servers in the cluster, this one included.
    fn server_count(&self) -> AdapterFuture<Result<usize, AdapterError>>;

    /// Every room of the namespace across the cluster (`allRooms`).
    fn all_rooms(&self) -> AdapterFuture<Result<Gathered<Room>, AdapterError>>;

    /// A room now has its first socket on this server.
    fn room_created(&self, _room: &Room) {}

    /// A room has lost its last socket on this server.
    fn room_deleted(&self, _room: &Room) {}
}

/// Makes the adapter of each namespace.
pub trait AdapterFactory: Send + Sync + 'static {
    /// The adapter of the namespace `ns` (called once per namespace, when it is created).
    fn create(&self, ns: LocalNamespace) -> Arc<dyn Adapter>;
}

impl<F> AdapterFactory for F
where
    F: Fn(LocalNamespace) -> Arc<dyn Adapter> + Send + Sync + 'static,
{
    fn create(&self, ns: LocalNamespace) -> Arc<dyn Adapter> {
        self(ns)
    }
}

/// The in-memory adapter (Node's default): every operation reaches this server's sockets only,
/// and the server count is 1.
#[derive(Debug, Clone)]
pub struct LocalAdapter {
    ns: LocalNamespace,
}

impl LocalAdapter {
    /// The adapter of `ns`.
    pub fn new(ns: LocalNamespace) -> Self {
        LocalAdapter { ns }
    }

    /// A factory for [`crate::SocketIoBuilder::adapter`].
    pub fn factory() -> impl AdapterFactory {
        |ns: LocalNamespace| -> Arc<dyn Adapter> { Arc::new(LocalAdapter::new(ns)) }
    }
}

fn ready<T: Send + 'static>(v: T) -> AdapterFuture<T> {
    Box::pin(std::future::ready(v))
}

impl Adapter for LocalAdapter {
    fn broadcast(
        &self,
        packet: &BroadcastPacket,
        opts: &BroadcastOptions,
    ) -> Result<(), AdapterError> {
        self.ns.broadcast(packet, opts);
        Ok(())
    }

    fn broadcast_with_ack(
        &self,
        packet: &BroadcastPacket,
        opts: &BroadcastOptions,
        acks: AckSink,
    ) -> Result<(), AdapterError> {
        acks.expect_servers(1);
        let sids = self
            .ns
            .broadcast_with_ack(packet, opts, acks.local_callback(), |_| {});
        acks.local_count(sids);
        Ok(())
    }

    fn sockets_join(&self, opts: &BroadcastOptions, rooms: &[Room]) -> Result<(), AdapterError> {
        self.ns.sockets_join(opts, rooms);
        Ok(())
    }

    fn sockets_leave(&self, opts: &BroadcastOptions, rooms: &[Room]) -> Result<(), AdapterError> {
        self.ns.sockets_leave(opts, rooms);
        Ok(())
    }

    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) -> Result<(), AdapterError> {
        self.ns.disconnect_sockets(opts, close);
        Ok(())
    }

    fn fetch_sockets(
        &self,
        opts: &BroadcastOptions,
    ) -> AdapterFuture<Result<Gathered<SocketInfo>, AdapterError>> {
        ready(Ok(Gathered::complete(self.ns.fetch_sockets(opts))))
    }

    fn server_side_emit(&self, _data: Vec<Value>) -> Result<(), AdapterError> {
        // No other server to reach (Node's in-memory adapter only warns).
        Ok(())
    }

    fn server_side_emit_with_ack(
        &self,
        _data: Vec<Value>,
        _timeout: Duration,
    ) -> AdapterFuture<Result<Gathered<Value>, AdapterError>> {
        ready(Ok(Gathered::complete(Vec::new())))
    }

    fn server_count(&self) -> AdapterFuture<Result<usize, AdapterError>> {
        ready(Ok(1))
    }

    fn all_rooms(&self) -> AdapterFuture<Result<Gathered<Room>, AdapterError>> {
        ready(Ok(Gathered::complete(self.ns.rooms())))
    }
}
