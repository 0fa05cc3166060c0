//! The scenarios, one module each, and what they share.

mod broadcast;
mod cluster;
mod connections;
mod echo;
mod poll_echo;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::{Map, Value};
use tokio::sync::Semaphore;

use crate::{Cli, Scenario};

/// Runs the scenario the command line names; the fields of its JSON line.
pub async fn run(cli: &Cli) -> io::Result<Map<String, Value>> {
    let mut out = match cli.scenario {
        Scenario::Echo => echo::run(cli).await?,
        Scenario::Broadcast => broadcast::run(cli).await?,
        Scenario::Connections => connections::run(cli).await?,
        Scenario::PollEcho => poll_echo::run(cli).await?,
        Scenario::Cluster => cluster::run(cli).await?,
    };
    out.insert("clients".into(), cli.clients.into());
    Ok(out)
}

/// Flags every task of a scenario watches.
#[derive(Default)]
pub struct Phase {
    /// Inside the measurement window: count and record.
    pub measuring: AtomicBool,
    /// Finish the current operation and return.
    pub stop: AtomicBool,
    /// Operations completed inside the window.
    pub ops: AtomicU64,
    /// Operations that failed (a wrong answer, a lost connection).
    pub errors: AtomicU64,
}

impl Phase {
    /// Whether the window is open.
    pub fn measuring(&self) -> bool {
        self.measuring.load(Ordering::Relaxed)
    }

    /// Whether to stop.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Opens `n` connections with `connect`, at most `concurrency` handshakes at a time, in order.
pub async fn connect_all<T, F, Fut>(n: usize, concurrency: usize, connect: F) -> io::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = io::Result<T>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| io::Error::other("semaphore closed"))?;
        let fut = connect(i);
        tasks.push(tokio::spawn(async move {
            let r = fut.await;
            drop(permit);
            r
        }));
    }
    let mut conns = Vec::with_capacity(n);
    for (i, t) in tasks.into_iter().enumerate() {
        let conn = t
            .await
            .map_err(io::Error::other)?
            .map_err(|e| io::Error::new(e.kind(), format!("connection {i}: {e}")))?;
        conns.push(conn);
    }
    Ok(conns)
}

/// `n` bytes of `x`.
pub fn padding(n: usize) -> String {
    "x".repeat(n)
}
