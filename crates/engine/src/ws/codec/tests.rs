use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;

const LIMITS: Limits = Limits {
    max_message: 1000,
    write_buffer_size: 128 * 1024,
    max_write_buffer: 4 * 1024 * 1024,
};

fn pair() -> (Codec<DuplexStream>, DuplexStream) {
    let (a, b) = tokio::io::duplex(1 << 20);
    (Codec::new(a, LIMITS, None), b)
}

/// A masked client frame.
fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut out = vec![b0];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

async fn next(ws: &mut Codec<DuplexStream>) -> Option<Result<Message, WsError>> {
    tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("codec answered")
}

/// Reads one unmasked server frame: (first byte, payload).
async fn server_frame(peer: &mut DuplexStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    peer.read_exact(&mut h).await.unwrap();
    assert_eq!(h[1] & 0x80, 0, "server frames are unmasked");
    let len = match h[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            peer.read_exact(&mut l).await.unwrap();
            u16::from_be_bytes(l) as usize
        }
        127 => {
            let mut l = [0u8; 8];
            peer.read_exact(&mut l).await.unwrap();
            u64::from_be_bytes(l) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    peer.read_exact(&mut payload).await.unwrap();
    (h[0], payload)
}

#[tokio::test]
async fn reads_text_and_binary_of_every_length_form() {
    let (mut ws, mut peer) = pair();
    for len in [0usize, 1, 125, 126, 1000] {
        let text = "é".repeat(len / 2) + &"a".repeat(len % 2);
        peer.write_all(&client_frame(0x81, text.as_bytes()))
            .await
            .unwrap();
        assert_eq!(
            next(&mut ws).await.unwrap().unwrap(),
            Message::Text(Bytes::from(text))
        );
    }
    peer.write_all(&client_frame(0x82, &[0, 1, 2, 255]))
        .await
        .unwrap();
    assert_eq!(
        next(&mut ws).await.unwrap().unwrap(),
        Message::Binary(Bytes::from_static(&[0, 1, 2, 255]))
    );
}

#[tokio::test]
async fn frames_split_across_reads_and_glued_together() {
    let (mut ws, mut peer) = pair();
    let mut bytes = client_frame(0x81, b"4hello");
    bytes.extend(client_frame(0x81, &[b'x'; 300]));
    bytes.extend(client_frame(0x82, b"bin"));
    // One byte at a time, then all at once.
    let writer = tokio::spawn(async move {
        for b in &bytes {
            peer.write_all(&[*b]).await.unwrap();
            tokio::task::yield_now().await;
        }
        peer.write_all(&bytes).await.unwrap();
        peer
    });
    for _ in 0..2 {
        assert_eq!(
            next(&mut ws).await.unwrap().unwrap(),
            Message::Text(Bytes::from_static(b"4hello"))
        );
        assert_eq!(
            next(&mut ws).await.unwrap().unwrap(),
            Message::Text(Bytes::from(vec![b'x'; 300]))
        );
        assert_eq!(
            next(&mut ws).await.unwrap().unwrap(),
            Message::Binary(Bytes::from_static(b"bin"))
        );
    }
    // Idle again: no buffer is held.
    assert_eq!(ws.buffered_capacity(), 0);
    drop(writer.await.unwrap());
}

#[tokio::test]
async fn fragmented_message_with_a_ping_in_between() {
    let (mut ws, mut peer) = pair();
    let mut bytes = client_frame(0x01, b"4hel");
    bytes.extend(client_frame(0x89, b"p"));
    bytes.extend(client_frame(0x00, b"lo "));
    bytes.extend(client_frame(0x80, "wörld".as_bytes()));
    peer.write_all(&bytes).await.unwrap();
    assert_eq!(
        next(&mut ws).await.unwrap().unwrap(),
        Message::Ping(Bytes::from_static(b"p"))
    );
    assert_eq!(
        next(&mut ws).await.unwrap().unwrap(),
        Message::Text(Bytes::from("4hello wörld"))
    );
    // The pong goes out with the next flush, with the ping's payload.
    ws.flush().await.unwrap();
    assert_eq!(server_frame(&mut peer).await, (0x8A, b"p".to_vec()));
}

#[tokio::test]
async fn writes_are_batched_until_the_flush() {
    let (mut ws, mut peer) = pair();
    ws.feed(Outbound::from(Message::Text(Bytes::from_static(b"4a"))))
        .await
        .unwrap();
    ws.feed(Outbound::from(Message::Binary(Bytes::from(vec![7u8; 300]))))
        .await
        .unwrap();
    ws.feed(Outbound::from(Message::Text(Bytes::from(vec![
        b'x';
        70_000
    ]))))
    .await
    .unwrap();
    // Nothing written before the flush.
    let mut probe = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(50), peer.read(&mut probe))
            .await
            .is_err()
    );
    ws.flush().await.unwrap();
    assert_eq!(server_frame(&mut peer).await, (0x81, b"4a".to_vec()));
    assert_eq!(server_frame(&mut peer).await, (0x82, vec![7u8; 300]));
    assert_eq!(server_frame(&mut peer).await, (0x81, vec![b'x'; 70_000]));
    assert_eq!(ws.buffered_capacity(), 0);
}

