//! `conformance-server`: the server the official Engine.IO v4 and Socket.IO v5 protocol suites
//! run against (contract: `shared/reference/test-servers.md`, section 1).
//!
//! - `/engine.io/`: raw Engine.IO echo.
//! - `/socket.io/`: Socket.IO; `/` emits `auth` on connection, answers `message` with
//!   `message-back` and acks `message-with-ack`; `/custom` emits `auth`.
//!
//! Both: pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1 000 000, CORS any origin, EIO=3
//! rejected (`--allow-eio3` accepts it, to run the Engine.IO v3 suite of the protocol
//! repository's `v3` branch by hand); Socket.IO: connectTimeout 1000 ms, no connection state
//! recovery.

use std::time::Duration;

use clap::Parser;
use ferrio::{AckSender, Args, Data, SocketIo, SocketRef};
use ferrio_engine::{CorsConfig, Engine, EngineConfig};
use ferrio_test_servers::{bind, echo::Echo, init_tracing, shutdown_signal};
use serde_json::Value;
use tower_layer::Layer;

/// Command line.
#[derive(Parser, Debug)]
#[command(about = "Conformance server for the official Engine.IO / Socket.IO protocol suites")]
struct Args_ {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Accepts Engine.IO v3 (`EIO=3`) on both paths. Off by default, as the v4 suites need
    /// (their "invalid EIO" tests expect v3 to be refused).
    #[arg(long)]
    allow_eio3: bool,
}

/// The engine settings of the suites.
fn engine_config(path: &str, allow_eio3: bool) -> EngineConfig {
    let mut config = EngineConfig::default();
    config.allow_eio3 = allow_eio3;
    config.path = path.to_owned();
    config.session.ping_interval = Duration::from_millis(300);
    config.session.ping_timeout = Duration::from_millis(200);
    config.session.max_payload = 1_000_000;
    config.cors = CorsConfig::any();
    config
}

fn socket_io(allow_eio3: bool) -> SocketIo {
    let mut config = ferrio::SocketIoConfig::default();
    config.engine = engine_config("/socket.io/", allow_eio3);
    config.connect_timeout = Duration::from_millis(1000);
    let io = SocketIo::builder().config(config).build();
    io.ns("/", async |socket: SocketRef, Data(auth): Data<Value>| {
        let _ = socket.emit("auth", &auth);
        socket.on("message", async |socket: SocketRef, args: Args| {
            let _ = socket.emit("message-back", &args);
        });
        socket.on("message-with-ack", async |ack: AckSender, args: Args| {
            let _ = ack.send(&args);
        });
    });
    io.ns(
        "/custom",
        async |socket: SocketRef, Data(auth): Data<Value>| {
            let _ = socket.emit("auth", &auth);
        },
    );
    io
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    init_tracing();
    let args = Args_::parse();
    let engine = Engine::new(engine_config("/engine.io/", args.allow_eio3), Echo);
    let io = socket_io(args.allow_eio3);
    let service = io.layer().layer(engine.service());
    let (listener, _) = bind(&args.host, args.port)?;
    ferrio_engine::serve(listener, service, async move {
        shutdown_signal().await;
        io.close();
        engine.close();
    })
    .await
}
