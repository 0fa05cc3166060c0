//! The Engine.IO v3 polling payload codecs (`ferrio_proto::engine::v3`, for
//! `socket.io-client` 2.x): arbitrary bytes as a text body and as a binary body.
//!
//! Invariants: decoding never panics; a decoded body holds at most `MAX_PACKETS` frames; text
//! frames are UTF-8 and never empty; re-encoding the frames (for a client with and without
//! binary support) gives a body that decodes, in the format the encoder says, to the same
//! frames; the packet limit is exact.
#![no_main]

use bytes::{Bytes, BytesMut};
use ferrio_proto::engine::{DecodeError, Frame, v3};
use libfuzzer_sys::fuzz_target;

const MAX_PACKETS: usize = 64;

fn check(
    frames: Vec<Frame>,
    decode_again: impl Fn(Bytes, usize) -> Result<Vec<Frame>, DecodeError>,
    body: Bytes,
) {
    assert!(frames.len() <= MAX_PACKETS);
    for f in &frames {
        if let Frame::Text(t) = f {
            assert!(!t.is_empty());
            assert!(std::str::from_utf8(t).is_ok());
        }
    }
    for supports_binary in [true, false] {
        let enc = v3::encode_payload(&frames, supports_binary);
        let binary = enc.is_binary();
        assert!(!binary || supports_binary);
        let mut out = BytesMut::new();
        for c in enc.into_chunks() {
            out.extend_from_slice(&c);
        }
        let out = out.freeze();
        let again = match binary {
            true => v3::decode_binary_payload(out, MAX_PACKETS),
            false => v3::decode_payload(out, MAX_PACKETS),
        };
        match again {
            Ok(again) => assert_eq!(again, frames, "decode(encode(frames)) != frames"),
            // The only body that does not decode: no frames at all (`0:`).
            Err(e) => assert!(frames.is_empty(), "re-encoded body refused: {e}"),
        }
    }
    if !frames.is_empty() {
        assert_eq!(
            decode_again(body, frames.len() - 1),
            Err(DecodeError::TooManyPackets(frames.len() - 1))
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    if let Ok(frames) = v3::decode_payload(body.clone(), MAX_PACKETS) {
        check(frames, v3::decode_payload, body.clone());
    }
    if let Ok(frames) = v3::decode_binary_payload(body.clone(), MAX_PACKETS) {
        check(frames, v3::decode_binary_payload, body);
    }
});
