//! Churn (issue 10 section 2): many clients connect, join a room, emit with an ack, answer
//! the server's own emit with an ack, and leave, over WebSocket and polling alternately; a
//! tenth of them end by a TCP reset (SO_LINGER 0) instead, some with a binary packet half
//! sent, some (polling) with a GET pending. Afterwards sessions, sockets, rooms, pending acks,
//! partial packets, open fds and tasks are back to their baseline, every server ack resolved
//! (answered, or failed by the disconnect), and memory did not grow over the second half.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ferrio::{AckSender, Data, ServerStats, SocketIo, SocketRef};
use ferrio_testkit::ws::{self, Read, Ws};
use ferrio_testkit::{http, within};
use futures_util::future::join_all;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::common::{Server, builder};
use crate::harness::{self, pick};

/// How one cycle ends.
#[derive(Clone, Copy, Debug, PartialEq)]
enum End {
    /// The client leaves: `41` and a WebSocket close, or the Engine.IO close `1` over polling.
    Clean,
    /// TCP reset right after the exchange, without answering the server's ack.
    Reset,
    /// TCP reset with a binary packet whose attachment never comes (WebSocket), or with a
    /// GET pending (polling).
    ResetMidway,
}

#[derive(Default)]
struct Acks {
    answered: AtomicU64,
    failed: AtomicU64,
}

fn server(acks: Arc<Acks>) -> Server {
    let io = builder().connect_timeout(Duration::from_secs(1)).build();
    io.ns("/", async move |socket: SocketRef| {
        socket.on(
            "join",
            async |socket: SocketRef, Data(room): Data<String>, ack: AckSender| {
                socket.join(room.clone());
                ack.send(&room).ok();
            },
        );
        socket.on("echo", async |Data(n): Data<u64>, ack: AckSender| {
            ack.send(&n).ok();
        });
        // The server's own question: answered by the clients that leave cleanly, failed by
        // the disconnect for the others. Either way it must resolve.
        let answer = socket.emit_with_ack::<_, serde_json::Value>("q", &1);
        let acks = acks.clone();
        tokio::spawn(async move {
            match answer.await {
                Ok(_) => acks.answered.fetch_add(1, Ordering::Relaxed),
                Err(_) => acks.failed.fetch_add(1, Ordering::Relaxed),
            };
        });
    });
    Server::start(io)
}

/// What a cycle waits for: the answers to `join` (ack id 0) and `echo` (1), and the id of
/// the server's `q`.
#[derive(Default)]
struct Exchange {
    connected: bool,
    joined: bool,
    echoed: bool,
    q: Option<u64>,
}

impl Exchange {
    fn done(&self) -> bool {
        self.joined && self.echoed && self.q.is_some()
    }

    fn take(&mut self, packet: &str, n: u64) {
        if packet.starts_with("40{") {
            self.connected = true;
            return;
        }
        if packet == "6" {
            return;
        }
        if packet == format!("430[\"r{}\"]", n % 7) {
            self.joined = true;
        } else if packet == format!("431[{n}]") {
            self.echoed = true;
        } else if let Some(rest) = packet.strip_prefix("42")
            && let Some(id) = rest.strip_suffix("[\"q\",1]")
        {
            self.q = Some(id.parse().expect("ack id of q"));
        } else {
            panic!("cycle {n}: unexpected packet {packet}");
        }
    }
}

