//! `broadcast`: C WebSocket receivers; the first one also sends `42["broadcast","<seq> <t> pad"]`
//! with at most `window` broadcasts in flight (sent, not yet received by all). The server
//! sends each to every socket of `/`: C deliveries per broadcast. Deliveries per second,
//! delivery latency (send to receipt), server CPU per delivery.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use serde_json::{Map, Value};
use tokio::io::AsyncWrite;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::Notify;

use super::echo::per_op;
use super::{Phase, connect_all};
use crate::Cli;
use crate::procfs::{Sample, Window, round};
use crate::sio::{WsConn, next_text};
use crate::stats::percentiles;
use crate::wire;

/// Slots of the completion ring (more than any window).
const RING: usize = 1024;
/// How long the sender waits for a broadcast to reach everyone before giving up.
const STALL: Duration = Duration::from_secs(10);

/// What the receivers and the sender share.
struct Shared {
    phase: Phase,
    start: Instant,
    receivers: u32,
    /// Receipts per broadcast, by `seq % RING`.
    ring: Vec<AtomicU32>,
    /// Broadcasts received by everyone.
    completed: AtomicU64,
    done: Notify,
    /// Deliveries inside the window.
    deliveries: AtomicU64,
    /// Tells the receivers to return.
    stop: tokio::sync::watch::Sender<bool>,
    /// The sender's connection got a ping; the sender answers it.
    pong_due: Arc<AtomicBool>,
}

/// Runs the scenario: on one server, or (`cluster`) on `--addr` and every `--peer`, the
/// connections spread round-robin, the sender on the first server.
pub async fn run(cli: &Cli) -> io::Result<Map<String, Value>> {
    let mut addrs = vec![cli.addr];
    addrs.extend(cli.peers.iter().copied());
    let mut pids = vec![cli.pid];
    pids.extend(cli.peer_pids.iter().copied());
    let window = cli.window.clamp(1, RING / 2) as u64;
    let mut conns = connect_all(cli.clients.max(1), cli.concurrency, |i| {
        WsConn::connect(addrs[i % addrs.len()])
    })
    .await?;
    let shared = Arc::new(Shared {
        phase: Phase::default(),
        start: Instant::now(),
        receivers: conns.len() as u32,
        ring: (0..RING).map(|_| AtomicU32::new(0)).collect(),
        completed: AtomicU64::new(0),
        done: Notify::new(),
        deliveries: AtomicU64::new(0),
        stop: tokio::sync::watch::channel(false).0,
        pong_due: Arc::new(AtomicBool::new(false)),
    });
    let first = conns.remove(0);
    let sender_w = first.w;
    let mut tasks = vec![tokio::spawn(receive(
        first.r,
        first.buf,
        PongFlag(shared.pong_due.clone()),
        shared.clone(),
    ))];
    for c in conns {
        tasks.push(tokio::spawn(receive(c.r, c.buf, c.w, shared.clone())));
    }
    let sender = tokio::spawn(send(sender_w, shared.clone(), window, cli.payload));
    tokio::time::sleep(cli.warmup()).await;
    let a = Sample::take_all(&pids);
    let sent_a = shared.completed.load(Ordering::Relaxed);
    shared.phase.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(cli.duration()).await;
    shared.phase.measuring.store(false, Ordering::Relaxed);
    let b = Sample::take_all(&pids);
    let sent_b = shared.completed.load(Ordering::Relaxed);
    shared.phase.stop.store(true, Ordering::Relaxed);
    let stalled = sender.await.map_err(io::Error::other)?;
    shared.stop.send_replace(true);
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.map_err(io::Error::other)?);
    }
    let w = Window::between(&a, &b);
    let deliveries = shared.deliveries.load(Ordering::Relaxed);
    let mut out = w.json();
    out.insert("payload".into(), cli.payload.into());
    out.insert("servers".into(), addrs.len().into());
    out.insert("window".into(), window.into());
    out.insert("broadcasts".into(), (sent_b - sent_a).into());
    out.insert("deliveries".into(), deliveries.into());
    out.insert(
        "deliveries_per_s".into(),
        round(deliveries as f64 / w.wall.as_secs_f64(), 1).into(),
    );
    out.insert(
        "server_us_per_delivery".into(),
        per_op(w.server.as_secs_f64(), deliveries),
    );
    out.insert(
        "errors".into(),
        (shared.phase.errors.load(Ordering::Relaxed) + u64::from(stalled)).into(),
    );
    percentiles(&mut out, "latency", &mut latencies);
    Ok(out)
}

