//! `soak-server`: the server of the graceful-shutdown scenario of the soak suite
//! (`crates/test-servers/tests/soak_shutdown.rs`, `docs/RELIABILITY.md`).
//!
//! `soak-server [PORT [HOST]]`: binds `HOST:PORT` (default `127.0.0.1` and 0, a free one; a busy port is retried
//! for 5 s, for a restart on the same port; listen backlog 1024) and prints `listening on <addr> pid <pid>`. Namespace
//! `/`: `work` (a number, with an ack) prints `done <n>` and then acks `n`; `burst` (a count,
//! with an ack) emits `b` with `0..count` to the sender, prints `burst queued <count>` and
//! acks `count`; `ask` emits `question` to the sender with an ack and no timeout, prints
//! `ask sent`, then `ask answered` or `ask failed: <error>` once it resolves.
//!
//! On SIGTERM (or Ctrl-C) it prints `closing`, runs `io.close()` (new clients refused, every
//! client disconnected with `server shutting down` after its queue is flushed, bounded by the
//! engine's `close_timeout`; pending acks fail) and prints `closed <stats>` once the drain is
//! done and the listener closed; it exits when its stdin closes, so that the test can check
//! the closed listener while the process still exists. A `stats` line on stdin prints
//! `stats polls_waiting=<n> sessions=<n>`. Heartbeat 1 s + 2 s, close timeout 2 s.

use std::io::Write;
use std::time::Duration;

use ferrio::{AckSender, Data, SocketIo, SocketRef};
use ferrio_test_servers::{init_tracing, shutdown_signal};

/// Prints a line and flushes it at once (the test reads stdout as a pipe).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Most connections waiting to be accepted. `std::net::TcpListener::bind` asks for 128, which a
/// reconnection storm of thousands of clients overflows (the kernel then drops SYNs: counted
/// as ListenOverflows); Node's `server.listen` asks for 511.
const BACKLOG: u32 = 1024;

/// A listener on `host:port` with [`BACKLOG`] (SO_REUSEADDR, as std sets it).
fn listen(host: std::net::Ipv4Addr, port: u16) -> std::io::Result<std::net::TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(std::net::SocketAddr::from((host, port)))?;
    socket.listen(BACKLOG)?.into_std()
}

/// Binds `host:port`, retrying a busy port every 20 ms for 5 s.
async fn bind(host: std::net::Ipv4Addr, port: u16) -> std::io::Result<std::net::TcpListener> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match listen(host, port) {
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
}

fn main() -> std::io::Result<()> {
    init_tracing();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> std::io::Result<()> {
    let mut config = ferrio::SocketIoConfig::default();
    config.engine.close_timeout = Duration::from_secs(2);
    let io = SocketIo::builder()
        .config(config)
        .ping_interval(Duration::from_secs(1))
        .ping_timeout(Duration::from_secs(2))
        .build();
    io.ns("/", async |socket: SocketRef| {
        socket.on("work", async |Data(n): Data<u64>, ack: AckSender| {
            say(&format!("done {n}"));
            ack.send(&n).ok();
        });
        socket.on(
            "burst",
            async |socket: SocketRef, Data(count): Data<u64>, ack: AckSender| {
                for seq in 0..count {
                    if let Err(e) = socket.emit("b", &seq) {
                        say(&format!("burst failed at {seq}: {e}"));
                        return;
                    }
                }
                say(&format!("burst queued {count}"));
                ack.send(&count).ok();
            },
        );
        socket.on("ask", async |socket: SocketRef| {
            let answer = socket.emit_with_ack::<_, serde_json::Value>("question", &());
            say("ask sent");
            match answer.await {
                Ok(_) => say("ask answered"),
                Err(e) => say(&format!("ask failed: {e}")),
            }
        });
    });
    let port: u16 = match std::env::args().nth(1) {
        Some(p) => p.parse().map_err(std::io::Error::other)?,
        None => 0,
    };
    let host: std::net::Ipv4Addr = match std::env::args().nth(2) {
        Some(h) => h.parse().map_err(std::io::Error::other)?,
        None => std::net::Ipv4Addr::LOCALHOST,
    };
    let listener = bind(host, port).await?;
    let addr = listener.local_addr()?;
    say(&format!("listening on {addr} pid {}", std::process::id()));
    let serving = tokio::spawn(io.serve(listener));
    // stdin: `stats` commands; its end lets the process exit (once closed).
    let (eof_tx, eof) = tokio::sync::oneshot::channel::<()>();
    let stats_io = io.clone();
    let handle = tokio::runtime::Handle::current();
    std::thread::spawn(move || {
        let mut line = String::new();
        while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
            if line.trim() == "stats" {
                let s = handle.block_on(async { stats_io.stats() });
                say(&format!(
                    "stats polls_waiting={} sessions={}",
                    s.polls_waiting, s.sessions
                ));
            }
            line.clear();
        }
        let _ = eof_tx.send(());
    });
    shutdown_signal().await;
    say("closing");
    match tokio::time::timeout(Duration::from_secs(10), io.close()).await {
        Ok(()) => {}
        Err(_) => say("close did not finish within 10 s"),
    }
    serving.await.map_err(std::io::Error::other)??;
    let s = io.stats();
    say(&format!(
        "closed sessions={} live={} sockets={} pending_acks={}",
        s.sessions, s.live, s.sockets, s.pending_acks
    ));
    // Stay until the test is done looking (stdin closed).
    let _ = eof.await;
    Ok(())
}
