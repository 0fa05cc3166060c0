//! Socket.IO v5 over Engine.IO v4, spoken directly: WebSocket and long-polling connections to
//! the main namespace `/`.

use std::io;
use std::net::SocketAddr;

use bytes::BytesMut;
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::wire::{self, Http, bad};

/// The Engine.IO path every server of the benchmark serves.
pub const PATH: &str = "/socket.io/";

/// A WebSocket Socket.IO connection, joined to `/`.
pub struct WsConn {
    /// The read half.
    pub r: OwnedReadHalf,
    /// The write half.
    pub w: OwnedWriteHalf,
    /// Bytes read and not yet parsed.
    pub buf: BytesMut,
}

impl WsConn {
    /// Connects over WebSocket (no polling first) and joins `/`.
    pub async fn connect(addr: SocketAddr) -> io::Result<WsConn> {
        let mut stream: TcpStream = wire::connect(addr).await?;
        let path = format!("{PATH}?EIO=4&transport=websocket");
        let buf = wire::ws_handshake(&mut stream, &addr.to_string(), &path).await?;
        let (r, w) = stream.into_split();
        let mut conn = WsConn { r, w, buf };
        let open = conn.next_text().await?;
        if open.first() != Some(&b'0') {
            return Err(bad(format!("expected an open packet, got {open:?}")));
        }
        wire::send_text(&mut conn.w, b"40").await?;
        loop {
            let msg = conn.next_text().await?;
            if msg.starts_with(b"40") {
                return Ok(conn);
            }
            if msg.starts_with(b"44") {
                return Err(bad(format!("CONNECT refused: {msg:?}")));
            }
        }
    }

    /// The next Engine.IO packet other than a ping (which is answered here).
    pub async fn next_text(&mut self) -> io::Result<BytesMut> {
        next_text(&mut self.r, &mut self.buf, &mut self.w).await
    }
}

/// Reads frames until a data packet arrives: WebSocket pings and Engine.IO pings are answered
/// on `w`, a close frame is an error.
pub async fn next_text<W: AsyncWrite + Unpin>(
    r: &mut OwnedReadHalf,
    buf: &mut BytesMut,
    w: &mut W,
) -> io::Result<BytesMut> {
    loop {
        let frame = wire::read_frame(r, buf).await?;
        match frame.opcode {
            0x1 | 0x2 => {
                if &frame.payload[..] == b"2" {
                    wire::send_text(w, b"3").await?;
                    continue;
                }
                return Ok(frame.payload);
            }
            0x8 => return Err(io::ErrorKind::ConnectionReset.into()),
            0x9 => {
                let mut out = Vec::new();
                wire::push_frame(&mut out, 0xA, &frame.payload);
                tokio::io::AsyncWriteExt::write_all(w, &out).await?;
            }
            _ => {}
        }
    }
}

/// Whether `frame` is an Engine.IO ping (`2`).
pub fn is_ping(frame: &[u8]) -> bool {
    frame == b"2"
}

/// A long-polling Socket.IO connection, joined to `/`: one keep-alive HTTP connection for
/// GETs and one for POSTs, as browsers do.
pub struct PollConn {
    /// Connection for the long-polling GETs.
    pub get: Http,
    /// Connection for the POSTs.
    pub post: Http,
    /// `PATH?EIO=4&transport=polling&sid=...`.
    pub url: String,
}

impl PollConn {
    /// Opens a polling session and joins `/`.
    pub async fn connect(addr: SocketAddr) -> io::Result<PollConn> {
        let mut get = Http::connect(addr).await?;
        let (status, body) = get.get(&format!("{PATH}?EIO=4&transport=polling")).await?;
        if status != 200 || body.first() != Some(&b'0') {
            return Err(bad(format!("handshake: {status} {body:?}")));
        }
        let sid = json_str(&body, "sid").ok_or_else(|| bad("no sid".into()))?;
        let url = format!("{PATH}?EIO=4&transport=polling&sid={sid}");
        let mut conn = PollConn {
            get,
            post: Http::connect(addr).await?,
            url,
        };
        conn.send(b"40").await?;
        loop {
            let packets = conn.poll().await?;
            if packets.iter().any(|p| p.starts_with(b"40")) {
                return Ok(conn);
            }
        }
    }

    /// POSTs one packet.
    pub async fn send(&mut self, packet: &[u8]) -> io::Result<()> {
        let (status, body) = self.post.post(&self.url, packet).await?;
        if status != 200 {
            return Err(bad(format!("POST: {status} {body:?}")));
        }
        Ok(())
    }

    /// One GET: the packets it carried, pings answered.
    pub async fn poll(&mut self) -> io::Result<Vec<Vec<u8>>> {
        let (status, body) = self.get.get(&self.url).await?;
        if status != 200 {
            return Err(bad(format!("GET: {status} {body:?}")));
        }
        let mut out = Vec::new();
        for p in body[..].split(|&b| b == 0x1e) {
            if is_ping(p) {
                self.send(b"3").await?;
            } else if p == b"1" {
                return Err(io::ErrorKind::ConnectionReset.into());
            } else if p != b"6" {
                out.push(p.to_vec());
            }
        }
        Ok(out)
    }
}

/// The string value of `"key":"..."` in a JSON text (enough for handshake fields).
fn json_str(text: &[u8], key: &str) -> Option<String> {
    let text = std::str::from_utf8(text).ok()?;
    let pat = format!("\"{key}\":\"");
    let start = text.find(&pat)? + pat.len();
    let end = text[start..].find('"')? + start;
    Some(text[start..end].to_owned())
}

/// `42<id>["echo","<payload>"]`.
pub fn echo_packet(id: u64, payload: &str) -> Vec<u8> {
    format!("42{id}[\"echo\",\"{payload}\"]").into_bytes()
}

/// Whether `msg` is the ack `43<id>[...]`.
pub fn is_ack(msg: &[u8], id: u64) -> bool {
    let Some(rest) = msg.strip_prefix(b"43") else {
        return false;
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits])
        .ok()
        .and_then(|d| d.parse::<u64>().ok())
        == Some(id)
        && rest.get(digits) == Some(&b'[')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets() {
        assert_eq!(echo_packet(7, "ab"), b"427[\"echo\",\"ab\"]");
        assert!(is_ack(b"437[\"ab\"]", 7));
        assert!(!is_ack(b"4371[\"ab\"]", 7));
        assert!(!is_ack(b"427[\"ab\"]", 7));
        assert_eq!(
            json_str(br#"0{"sid":"abc","upgrades":[]}"#, "sid").as_deref(),
            Some("abc")
        );
    }
}
