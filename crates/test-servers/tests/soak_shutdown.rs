//! Graceful shutdown (issue 10 section 2, the soak suite; `docs/RELIABILITY.md`): the
//! `soak-server` process gets SIGTERM while clients over WebSocket and polling have acked work
//! behind them, a burst queued and not yet read, a server ack pending, and one client keeps
//! sending work. Pass: the server stops accepting, every client is told (a WebSocket close
//! frame, the Engine.IO close packet over polling) after its queue is flushed, in order; the
//! pending server acks fail explicitly; every ack a client got is for work the server did;
//! the drain ends within the close timeout with nothing left; the process exits cleanly.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use common::soak_server::SoakServer;
use ferrio_testkit::ws::{self, Read, Ws};
use ferrio_testkit::{http, within};

async fn ws_join(addr: SocketAddr) -> Ws {
    let mut c = ws::connect(addr, "/socket.io/?EIO=4&transport=websocket").await;
    assert!(matches!(ws::read(&mut c).await, Read::Text(t) if t.starts_with("0{")));
    ws::send_text(&mut c, "40").await;
    assert!(
        matches!(ws::read_text_answering_pings(&mut c).await, Read::Text(t) if t.starts_with("40{"))
    );
    c
}

/// The next Socket.IO packet over WebSocket (pings answered), or the end.
async fn ws_next(c: &mut Ws) -> Read {
    within(10, "a packet", ws::read_text_answering_pings(c)).await
}

struct Polling {
    addr: SocketAddr,
    path: String,
}

impl Polling {
    async fn join(addr: SocketAddr) -> Polling {
        let open = http::get(addr, "/socket.io/?EIO=4&transport=polling").await;
        let body = open.text();
        let json: serde_json::Value =
            serde_json::from_str(body.strip_prefix('0').expect("open")).expect("open payload");
        let p = Polling {
            addr,
            path: format!(
                "/socket.io/?EIO=4&transport=polling&sid={}",
                json["sid"].as_str().unwrap()
            ),
        };
        p.post("40").await;
        let packets = p.get().await;
        assert!(packets[0].starts_with("40{"), "{packets:?}");
        p
    }

    async fn post(&self, payload: &str) {
        let res = http::post(self.addr, &self.path, payload.to_owned()).await;
        assert_eq!(res.status, 200, "POST {payload}: {}", res.text());
    }

    /// One GET: its packets (pings answered).
    async fn get(&self) -> Vec<String> {
        let res = within(10, "a GET", http::get(self.addr, &self.path)).await;
        assert_eq!(res.status, 200, "GET: {}", res.text());
        let packets: Vec<String> = res.text().split('\x1e').map(str::to_owned).collect();
        if packets.iter().any(|p| p == "2") {
            self.post("3").await;
        }
        packets.into_iter().filter(|p| p != "2").collect()
    }
}

/// Events queued by each `burst`.
const BURST: u64 = 500;

