//! Engine.IO protocol v3, spoken by `socket.io-client` 2.x (`engine.io-client` 3,
//! `engine.io-parser` 2): what differs on the wire from v4, converted to and from the v4
//! [`Frame`]s the rest of the engine works with.
//!
//! - A polling payload is `<length>:<packet>` records, the length counted in UTF-16 code
//!   units (JavaScript's `String.length`): `6:4hello2:4€`.
//! - Binary packets carry their type: a WebSocket binary frame starts with the type byte
//!   (`0x04` for a message), and a base64 text packet is `b4<base64>` (clients that asked
//!   for `b64=1`, or any text payload).
//! - A polling payload that holds binary, for a client that supports binary, is the binary
//!   payload format: per packet `0x00` (text) or `0x01` (binary), the length as one byte per
//!   decimal digit, `0xFF`, then the packet (text as UTF-8, binary with its type byte). It is
//!   sent as `application/octet-stream`, and clients post it the same way.
//!
//! Text frames are otherwise the same as in v4 (`4hello`, `2probe`, `0{...}`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};

use super::packet::PacketType;
use super::payload::Encoder;
use super::{DecodeError, Frame};

/// Most decimal digits of a record length (Node gives up past 310; ten digits already
/// exceed any accepted body).
const MAX_LEN_DIGITS: usize = 10;

/// Number of UTF-16 code units of valid UTF-8 text: one per character, two for the
/// characters outside the basic plane (4-byte sequences).
pub fn utf16_len(text: &[u8]) -> usize {
    text.iter()
        .map(|b| match b {
            0x80..=0xBF => 0,
            0xF0..=0xFF => 2,
            _ => 1,
        })
        .sum()
}

/// Byte length of the first `units` UTF-16 code units of `text` (valid UTF-8), or `None`
/// when the text is shorter or the count ends inside a surrogate pair.
fn utf16_prefix(text: &str, units: usize) -> Option<usize> {
    let mut counted = 0;
    for (i, c) in text.char_indices() {
        if counted == units {
            return Some(i);
        }
        counted += c.len_utf16();
        if counted > units {
            return None;
        }
    }
    (counted == units).then_some(text.len())
}

/// Converts one packet received from a v3 peer (a WebSocket frame, or a record of a
/// payload) to its v4 frame: `b4<base64>` and `0x04`-prefixed binary become binary
/// messages; other text is unchanged.
pub fn decode_frame(frame: Frame) -> Result<Frame, DecodeError> {
    match frame {
        Frame::Text(t) if t.first() == Some(&b'b') => {
            let ty = *t.get(1).ok_or(DecodeError::Empty)?;
            let data = STANDARD
                .decode(&t[2..])
                .map_err(|_| DecodeError::InvalidBase64)?;
            typed_binary(ty, Bytes::from(data))
        }
        Frame::Text(t) => Ok(Frame::Text(t)),
        Frame::Binary(b) => {
            // The type is a byte value (4), not a digit.
            let ty = *b.first().ok_or(DecodeError::Empty)?;
            typed_binary(ty.wrapping_add(b'0'), b.slice(1..))
        }
    }
}

/// A packet of type `ty` (the digit) with binary data: a message stays binary; another type
/// (never sent by the clients) becomes its text form when the data is UTF-8.
fn typed_binary(ty: u8, data: Bytes) -> Result<Frame, DecodeError> {
    let packet_type = PacketType::from_byte(ty).ok_or(DecodeError::UnknownType(ty))?;
    if packet_type == PacketType::Message {
        return Ok(Frame::Binary(data));
    }
    std::str::from_utf8(&data).map_err(|_| DecodeError::InvalidUtf8)?;
    let mut buf = BytesMut::with_capacity(data.len() + 1);
    buf.put_u8(ty);
    buf.put_slice(&data);
    Ok(Frame::Text(buf.freeze()))
}

/// Converts a v4 frame to what a v3 peer reads on a WebSocket: a binary message gets its
/// type byte `0x04`, or is sent as `b4<base64>` text to a client without binary support.
pub fn encode_frame(frame: Frame, supports_binary: bool) -> Frame {
    match frame {
        Frame::Binary(b) if supports_binary => {
            let mut buf = BytesMut::with_capacity(b.len() + 1);
            buf.put_u8(4);
            buf.put_slice(&b);
            Frame::Binary(buf.freeze())
        }
        Frame::Binary(b) => Frame::Text(base64_packet(&b)),
        text => text,
    }
}

/// `b4<base64>`.
fn base64_packet(data: &[u8]) -> Bytes {
    let n = data.len().div_ceil(3) * 4;
    let mut buf = BytesMut::with_capacity(2 + n);
    buf.put_slice(b"b4");
    buf.resize(2 + n, 0);
    let written = STANDARD.encode_slice(data, &mut buf[2..]).unwrap_or(0);
    buf.truncate(2 + written);
    buf.freeze()
}

