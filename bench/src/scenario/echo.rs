//! `echo`: C WebSocket clients, each with one ack round trip in flight
//! (`42N["echo",P]` → `43N[P]`). Server CPU per round trip and latency percentiles.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::{Map, Value};

use super::{Phase, connect_all, padding};
use crate::Cli;
use crate::procfs::{Sample, round};
use crate::sio::{WsConn, echo_packet, is_ack};
use crate::stats::percentiles;
use crate::wire;

/// Runs the scenario.
pub async fn run(cli: &Cli) -> io::Result<Map<String, Value>> {
    let addr = cli.addr;
    let conns = connect_all(cli.clients, cli.concurrency, |_| WsConn::connect(addr)).await?;
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
    let w = crate::procfs::Window::between(&a, &b);
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

/// Microseconds of `cpu_s` per operation (null without operations).
pub fn per_op(cpu_s: f64, ops: u64) -> Value {
    if ops == 0 {
        Value::Null
    } else {
        round(cpu_s * 1e6 / ops as f64, 3).into()
    }
}

/// One client's loop; the latencies (µs) of the round trips inside the window.
async fn client(mut conn: WsConn, phase: Arc<Phase>, payload: Arc<String>) -> Vec<u32> {
    let mut latencies = Vec::new();
    let mut frame = Vec::with_capacity(payload.len() + 32);
    let mut id = 0u64;
    while !phase.stopped() {
        id += 1;
        frame.clear();
        wire::push_text(&mut frame, &echo_packet(id, &payload));
        let start = Instant::now();
        let counted = phase.measuring();
        if tokio::io::AsyncWriteExt::write_all(&mut conn.w, &frame)
            .await
            .is_err()
        {
            phase.errors.fetch_add(1, Ordering::Relaxed);
            break;
        }
        let answer = loop {
            match conn.next_text().await {
                Ok(msg) if is_ack(&msg, id) => break Ok(()),
                Ok(_) => continue,
                Err(e) => break Err(e),
            }
        };
        if answer.is_err() {
            phase.errors.fetch_add(1, Ordering::Relaxed);
            break;
        }
        if counted && phase.measuring() {
            latencies.push(start.elapsed().as_micros().min(u32::MAX as u128) as u32);
            phase.ops.fetch_add(1, Ordering::Relaxed);
        }
    }
    latencies
}
