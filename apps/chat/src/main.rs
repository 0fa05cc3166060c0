//! `ferrio-chat`: the chat server of Ferrio's README, with its web page.
//!
//! One binary serves the page (`/`, `/app.js`, `/style.css`, embedded), the official
//! JavaScript client (`/socket.io/socket.io.min.js`, from the npm `socket.io-client` package)
//! and the Socket.IO endpoint: the chat on `/` (rooms, typing, private messages, files) and a
//! live feed on `/news`. State is in memory.
//!
//! ```sh
//! cargo xtask chat                       # npm ci, release build, http://localhost:3000
//! cargo xtask chat -- --port 8080        # extra arguments go to the app
//! cargo run -p ferrio-chat -- client --nick bob --room lobby   # the chat in a terminal
//! ```
//!
//! The `client` subcommand is the same chat from the terminal, on `ferrio-client`
//! (`src/client/`).
#![forbid(unsafe_code)]

mod chat;
mod client;
mod news;
mod page;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ferrio::{ClientBundle, SocketIo};
use tower_layer::Layer;

/// Command line: the server's flags (each can also be set by its environment variable), or
/// the `client` subcommand.
#[derive(Parser, Debug)]
#[command(
    name = "ferrio-chat",
    about = "Ferrio's chat: a Socket.IO chat server and its web page",
    after_help = "Logs: RUST_LOG (default `info`), e.g. RUST_LOG=debug,ferrio=trace."
)]
struct Cli {
    /// Without a subcommand, the server runs.
    #[command(subcommand)]
    command: Option<Command>,
    /// Port to listen on (0 picks a free one; the address is printed).
    #[arg(long, env = "FERRIO_CHAT_PORT", default_value_t = 3000)]
    port: u16,
    /// Address to listen on.
    #[arg(long, env = "FERRIO_CHAT_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Redis URL (`redis://host:port`): several chat servers on the same Redis are one chat
    /// (rooms, members, messages, private messages), through the Node-compatible Redis
    /// adapter. Default: alone, in memory.
    #[arg(long, env = "FERRIO_CHAT_REDIS", value_name = "URL")]
    redis: Option<String>,
    /// The `dist/` folder of the npm `socket.io-client` package, served under /socket.io/.
    /// Default: apps/chat/node_modules/socket.io-client/dist (installed by `cargo xtask
    /// chat`), then interop/node_modules/socket.io-client/dist.
    #[arg(long, env = "FERRIO_CHAT_CLIENT_DIR", value_name = "DIR")]
    client_dir: Option<PathBuf>,
    /// Seconds between two items of the /news live feed.
    #[arg(long, env = "FERRIO_CHAT_NEWS_INTERVAL", default_value_t = 5.0)]
    news_interval: f64,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Chat from the terminal (the Rust client, ferrio-client): one line per event; type text
    /// for the current room, or /msg, /join, /leave, /rooms, /who, /help, /quit.
    Client(client::ClientArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Client(args)) = cli.command {
        // The terminal is for the chat: only warnings and errors, on stderr.
        init_tracing("warn");
        return client::main(args);
    }
    init_tracing("info");
    let bundle = match load_bundle(cli.client_dir.as_deref()) {
        Ok(b) => b,
        Err(msg) => {
            eprintln!("ferrio-chat: {msg}");
            return ExitCode::from(2);
        }
    };
    if !(cli.news_interval.is_finite() && cli.news_interval >= 0.05) {
        eprintln!("ferrio-chat: --news-interval must be at least 0.05 seconds");
        return ExitCode::from(2);
    }
    let listener = match TcpListener::bind((cli.host.as_str(), cli.port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "ferrio-chat: cannot listen on {}:{}: {e}",
                cli.host, cli.port
            );
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ferrio-chat: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let news_interval = Duration::from_secs_f64(cli.news_interval);
    match runtime.block_on(run(listener, bundle, news_interval, cli.redis)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrio-chat: {e}");
            ExitCode::from(1)
        }
    }
}

