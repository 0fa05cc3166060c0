//! The Redis [`Backend`]: one publishing connection and one subscriber connection per server,
//! on `fred`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ferrio::cluster::{Backend, BackendError, BackendFuture, MessageHandler};
use fred::clients::{Client, SubscriberClient};
use fred::interfaces::{ClientLike, ClusterInterface, EventInterface, PubsubInterface};
use fred::prelude::{Builder, Config, ReconnectPolicy};
use fred::types::{MessageKind, Value as RedisValue};
use tokio::task::JoinHandle;

use crate::{RedisConfig, RedisError};

/// Which pub/sub commands the backend uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `PUBLISH`, `SUBSCRIBE`, `PSUBSCRIBE`, `PUBSUB NUMSUB` (the classic adapter).
    Classic,
    /// `SPUBLISH`, `SSUBSCRIBE`, `PUBSUB SHARDNUMSUB` (Redis 7, the sharded adapter).
    Sharded,
}

/// The subscriptions this server wants, with their handlers: what is subscribed again after
/// Redis comes back.
#[derive(Default)]
struct Routes {
    channels: HashMap<String, MessageHandler>,
    prefixes: HashMap<String, MessageHandler>,
}

/// Counters of one Redis backend.
#[derive(Debug, Default)]
pub struct RedisStats {
    outages: AtomicU64,
    lagged: AtomicU64,
    reconnects: AtomicU64,
}

impl RedisStats {
    /// Times the connection to Redis was lost.
    pub fn outages(&self) -> u64 {
        self.outages.load(Ordering::Relaxed)
    }

    /// Times it came back (and the subscriptions were made again).
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// Messages Redis delivered that this server could not take in time
    /// ([`RedisConfig::message_buffer`] full); dropped.
    pub fn lagged(&self) -> u64 {
        self.lagged.load(Ordering::Relaxed)
    }
}

