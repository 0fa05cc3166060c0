//! Closing a server: what `io.close()` starts and what the returned [`Closing`] waits for.
//!
//! The server counts what must end before it is closed (a [`Drain`]): each Engine.IO
//! connection (until its sockets are closed), each socket (until its disconnect handlers have
//! run), and each listener served by [`crate::SocketIo::serve`] (until it is closed and its
//! HTTP connections are done).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::sync::{Notify, watch};

/// A count of things still running, and a way to wait until there are none.
#[derive(Debug, Default)]
pub(crate) struct Drain {
    count: AtomicUsize,
    empty: Notify,
}

impl Drain {
    /// Counts one more thing until the guard is dropped.
    pub(crate) fn guard(self: &Arc<Self>) -> DrainGuard {
        self.count.fetch_add(1, Ordering::AcqRel);
        DrainGuard(self.clone())
    }

    /// How many things are counted now.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Resolves once nothing is counted.
    pub(crate) async fn wait_empty(&self) {
        loop {
            let notified = self.empty.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// One thing counted by a [`Drain`], until dropped.
#[derive(Debug)]
pub(crate) struct DrainGuard(Arc<Drain>);

impl Drop for DrainGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.empty.notify_waiters();
        }
    }
}

/// The close state of a server.
#[derive(Debug)]
pub(crate) struct Lifecycle {
    /// Set by `close()`: listeners served by `SocketIo::serve` stop accepting.
    pub(crate) closing: watch::Sender<bool>,
    /// Set once every connection and socket is gone and the adapters are closed.
    pub(crate) drained: watch::Sender<bool>,
    /// Listeners served by `SocketIo::serve`.
    pub(crate) serving: Arc<Drain>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            closing: watch::channel(false).0,
            drained: watch::channel(false).0,
            serving: Arc::default(),
        }
    }
}

impl Lifecycle {
    /// Marks the server closing; true the first time.
    pub(crate) fn start_closing(&self) -> bool {
        !self.closing.send_replace(true)
    }

    /// Resolves once `close()` has been called.
    pub(crate) fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.closing.subscribe();
        async move {
            let _ = rx.wait_for(|closing| *closing).await;
        }
    }
}

/// What [`crate::SocketIo::close`] returns. The close has already started when you get it:
/// dropping it does not stop it. Await it to wait until the server is drained: every client
/// disconnected (`server shutting down`) and every disconnect handler finished, the adapters
/// closed, and the listeners served by [`crate::SocketIo::serve`] closed with their HTTP
/// connections done.
///
/// A disconnect handler (or connection middleware) that never finishes keeps it pending:
/// put a timeout around it if handlers may hang.
pub struct Closing {
    fut: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Closing {
    pub(crate) fn new(fut: impl Future<Output = ()> + Send + 'static) -> Self {
        Closing { fut: Box::pin(fut) }
    }
}

impl Future for Closing {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.fut.as_mut().poll(cx)
    }
}

impl std::fmt::Debug for Closing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Closing").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    #[tokio::test]
    async fn drain_waits_for_every_guard() {
        let drain = Arc::new(Drain::default());
        drain.wait_empty().await;
        let a = drain.guard();
        let b = drain.guard();
        let mut wait = Box::pin(drain.wait_empty());
        assert!((&mut wait).now_or_never().is_none());
        drop(a);
        assert!((&mut wait).now_or_never().is_none());
        drop(b);
        assert!((&mut wait).now_or_never().is_some());
    }
}
