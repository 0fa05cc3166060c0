//! Half-open TCP (issue 10 section 2): an npm `socket.io-client` in a network namespace
//! vanishes without FIN or RST (its packets and ours black-holed, then the process killed)
//! while connected over WebSocket, and while its polling GET is held by the server. The server
//! frees the session, with `ping timeout`, within pingInterval + pingTimeout + 1 s.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrio::{DisconnectReason, SocketIo, SocketRef};
use ferrio_testkit::netns::NetNs;
use ferrio_testkit::node::{interop_dir, require_node_modules};
use ferrio_testkit::within;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::harness::{self, pick};

const PING_INTERVAL: Duration = Duration::from_millis(500);
const PING_TIMEOUT: Duration = Duration::from_millis(1000);

type Gone = Arc<Mutex<HashMap<String, (DisconnectReason, Instant)>>>;

fn server(ns: &NetNs, gone: Gone) -> (SocketIo, SocketAddr) {
    let io = SocketIo::builder()
        .ping_interval(PING_INTERVAL)
        .ping_timeout(PING_TIMEOUT)
        .build();
    io.ns("/", async move |socket: SocketRef| {
        let gone = gone.clone();
        socket.on_disconnect(async move |socket: SocketRef, reason: DisconnectReason| {
            gone.lock()
                .unwrap()
                .insert(socket.id().to_string(), (reason, Instant::now()));
        });
    });
    let listener = TcpListener::bind((ns.outer, 0)).expect("bind the veth address");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(io.serve(listener));
    (io, addr)
}

/// One client over `transport` vanishes; returns how long the server took to free it.
async fn vanish(transport: &str) -> Duration {
    require_node_modules();
    let ns = NetNs::create();
    let gone: Gone = Arc::default();
    let (io, addr) = server(&ns, gone.clone());
    let mut client = Command::new("ip")
        .args(["netns", "exec", &ns.name, "node"])
        .arg(interop_dir().join("soak/idle.mjs"))
        .arg(format!("http://{addr}"))
        .arg(transport)
        .current_dir(interop_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start node in the namespace");
    let mut lines = BufReader::new(client.stdout.take().unwrap()).lines();
    let line = within(15, "the client to connect", lines.next_line())
        .await
        .expect("client output")
        .expect("client ended");
    let sid = line
        .strip_prefix("connected ")
        .unwrap_or_else(|| panic!("client: {line}"))
        .to_owned();
    if transport == "polling" {
        // The client's GET is held by the server when the connection vanishes.
        harness::settle(
            5,
            "the client's GET to be held",
            || io.stats(),
            |s| s.polls_waiting == 1,
        )
        .await;
    }
    ns.black_hole();
    let vanished = Instant::now();
    // Killed behind the black hole: its FIN or RST never arrives.
    client.start_kill().expect("kill the client");
    let _ = client.wait().await;
    let bound = PING_INTERVAL + PING_TIMEOUT + Duration::from_secs(1);
    let (reason, at) = harness::settle(
        10,
        "the session to be freed",
        || gone.lock().unwrap().get(&sid).copied(),
        Option::is_some,
    )
    .await
    .unwrap();
    let took = at - vanished;
    assert_eq!(reason, DisconnectReason::PingTimeout, "{transport}");
    assert!(
        took <= bound,
        "{transport}: the session was freed {took:?} after the client vanished (bound {bound:?})"
    );
    let stats = harness::settle(
        5,
        "no session left",
        || io.stats(),
        |s| s.sessions == 0 && s.sockets == 0,
    )
    .await;
    assert_eq!(stats.live, 0, "{transport}: {stats:?}");
    io.close().await;
    took
}

#[test]
fn a_vanished_client_is_freed_within_the_heartbeat() {
    let _serial = harness::serial();
    harness::runtime().block_on(async {
        let rounds = pick(1, 10);
        for transport in ["websocket", "polling"] {
            let mut worst = Duration::ZERO;
            for _ in 0..rounds {
                worst = worst.max(vanish(transport).await);
            }
            println!(
                "half-open: {transport}, {rounds} round(s): freed at most {worst:?} after the \
                 client vanished (ping {PING_INTERVAL:?} + {PING_TIMEOUT:?}, bound + 1 s)"
            );
        }
    });
}
