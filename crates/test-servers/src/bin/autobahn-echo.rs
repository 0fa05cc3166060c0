//! `autobahn-echo`: a raw WebSocket echo on the engine's own WebSocket path (handshake checks,
//! `EngineConfig` limits, the session driver's codec), for the Autobahn|Testsuite's
//! `fuzzingclient` (`cargo xtask autobahn`). Every path echoes; there is no Engine.IO framing.
//!
//! `--deflate` turns permessage-deflate on (the 12.* and 13.* cases). Prints
//! `listening on <addr>` once bound.

use std::convert::Infallible;

use clap::Parser;
use ferrio_engine::{EngineConfig, PerMessageDeflate, RequestBody};
use ferrio_test_servers::{bind, init_tracing, shutdown_signal};

/// Command line.
#[derive(Parser, Debug)]
#[command(about = "Raw WebSocket echo on ferrio-engine's WebSocket path, for Autobahn")]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 9001)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Largest message and frame (`SessionConfig::max_payload`). The default is Autobahn's
    /// largest message (16 MiB) with room to spare; the engine's own default (1 MB) is
    /// covered by the engine's tests.
    #[arg(long, default_value_t = 17 * 1024 * 1024)]
    max_payload: usize,
    /// Offer permessage-deflate (`EngineConfig::per_message_deflate`, default options but a
    /// threshold of 0, so that every message of the 12.* and 13.* cases is compressed).
    #[arg(long)]
    deflate: bool,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    init_tracing();
    let args = Args::parse();
    let mut config = EngineConfig::default();
    config.session.max_payload = args.max_payload;
    if args.deflate {
        let mut deflate = PerMessageDeflate::default();
        deflate.threshold = 0;
        config.per_message_deflate = Some(deflate);
    }
    let service = tower::service_fn(move |req: http::Request<RequestBody>| {
        let res = ferrio_engine::raw_echo(&config, req);
        async move { Ok::<_, Infallible>(res) }
    });
    let (listener, _) = bind(&args.host, args.port)?;
    ferrio_engine::serve(listener, service, shutdown_signal()).await
}
