//! The chat page in a real browser: headless Chromium (Debian's `chromium`, installed by
//! `cargo xtask test` when missing) driven by playwright-core from `interop/chat/browser.mjs`.
//!
//! Two pages join a room and chat (typing indicator, delivery acks), a private message, an
//! image shared as binary, the `/news` feed, a page over long-polling only; then the server is
//! killed and started again on the same port while the pages are open, and they reconnect and
//! chat again. The screenshot is written to `target/tmp/chat-e2e/chat.png`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{ChatServer, NodeScript, within};

const CHROMIUM: &str = "/usr/bin/chromium";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pages_chat_share_files_and_survive_a_server_restart() {
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| CHROMIUM.to_owned());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: `cargo xtask test` installs Debian's chromium package \
         (or run `apt-get install -y chromium`)"
    );
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("chat-e2e");
    let start = Instant::now();
    let mut server = Some(ChatServer::start(0).await);
    let port = server.as_ref().map(|s| s.addr.port()).unwrap_or(0);
    let url = server.as_ref().map(ChatServer::url).unwrap_or_default();
    let mut node = NodeScript::spawn(
        "chat/browser.mjs",
        &[&url, shots.to_str().expect("utf-8 path")],
    );
    let mut steps = Vec::new();
    within(90, "the browser test", async {
        while let Some(line) = node.line().await {
            match line.as_str() {
                "restart:kill" => {
                    if let Some(s) = server.take() {
                        s.kill().await;
                    }
                    node.send("killed").await;
                }
                "restart:start" => {
                    server = Some(ChatServer::start(port).await);
                    node.send("started").await;
                }
                "ok" => break,
                other => {
                    println!("{other}");
                    steps.push(other.to_owned());
                }
            }
        }
    })
    .await;
    assert!(
        within(20, "node to exit", node.success()).await,
        "the browser script failed; steps passed: {steps:?}; screenshots in {}",
        shots.display()
    );
    assert!(
        steps.iter().any(|s| s.starts_with("screenshot ")),
        "no screenshot taken"
    );
    println!(
        "browser test passed in {:.1} s; screenshot: {}",
        start.elapsed().as_secs_f64(),
        shots.join("chat.png").display()
    );
}
