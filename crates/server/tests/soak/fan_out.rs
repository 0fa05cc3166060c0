//! Large fan-out (issue 10 section 2): one room of 1,000 sockets (long: 5,000) gets a steady
//! broadcast. Every socket gets every broadcast exactly once, in order, nobody is
//! disconnected, and the server encodes each broadcast once whatever the number of targets
//! (`ServerStats::packets_encoded` goes up by one per broadcast).

use std::net::SocketAddr;
use std::time::Duration;

use ferrio::{SocketIo, SocketRef};
use ferrio_testkit::within;
use ferrio_testkit::ws::{self, Read, Ws};
use futures_util::future::join_all;

use crate::common::Server;
use crate::harness::{self, pick};

async fn open(addr: SocketAddr) -> Ws {
    let mut c = ws::connect(addr, "/socket.io/?EIO=4&transport=websocket").await;
    assert!(matches!(ws::read(&mut c).await, Read::Text(t) if t.starts_with("0{")));
    ws::send_text(&mut c, "40").await;
    match ws::read_text_answering_pings(&mut c).await {
        Read::Text(t) if t.starts_with("40{") => c,
        other => panic!("expected the CONNECT reply, got {other:?}"),
    }
}

/// Reads `total` broadcasts; returns (received, out of order).
async fn read_all(mut c: Ws, total: u64) -> (u64, u64, Ws) {
    let (mut count, mut out_of_order) = (0, 0);
    while count < total {
        let text = match ws::read_text_answering_pings(&mut c).await {
            Read::Text(t) => t,
            other => panic!("after {count} broadcasts: {other:?}"),
        };
        let seq: u64 = text
            .strip_prefix("42[\"fan\",")
            .and_then(|r| r.split_once(','))
            .and_then(|(seq, _)| seq.parse().ok())
            .unwrap_or_else(|| panic!("unexpected frame {text:.60}"));
        if seq != count {
            out_of_order += 1;
        }
        count += 1;
    }
    (count, out_of_order, c)
}

#[test]
fn every_socket_of_a_large_room_gets_each_broadcast_once_in_order() {
    let _serial = harness::serial();
    harness::runtime().block_on(run());
}

async fn run() {
    let sockets: usize = pick(1000, 5000);
    let rate: u64 = pick(20, 10);
    let total: u64 = pick(40, 300);
    let io = SocketIo::builder()
        .ping_interval(Duration::from_secs(5))
        .ping_timeout(Duration::from_secs(20))
        .build();
    io.ns("/", async |socket: SocketRef| socket.join("fan"));
    let server = Server::start(io);
    let mut clients = Vec::new();
    for _ in 0..sockets.div_ceil(100) {
        let n = (sockets - clients.len()).min(100);
        let opened = within(
            60,
            "the clients to connect",
            join_all((0..n).map(|_| open(server.addr))),
        )
        .await;
        clients.extend(opened);
    }
    harness::settle(
        10,
        "every socket in the room",
        || server.io.to("fan").sockets().len(),
        |n| *n == sockets,
    )
    .await;
    let readers: Vec<_> = clients
        .into_iter()
        .map(|c| tokio::spawn(read_all(c, total)))
        .collect();
    let before = server.io.stats();
    let payload = "y".repeat(256);
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    for seq in 0..total {
        tick.tick().await;
        server
            .io
            .to("fan")
            .emit("fan", &(seq, payload.as_str()))
            .expect("broadcast");
    }
    let after = server.io.stats();
    let mut open = Vec::new();
    for reader in readers {
        let (count, out_of_order, c) = within(60, "every broadcast to arrive", reader)
            .await
            .expect("reader");
        assert_eq!(
            (count, out_of_order),
            (total, 0),
            "each broadcast once, in order"
        );
        open.push(c);
    }
    assert_eq!(
        after.packets_encoded - before.packets_encoded,
        total,
        "each broadcast encoded once for its {sockets} targets"
    );
    let end = server.io.stats();
    assert_eq!(end.sockets, sockets, "nobody was disconnected");
    println!(
        "fan-out: {sockets} sockets, {total} broadcasts at {rate}/s: {} deliveries, each once and \
         in order; {} encodings",
        total * sockets as u64,
        after.packets_encoded - before.packets_encoded
    );
    drop(open);
    server.stop().await;
}