/// Serves until Ctrl-C or SIGTERM, then disconnects every client and lets requests finish.
async fn run(
    listener: TcpListener,
    bundle: ClientBundle,
    news_interval: Duration,
    redis: Option<String>,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(
        dir = %bundle.dir().display(),
        version = bundle.version().unwrap_or("unknown"),
        "serving the socket.io client"
    );
    // Recovery keeps recent broadcasts for clients that come back; files are sent with acks,
    // which are not kept, so the count bounds the memory.
    let mut recovery = ferrio::RecoveryConfig::default();
    recovery.max_stored_packets = 1000;
    let chat = chat::Chat::new();
    let mut builder = SocketIo::builder()
        .serve_client(bundle)
        .max_payload(chat::MAX_PAYLOAD)
        .connection_state_recovery(recovery)
        .with_state(chat.clone());
    if let Some(url) = &redis {
        let adapter =
            ferrio_redis::RedisAdapter::classic(url, ferrio_redis::RedisConfig::default())
                .await
                .map_err(|e| std::io::Error::other(format!("--redis {url}: {e}")))?;
        builder = builder.adapter(adapter);
        tracing::info!(%url, "sharing rooms and messages through Redis");
    }
    let io = builder.build();
    chat::register(&io, &chat);
    if redis.is_some() {
        chat::catch_up(&io, &chat).await;
    }
    let feed = news::register(&io, chat, news_interval);
    let service = io.layer().layer(page::router());

    let stop = shutdown_signal()?;
    // The line tests and scripts wait for; then the human-friendly one.
    println!("listening on {addr}");
    println!(
        "Ferrio chat: open http://{} in two browser tabs",
        display_addr(addr)
    );
    let closing = io.clone();
    let result = ferrio::serve(listener, service, async move {
        stop.await;
        tracing::info!("shutting down");
        feed.abort();
        closing.close();
    })
    .await;
    println!("ferrio-chat stopped");
    result
}

/// `localhost:3000` for a loopback address, so the printed link is the familiar one.
fn display_addr(addr: std::net::SocketAddr) -> String {
    if addr.ip().is_loopback() {
        format!("localhost:{}", addr.port())
    } else if addr.ip().is_unspecified() {
        format!("localhost:{} (listening on every interface)", addr.port())
    } else {
        addr.to_string()
    }
}

/// The client bundle from `--client-dir` or the default places, with a message saying what
/// to run when it is missing.
fn load_bundle(dir: Option<&Path>) -> Result<ClientBundle, String> {
    let candidates = match dir {
        Some(d) => vec![d.to_path_buf()],
        None => default_client_dirs(),
    };
    for dir in &candidates {
        if dir.join("socket.io.js").is_file() {
            return ClientBundle::from_dir(dir).map_err(|e| e.to_string());
        }
    }
    let looked = candidates
        .iter()
        .map(|d| format!("  {}", d.display()))
        .collect::<Vec<_>>()
        .join("\n");
    Err(format!(
        "the JavaScript client (socket.io-client's dist/ folder) was not found; looked in:\n\
         {looked}\n\
         Install it with `cargo xtask chat` (runs `npm ci` in apps/chat, then starts the app), \
         or `npm ci` in apps/chat, or pass --client-dir <node_modules/socket.io-client/dist>."
    ))
}

fn default_client_dirs() -> Vec<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dist = Path::new("node_modules/socket.io-client/dist");
    vec![
        manifest.join(dist),
        manifest.join("../../interop").join(dist),
        PathBuf::from("apps/chat").join(dist),
    ]
}

/// Installs a `tracing` subscriber reading `RUST_LOG` (default `default`).
fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Ctrl-C and SIGTERM, listened to from creation on: a signal that comes right after the
/// `listening on` line still stops the server gracefully.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
