//! Bounded event streams that report what they dropped: the plumbing of
//! [`EventStream`](crate::EventStream) and [`ManagerEventStream`](crate::ManagerEventStream).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::sync::mpsc;

/// The sending side, kept by the listeners.
pub(crate) struct Sink<T> {
    tx: mpsc::Sender<T>,
    lagged: Arc<AtomicU64>,
}

/// The receiving side, inside a public stream type.
pub(crate) struct Receiver<T> {
    rx: mpsc::Receiver<T>,
    lagged: Arc<AtomicU64>,
}

/// A stream of `capacity` items.
pub(crate) fn channel<T>(capacity: usize) -> (Sink<T>, Receiver<T>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let lagged = Arc::new(AtomicU64::new(0));
    (
        Sink {
            tx,
            lagged: lagged.clone(),
        },
        Receiver { rx, lagged },
    )
}

/// Sends `item` to every sink without waiting (a full one counts a drop); whether a sink
/// is closed (its stream was dropped) and should be removed.
pub(crate) fn send_all<T: Clone>(sinks: &[Sink<T>], item: &T) -> bool {
    let mut closed = false;
    for s in sinks {
        match s.tx.try_send(item.clone()) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                s.lagged.fetch_add(1, Ordering::AcqRel);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => closed = true,
        }
    }
    closed
}

/// Drops the sinks whose stream is gone.
pub(crate) fn retain_open<T>(sinks: &mut Vec<Sink<T>>) {
    sinks.retain(|s| !s.tx.is_closed());
}

impl<T> Receiver<T> {
    /// The next item: those queued before an overflow first, then `lagged(n)` for the `n`
    /// dropped ones.
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        lagged: impl FnOnce(u64) -> T,
    ) -> Poll<Option<T>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(e)) => Poll::Ready(Some(e)),
            other => match self.lagged.swap(0, Ordering::AcqRel) {
                0 => other,
                n => Poll::Ready(Some(lagged(n))),
            },
        }
    }
}
