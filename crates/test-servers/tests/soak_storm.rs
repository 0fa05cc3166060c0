//! Reconnection storm (issue 10 section 2): `ferrio-client` clients (Node's backoff: 1 s
//! doubling to 5 s, randomisation 0.5) are connected to `soak-server`; the server is killed
//! (SIGKILL) and started again on the same port. Pass: every client reconnects within 30 s
//! of the restart; the reconnections are spread by the jitter (not one burst); the kernel
//! counted no accept-queue overflow or drop (`/proc/net/netstat` ListenOverflows,
//! ListenDrops) meanwhile; every client's socket works again (an ack round trip).
//!
//! The server runs in its own network namespace (joined to the test's by a veth pair), so the
//! counters read there are its listener's alone, whatever else this machine runs.

mod common;

use std::time::{Duration, Instant};

use common::soak_server::SoakServer;
use ferrio_client::{Client, SocketEvent, Transport};
use ferrio_testkit::netns::NetNs;
use ferrio_testkit::within;
use tokio::process::Command;

/// `soak-server port host` in the namespace `ns` (on its address), its output discarded once
/// it listens. `ip netns exec` runs the server in its own process (it execs).
async fn start(ns: &NetNs, port: u16) -> (SoakServer, u16) {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.name, common::soak_server::BIN])
        .arg(port.to_string())
        .arg(ns.inner.to_string());
    let mut server = SoakServer::spawn(cmd).await;
    server.discard_output();
    let port = server.addr.port();
    (server, port)
}

/// TcpExt ListenOverflows + ListenDrops of the server's network namespace.
fn listen_overflows(ns: &NetNs) -> (u64, u64) {
    let c = ns.tcp_ext();
    (c["ListenOverflows"], c["ListenDrops"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_reconnects_after_a_server_restart() {
    let long = std::env::var("SOAK_LONG").is_ok_and(|v| v == "1");
    // One descriptor per client on each side (WebSocket only: no polling connections).
    let clients: usize = if long { 10_000 } else { 300 };
    let ns = NetNs::create();
    let (server, port) = start(&ns, 0).await;
    let url = format!("http://{}:{port}", ns.inner);

    // Connect everyone, each client with its own manager (its own connection).
    let mut sockets = Vec::new();
    for chunk in 0..clients.div_ceil(100) {
        let n = (clients - chunk * 100).min(100);
        let batch = (0..n).map(|_| {
            let url = url.clone();
            async move {
                let client = Client::builder(&url)
                    .transports(&[Transport::WebSocket])
                    .auto_connect(false)
                    .timeout(Duration::from_secs(20))
                    .build()
                    .expect("client");
                let socket = client.socket("/");
                let mut events = socket.events();
                socket.connect().await.expect("connect");
                loop {
                    match events.next().await {
                        Some(SocketEvent::Connect(_)) => break,
                        Some(SocketEvent::ConnectError(e)) => panic!("connect error: {e:?}"),
                        Some(_) => continue,
                        None => panic!("events ended"),
                    }
                }
                (client, socket, events)
            }
        });
        sockets.extend(
            within(
                60,
                "the clients to connect",
                futures_util::future::join_all(batch),
            )
            .await,
        );
    }

    // Every client watches for its disconnect, then its reconnection.
    let (down_tx, mut down_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut watchers = Vec::new();
    let mut keep = Vec::new();
    for (client, socket, mut events) in sockets {
        let down = down_tx.clone();
        watchers.push(tokio::spawn(async move {
            loop {
                match events.next().await {
                    Some(SocketEvent::Disconnect(_)) => break,
                    Some(_) => continue,
                    None => panic!("events ended"),
                }
            }
            let _ = down.send(());
            loop {
                match events.next().await {
                    Some(SocketEvent::Connect(_)) => return Instant::now(),
                    Some(_) => continue,
                    None => panic!("events ended"),
                }
            }
        }));
        keep.push((client, socket));
    }
    drop(down_tx);

    let mut server = server;
    server.child.start_kill().expect("kill soak-server");
    let _ = server.child.wait().await;
    within(30, "every client to see the server go", async {
        for _ in 0..clients {
            down_rx.recv().await.expect("a watcher");
        }
    })
    .await;
    let before = listen_overflows(&ns);
    let (_server, _) = start(&ns, port).await;
    let restarted = Instant::now();
    let mut back = Vec::with_capacity(clients);
    for w in watchers {
        let at = within(30, "every client to reconnect within 30 s", w)
            .await
            .expect("watcher");
        back.push(at.duration_since(restarted));
    }
    let after = listen_overflows(&ns);
    back.sort();
    let last = *back.last().unwrap();
    let p10 = back[clients / 10];
    let p90 = back[clients * 9 / 10];
    println!(
        "storm: {clients} clients back after the restart in at most {last:?} (p10 {p10:?}, p90 \
         {p90:?}); ListenOverflows {} -> {}, ListenDrops {} -> {}",
        before.0, after.0, before.1, after.1
    );
    assert!(
        last <= Duration::from_secs(30),
        "all back within 30 s: {last:?}"
    );
    assert!(
        p90 - p10 >= Duration::from_millis(100),
        "reconnections spread by the jitter: p10 {p10:?}, p90 {p90:?}"
    );
    assert_eq!(
        after, before,
        "accept queue overflows or drops during the storm"
    );

    // Every socket works again.
    let acks = keep.iter().map(|(_, socket)| async move {
        socket
            .emit_with_ack("work", &7u64)
            .await
            .expect("work acked")
            .data::<u64>()
            .expect("a number")
    });
    let answers = within(
        30,
        "an ack from every client",
        futures_util::future::join_all(acks),
    )
    .await;
    assert!(answers.iter().all(|&n| n == 7));
}