/// Reads a client's queue after SIGTERM: the question (queued first), the burst in order,
/// the burst's ack, then the close frame.
async fn drain(mut a: Ws) {
    match ws_next(&mut a).await {
        Read::Text(t) => assert!(
            t.starts_with("42") && t.ends_with("[\"question\"]"),
            "the question first: {t}"
        ),
        other => panic!("no question: {other:?}"),
    }
    for seq in 0..BURST {
        match ws_next(&mut a).await {
            Read::Text(t) => assert_eq!(t, format!("42[\"b\",{seq}]"), "burst in order"),
            other => panic!("burst cut at {seq}: {other:?}"),
        }
    }
    match ws_next(&mut a).await {
        Read::Text(t) => assert_eq!(t, format!("4399[{BURST}]"), "the burst's ack"),
        other => panic!("no ack for the burst: {other:?}"),
    }
    assert!(
        matches!(ws_next(&mut a).await, Read::Close(_)),
        "told with a close frame"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_tells_clients_and_fails_pending_acks() {
    let mut server = SoakServer::start(&[]).await;
    let addr = server.addr;

    // A (WebSocket): 50 pieces of work acked, a question pending, a burst queued, unread.
    let mut a = ws_join(addr).await;
    for n in 0..50u64 {
        ws::send_text(&mut a, &format!("42{n}[\"work\",{n}]")).await;
    }
    let mut acked = HashSet::new();
    while acked.len() < 50 {
        match ws_next(&mut a).await {
            Read::Text(t) => {
                let n: u64 = t
                    .strip_prefix("43")
                    .and_then(|r| r.split_once('['))
                    .and_then(|(id, _)| id.parse().ok())
                    .unwrap_or_else(|| panic!("unexpected {t}"));
                assert_eq!(t, format!("43{n}[{n}]"));
                acked.insert(n);
            }
            other => panic!("A: {other:?}"),
        }
    }
    ws::send_text(&mut a, "42[\"ask\"]").await;
    server.expect("ask sent", 10).await;
    ws::send_text(&mut a, &format!("4299[\"burst\",{BURST}]")).await;
    server.expect(&format!("burst queued {BURST}"), 10).await;
    // The long form: many more such clients, each with a question pending and a burst queued.
    let extra = if std::env::var("SOAK_LONG").is_ok_and(|v| v == "1") {
        200
    } else {
        0
    };
    let mut others = Vec::new();
    for _ in 0..extra {
        let mut o = ws_join(addr).await;
        ws::send_text(&mut o, "42[\"ask\"]").await;
        ws::send_text(&mut o, &format!("4299[\"burst\",{BURST}]")).await;
        server.expect(&format!("burst queued {BURST}"), 10).await;
        others.push(o);
    }

    // B (polling): 50 pieces of work acked, a question pending.
    let b = Polling::join(addr).await;
    let work: Vec<String> = (50..100u64)
        .map(|n| format!("42{n}[\"work\",{n}]"))
        .collect();
    b.post(&work.join("\x1e")).await;
    while acked.len() < 100 {
        for p in b.get().await {
            let n: u64 = p
                .strip_prefix("43")
                .and_then(|r| r.split_once('['))
                .and_then(|(id, _)| id.parse().ok())
                .unwrap_or_else(|| panic!("unexpected {p}"));
            acked.insert(n);
        }
    }
    b.post("42[\"ask\"]").await;
    server.expect("ask sent", 10).await;
    let b_question = b.get().await;
    assert!(
        b_question
            .iter()
            .any(|p| p.starts_with("42") && p.ends_with("[\"question\"]")),
        "{b_question:?}"
    );

    // C (WebSocket): sends work without waiting, through the shutdown.
    let c = ws_join(addr).await;
    let (c_tx, mut c_rx) = futures_util::StreamExt::split(c);
    let sender = tokio::spawn(async move {
        let mut tx = c_tx;
        let mut n = 1000u64;
        loop {
            let msg = ws::tungstenite::Message::text(format!("42{n}[\"work\",{n}]"));
            if futures_util::SinkExt::send(&mut tx, msg).await.is_err() {
                return n;
            }
            n += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let c_reader = tokio::spawn(async move {
        let mut acks = Vec::new();
        let mut told = false;
        while let Some(msg) = futures_util::StreamExt::next(&mut c_rx).await {
            match msg {
                Ok(ws::tungstenite::Message::Text(t)) => {
                    if let Some(rest) = t.strip_prefix("43")
                        && let Some((id, _)) = rest.split_once('[')
                    {
                        acks.push(id.parse::<u64>().expect("ack id"));
                    }
                }
                Ok(ws::tungstenite::Message::Close(_)) => told = true,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        (acks, told)
    });
    server.expect("done 1010", 10).await;

    // B holds a GET, as a client does between two packets: the server has it before SIGTERM.
    let b_path = b.path.clone();
    let b_poll = tokio::spawn(async move { http::get(addr, &b_path).await });
    within(10, "B's GET to be held", async {
        loop {
            server.command("stats").await;
            if server
                .expect("stats polls_waiting=", 10)
                .await
                .starts_with("1 ")
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;

    server.sigterm();
    server.expect("closing", 10).await;

    // A and the others read their queues: the whole burst in order, the burst's ack, then the
    // close frame.
    let drains = std::iter::once(a)
        .chain(others)
        .map(|ws| tokio::spawn(drain(ws)));
    let drained = futures_util::future::join_all(drains).await;
    for d in drained {
        d.expect("drain");
    }

    // B: its held GET is answered with the Engine.IO close packet.
    let res = within(10, "B's held GET", b_poll).await.expect("B's GET");
    assert_eq!(res.status, 200);
    assert!(
        res.text().split('\x1e').any(|p| p == "1"),
        "B is told with the close packet: {}",
        res.text()
    );

    // Pending acks fail explicitly; the drain ends with nothing left.
    let closed = server.expect("closed ", 10).await;
    assert_eq!(closed, "sessions=0 live=0 sockets=0 pending_acks=0");
    assert_eq!(
        server.count("ask failed: socket disconnected"),
        2 + extra,
        "both questions fail: {:?}",
        server.seen
    );

    // Stopped accepting: the listener is closed.
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert!(refused.is_err(), "the listener still accepts after close");

    // C: told with a close frame; every ack it got is for work the server did.
    let (c_acks, c_told) = within(10, "C's end", c_reader).await.expect("C reader");
    let c_sent = within(10, "C's sender", sender).await.expect("C sender");
    assert!(c_told, "C is told with a close frame");
    let done: HashSet<u64> = server
        .seen
        .iter()
        .filter_map(|l| l.strip_prefix("done ")?.parse().ok())
        .collect();
    for n in acked.iter().chain(&c_acks) {
        assert!(done.contains(n), "work {n} acked but not done");
    }
    assert!(
        c_acks.len() >= 10,
        "C got acks before the shutdown: {}",
        c_acks.len()
    );
    assert!(c_acks.windows(2).all(|w| w[0] < w[1]), "C's acks in order");
    println!(
        "shutdown: {} WebSocket clients each flushed {BURST} queued events then a close frame; \
         B got the close packet; C sent {} pieces of work, {} acked, all done; {} pending acks \
         failed",
        1 + extra,
        c_sent - 1000,
        c_acks.len(),
        2 + extra
    );

    // Stdin closed: the process exits, successfully.
    drop(server.child.stdin.take());
    let status = within(10, "soak-server to exit", server.child.wait())
        .await
        .expect("wait");
    assert!(status.success(), "soak-server exit status {status}");
}
