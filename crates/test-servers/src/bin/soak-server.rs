//! `soak-server`: the server of the soak scenarios that need a server process of their own
//! (`crates/test-servers/tests/soak_shutdown.rs`, `soak_storm.rs`, `soak_fan_out.rs`;
//! `docs/RELIABILITY.md`).
//!
//! `soak-server [PORT [HOST]] [--ping-interval-ms N] [--ping-timeout-ms N]
//! [--max-buffered-packets N]`: binds `HOST:PORT` (default `127.0.0.1` and 0, a free one; a busy port is retried for 5 s, for a restart on the same port;
//! listen backlog 1024) and prints `listening on <addr> pid <pid>`. Heartbeat 1 s + 2 s and
//! queue bound 1024 packets unless given, close timeout 2 s, the other settings Node's
//! defaults. Namespace `/`: every socket
//! joins the room `fan` on connection; `work` (a number, with an ack) prints `done <n>` and
//! then acks `n`; `burst` (a count, with an ack) emits `b` with `0..count` to the sender,
//! prints `burst queued <count>` and acks `count`; `ask` emits `question` to the sender with an
//! ack and no timeout, prints `ask sent`, then `ask answered` or `ask failed: <error>` once it
//! resolves.
//!
//! Commands on stdin (one a line):
//! - `stats` prints `stats polls_waiting=<n> sessions=<n> sockets=<n> room=<n>
//!   disconnects=<reason>:<n>,…` (`room`: the sockets in `fan`; `disconnects`: how many sockets
//!   were disconnected so far for each reason, spaces in it as `_`);
//! - `fan <total> <rate> <bytes>` broadcasts `total` events `fan` to the room
//!   (`io.to("fan").emit`) at `rate` a second, each `[seq, t, "yy…"]`: `seq` from 0, `t` the
//!   send time in microseconds since the Unix epoch, a string of `bytes` bytes. Then it prints
//!   `fan sent total=<n> encoded=<n> room=<n> sockets=<n> ms=<n>`: `encoded` is how much
//!   `ServerStats::packets_encoded` went up meanwhile, `room` the sockets in `fan` at the start,
//!   `sockets` those connected at the end, `ms` how long the broadcasts took; or `fan failed at
//!   <seq>: <error>`.
//!
//! On SIGTERM (or Ctrl-C) it prints `closing`, runs `io.close()` (new clients refused, every
//! client disconnected with `server shutting down` after its queue is flushed, bounded by the
//! engine's `close_timeout`; pending acks fail) and prints `closed <stats>` once the drain is
//! done and the listener closed; it exits when its stdin closes, so that the test can check
//! the closed listener while the process still exists.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use clap::Parser;
use ferrio::{AckSender, Data, DisconnectReason, SocketIo, SocketRef};
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

/// Command line.
#[derive(Parser, Debug)]
#[command(about = "The server of the soak scenarios (docs/RELIABILITY.md)")]
struct Cli {
    /// Port to listen on (0 picks a free one).
    #[arg(default_value_t = 0)]
    port: u16,
    /// Address to listen on (the storm scenario's server listens in its own network
    /// namespace, on its veth address).
    #[arg(default_value_t = std::net::Ipv4Addr::LOCALHOST)]
    host: std::net::Ipv4Addr,
    /// Time between pings, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    ping_interval_ms: u64,
    /// Time to answer a ping, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    ping_timeout_ms: u64,
    /// Most packets queued for one client before it is cut as a slow consumer
    /// (`SessionConfig::max_buffered_packets`; default 1024).
    #[arg(long)]
    max_buffered_packets: Option<usize>,
}

fn main() -> std::io::Result<()> {
    init_tracing();
    let cli = Cli::parse();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(cli))
}

async fn run(cli: Cli) -> std::io::Result<()> {
    let mut config = ferrio::SocketIoConfig::default();
    config.engine.close_timeout = Duration::from_secs(2);
    if let Some(n) = cli.max_buffered_packets {
        config.engine.session.max_buffered_packets = n;
    }
    let io = SocketIo::builder()
        .config(config)
        .ping_interval(Duration::from_millis(cli.ping_interval_ms))
        .ping_timeout(Duration::from_millis(cli.ping_timeout_ms))
        .build();
    let cut = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let tally = cut.clone();
    io.ns("/", move |socket: SocketRef| {
        let tally = tally.clone();
        async move {
            socket.join("fan");
            socket.on_disconnect(move |reason: DisconnectReason| {
                let tally = tally.clone();
                async move {
                    let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
                    *t.entry(reason.to_string().replace(' ', "_")).or_default() += 1;
                }
            });
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
        }
    });
    let listener = bind(cli.host, cli.port).await?;
    let addr = listener.local_addr()?;
    say(&format!("listening on {addr} pid {}", std::process::id()));
    let serving = tokio::spawn(io.serve(listener));
    // stdin: commands; its end lets the process exit (once closed).
    let (eof_tx, eof) = tokio::sync::oneshot::channel::<()>();
    let cmd_io = io.clone();
    let handle = tokio::runtime::Handle::current();
    std::thread::spawn(move || {
        let mut line = String::new();
        while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["stats"] => {
                    let (s, room) = handle
                        .block_on(async { (cmd_io.stats(), cmd_io.to("fan").sockets().len()) });
                    let cut = cut.lock().unwrap_or_else(|p| p.into_inner());
                    let cut: Vec<String> = cut.iter().map(|(r, n)| format!("{r}:{n}")).collect();
                    say(&format!(
                        "stats polls_waiting={} sessions={} sockets={} room={room} \
                         disconnects={}",
                        s.polls_waiting,
                        s.sessions,
                        s.sockets,
                        cut.join(",")
                    ));
                }
                ["fan", total, rate, bytes] => match (total.parse(), rate.parse(), bytes.parse()) {
                    (Ok(total), Ok(rate), Ok(bytes)) => {
                        handle.spawn(fan(cmd_io.clone(), total, rate, bytes));
                    }
                    _ => say(&format!("bad command: {}", line.trim())),
                },
                _ => say(&format!("bad command: {}", line.trim())),
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

/// `fan <total> <rate> <bytes>`: `total` broadcasts to the room `fan` at `rate` a second.
async fn fan(io: SocketIo, total: u64, rate: u64, bytes: usize) {
    let room = io.to("fan").sockets().len();
    let payload = "y".repeat(bytes);
    let before = io.stats().packets_encoded;
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate.max(1) as u32);
    for seq in 0..total {
        tick.tick().await;
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        if let Err(e) = io.to("fan").emit("fan", &(seq, t, payload.as_str())) {
            say(&format!("fan failed at {seq}: {e}"));
            return;
        }
    }
    let ms = start.elapsed().as_millis();
    let s = io.stats();
    say(&format!(
        "fan sent total={total} encoded={} room={room} sockets={} ms={ms}",
        s.packets_encoded - before,
        s.sockets
    ));
}
