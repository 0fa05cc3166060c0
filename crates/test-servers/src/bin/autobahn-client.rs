//! `autobahn-client`: drives the Autobahn|Testsuite's `fuzzingserver` with the WebSocket layer
//! of `ferrio-client` (`cargo xtask autobahn`): tokio-tungstenite opened as
//! `crates/client/src/transport.rs` opens it (`connect_async_tls_with_config`, Nagle off,
//! `max_message_size` and `max_frame_size` at the client's default 16 MiB), echoing every
//! message until the fuzzing server closes.
//!
//! Usage: `autobahn-client <ws://host:port> [agent]`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

/// `ferrio_client::ClientConfig`'s default `max_message_size`.
const MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// Longest a case may take before it is given up.
const CASE_TIMEOUT: Duration = Duration::from_secs(120);

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .ok_or("usage: autobahn-client <ws://host:port> [agent]")?;
    let agent = args.next().unwrap_or_else(|| "ferrio-client".to_owned());

    let mut ws = connect(&format!("{base}/getCaseCount")).await?;
    let count: u32 = match ws.next().await {
        Some(Ok(Message::Text(t))) => t.trim().parse()?,
        other => return Err(format!("no case count: {other:?}").into()),
    };
    let _ = ws.close(None).await;
    eprintln!("{count} cases");

    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        match tokio::time::timeout(CASE_TIMEOUT, run_case(&url)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("case {case}: {e}"),
            Err(_) => eprintln!("case {case}: timed out"),
        }
    }

    let mut ws = connect(&format!("{base}/updateReports?agent={agent}")).await?;
    while let Some(Ok(_)) = ws.next().await {}
    Ok(())
}

/// Opens a WebSocket the way `ferrio-client` does.
async fn connect(url: &str) -> Result<Ws, tungstenite::Error> {
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(MAX_MESSAGE_SIZE);
    config.max_frame_size = Some(MAX_MESSAGE_SIZE);
    let (ws, _) =
        tokio_tungstenite::connect_async_tls_with_config(url, Some(config), true, None).await?;
    Ok(ws)
}

/// Echoes until the fuzzing server closes.
async fn run_case(url: &str) -> Result<(), tungstenite::Error> {
    let mut ws = connect(url).await?;
    while let Some(msg) = ws.next().await {
        match msg? {
            m @ (Message::Text(_) | Message::Binary(_)) => ws.send(m).await?,
            // Pongs are queued by tungstenite and go out with the next flush.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => ws.flush().await?,
            Message::Close(_) => {
                // Flushes the reply tungstenite queued; the server then closes the connection.
                let _ = SinkExt::close(&mut ws).await;
            }
        }
    }
    Ok(())
}
