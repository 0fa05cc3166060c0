//! Engine.IO packet decoding: arbitrary bytes as a text frame (when UTF-8) and as a binary
//! frame, and arbitrary strings as session ids.
//!
//! Invariants: decoding never panics; a decoded packet re-encodes to a frame that decodes to the
//! same packet, and that encoding is canonical (encoding again gives the same bytes); text output
//! is UTF-8; packets that carry their data verbatim (message, ping, pong) re-encode to the exact
//! input frame; a parsed `Sid` prints back as the input.
#![no_main]

use bytes::Bytes;
use ferrio_proto::engine::{Frame, Packet, Sid};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(text) = std::str::from_utf8(data) {
        check(Frame::Text(bytes.clone()));
        if let Ok(sid) = Sid::parse(text) {
            assert_eq!(sid.as_str(), text);
            assert_eq!(Sid::parse(sid.as_str()), Ok(sid));
        }
    }
    check(Frame::Binary(bytes));
});

fn check(frame: Frame) {
    let Ok(packet) = Packet::decode(frame.clone()) else {
        return;
    };
    let encoded = packet.encode();
    if let Frame::Text(t) = &encoded {
        assert!(
            std::str::from_utf8(t).is_ok(),
            "text frame not UTF-8: {t:?}"
        );
    }
    let again = Packet::decode(encoded.clone()).expect("a re-encoded packet decodes");
    assert_eq!(again, packet, "decode(encode(p)) != p");
    assert_eq!(again.encode(), encoded, "encoding is not canonical");
    if matches!(
        packet,
        Packet::Message(_) | Packet::Ping(_) | Packet::Pong(_)
    ) {
        assert_eq!(encoded, frame, "data packet did not re-encode verbatim");
    }
}
