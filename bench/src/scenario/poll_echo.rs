//! `poll-echo`: C long-polling clients, each with one ack round trip in flight: the GET
//! waits while the POST carries `42N["echo",P]`, the GET brings `43N[P]` back.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::{Map, Value};

use super::echo::per_op;
use super::{Phase, connect_all, padding};
use crate::Cli;
use crate::procfs::{Sample, Window, round};
use crate::sio::{PollConn, echo_packet, is_ack};
use crate::stats::percentiles;

/// Runs the scenario.
pub async fn run(cli: &Cli) -> io::Result<Map<String, Value>> {
    let addr = cli.addr;
    let conns = connect_all(cli.clients, cli.concurrency, |_| PollConn::connect(addr)).await?;
    let phase = Arc::new(Phase::default());
    let payload = Arc::new(padding(cli.payload));
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|conn| tokio::spawn(client(conn, phase.clone(), payload.clone())))
        .collect();
    tokio::time::sleep(cli.warmup()).await;
    let a = Sample::take(cli.pid);
    phase.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(cli.duration()).await;
    phase.measuring.store(false, Ordering::Relaxed);
    let b = Sample::take(cli.pid);
    phase.stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.map_err(io::Error::other)?);
    }
    let w = Window::between(&a, &b);
    let ops = phase.ops.load(Ordering::Relaxed);
    let mut out = w.json();
    out.insert("payload".into(), cli.payload.into());
    out.insert("ops".into(), ops.into());
    out.insert(
        "ops_per_s".into(),
        round(ops as f64 / w.wall.as_secs_f64(), 1).into(),
    );
    out.insert(
        "server_us_per_op".into(),
        per_op(w.server.as_secs_f64(), ops),
    );
    out.insert("errors".into(), phase.errors.load(Ordering::Relaxed).into());
    percentiles(&mut out, "latency", &mut latencies);
    Ok(out)
}

async fn client(mut conn: PollConn, phase: Arc<Phase>, payload: Arc<String>) -> Vec<u32> {
    let mut latencies = Vec::new();
    let mut id = 0u64;
    while !phase.stopped() {
        id += 1;
        let packet = echo_packet(id, &payload);
        let start = Instant::now();
        let counted = phase.measuring();
        match round_trip(&mut conn, id, &packet).await {
            Ok(()) => {
                if counted && phase.measuring() {
                    latencies.push(start.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    phase.ops.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(_) => {
                phase.errors.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
    }
    latencies
}

/// The GET and the POST at once, then GETs until the ack is there.
async fn round_trip(conn: &mut PollConn, id: u64, packet: &[u8]) -> io::Result<()> {
    let url = conn.url.clone();
    let (got, posted) = tokio::join!(conn.get.get(&url), conn.post.post(&url, packet));
    let (status, body) = posted?;
    if status != 200 {
        return Err(crate::wire::bad(format!("POST {status} {body:?}")));
    }
    let (status, body) = got?;
    if status != 200 {
        return Err(crate::wire::bad(format!("GET {status} {body:?}")));
    }
    let mut found = false;
    for p in body[..].split(|&b| b == 0x1e) {
        if p == b"2" {
            conn.send(b"3").await?;
        } else if is_ack(p, id) {
            found = true;
        }
    }
    while !found {
        found = conn.poll().await?.iter().any(|p| is_ack(p, id));
    }
    Ok(())
}