/// A [`Backend`] on Redis: what the Ferrio cluster adapters publish and subscribe through.
/// Make one per server (the server count is a subscriber count).
pub struct RedisBackend {
    mode: Mode,
    publisher: Client,
    subscriber: SubscriberClient,
    routes: Arc<Mutex<Routes>>,
    stats: Arc<RedisStats>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Drop for RedisBackend {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        // Close both connections (the subscriber's closing is what takes this server out of
        // the server count).
        let (p, s) = (self.publisher.clone(), self.subscriber.clone());
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(async move {
                if p.is_connected() {
                    let _ = p.quit().await;
                }
                if s.is_connected() {
                    let _ = s.quit().await;
                }
            });
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn backend_err(e: fred::error::Error) -> BackendError {
    BackendError(e.to_string())
}

fn redis_err(e: fred::error::Error) -> RedisError {
    RedisError(e.to_string())
}

fn payload(v: RedisValue) -> Option<Bytes> {
    match v {
        RedisValue::Bytes(b) => Some(b),
        RedisValue::String(s) => Some(s.into_inner()),
        _ => None,
    }
}

impl RedisBackend {
    /// Connects both connections (waiting for the first connection at most
    /// [`RedisConfig::connect_timeout`]) and starts the message and reconnection tasks.
    pub(crate) async fn connect(
        url: &str,
        config: &RedisConfig,
        mode: Mode,
    ) -> Result<Arc<Self>, RedisError> {
        let redis_config = Config::from_url(url).map_err(redis_err)?;
        let mut builder = Builder::from_config(redis_config);
        let delay = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        builder
            .set_policy(ReconnectPolicy::new_exponential(
                0,
                delay(config.reconnect_min_delay),
                delay(config.reconnect_max_delay),
                2,
            ))
            .with_performance_config(|p| {
                p.default_command_timeout = config.command_timeout;
                p.broadcast_channel_capacity = config.message_buffer.max(1);
            })
            .with_connection_config(|c| {
                c.connection_timeout = config.connect_timeout;
                c.internal_command_timeout = config.command_timeout;
                c.max_command_buffer_len = config.max_command_buffer;
                // A command in flight when the connection breaks is not sent again: a publish
                // retried after a reconnection could be delivered twice.
                c.max_command_attempts = 1;
            });
        let publisher = builder.build().map_err(redis_err)?;
        let subscriber = builder.build_subscriber_client().map_err(redis_err)?;
        let routes = Arc::new(Mutex::new(Routes::default()));
        let stats = Arc::new(RedisStats::default());
        // Subscribed before `init`, so that no message or event is missed.
        let messages = subscriber.message_rx();
        let reconnects = subscriber.reconnect_rx();
        let errors = subscriber.error_rx();
        let timeout = || RedisError(format!("no connection to {url} within the timeout"));
        tokio::time::timeout(config.connect_timeout, publisher.init())
            .await
            .map_err(|_| timeout())?
            .map_err(redis_err)?;
        tokio::time::timeout(config.connect_timeout, subscriber.init())
            .await
            .map_err(|_| timeout())?
            .map_err(redis_err)?;
        let down = Arc::new(AtomicBool::new(false));
        let tasks = vec![
            tokio::spawn(dispatch(
                messages,
                routes.clone(),
                stats.clone(),
                config.message_buffer,
            )),
            tokio::spawn(resubscribe(
                reconnects,
                subscriber.clone(),
                routes.clone(),
                stats.clone(),
                down.clone(),
                mode,
            )),
            tokio::spawn(watch_errors(errors, stats.clone(), down)),
        ];
        Ok(Arc::new(RedisBackend {
            mode,
            publisher,
            subscriber,
            routes,
            stats,
            tasks,
        }))
    }

    /// The counters.
    pub fn stats(&self) -> Arc<RedisStats> {
        self.stats.clone()
    }

    async fn count_on(client: &Client, mode: Mode, channel: &str) -> Result<usize, BackendError> {
        let reply: Vec<RedisValue> = match mode {
            Mode::Classic => client.pubsub_numsub(channel).await,
            Mode::Sharded => client.pubsub_shardnumsub(channel).await,
        }
        .map_err(backend_err)?;
        Ok(reply
            .get(1)
            .and_then(|v| v.as_u64())
            .map_or(0, |n| n as usize))
    }
}

/// Routes every message to the handler of its subscription, in arrival order.
async fn dispatch(
    mut rx: tokio::sync::broadcast::Receiver<fred::types::Message>,
    routes: Arc<Mutex<Routes>>,
    stats: Arc<RedisStats>,
    buffer: usize,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let msg = match rx.recv().await {
            Ok(m) => m,
            Err(RecvError::Lagged(n)) => {
                stats.lagged.fetch_add(n, Ordering::Relaxed);
                tracing::warn!(
                    dropped = n,
                    "Redis messages dropped: more than {buffer} waiting (message_buffer)"
                );
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let channel: &str = &msg.channel;
        let handler = {
            let routes = lock(&routes);
            match msg.kind {
                MessageKind::PMessage => routes
                    .prefixes
                    .iter()
                    .find(|(p, _)| channel.starts_with(p.as_str()))
                    .map(|(_, h)| h.clone()),
                MessageKind::Message | MessageKind::SMessage => {
                    routes.channels.get(channel).cloned()
                }
            }
        };
        let (Some(handler), Some(payload)) = (handler, payload(msg.value)) else {
            continue;
        };
        handler(channel, payload);
    }
}

/// After a reconnection, subscribes to every channel and prefix again.
async fn resubscribe(
    mut rx: tokio::sync::broadcast::Receiver<fred::types::config::Server>,
    sub: SubscriberClient,
    routes: Arc<Mutex<Routes>>,
    stats: Arc<RedisStats>,
    down: Arc<AtomicBool>,
    mode: Mode,
) {
    loop {
        match rx.recv().await {
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
        stats.reconnects.fetch_add(1, Ordering::Relaxed);
        let (channels, prefixes): (Vec<String>, Vec<String>) = {
            let r = lock(&routes);
            (
                r.channels.keys().cloned().collect(),
                r.prefixes.keys().map(|p| format!("{p}*")).collect(),
            )
        };
        let mut result = Ok(());
        for ch in channels {
            let r = match mode {
                Mode::Classic => sub.subscribe(ch).await,
                Mode::Sharded => sub.ssubscribe(ch).await,
            };
            result = result.and(r);
        }
        if !prefixes.is_empty() {
            result = result.and(sub.psubscribe(prefixes).await);
        }
        match result {
            Ok(()) => {
                if down.swap(false, Ordering::AcqRel) {
                    tracing::info!("Redis connection restored, subscriptions made again");
                }
            }
            Err(e) => tracing::warn!("Redis reconnected, but subscribing again failed: {e}"),
        }
    }
}

/// Logs an outage once, and counts it.
async fn watch_errors(
    mut rx: tokio::sync::broadcast::Receiver<(
        fred::error::Error,
        Option<fred::types::config::Server>,
    )>,
    stats: Arc<RedisStats>,
    down: Arc<AtomicBool>,
) {
    loop {
        match rx.recv().await {
            Ok((e, _)) => {
                if !down.swap(true, Ordering::AcqRel) {
                    stats.outages.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        "Redis connection lost ({e}); local traffic continues, cluster traffic \
                         resumes when it is back"
                    );
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

impl Backend for RedisBackend {
    fn subscribe(
        &self,
        channel: String,
        handler: MessageHandler,
    ) -> BackendFuture<Result<(), BackendError>> {
        lock(&self.routes).channels.insert(channel.clone(), handler);
        let (sub, mode) = (self.subscriber.clone(), self.mode);
        Box::pin(async move {
            match mode {
                Mode::Classic => sub.subscribe(channel).await,
                Mode::Sharded => sub.ssubscribe(channel).await,
            }
            .map_err(backend_err)
        })
    }

    fn subscribe_prefix(
        &self,
        prefix: String,
        handler: MessageHandler,
    ) -> BackendFuture<Result<(), BackendError>> {
        lock(&self.routes).prefixes.insert(prefix.clone(), handler);
        let sub = self.subscriber.clone();
        Box::pin(async move {
            sub.psubscribe(format!("{prefix}*"))
                .await
                .map_err(backend_err)
        })
    }

    fn unsubscribe(&self, channel: String) -> BackendFuture<Result<(), BackendError>> {
        lock(&self.routes).channels.remove(&channel);
        let (sub, mode) = (self.subscriber.clone(), self.mode);
        Box::pin(async move {
            match mode {
                Mode::Classic => sub.unsubscribe(channel).await,
                Mode::Sharded => sub.sunsubscribe(channel).await,
            }
            .map_err(backend_err)
        })
    }

    fn unsubscribe_prefix(&self, prefix: String) -> BackendFuture<Result<(), BackendError>> {
        lock(&self.routes).prefixes.remove(&prefix);
        let sub = self.subscriber.clone();
        Box::pin(async move {
            sub.punsubscribe(format!("{prefix}*"))
                .await
                .map_err(backend_err)
        })
    }

    fn publish(&self, messages: Vec<(String, Bytes)>) -> BackendFuture<Result<(), BackendError>> {
        let (client, mode) = (self.publisher.clone(), self.mode);
        Box::pin(async move {
            // While Redis is unreachable the messages are dropped at once (and counted by the
            // adapter), not queued in the client: they would reach the other servers late, or
            // twice after a retry.
            if !client.is_connected() {
                return Err(BackendError("not connected to Redis".into()));
            }
            let pipeline = client.pipeline();
            for (channel, payload) in messages {
                let queued: Result<(), _> = match mode {
                    Mode::Classic => pipeline.publish(channel, payload).await,
                    Mode::Sharded => pipeline.spublish(channel, payload).await,
                };
                queued.map_err(backend_err)?;
            }
            let _: Vec<RedisValue> = pipeline.all().await.map_err(backend_err)?;
            Ok(())
        })
    }

    fn subscriber_count(&self, channel: String) -> BackendFuture<Result<usize, BackendError>> {
        let (client, mode) = (self.publisher.clone(), self.mode);
        Box::pin(async move {
            // A Redis Cluster counts subscribers per node: sum over the primaries, as Node does.
            let nodes = client
                .cached_cluster_state()
                .map(|s| s.unique_primary_nodes())
                .unwrap_or_default();
            if nodes.is_empty() {
                return RedisBackend::count_on(&client, mode, &channel).await;
            }
            let mut total = 0;
            for node in nodes {
                let c = client.with_cluster_node(node);
                let reply: Vec<RedisValue> = match mode {
                    Mode::Classic => c.pubsub_numsub(&channel).await,
                    Mode::Sharded => c.pubsub_shardnumsub(&channel).await,
                }
                .map_err(backend_err)?;
                total += reply.get(1).and_then(|v| v.as_u64()).unwrap_or(0) as usize;
            }
            Ok(total)
        })
    }
}