/// Decodes a text polling body (`<length>:<packet>...`) into v4 frames, at most
/// `max_packets` of them. Empty records (`0:`) are skipped, as Node does.
pub fn decode_payload(body: Bytes, max_packets: usize) -> Result<Vec<Frame>, DecodeError> {
    if body.is_empty() {
        return Err(DecodeError::Empty);
    }
    let text = std::str::from_utf8(&body).map_err(|_| DecodeError::InvalidUtf8)?;
    let mut frames = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        let colon = text[pos..]
            .bytes()
            .take(MAX_LEN_DIGITS + 1)
            .position(|b| b == b':')
            .ok_or(DecodeError::InvalidLength)?;
        let digits = &text[pos..pos + colon];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DecodeError::InvalidLength);
        }
        let units: usize = digits.parse().map_err(|_| DecodeError::InvalidLength)?;
        let start = pos + colon + 1;
        let len = utf16_prefix(&text[start..], units).ok_or(DecodeError::InvalidLength)?;
        pos = start + len;
        if len == 0 {
            continue;
        }
        if frames.len() == max_packets {
            return Err(DecodeError::TooManyPackets(max_packets));
        }
        frames.push(decode_frame(Frame::Text(body.slice(start..pos)))?);
    }
    Ok(frames)
}

/// Decodes a binary polling body (`application/octet-stream`) into v4 frames, at most
/// `max_packets` of them.
pub fn decode_binary_payload(body: Bytes, max_packets: usize) -> Result<Vec<Frame>, DecodeError> {
    if body.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut frames = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let is_text = match body[pos] {
            0 => true,
            1 => false,
            _ => return Err(DecodeError::InvalidLength),
        };
        pos += 1;
        let mut len = 0usize;
        let mut digits = 0;
        loop {
            match body.get(pos) {
                Some(0xFF) => break,
                Some(d @ 0..=9) if digits < MAX_LEN_DIGITS => {
                    len = len
                        .checked_mul(10)
                        .and_then(|l| l.checked_add(usize::from(*d)))
                        .ok_or(DecodeError::InvalidLength)?;
                    digits += 1;
                    pos += 1;
                }
                _ => return Err(DecodeError::InvalidLength),
            }
        }
        if digits == 0 {
            return Err(DecodeError::InvalidLength);
        }
        pos += 1; // 0xFF
        let end = pos.checked_add(len).ok_or(DecodeError::InvalidLength)?;
        if end > body.len() {
            return Err(DecodeError::InvalidLength);
        }
        if frames.len() == max_packets {
            return Err(DecodeError::TooManyPackets(max_packets));
        }
        let data = body.slice(pos..end);
        pos = end;
        let frame = if is_text {
            std::str::from_utf8(&data).map_err(|_| DecodeError::InvalidUtf8)?;
            if data.is_empty() {
                return Err(DecodeError::Empty);
            }
            Frame::Text(data)
        } else {
            Frame::Binary(data)
        };
        frames.push(decode_frame(frame)?);
    }
    Ok(frames)
}

