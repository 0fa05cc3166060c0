//! Raw Engine.IO clients (WebSocket and polling) that send Socket.IO packets as given.

use std::net::SocketAddr;

use ferrio_testkit::http;
use ferrio_testkit::within;
use ferrio_testkit::ws::{self, Read, Ws};
use serde_json::Value;

/// One Engine.IO message.
#[derive(Clone, Debug)]
pub enum Frame {
    Text(String),
    Bin(Vec<u8>),
}

pub fn t(s: &str) -> Frame {
    Frame::Text(s.to_owned())
}

pub fn b(bytes: &[u8]) -> Frame {
    Frame::Bin(bytes.to_vec())
}

/// A raw Engine.IO client over WebSocket.
pub struct RawWs(pub Ws);

impl RawWs {
    pub async fn open(addr: SocketAddr) -> RawWs {
        let mut ws = ws::connect(addr, "/socket.io/?EIO=4&transport=websocket").await;
        match ws::read(&mut ws).await {
            Read::Text(open) if open.starts_with("0{") => {}
            other => panic!("expected the open packet, got {other:?}"),
        }
        RawWs(ws)
    }

    pub async fn send(&mut self, frame: &Frame) {
        match frame {
            Frame::Text(s) => ws::send_text(&mut self.0, &format!("4{s}")).await,
            Frame::Bin(bytes) => ws::send_binary(&mut self.0, bytes).await,
        }
    }

    /// The next Socket.IO packet (pings answered).
    pub async fn recv(&mut self) -> String {
        match within(5, "a packet", ws::read_text_answering_pings(&mut self.0)).await {
            Read::Text(s) => s
                .strip_prefix('4')
                .unwrap_or_else(|| panic!("not a message: {s}"))
                .to_owned(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Joins `/`; returns the socket id.
    pub async fn join(&mut self) -> String {
        self.send(&t("0")).await;
        let reply = self.recv().await;
        let json: Value = serde_json::from_str(reply.strip_prefix('0').expect("CONNECT reply"))
            .expect("CONNECT payload");
        json["sid"].as_str().expect("sid").to_owned()
    }

    pub async fn echo(&mut self, what: &str) {
        self.send(&t(&format!(r#"2["echo","{what}"]"#))).await;
        assert_eq!(self.recv().await, format!(r#"2["echo","{what}"]"#));
    }

    pub async fn closed(&mut self, case: &str) {
        let closed = within(
            5,
            &format!("the close after {case}"),
            ws::closed(&mut self.0),
        )
        .await;
        assert!(closed, "{case}");
    }
}

/// A raw Engine.IO client over polling.
pub struct RawPolling {
    addr: SocketAddr,
    path: String,
}

impl RawPolling {
    pub async fn open(addr: SocketAddr) -> RawPolling {
        let res = http::get(addr, "/socket.io/?EIO=4&transport=polling").await;
        let body = res.text();
        let open: Value = serde_json::from_str(body.strip_prefix('0').expect("open packet"))
            .expect("open payload");
        let sid = open["sid"].as_str().expect("sid");
        RawPolling {
            addr,
            path: format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
        }
    }

    /// POSTs the frames as one payload (binary as `b<base64>`).
    pub async fn send(&mut self, frames: &[Frame]) {
        let payload: Vec<String> = frames
            .iter()
            .map(|f| match f {
                Frame::Text(s) => format!("4{s}"),
                Frame::Bin(bytes) => format!("b{}", base64(bytes)),
            })
            .collect();
        let res = http::post(self.addr, &self.path, payload.join("\x1e")).await;
        // The server may already have closed the session when the POST is answered.
        assert!(
            res.status == 200 || res.status == 400,
            "POST: {} {}",
            res.status,
            res.text()
        );
    }

    /// POSTs an Engine.IO payload as given.
    pub async fn post_raw(&mut self, payload: &str) {
        let res = http::post(self.addr, &self.path, payload.to_owned()).await;
        assert_eq!(res.status, 200, "POST: {}", res.text());
    }

    pub async fn recv(&mut self) -> http::Response {
        within(15, "a GET", http::get(self.addr, &self.path)).await
    }

    pub async fn join(&mut self) {
        self.send(&[t("0")]).await;
        let res = self.recv().await;
        assert!(res.text().starts_with("40{"), "{}", res.text());
    }

    pub async fn echo(&mut self, what: &str) {
        self.send(&[t(&format!(r#"2["echo","{what}"]"#))]).await;
        let res = self.recv().await;
        assert_eq!(res.text(), format!(r#"42["echo","{what}"]"#));
    }

    /// The session is gone: a GET gets 400, or the close packet.
    pub async fn closed(&mut self, case: &str) {
        let res = self.recv().await;
        let body = res.text();
        assert!(
            res.status == 400 || body.split('\x1e').any(|p| p == "1"),
            "{case}: the session is still open: {} {body}",
            res.status
        );
    }
}

pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
