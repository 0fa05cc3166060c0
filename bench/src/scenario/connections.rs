//! `connections`: ramp up C idle connections (WebSocket or long-polling), hold them. Server
//! memory per connection (`VmRSS`, `RssAnon` and `Private_Dirty` growth over the ramp),
//! handshake CPU (server CPU during the ramp per connection), heartbeat CPU while idle
//! (server CPU during the hold per ping, and as a share of one core).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::echo::per_op;
use super::{Phase, connect_all};
use crate::procfs::{Mem, Sample, Window, round};
use crate::sio::{PollConn, WsConn};
use crate::{Cli, Transport};

/// Connections opened (and kept) before the baseline is taken, so that pools and lazily
/// built state exist before the first measured connection.
const WARM: usize = 50;
/// Pause before memory is read, for deferred frees to land.
const SETTLE: Duration = Duration::from_millis(500);

/// Runs the scenario.
pub async fn run(cli: &Cli) -> io::Result<Map<String, Value>> {
    let pings = Arc::new(AtomicU64::new(0));
    let phase = Arc::new(Phase::default());
    let mut tasks = Vec::new();
    let pid = cli.pid.to_string();
    // Warm-up connections, kept open.
    tasks.extend(open(cli, WARM, &pings).await?);
    tokio::time::sleep(SETTLE).await;
    let mem_before = Mem::of(&pid);
    let a = Sample::take(cli.pid);
    let ramp_start = Instant::now();
    tasks.extend(open(cli, cli.clients, &pings).await?);
    let ramp = ramp_start.elapsed();
    let b = Sample::take(cli.pid);
    tokio::time::sleep(SETTLE).await;
    let mem_after = Mem::of(&pid);
    let pings_before = pings.load(Ordering::Relaxed);
    let c = Sample::take(cli.pid);
    tokio::time::sleep(Duration::from_secs_f64(cli.hold.max(0.0))).await;
    let d = Sample::take(cli.pid);
    let hold_pings = pings.load(Ordering::Relaxed) - pings_before;
    // Every connection must still be there: a dead one ended its task.
    let alive = tasks.iter().filter(|t| !t.is_finished()).count();
    phase.stop.store(true, Ordering::Relaxed);
    for t in &tasks {
        t.abort();
    }
    let n = cli.clients.max(1) as f64;
    let ramp_w = Window::between(&a, &b);
    let hold_w = Window::between(&c, &d);
    let mut out = hold_w.json();
    out.insert(
        "transport".into(),
        match cli.transport {
            Transport::Websocket => "websocket",
            Transport::Polling => "polling",
        }
        .into(),
    );
    out.insert("alive".into(), (alive.saturating_sub(WARM)).into());
    out.insert(
        "rss_per_conn_b".into(),
        round(mem_after.rss.saturating_sub(mem_before.rss) as f64 / n, 0).into(),
    );
    out.insert(
        "anon_per_conn_b".into(),
        round(mem_after.anon.saturating_sub(mem_before.anon) as f64 / n, 0).into(),
    );
    out.insert(
        "private_dirty_per_conn_b".into(),
        round(
            mem_after
                .private_dirty
                .saturating_sub(mem_before.private_dirty) as f64
                / n,
            0,
        )
        .into(),
    );
    out.insert("rss_total_b".into(), mem_after.rss.into());
    out.insert("ramp_s".into(), round(ramp.as_secs_f64(), 3).into());
    out.insert(
        "handshakes_per_s".into(),
        round(n / ramp.as_secs_f64().max(1e-9), 1).into(),
    );
    out.insert(
        "handshake_server_us".into(),
        round(ramp_w.server.as_secs_f64() * 1e6 / n, 3).into(),
    );
    out.insert(
        "handshake_generator_cpu_util".into(),
        round(
            ramp_w.generator.as_secs_f64() / ramp_w.wall.as_secs_f64().max(1e-9),
            3,
        )
        .into(),
    );
    out.insert("hold_pings".into(), hold_pings.into());
    out.insert(
        "heartbeat_server_us_per_ping".into(),
        per_op(hold_w.server.as_secs_f64(), hold_pings),
    );
    Ok(out)
}

/// Opens `n` idle connections; each task answers pings until aborted.
async fn open(
    cli: &Cli,
    n: usize,
    pings: &Arc<AtomicU64>,
) -> io::Result<Vec<tokio::task::JoinHandle<()>>> {
    let addr = cli.addr;
    let tasks = match cli.transport {
        Transport::Websocket => connect_all(n, cli.concurrency, |_| WsConn::connect(addr))
            .await?
            .into_iter()
            .map(|c| tokio::spawn(idle_ws(c, pings.clone())))
            .collect(),
        Transport::Polling => connect_all(n, cli.concurrency, |_| PollConn::connect(addr))
            .await?
            .into_iter()
            .map(|c| tokio::spawn(idle_poll(c, pings.clone())))
            .collect(),
    };
    Ok(tasks)
}

async fn idle_ws(mut conn: WsConn, pings: Arc<AtomicU64>) {
    conn.buf = bytes::BytesMut::new();
    loop {
        // `next_text` answers pings itself; count them from the frames it returns around.
        match crate::wire::read_frame(&mut conn.r, &mut conn.buf).await {
            Ok(f) if f.opcode == 1 && &f.payload[..] == b"2" => {
                pings.fetch_add(1, Ordering::Relaxed);
                if crate::wire::send_text(&mut conn.w, b"3").await.is_err() {
                    return;
                }
            }
            Ok(f) if f.opcode == 8 => return,
            Ok(_) => {}
            Err(_) => return,
        }
        // Idle again: give the buffer back.
        if conn.buf.is_empty() {
            conn.buf = bytes::BytesMut::new();
        }
    }
}

async fn idle_poll(mut conn: PollConn, pings: Arc<AtomicU64>) {
    loop {
        let url = conn.url.clone();
        let Ok((200, body)) = conn.get.get(&url).await else {
            return;
        };
        for p in body[..].split(|&b| b == 0x1e) {
            if p == b"2" {
                pings.fetch_add(1, Ordering::Relaxed);
                if conn.send(b"3").await.is_err() {
                    return;
                }
            }
        }
    }
}
