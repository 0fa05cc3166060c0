//! `--redis`: chat servers on one Redis (a private `redis-server` on a free port) are one chat.
//! The official socket.io-client (`interop/chat/cluster.mjs`) puts alice on server A and bob on
//! server B: members, room counts, history, messages, typing and private messages cross, and
//! a third server started later gets the history and everyone.

mod common;

use common::{ChatServer, NodeScript, within};
use ferrio_testkit::redis::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_servers_on_one_redis_are_one_chat() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let a = ChatServer::start_with(0, &["--redis", &url]).await;
    let b = ChatServer::start_with(0, &["--redis", &url]).await;
    let mut script = NodeScript::spawn("chat/cluster.mjs", &[&a.url(), &b.url()]);
    let mut seen = Vec::new();
    within(60, "the first phase", async {
        loop {
            let line = script.line().await.expect("the script ended early");
            assert!(!line.starts_with("not ok"), "{line}\nbefore: {seen:?}");
            if line == "ready-for-c" {
                return;
            }
            seen.push(line);
        }
    })
    .await;
    let c = ChatServer::start_with(0, &["--redis", &url]).await;
    script.send(&format!("c {}", c.url())).await;
    within(60, "the second phase", async {
        loop {
            let line = script.line().await.expect("the script ended early");
            assert!(!line.starts_with("not ok"), "{line}\nbefore: {seen:?}");
            if line == "done" {
                return;
            }
            seen.push(line);
        }
    })
    .await;
    assert!(script.success().await);
    assert_eq!(
        seen.iter().filter(|l| l.starts_with("ok ")).count(),
        7,
        "{seen:?}"
    );
}
