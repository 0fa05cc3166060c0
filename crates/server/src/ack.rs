//! Acknowledgements: answering the client's, and waiting for the client's answers to ours.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ferrio_proto::engine::Sid;
use ferrio_proto::socket::Args;
use ferrio_proto::value::{self, Value};
use futures_util::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};

use crate::SendError;
use crate::socket::SocketRef;

/// Why an acknowledgement did not come.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// No answer within the timeout.
    #[error("operation has timed out")]
    Timeout,
    /// The socket disconnected before answering.
    #[error("socket disconnected")]
    Disconnected,
    /// The answer does not fit the expected type.
    #[error("invalid ack payload: {0}")]
    Decode(String),
    /// The event could not be sent.
    #[error("could not send: {0}")]
    Send(#[from] SendError),
}

impl AckError {
    fn decode(e: impl std::fmt::Display) -> Self {
        AckError::Decode(e.to_string())
    }
}

/// Answers the acknowledgement the client asked for. Without an ack id (the client did not
/// ask), sending does nothing.
#[derive(Debug)]
pub struct AckSender {
    socket: SocketRef,
    id: Option<u64>,
}

impl AckSender {
    pub(crate) fn new(socket: SocketRef, id: Option<u64>) -> Self {
        AckSender { socket, id }
    }

    /// Whether the client waits for an answer.
    pub fn is_requested(&self) -> bool {
        self.id.is_some()
    }

    /// Answers with `data`: a tuple is several arguments, `()` none, anything else one.
    pub fn send<T: Serialize + ?Sized>(self, data: &T) -> Result<(), SendError> {
        let Some(id) = self.id else {
            return Ok(());
        };
        let encoded = self
            .socket
            .ns
            .encoder()
            .encode_ack(self.socket.ns_name(), id, data)?;
        self.socket.send_encoded(&encoded, false, true)
    }

    /// Answers with `{"error": message}` (used when a handler rejects the payload).
    pub fn send_error(self, message: &str) -> Result<(), SendError> {
        self.send(&serde_json::json!({ "error": message }))
    }
}

/// Where an answer goes.
pub(crate) enum AckTx {
    /// One `emit_with_ack` to one socket.
    One(oneshot::Sender<Args>),
    /// A broadcast with acks: every recipient shares the id and the callback.
    Callback(AckCallback),
}

impl std::fmt::Debug for AckTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AckTx::One(_) => "One",
            AckTx::Callback(_) => "Callback",
        })
    }
}

/// The acks a socket waits for, each with its deadline (`None`: until the answer or the
/// disconnect).
#[derive(Debug, Default)]
pub(crate) struct AckTable {
    entries: HashMap<u64, (AckTx, Option<Instant>)>,
}

/// Above this many waiting acks, expired entries are swept on insert.
const SWEEP_ABOVE: usize = 256;

impl AckTable {
    /// Adds an entry; false (nothing added) when `max` entries are waiting, expired ones
    /// swept first.
    pub(crate) fn insert(
        &mut self,
        id: u64,
        tx: AckTx,
        deadline: Option<Instant>,
        max: usize,
    ) -> bool {
        if self.entries.len() >= SWEEP_ABOVE.min(max) {
            let now = Instant::now();
            self.entries.retain(|_, (_, d)| d.is_none_or(|d| d > now));
        }
        if self.entries.len() >= max {
            return false;
        }
        self.entries.insert(id, (tx, deadline));
        true
    }

    /// Entries waiting, expired ones not yet swept included.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn take(&mut self, id: u64) -> Option<AckTx> {
        self.entries.remove(&id).map(|(tx, _)| tx)
    }

    pub(crate) fn remove(&mut self, id: u64) {
        self.entries.remove(&id);
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

/// The answer to one `emit_with_ack`, typed: `await` it. Without a timeout it waits until the
/// client answers or the socket disconnects ([`AckError::Disconnected`]).
pub struct AckFuture<V> {
    state: AckState,
    _v: PhantomData<fn() -> V>,
}

enum AckState {
    Failed(Option<AckError>),
    Waiting {
        rx: oneshot::Receiver<Args>,
        sleep: Option<Pin<Box<tokio::time::Sleep>>>,
        socket: SocketRef,
        id: u64,
    },
}

impl<V> AckFuture<V> {
    pub(crate) fn failed(e: AckError) -> Self {
        AckFuture {
            state: AckState::Failed(Some(e)),
            _v: PhantomData,
        }
    }

    pub(crate) fn waiting(
        rx: oneshot::Receiver<Args>,
        timeout: Option<Duration>,
        socket: SocketRef,
        id: u64,
    ) -> Self {
        AckFuture {
            state: AckState::Waiting {
                rx,
                sleep: timeout.map(|t| Box::pin(tokio::time::sleep(t))),
                socket,
                id,
            },
            _v: PhantomData,
        }
    }
}

impl<V: DeserializeOwned> Future for AckFuture<V> {
    type Output = Result<V, AckError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match &mut this.state {
            AckState::Failed(e) => Poll::Ready(Err(e.take().unwrap_or(AckError::Timeout))),
            AckState::Waiting {
                rx,
                sleep,
                socket,
                id,
            } => {
                if let Poll::Ready(r) = Pin::new(rx).poll(cx) {
                    return Poll::Ready(match r {
                        Ok(args) => args.deserialize().map_err(AckError::decode),
                        Err(_) => Err(AckError::Disconnected),
                    });
                }
                if let Some(sleep) = sleep
                    && sleep.as_mut().poll(cx).is_ready()
                {
                    socket.forget_ack(*id);
                    return Poll::Ready(Err(AckError::Timeout));
                }
                Poll::Pending
            }
        }
    }
}

