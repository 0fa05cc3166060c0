//! Cluster adapters: several servers share rooms, broadcasts, acknowledgements and requests
//! through a message engine, speaking the exact wire formats of Node's adapters, so Ferrio and
//! Node `socket.io` servers can be nodes of one cluster.
//!
//! The protocol is written once here; a [`Backend`] (Redis in `ferrio-redis`, or the in-process
//! [`MemoryBus`] for tests) only moves bytes. Two message families exist, as in Node:
//! - [`ClassicAdapter`]: `@socket.io/redis-adapter`'s `createAdapter` format (msgpack
//!   broadcasts on `{key}#{nsp}#` and `{key}#{nsp}#{room}#`, JSON requests 0-9 on
//!   `{key}-request#{nsp}#`, responses on `{key}-response#{nsp}#`; the server count is the
//!   number of subscribers of the request channel);
//! - [`ShardedAdapter`]: the `ClusterAdapter` messages (types 1-13, JSON unless they hold
//!   binary, then msgpack) of `createShardedAdapter` (`SSUBSCRIBE`/`SPUBLISH`, one channel per
//!   public room in the `dynamic` subscription mode).
//!
//! Every adapter instance has one publish task fed by a bounded queue
//! ([`ClusterConfig::publish_queue`]): a broadcast delivers to local sockets synchronously and
//! queues one message; a full queue is an [`AdapterError::QueueFull`] returned to the caller.
//! Requests (`fetch_sockets`, `server_side_emit_with_ack`, `all_rooms`) wait at most
//! [`ClusterConfig::requests_timeout`] and then return what arrived, with the number of servers
//! that did not answer. Malformed or unknown messages are ignored and counted
//! ([`ClusterStats`]); an outage of the backend is logged once, counted, and local traffic never
//! stops.
//!
//! ```
//! use ferrio::SocketIo;
//! use ferrio::cluster::{ClassicAdapter, ClusterConfig, MemoryBus};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // Two servers in one process, joined by an in-process bus (Redis in production).
//! let bus = MemoryBus::new();
//! let a = SocketIo::builder()
//!     .adapter(ClassicAdapter::factory(bus.backend(), ClusterConfig::default()))
//!     .build();
//! let b = SocketIo::builder()
//!     .adapter(ClassicAdapter::factory(bus.backend(), ClusterConfig::default()))
//!     .build();
//! // Each server's namespace subscribes before it counts (or serves).
//! assert_eq!(a.server_count().await.unwrap(), 1);
//! assert_eq!(b.server_count().await.unwrap(), 2);
//! a.of("/").emit("hello", "from a").unwrap();
//! # }
//! ```

mod classic;
mod core;
mod memory;
mod sharded;
mod wire;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;

pub use classic::{ClassicAdapter, ClassicFactory};
pub use memory::{MemoryBackend, MemoryBus};
pub use sharded::{ShardedAdapter, ShardedFactory, SubscriptionMode};

/// A boxed future returned by a [`Backend`].
pub type BackendFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Called with every message of a subscription: the channel it came on, and the payload.
/// Called in the order messages arrive; it must not block.
pub type MessageHandler = Arc<dyn Fn(&str, Bytes) + Send + Sync>;

/// Why a backend operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

/// A message engine that moves bytes between servers: publish to a channel, subscribe to
/// channels (or to every channel with a prefix), and count the subscribers of a channel. It
/// knows nothing of Socket.IO. A sharded engine (Redis `SSUBSCRIBE`) maps `subscribe` and
/// `publish` to its sharded commands.
///
/// One backend instance belongs to one server: the server count is a subscriber count, so two
/// servers must not share a subscription connection.
pub trait Backend: Send + Sync + 'static {
    /// Delivers every message of `channel` to `handler` from now on (replacing an earlier
    /// handler), and again after the engine reconnects.
    fn subscribe(
        &self,
        channel: String,
        handler: MessageHandler,
    ) -> BackendFuture<Result<(), BackendError>>;

    /// Delivers every message of every channel starting with `prefix` (Redis `PSUBSCRIBE
    /// prefix*`).
    fn subscribe_prefix(
        &self,
        prefix: String,
        handler: MessageHandler,
    ) -> BackendFuture<Result<(), BackendError>>;

    /// Stops a subscription made with [`Backend::subscribe`].
    fn unsubscribe(&self, channel: String) -> BackendFuture<Result<(), BackendError>>;

    /// Stops a subscription made with [`Backend::subscribe_prefix`].
    fn unsubscribe_prefix(&self, prefix: String) -> BackendFuture<Result<(), BackendError>>;

    /// Publishes messages, in this order.
    fn publish(&self, messages: Vec<(String, Bytes)>) -> BackendFuture<Result<(), BackendError>>;

    /// How many subscribers `channel` has across the engine (Redis `PUBSUB NUMSUB`, or
    /// `SHARDNUMSUB` for a sharded engine; summed over the nodes of a Redis Cluster).
    fn subscriber_count(&self, channel: String) -> BackendFuture<Result<usize, BackendError>>;
}

/// Settings shared by the cluster adapters. Defaults are Node's where Node has the setting.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// How long a request (`fetch_sockets`, `server_side_emit_with_ack`, `all_rooms`) waits
    /// for the other servers (Node's `requestsTimeout`). Default 5 s.
    pub requests_timeout: Duration,
    /// Most messages waiting to be published (per namespace); past it a broadcast returns
    /// [`crate::AdapterError::QueueFull`] (its local part was delivered). Default 4096.
    pub publish_queue: usize,
    /// Most messages published in one batch (one round trip to the engine). Default 256.
    pub publish_batch: usize,
    /// Most room subscription changes waiting (sharded adapter, dynamic mode); past it a
    /// change is dropped, logged and counted. Default 4096.
    pub subscription_queue: usize,
    /// How long a server is remembered after its last message, to name the servers that did
    /// not answer a request. Default 60 s.
    pub node_memory: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            requests_timeout: Duration::from_secs(5),
            publish_queue: 4096,
            publish_batch: 256,
            subscription_queue: 4096,
            node_memory: Duration::from_secs(60),
        }
    }
}

/// Counters of one cluster adapter factory (every namespace of one server), for metrics.
#[derive(Debug, Default)]
pub struct ClusterStats {
    published: AtomicU64,
    publish_failed: AtomicU64,
    queue_full: AtomicU64,
    received: AtomicU64,
    ignored: AtomicU64,
    malformed: AtomicU64,
    subscription_dropped: AtomicU64,
}

/// A copy of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterStatsSnapshot {
    /// Messages published.
    pub published: u64,
    /// Messages that could not be published (the engine was unreachable); dropped.
    pub publish_failed: u64,
    /// Messages refused because the publish queue was full.
    pub queue_full: u64,
    /// Messages received from other servers.
    pub received: u64,
    /// Messages ignored: from this server, for another namespace or room, or of an unknown
    /// type.
    pub ignored: u64,
    /// Messages that could not be decoded.
    pub malformed: u64,
    /// Room subscription changes dropped (full queue).
    pub subscription_dropped: u64,
}

impl ClusterStats {
    /// The current values.
    pub fn snapshot(&self) -> ClusterStatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ClusterStatsSnapshot {
            published: get(&self.published),
            publish_failed: get(&self.publish_failed),
            queue_full: get(&self.queue_full),
            received: get(&self.received),
            ignored: get(&self.ignored),
            malformed: get(&self.malformed),
            subscription_dropped: get(&self.subscription_dropped),
        }
    }
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

#[cfg(test)]
mod tests;
