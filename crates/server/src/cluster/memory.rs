//! An in-process message bus: several servers of one process joined without an engine (for
//! tests and examples). It behaves like Redis pub/sub: each backend is one subscriber
//! connection, messages are delivered asynchronously and in order, and the subscriber count of
//! a channel counts the backends subscribed to exactly that channel.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{Backend, BackendError, BackendFuture, MessageHandler};

/// Most messages waiting for one subscriber; past it messages to it are dropped and counted.
const QUEUE: usize = 65_536;

/// The bus: make one [`MemoryBus::backend`] per server.
#[derive(Clone, Default)]
pub struct MemoryBus {
    subscribers: Arc<Mutex<Vec<Arc<Subscriber>>>>,
}

impl std::fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBus").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Subs {
    channels: HashMap<String, MessageHandler>,
    prefixes: HashMap<String, MessageHandler>,
}

struct Subscriber {
    subs: Mutex<Subs>,
    tx: Mutex<Option<mpsc::Sender<(String, Bytes)>>>,
    dropped: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Subscriber {
    /// The delivery queue, started on first use (on the runtime).
    fn sender(self: &Arc<Self>) -> mpsc::Sender<(String, Bytes)> {
        let mut tx = lock(&self.tx);
        if let Some(tx) = tx.as_ref() {
            return tx.clone();
        }
        let (new_tx, mut rx) = mpsc::channel::<(String, Bytes)>(QUEUE);
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some((channel, payload)) = rx.recv().await {
                let Some(me) = me.upgrade() else { return };
                let handlers: Vec<MessageHandler> = {
                    let subs = lock(&me.subs);
                    subs.channels
                        .get(&channel)
                        .into_iter()
                        .chain(
                            subs.prefixes
                                .iter()
                                .filter(|(p, _)| channel.starts_with(p.as_str()))
                                .map(|(_, h)| h),
                        )
                        .cloned()
                        .collect()
                };
                for h in handlers {
                    h(&channel, payload.clone());
                }
            }
        });
        *tx = Some(new_tx.clone());
        new_tx
    }
}

/// One server's connection to a [`MemoryBus`].
pub struct MemoryBackend {
    bus: MemoryBus,
    me: Arc<Subscriber>,
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBackend").finish_non_exhaustive()
    }
}

impl MemoryBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new subscriber connection (one per server).
    pub fn backend(&self) -> Arc<dyn Backend> {
        let me = Arc::new(Subscriber {
            subs: Mutex::default(),
            tx: Mutex::new(None),
            dropped: AtomicU64::new(0),
        });
        lock(&self.subscribers).push(me.clone());
        Arc::new(MemoryBackend {
            bus: self.clone(),
            me,
        })
    }

    /// Messages dropped because a subscriber's queue was full.
    pub fn dropped(&self) -> u64 {
        lock(&self.subscribers)
            .iter()
            .map(|s| s.dropped.load(Ordering::Relaxed))
            .sum()
    }
}

fn ok<T: Send + 'static>(v: T) -> BackendFuture<Result<T, BackendError>> {
    Box::pin(std::future::ready(Ok(v)))
}

impl Backend for MemoryBackend {
    fn subscribe(
        &self,
        channel: String,
        handler: MessageHandler,
    ) -> BackendFuture<Result<(), BackendError>> {
        self.me.sender();
        lock(&self.me.subs).channels.insert(channel, handler);
        ok(())
    }

    fn subscribe_prefix(
        &self,
        prefix: String,
        handler: MessageHandler,
    ) -> BackendFuture<Result<(), BackendError>> {
        self.me.sender();
        lock(&self.me.subs).prefixes.insert(prefix, handler);
        ok(())
    }

    fn unsubscribe(&self, channel: String) -> BackendFuture<Result<(), BackendError>> {
        lock(&self.me.subs).channels.remove(&channel);
        ok(())
    }

    fn unsubscribe_prefix(&self, prefix: String) -> BackendFuture<Result<(), BackendError>> {
        lock(&self.me.subs).prefixes.remove(&prefix);
        ok(())
    }

    fn publish(&self, messages: Vec<(String, Bytes)>) -> BackendFuture<Result<(), BackendError>> {
        let subscribers = lock(&self.bus.subscribers).clone();
        for (channel, payload) in messages {
            for s in &subscribers {
                let wants = {
                    let subs = lock(&s.subs);
                    subs.channels.contains_key(&channel)
                        || subs
                            .prefixes
                            .keys()
                            .any(|p| channel.starts_with(p.as_str()))
                };
                if wants
                    && s.sender()
                        .try_send((channel.clone(), payload.clone()))
                        .is_err()
                {
                    s.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        ok(())
    }

    fn subscriber_count(&self, channel: String) -> BackendFuture<Result<usize, BackendError>> {
        let n = lock(&self.bus.subscribers)
            .iter()
            .filter(|s| lock(&s.subs).channels.contains_key(&channel))
            .count();
        ok(n)
    }
}
