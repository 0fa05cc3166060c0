//! Runs the chat server binary and the Node.js scripts of `interop/chat/` for the tests.
//! Every child process is killed when its handle is dropped, so a failing test leaves none.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The workspace's `interop/` folder (pinned npm packages and the Node scripts).
pub fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop")
}

/// The socket.io-client bundle the tests serve (the one pinned in `interop/`).
pub fn client_dir() -> PathBuf {
    interop_dir().join("node_modules/socket.io-client/dist")
}

fn require_node_modules() {
    let dir = interop_dir().join("node_modules");
    assert!(
        dir.join("socket.io-client").is_dir() && dir.join("playwright-core").is_dir(),
        "{} is missing: run `cargo xtask npm` (or `cargo xtask test`), which runs `npm ci` in interop/",
        dir.display()
    );
}

/// Fails within `secs` seconds with `what` in the message.
pub async fn within<T>(secs: u64, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {secs}s: {what}"),
    }
}

/// A running `ferrio-chat`.
pub struct ChatServer {
    child: Child,
    /// The address it listens on.
    pub addr: SocketAddr,
}

impl ChatServer {
    /// Starts the app on `127.0.0.1:<port>` (0: a free port) with a fast news feed, and waits
    /// for its `listening on` line.
    pub async fn start(port: u16) -> Self {
        Self::start_with(port, &[]).await
    }

    /// As [`ChatServer::start`], with extra arguments.
    pub async fn start_with(port: u16, extra: &[&str]) -> Self {
        require_node_modules();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferrio-chat"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--client-dir")
            .arg(client_dir())
            .args(["--news-interval", "0.3"])
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start ferrio-chat");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let addr = within(20, "ferrio-chat to print `listening on`", async {
            while let Some(line) = lines.next_line().await.expect("read stdout") {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    return addr.parse::<SocketAddr>().expect("an address");
                }
            }
            panic!("ferrio-chat exited before listening");
        })
        .await;
        // Keep reading so the app never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        ChatServer { child, addr }
    }

    /// The page's address.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Kills the server (SIGKILL: no goodbye to the clients) and waits until it is gone.
    pub async fn kill(mut self) {
        let _ = self.child.start_kill();
        within(10, "ferrio-chat to die", self.child.wait())
            .await
            .expect("wait");
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Waits for the process to exit and returns its exit code.
    pub async fn wait(mut self, secs: u64) -> Option<i32> {
        within(secs, "ferrio-chat to exit", self.child.wait())
            .await
            .expect("wait")
            .code()
    }
}

/// A running `node interop/<script>`, talking in lines on stdin/stdout.
pub struct NodeScript {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl NodeScript {
    /// Starts `node interop/<script> <args>` (stderr passed through).
    pub fn spawn(script: &str, args: &[&str]) -> Self {
        require_node_modules();
        let mut child = Command::new("node")
            .arg(interop_dir().join(script))
            .args(args)
            .current_dir(interop_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start node (Node.js 20 is needed)");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        NodeScript {
            child,
            stdin,
            stdout,
        }
    }

    /// The next line the script printed, `None` once it closed its output.
    pub async fn line(&mut self) -> Option<String> {
        self.stdout.next_line().await.ok().flatten()
    }

    /// Sends one line to the script.
    pub async fn send(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write to node");
        self.stdin.flush().await.expect("flush");
    }

    /// Waits for the script to exit; whether it succeeded.
    pub async fn success(mut self) -> bool {
        self.child
            .wait()
            .await
            .map(|s| s.success())
            .unwrap_or(false)
    }
}
