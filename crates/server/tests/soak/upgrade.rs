//! Polling-heavy and upgrade under load (issue 10 section 2): while the server streams
//! numbered events to a room, polling-only clients long-poll them, and other clients join over
//! polling and upgrade to WebSocket in the middle of the stream (`2probe`, `3probe`, the held
//! GET released, `5`). Pass: every client's sequence is contiguous (nothing lost, doubled or
//! reordered, across the upgrade too); every upgrading session ends on WebSocket (none stuck
//! upgrading) and every polling one on polling; once the upgrades are done, the process holds
//! exactly one connection per WebSocket client on each side (no probe or polling connection
//! left), and after the clients leave, nothing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use ferrio::{SocketIo, SocketRef};
use ferrio_testkit::ws::{self, Read, Ws};
use ferrio_testkit::{http, within};
use futures_util::future::try_join_all;

use crate::common::Server;
use crate::harness::{self, pick};

/// A client's view of the stream: the next sequence number expected, and what broke it.
#[derive(Debug, Default)]
struct Stream {
    next: Option<u64>,
    received: u64,
    broken: Vec<String>,
}

impl Stream {
    /// Takes one Engine.IO packet; true when it was the end of the stream.
    fn take(&mut self, packet: &str) -> bool {
        if packet == "42[\"end\"]" {
            return true;
        }
        let Some(seq) = packet
            .strip_prefix("42[\"s\",")
            .and_then(|r| r.strip_suffix(']'))
            .and_then(|s| s.parse::<u64>().ok())
        else {
            return false;
        };
        if let Some(next) = self.next
            && seq != next
        {
            self.broken.push(format!("expected {next}, got {seq}"));
        }
        self.next = Some(seq + 1);
        self.received += 1;
        false
    }
}

/// A polling client on one kept-alive connection (as a browser or Node's HTTP agent): its
/// GETs and POSTs go one after another.
struct Polling {
    conn: http::Conn,
    path: String,
    sid: String,
}

impl Polling {
    async fn join(addr: SocketAddr) -> Polling {
        let mut conn = http::Conn::open(addr).await;
        let open = conn.get("/socket.io/?EIO=4&transport=polling").await;
        let body = open.text();
        let json: serde_json::Value =
            serde_json::from_str(body.strip_prefix('0').expect("open")).expect("open payload");
        let sid = json["sid"].as_str().unwrap().to_owned();
        let mut p = Polling {
            conn,
            path: format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
            sid,
        };
        p.post("40").await;
        p
    }

    async fn post(&mut self, payload: &str) {
        let res = self.conn.post(&self.path, payload.to_owned()).await;
        assert_eq!(res.status, 200, "POST {payload}: {}", res.text());
    }

    /// One GET; its packets go to `stream` (pings answered). True once the end came.
    async fn get(&mut self, stream: &mut Stream) -> bool {
        let res = within(20, "a GET", self.conn.get(&self.path)).await;
        assert_eq!(res.status, 200, "GET: {}", res.text());
        let mut done = false;
        for p in res.text().split('\x1e') {
            if p == "2" {
                self.post("3").await;
            }
            done |= stream.take(p);
        }
        done
    }
}

async fn polling_client(addr: SocketAddr) -> Stream {
    let mut p = Polling::join(addr).await;
    let mut stream = Stream::default();
    while !p.get(&mut stream).await {}
    stream
}

/// Joins over polling, reads a few GETs, upgrades, and reads the rest on the WebSocket.
async fn upgrading_client(addr: SocketAddr, upgraded: Arc<AtomicUsize>) -> (Stream, Ws, String) {
    let mut p = Polling::join(addr).await;
    let mut stream = Stream::default();
    for _ in 0..2 {
        assert!(
            !p.get(&mut stream).await,
            "the stream ended before the upgrade"
        );
    }
    // As the JS client: polling goes on while the WebSocket connects and probes (pings are
    // answered meanwhile). Once `3probe` came, polling is paused: no new GET goes out, the
    // one out comes back (with the stream's packets or the server's noop), then `5` moves
    // the session to the WebSocket.
    let path = format!("/socket.io/?EIO=4&transport=websocket&sid={}", p.sid);
    let probe = async move {
        let mut c = ws::connect(addr, &path).await;
        ws::send_text(&mut c, "2probe").await;
        match within(20, "3probe", ws::read(&mut c)).await {
            Read::Text(t) if t == "3probe" => c,
            other => panic!("expected 3probe, got {other:?}"),
        }
    };
    let mut probe = std::pin::pin!(probe);
    let mut probed = None;
    while probed.is_none() {
        let mut get = std::pin::pin!(p.get(&mut stream));
        let done = loop {
            tokio::select! {
                done = &mut get => break done,
                c = &mut probe, if probed.is_none() => probed = Some(c),
            }
        };
        assert!(!done, "the stream ended during the upgrade");
    }
    let mut c = probed.expect("probed");
    ws::send_text(&mut c, "5").await;
    upgraded.fetch_add(1, Ordering::SeqCst);
    // The polling transport is done: its connection closes, as the JS client's does.
    let sid = p.sid.clone();
    drop(p);
    loop {
        match within(20, "the stream on the WebSocket", ws::read(&mut c)).await {
            Read::Text(t) if t == "2" => ws::send_text(&mut c, "3").await,
            Read::Text(t) => {
                if stream.take(&t) {
                    break;
                }
            }
            other => {
                stream
                    .broken
                    .push(format!("WebSocket after the upgrade: {other:?}"));
                break;
            }
        }
    }
    (stream, c, sid)
}

