use super::*;

const OPEN_POLLING: &[u8] = br#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,"maxPayload":30}"#;
const OPEN_WS: &[u8] = br#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}"#;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn text(s: &'static str) -> Frame {
    Frame::Text(Bytes::from_static(s.as_bytes()))
}

fn events(s: &mut ClientSession) -> Vec<ClientEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn transmits(s: &mut ClientSession) -> Vec<Frame> {
    std::iter::from_fn(|| s.poll_transmit()).collect()
}

fn opened_polling(t0: Instant) -> ClientSession {
    let mut s = ClientSession::new(ClientSessionConfig::default(), TransportKind::Polling, t0);
    s.handle_payload(t0, Bytes::from_static(OPEN_POLLING));
    assert!(matches!(events(&mut s)[..], [ClientEvent::Opened(_)]));
    s
}

fn opened_ws(t0: Instant) -> ClientSession {
    let mut s = ClientSession::new(ClientSessionConfig::default(), TransportKind::WebSocket, t0);
    s.handle_frame(t0, Frame::Text(Bytes::from_static(OPEN_WS)));
    assert!(matches!(events(&mut s)[..], [ClientEvent::Opened(_)]));
    s
}

#[test]
fn handshake_over_polling_reads_the_open_packet() {
    let t0 = Instant::now();
    let s = opened_polling(t0);
    let open = s.handshake().unwrap();
    assert_eq!(open.sid.as_str(), "lv_VI97HAXpY6yYWAAAC");
    assert_eq!(open.ping_interval, ms(300));
    assert!(s.is_open());
    assert!(s.wants_poll());
    assert!(s.wants_probe());
}

#[test]
fn handshake_with_an_initial_message_in_the_same_body() {
    let t0 = Instant::now();
    let mut s = ClientSession::new(ClientSessionConfig::default(), TransportKind::Polling, t0);
    let mut body = OPEN_POLLING.to_vec();
    body.extend_from_slice(b"\x1e40{\"sid\":\"x\"}");
    s.handle_payload(t0, Bytes::from(body));
    let ev = events(&mut s);
    assert!(matches!(ev[0], ClientEvent::Opened(_)));
    assert_eq!(
        ev[1],
        ClientEvent::Message(Message::Text(Bytes::from_static(b"0{\"sid\":\"x\"}")))
    );
}

#[test]
fn no_open_packet_in_time_is_a_handshake_timeout() {
    let t0 = Instant::now();
    let mut s = ClientSession::new(ClientSessionConfig::default(), TransportKind::Polling, t0);
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(20)));
    s.handle_timeout(t0 + Duration::from_secs(19));
    assert!(events(&mut s).is_empty());
    s.handle_timeout(t0 + Duration::from_secs(20));
    assert_eq!(
        events(&mut s),
        vec![ClientEvent::Closed(ClientCloseReason::HandshakeTimeout)]
    );
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn anything_but_an_open_packet_first_is_a_parse_error() {
    let t0 = Instant::now();
    for first in ["4hello", "2", "0{\"sid\":1}", "x", ""] {
        let mut s =
            ClientSession::new(ClientSessionConfig::default(), TransportKind::WebSocket, t0);
        s.handle_frame(t0, Frame::Text(Bytes::from(first)));
        assert_eq!(
            events(&mut s),
            vec![ClientEvent::Closed(ClientCloseReason::ParseError)],
            "{first:?}"
        );
    }
}

#[test]
fn pings_are_answered_and_keep_the_session_alive() {
    let t0 = Instant::now();
    let mut s = opened_ws(t0);
    // Dead after pingInterval + pingTimeout without any packet.
    assert_eq!(s.poll_timeout(), Some(t0 + ms(500)));
    assert_eq!(s.pings(), 0);
    s.handle_frame(t0 + ms(300), text("2"));
    assert_eq!(transmits(&mut s), vec![text("3")]);
    assert_eq!(s.pings(), 1);
    assert_eq!(s.poll_timeout(), Some(t0 + ms(800)));
    s.handle_timeout(t0 + ms(799));
    assert!(events(&mut s).is_empty());
    // Any packet counts as a sign of life.
    s.handle_frame(t0 + ms(700), text("4x"));
    events(&mut s);
    s.handle_timeout(t0 + ms(1199));
    assert!(events(&mut s).is_empty());
    s.handle_timeout(t0 + ms(1200));
    assert_eq!(
        events(&mut s),
        vec![ClientEvent::Closed(ClientCloseReason::PingTimeout)]
    );
}

#[test]
fn a_pong_is_queued_even_when_the_outbox_is_full() {
    let t0 = Instant::now();
    let config = ClientSessionConfig {
        max_buffered_packets: 1,
        ..Default::default()
    };
    let mut s = ClientSession::new(config, TransportKind::WebSocket, t0);
    s.handle_frame(t0, Frame::Text(Bytes::from_static(OPEN_WS)));
    s.send(text("4a")).unwrap();
    assert_eq!(s.send(text("4b")), Err(ClientSendError::Full));
    assert!(!s.has_capacity());
    s.handle_frame(t0, text("2"));
    assert_eq!(transmits(&mut s), vec![text("4a"), text("3")]);
}

