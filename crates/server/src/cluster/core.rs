//! What both protocol families share: the publish queue and task, the table of requests
//! waiting for answers, the broadcasts waiting for acks, and the servers seen recently.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrio_proto::value::Value;
use rand::Rng;
use tokio::sync::{mpsc, oneshot};

use super::{Backend, ClusterConfig, ClusterStats, bump};
use crate::AckSink;
use crate::adapter::{AdapterError, Gathered, LocalNamespace};

/// Most servers remembered at once (a bound against a flood of made-up ids).
const MAX_NODES: usize = 10_000;

/// One request waiting for answers.
struct Pending {
    expected: usize,
    received: usize,
    answered: Vec<String>,
    /// Whether every answer named its server (Node's classic answers do not).
    all_named: bool,
    values: Vec<Value>,
    done: Option<oneshot::Sender<()>>,
}

/// The shared part of a cluster adapter of one namespace.
pub(crate) struct Core {
    pub(crate) uid: String,
    /// The channel whose subscriber count is the number of servers.
    count_channel: String,
    pub(crate) local: LocalNamespace,
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) config: ClusterConfig,
    pub(crate) stats: Arc<ClusterStats>,
    out: mpsc::Sender<(String, Bytes)>,
    out_rx: Mutex<Option<mpsc::Receiver<(String, Bytes)>>>,
    requests: Mutex<HashMap<String, Pending>>,
    acks: Mutex<HashMap<String, AckSink>>,
    nodes: Mutex<HashMap<String, Instant>>,
    closed: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section leaves its map consistent, so a poisoned lock is usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `n` random characters of `[A-Za-z0-9]` (Node's `uid2`).
pub(crate) fn random_alnum(n: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

/// `n` random bytes as lower-case hex (Node's `randomBytes(n).toString("hex")`).
pub(crate) fn random_hex(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

impl Core {
    pub(crate) fn new(
        uid: String,
        count_channel: String,
        local: LocalNamespace,
        backend: Arc<dyn Backend>,
        config: ClusterConfig,
        stats: Arc<ClusterStats>,
    ) -> Self {
        let (out, rx) = mpsc::channel(config.publish_queue.max(1));
        Core {
            uid,
            count_channel,
            local,
            backend,
            config,
            stats,
            out,
            out_rx: Mutex::new(Some(rx)),
            requests: Mutex::new(HashMap::new()),
            acks: Mutex::new(HashMap::new()),
            nodes: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        }
    }

    /// Starts the publish task (once; from `init`, which runs on the runtime).
    pub(crate) fn start(&self) {
        let Some(rx) = lock(&self.out_rx).take() else {
            return;
        };
        tokio::spawn(publisher(
            rx,
            self.backend.clone(),
            self.stats.clone(),
            self.config.publish_batch.max(1),
            self.local.name().to_owned(),
        ));
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Queues a message for the cluster; a full queue is an error for the caller.
    pub(crate) fn publish(&self, channel: String, payload: Vec<u8>) -> Result<(), AdapterError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(AdapterError::Closed);
        }
        match self.out.try_send((channel, Bytes::from(payload))) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                bump(&self.stats.queue_full, 1);
                Err(AdapterError::QueueFull)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(AdapterError::Closed),
        }
    }

    /// Queues an answer to another server; a failure is logged (the requester times out).
    pub(crate) fn publish_response(&self, channel: String, payload: Vec<u8>) {
        if let Err(e) = self.publish(channel, payload) {
            tracing::debug!(ns = %self.local.name(), "answer to another server dropped: {e}");
        }
    }

    /// Counts a message from another server and remembers the server.
    pub(crate) fn seen(&self, uid: Option<&str>) {
        bump(&self.stats.received, 1);
        let Some(uid) = uid.filter(|u| *u != "emitter" && *u != self.uid) else {
            return;
        };
        let now = Instant::now();
        let mut nodes = lock(&self.nodes);
        if !nodes.contains_key(uid) && nodes.len() >= MAX_NODES {
            let memory = self.config.node_memory;
            nodes.retain(|_, at| now.duration_since(*at) < memory);
            if nodes.len() >= MAX_NODES {
                return;
            }
        }
        nodes.insert(uid.to_owned(), now);
    }

    /// Forgets a server (it said it closed).
    pub(crate) fn forget(&self, uid: &str) {
        lock(&self.nodes).remove(uid);
    }

    pub(crate) fn ignored(&self) {
        bump(&self.stats.ignored, 1);
    }

    pub(crate) fn malformed(&self, what: &str) {
        bump(&self.stats.malformed, 1);
        tracing::debug!(ns = %self.local.name(), "malformed cluster message ignored: {what}");
    }

    /// Whether a request id is one of this server's requests (its own message coming back).
    pub(crate) fn is_own_request(&self, id: &str) -> bool {
        lock(&self.requests).contains_key(id) || lock(&self.acks).contains_key(id)
    }

    /// Sends a request and waits for `expected` answers, at most `timeout`.
    pub(crate) async fn request(
        &self,
        id: String,
        expected: usize,
        message: (String, Vec<u8>),
        timeout: Duration,
    ) -> Result<Gathered<Value>, AdapterError> {
        let (tx, rx) = oneshot::channel();
        lock(&self.requests).insert(
            id.clone(),
            Pending {
                expected,
                received: 0,
                answered: Vec::new(),
                all_named: true,
                values: Vec::new(),
                done: Some(tx),
            },
        );
        if let Err(e) = self.publish(message.0, message.1) {
            lock(&self.requests).remove(&id);
            return Err(e);
        }
        let _ = tokio::time::timeout(timeout, rx).await;
        let Some(p) = lock(&self.requests).remove(&id) else {
            return Ok(Gathered::complete(Vec::new()));
        };
        let missing = p.expected.saturating_sub(p.received);
        let missing_nodes = if missing > 0 && p.all_named {
            let memory = self.config.node_memory;
            let now = Instant::now();
            lock(&self.nodes)
                .iter()
                .filter(|(uid, at)| now.duration_since(**at) < memory && !p.answered.contains(uid))
                .map(|(uid, _)| uid.clone())
                .collect()
        } else {
            Vec::new()
        };
        if missing > 0 {
            tracing::debug!(
                ns = %self.local.name(),
                missing,
                "cluster request timed out: {} of {} servers answered",
                p.received,
                p.expected
            );
        }
        Ok(Gathered {
            values: p.values,
            missing,
            missing_nodes,
        })
    }

    /// An answer to one of this server's requests (`from`: the answering server, if named).
    /// Returns false for an unknown request.
    pub(crate) fn answer(&self, id: &str, from: Option<&str>, values: Vec<Value>) -> bool {
        let mut requests = lock(&self.requests);
        let Some(p) = requests.get_mut(id) else {
            return false;
        };
        if let Some(from) = from {
            if p.answered.iter().any(|a| a == from) {
                // A second answer from the same server: ignored.
                return true;
            }
            p.answered.push(from.to_owned());
        } else {
            p.all_named = false;
        }
        p.received += 1;
        p.values.extend(values);
        if p.received >= p.expected
            && let Some(done) = p.done.take()
        {
            let _ = done.send(());
        }
        true
    }

    /// Keeps the sink of a broadcast with acks until `timeout`, and tells it how many servers
    /// there are.
    /// Publishes a broadcast-with-acks request and routes the answers for `id` to `sink`.
    ///
    /// The sink is registered before the request goes out: another server may answer (its
    /// client count first) before `publish` returns, since the publish task runs on another
    /// worker thread. When the publish fails, only this server's answers are awaited.
    pub(crate) fn publish_acked(
        self: &Arc<Self>,
        id: String,
        sink: AckSink,
        timeout: Duration,
        publish: impl FnOnce() -> Result<(), AdapterError>,
    ) -> Result<(), AdapterError> {
        lock(&self.acks).insert(id.clone(), sink.clone());
        if let Err(e) = publish() {
            lock(&self.acks).remove(&id);
            sink.expect_servers(1);
            return Err(e);
        }
        self.track_acks(id, sink, timeout);
        Ok(())
    }

    fn track_acks(self: &Arc<Self>, id: String, sink: AckSink, timeout: Duration) {
        let me = self.clone();
        tokio::spawn(async move {
            match me.server_count().await {
                Ok(n) => sink.expect_servers(n),
                Err(e) => tracing::debug!(ns = %me.local.name(), "server count unknown: {e}"),
            }
            drop(sink);
            tokio::time::sleep(timeout).await;
            lock(&me.acks).remove(&id);
        });
    }

    /// The sink of one of this server's broadcasts with acks.
    pub(crate) fn ack_sink(&self, id: &str) -> Option<AckSink> {
        lock(&self.acks).get(id).cloned()
    }

    /// The number of servers: the subscribers of the protocol's counting channel.
    pub(crate) async fn server_count(&self) -> Result<usize, AdapterError> {
        self.backend
            .subscriber_count(self.count_channel.clone())
            .await
            .map(|n| n.max(1))
            .map_err(|e| AdapterError::Backend(e.0))
    }
}

/// Publishes what the adapters queue, in order, in batches.
async fn publisher(
    mut rx: mpsc::Receiver<(String, Bytes)>,
    backend: Arc<dyn Backend>,
    stats: Arc<ClusterStats>,
    batch_max: usize,
    nsp: String,
) {
    let mut down = false;
    let mut batch = Vec::with_capacity(batch_max);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < batch_max {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let n = batch.len() as u64;
        match backend.publish(std::mem::take(&mut batch)).await {
            Ok(()) => {
                bump(&stats.published, n);
                if down {
                    tracing::info!(ns = %nsp, "cluster publishing resumed");
                    down = false;
                }
            }
            Err(e) => {
                bump(&stats.publish_failed, n);
                if !down {
                    tracing::warn!(
                        ns = %nsp,
                        "cluster publish failed, messages to other servers are dropped until it \
                         works again: {e}"
                    );
                    down = true;
                }
            }
        }
    }
}