#[test]
fn polling_clients_and_upgrades_under_a_stream_keep_order() {
    let _serial = harness::serial();
    harness::runtime().block_on(run());
}

async fn run() {
    // Each client polls on one kept-alive connection, as a real one does: a new connection
    // per poll made ~10,000 connects a second at 3,000 clients, overflowed the listen queue
    // and stalled polls for seconds in SYN retransmits (docs/RELIABILITY.md section 6).
    let pollers: usize = pick(200, 2000);
    let upgraders: usize = pick(200, 5000);
    let rate: u64 = pick(20, 10);
    // At least this many events, and 20 more once every client has upgraded.
    let min_total: u64 = pick(100, 200);
    let io = SocketIo::builder()
        .ping_interval(Duration::from_secs(2))
        .ping_timeout(Duration::from_secs(20))
        .build();
    let reasons: Arc<std::sync::Mutex<std::collections::HashMap<String, String>>> = Arc::default();
    let r = reasons.clone();
    io.ns("/", async move |socket: SocketRef| {
        socket.join("stream");
        let r = r.clone();
        socket.on_disconnect(
            async move |socket: SocketRef, reason: ferrio::DisconnectReason| {
                r.lock()
                    .unwrap()
                    .insert(socket.id().to_string(), reason.to_string());
            },
        );
    });
    // The server's disconnect reasons so far, counted (printed when a client fails).
    let counts = || {
        reasons.lock().unwrap().values().fold(
            std::collections::BTreeMap::<String, usize>::new(),
            |mut m, r| {
                *m.entry(r.clone()).or_default() += 1;
                m
            },
        )
    };
    let server = Server::start(io);
    let started = std::time::Instant::now();
    let addr = server.addr;
    let base_fds = harness::open_fds();

    let streaming = Arc::new(AtomicBool::new(true));
    let io = server.io.clone();
    let flag = streaming.clone();
    let upgraded = Arc::new(AtomicUsize::new(0));
    let done_upgrading = upgraded.clone();
    let streamer = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
        let mut seq = 0u64;
        let mut until = None;
        while until.is_none_or(|u| seq < u) {
            tick.tick().await;
            io.to("stream").emit("s", &seq).expect("stream");
            seq += 1;
            if until.is_none()
                && seq >= min_total
                && done_upgrading.load(Ordering::SeqCst) == upgraders
            {
                until = Some(seq + 20);
            }
        }
        io.to("stream").emit("end", &()).expect("end");
        flag.store(false, Ordering::SeqCst);
        seq
    });
    // Clients arrive while the stream runs. Each is a task of its own, as independent
    // clients are: thousands of them as futures of one task share that task's turn on the
    // runtime (and its cooperative budget), and were seen resuming 10 s after their socket
    // was ready, past the server's upgrade timeout.
    let polling = tokio::spawn(try_join_all(
        (0..pollers).map(move |_| tokio::spawn(polling_client(addr))),
    ));
    let upgrading =
        tokio::spawn(try_join_all((0..upgraders).map(move |_| {
            tokio::spawn(upgrading_client(addr, upgraded.clone()))
        })));
    let secs = min_total / rate + 120;
    // The upgrades first: a failed one fails the test at once (the stream waits for them).
    let upgraded = within(secs, "the upgrading clients", upgrading)
        .await
        .expect("upgraders")
        .unwrap_or_else(|e| panic!("upgraders: {e} (server disconnect reasons: {:?})", counts()));
    let polled = within(secs, "the polling clients", polling)
        .await
        .expect("pollers")
        .unwrap_or_else(|e| panic!("pollers: {e} (server disconnect reasons: {:?})", counts()));
    let total = within(secs, "the stream", streamer)
        .await
        .expect("streamer");
    assert!(!streaming.load(Ordering::SeqCst));

    let mut received = 0;
    for s in &polled {
        assert!(s.broken.is_empty(), "polling client: {:?}", s.broken);
        received += s.received;
    }
    let mut sockets = Vec::new();
    for (s, c, sid) in upgraded {
        assert!(
            s.broken.is_empty(),
            "upgrading client {sid}: {:?} (server disconnect reasons so far: {:?})",
            s.broken,
            counts()
        );
        received += s.received;
        sockets.push((c, sid));
    }
    // Every upgrading session is on WebSocket; every polling-only one still on polling.
    let all = server.io.of("/").all_sockets();
    let on_ws = all.iter().filter(|s| s.transport() == "websocket").count();
    assert_eq!(on_ws, upgraders, "sessions stuck upgrading");
    assert_eq!(all.len() - on_ws, pollers, "polling sessions");
    // One WebSocket per upgraded client on each side, nothing else: no probe, polling or
    // HTTP connection left over.
    let fds = harness::settle(
        10,
        "only the WebSocket connections open",
        harness::open_fds,
        |n| *n <= base_fds + 2 * upgraders,
    )
    .await;
    println!(
        "upgrade under load: {pollers} polling and {upgraders} upgrading clients, {total} events \
         at {rate}/s: {received} received, all contiguous; all {upgraders} upgrades on \
         WebSocket; {fds} fds with {} expected; in {} s",
        base_fds + 2 * upgraders,
        started.elapsed().as_secs()
    );
    drop(sockets);
    // The polling sessions end by their heartbeat once nobody polls (20 s here): close them.
    server.io.close().await;
    harness::settle(
        10,
        "no session left",
        || server.io.stats(),
        |s| s.sessions == 0 && s.live == 0,
    )
    .await;
}
