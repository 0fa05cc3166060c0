//! A small server-side WebSocket codec (RFC 6455, with permessage-deflate of RFC 7692 when it
//! was negotiated, see `deflate`), written for an Engine.IO server with many mostly idle
//! connections:
//!
//! - **Nothing is buffered while idle.** A read goes to a stack buffer first; bytes land on
//!   the heap only while a frame is incomplete, and the read buffer is released as soon as it
//!   is empty. The write buffer likewise exists only between `start_send` and the flush that
//!   empties it. No buffer is zero-filled.
//! - **One write per wake-up.** Frames passed to `start_send` are appended to one buffer and
//!   written by the next `poll_flush`; a `poll_ready` past `write_buffer_size` writes first.
//! - **Server frames are not checked again.** Text frames handed to the codec are UTF-8 by
//!   construction (Engine.IO packets are built from Rust strings); they are framed as they
//!   are, so a broadcast costs a header and a copy per recipient.
//!
//! What a client must not send closes the connection with the code RFC 6455 gives: unmasked
//! frames, RSV bits (RSV1 is allowed on the first frame of a data message when
//! permessage-deflate was negotiated), unknown opcodes, fragmented or long control frames, a
//! continuation without a start, a 64-bit length with its top bit set (1002), invalid UTF-8
//! in a text message or a close reason, or invalid compressed data (1007), a frame or message
//! over the limit, the inflated size of a compressed message included (1009). Pings are
//! answered with a pong carrying the same payload; a close frame is answered with a close.

use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use super::deflate::{Deflate, InflateError, Negotiated};

/// Bytes read at once when no frame is pending (on the stack, never zero-filled).
const STACK_READ: usize = 8 * 1024;
/// Most bytes read at once into a pending frame beyond what it still needs.
const READ_CHUNK: usize = 16 * 1024;

/// A WebSocket message, as read or to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    /// A text message (UTF-8, checked on input only).
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping (answered by the codec).
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// A close frame.
    Close(Option<CloseFrame>),
}

/// A message to write, and whether it may be compressed (permessage-deflate, when negotiated
/// and the message is at least the threshold); `compress(false)` sends it as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outbound {
    /// The message.
    pub(crate) msg: Message,
    /// May be compressed.
    pub(crate) compress: bool,
}

impl From<Message> for Outbound {
    fn from(msg: Message) -> Self {
        Outbound {
            msg,
            compress: true,
        }
    }
}

/// The code and reason of a close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CloseFrame {
    /// Status code.
    pub(crate) code: CloseCode,
    /// Reason (UTF-8, at most 123 bytes).
    pub(crate) reason: String,
}

/// The close codes this server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseCode {
    /// 1000.
    Normal,
    /// 1002.
    Protocol,
    /// 1007.
    Invalid,
    /// 1009.
    Size,
    /// Any other code, as received.
    Other(u16),
}

impl CloseCode {
    fn as_u16(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::Protocol => 1002,
            CloseCode::Invalid => 1007,
            CloseCode::Size => 1009,
            CloseCode::Other(c) => c,
        }
    }

    fn from_u16(c: u16) -> CloseCode {
        match c {
            1000 => CloseCode::Normal,
            1002 => CloseCode::Protocol,
            1007 => CloseCode::Invalid,
            1009 => CloseCode::Size,
            c => CloseCode::Other(c),
        }
    }
}

/// Why reading or writing failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WsError {
    /// A frame or message over the size limit.
    #[error("message too big: {0} bytes")]
    Capacity(u64),
    /// A frame the protocol forbids.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// Invalid UTF-8 in a text message or a close reason.
    #[error("invalid UTF-8")]
    Utf8,
    /// A compressed message that does not inflate.
    #[error("invalid compressed data")]
    Inflate,
    /// A compressed message inflating past the size limit (a zip bomb, or just too big).
    #[error("compressed message inflates past the limit of {0} bytes")]
    InflatedCapacity(usize),
    /// The write buffer is past its bound.
    #[error("write buffer full")]
    WriteBufferFull,
    /// Sending after the close frame.
    #[error("connection closed")]
    Closed,
    /// The socket failed.
    #[error("io: {0}")]
    Io(#[from] io::Error),
}

/// Limits of one connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Largest message (all fragments), and largest frame.
    pub(crate) max_message: usize,
    /// Buffered output past which `poll_ready` writes before taking more.
    pub(crate) write_buffer_size: usize,
    /// Buffered output past which `start_send` fails.
    pub(crate) max_write_buffer: usize,
}