#[test]
fn server_close_packet_and_transport_failures() {
    let t0 = Instant::now();
    let mut s = opened_polling(t0);
    s.handle_payload(t0, Bytes::from_static(b"4a\x1e1\x1e4b"));
    assert_eq!(
        events(&mut s),
        vec![
            ClientEvent::Message(Message::Text(Bytes::from_static(b"a"))),
            ClientEvent::Closed(ClientCloseReason::TransportClose)
        ]
    );
    assert_eq!(s.send(text("4x")), Err(ClientSendError::Closed));

    let mut s = opened_ws(t0);
    s.handle_transport_error("connection reset");
    let ev = events(&mut s);
    assert_eq!(
        ev,
        vec![ClientEvent::Closed(ClientCloseReason::TransportError(
            "connection reset".into()
        ))]
    );
    if let ClientEvent::Closed(r) = &ev[0] {
        assert_eq!(r.as_str(), "transport error");
    }
    s.handle_transport_closed();
    assert!(events(&mut s).is_empty(), "closed once");
}

#[test]
fn malformed_polling_bodies_are_parse_errors() {
    let t0 = Instant::now();
    for body in [&b"4a\x1e\x1e4b"[..], b"b!!", b"\xff", b"9"] {
        let mut s = opened_polling(t0);
        s.handle_payload(t0, Bytes::copy_from_slice(body));
        let ev = events(&mut s);
        assert_eq!(
            ev.last(),
            Some(&ClientEvent::Closed(ClientCloseReason::ParseError)),
            "{body:?}"
        );
    }
}

#[test]
fn polling_posts_are_split_at_max_payload() {
    let t0 = Instant::now();
    let mut s = opened_polling(t0);
    // maxPayload is 30 bytes in OPEN_POLLING.
    for m in ["4aaaaaaaaaa", "4bbbbbbbbbb", "4cccccccccc"] {
        s.send(text(m)).unwrap();
    }
    s.send(Frame::Binary(Bytes::from_static(&[1, 2, 3, 4])))
        .unwrap();
    assert_eq!(
        s.poll_payload().unwrap(),
        Bytes::from_static(b"4aaaaaaaaaa\x1e4bbbbbbbbbb")
    );
    assert_eq!(
        s.poll_payload().unwrap(),
        Bytes::from_static(b"4cccccccccc\x1ebAQIDBA==")
    );
    assert_eq!(s.poll_payload(), None);
    // A single frame larger than maxPayload still goes out alone.
    let big = "4".repeat(100);
    s.send(Frame::Text(Bytes::from(big.clone()))).unwrap();
    assert_eq!(s.poll_payload().unwrap(), Bytes::from(big));
}

#[test]
fn upgrade_sequence_probe_pause_then_upgrade() {
    let t0 = Instant::now();
    let mut s = opened_polling(t0);
    assert!(s.wants_probe());
    s.handle_probe_open(t0);
    assert!(!s.wants_probe());
    assert!(s.is_probing());
    assert_eq!(s.poll_probe_transmit(), Some(text("2probe")));
    assert_eq!(s.poll_probe_transmit(), None);
    // Polling goes on during the probe.
    s.send(text("4before")).unwrap();
    assert_eq!(s.poll_payload(), Some(Bytes::from_static(b"4before")));
    s.handle_probe_frame(t0 + ms(10), text("3probe"));
    assert!(s.is_pausing());
    assert!(!s.wants_poll());
    // While pausing, nothing is posted; it waits for the WebSocket.
    s.send(text("4during")).unwrap();
    assert_eq!(s.poll_payload(), None);
    // The pending GET ends with a noop.
    s.handle_payload(t0 + ms(20), Bytes::from_static(b"6"));
    assert!(events(&mut s).is_empty());
    s.handle_polling_paused(t0 + ms(20));
    assert_eq!(events(&mut s), vec![ClientEvent::Upgraded]);
    assert_eq!(s.transport(), TransportKind::WebSocket);
    assert!(!s.wants_poll());
    let probe: Vec<Frame> = std::iter::from_fn(|| s.poll_probe_transmit()).collect();
    assert_eq!(probe, vec![text("5"), text("4during")]);
    s.send(text("4after")).unwrap();
    assert_eq!(transmits(&mut s), vec![text("4after")]);
    assert_eq!(s.poll_payload(), None);
}