impl<V> std::fmt::Debug for AckFuture<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckFuture").finish_non_exhaustive()
    }
}

/// What a local socket's answer to a broadcast with acks is handed to: the socket id and the
/// ack's arguments.
pub type AckCallback = Arc<dyn Fn(Sid, Args) + Send + Sync>;

/// What goes into an [`AckStream`].
enum AckEvent {
    /// How many servers the broadcast reached (this one included).
    Servers(usize),
    /// This server's recipients.
    LocalCount(Vec<Sid>),
    /// Another server's client count.
    RemoteCount(usize),
    /// A local socket's answer.
    Local(Sid, Args),
    /// An answer from a socket of another server (its first argument, as Node sends it).
    Remote(Option<Sid>, Value),
}

/// The sending side of a broadcast with acks, given to [`crate::adapter::Adapter::
/// broadcast_with_ack`]: the adapter reports how many servers there are, each server's
/// client count, and every answer. Cheap to clone.
#[derive(Clone)]
pub struct AckSink {
    tx: mpsc::UnboundedSender<AckEvent>,
    /// A zero timeout: every answer comes too late and is dropped.
    discard: bool,
}

impl std::fmt::Debug for AckSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckSink").finish_non_exhaustive()
    }
}

impl AckSink {
    /// The number of servers whose client counts to wait for (this one included).
    pub fn expect_servers(&self, servers: usize) {
        let _ = self.tx.send(AckEvent::Servers(servers));
    }

    /// This server's recipients (counts as one server's answer).
    pub fn local_count(&self, sids: Vec<Sid>) {
        let _ = self.tx.send(AckEvent::LocalCount(sids));
    }

    /// Where this server's sockets' answers go.
    pub fn local_callback(&self) -> AckCallback {
        if self.discard {
            return Arc::new(|_, _| {});
        }
        let tx = self.tx.clone();
        Arc::new(move |sid, args| {
            let _ = tx.send(AckEvent::Local(sid, args));
        })
    }

    /// Another server's client count.
    pub fn remote_count(&self, count: usize) {
        let _ = self.tx.send(AckEvent::RemoteCount(count));
    }

    /// An answer from a socket of another server (`sid` when the server names it).
    pub fn remote_ack(&self, sid: Option<Sid>, value: Value) {
        if self.discard {
            return;
        }
        let _ = self.tx.send(AckEvent::Remote(sid, value));
    }
}

/// The answers to a broadcast `emit_with_ack`, as a [`Stream`]: each socket's answer as it
/// arrives, `(Some(socket id), answer)` (`None` for sockets of Node servers, whose answers carry
/// no id), then a timeout for each socket that did not answer in time. It ends when every server
/// has reported its client count and every client answered, or at the deadline.
///
/// An answer to a broadcast is the client's ack arguments read as `V` (one argument: that
/// argument; several: a tuple); from another server, its first argument (Node forwards only
/// that one).
pub struct AckStream<V> {
    rx: mpsc::UnboundedReceiver<AckEvent>,
    sleep: Pin<Box<tokio::time::Sleep>>,
    /// A zero timeout: every target times out at the first poll (its answers are dropped by
    /// the sink, so none can come first; a zero sleep would wait for the next timer tick).
    at_once: bool,
    servers: Option<usize>,
    counted_servers: usize,
    pending_local: HashSet<Sid>,
    early_local: HashSet<Sid>,
    remote_expected: usize,
    remote_answered: usize,
    ready: VecDeque<(Option<Sid>, Result<V, AckError>)>,
    ended: bool,
}