async fn ws_cycle(addr: SocketAddr, n: u64, end: End) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let mut c: Ws = ws::connect_over(stream, addr, "/socket.io/?EIO=4&transport=websocket")
        .await
        .expect("websocket handshake");
    ws::send_text(&mut c, "40").await;
    let mut ex = Exchange::default();
    let mut sent = false;
    while !ex.done() {
        match ws::read_text_answering_pings(&mut c).await {
            Read::Text(t) if t.starts_with("0{") => {}
            Read::Text(t) => ex.take(&t, n),
            other => panic!("cycle {n}: {other:?}"),
        }
        if ex.connected && !sent {
            // Events only once the CONNECT is answered, as a client does.
            ws::send_text(&mut c, &format!("420[\"join\",\"r{}\"]", n % 7)).await;
            ws::send_text(&mut c, &format!("421[\"echo\",{n}]")).await;
            sent = true;
        }
    }
    match end {
        End::Clean => {
            ws::send_text(&mut c, &format!("43{}[]", ex.q.unwrap())).await;
            ws::send_text(&mut c, "41").await;
            c.close(None).await.expect("close");
            assert!(ws::closed(&mut c).await);
        }
        End::Reset | End::ResetMidway => {
            if end == End::ResetMidway {
                ws::send_text(&mut c, r#"451-["bin",{"_placeholder":true,"num":0}]"#).await;
                // Sent: the server reads it before the reset (a pong is read after it).
                ws::send_text(&mut c, "3").await;
            }
            let stream = c.into_inner();
            stream.set_zero_linger().expect("SO_LINGER 0");
            drop(stream);
        }
    }
}

