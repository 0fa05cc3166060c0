//! The HTTP long-polling payload codec (v4): packets joined by the record separator `\x1e`,
//! binary messages as `b<base64>`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};

use super::{DecodeError, Frame};

/// The record separator between packets.
pub const SEPARATOR: u8 = 0x1e;

/// Decodes a polling body into frames, at most `max_packets` of them.
///
/// Text records are slices of `body` (no copy); `b` records are base64-decoded into binary
/// frames. Each record still has to go through [`super::Packet::decode`].
pub fn decode(body: Bytes, max_packets: usize) -> Result<Vec<Frame>, DecodeError> {
    if body.is_empty() {
        return Err(DecodeError::Empty);
    }
    std::str::from_utf8(&body).map_err(|_| DecodeError::InvalidUtf8)?;
    let mut frames = Vec::new();
    let mut start = 0;
    loop {
        let end = body[start..]
            .iter()
            .position(|b| *b == SEPARATOR)
            .map_or(body.len(), |p| start + p);
        if frames.len() == max_packets {
            return Err(DecodeError::TooManyPackets(max_packets));
        }
        let record = body.slice(start..end);
        frames.push(decode_record(record)?);
        if end == body.len() {
            return Ok(frames);
        }
        start = end + 1;
    }
}

fn decode_record(record: Bytes) -> Result<Frame, DecodeError> {
    match record.first() {
        None => Err(DecodeError::Empty),
        Some(b'b') => STANDARD
            .decode(&record[1..])
            .map(|v| Frame::Binary(Bytes::from(v)))
            .map_err(|_| DecodeError::InvalidBase64),
        Some(_) => Ok(Frame::Text(record)),
    }
}

/// Builds a polling response body as a list of chunks, without concatenating the frames:
/// text frames are shared as they are, binary frames are base64-encoded once.
#[derive(Debug, Default)]
pub struct Encoder {
    chunks: Vec<Bytes>,
    len: usize,
    binary: bool,
    /// Some frame may be compressed (Node compresses a polling response only then).
    compress: bool,
}

impl Encoder {
    /// An empty payload.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one frame (which may be compressed).
    pub fn push(&mut self, frame: &Frame) {
        self.push_with(frame, true);
    }

    /// Appends one frame; `compress: false` for a packet sent with `compress(false)`.
    pub fn push_with(&mut self, frame: &Frame, compress: bool) {
        self.compress |= compress;
        if !self.chunks.is_empty() {
            self.add(Bytes::from_static(&[SEPARATOR]));
        }
        match frame {
            Frame::Text(t) => self.add(t.clone()),
            Frame::Binary(b) => {
                let mut buf = BytesMut::with_capacity(1 + b.len().div_ceil(3) * 4);
                buf.put_u8(b'b');
                let start = buf.len();
                buf.resize(start + b.len().div_ceil(3) * 4, 0);
                let n = STANDARD
                    .encode_slice(b, &mut buf[start..])
                    .unwrap_or_default();
                buf.truncate(start + n);
                self.add(buf.freeze());
            }
        }
    }

    /// Total length of the body in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the body may be HTTP-compressed: some frame in it was pushed with
    /// `compress` true (Node's polling transport: `packets.some(p => p.options.compress)`).
    pub fn may_compress(&self) -> bool {
        self.compress
    }

    /// Whether nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// The chunks of the body, in order.
    pub fn into_chunks(self) -> Vec<Bytes> {
        self.chunks
    }

    /// Whether the body is binary (`application/octet-stream`): only an Engine.IO v3 payload
    /// holding binary packets for a client that supports binary. A v4 body is always text.
    pub fn is_binary(&self) -> bool {
        self.binary
    }

    /// Marks the body as one that may be compressed (the v3 codec, which frames its
    /// records itself).
    pub(crate) fn set_compress(&mut self, compress: bool) {
        self.compress |= compress;
    }

    /// Marks the body as binary (the v3 codec).
    pub(crate) fn set_binary(&mut self) {
        self.binary = true;
    }

    /// Appends raw bytes, with no separator (the v3 codec frames its records itself).
    pub(crate) fn push_raw(&mut self, b: Bytes) {
        self.add(b);
    }

    fn add(&mut self, b: Bytes) {
        self.len += b.len();
        self.chunks.push(b);
    }
}

/// Encodes frames into one contiguous body (tests and clients; the server sends chunks).
pub fn encode<'a>(frames: impl IntoIterator<Item = &'a Frame>) -> Bytes {
    let mut enc = Encoder::new();
    for f in frames {
        enc.push(f);
    }
    let mut out = BytesMut::with_capacity(enc.len());
    for c in enc.into_chunks() {
        out.put_slice(&c);
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &'static str) -> Frame {
        Frame::Text(Bytes::from_static(s.as_bytes()))
    }

    #[test]
    fn spec_examples() {
        let body = Bytes::from_static(b"4hello\x1e2\x1e4world");
        let frames = decode(body.clone(), 16).unwrap();
        assert_eq!(frames, vec![t("4hello"), t("2"), t("4world")]);
        assert_eq!(encode(&frames), body);

        let body = Bytes::from_static(b"4hello\x1ebAQIDBA==");
        let frames = decode(body.clone(), 16).unwrap();
        assert_eq!(
            frames,
            vec![
                t("4hello"),
                Frame::Binary(Bytes::from_static(&[1, 2, 3, 4]))
            ]
        );
        assert_eq!(encode(&frames), body);
    }

    #[test]
    fn binary_of_every_length_round_trips() {
        for n in 0..10u8 {
            let data: Vec<u8> = (0..n).collect();
            let f = Frame::Binary(Bytes::from(data));
            let body = encode([&f]);
            assert_eq!(decode(body, 1).unwrap(), vec![f]);
        }
    }

    #[test]
    fn chunks_share_text_frames() {
        let frame = Bytes::from_static(b"4shared");
        let mut enc = Encoder::new();
        enc.push(&Frame::Text(frame.clone()));
        enc.push(&Frame::Text(frame.clone()));
        assert_eq!(enc.len(), 15);
        let chunks = enc.into_chunks();
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[0].as_ptr(), frame.as_ptr());
    }

    #[test]
    fn compressible_when_some_frame_is() {
        let mut enc = Encoder::new();
        assert!(!enc.may_compress());
        enc.push_with(&t("4a"), false);
        assert!(!enc.may_compress());
        enc.push_with(&t("4b"), true);
        enc.push_with(&t("4c"), false);
        assert!(enc.may_compress());
    }

    #[test]
    fn errors() {
        assert_eq!(decode(Bytes::new(), 16), Err(DecodeError::Empty));
        assert_eq!(
            decode(Bytes::from_static(b"4a\x1e\x1e4b"), 16),
            Err(DecodeError::Empty)
        );
        assert_eq!(
            decode(Bytes::from_static(b"4a\x1e"), 16),
            Err(DecodeError::Empty)
        );
        assert_eq!(
            decode(Bytes::from_static(b"b!!!"), 16),
            Err(DecodeError::InvalidBase64)
        );
        assert_eq!(
            decode(Bytes::from_static(b"\xff\xfe"), 16),
            Err(DecodeError::InvalidUtf8)
        );
        assert_eq!(
            decode(Bytes::from_static(b"6\x1e6\x1e6"), 2),
            Err(DecodeError::TooManyPackets(2))
        );
        assert_eq!(decode(Bytes::from_static(b"6\x1e6"), 2).unwrap().len(), 2);
    }
}