/// A server-side WebSocket over `S`, as a `Stream` of messages and a `Sink` of messages.
pub(crate) struct Codec<S> {
    io: S,
    limits: Limits,
    /// Bytes of an incomplete frame (empty, without allocation, when idle).
    rbuf: BytesMut,
    /// The fragments of a message in progress: its opcode, payload so far (inflated when
    /// compressed), (text) how many leading bytes are known to be whole UTF-8 characters, and
    /// whether it is compressed.
    partial: Option<(u8, Vec<u8>, usize, bool)>,
    /// permessage-deflate, when negotiated.
    deflate: Option<Box<Deflate>>,
    /// Encoded frames not yet written (empty, without allocation, when flushed).
    wbuf: Vec<u8>,
    /// Bytes of `wbuf` already written.
    written: usize,
    /// A close frame was queued (nothing may follow it).
    close_sent: bool,
    /// A close frame or the end of the stream was read.
    read_done: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Codec<S> {
    /// A codec over an upgraded connection.
    pub(crate) fn new(io: S, limits: Limits, deflate: Option<Negotiated>) -> Self {
        Codec {
            io,
            limits,
            rbuf: BytesMut::new(),
            partial: None,
            deflate: deflate.map(|d| Box::new(Deflate::new(d))),
            wbuf: Vec::new(),
            written: 0,
            close_sent: false,
            read_done: false,
        }
    }

    /// Sends a close frame (once), flushes, and shuts the write side down.
    pub(crate) async fn close(&mut self, frame: Option<CloseFrame>) -> Result<(), WsError> {
        if !self.close_sent {
            self.queue(Message::Close(frame).into())?;
        }
        std::future::poll_fn(|cx| self.poll_write_all(cx)).await?;
        tokio::io::AsyncWriteExt::shutdown(&mut self.io).await?;
        Ok(())
    }

    /// Heap bytes held by the buffers (for tests).
    #[cfg(test)]
    fn buffered_capacity(&self) -> usize {
        self.rbuf.capacity() + self.wbuf.capacity()
    }

    /// Whether the zlib streams exist (for tests).
    #[cfg(test)]
    pub(crate) fn deflate_streams(&self) -> Option<(bool, bool)> {
        self.deflate.as_ref().map(|d| d.streams())
    }

    /// Encodes `out` into the write buffer.
    fn queue(&mut self, out: Outbound) -> Result<(), WsError> {
        let Outbound { msg, compress } = out;
        if self.close_sent {
            return Err(WsError::Closed);
        }
        let (opcode, payload): (u8, &[u8]) = match &msg {
            Message::Text(b) => (0x1, b),
            Message::Binary(b) => (0x2, b),
            Message::Ping(b) => (0x9, b),
            Message::Pong(b) => (0xA, b),
            Message::Close(_) => (0x8, &[]),
        };
        let pending = self.wbuf.len() - self.written;
        if pending + payload.len() > self.limits.max_write_buffer {
            return Err(WsError::WriteBufferFull);
        }
        if let Message::Close(frame) = &msg {
            self.close_sent = true;
            let mut body = Vec::new();
            if let Some(f) = frame {
                body.extend_from_slice(&f.code.as_u16().to_be_bytes());
                let mut end = f.reason.len().min(123);
                while !f.reason.is_char_boundary(end) {
                    end -= 1;
                }
                body.extend_from_slice(&f.reason.as_bytes()[..end]);
            }
            push_frame(&mut self.wbuf, 0x8, &body);
        } else if let Some(d) = self.deflate.as_mut()
            && compress
            && let Message::Text(data) | Message::Binary(data) = &msg
            && d.wants(data.len())
        {
            let packed = d.compress(data);
            // RSV1: a compressed message.
            push_frame(&mut self.wbuf, 0x40 | opcode, &packed);
        } else {
            push_frame(&mut self.wbuf, opcode, payload);
        }
        Ok(())
    }

    /// Writes the whole write buffer; releases it once empty.
    fn poll_write_all(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        while self.written < self.wbuf.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.wbuf[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero).into()));
            }
            self.written += n;
        }
        self.wbuf = Vec::new();
        self.written = 0;
        ready!(Pin::new(&mut self.io).poll_flush(cx))?;
        Poll::Ready(Ok(()))
    }

    /// Reads more bytes into `rbuf`; `Ok(false)` at the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>, need: usize) -> Poll<Result<bool, WsError>> {
        if self.rbuf.is_empty() {
            // Idle: read on the stack, keep only what arrived.
            let mut stack = [MaybeUninit::<u8>::uninit(); STACK_READ];
            let mut buf = ReadBuf::uninit(&mut stack);
            ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf))?;
            if buf.filled().is_empty() {
                return Poll::Ready(Ok(false));
            }
            self.rbuf = BytesMut::from(buf.filled());
            return Poll::Ready(Ok(true));
        }
        let want = need.saturating_sub(self.rbuf.len()).clamp(1, READ_CHUNK);
        self.rbuf.reserve(want);
        let read = std::pin::pin!(self.io.read_buf(&mut self.rbuf)).poll(cx);
        let n = ready!(read)?;
        Poll::Ready(Ok(n > 0))
    }

    /// The next message from the bytes in `rbuf`, if a whole frame is there; the number of
    /// bytes still missing otherwise.
    fn parse(&mut self) -> Result<Result<Option<Message>, usize>, WsError> {
        let rsv1_ok = self.deflate.is_some();
        let Some(h) = parse_header(&self.rbuf, self.limits.max_message, rsv1_ok)? else {
            return Ok(Err(14));
        };
        let total = h.header_len + h.len;
        if self.rbuf.len() < total {
            return Ok(Err(total));
        }
        self.rbuf.advance(h.header_len);
        let mut payload = self.rbuf.split_to(h.len);
        if self.rbuf.is_empty() {
            // Release the buffer: an idle connection holds none.
            self.rbuf = BytesMut::new();
        }
        apply_mask(&mut payload, h.mask);
        match h.opcode {
            0x1 | 0x2 => {
                if self.partial.is_some() {
                    return Err(WsError::Protocol("new message inside a fragmented one"));
                }
                if h.rsv1 {
                    let mut data = Vec::new();
                    self.inflate(&payload, h.fin, &mut data)?;
                    if h.fin {
                        return message(h.opcode, Bytes::from(data)).map(|m| Ok(Some(m)));
                    }
                    let checked = check_text_prefix(h.opcode, &data, 0)?;
                    self.partial = Some((h.opcode, data, checked, true));
                    return Ok(Ok(None));
                }
                if h.fin {
                    return message(h.opcode, payload.freeze()).map(|m| Ok(Some(m)));
                }
                let checked = check_text_prefix(h.opcode, &payload, 0)?;
                self.partial = Some((h.opcode, payload.to_vec(), checked, false));
                Ok(Ok(None))
            }
            0x0 => {
                let Some((opcode, mut data, checked, compressed)) = self.partial.take() else {
                    return Err(WsError::Protocol("continuation without a message"));
                };
                if compressed {
                    self.inflate(&payload, h.fin, &mut data)?;
                } else {
                    let size = data.len() + payload.len();
                    if size > self.limits.max_message {
                        return Err(WsError::Capacity(size as u64));
                    }
                    data.extend_from_slice(&payload);
                }
                if h.fin {
                    return message(opcode, Bytes::from(data)).map(|m| Ok(Some(m)));
                }
                // Fail fast: invalid UTF-8 closes the connection at the fragment holding it.
                let checked = check_text_prefix(opcode, &data, checked)?;
                self.partial = Some((opcode, data, checked, compressed));
                Ok(Ok(None))
            }
            0x8 => {
                self.read_done = true;
                let frame = close_frame(&payload)?;
                if !self.close_sent {
                    // Answer with the same code (RFC 6455 5.5.1).
                    let reply = frame.as_ref().map(|f| CloseFrame {
                        code: f.code,
                        reason: String::new(),
                    });
                    self.queue(Message::Close(reply).into())?;
                }
                Ok(Ok(Some(Message::Close(frame))))
            }
            0x9 => {
                let payload = payload.freeze();
                if !self.close_sent {
                    self.queue(Message::Pong(payload.clone()).into())?;
                }
                Ok(Ok(Some(Message::Ping(payload))))
            }
            0xA => Ok(Ok(Some(Message::Pong(payload.freeze())))),
            _ => Err(WsError::Protocol("unknown opcode")),
        }
    }
}

