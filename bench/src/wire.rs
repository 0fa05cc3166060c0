//! The generator's own minimal WebSocket client (RFC 6455) and HTTP/1.1 client: just what a
//! load generator needs, cheap enough that the generator is not the bottleneck. Frames are
//! parsed in place from one read buffer; client frames are masked (a fixed key: the server
//! cannot tell, and the XOR stays cheap).

use std::io;
use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest frame or HTTP body the generator accepts.
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// Opens a TCP connection with `TCP_NODELAY`.
pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Sends the upgrade request for `path_and_query` and checks for `101`.
pub async fn ws_handshake(stream: &mut TcpStream, host: &str, path: &str) -> io::Result<BytesMut> {
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await?;
    let mut buf = BytesMut::with_capacity(512);
    let head = read_head(stream, &mut buf).await?;
    if head.status != 101 {
        return Err(bad(format!("upgrade refused: {}", head.status)));
    }
    Ok(buf)
}

/// A WebSocket data frame as read.
pub struct WsFrame {
    /// Opcode (1 text, 2 binary, 8 close, 9 ping, 10 pong).
    pub opcode: u8,
    /// The payload.
    pub payload: BytesMut,
}

/// Reads one whole frame (no fragmentation: servers here send single frames).
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut BytesMut,
) -> io::Result<WsFrame> {
    loop {
        if let Some((opcode, header, len)) = parse_header(buf)? {
            if buf.len() >= header + len {
                buf.advance(header);
                let payload = buf.split_to(len);
                return Ok(WsFrame { opcode, payload });
            }
            buf.reserve(header + len - buf.len());
        } else if buf.capacity() - buf.len() < 64 {
            buf.reserve(256);
        }
        if r.read_buf(buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// The opcode, header length and payload length of the frame at the start of `buf`, once
/// the header is complete.
fn parse_header(buf: &[u8]) -> io::Result<Option<(u8, usize, usize)>> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    if b0 & 0x80 == 0 {
        return Err(bad("fragmented frame".into()));
    }
    let masked = b1 & 0x80 != 0;
    let (len, mut header) = match b1 & 0x7f {
        126 => match buf.get(2..4) {
            Some(b) => (u16::from_be_bytes([b[0], b[1]]) as usize, 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                (u64::from_be_bytes(a) as usize, 10)
            }
            None => return Ok(None),
        },
        n => (n as usize, 2),
    };
    if masked {
        header += 4;
    }
    if len > MAX_MESSAGE {
        return Err(bad(format!("frame of {len} bytes")));
    }
    Ok(Some((b0 & 0x0f, header, len)))
}

/// The fixed masking key of client frames.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Appends a masked text frame holding `payload` to `out`.
pub fn push_text(out: &mut Vec<u8>, payload: &[u8]) {
    push_frame(out, 0x1, payload);
}

/// Appends a masked frame.
pub fn push_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i & 3]));
}

/// Sends one masked text frame.
pub async fn send_text<W: AsyncWrite + Unpin>(w: &mut W, payload: &[u8]) -> io::Result<()> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    push_text(&mut out, payload);
    w.write_all(&out).await
}

/// The head of an HTTP response.
pub struct Head {
    /// Status code.
    pub status: u16,
    /// `Content-Length`, if any.
    pub content_length: Option<usize>,
    /// `Transfer-Encoding: chunked`.
    pub chunked: bool,
}

/// Reads a response head into `buf` and removes it from there.
async fn read_head<R: AsyncRead + Unpin>(r: &mut R, buf: &mut BytesMut) -> io::Result<Head> {
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.advance(end + 4);
            let mut lines = text.split("\r\n");
            let status = lines
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad(format!("bad status line in {text:?}")))?;
            let mut head = Head {
                status,
                content_length: None,
                chunked: false,
            };
            for line in lines {
                let Some((k, v)) = line.split_once(':') else {
                    continue;
                };
                let v = v.trim();
                if k.eq_ignore_ascii_case("content-length") {
                    head.content_length = v.parse().ok();
                } else if k.eq_ignore_ascii_case("transfer-encoding") {
                    head.chunked = v.to_ascii_lowercase().contains("chunked");
                }
            }
            return Ok(head);
        }
        if buf.len() > 64 * 1024 {
            return Err(bad("response head too long".into()));
        }
        buf.reserve(1024);
        if r.read_buf(buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// A keep-alive HTTP/1.1 connection for polling requests.
pub struct Http {
    stream: TcpStream,
    buf: BytesMut,
    host: String,
}

impl Http {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> io::Result<Http> {
        Ok(Http {
            stream: connect(addr).await?,
            buf: BytesMut::with_capacity(1024),
            host: addr.to_string(),
        })
    }

    /// `GET path`; the status and body.
    pub async fn get(&mut self, path: &str) -> io::Result<(u16, BytesMut)> {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.host);
        self.stream.write_all(req.as_bytes()).await?;
        self.response().await
    }

    /// `POST path` with a text body; the status and body.
    pub async fn post(&mut self, path: &str, body: &[u8]) -> io::Result<(u16, BytesMut)> {
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain;charset=UTF-8\r\n\
             Content-Length: {}\r\n\r\n",
            self.host,
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        self.stream.write_all(&req).await?;
        self.response().await
    }

    async fn response(&mut self) -> io::Result<(u16, BytesMut)> {
        let head = read_head(&mut self.stream, &mut self.buf).await?;
        let body = if head.chunked {
            let mut body = BytesMut::new();
            loop {
                let line = self.line().await?;
                let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                    .map_err(|_| bad(format!("bad chunk size {line:?}")))?;
                self.fill(size + 2).await?;
                body.extend_from_slice(&self.buf[..size]);
                self.buf.advance(size + 2);
                if size == 0 {
                    break body;
                }
                if body.len() > MAX_MESSAGE {
                    return Err(bad("body too long".into()));
                }
            }
        } else {
            let len = head.content_length.unwrap_or(0);
            if len > MAX_MESSAGE {
                return Err(bad("body too long".into()));
            }
            self.fill(len).await?;
            self.buf.split_to(len)
        };
        Ok((head.status, body))
    }

    async fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.advance(end + 2);
                return Ok(line);
            }
            self.read_more().await?;
        }
    }

    async fn fill(&mut self, n: usize) -> io::Result<()> {
        while self.buf.len() < n {
            self.buf.reserve(n - self.buf.len());
            self.read_more().await?;
        }
        Ok(())
    }

    async fn read_more(&mut self) -> io::Result<()> {
        if self.buf.capacity() - self.buf.len() < 256 {
            self.buf.reserve(1024);
        }
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// An `InvalidData` error.
pub fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_header_lengths() {
        for len in [0usize, 5, 125, 126, 300, 65535, 65536, 70000] {
            let payload = vec![b'a'; len];
            let mut out = Vec::new();
            push_text(&mut out, &payload);
            let (op, header, l) = parse_header(&out).unwrap().unwrap();
            assert_eq!((op, l), (1, len));
            assert_eq!(out.len(), header + len);
            let unmasked: Vec<u8> = out[header..]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ MASK[i & 3])
                .collect();
            assert_eq!(unmasked, payload);
        }
        assert!(parse_header(&[0x81]).unwrap().is_none());
        assert!(parse_header(&[0x01, 0x00]).is_err());
    }
}
