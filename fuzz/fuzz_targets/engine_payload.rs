//! The HTTP long-polling payload codec: arbitrary bytes as a polling body.
//!
//! Invariants: decoding never panics; a decoded body holds 1 to `MAX_PACKETS` frames; text
//! frames are UTF-8 and never empty; re-encoding (with `payload::encode` and with the chunked
//! `Encoder`) gives back the input body, which decodes to the same frames; the packet limit is
//! exact.
#![no_main]

use bytes::{Bytes, BytesMut};
use ferrio_proto::engine::{DecodeError, Frame, payload};
use libfuzzer_sys::fuzz_target;

const MAX_PACKETS: usize = 64;

fuzz_target!(|data: &[u8]| {
    let Ok(frames) = payload::decode(Bytes::copy_from_slice(data), MAX_PACKETS) else {
        return;
    };
    assert!(!frames.is_empty() && frames.len() <= MAX_PACKETS);
    for f in &frames {
        if let Frame::Text(t) = f {
            assert!(!t.is_empty());
            assert!(std::str::from_utf8(t).is_ok());
        }
    }

    let body = payload::encode(&frames);
    let again = payload::decode(body.clone(), MAX_PACKETS).expect("a re-encoded body decodes");
    assert_eq!(again, frames, "decode(encode(frames)) != frames");
    assert_eq!(body, data, "an accepted body is not in canonical form");

    let mut enc = payload::Encoder::new();
    for f in &frames {
        enc.push(f);
    }
    assert_eq!(enc.len(), body.len());
    let mut chunked = BytesMut::new();
    for c in enc.into_chunks() {
        chunked.extend_from_slice(&c);
    }
    assert_eq!(
        chunked.freeze(),
        body,
        "Encoder chunks differ from payload::encode"
    );

    assert_eq!(
        payload::decode(body, frames.len() - 1),
        Err(DecodeError::TooManyPackets(frames.len() - 1))
    );
});
