//! Acknowledgements: answering the client's, and waiting for the client's answers to ours.

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ferrio_proto::engine::Sid;
use ferrio_proto::socket::{Args, encode_ack};
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
    Decode(#[from] ferrio_proto::socket::ArgsError),
    /// The event could not be sent.
    #[error("could not send: {0}")]
    Send(#[from] SendError),
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
        let encoded = encode_ack(self.socket.ns_name(), id, data)?;
        self.socket.send_encoded(&encoded, false)
    }

    /// Answers with `{"error": message}` (used when a handler rejects the payload).
    pub fn send_error(self, message: &str) -> Result<(), SendError> {
        self.send(&serde_json::json!({ "error": message }))
    }
}

/// Where an answer goes.
#[derive(Debug)]
pub(crate) enum AckTx {
    One(oneshot::Sender<Args>),
    Many(mpsc::UnboundedSender<(Sid, Args)>),
}

/// The acks a socket waits for, each with its deadline.
#[derive(Debug, Default)]
pub(crate) struct AckTable {
    entries: HashMap<u64, (AckTx, Instant)>,
}

/// Above this many waiting acks, expired entries are swept on insert.
const SWEEP_ABOVE: usize = 256;

impl AckTable {
    pub(crate) fn insert(&mut self, id: u64, tx: AckTx, deadline: Instant) {
        if self.entries.len() >= SWEEP_ABOVE {
            let now = Instant::now();
            self.entries.retain(|_, (_, d)| *d > now);
        }
        self.entries.insert(id, (tx, deadline));
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

/// The answer to one `emit_with_ack`, typed: `await` it.
pub struct AckFuture<V> {
    state: AckState,
    _v: PhantomData<fn() -> V>,
}

enum AckState {
    Failed(Option<AckError>),
    Waiting {
        rx: oneshot::Receiver<Args>,
        sleep: Pin<Box<tokio::time::Sleep>>,
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
        timeout: Duration,
        socket: SocketRef,
        id: u64,
    ) -> Self {
        AckFuture {
            state: AckState::Waiting {
                rx,
                sleep: Box::pin(tokio::time::sleep(timeout)),
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
                        Ok(args) => args.deserialize().map_err(AckError::from),
                        Err(_) => Err(AckError::Disconnected),
                    });
                }
                if sleep.as_mut().poll(cx).is_ready() {
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

/// The answers to a broadcast `emit_with_ack`: each socket's answer as it arrives, then a
/// timeout for each socket that did not answer in time.
pub struct AckStream<V> {
    rx: mpsc::UnboundedReceiver<(Sid, Args)>,
    waiting: Vec<Sid>,
    deadline: tokio::time::Instant,
    timed_out: bool,
    _v: PhantomData<fn() -> V>,
}

impl<V: DeserializeOwned> AckStream<V> {
    pub(crate) fn new(
        rx: mpsc::UnboundedReceiver<(Sid, Args)>,
        waiting: Vec<Sid>,
        timeout: Duration,
    ) -> Self {
        AckStream {
            rx,
            waiting,
            deadline: tokio::time::Instant::now() + timeout,
            timed_out: false,
            _v: PhantomData,
        }
    }

    /// How many sockets the broadcast reached and that have not answered yet.
    pub fn remaining(&self) -> usize {
        self.waiting.len()
    }

    /// The next answer: `(socket id, answer)`; `None` once every socket answered or timed
    /// out.
    pub async fn next(&mut self) -> Option<(Sid, Result<V, AckError>)> {
        if self.waiting.is_empty() {
            return None;
        }
        if !self.timed_out {
            match tokio::time::timeout_at(self.deadline, self.rx.recv()).await {
                Ok(Some((sid, args))) => {
                    self.waiting.retain(|s| *s != sid);
                    return Some((sid, args.deserialize().map_err(AckError::from)));
                }
                // Every sender is gone: the remaining sockets disconnected.
                Ok(None) => {
                    let sid = self.waiting.remove(0);
                    return Some((sid, Err(AckError::Disconnected)));
                }
                Err(_) => self.timed_out = true,
            }
        }
        let sid = self.waiting.remove(0);
        Some((sid, Err(AckError::Timeout)))
    }

    /// Every answer, in arrival order (timeouts last).
    pub async fn collect(mut self) -> Vec<(Sid, Result<V, AckError>)> {
        let mut out = Vec::with_capacity(self.waiting.len());
        while let Some(x) = self.next().await {
            out.push(x);
        }
        out
    }
}

impl<V> std::fmt::Debug for AckStream<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckStream")
            .field("waiting", &self.waiting.len())
            .finish_non_exhaustive()
    }
}
