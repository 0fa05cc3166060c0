//! Slow consumers (issue 10 section 2): clients in one room get a steady 1 KiB broadcast; half
//! way through, one client stops reading and another reads at a tenth of the rate (answering
//! the pings it reads). Each is cut off with its own reason (`slow consumer`) long before the
//! run ends, with its backlog within the configured queue bounds; the server's memory stays
//! within the baseline plus those bounds; every other client gets every broadcast once, in
//! order, with a p99 latency no worse than twice the first half's.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ferrio::{DisconnectReason, SocketIo, SocketIoConfig, SocketRef};
use ferrio_testkit::within;
use ferrio_testkit::ws::{self, Read, Ws};
use futures_util::future::join_all;
use tokio::net::TcpSocket;

use crate::harness::{self, pick};

/// Size of the broadcast payload.
const PAYLOAD: usize = 1024;
/// Queue bounds of the run (small, so that a stalled client reaches them in a second).
const MAX_PACKETS: usize = 16;
const MAX_BYTES: usize = 32 * 1024;
const WS_WRITE_BUFFER: usize = 16 * 1024;
/// Kernel buffers asked for: the server's send buffer, the slow clients' receive buffer
/// (Linux doubles both).
const KERNEL_SEND_BUFFER: u32 = 16 * 1024;
const KERNEL_RECV_BUFFER: u32 = 4 * 1024;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_us() -> u64 {
    epoch().elapsed().as_micros() as u64
}

/// `42["tick","<seq> <sent µs> <padding>"]` → (seq, sent µs).
fn parse_tick(frame: &str) -> Option<(u64, u64)> {
    let body = frame.strip_prefix("42[\"tick\",\"")?;
    let mut parts = body.splitn(3, ' ');
    let seq = parts.next()?.parse().ok()?;
    let sent = parts.next()?.parse().ok()?;
    Some((seq, sent))
}

/// How a client reads.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Reader {
    /// Reads everything.
    Normal,
    /// Stops reading once it has seen the broadcast `from`.
    Stops { from: u64 },
    /// From the broadcast `from` on, waits `pause` before each read.
    Slow { from: u64, pause: Duration },
}

/// What one client saw.
#[derive(Debug, Default)]
struct Seen {
    /// Broadcasts received.
    count: u64,
    /// Broadcasts whose sequence number was not the expected next one.
    out_of_order: u64,
    /// Latencies (µs) of the first half (after a warm-up) and of the second half.
    first_half: Vec<u64>,
    second_half: Vec<u64>,
    /// The server closed the connection.
    cut: bool,
}

async fn open(addr: SocketAddr, small_buffer: bool) -> (Ws, String) {
    let socket = TcpSocket::new_v4().expect("socket");
    if small_buffer {
        // A slow reader's kernel buffer holds little, so the server's queue is what fills.
        socket
            .set_recv_buffer_size(KERNEL_RECV_BUFFER)
            .expect("SO_RCVBUF");
    }
    let stream = socket.connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let mut ws = ws::connect_over(stream, addr, "/socket.io/?EIO=4&transport=websocket")
        .await
        .expect("websocket handshake");
    match ws::read(&mut ws).await {
        Read::Text(open) if open.starts_with("0{") => {}
        other => panic!("expected the open packet, got {other:?}"),
    }
    ws::send_text(&mut ws, "40").await;
    let sid = match ws::read_text_answering_pings(&mut ws).await {
        Read::Text(reply) => {
            let json: serde_json::Value =
                serde_json::from_str(reply.strip_prefix("40").expect("CONNECT reply"))
                    .expect("CONNECT payload");
            json["sid"].as_str().expect("sid").to_owned()
        }
        other => panic!("expected the CONNECT reply, got {other:?}"),
    };
    (ws, sid)
}

/// Reads broadcasts until `total` came or the server cut the connection. A slow reader
/// reads at full speed again once `done` (every broadcast sent), to see how it ended.
async fn read_ticks(
    mut ws: Ws,
    reader: Reader,
    ticks: (u64, u64, u64),
    mut done: tokio::sync::watch::Receiver<bool>,
) -> (Seen, Ws) {
    let (total, warmup, half) = ticks;
    let mut seen = Seen::default();
    let mut next = 0;
    loop {
        if !*done.borrow() {
            match reader {
                // Stalled: no read until every broadcast was sent.
                Reader::Stops { from } if next > from => {
                    let _ = done.wait_for(|d| *d).await;
                }
                Reader::Slow { from, pause } if next > from => tokio::time::sleep(pause).await,
                _ => {}
            }
        }
        let text = match ws::read(&mut ws).await {
            Read::Text(t) => t,
            Read::Close(_) | Read::Ended => {
                seen.cut = true;
                return (seen, ws);
            }
            Read::Binary(_) => panic!("unexpected binary frame"),
        };
        if text == "2" {
            ws::send_text(&mut ws, "3").await;
            continue;
        }
        let Some((seq, sent)) = parse_tick(&text) else {
            panic!("unexpected frame {text:.60}");
        };
        let latency = now_us().saturating_sub(sent);
        if seq != next {
            seen.out_of_order += 1;
        }
        next = seq + 1;
        seen.count += 1;
        if seq >= half {
            seen.second_half.push(latency);
        } else if seq >= warmup {
            seen.first_half.push(latency);
        }
        if seen.count == total {
            // Kept open until the checks are done: only the slow clients may disconnect.
            return (seen, ws);
        }
    }
}