impl<S> Codec<S> {
    /// Inflates one fragment of a compressed message onto `data`, within the message limit.
    fn inflate(&mut self, payload: &[u8], fin: bool, data: &mut Vec<u8>) -> Result<(), WsError> {
        let max = self.limits.max_message;
        let Some(d) = self.deflate.as_mut() else {
            return Err(WsError::Protocol("reserved bits set"));
        };
        d.decompress(payload, fin, data, max).map_err(|e| match e {
            InflateError::TooBig => WsError::InflatedCapacity(max),
            InflateError::Invalid => WsError::Inflate,
        })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for Codec<S> {
    type Item = Result<Message, WsError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.read_done {
                return Poll::Ready(None);
            }
            let need = match this.parse() {
                Ok(Ok(Some(m))) => return Poll::Ready(Some(Ok(m))),
                Ok(Ok(None)) => continue,
                Ok(Err(need)) => need,
                Err(e) => {
                    this.read_done = true;
                    return Poll::Ready(Some(Err(e)));
                }
            };
            match ready!(this.poll_fill(cx, need)) {
                Ok(true) => {}
                Ok(false) => {
                    this.read_done = true;
                    return Poll::Ready(None);
                }
                Err(e) => {
                    this.read_done = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Outbound> for Codec<S> {
    type Error = WsError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let this = &mut *self;
        if this.wbuf.len() - this.written > this.limits.write_buffer_size {
            ready!(this.poll_write_all(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(mut self: Pin<&mut Self>, out: Outbound) -> Result<(), WsError> {
        self.queue(out)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        self.poll_write_all(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        let this = &mut *self;
        if !this.close_sent {
            this.queue(Message::Close(None).into())?;
        }
        ready!(this.poll_write_all(cx))?;
        ready!(Pin::new(&mut this.io).poll_shutdown(cx))?;
        Poll::Ready(Ok(()))
    }
}

/// A parsed frame header.
struct Header {
    fin: bool,
    /// A compressed message (permessage-deflate).
    rsv1: bool,
    opcode: u8,
    mask: [u8; 4],
    header_len: usize,
    len: usize,
}

/// The header at the start of `buf`, once complete; errors for what a client must not send.
/// `rsv1_ok`: permessage-deflate was negotiated (RSV1 marks the first frame of a compressed
/// data message).
fn parse_header(buf: &[u8], max: usize, rsv1_ok: bool) -> Result<Option<Header>, WsError> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0f;
    let rsv1 = b0 & 0x40 != 0;
    if b0 & 0x30 != 0 || (rsv1 && !(rsv1_ok && matches!(opcode, 0x1 | 0x2))) {
        return Err(WsError::Protocol("reserved bits set"));
    }
    if !matches!(opcode, 0x0 | 0x1 | 0x2 | 0x8 | 0x9 | 0xA) {
        return Err(WsError::Protocol("unknown opcode"));
    }
    if b1 & 0x80 == 0 {
        return Err(WsError::Protocol("unmasked frame from the client"));
    }
    let (len, at) = match b1 & 0x7f {
        126 => match buf.get(2..4) {
            Some(&[a, b]) => (u64::from(u16::from_be_bytes([a, b])), 4),
            _ => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                let len = u64::from_be_bytes(a);
                if len >> 63 != 0 {
                    return Err(WsError::Protocol("length with the top bit set"));
                }
                (len, 10)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if opcode >= 0x8 && (!fin || len > 125) {
        return Err(WsError::Protocol("fragmented or long control frame"));
    }
    if len > max as u64 {
        return Err(WsError::Capacity(len));
    }
    let Some(m) = buf.get(at..at + 4) else {
        return Ok(None);
    };
    Ok(Some(Header {
        fin,
        rsv1,
        opcode,
        mask: [m[0], m[1], m[2], m[3]],
        header_len: at + 4,
        // `len <= max`, a usize.
        len: len as usize,
    }))
}

/// A complete data message; text is checked for UTF-8.
fn message(opcode: u8, payload: Bytes) -> Result<Message, WsError> {
    if opcode == 0x1 {
        std::str::from_utf8(&payload).map_err(|_| WsError::Utf8)?;
        Ok(Message::Text(payload))
    } else {
        Ok(Message::Binary(payload))
    }
}

/// For an unfinished text message: checks the bytes after the first `checked` (already
/// whole characters) and returns how many leading bytes are now known whole; a character
/// cut at the end is not an error yet. Each byte is checked about once.
fn check_text_prefix(opcode: u8, data: &[u8], checked: usize) -> Result<usize, WsError> {
    if opcode != 0x1 {
        return Ok(checked);
    }
    let rest = data.get(checked..).unwrap_or_default();
    match std::str::from_utf8(rest) {
        Ok(_) => Ok(data.len()),
        Err(e) if e.error_len().is_none() => Ok(checked + e.valid_up_to()),
        Err(_) => Err(WsError::Utf8),
    }
}

/// The code and reason of a received close frame, checked as RFC 6455 7.4 says.
fn close_frame(payload: &[u8]) -> Result<Option<CloseFrame>, WsError> {
    match payload {
        [] => Ok(None),
        [_] => Err(WsError::Protocol("close frame of one byte")),
        [a, b, reason @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            let valid = matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999);
            if !valid {
                return Err(WsError::Protocol("invalid close code"));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| WsError::Utf8)?;
            Ok(Some(CloseFrame {
                code: CloseCode::from_u16(code),
                reason: reason.to_owned(),
            }))
        }
    }
}

/// Appends an unmasked server frame (`opcode` may carry RSV1, `0x40`).
pub(crate) fn push_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    let len = payload.len();
    out.reserve(len + 10);
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(l) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&l.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

/// XORs `data` with the masking key, eight bytes at a time.
fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    let m = u32::from_ne_bytes(mask);
    let wide = u64::from(m) | (u64::from(m) << 32);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        c.copy_from_slice(&(u64::from_ne_bytes(w) ^ wide).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

#[cfg(test)]
mod tests;
