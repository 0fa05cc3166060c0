//! The per-socket handler runner: runs a socket's handlers in arrival order, concurrently.
//!
//! Guarantee: handlers of one socket are started in the order their packets arrived; each one
//! runs until its first `.await` that is not ready before the next one is first polled; then
//! they run concurrently, never two of one socket at the same instant.
//!
//! Cost: nothing is allocated while a socket is idle (no task, no channel). A handler that
//! arrives while nothing of its socket runs or waits is polled once at once, on the caller's
//! task (the Engine.IO driver, for an event): a handler that completes there (`echo`, most
//! handlers) costs no task, no channel and no wake-up. Only a handler still pending after
//! that poll, or one arriving while another of the socket runs or waits, goes to a worker
//! task; the worker ends once nothing of its socket runs or waits. A handler that blocks
//! before its first `.await` (CPU-bound work) delays its connection's other traffic while
//! it runs: give such work to `tokio::task::spawn_blocking`.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures_util::FutureExt;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::handler::BoxFuture;

/// Most handlers started or completed by one pass of a worker before it yields to other
/// tasks.
const BUDGET: usize = 64;

/// What owns a [`Work`] (the socket): the worker task holds it while it runs.
pub(crate) trait HasWork: Send + Sync + 'static {
    /// The handler runner.
    fn work(&self) -> &Work;
}

/// A socket's handler runner: a queue and a little state, no task while idle.
pub(crate) struct Work {
    state: Mutex<State>,
    /// Most handlers waiting to start (`SocketIoConfig::max_pending_events`).
    max_pending: usize,
    /// Most handlers running at once (`SocketIoConfig::max_concurrent_handlers`).
    max_running: usize,
}

#[derive(Default)]
struct State {
    /// Handlers waiting to start, in arrival order (allocated only while some wait).
    queue: VecDeque<BoxFuture>,
    /// A first poll on a caller's task, or a worker task, owns the socket's handlers: a new
    /// handler is queued, not run.
    busy: bool,
    /// The worker task, while it waits: woken when a handler is queued.
    worker: Option<Waker>,
    /// The driver waiting for room in the queue (backpressure).
    space: Option<Waker>,
    /// `finish` was called: later handlers are dropped.
    closing: bool,
    /// The last work of the socket, started once the queue is empty.
    fin: Option<BoxFuture>,
}

impl std::fmt::Debug for Work {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Work").finish_non_exhaustive()
    }
}

