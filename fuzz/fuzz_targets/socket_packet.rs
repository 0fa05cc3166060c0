//! The Socket.IO packet decoder: a stream of Engine.IO messages (text and binary) fed to one
//! `Decoder` with small limits.
//!
//! Input format: messages separated by 0xFF; a message starting with 0x00 is binary (the rest),
//! any other message is text if it is UTF-8.
//!
//! Invariants: decoding never panics; declared attachments are bounded; a decoded EVENT or ACK
//! re-encodes, and the re-encoded packet (with its attachments) decodes to the same namespace,
//! name, ack id and argument count; typed access to arguments never panics.
#![no_main]

use bytes::Bytes;
use ferrio_proto::socket::{DecodeLimits, Decoder, Packet, PacketData, encode_ack, encode_event};
use libfuzzer_sys::fuzz_target;

fn limits() -> DecodeLimits {
    let mut l = DecodeLimits::default();
    l.max_attachments = 3;
    l.max_depth = 32;
    l
}

fn check_round_trip(p: &Packet) {
    let (encoded, name, id, argc) = match &p.data {
        PacketData::Event { name, args, id } => (
            encode_event(&p.nsp, *id, name, args).expect("received args re-encode"),
            Some(name.clone()),
            *id,
            args.len(),
        ),
        PacketData::Ack { args, id: Some(id) } => (
            encode_ack(&p.nsp, *id, args).expect("received args re-encode"),
            None,
            Some(*id),
            args.len(),
        ),
        _ => return,
    };
    // The encoded text carries the Engine.IO `4` prefix.
    let mut d = Decoder::new(DecodeLimits::default());
    let mut out = d
        .handle_text(encoded.text.slice(1..))
        .expect("re-encoded packet decodes");
    for a in &encoded.attachments {
        assert!(out.is_none());
        out = d.handle_binary(a.clone()).expect("attachment accepted");
    }
    let again = out.expect("re-encoded packet complete");
    assert_eq!(again.nsp, p.nsp);
    match again.data {
        PacketData::Event {
            name: n,
            args,
            id: i,
        } => {
            assert_eq!(Some(n), name);
            assert_eq!(i, id);
            assert_eq!(args.len(), argc);
        }
        PacketData::Ack { args, id: i } => {
            assert!(name.is_none());
            assert_eq!(i, id);
            assert_eq!(args.len(), argc);
        }
        other => panic!("re-encoded packet changed type: {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::new(limits());
    for msg in data.split(|b| *b == 0xFF) {
        let result = match msg.split_first() {
            Some((0, rest)) => decoder.handle_binary(Bytes::copy_from_slice(rest)),
            _ => match std::str::from_utf8(msg) {
                Ok(_) => decoder.handle_text(Bytes::copy_from_slice(msg)),
                Err(_) => continue,
            },
        };
        match result {
            Ok(Some(p)) => {
                if let PacketData::Event { args, .. } | PacketData::Ack { args, .. } = &p.data {
                    let _ = args.deserialize::<serde_json::Value>();
                    let _ = args.deserialize::<(String, bytes::Bytes)>();
                    let _ = args.deserialize_arg::<Vec<u8>>(0);
                }
                check_round_trip(&p);
            }
            Ok(None) => assert!(decoder.is_pending()),
            // A protocol error closes the connection: start over as a new one.
            Err(_) => decoder = Decoder::new(limits()),
        }
    }
});