/// The sender: keeps `window` broadcasts in flight until stopped. True if it stalled.
async fn send(
    mut w: tokio::net::tcp::OwnedWriteHalf,
    shared: Arc<Shared>,
    window: u64,
    payload: usize,
) -> bool {
    let mut seq = 0u64;
    let mut frame = Vec::with_capacity(payload + 64);
    while !shared.phase.stopped() {
        while seq >= shared.completed.load(Ordering::Acquire) + window {
            let notified = shared.done.notified();
            if seq < shared.completed.load(Ordering::Acquire) + window {
                break;
            }
            if tokio::time::timeout(STALL, notified).await.is_err() {
                return true;
            }
            if shared.phase.stopped() {
                return false;
            }
        }
        if shared.pong_due.swap(false, Ordering::Relaxed)
            && wire::send_text(&mut w, b"3").await.is_err()
        {
            return true;
        }
        let t = shared.start.elapsed().as_micros();
        let head = format!("42[\"broadcast\",\"{seq} {t} ");
        let mut packet = head.into_bytes();
        // The string argument is `payload` bytes long (at least its numbers).
        let prefix = "42[\"broadcast\",\"".len();
        let len = prefix + payload.max(packet.len() - prefix);
        packet.resize(len, b'x');
        packet.extend_from_slice(b"\"]");
        frame.clear();
        wire::push_text(&mut frame, &packet);
        if tokio::io::AsyncWriteExt::write_all(&mut w, &frame)
            .await
            .is_err()
        {
            return true;
        }
        seq += 1;
    }
    false
}

/// A receiver: counts receipts and records latencies (µs) inside the window.
async fn receive<W: AsyncWrite + Unpin>(
    mut r: OwnedReadHalf,
    mut buf: BytesMut,
    mut w: W,
    shared: Arc<Shared>,
) -> Vec<u32> {
    let mut latencies = Vec::new();
    let mut stop = shared.stop.subscribe();
    loop {
        // Reads are cancel-safe (what was read stays in `buf`).
        let read = tokio::select! {
            r = next_text(&mut r, &mut buf, &mut w) => r,
            _ = stop.wait_for(|s| *s) => return latencies,
        };
        let Ok(msg) = read else {
            if !shared.phase.stopped() {
                shared.phase.errors.fetch_add(1, Ordering::Relaxed);
            }
            return latencies;
        };
        let Some((seq, t)) = parse(&msg) else {
            continue;
        };
        if shared.phase.measuring() {
            let now = shared.start.elapsed().as_micros() as u64;
            latencies.push(now.saturating_sub(t).min(u32::MAX as u64) as u32);
            shared.deliveries.fetch_add(1, Ordering::Relaxed);
        }
        let slot = &shared.ring[(seq % RING as u64) as usize];
        if slot.fetch_add(1, Ordering::AcqRel) + 1 == shared.receivers {
            slot.store(0, Ordering::Relaxed);
            shared.completed.fetch_add(1, Ordering::AcqRel);
            shared.done.notify_waiters();
        }
    }
}

/// `42["broadcast","<seq> <t> ..."]`: seq and t.
fn parse(msg: &[u8]) -> Option<(u64, u64)> {
    let rest = msg.strip_prefix(b"42[\"broadcast\",\"")?;
    let mut it = rest.split(|&b| b == b' ');
    let num = |s: &[u8]| std::str::from_utf8(s).ok()?.parse::<u64>().ok();
    Some((num(it.next()?)?, num(it.next()?)?))
}

/// A writer for the sender's read side: a ping sets the flag, the sender sends the pong.
struct PongFlag(Arc<AtomicBool>);

impl AsyncWrite for PongFlag {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.store(true, Ordering::Relaxed);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_its_own_packets() {
        assert_eq!(
            parse(b"42[\"broadcast\",\"12 3456 xxx\"]"),
            Some((12, 3456))
        );
        assert_eq!(parse(b"42[\"other\",\"12 3456 xxx\"]"), None);
    }
}
