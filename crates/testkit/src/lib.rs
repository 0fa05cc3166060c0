//! Test helpers for Ferrio (not published): a raw HTTP client, a raw WebSocket client, a
//! runner for the Node.js scripts of `interop/`, a private `redis-server`, a network namespace
//! for black-holing connections, and a deadline helper.
//!
//! Everything binds or connects to loopback only, and every child process is killed when its
//! handle is dropped, so a failing test leaves nothing behind.
#![forbid(unsafe_code)]

pub mod http;
pub mod netns;
pub mod node;
pub mod redis;
pub mod ws;

use std::future::Future;
use std::time::Duration;

/// Awaits `fut`, failing the test with `what` if it takes longer than `secs` seconds.
pub async fn within<T>(secs: u64, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {secs}s waiting for {what}"),
    }
}
