//! A raw WebSocket client for protocol tests.

use std::net::SocketAddr;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{WebSocketStream, client_async};

pub use tokio_tungstenite::tungstenite;

/// A client WebSocket.
pub type Ws = WebSocketStream<TcpStream>;

/// What the next read gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Bytes),
    /// A close frame with its code (1005 when it had none).
    Close(u16),
    /// The connection ended without a close frame, or failed.
    Ended,
}

/// Opens a WebSocket to `path_and_query` with extra headers.
pub async fn connect_with(
    addr: SocketAddr,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> Result<Ws, tungstenite::Error> {
    connect_with_response(addr, path_and_query, headers)
        .await
        .map(|(ws, _)| ws)
}

/// As [`connect_with`], with the headers of the server's `101` answer.
pub async fn connect_with_response(
    addr: SocketAddr,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> Result<(Ws, http::HeaderMap), tungstenite::Error> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    // Small frames sent back to back must not wait for the peer's delayed ACK (Nagle).
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let mut req = format!("ws://{addr}{path_and_query}")
        .into_client_request()
        .expect("request");
    for (k, v) in headers {
        req.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
            v.parse().expect("header value"),
        );
    }
    client_async(req, stream)
        .await
        .map(|(ws, res)| (ws, res.headers().clone()))
}

/// Opens a WebSocket to `path_and_query` over a connected `stream` (whose socket options the
/// caller chose: a small receive buffer, a zero linger).
pub async fn connect_over(
    stream: TcpStream,
    addr: SocketAddr,
    path_and_query: &str,
) -> Result<Ws, tungstenite::Error> {
    let req = format!("ws://{addr}{path_and_query}")
        .into_client_request()
        .expect("request");
    client_async(req, stream).await.map(|(ws, _)| ws)
}

/// Opens a WebSocket to `path_and_query`.
pub async fn connect(addr: SocketAddr, path_and_query: &str) -> Ws {
    connect_with(addr, path_and_query, &[])
        .await
        .expect("websocket handshake")
}

/// Sends a text frame.
pub async fn send_text(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.expect("send text");
}

/// Sends a binary frame.
pub async fn send_binary(ws: &mut Ws, data: &[u8]) {
    ws.send(Message::binary(data.to_vec()))
        .await
        .expect("send binary");
}

/// Reads the next data or close frame (pings and pongs are skipped).
pub async fn read(ws: &mut Ws) -> Read {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Read::Text(t.to_string()),
            Some(Ok(Message::Binary(b))) => return Read::Binary(b),
            Some(Ok(Message::Close(c))) => return Read::Close(c.map_or(1005, |c| c.code.into())),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Read::Ended,
        }
    }
}

/// Reads the next text frame, skipping Engine.IO pings (`2`) and answering them with `3`.
pub async fn read_text_answering_pings(ws: &mut Ws) -> Read {
    loop {
        match read(ws).await {
            Read::Text(t) if t == "2" => send_text(ws, "3").await,
            other => return other,
        }
    }
}

/// Reads until the connection ends; true if it did (a close frame or the end of the stream).
pub async fn closed(ws: &mut Ws) -> bool {
    loop {
        match read(ws).await {
            Read::Close(_) | Read::Ended => return true,
            _ => continue,
        }
    }
}
