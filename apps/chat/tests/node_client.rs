//! Every chat event and the served client bundle, checked with the official `socket.io-client`
//! from Node.js (`interop/chat/events.mjs`), plus the command line's refusals.

mod common;

use std::time::Instant;

use common::{ChatServer, NodeScript, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_chat_event_and_the_served_bundle_with_socket_io_client() {
    let server = ChatServer::start(0).await;
    let start = Instant::now();
    let mut node = NodeScript::spawn("chat/events.mjs", &[&server.url()]);
    let mut passed = Vec::new();
    let mut failure = None;
    within(60, "the socket.io-client tests", async {
        while let Some(line) = node.line().await {
            println!("{line}");
            if line.starts_with("ok ") {
                passed.push(line);
            } else if line.starts_with("not ok ") {
                failure = Some(line);
            } else if line == "done" || line == "failed" {
                break;
            }
        }
    })
    .await;
    let success = within(10, "node to exit", node.success()).await;
    assert!(
        failure.is_none() && success,
        "{failure:?} (passed: {passed:#?})"
    );
    assert!(passed.len() >= 20, "only {} tests ran", passed.len());
    println!(
        "{} socket.io-client tests passed in {:.1} s",
        passed.len(),
        start.elapsed().as_secs_f64()
    );
}