/// A stream and its sink for a broadcast with acks that waits `timeout` at most.
pub(crate) fn ack_channel<V>(timeout: Duration) -> (AckSink, AckStream<V>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        AckSink {
            tx,
            discard: timeout.is_zero(),
        },
        AckStream {
            rx,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            at_once: timeout.is_zero(),
            servers: None,
            counted_servers: 0,
            pending_local: HashSet::new(),
            early_local: HashSet::new(),
            remote_expected: 0,
            remote_answered: 0,
            ready: VecDeque::new(),
            ended: false,
        },
    )
}

impl<V: DeserializeOwned> AckStream<V> {
    /// How many answers are still awaited from the clients counted so far (this server's at
    /// once; other servers' as their counts arrive).
    pub fn remaining(&mut self) -> usize {
        while let Ok(ev) = self.rx.try_recv() {
            if let Some(item) = self.handle(ev) {
                self.ready.push_back(item);
            }
        }
        self.pending_local.len() + self.remote_expected.saturating_sub(self.remote_answered)
    }

    /// How many servers have not reported their client count (after the stream ended: the
    /// servers that did not answer in time).
    pub fn missing_servers(&self) -> usize {
        self.servers
            .map_or(0, |n| n.saturating_sub(self.counted_servers))
    }

    /// The next answer; `None` once every socket answered or timed out.
    pub async fn next(&mut self) -> Option<(Option<Sid>, Result<V, AckError>)> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// Every answer, in arrival order (timeouts last).
    pub async fn collect(mut self) -> Vec<(Option<Sid>, Result<V, AckError>)> {
        let mut out = Vec::new();
        while let Some(x) = self.next().await {
            out.push(x);
        }
        out
    }

    fn complete(&self) -> bool {
        self.servers.is_some_and(|n| self.counted_servers >= n)
            && self.pending_local.is_empty()
            && self.remote_answered >= self.remote_expected
    }

    fn handle(&mut self, ev: AckEvent) -> Option<(Option<Sid>, Result<V, AckError>)> {
        match ev {
            AckEvent::Servers(n) => self.servers = Some(n),
            AckEvent::LocalCount(sids) => {
                self.counted_servers += 1;
                for sid in sids {
                    if !self.early_local.remove(&sid) {
                        self.pending_local.insert(sid);
                    }
                }
            }
            AckEvent::RemoteCount(n) => {
                self.counted_servers += 1;
                self.remote_expected += n;
            }
            AckEvent::Local(sid, args) => {
                if !self.pending_local.remove(&sid) && !self.early_local.insert(sid) {
                    // A second answer from the same socket: ignored.
                    return None;
                }
                return Some((Some(sid), args.deserialize().map_err(AckError::decode)));
            }
            AckEvent::Remote(sid, value) => {
                let all_counted = self.servers.is_some_and(|n| self.counted_servers >= n);
                if all_counted && self.remote_answered >= self.remote_expected {
                    // More answers than announced clients: ignored.
                    return None;
                }
                self.remote_answered += 1;
                return Some((sid, value::from_value(&value).map_err(AckError::decode)));
            }
        }
        None
    }

    /// Ends the stream: every socket still awaited gets `err`.
    fn give_up(&mut self, local: fn() -> AckError) {
        for sid in self.pending_local.drain() {
            self.ready.push_back((Some(sid), Err(local())));
        }
        let missing = self.remote_expected.saturating_sub(self.remote_answered);
        for _ in 0..missing {
            self.ready.push_back((None, Err(AckError::Timeout)));
        }
        self.remote_answered = self.remote_expected;
        self.ended = true;
    }
}

impl<V: DeserializeOwned> Stream for AckStream<V> {
    type Item = (Option<Sid>, Result<V, AckError>);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(item) = this.ready.pop_front() {
                return Poll::Ready(Some(item));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            if this.complete() {
                this.ended = true;
                continue;
            }
            match this.rx.poll_recv(cx) {
                Poll::Ready(Some(ev)) => {
                    if let Some(item) = this.handle(ev) {
                        return Poll::Ready(Some(item));
                    }
                    continue;
                }
                // Every sender is gone: the remaining local sockets disconnected.
                // (With a zero timeout the answers were never awaited: timeouts.)
                Poll::Ready(None) => {
                    let err: fn() -> AckError = if this.at_once {
                        || AckError::Timeout
                    } else {
                        || AckError::Disconnected
                    };
                    this.give_up(err);
                    continue;
                }
                Poll::Pending => {}
            }
            if this.at_once || this.sleep.as_mut().poll(cx).is_ready() {
                this.give_up(|| AckError::Timeout);
                continue;
            }
            return Poll::Pending;
        }
    }
}

impl<V> std::fmt::Debug for AckStream<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckStream")
            .field("servers", &self.servers)
            .field("pending_local", &self.pending_local.len())
            .finish_non_exhaustive()
    }
}

impl<V> Unpin for AckStream<V> {}
