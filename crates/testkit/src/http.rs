//! A minimal HTTP/1.1 client: one request per connection, a kept-alive connection for
//! requests one after another ([`Conn`]), and raw bytes for malformed input.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A complete response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Response {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header as text, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends one request on a fresh connection and reads the whole response.
pub async fn request(
    addr: SocketAddr,
    method: Method,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Response {
    Conn::open(addr)
        .await
        .request(method, path_and_query, headers, body)
        .await
}

/// `GET` with no body.
pub async fn get(addr: SocketAddr, path_and_query: &str) -> Response {
    request(addr, Method::GET, path_and_query, &[], Bytes::new()).await
}

/// `POST` with a text body.
pub async fn post(addr: SocketAddr, path_and_query: &str, body: impl Into<Bytes>) -> Response {
    request(
        addr,
        Method::POST,
        path_and_query,
        &[("content-type", "text/plain;charset=UTF-8")],
        body,
    )
    .await
}

/// One HTTP/1.1 connection kept alive for requests sent one after another, as a browser or
/// Node's HTTP agent reuses its connection for the polls of a session (a new connection per
/// request makes thousands of connects a second under load, and with them TIME_WAIT sockets and
/// an overflowing listen queue). Dropping it closes the connection.
pub struct Conn {
    addr: SocketAddr,
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    task: tokio::task::JoinHandle<()>,
}

impl Conn {
    /// Connects to `addr`.
    pub async fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("http handshake");
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        Conn { addr, sender, task }
    }

    /// Sends one request on this connection and reads the whole response.
    pub async fn request(
        &mut self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Response {
        self.sender.ready().await.expect("connection ready");
        let mut req = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header("host", self.addr.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body.into())).expect("request");
        let res = self.sender.send_request(req).await.expect("send request");
        let (parts, body) = res.into_parts();
        let body = body.collect().await.expect("read body").to_bytes();
        Response {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// `GET` with no body.
    pub async fn get(&mut self, path_and_query: &str) -> Response {
        self.request(Method::GET, path_and_query, &[], Bytes::new())
            .await
    }

    /// `POST` with a text body.
    pub async fn post(&mut self, path_and_query: &str, body: impl Into<Bytes>) -> Response {
        self.request(
            Method::POST,
            path_and_query,
            &[("content-type", "text/plain;charset=UTF-8")],
            body,
        )
        .await
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // The task owns the socket: ending it closes the connection now, not when hyper
        // next notices the sender is gone.
        self.task.abort();
    }
}

/// Writes raw bytes and reads until the server closes the connection or `limit` bytes came.
pub async fn raw(addr: SocketAddr, bytes: &[u8], limit: usize) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // The server may answer and close before reading everything: ignore write errors.
    let _ = stream.write_all(bytes).await;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < limit {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}
