//! Half-open TCP, the client's side (issue 10 section 2, the mirror of the server's
//! `soak::half_open`): the npm `socket.io` server runs in a network namespace and vanishes
//! without FIN or RST (its packets and ours black-holed, then the process killed) while
//! `ferrio-client` is connected over WebSocket and over polling (a GET pending). The client
//! notices, with `ping timeout`, within pingInterval + pingTimeout + 1 s.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use ferrio_client::{Client, DisconnectReason, Transport};
use ferrio_testkit::netns::NetNs;
use ferrio_testkit::node::{interop_dir, require_node_modules};
use ferrio_testkit::within;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const PING_INTERVAL: Duration = Duration::from_millis(500);
const PING_TIMEOUT: Duration = Duration::from_millis(1000);

async fn server_vanishes(transport: Transport) {
    require_node_modules();
    let ns = NetNs::create();
    let options = json!({
        "host": ns.inner.to_string(),
        "pingInterval": PING_INTERVAL.as_millis() as u64,
        "pingTimeout": PING_TIMEOUT.as_millis() as u64,
    });
    let mut server = Command::new("ip")
        .args(["netns", "exec", &ns.name, "node"])
        .arg(interop_dir().join("client/server.mjs"))
        .arg(options.to_string())
        .current_dir(interop_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start node in the namespace");
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let port = within(15, "the server to listen", async {
        loop {
            let line = lines
                .next_line()
                .await
                .expect("read")
                .expect("server ended");
            if let Some(port) = line.strip_prefix("listening ") {
                return port.trim().to_owned();
            }
        }
    })
    .await;
    let client = Client::builder(&format!("http://{}:{port}", ns.inner))
        .auto_connect(false)
        .transports(&[transport])
        .reconnection(false)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let socket = client.socket("/");
    let mut events = socket.events();
    socket.connect().await.expect("connect");
    common::connected(&mut events).await;
    // Over polling the client keeps a GET out at all times once connected: it is pending
    // when the server vanishes.
    ns.black_hole();
    let vanished = Instant::now();
    server.start_kill().expect("kill the server");
    let _ = server.wait().await;
    let reason = common::disconnected(&mut events).await;
    let took = vanished.elapsed();
    let bound = PING_INTERVAL + PING_TIMEOUT + Duration::from_secs(1);
    assert_eq!(reason, DisconnectReason::PingTimeout, "{transport:?}");
    assert!(
        took <= bound,
        "{transport:?}: noticed {took:?} after the server vanished (bound {bound:?})"
    );
    println!("half-open (client): {transport:?}: noticed after {took:?} (bound {bound:?})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_server_is_noticed_within_the_heartbeat() {
    // One namespace per process at a time: the two transports one after the other.
    server_vanishes(Transport::WebSocket).await;
    server_vanishes(Transport::Polling).await;
}
