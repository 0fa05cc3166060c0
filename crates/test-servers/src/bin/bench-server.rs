//! `bench-server`: the server load generators and cluster checks run against (contract:
//! `shared/reference/test-servers.md`, section 3).
//!
//! `target/release/bench-server PORT [--redis URL] [--parser msgpack] [--allow-eio3]`: binds `127.0.0.1:PORT` (0 picks a free port) and
//! prints `listening on <addr> pid <pid>`. Namespace `/`: `echo` acks with its arguments,
//! `broadcast` emits `broadcast` with its arguments to every socket of `/`, the sender
//! included (across the cluster with `--redis`). Node's defaults otherwise (pingInterval 25 s, pingTimeout 20 s,
//! maxHttpBufferSize 1 MB), both transports, CORS any origin, no recovery, `TCP_NODELAY`.
//! `--allow-eio3` also accepts Engine.IO v3 / Socket.IO v2 clients (`socket.io-client` 2.x).
//!
//! Runtime: current-thread when the process may use one CPU (`taskset -c 0`), multi-thread
//! otherwise; `WORKERS=n` sets the number of worker threads (1 = current-thread).

use clap::Parser;
use ferrio::{AckSender, Args, CorsConfig, SocketIo, SocketIoBuilder, SocketRef};
use ferrio_test_servers::{init_tracing, shutdown_signal};

/// Command line. Options that change the server are applied in [`builder`].
#[derive(Parser, Debug)]
#[command(about = "Ferrio's benchmark server: echo and broadcast on /")]
struct Cli {
    /// Port to listen on, on 127.0.0.1 (0 picks a free one).
    port: u16,
    /// Joins a cluster through Redis, in the classic format of `@socket.io/redis-adapter`
    /// (key `socket.io`), so Node servers with that adapter can be in the same cluster.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// The packet format: `default` (socket.io-parser) or `msgpack`
    /// (socket.io-msgpack-parser).
    #[arg(long, default_value = "default", value_parser = ["default", "msgpack"])]
    parser: String,
    /// Also accepts Engine.IO v3 / Socket.IO v2 clients (Node's `allowEIO3`).
    #[arg(long)]
    allow_eio3: bool,
}

fn main() -> std::io::Result<()> {
    init_tracing();
    let cli = Cli::parse();
    runtime()?.block_on(run(cli))
}

/// The tokio runtime: `WORKERS`, else as many workers as CPUs this process may use.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let workers = std::env::var("WORKERS")
        .ok()
        .and_then(|w| w.parse::<usize>().ok())
        .filter(|&w| w > 0)
        // Honours the affinity mask (sched_getaffinity) and cgroup quotas.
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
}

async fn run(cli: Cli) -> std::io::Result<()> {
    let io = builder(&cli).await?.build();
    handlers(&io);
    let listener = std::net::TcpListener::bind(("127.0.0.1", cli.port))?;
    let addr = listener.local_addr()?;
    println!("listening on {addr} pid {}", std::process::id());
    let stop = io.clone();
    // `serve` sets TCP_NODELAY on every accepted connection.
    ferrio::serve(listener, io.service(), async move {
        shutdown_signal().await;
        stop.close();
    })
    .await
}

/// The server's settings: Node's defaults, CORS any origin. Flags that change the server
/// (adapter, parser) go here.
async fn builder(cli: &Cli) -> std::io::Result<SocketIoBuilder> {
    let mut b = SocketIo::builder()
        .cors(CorsConfig::any())
        .allow_eio3(cli.allow_eio3);
    if cli.parser == "msgpack" {
        b = b.parser(ferrio::Parser::MsgPack);
    }
    if let Some(url) = &cli.redis {
        let adapter =
            ferrio_redis::RedisAdapter::classic(url, ferrio_redis::RedisConfig::default())
                .await
                .map_err(|e| std::io::Error::other(format!("--redis {url}: {e}")))?;
        b = b.adapter(adapter);
    }
    Ok(b)
}

/// `echo` and `broadcast` on `/`.
fn handlers(io: &SocketIo) {
    let all = io.clone();
    io.ns("/", move |socket: SocketRef| {
        let all = all.clone();
        async move {
            socket.on("echo", async |ack: AckSender, args: Args| {
                let _ = ack.send(&args);
            });
            socket.on("broadcast", move |args: Args| {
                let all = all.clone();
                async move {
                    let _ = all.emit("broadcast", &args);
                }
            });
        }
    });
}
