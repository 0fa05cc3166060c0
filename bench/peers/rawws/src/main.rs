//! The physical reference of the benchmarks: WebSocket frames and nothing else.
//! `bench-rawws PORT` binds 127.0.0.1 and prints the address and the pid. It speaks just
//! enough of the Engine.IO / Socket.IO text for the load generator (an open packet, the
//! CONNECT reply, `42N["echo",P]` answered by `43N[P]` by slicing bytes, and
//! `42["broadcast",...]` sent unchanged to every connection), without parsing JSON, sessions,
//! heartbeats or namespaces. The hub gives every connection a refcount of the same payload;
//! each connection's writer flushes once per wake-up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

type Hub = Arc<Mutex<HashMap<u64, mpsc::Sender<Message>>>>;

const OPEN: &str = r#"0{"sid":"raw","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("usage: bench-rawws PORT");
    let workers = std::env::var("WORKERS")
        .ok()
        .and_then(|w| w.parse::<usize>().ok())
        .filter(|&w| w > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let rt = if workers == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()?
    };
    rt.block_on(run(port))
}

async fn run(port: u16) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on {} pid {}", listener.local_addr()?, std::process::id());
    let hub: Hub = Arc::default();
    let ids = Arc::new(AtomicU64::new(0));
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => r?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        let hub = hub.clone();
        let id = ids.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let config = WebSocketConfig::default()
                .read_buffer_size(4096)
                .write_buffer_size(0);
            let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await
            else {
                return;
            };
            connection(id, ws, hub.clone()).await;
            hub.lock().unwrap().remove(&id);
        });
    }
}

async fn connection(
    id: u64,
    ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    hub: Hub,
) {
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Message>(1024);
    hub.lock().unwrap().insert(id, tx.clone());
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.feed(m).await.is_err() {
                return;
            }
            while let Ok(m) = rx.try_recv() {
                if sink.feed(m).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    let _ = tx.send(Message::text(OPEN)).await;
    while let Some(Ok(msg)) = stream.next().await {
        let Message::Text(text) = msg else { continue };
        let s = text.as_str();
        if s == "40" {
            let _ = tx.send(Message::text(r#"40{"sid":"raw"}"#)).await;
        } else if s == "2" {
            let _ = tx.send(Message::text("3")).await;
        } else if s.starts_with("42[\"broadcast\",") {
            let targets: Vec<_> = hub.lock().unwrap().values().cloned().collect();
            for t in targets {
                let _ = t.try_send(Message::Text(text.clone()));
            }
        } else if let Some(rest) = s.strip_prefix("42") {
            // 42N["echo",P] -> 43N[P]
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if let Some(args) = rest[digits..].strip_prefix("[\"echo\",") {
                let reply = format!("43{}[{}", &rest[..digits], args);
                let _ = tx.send(Message::Text(Utf8Bytes::from(reply))).await;
            }
        }
    }
    drop(tx);
    writer.abort();
}