#[tokio::test]
async fn write_buffer_is_bounded() {
    let (a, _peer) = tokio::io::duplex(64);
    let limits = Limits {
        max_message: 1000,
        write_buffer_size: 100,
        max_write_buffer: 1000,
    };
    let mut ws = Codec::new(a, limits, None);
    let msg = Message::Binary(Bytes::from(vec![0u8; 400]));
    Pin::new(&mut ws).start_send(msg.clone().into()).unwrap();
    Pin::new(&mut ws).start_send(msg.clone().into()).unwrap();
    assert!(matches!(
        Pin::new(&mut ws).start_send(msg.into()),
        Err(WsError::WriteBufferFull)
    ));
    // The peer does not read: poll_ready waits instead of taking more.
    let ready = futures_util::future::poll_fn(|cx| Pin::new(&mut ws).poll_ready(cx));
    assert!(
        tokio::time::timeout(Duration::from_millis(50), ready)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn close_is_answered_and_ends_the_stream() {
    let (mut ws, mut peer) = pair();
    let mut body = 4001u16.to_be_bytes().to_vec();
    body.extend_from_slice(b"bye");
    peer.write_all(&client_frame(0x88, &body)).await.unwrap();
    assert_eq!(
        next(&mut ws).await.unwrap().unwrap(),
        Message::Close(Some(CloseFrame {
            code: CloseCode::Other(4001),
            reason: "bye".into()
        }))
    );
    assert!(next(&mut ws).await.is_none());
    ws.flush().await.unwrap();
    assert_eq!(
        server_frame(&mut peer).await,
        (0x88, 4001u16.to_be_bytes().to_vec())
    );
    // Nothing may be sent after the close.
    assert!(matches!(
        ws.send(Outbound::from(Message::Text(Bytes::from_static(b"4x"))))
            .await,
        Err(WsError::Closed)
    ));
}

#[tokio::test]
async fn close_sends_the_code_and_reason() {
    let (mut ws, mut peer) = pair();
    ws.close(Some(CloseFrame {
        code: CloseCode::Size,
        reason: "Max payload size exceeded".into(),
    }))
    .await
    .unwrap();
    let (b0, body) = server_frame(&mut peer).await;
    assert_eq!(b0, 0x88);
    assert_eq!(&body[..2], &1009u16.to_be_bytes());
    assert_eq!(&body[2..], b"Max payload size exceeded");
    // Then the write side is shut.
    let mut rest = Vec::new();
    peer.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}

#[tokio::test]
async fn end_of_stream_ends_the_stream() {
    let (mut ws, peer) = pair();
    drop(peer);
    assert!(next(&mut ws).await.is_none());
}

#[tokio::test]
async fn forbidden_frames_are_errors() {
    let long_ping = client_frame(0x89, &[0u8; 126]);
    let mut huge = vec![0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
    huge.extend_from_slice(&[0, 0, 0, 0]);
    let mut top_bit = vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1];
    top_bit.extend_from_slice(&[0, 0, 0, 0]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("rsv bits", vec![0xF1, 0x80, 0, 0, 0, 0]),
        ("rsv1", client_frame(0xC1, b"4")),
        ("unmasked", vec![0x81, 0x01, b'4']),
        ("opcode 3", client_frame(0x83, b"")),
        ("opcode 0xB", client_frame(0x8B, b"")),
        ("fragmented ping", client_frame(0x09, b"")),
        ("long ping", long_ping),
        ("bad utf-8", client_frame(0x81, &[0xC3, 0x28])),
        ("bad utf-8 across fragments", {
            let mut b = client_frame(0x01, &[0xC3]);
            b.extend(client_frame(0x80, &[0x28]));
            b
        }),
        ("continuation first", client_frame(0x80, b"x")),
        ("new message inside a fragmented one", {
            let mut b = client_frame(0x01, b"a");
            b.extend(client_frame(0x81, b"b"));
            b
        }),
        ("huge length", huge),
        ("length top bit", top_bit),
        ("over the limit", client_frame(0x82, &[0u8; 1001])),
        ("fragments over the limit", {
            let mut b = client_frame(0x02, &[0u8; 600]);
            b.extend(client_frame(0x80, &[0u8; 600]));
            b
        }),
        ("one-byte close", client_frame(0x88, &[3])),
        (
            "close code 1005",
            client_frame(0x88, &1005u16.to_be_bytes()),
        ),
        ("close code 999", client_frame(0x88, &999u16.to_be_bytes())),
        ("close reason not utf-8", {
            let mut body = 1000u16.to_be_bytes().to_vec();
            body.push(0xFF);
            client_frame(0x88, &body)
        }),
    ];
    for (name, bytes) in cases {
        let (mut ws, mut peer) = pair();
        peer.write_all(&bytes).await.unwrap();
        let got = next(&mut ws).await;
        let err = match got {
            Some(Err(e)) => e,
            other => panic!("{name}: {other:?}"),
        };
        let expected = match name {
            "huge length" | "over the limit" | "fragments over the limit" => {
                matches!(err, WsError::Capacity(_))
            }
            n if n.contains("utf-8") => matches!(err, WsError::Utf8),
            _ => matches!(err, WsError::Protocol(_)),
        };
        assert!(expected, "{name}: {err:?}");
        // Nothing is read after an error.
        assert!(next(&mut ws).await.is_none(), "{name}");
    }
}

#[test]
fn mask_matches_the_bytewise_xor() {
    let mask = [1, 2, 3, 250];
    for len in 0..40 {
        let data: Vec<u8> = (0..len as u8).collect();
        let mut fast = data.clone();
        apply_mask(&mut fast, mask);
        let slow: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        assert_eq!(fast, slow, "{len}");
    }
}

#[tokio::test]
async fn invalid_utf8_fails_at_the_fragment_that_holds_it() {
    let (mut ws, mut peer) = pair();
    // "κόσμε" cut inside a character, then an invalid byte; the final fragment never comes.
    let text = "κόσμε".as_bytes();
    let mut bytes = client_frame(0x01, &text[..3]);
    bytes.extend(client_frame(0x00, &text[3..7]));
    peer.write_all(&bytes).await.unwrap();
    let mut invalid = client_frame(0x00, &[0xF4, 0x90, 0x80, 0x80]);
    invalid.extend(client_frame(0x00, b"more"));
    peer.write_all(&invalid).await.unwrap();
    assert!(matches!(next(&mut ws).await, Some(Err(WsError::Utf8))));
    // A character split across fragments is fine.
    let (mut ws, mut peer) = pair();
    let mut bytes = client_frame(0x01, &text[..1]);
    bytes.extend(client_frame(0x00, &text[1..5]));
    bytes.extend(client_frame(0x80, &text[5..]));
    peer.write_all(&bytes).await.unwrap();
    assert_eq!(
        next(&mut ws).await.unwrap().unwrap(),
        Message::Text(Bytes::from("κόσμε"))
    );
}

mod deflate {
    use super::*;
    use crate::ws::deflate::{Deflate, PerMessageDeflate, negotiate, parse_offers};

    fn params(threshold: usize) -> Negotiated {
        let cfg = PerMessageDeflate {
            threshold,
            ..Default::default()
        };
        negotiate(
            &parse_offers([b"permessage-deflate".as_slice()]).unwrap(),
            &cfg,
        )
        .unwrap()
    }

    fn deflate_pair(threshold: usize) -> (Codec<DuplexStream>, DuplexStream) {
        let (a, b) = tokio::io::duplex(1 << 20);
        (Codec::new(a, LIMITS, Some(params(threshold))), b)
    }

    /// What a client's compressor sends for `msgs`, one after the other (context kept).
    fn client_compressed(msgs: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut d = Deflate::new(params(0));
        msgs.iter()
            .map(|m| d.compress(&Bytes::copy_from_slice(m)).to_vec())
            .collect()
    }

    #[tokio::test]
    async fn reads_compressed_messages_with_context_takeover() {
        let (mut ws, mut peer) = deflate_pair(1024);
        assert_eq!(ws.deflate_streams(), Some((false, false)));
        let msgs: [&[u8]; 3] = [b"4hello hello", b"4hello hello", b"\x00\x01\x02"];
        let wire = client_compressed(&msgs);
        peer.write_all(&client_frame(0xC1, &wire[0])).await.unwrap();
        peer.write_all(&client_frame(0xC1, &wire[1])).await.unwrap();
        peer.write_all(&client_frame(0xC2, &wire[2])).await.unwrap();
        // An uncompressed message in between is fine too.
        peer.write_all(&client_frame(0x81, b"4plain"))
            .await
            .unwrap();
        let want = [
            Message::Text(Bytes::from_static(b"4hello hello")),
            Message::Text(Bytes::from_static(b"4hello hello")),
            Message::Binary(Bytes::from_static(b"\x00\x01\x02")),
            Message::Text(Bytes::from_static(b"4plain")),
        ];
        for w in want {
            assert_eq!(next(&mut ws).await.unwrap().unwrap(), w);
        }
        // Only the decompressor was created (lazily).
        assert_eq!(ws.deflate_streams(), Some((false, true)));
    }

    #[tokio::test]
    async fn reads_a_fragmented_compressed_message() {
        let (mut ws, mut peer) = deflate_pair(1024);
        let msg = b"4fragments fragments fragments".repeat(10);
        let wire = &client_compressed(&[&msg])[0];
        let (a, b) = wire.split_at(wire.len() / 2);
        peer.write_all(&client_frame(0x41, a)).await.unwrap();
        peer.write_all(&client_frame(0x80, b)).await.unwrap();
        assert_eq!(
            next(&mut ws).await.unwrap().unwrap(),
            Message::Text(Bytes::from(msg))
        );
    }

    #[tokio::test]
    async fn rsv1_without_the_extension_or_on_a_continuation_is_a_protocol_error() {
        let (mut ws, mut peer) = pair();
        let wire = &client_compressed(&[b"4x"])[0];
        peer.write_all(&client_frame(0xC1, wire)).await.unwrap();
        assert!(matches!(
            next(&mut ws).await,
            Some(Err(WsError::Protocol(_)))
        ));

        let (mut ws, mut peer) = deflate_pair(1024);
        peer.write_all(&client_frame(0x01, b"4a")).await.unwrap();
        peer.write_all(&client_frame(0xC0, b"b")).await.unwrap();
        assert!(matches!(
            next(&mut ws).await,
            Some(Err(WsError::Protocol(_)))
        ));

        let (mut ws, mut peer) = deflate_pair(1024);
        peer.write_all(&client_frame(0xC9, b"")).await.unwrap();
        assert!(matches!(
            next(&mut ws).await,
            Some(Err(WsError::Protocol(_)))
        ));
    }

    #[tokio::test]
    async fn a_zip_bomb_is_refused_at_the_limit() {
        let (mut ws, mut peer) = deflate_pair(1024);
        // 1 MB of zeros: about 1 KB compressed, well under the 1000-byte frame limit once
        // split; the inflated size passes the 1000-byte message limit.
        let wire = &client_compressed(&[&vec![0u8; 1 << 20]])[0];
        assert!(wire.len() < 2000, "{}", wire.len());
        let (a, b) = wire.split_at(wire.len() / 2);
        peer.write_all(&client_frame(0x42, a)).await.unwrap();
        peer.write_all(&client_frame(0x80, b)).await.unwrap();
        assert!(matches!(
            next(&mut ws).await,
            Some(Err(WsError::InflatedCapacity(1000)))
        ));
    }

    #[tokio::test]
    async fn invalid_compressed_data_is_refused() {
        let (mut ws, mut peer) = deflate_pair(1024);
        peer.write_all(&client_frame(0xC1, &[0xff; 8]))
            .await
            .unwrap();
        assert!(matches!(next(&mut ws).await, Some(Err(WsError::Inflate))));
    }

    #[tokio::test]
    async fn writes_compress_above_the_threshold_unless_told_not_to() {
        let (mut ws, mut peer) = deflate_pair(100);
        let big = Bytes::from(vec![b'x'; 5000]);
        // Incompressible alone, but a repeat is found in the kept window.
        let mut seed = 1u32;
        let noise: Bytes = (0..3000)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (seed >> 16) as u8
            })
            .collect::<Vec<u8>>()
            .into();
        ws.feed(Outbound::from(Message::Text(Bytes::from_static(b"4small"))))
            .await
            .unwrap();
        ws.feed(Outbound::from(Message::Text(big.clone())))
            .await
            .unwrap();
        ws.feed(Outbound {
            msg: Message::Binary(noise.clone()),
            compress: false,
        })
        .await
        .unwrap();
        ws.feed(Outbound::from(Message::Binary(noise.clone())))
            .await
            .unwrap();
        ws.feed(Outbound::from(Message::Binary(noise.clone())))
            .await
            .unwrap();
        ws.flush().await.unwrap();
        assert_eq!(server_frame(&mut peer).await, (0x81, b"4small".to_vec()));
        let mut rx = Deflate::new(params(0));
        let mut inflate = |packed: &[u8]| {
            let mut out = Vec::new();
            rx.decompress(packed, true, &mut out, 1 << 20).unwrap();
            out
        };
        let (b0, packed) = server_frame(&mut peer).await;
        assert_eq!(b0, 0xC1);
        assert!(packed.len() < 100);
        assert_eq!(inflate(&packed), big);
        assert_eq!(server_frame(&mut peer).await, (0x82, noise.to_vec()));
        let (b0, first) = server_frame(&mut peer).await;
        assert_eq!(b0, 0xC2);
        assert!(first.len() > 2000);
        assert_eq!(inflate(&first), noise);
        // The server kept its context: the repeat is a back reference.
        let (b0, second) = server_frame(&mut peer).await;
        assert_eq!(b0, 0xC2);
        assert!(second.len() < 100, "{}", second.len());
        assert_eq!(inflate(&second), noise);
        assert_eq!(ws.deflate_streams(), Some((true, false)));
    }
}