async fn polling_cycle(addr: SocketAddr, n: u64, end: End) {
    let open = http::get(addr, "/socket.io/?EIO=4&transport=polling").await;
    let body = open.text();
    let json: serde_json::Value =
        serde_json::from_str(body.strip_prefix('0').expect("open packet")).expect("open payload");
    let path = format!(
        "/socket.io/?EIO=4&transport=polling&sid={}",
        json["sid"].as_str().expect("sid")
    );
    let post = async |payload: String| {
        let res = http::post(addr, &path, payload).await;
        assert_eq!(res.status, 200, "cycle {n}: POST: {}", res.text());
    };
    post("40".to_owned()).await;
    let mut ex = Exchange::default();
    let mut sent = false;
    while !ex.done() {
        if ex.connected && !sent {
            post(format!("420[\"join\",\"r{}\"]\x1e421[\"echo\",{n}]", n % 7)).await;
            sent = true;
        }
        let res = http::get(addr, &path).await;
        assert_eq!(res.status, 200, "cycle {n}: GET: {}", res.text());
        for packet in res.text().split('\x1e') {
            match packet {
                "2" => post("3".to_owned()).await,
                p => ex.take(p, n),
            }
        }
    }
    match end {
        End::Clean => {
            post(format!("43{}[]", ex.q.unwrap())).await;
            post("1".to_owned()).await;
        }
        End::Reset => {
            // A POST reset before its answer: the session stays until its heartbeat fails.
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            let body = "3";
            let req = format!(
                "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(req.as_bytes()).await.expect("write");
            stream.set_zero_linger().expect("SO_LINGER 0");
        }
        End::ResetMidway => {
            // A GET held by the server (nothing to send), then reset.
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            let req = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\n\r\n");
            stream.write_all(req.as_bytes()).await.expect("write");
            tokio::time::sleep(Duration::from_millis(20)).await;
            stream.set_zero_linger().expect("SO_LINGER 0");
        }
    }
}

/// Cycle `n`: WebSocket (even) or polling (odd) alternately; a tenth end by a reset, half
/// of those midway, on both transports.
fn plan(n: u64) -> (bool, End) {
    let end = match n % 40 {
        9 | 28 => End::Reset,
        18 | 19 => End::ResetMidway,
        _ => End::Clean,
    };
    (n.is_multiple_of(2), end)
}

async fn cycles(addr: SocketAddr, range: std::ops::Range<u64>, workers: u64) {
    let work = (0..workers).map(|w| {
        let range = range.clone();
        async move {
            let mut n = range.start + w;
            while n < range.end {
                let (websocket, end) = plan(n);
                let cycle = async {
                    if websocket {
                        ws_cycle(addr, n, end).await
                    } else {
                        polling_cycle(addr, n, end).await
                    }
                };
                within(10, &format!("cycle {n}"), cycle).await;
                n += workers;
            }
        }
    });
    join_all(work).await;
}

/// The counters that must come back to zero once every client is gone.
fn idle(s: &ServerStats) -> bool {
    s.sessions == 0
        && s.live == 0
        && s.sockets == 0
        && s.rooms == 0
        && s.pending_acks == 0
        && s.partial_packets == 0
}

#[derive(Debug)]
struct Reading {
    stats: ServerStats,
    fds: usize,
    tasks: usize,
}

fn read(io: &SocketIo) -> Reading {
    Reading {
        stats: io.stats(),
        fds: harness::open_fds(),
        tasks: harness::alive_tasks(),
    }
}

#[test]
fn churn_leaves_nothing_behind() {
    let _serial = harness::serial();
    harness::runtime().block_on(run());
}

async fn run() {
    let total: u64 = pick(600, 20_000);
    let workers: u64 = pick(16, 32);
    let acks = Arc::new(Acks::default());
    let server = server(acks.clone());
    let addr = server.addr;
    // Heartbeat of the tests' builder: 500 ms + 1 s, so a reset session is gone within 2 s;
    // the connect timeout task of each connection lives 1 s.
    let settle_secs = 15;

    // Warm-up (runtime threads, allocator pools, first-use tables), then the baseline.
    let warmup = 40;
    cycles(addr, 0..warmup, workers).await;
    let base = harness::settle(
        settle_secs,
        "idle after the warm-up",
        || read(&server.io),
        |r| idle(&r.stats),
    )
    .await;
    let base = harness::settle(
        settle_secs,
        "fds and tasks steady after the warm-up",
        || read(&server.io),
        |r| idle(&r.stats) && r.fds <= base.fds && r.tasks <= base.tasks,
    )
    .await;

    // Four quarters; RSS read once the server is idle after each.
    let quarter = (total - warmup) / 4;
    let mut rss = vec![harness::rss_kib()];
    for q in 0..4 {
        let start = warmup + q * quarter;
        let stop = if q == 3 { total } else { start + quarter };
        cycles(addr, start..stop, workers).await;
        harness::settle(
            settle_secs,
            "idle after a quarter",
            || read(&server.io),
            |r| idle(&r.stats),
        )
        .await;
        rss.push(harness::rss_kib());
    }
    let rss_mid = rss[2];
    let end = harness::settle(
        settle_secs,
        "sessions, sockets, rooms, acks, partial packets, fds and tasks back to the baseline",
        || read(&server.io),
        |r| idle(&r.stats) && r.fds <= base.fds && r.tasks <= base.tasks,
    )
    .await;
    let rss_end = harness::rss_kib();

    let resets = (0..total).filter(|&n| plan(n).1 != End::Clean).count() as u64;
    let midway_ws = (0..total)
        .filter(|&n| plan(n) == (true, End::ResetMidway))
        .count() as u64;
    let (answered, failed) = (
        acks.answered.load(Ordering::Relaxed),
        acks.failed.load(Ordering::Relaxed),
    );
    println!(
        "churn: {total} cycles ({resets} reset, {midway_ws} with a partial packet), {workers} at a time; \
         baseline {} fds, {} tasks; end {} fds, {} tasks; server acks answered {answered}, failed {failed}; \
         partial packets dropped {}; RSS (KiB) after the warm-up and each quarter {rss:?}",
        base.fds, base.tasks, end.fds, end.tasks, end.stats.dropped_partials
    );
    assert_eq!(
        (answered, failed),
        (total - resets, resets),
        "every server ack resolved: answered by the clients that left cleanly, failed for the others"
    );
    assert_eq!(
        end.stats.dropped_partials, midway_ws,
        "each half-sent binary packet dropped once, when its connection reset"
    );
    // The second half ran as many cycles as the first: memory may wobble, not grow with them.
    let allowed_kib = pick(4 * 1024, 4 * 1024);
    assert!(
        rss_end <= rss_mid + allowed_kib,
        "RSS grew from {rss_mid} KiB to {rss_end} KiB over the second half"
    );
    server.stop().await;
}