/// Disconnect reasons by socket id, with the broadcasts sent at that moment.
type Reasons = Arc<Mutex<HashMap<String, (DisconnectReason, u64)>>>;

/// The server on a listener whose accepted sockets get a 16 KiB send buffer (Linux copies
/// SO_SNDBUF from the listener): the kernel then holds little of a stalled client's data and
/// the server's own queue is what fills.
fn server(
    reasons: Reasons,
    sent: Arc<AtomicU64>,
) -> (
    SocketIo,
    SocketAddr,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let mut config = SocketIoConfig::default();
    config.engine.session.max_buffered_packets = MAX_PACKETS;
    config.engine.session.max_buffered_bytes = MAX_BYTES;
    config.engine.ws_write_buffer_size = WS_WRITE_BUFFER;
    let io = SocketIo::builder()
        .config(config)
        // Pings every 500 ms; a long timeout, so that only the queue bound can cut a client
        // that answers its pings late.
        .ping_interval(Duration::from_millis(500))
        .ping_timeout(Duration::from_secs(20))
        .build();
    io.ns("/", async move |socket: SocketRef| {
        socket.join("room");
        let reasons = reasons.clone();
        let sent = sent.clone();
        socket.on_disconnect(async move |socket: SocketRef, reason: DisconnectReason| {
            reasons.lock().unwrap().insert(
                socket.id().to_string(),
                (reason, sent.load(Ordering::SeqCst)),
            );
        });
    });
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .set_send_buffer_size(KERNEL_SEND_BUFFER)
        .expect("SO_SNDBUF");
    socket.bind("127.0.0.1:0".parse().unwrap()).expect("bind");
    let listener = socket.listen(1024).expect("listen");
    let addr = listener.local_addr().expect("local addr");
    let listener = listener.into_std().expect("std listener");
    let serving = tokio::spawn(io.serve(listener));
    (io, addr, serving)
}

#[test]
fn slow_consumers_are_cut_off_and_the_others_get_everything() {
    let _serial = harness::serial();
    harness::runtime().block_on(run());
}