impl Work {
    /// At most `max_pending` queued handlers and `max_running` running at once (past that,
    /// the queue fills up).
    pub(crate) fn new(max_pending: usize, max_running: usize) -> Self {
        Work {
            state: Mutex::new(State::default()),
            max_pending: max_pending.max(1),
            max_running: max_running.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ready when the queue has room for one more handler (or the socket is closing);
    /// otherwise `cx` is woken when a handler leaves the queue.
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.lock();
        if s.queue.len() < self.max_pending || s.closing {
            return Poll::Ready(());
        }
        match &s.space {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => s.space = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// Starts a handler: polled once now when nothing of the socket runs or waits, else queued.
/// False when the queue is full (the caller closes the connection). Dropped once the socket
/// is closing.
pub(crate) fn run<T: HasWork>(owner: &Arc<T>, fut: BoxFuture) -> bool {
    let work = owner.work();
    {
        let mut s = work.lock();
        if s.closing {
            return true;
        }
        if s.busy {
            if s.queue.len() >= work.max_pending {
                return false;
            }
            s.queue.push_back(fut);
            if let Some(w) = s.worker.take() {
                w.wake();
            }
            return true;
        }
        s.busy = true;
    }
    // Nothing of this socket is queued or running: no order to keep, so it runs here first.
    let pending = first_poll(fut);
    let mut s = work.lock();
    if pending.is_none() && s.queue.is_empty() && s.fin.is_none() {
        s.busy = false;
        return true;
    }
    // Still pending, or others arrived meanwhile (they come after it): a worker takes over.
    drop(s);
    tokio::spawn(worker(owner.clone(), pending));
    true
}

/// Closes the queue, starts what it still holds (those packets arrived before the close: Node
/// dispatches them too), then runs `fut` on a worker task; the worker stops once all are
/// done. Later handlers are dropped.
pub(crate) fn finish<T: HasWork>(owner: &Arc<T>, fut: BoxFuture) {
    let work = owner.work();
    let mut s = work.lock();
    if s.closing {
        return;
    }
    s.closing = true;
    s.fin = Some(fut);
    if s.busy {
        if let Some(w) = s.worker.take() {
            w.wake();
        }
        return;
    }
    s.busy = true;
    drop(s);
    tokio::spawn(worker(owner.clone(), None));
}

/// Polls a handler once, on the caller's task, with a waker that does nothing: a handler
/// still pending goes to a worker, whose first poll registers the real one (a future must
/// cope with being polled again at any time). A panic ends that handler only.
fn first_poll(mut fut: BoxFuture) -> Option<BoxFuture> {
    let mut cx = Context::from_waker(Waker::noop());
    match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx))) {
        Ok(Poll::Ready(())) => None,
        Ok(Poll::Pending) => Some(fut),
        Err(_) => {
            tracing::error!("an event handler panicked");
            None
        }
    }
}

/// A handler whose panic ends only itself.
type Guarded = Pin<Box<dyn Future<Output = ()> + Send>>;

fn guarded(fut: BoxFuture) -> Guarded {
    Box::pin(AssertUnwindSafe(fut).catch_unwind().map(|r| {
        if r.is_err() {
            tracing::error!("an event handler panicked");
        }
    }))
}

/// The worker task: starts the queued handlers in order (at most `max_running` at once),
/// then `fin` once the queue is empty; ends when nothing runs or waits.
async fn worker<T: HasWork>(owner: Arc<T>, first: Option<BoxFuture>) {
    let mut running: FuturesUnordered<Guarded> = FuturesUnordered::new();
    if let Some(f) = first {
        running.push(guarded(f));
    }
    poll_fn(|cx| {
        let work = owner.work();
        for _ in 0..BUDGET {
            {
                let mut s = work.lock();
                let mut took = false;
                while running.len() < work.max_running {
                    let Some(f) = s.queue.pop_front() else { break };
                    running.push(guarded(f));
                    took = true;
                }
                if s.queue.is_empty()
                    && let Some(f) = s.fin.take()
                {
                    running.push(guarded(f));
                }
                if took && let Some(w) = s.space.take() {
                    w.wake();
                }
                if running.is_empty() {
                    // Idle: the worker ends, with the queue's memory.
                    s.busy = false;
                    s.worker = None;
                    s.queue = VecDeque::new();
                    return Poll::Ready(());
                }
                match &s.worker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => s.worker = Some(cx.waker().clone()),
                }
            }
            if running.poll_next_unpin(cx).is_pending() {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::oneshot;

    use super::*;

    struct Owner(Work);

    impl HasWork for Owner {
        fn work(&self) -> &Work {
            &self.0
        }
    }

    fn owner(max_pending: usize, max_running: usize) -> Arc<Owner> {
        Arc::new(Owner(Work::new(max_pending, max_running)))
    }

    fn log() -> Arc<Mutex<Vec<&'static str>>> {
        Arc::new(Mutex::new(Vec::new()))
    }

    fn push(log: &Arc<Mutex<Vec<&'static str>>>, s: &'static str) {
        log.lock().unwrap().push(s);
    }

    #[tokio::test]
    async fn a_ready_handler_runs_inline_and_leaves_nothing_behind() {
        let o = owner(4, 4);
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        assert!(run(
            &o,
            Box::pin(async move {
                d.fetch_add(1, Ordering::SeqCst);
            })
        ));
        // Ran during `run`, without a task.
        assert_eq!(done.load(Ordering::SeqCst), 1);
        let s = o.0.lock();
        assert!(!s.busy && s.queue.capacity() == 0 && s.worker.is_none());
        drop(s);
        // Only the test holds the owner: no worker task was spawned.
        assert_eq!(Arc::strong_count(&o), 1);
    }

    #[tokio::test]
    async fn nothing_is_left_behind_once_idle() {
        let o = owner(4, 4);
        let (tx, rx) = oneshot::channel();
        assert!(run(
            &o,
            Box::pin(async move {
                let _ = tx.send(());
            })
        ));
        rx.await.unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while Arc::strong_count(&o) > 1 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the worker ended");
        let s = o.0.lock();
        assert!(!s.busy && s.queue.capacity() == 0 && s.worker.is_none());
    }

    #[tokio::test]
    async fn order_is_kept_behind_a_pending_handler_and_the_worker_ends() {
        let o = owner(8, 8);
        let log = log();
        let (tx, rx) = oneshot::channel::<()>();
        let l = log.clone();
        run(
            &o,
            Box::pin(async move {
                push(&l, "a started");
                let _ = rx.await;
                push(&l, "a done");
            }),
        );
        for name in ["b", "c"] {
            let l = log.clone();
            run(&o, Box::pin(async move { push(&l, name) }));
        }
        // `a` started inline, and is pending: `b` and `c` wait for the worker.
        assert_eq!(*log.lock().unwrap(), ["a started"]);
        let (fin_tx, fin_rx) = oneshot::channel();
        let l = log.clone();
        finish(
            &o,
            Box::pin(async move {
                push(&l, "fin");
                let _ = fin_tx.send(());
            }),
        );
        // Dropped: the socket is closing.
        let l = log.clone();
        run(&o, Box::pin(async move { push(&l, "late") }));
        let _ = tx.send(());
        tokio::time::timeout(std::time::Duration::from_secs(5), fin_rx)
            .await
            .expect("fin ran")
            .unwrap();
        let seen = log.lock().unwrap().clone();
        let at = |e| seen.iter().position(|s| *s == e).expect("ran");
        assert_eq!(seen[0], "a started");
        assert!(at("b") < at("c"));
        assert!(seen.contains(&"fin") && seen.contains(&"a done"));
        assert!(!seen.contains(&"late"));
        // The worker ends once idle, releasing its reference.
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while Arc::strong_count(&o) > 1 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the worker ended");
    }

    #[tokio::test]
    async fn the_queue_is_bounded_and_backpressure_is_released() {
        let o = owner(2, 1);
        let (tx, rx) = oneshot::channel::<()>();
        run(
            &o,
            Box::pin(async move {
                let _ = rx.await;
            }),
        );
        assert!(run(&o, Box::pin(async {})));
        assert!(run(&o, Box::pin(async {})));
        // Full: the third waiting one is refused, and the driver would wait.
        assert!(!run(&o, Box::pin(async {})));
        let pending = poll_fn(|cx| Poll::Ready(o.0.poll_ready(cx))).await;
        assert!(pending.is_pending());
        let _ = tx.send(());
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            poll_fn(|cx| o.0.poll_ready(cx)),
        )
        .await
        .expect("room again");
    }

    #[tokio::test]
    async fn a_panicking_handler_ends_only_itself() {
        let o = owner(4, 4);
        let done = Arc::new(AtomicUsize::new(0));
        run(&o, Box::pin(async { panic!("inline") }));
        let (tx, rx) = oneshot::channel::<()>();
        run(
            &o,
            Box::pin(async move {
                let _ = rx.await;
                panic!("on the worker");
            }),
        );
        let d = done.clone();
        let (ok_tx, ok_rx) = oneshot::channel();
        run(
            &o,
            Box::pin(async move {
                d.fetch_add(1, Ordering::SeqCst);
                let _ = ok_tx.send(());
            }),
        );
        let _ = tx.send(());
        tokio::time::timeout(std::time::Duration::from_secs(5), ok_rx)
            .await
            .expect("the next handler ran")
            .unwrap();
        assert_eq!(done.load(Ordering::SeqCst), 1);
    }
}