/// Encodes v4 frames as a v3 polling body: the binary format when a frame is binary and the
/// client supports binary (the [`Encoder`] is then [`binary`](Encoder::is_binary)), else
/// `<length>:<packet>` text with binary as `b4<base64>`. Text frames are shared, not copied.
pub fn encode_payload(frames: &[Frame], supports_binary: bool) -> Encoder {
    let mut enc = Encoder::new();
    let binary = supports_binary && frames.iter().any(|f| matches!(f, Frame::Binary(_)));
    if binary {
        enc.set_binary();
        for f in frames {
            let (kind, data, typed) = match f {
                Frame::Text(t) => (0u8, t, false),
                Frame::Binary(b) => (1u8, b, true),
            };
            let len = data.len() + usize::from(typed);
            let mut head = BytesMut::with_capacity(MAX_LEN_DIGITS + 3);
            head.put_u8(kind);
            head.extend(len.to_string().bytes().map(|d| d - b'0'));
            head.put_u8(0xFF);
            if typed {
                head.put_u8(4);
            }
            enc.push_raw(head.freeze());
            enc.push_raw(data.clone());
        }
        return enc;
    }
    if frames.is_empty() {
        enc.push_raw(Bytes::from_static(b"0:"));
        return enc;
    }
    for f in frames {
        let data = match f {
            Frame::Text(t) => t.clone(),
            Frame::Binary(b) => base64_packet(b),
        };
        enc.push_raw(Bytes::from(format!("{}:", utf16_len(&data))));
        enc.push_raw(data);
    }
    enc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &'static str) -> Frame {
        Frame::Text(Bytes::from_static(s.as_bytes()))
    }

    fn bin(b: &'static [u8]) -> Frame {
        Frame::Binary(Bytes::from_static(b))
    }

    fn body(enc: Encoder) -> Vec<u8> {
        enc.into_chunks().concat()
    }

    #[test]
    fn utf16_lengths_match_javascript() {
        assert_eq!(utf16_len(b"4hello"), 6);
        assert_eq!(utf16_len("4€".as_bytes()), 2);
        assert_eq!(utf16_len("4é".as_bytes()), 2);
        // U+1F600 is a surrogate pair in UTF-16.
        assert_eq!(utf16_len("4😀".as_bytes()), 3);
    }

    /// The examples of the v3 spec and of `engine.io-parser` 2.
    #[test]
    fn text_payload_round_trips() {
        let frames = vec![t("4hello"), t("4€"), t("2"), t("4😀x")];
        let enc = encode_payload(&frames, true);
        assert!(!enc.is_binary());
        let b = body(enc);
        assert_eq!(std::str::from_utf8(&b).unwrap(), "6:4hello2:4€1:24:4😀x");
        assert_eq!(decode_payload(Bytes::from(b), 16).unwrap(), frames);
    }

    #[test]
    fn binary_in_text_payload_is_base64_with_its_type() {
        let frames = vec![t("4a"), bin(&[1, 2, 3, 4])];
        let b = body(encode_payload(&frames, false));
        assert_eq!(b, b"2:4a10:b4AQIDBA==");
        assert_eq!(decode_payload(Bytes::from(b), 16).unwrap(), frames);
    }

    /// Node's answer observed for a binary event to a client with binary support
    /// (protocol.md section 4).
    #[test]
    fn binary_payload_matches_node() {
        let frames = vec![
            t(r#"451-["a",{"_placeholder":true,"num":0}]"#),
            bin(&[1, 2, 3]),
        ];
        let enc = encode_payload(&frames, true);
        assert!(enc.is_binary());
        let b = body(enc);
        let mut expected = vec![0u8, 3, 9, 0xFF];
        expected.extend_from_slice(br#"451-["a",{"_placeholder":true,"num":0}]"#);
        expected.extend_from_slice(&[1, 4, 0xFF, 4, 1, 2, 3]);
        assert_eq!(b, expected);
        assert_eq!(decode_binary_payload(Bytes::from(b), 16).unwrap(), frames);
    }

    #[test]
    fn binary_payload_text_length_is_in_bytes() {
        let frames = vec![t("4€"), bin(&[])];
        let b = body(encode_payload(&frames, true));
        assert_eq!(&b[..6], &[0, 4, 0xFF, b'4', 0xE2, 0x82]);
        assert_eq!(decode_binary_payload(Bytes::from(b), 16).unwrap(), frames);
    }

    #[test]
    fn websocket_frames() {
        assert_eq!(encode_frame(bin(&[9]), true), bin(&[4, 9]));
        assert_eq!(encode_frame(bin(&[9]), false), t("b4CQ=="));
        assert_eq!(encode_frame(t("3probe"), true), t("3probe"));
        assert_eq!(decode_frame(bin(&[4, 9])).unwrap(), bin(&[9]));
        assert_eq!(decode_frame(t("b4CQ==")).unwrap(), bin(&[9]));
        assert_eq!(decode_frame(t("2probe")).unwrap(), t("2probe"));
        // A binary ping (never sent by the clients) is read as its text form.
        assert_eq!(decode_frame(bin(&[2, b'x'])).unwrap(), t("2x"));
    }

    #[test]
    fn empty_records_are_skipped() {
        assert_eq!(
            decode_payload(Bytes::from_static(b"0:1:6"), 16).unwrap(),
            vec![t("6")]
        );
    }

    #[test]
    fn malformed_payloads_are_errors() {
        let bad: &[&[u8]] = &[
            b"",
            b"6",
            b"x:4a",
            b":4a",
            b"3:4a",
            b"2:4a5",
            b"99999999999:4",
            b"2:b9AA",
            b"4:b4!!",
            b"\xff:",
        ];
        for b in bad {
            assert!(
                decode_payload(Bytes::from_static(b), 16).is_err(),
                "{:?}",
                String::from_utf8_lossy(b)
            );
        }
        assert_eq!(
            decode_payload(Bytes::from_static(b"1:61:61:6"), 2),
            Err(DecodeError::TooManyPackets(2))
        );
        // A count that ends inside a surrogate pair.
        assert!(decode_payload(Bytes::from("2:4😀".as_bytes().to_vec()), 16).is_err());
        let bad_binary: &[&[u8]] = &[
            b"",
            &[2, 1, 0xFF, b'6'],
            &[0, 0xFF, b'6'],
            &[0, 5, 0xFF, b'6'],
            &[0, 1, 2],
            &[0, 10, 0xFF],
            &[0, 1, 0xFF, 0xC3],
            &[1, 1, 0xFF, 9],
            &[0, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 0xFF],
        ];
        for b in bad_binary {
            assert!(
                decode_binary_payload(Bytes::from_static(b), 16).is_err(),
                "{b:?}"
            );
        }
        assert_eq!(
            decode_binary_payload(Bytes::from_static(&[0, 1, 0xFF, b'6', 0, 1, 0xFF, b'6']), 1),
            Err(DecodeError::TooManyPackets(1))
        );
    }
}
