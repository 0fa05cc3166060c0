//! The terminal client (`ferrio-chat client`, on `ferrio-client`): two terminals chat in a room
//! and in private, one survives a server restart, one is refused without a nickname, and one
//! talks with the official `socket.io-client` speaking the page's protocol
//! (`interop/chat/peer.mjs`).
//!
//! Every terminal is the built binary with its stdin piped; the tests wait for the lines it
//! prints, each wait with a deadline. Children are killed on drop, so a failing test leaves
//! none behind.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use common::{ChatServer, NodeScript, within};

/// The longest wait for one line.
const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_terminals_chat_in_a_room_and_in_private() {
    let start = Instant::now();
    let server = ChatServer::start(0).await;
    let url = server.url();
    let mut alice = Terminal::spawn(&url, "alice", "lobby", &[]);
    alice.expect("* you joined #lobby (1 member: alice)").await;
    let mut bob = Terminal::spawn(&url, "bob", "lobby", &[]);
    // The room's history comes first, then the join.
    bob.expect("#lobby * alice joined").await;
    bob.expect("* you joined #lobby (2 members").await;
    alice.expect("#lobby * bob joined").await;

    bob.send("hello from bob's terminal").await;
    alice.expect("#lobby <bob> hello from bob's terminal").await;
    bob.expect(r#"#lobby ✓ delivered to 1 person: "hello from bob's terminal""#)
        .await;

    alice.send("/msg bob psst, bob").await;
    bob.expect("private <alice> psst, bob").await;
    // The delivery confirmation: bob's terminal acked the private message.
    alice
        .expect(r#"private ✓✓ delivered to bob: "psst, bob""#)
        .await;
    alice.send("/msg zed anyone?").await;
    alice.expect("✗ nobody called zed is online").await;

    bob.send("/join rust").await;
    bob.expect("* you joined #rust (1 member: bob)").await;
    bob.send("/rooms").await;
    bob.expect("* rooms: #lobby (2) joined, #random (0), #rust (1) current")
        .await;
    bob.send("anyone here?").await;
    bob.expect(r##"#rust ✓ sent (nobody else in #rust): "anyone here?""##)
        .await;
    bob.send("/leave").await;
    bob.expect("* you left #rust").await;
    bob.expect("* now talking in #lobby").await;
    bob.send("back in the lobby").await;
    alice.expect("#lobby <bob> back in the lobby").await;

    bob.send("/quit").await;
    assert_eq!(bob.exit_code().await, Some(0), "/quit exits with 0");
    alice.expect("#lobby * bob left").await;
    // Ctrl-D: end of input.
    alice.close_stdin();
    assert_eq!(alice.exit_code().await, Some(0), "Ctrl-D exits with 0");
    println!(
        "two terminals: passed in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_reconnects_after_a_server_restart_and_rejoins_its_rooms() {
    let start = Instant::now();
    let server = ChatServer::start(0).await;
    let port = server.addr.port();
    let mut carol = Terminal::spawn(&server.url(), "carol", "rust", &[]);
    carol.expect("* connected to").await;
    carol.expect("* you joined #rust (1 member: carol)").await;

    server.kill().await;
    carol
        .expect("* connection lost (transport close); reconnecting…")
        .await;
    let server = ChatServer::start(port).await;
    carol.expect("* connected to").await;
    carol
        .expect("* reconnected with a new session; rejoining #rust")
        .await;
    carol.expect("* you joined #rust (1 member: carol)").await;

    // And the restarted server has carol again: another user sees her.
    let mut dave = Terminal::spawn(&server.url(), "dave", "rust", &[]);
    dave.expect("* you joined #rust (2 members").await;
    carol.expect("#rust * dave joined").await;
    carol.send("still here").await;
    dave.expect("#rust <carol> still here").await;
    carol
        .expect(r#"#rust ✓ delivered to 1 person: "still here""#)
        .await;
    carol.close_stdin();
    dave.close_stdin();
    assert_eq!(carol.exit_code().await, Some(0));
    assert_eq!(dave.exit_code().await, Some(0));
    println!(
        "server restart: passed in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_without_a_nickname_is_refused() {
    let server = ChatServer::start(0).await;
    let mut nobody = Terminal::spawn(&server.url(), "   ", "lobby", &[]);
    nobody
        .expect("✗ refused by the server: a nickname is required")
        .await;
    assert_eq!(nobody.exit_code().await, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_and_socket_io_client_chat_as_the_page_does() {
    let start = Instant::now();
    let server = ChatServer::start(0).await;
    let url = server.url();
    let mut js = Peer(NodeScript::spawn(
        "chat/peer.mjs",
        &[&url, "alice", "lobby"],
    ));
    js.expect("joined lobby").await;
    // Long-polling here; the other tests use WebSocket (the default).
    let mut bob = Terminal::spawn(&url, "bob", "lobby", &["--transport", "polling"]);
    bob.expect("* you joined #lobby (2 members").await;
    js.expect("system lobby bob joined").await;

    js.0.send("say hello from javascript").await;
    bob.expect("#lobby <alice> hello from javascript").await;
    js.expect("sent 1").await;

    bob.send("hello from rust").await;
    js.expect("message lobby bob hello from rust").await;
    bob.expect(r#"#lobby ✓ delivered to 1 person: "hello from rust""#)
        .await;

    bob.send("/msg alice psst from rust").await;
    js.expect("private bob psst from rust").await;
    bob.expect(r#"private ✓✓ delivered to alice: "psst from rust""#)
        .await;

    js.0.send("msg bob psst from javascript").await;
    bob.expect("private <alice> psst from javascript").await;
    // The terminal acked it, as the page does.
    js.expect("private-sent bob true").await;

    bob.send("/quit").await;
    js.expect("system lobby bob left").await;
    assert_eq!(bob.exit_code().await, Some(0));
    js.0.send("quit").await;
    assert!(
        within(10, "node to exit", js.0.success()).await,
        "peer.mjs failed"
    );
    println!(
        "terminal and socket.io-client: passed in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

/// A running `ferrio-chat client`: stdin piped, stdout read line by line.
struct Terminal {
    nick: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
    seen: Vec<String>,
}

impl Terminal {
    fn spawn(url: &str, nick: &str, room: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferrio-chat"))
            .args(["client", "--nick", nick, "--room", room, "--url", url])
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start ferrio-chat client");
        let stdin = child.stdin.take();
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Terminal {
            nick: nick.trim().to_owned(),
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// Types one line.
    async fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write to the terminal client");
        stdin.flush().await.expect("flush");
    }

    /// Ctrl-D.
    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Reads printed lines until one contains `needle`, and returns it.
    async fn expect(&mut self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.next_line()).await {
                Ok(Ok(Some(line))) => {
                    println!("{:>6} | {line}", self.nick);
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Ok(_) => panic!(
                    "{}: exited before printing {needle:?}; printed:\n{}",
                    self.nick,
                    self.seen.join("\n")
                ),
                Err(_) => panic!(
                    "{}: no {needle:?} within {WAIT:?}; printed:\n{}",
                    self.nick,
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Reads the rest of the output and waits for the exit: the exit code.
    async fn exit_code(mut self) -> Option<i32> {
        within(WAIT.as_secs(), "the terminal client to exit", async {
            while let Ok(Some(line)) = self.lines.next_line().await {
                println!("{:>6} | {line}", self.nick);
            }
            self.child.wait().await.expect("wait").code()
        })
        .await
    }
}

/// `interop/chat/peer.mjs`: a chat user on the official socket.io-client.
struct Peer(NodeScript);

impl Peer {
    /// Reads lines until `line`; an `error` line fails the test.
    async fn expect(&mut self, line: &str) {
        within(
            WAIT.as_secs(),
            &format!("peer.mjs to print {line:?}"),
            async {
                loop {
                    match self.0.line().await {
                        Some(l) if l == line => return,
                        Some(l) if l.starts_with("error ") => panic!("peer.mjs: {l}"),
                        Some(l) => println!("    js | {l}"),
                        None => panic!("peer.mjs exited before printing {line:?}"),
                    }
                }
            },
        )
        .await;
        println!("    js | {line}");
    }
}