#[test]
fn probe_failures_keep_polling() {
    let t0 = Instant::now();
    // A wrong answer to the probe.
    let mut s = opened_polling(t0);
    s.handle_probe_open(t0);
    s.handle_probe_frame(t0, text("4nope"));
    assert_eq!(events(&mut s), vec![ClientEvent::UpgradeFailed]);
    assert!(s.wants_poll());
    assert!(!s.wants_probe());
    assert_eq!(s.poll_probe_transmit(), None);

    // The probe cannot connect.
    let mut s = opened_polling(t0);
    s.handle_probe_error();
    assert_eq!(events(&mut s), vec![ClientEvent::UpgradeFailed]);
    assert_eq!(s.transport(), TransportKind::Polling);

    // No answer in time.
    let config = ClientSessionConfig {
        handshake_timeout: ms(100),
        ..Default::default()
    };
    let mut s = ClientSession::new(config, TransportKind::Polling, t0);
    s.handle_payload(t0, Bytes::from_static(OPEN_POLLING));
    events(&mut s);
    s.handle_probe_open(t0 + ms(10));
    assert_eq!(s.poll_timeout(), Some(t0 + ms(110)));
    s.handle_timeout(t0 + ms(110));
    assert_eq!(events(&mut s), vec![ClientEvent::UpgradeFailed]);
    assert!(s.wants_poll());
}

#[test]
fn no_probe_when_upgrade_is_off_or_not_offered() {
    let t0 = Instant::now();
    let config = ClientSessionConfig {
        upgrade: false,
        ..Default::default()
    };
    let mut s = ClientSession::new(config, TransportKind::Polling, t0);
    s.handle_payload(t0, Bytes::from_static(OPEN_POLLING));
    assert!(!s.wants_probe());

    let s = opened_ws(t0);
    assert!(!s.wants_probe());
    assert!(!s.wants_poll());
}

#[test]
fn client_close_flushes_then_posts_a_close_packet_on_polling_only() {
    let t0 = Instant::now();
    let mut s = opened_polling(t0);
    s.send(text("41")).unwrap();
    s.close();
    assert_eq!(
        events(&mut s),
        vec![ClientEvent::Closed(ClientCloseReason::ForcedClose)]
    );
    // What was queued goes first (a namespace DISCONNECT, typically).
    assert_eq!(s.poll_payload(), Some(Bytes::from_static(b"41")));
    assert_eq!(s.poll_payload(), Some(Bytes::from_static(b"1")));
    assert_eq!(s.poll_payload(), None);
    assert!(s.is_closed());
    assert!(!s.wants_poll());
    assert_eq!(s.send(text("4late")), Err(ClientSendError::Closed));

    let mut s = opened_ws(t0);
    s.send(text("41")).unwrap();
    s.close();
    assert_eq!(transmits(&mut s), vec![text("41")]);
}

#[test]
fn closing_during_a_probe_clears_it() {
    let t0 = Instant::now();
    let mut s = opened_polling(t0);
    s.handle_probe_open(t0);
    s.handle_transport_error("reset");
    assert_eq!(
        events(&mut s),
        vec![ClientEvent::Closed(ClientCloseReason::TransportError(
            "reset".into()
        ))]
    );
    assert_eq!(s.poll_probe_transmit(), None);
    assert!(!s.is_probing());
    s.handle_polling_paused(t0);
    assert!(events(&mut s).is_empty());
}

/// Found by the `client_session` fuzz target: `close()` right after the upgrade, before the
/// driver wrote the probe socket, dropped `5` and the messages queued during the upgrade.
#[test]
fn closing_right_after_the_upgrade_still_writes_what_was_queued() {
    let t0 = Instant::now();
    let mut s = opened_polling(t0);
    s.handle_probe_open(t0);
    s.send(text("4during")).unwrap();
    s.handle_probe_frame(t0, text("3probe"));
    s.handle_polling_paused(t0);
    assert_eq!(events(&mut s), vec![ClientEvent::Upgraded]);
    s.close();
    assert_eq!(
        events(&mut s),
        vec![ClientEvent::Closed(ClientCloseReason::ForcedClose)]
    );
    let probe: Vec<Frame> = std::iter::from_fn(|| s.poll_probe_transmit()).collect();
    assert_eq!(probe, vec![text("2probe"), text("5"), text("4during")]);
    // A failure drops them, as it drops the rest of the queue.
    let mut s = opened_polling(t0);
    s.handle_probe_open(t0);
    s.send(text("4during")).unwrap();
    s.handle_probe_frame(t0, text("3probe"));
    s.handle_polling_paused(t0);
    s.handle_transport_error("reset");
    assert_eq!(s.poll_probe_transmit(), None);
}

/// Found by the `client_session` fuzz target: a message sent after the upgrade came out of
/// `poll_transmit` before `5` and the messages queued during the upgrade.
#[test]
fn after_the_upgrade_the_probe_frames_come_first() {
    let t0 = Instant::now();
    let mut s = opened_polling(t0);
    s.handle_probe_open(t0);
    assert_eq!(s.poll_probe_transmit(), Some(text("2probe")));
    s.send(text("4during")).unwrap();
    s.handle_probe_frame(t0, text("3probe"));
    s.handle_polling_paused(t0);
    s.send(text("4after")).unwrap();
    assert_eq!(
        transmits(&mut s),
        vec![text("5"), text("4during"), text("4after")]
    );
}
