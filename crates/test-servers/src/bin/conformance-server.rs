//! `conformance-server`: the server the official Engine.IO v4 and Socket.IO v5 protocol suites
//! run against (contract: `shared/reference/test-servers.md`, section 1).
//!
//! `/engine.io/`: raw Engine.IO echo, pingInterval 300 ms, pingTimeout 200 ms, maxPayload
//! 1 000 000, CORS any origin, EIO=3 rejected.

use std::time::Duration;

use clap::Parser;
use ferrio_engine::{CorsConfig, Engine, EngineConfig};
use ferrio_test_servers::{bind, echo::Echo, init_tracing, shutdown_signal};

/// Command line.
#[derive(Parser, Debug)]
#[command(about = "Conformance server for the official Engine.IO / Socket.IO protocol suites")]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
}

/// The engine settings of the suites.
fn engine_config(path: &str) -> EngineConfig {
    let mut config = EngineConfig::default();
    config.path = path.to_owned();
    config.session.ping_interval = Duration::from_millis(300);
    config.session.ping_timeout = Duration::from_millis(200);
    config.session.max_payload = 1_000_000;
    config.cors = CorsConfig::any();
    config
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    init_tracing();
    let args = Args::parse();
    let engine = Engine::new(engine_config("/engine.io/"), Echo);
    let (listener, _) = bind(&args.host, args.port)?;
    let shutdown_engine = engine.clone();
    ferrio_engine::serve(listener, engine.service(), async move {
        shutdown_signal().await;
        shutdown_engine.close();
    })
    .await
}
