//! # ferrio-redis
//!
//! Redis for Ferrio clusters: servers behind a load balancer share rooms, broadcasts, acks and
//! requests through Redis, in the exact wire formats of Node's `@socket.io/redis-adapter` 8.x,
//! so Ferrio and Node `socket.io` servers can be nodes of the same cluster.
//!
//! - [`RedisAdapter::classic`]: the `createAdapter` format (`PUBLISH`/`SUBSCRIBE`/`PSUBSCRIBE`,
//!   server count from `PUBSUB NUMSUB`);
//! - [`RedisAdapter::sharded`]: the `createShardedAdapter` format (Redis 7 sharded pub/sub:
//!   `SPUBLISH`/`SSUBSCRIBE`, a channel per public room in the `dynamic` mode);
//! - [`Emitter`]: the `@socket.io/redis-emitter` format, for processes that are not Socket.IO
//!   servers.
//!
//! The protocols themselves live in [`ferrio::cluster`]; this crate is the [`RedisBackend`] that
//! moves their bytes: one publishing and one subscriber connection per server, reconnection with
//! exponential backoff, every subscription made again after Redis comes back, one log line per
//! outage and counters ([`RedisStats`]). A Redis Cluster works too (URL `redis-cluster://...`):
//! the server count is summed over its primaries, as Node does.
//!
//! It is not a Redis client: it uses `fred`.
//!
//! ```no_run
//! use ferrio::SocketIo;
//! use ferrio_redis::{RedisAdapter, RedisConfig};
//!
//! # async fn run() -> Result<(), ferrio_redis::RedisError> {
//! let adapter = RedisAdapter::classic("redis://127.0.0.1:6379", RedisConfig::default()).await?;
//! let io = SocketIo::builder().adapter(adapter).build();
//! io.to("lobby").emit("news", "reaches the lobby on every server").ok();
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

mod backend;
mod emitter;

use std::sync::Arc;
use std::time::Duration;

use ferrio::cluster::{
    ClassicAdapter, ClassicFactory, ClusterConfig, ShardedAdapter, ShardedFactory,
};

pub use backend::{RedisBackend, RedisStats};
pub use emitter::{Emitter, EmitterError};

/// Why Redis could not be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("redis: {0}")]
pub struct RedisError(pub String);

/// Connection settings.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RedisConfig {
    /// How long the first connection may take. Default 5 s.
    pub connect_timeout: Duration,
    /// How long a command (a publish batch, a server count) may take before it fails (the
    /// messages are then dropped and counted). Default 2 s.
    pub command_timeout: Duration,
    /// Delays between reconnection attempts: from this... Default 100 ms.
    pub reconnect_min_delay: Duration,
    /// ...doubling up to this. Default 2 s.
    pub reconnect_max_delay: Duration,
    /// Most received messages waiting to be handled; past it the oldest are dropped, logged
    /// and counted ([`RedisStats::lagged`]). Default 16 384.
    pub message_buffer: usize,
    /// Most commands waiting in the client for the connection (while it is busy or
    /// reconnecting); past it a command fails at once. Default 4096. (Publishes are not queued
    /// while Redis is unreachable: they fail at once and are counted.)
    pub max_command_buffer: usize,
    /// The settings of the cluster protocol (request timeout, publish queue).
    pub cluster: ClusterConfig,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(2),
            reconnect_min_delay: Duration::from_millis(100),
            reconnect_max_delay: Duration::from_secs(2),
            message_buffer: 16_384,
            max_command_buffer: 4096,
            cluster: ClusterConfig::default(),
        }
    }
}

/// Constructors of Redis adapter factories for [`ferrio::SocketIoBuilder::adapter`].
#[derive(Debug)]
pub struct RedisAdapter;

impl RedisAdapter {
    /// The classic `@socket.io/redis-adapter` format (key `socket.io`; change it with
    /// [`ClassicFactory::key`]). Connects now; one per server.
    pub async fn classic(url: &str, config: RedisConfig) -> Result<ClassicFactory, RedisError> {
        let backend = RedisBackend::connect(url, &config, backend::Mode::Classic).await?;
        Ok(ClassicAdapter::factory(backend, config.cluster))
    }

    /// The sharded format of `createShardedAdapter` (Redis 7 or later). Connects now; one per
    /// server.
    pub async fn sharded(url: &str, config: RedisConfig) -> Result<ShardedFactory, RedisError> {
        let backend = RedisBackend::connect(url, &config, backend::Mode::Sharded).await?;
        Ok(ShardedAdapter::factory(backend, config.cluster))
    }

    /// A backend for the classic format, to build the factory yourself (and keep the
    /// backend's [`RedisStats`]).
    pub async fn classic_backend(
        url: &str,
        config: &RedisConfig,
    ) -> Result<Arc<RedisBackend>, RedisError> {
        RedisBackend::connect(url, config, backend::Mode::Classic).await
    }

    /// A backend for the sharded format.
    pub async fn sharded_backend(
        url: &str,
        config: &RedisConfig,
    ) -> Result<Arc<RedisBackend>, RedisError> {
        RedisBackend::connect(url, config, backend::Mode::Sharded).await
    }
}