async fn run() {
    let clients: usize = pick(200, 1000);
    // The long form's rate keeps the deliveries per second of the short one (20,000 frames of
    // 1 KiB a second through one process that is both server and clients).
    let rate: u64 = pick(100, 20);
    let total: u64 = pick(400, 1200);
    let half = total / 2;
    let warmup = total / 10;
    epoch();
    let reasons = Arc::new(Mutex::new(HashMap::new()));
    let sent = Arc::new(AtomicU64::new(0));
    let (io, addr, serving) = server(reasons.clone(), sent.clone());

    // The clients: all normal readers but two.
    let mut conns = Vec::new();
    for chunk in (0..clients).collect::<Vec<_>>().chunks(50) {
        let opened = within(
            30,
            "the clients to connect",
            join_all(chunk.iter().map(|&i| open(addr, i < 2))),
        )
        .await;
        conns.extend(opened);
    }
    harness::settle(
        10,
        "every socket in the room",
        || io.to("room").sockets().len(),
        |n| *n == clients,
    )
    .await;
    let stopped_sid = conns[0].1.clone();
    let slow_sid = conns[1].1.clone();
    let (done_tx, done) = tokio::sync::watch::channel(false);
    let mut readers = Vec::new();
    for (i, (ws, sid)) in conns.into_iter().enumerate() {
        let reader = match i {
            0 => Reader::Stops { from: half },
            1 => Reader::Slow {
                from: half,
                pause: Duration::from_micros(10_000_000 / rate),
            },
            _ => Reader::Normal,
        };
        readers.push((
            sid,
            tokio::spawn(read_ticks(ws, reader, (total, warmup, half), done.clone())),
        ));
    }

    // Baseline memory once everyone is connected and reading.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let baseline_kib = harness::rss_kib();
    harness::reset_peak_rss();

    // The broadcast: `rate` per second, 1 KiB each.
    let io2 = io.clone();
    let pad = "x".repeat(PAYLOAD);
    let sent2 = sent.clone();
    let broadcaster = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
        for seq in 0..total {
            tick.tick().await;
            let text = format!("{seq} {} {pad}", now_us());
            io2.to("room").emit("tick", &text).expect("broadcast");
            sent2.store(seq + 1, Ordering::SeqCst);
        }
    });
    let run_secs = total / rate + 30;
    within(run_secs, "the broadcasts to be sent", broadcaster)
        .await
        .expect("broadcaster");
    done_tx.send_replace(true);

    let mut first = Vec::new();
    let mut second = Vec::new();
    let mut stopped = None;
    let mut slow = None;
    let mut open_ws = Vec::new();
    for (sid, reader) in readers {
        let handle = within(30, "a client to get every broadcast", reader);
        let (seen, ws) = handle.await.expect("reader");
        open_ws.push(ws);
        if sid == stopped_sid {
            stopped = Some(seen);
        } else if sid == slow_sid {
            slow = Some(seen);
        } else {
            assert_eq!(
                (seen.count, seen.out_of_order, seen.cut),
                (total, 0, false),
                "{sid}: every broadcast once and in order (disconnect: {:?})",
                reasons.lock().unwrap().get(&sid)
            );
            first.extend(seen.first_half);
            second.extend(seen.second_half);
        }
    }
    let peak_kib = harness::peak_rss_kib();
    let (stopped, slow) = (stopped.unwrap(), slow.unwrap());
    let reasons = reasons.lock().unwrap().clone();
    assert!(
        stopped.cut && slow.cut,
        "both slow clients are cut off: stalled got {} (cut {}), slow got {} (cut {}); reasons {reasons:?}",
        stopped.count,
        stopped.cut,
        slow.count,
        slow.cut
    );

    let cut_at = |sid: &str| match reasons.get(sid) {
        Some((DisconnectReason::SlowConsumer, at)) => *at,
        other => panic!("{sid}: disconnect reason {other:?}, expected slow consumer"),
    };
    let stopped_cut_at = cut_at(&stopped_sid);
    let slow_cut_at = cut_at(&slow_sid);
    assert_eq!(
        reasons.len(),
        2,
        "only the slow clients are disconnected: {reasons:?}"
    );

    // The stalled client's backlog when it was cut: what the server took for it past what it
    // read. The server's queue holds at most MAX_PACKETS packets in its channel and outbox
    // each, plus WS_WRITE_BUFFER bytes being written; the kernel's socket buffers (the
    // client's receive buffer is 4 KiB, the server's send buffer at most tcp_wmem's 4 MiB)
    // hold the rest (twice what was asked, as Linux counts its overhead).
    let frame = PAYLOAD as u64 + 40;
    let backlog = stopped_cut_at - (half + 1);
    let queue_bytes = (2 * MAX_PACKETS as u64) * frame + WS_WRITE_BUFFER as u64 + frame;
    let kernel_bytes = 2 * u64::from(KERNEL_SEND_BUFFER + KERNEL_RECV_BUFFER);
    assert!(
        backlog * frame <= queue_bytes + kernel_bytes,
        "stalled client cut after a backlog of {backlog} broadcasts"
    );
    assert!(
        stopped_cut_at < total && slow_cut_at < total,
        "cut before the end of the run (stalled at {stopped_cut_at}, slow at {slow_cut_at} of {total})"
    );

    // Memory: the baseline plus the two clients' bounded queues (and the test's own
    // latency samples); a generous allowance for the allocator, far below what an unbounded
    // queue would take.
    let samples_kib = ((first.len() + second.len()) * 8 / 1024) as u64;
    let allowance_kib = 2 * (queue_bytes + kernel_bytes) / 1024 + samples_kib + 32 * 1024;
    let growth_kib = peak_kib.saturating_sub(baseline_kib);
    assert!(
        growth_kib <= allowance_kib,
        "peak RSS {peak_kib} KiB is {growth_kib} KiB over the baseline {baseline_kib} KiB (allowed {allowance_kib})"
    );

    let p99_first = harness::quantile(&mut first, 0.99);
    let p99_second = harness::quantile(&mut second, 0.99);
    let p50_first = harness::quantile(&mut first, 0.5);
    let p50_second = harness::quantile(&mut second, 0.5);
    println!(
        "slow consumer: {clients} clients, {total} broadcasts of {PAYLOAD} B at {rate}/s; \
         stalled client cut at broadcast {stopped_cut_at} (backlog {backlog}), slow reader cut at \
         {slow_cut_at}; latency p50/p99 first half {p50_first}/{p99_first} µs, second half \
         {p50_second}/{p99_second} µs; RSS baseline {baseline_kib} KiB, peak {peak_kib} KiB"
    );
    // p99 at most twice the first half's, plus a fixed allowance for a noisy 2-core machine
    // (scheduling hiccups of a few ms dwarf sub-millisecond baselines).
    let slack_us = 25_000;
    assert!(
        p99_second <= 2 * p99_first + slack_us,
        "p99 went from {p99_first} µs to {p99_second} µs with the slow clients"
    );
    io.close().await;
    within(10, "the listener to close", serving)
        .await
        .expect("serve task")
        .expect("serve");
    drop(open_ws);
}
