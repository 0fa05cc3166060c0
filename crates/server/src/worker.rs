//! The per-socket worker: runs a socket's handlers in arrival order, concurrently.
//!
//! Guarantee: handlers of one socket are started in the order their packets arrived; each one
//! runs until its first `.await` that is not ready before the next one is first polled; then
//! they run concurrently on the socket's task. A slow handler never delays pings (the
//! Engine.IO driver is another task) and never blocks other sockets.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use futures_util::task::AtomicWaker;
use tokio::sync::{mpsc, oneshot};

use crate::handler::BoxFuture;

/// The sending side, held by the socket.
pub(crate) struct WorkSender {
    tx: mpsc::Sender<BoxFuture>,
    fin: Mutex<Option<oneshot::Sender<BoxFuture>>>,
    /// Woken each time the worker takes a handler from the queue (room for one more).
    space: Arc<AtomicWaker>,
}

impl std::fmt::Debug for WorkSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkSender").finish_non_exhaustive()
    }
}

/// Starts a worker with at most `max_pending` queued handlers and `max_running` running at
/// once (past that, the queue fills up).
pub(crate) fn spawn(max_pending: usize, max_running: usize) -> WorkSender {
    let (tx, rx) = mpsc::channel(max_pending.max(1));
    let (fin_tx, fin_rx) = oneshot::channel();
    let space = Arc::new(AtomicWaker::new());
    tokio::spawn(run(rx, fin_rx, max_running.max(1), space.clone()));
    WorkSender {
        tx,
        fin: Mutex::new(Some(fin_tx)),
        space,
    }
}

impl WorkSender {
    /// Ready when the queue has room for one more handler (or the worker is gone); otherwise
    /// `cx` is woken when the worker takes one.
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.space.register(cx.waker());
        if self.tx.capacity() > 0 || self.tx.is_closed() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Queues a handler; false when the queue is full (the caller closes the connection).
    pub(crate) fn run(&self, fut: BoxFuture) -> bool {
        match self.tx.try_send(fut) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => false,
            // The worker finished: the socket is closing, nothing more runs.
            Err(mpsc::error::TrySendError::Closed(_)) => true,
        }
    }

    /// Closes the queue, starts what it still holds (those packets arrived before the close:
    /// Node dispatches them too), then runs `fut`, and stops the worker once all are done.
    pub(crate) fn finish(&self, fut: BoxFuture) {
        let fin = self.fin.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(fin) = fin {
            let _ = fin.send(fut);
        }
    }
}

async fn run(
    mut rx: mpsc::Receiver<BoxFuture>,
    mut fin_rx: oneshot::Receiver<BoxFuture>,
    max_running: usize,
    space: Arc<AtomicWaker>,
) {
    let mut running = FuturesUnordered::new();
    let mut fin = None;
    let mut finishing = false;
    // The queue is closed and empty, and `fin` started.
    let mut drained = false;
    loop {
        if drained && running.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            Some(()) = running.next(), if !running.is_empty() => {}
            f = &mut fin_rx, if !finishing => {
                finishing = true;
                rx.close();
                fin = f.ok();
            }
            next = rx.recv(), if !drained && running.len() < max_running => match next {
                Some(f) => {
                    running.push(f);
                    space.wake();
                }
                None => {
                    drained = true;
                    if let Some(f) = fin.take() {
                        running.push(f);
                    }
                }
            },
        }
    }
}
