use super::*;

fn cfg() -> SessionConfig {
    SessionConfig {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        ..SessionConfig::default()
    }
}

fn sid() -> Sid {
    Sid::from_random_bytes([7; 15])
}

fn text(s: &'static str) -> Frame {
    Frame::Text(Bytes::from_static(s.as_bytes()))
}

fn payload_string(enc: Encoder) -> String {
    let mut out = Vec::new();
    for c in enc.into_chunks() {
        out.extend_from_slice(&c);
    }
    String::from_utf8(out).unwrap()
}

fn polled(s: &mut Session) -> Option<String> {
    s.poll_payload().map(payload_string)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn polling_handshake_then_ping_at_interval() {
    let t0 = Instant::now();
    let mut s = Session::new(sid(), cfg(), TransportKind::Polling, t0);
    let open = polled(&mut s).unwrap();
    assert!(open.starts_with(r#"0{"sid":""#), "{open}");
    assert!(open.ends_with(
        r#"","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}"#
    ));
    assert_eq!(polled(&mut s), None);
    assert_eq!(s.poll_timeout(), Some(t0 + ms(300)));

    s.handle_timeout(t0 + ms(299));
    assert_eq!(polled(&mut s), None);
    s.handle_timeout(t0 + ms(300));
    assert_eq!(polled(&mut s).as_deref(), Some("2"));
    assert_eq!(s.poll_timeout(), Some(t0 + ms(500)));

    // The pong restarts the interval from when it arrived.
    s.handle_payload(t0 + ms(350), Bytes::from_static(b"3"));
    assert_eq!(s.poll_timeout(), Some(t0 + ms(650)));
    s.handle_timeout(t0 + ms(650));
    assert_eq!(polled(&mut s).as_deref(), Some("2"));
    assert!(s.closed().is_none());
}

#[test]
fn websocket_handshake_has_no_upgrades() {
    let t0 = Instant::now();
    let mut s = Session::new(sid(), cfg(), TransportKind::WebSocket, t0);
    let Some(Frame::Text(open)) = s.poll_transmit() else {
        panic!("no open packet")
    };
    assert!(
        std::str::from_utf8(&open)
            .unwrap()
            .contains(r#""upgrades":[]"#)
    );
    assert!(!s.start_probe(t0));
}

#[test]
fn missed_pong_closes_exactly_at_the_deadline() {
    let t0 = Instant::now();
    let mut s = Session::new(sid(), cfg(), TransportKind::Polling, t0);
    polled(&mut s);
    s.handle_timeout(t0 + ms(300));
    polled(&mut s);
    s.handle_timeout(t0 + ms(499));
    assert!(s.closed().is_none());
    s.handle_timeout(t0 + ms(500));
    assert_eq!(s.closed(), Some(&CloseReason::PingTimeout));
    assert_eq!(
        s.poll_event(),
        Some(Event::Closed(CloseReason::PingTimeout))
    );
    assert_eq!(s.poll_event(), None);
    // A waiting GET is answered with the close packet.
    assert_eq!(polled(&mut s).as_deref(), Some("1"));
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn first_other_packet_extends_the_pong_deadline_once() {
    let t0 = Instant::now();
    let mut s = Session::new(sid(), cfg(), TransportKind::WebSocket, t0);
    s.poll_transmit();
    s.handle_timeout(t0 + ms(300));
    assert_eq!(s.poll_transmit(), Some(text("2")));
    s.handle_frame(t0 + ms(400), text("4a"));
    assert_eq!(s.poll_timeout(), Some(t0 + ms(600)));
    s.handle_frame(t0 + ms(450), text("4b"));
    assert_eq!(s.poll_timeout(), Some(t0 + ms(600)));
    s.handle_timeout(t0 + ms(600));
    assert_eq!(s.closed(), Some(&CloseReason::PingTimeout));
}

#[test]
fn unsolicited_pong_is_ignored() {
    let t0 = Instant::now();
    let mut s = Session::new(sid(), cfg(), TransportKind::WebSocket, t0);
    s.handle_frame(t0 + ms(10), text("3"));
    assert_eq!(s.poll_timeout(), Some(t0 + ms(300)));
    assert!(s.closed().is_none());
}

#[test]
fn client_ping_closes_the_session() {
    let t0 = Instant::now();
    let mut s = Session::new(sid(), cfg(), TransportKind::WebSocket, t0);
    s.handle_frame(t0, text("2"));
    assert_eq!(
        s.closed(),
        Some(&CloseReason::TransportError("invalid heartbeat direction"))
    );
    assert_eq!(s.closed().unwrap().as_str(), "transport error");
}

#[test]
fn messages_are_reported_in_order() {
    let t0 = Instant::now();
    let mut s = Session::new(sid(), cfg(), TransportKind::Polling, t0);
    s.handle_payload(t0, Bytes::from_static(b"4hello\x1ebAQIDBA==\x1e4world"));
    assert_eq!(
        s.poll_event(),
        Some(Event::Message(Message::Text(Bytes::from_static(b"hello"))))
    );
    assert_eq!(
        s.poll_event(),
        Some(Event::Message(Message::Binary(Bytes::from_static(&[
            1, 2, 3, 4
        ]))))
    );
    assert_eq!(
        s.poll_event(),
        Some(Event::Message(Message::Text(Bytes::from_static(b"world"))))
    );
    assert_eq!(s.poll_event(), None);
}

#[test]
fn bad_payload_closes_with_parse_error_and_answers_the_poll_with_close() {
    let t0 = Instant::now();
    let mut s = Session::new(sid(), cfg(), TransportKind::Polling, t0);
    polled(&mut s);
    s.send(text("4queued")).unwrap();
    s.handle_payload(t0, Bytes::from_static(b"abc"));
    assert_eq!(s.closed(), Some(&CloseReason::ParseError));
    assert_eq!(polled(&mut s).as_deref(), Some("1"));
}

#[test]
fn messages_before_a_bad_packet_are_still_delivered() {
    let t0 = Instant::now();
    let mut s = Session::new(sid(), cfg(), TransportKind::Polling, t0);
    s.handle_payload(t0, Bytes::from_static(b"4ok\x1e9"));
    assert!(matches!(s.poll_event(), Some(Event::Message(_))));
    assert_eq!(s.poll_event(), Some(Event::Closed(CloseReason::ParseError)));
}

#[test]
fn too_many_packets_in_a_payload_is_a_parse_error() {
    let t0 = Instant::now();
    let config = SessionConfig {
        max_payload_packets: 2,
        ..cfg()
    };
    let mut s = Session::new(sid(), config, TransportKind::Polling, t0);
    s.handle_payload(t0, Bytes::from_static(b"6\x1e6\x1e6"));
    assert_eq!(s.closed(), Some(&CloseReason::ParseError));
    assert_eq!(s.poll_event(), Some(Event::Closed(CloseReason::ParseError)));
}

#[test]
fn client_close_by_post_answers_the_poll_with_noop() {
    let t0 = Instant::now();
    let mut s = Session::new(sid(), cfg(), TransportKind::Polling, t0);
    polled(&mut s);
    s.handle_payload(t0, Bytes::from_static(b"1"));
    assert_eq!(s.closed(), Some(&CloseReason::TransportClose));
    assert_eq!(polled(&mut s).as_deref(), Some("6"));
    assert_eq!(s.send(text("4late")), Err(SendError::Closed));
}

#[test]
fn server_close_flushes_queue_then_close_packet() {
    let t0 = Instant::now();
    let mut s = Session::new(sid(), cfg(), TransportKind::Polling, t0);
    polled(&mut s);
    s.send(text("4bye")).unwrap();
    s.close(CloseReason::ForcedClose);
    assert_eq!(polled(&mut s).as_deref(), Some("4bye\x1e1"));
    assert_eq!(
        s.poll_event(),
        Some(Event::Closed(CloseReason::ForcedClose))
    );
}

#[test]
fn outbox_is_bounded_in_packets_and_bytes() {
    let t0 = Instant::now();
    let config = SessionConfig {
        max_buffered_packets: 3,
        max_buffered_bytes: 10,
        ..cfg()
    };
    let mut s = Session::new(sid(), config, TransportKind::WebSocket, t0);
    s.poll_transmit();
    // One oversized packet is accepted into an empty outbox.
    s.send(Frame::Binary(Bytes::from(vec![0; 50]))).unwrap();
    assert_eq!(s.send(text("4x")), Err(SendError::Full));
    s.poll_transmit();
    s.send(text("4a")).unwrap();
    s.send(text("4b")).unwrap();
    s.send(text("4c")).unwrap();
    assert_eq!(s.send(text("4d")), Err(SendError::Full));
    let mut n = 0;
    while s.poll_transmit().is_some() {
        n += 1;
    }
    assert_eq!(n, 3);
    assert!(s.has_capacity());
}

#[test]
fn upgrade_sequence() {
    let t0 = Instant::now();
    let mut s = Session::new(sid(), cfg(), TransportKind::Polling, t0);
    polled(&mut s);
    assert!(s.start_probe(t0 + ms(10)));
    assert!(!s.start_probe(t0 + ms(10)), "a second probe is refused");
    assert!(s.is_probing());
    // Nothing for the poll before the probe.
    assert_eq!(polled(&mut s), None);
    assert_eq!(
        s.handle_probe_frame(t0 + ms(20), text("2probe")),
        ProbeReply::Send(text("3probe"))
    );
    // The noop comes 100 ms after the probe, as from Node's check timer.
    assert_eq!(polled(&mut s), None);
    assert_eq!(s.poll_timeout(), Some(t0 + ms(120)));
    s.handle_timeout(t0 + ms(119));
    assert_eq!(polled(&mut s), None);
    s.handle_timeout(t0 + ms(120));
    assert_eq!(polled(&mut s).as_deref(), Some("6"));
    s.send(text("4during")).unwrap();
    assert_eq!(
        s.handle_probe_frame(t0 + ms(30), text("5")),
        ProbeReply::Upgraded
    );
    assert_eq!(s.transport(), TransportKind::WebSocket);
    assert!(!s.is_probing());
    assert_eq!(polled(&mut s), None);
    assert_eq!(s.poll_transmit(), Some(text("4during")));
    assert!(
        !s.start_probe(t0 + ms(40)),
        "no second WebSocket after the upgrade"
    );
    // After the upgrade the session closes on WebSocket without a close packet.
    s.close(CloseReason::ForcedClose);
    assert_eq!(s.poll_transmit(), None);
}

#[test]
fn probe_and_upgrade_back_to_back() {
    let t0 = Instant::now();
    let mut s = Session::new(sid(), cfg(), TransportKind::Polling, t0);
    assert!(s.start_probe(t0));
    assert!(matches!(
        s.handle_probe_frame(t0, text("2probe")),
        ProbeReply::Send(_)
    ));
    assert_eq!(s.handle_probe_frame(t0, text("5")), ProbeReply::Upgraded);
    // The open packet never polled goes out on the WebSocket.
    assert!(s.poll_transmit().is_some());
}

#[test]
fn junk_on_the_probe_aborts_the_upgrade_only() {
    let t0 = Instant::now();
    let mut s = Session::new(sid(), cfg(), TransportKind::Polling, t0);
    assert!(s.start_probe(t0));
    assert_eq!(s.handle_probe_frame(t0, text("4hi")), ProbeReply::Aborted);
    assert!(!s.is_probing());
    assert!(s.closed().is_none());
    assert_eq!(s.transport(), TransportKind::Polling);
    // A later probe may try again.
    assert!(s.start_probe(t0));
}

#[test]
fn upgrade_timeout_aborts_the_probe() {
    let t0 = Instant::now();
    let config = SessionConfig {
        ping_interval: Duration::from_secs(100),
        upgrade_timeout: ms(50),
        ..cfg()
    };
    let mut s = Session::new(sid(), config, TransportKind::Polling, t0);
    assert!(s.start_probe(t0));
    assert_eq!(s.poll_timeout(), Some(t0 + ms(50)));
    s.handle_timeout(t0 + ms(50));
    assert!(!s.is_probing());
    assert!(s.closed().is_none());
    assert_eq!(s.handle_probe_frame(t0, text("5")), ProbeReply::Aborted);
}

#[test]
fn no_upgrade_when_disabled() {
    let t0 = Instant::now();
    let config = SessionConfig {
        allow_upgrades: false,
        ..cfg()
    };
    let mut s = Session::new(sid(), config, TransportKind::Polling, t0);
    assert!(polled(&mut s).unwrap().contains(r#""upgrades":[]"#));
    assert!(!s.start_probe(t0));
}

#[test]
fn transport_closed_reports_reason_once() {
    let t0 = Instant::now();
    let mut s = Session::new(sid(), cfg(), TransportKind::WebSocket, t0);
    s.handle_transport_closed(CloseReason::TransportClose);
    s.handle_transport_closed(CloseReason::PingTimeout);
    s.close(CloseReason::ForcedClose);
    assert_eq!(
        s.poll_event(),
        Some(Event::Closed(CloseReason::TransportClose))
    );
    assert_eq!(s.poll_event(), None);
}

#[test]
fn a_due_ping_with_a_full_outbox_closes_the_session() {
    // Found by the engine_session fuzzer: a client that sends pongs but never reads.
    let t0 = Instant::now();
    let config = SessionConfig {
        max_buffered_packets: 1,
        ..cfg()
    };
    let mut s = Session::new(sid(), config, TransportKind::Polling, t0);
    let mut t = t0;
    for _ in 0..3 {
        t += ms(300);
        s.handle_timeout(t);
        s.handle_payload(t, Bytes::from_static(b"3"));
    }
    assert_eq!(s.closed(), Some(&CloseReason::SlowConsumer));
}

#[test]
fn every_poll_during_the_upgrade_gets_a_noop() {
    // A client may re-poll after the first noop (when it arrives before `3probe`): that poll
    // must end too, or the client never pauses and the upgrade stalls.
    let t0 = Instant::now();
    let config = SessionConfig {
        ping_interval: Duration::from_secs(100),
        ..cfg()
    };
    let mut s = Session::new(sid(), config, TransportKind::Polling, t0);
    polled(&mut s);
    assert!(s.start_probe(t0));
    s.handle_probe_frame(t0, text("2probe"));
    s.handle_timeout(t0 + ms(100));
    assert_eq!(polled(&mut s).as_deref(), Some("6"));
    assert_eq!(polled(&mut s), None);
    s.handle_timeout(t0 + ms(200));
    assert_eq!(polled(&mut s).as_deref(), Some("6"));
    assert_eq!(
        s.handle_probe_frame(t0 + ms(250), text("5")),
        ProbeReply::Upgraded
    );
    // No more checks once upgraded.
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(100)));
}

#[test]
fn a_late_timer_does_not_extend_the_session() {
    // The official suites GET at interval + timeout after the handshake and expect 400.
    let t0 = Instant::now();
    let mut s = Session::new(sid(), cfg(), TransportKind::Polling, t0);
    s.handle_timeout(t0 + ms(310));
    assert_eq!(s.poll_timeout(), Some(t0 + ms(500)));
    s.handle_timeout(t0 + ms(500));
    assert_eq!(s.closed(), Some(&CloseReason::PingTimeout));

    // A server so late that the window has passed gives the client a full window.
    let mut s = Session::new(sid(), cfg(), TransportKind::Polling, t0);
    s.handle_timeout(t0 + ms(900));
    assert!(s.closed().is_none());
    assert_eq!(s.poll_timeout(), Some(t0 + ms(1100)));
}

/// While the server holds reading (backpressure), a pong cannot arrive: the deadline waits,
/// and the client gets a full timeout once reading resumes.
#[test]
fn held_reading_suspends_the_pong_deadline() {
    let t0 = Instant::now();
    let mut s = Session::new(sid(), cfg(), TransportKind::WebSocket, t0);
    while s.poll_transmit().is_some() {}
    s.handle_timeout(t0 + ms(300));
    assert_eq!(s.poll_transmit(), Some(text("2")));
    s.set_reading_held(t0 + ms(310), true);
    // The pong deadline (500) no longer counts; no other timer is due.
    assert_eq!(s.poll_timeout(), None);
    s.handle_timeout(t0 + ms(2000));
    assert!(s.closed().is_none());
    s.set_reading_held(t0 + ms(2000), false);
    assert_eq!(s.poll_timeout(), Some(t0 + ms(2200)));
    s.handle_timeout(t0 + ms(2199));
    assert!(s.closed().is_none());
    s.handle_timeout(t0 + ms(2200));
    assert_eq!(s.closed(), Some(&CloseReason::PingTimeout));
    // Released without a pong awaited: nothing changes.
    let mut s = Session::new(sid(), cfg(), TransportKind::WebSocket, t0);
    s.set_reading_held(t0, true);
    s.set_reading_held(t0 + ms(10), false);
    assert_eq!(s.poll_timeout(), Some(t0 + ms(300)));
}

fn v3(transport: TransportKind, t0: Instant, supports_binary: bool) -> Session {
    Session::new_v3(sid(), cfg(), transport, t0, supports_binary)
}

#[test]
fn v3_handshake_is_length_prefixed_and_the_server_never_pings() {
    let t0 = Instant::now();
    let mut s = v3(TransportKind::Polling, t0, true);
    assert_eq!(
        s.protocol(),
        Protocol::V3 {
            supports_binary: true
        }
    );
    assert_eq!(s.protocol().revision(), 3);
    let open = polled(&mut s).unwrap();
    let (len, packet) = open.split_once(':').unwrap();
    assert_eq!(len.parse::<usize>().unwrap(), packet.len());
    assert!(packet.starts_with(r#"0{"sid":""#), "{open}");
    // No server ping: the only deadline is the client's ping, interval + timeout away.
    assert_eq!(s.poll_timeout(), Some(t0 + ms(500)));
    s.handle_timeout(t0 + ms(300));
    assert_eq!(polled(&mut s), None);
    assert!(s.closed().is_none());
}

#[test]
fn v3_client_ping_is_answered_and_restarts_the_deadline() {
    let t0 = Instant::now();
    let mut s = v3(TransportKind::Polling, t0, true);
    polled(&mut s);
    s.handle_payload(t0 + ms(250), Bytes::from_static(b"1:2"));
    assert_eq!(polled(&mut s).as_deref(), Some("1:3"));
    assert_eq!(s.poll_timeout(), Some(t0 + ms(750)));
    // Messages do not count as a heartbeat.
    s.handle_payload(t0 + ms(700), Bytes::from_static(b"2:4a"));
    assert_eq!(
        s.poll_event(),
        Some(Event::Message(Message::Text(Bytes::from_static(b"a"))))
    );
    s.handle_timeout(t0 + ms(749));
    assert!(s.closed().is_none());
    s.handle_timeout(t0 + ms(750));
    assert_eq!(s.closed(), Some(&CloseReason::PingTimeout));
}

#[test]
fn v3_pong_from_the_client_is_an_error() {
    let t0 = Instant::now();
    let mut s = v3(TransportKind::Polling, t0, true);
    polled(&mut s);
    s.handle_payload(t0, Bytes::from_static(b"1:3"));
    assert_eq!(
        s.closed(),
        Some(&CloseReason::TransportError("invalid heartbeat direction"))
    );
    // A v4 payload is not a v3 one.
    let mut s = v3(TransportKind::Polling, t0, true);
    s.handle_payload(t0, Bytes::from_static(b"4a\x1e4b"));
    assert_eq!(s.closed(), Some(&CloseReason::ParseError));
}

#[test]
fn v3_binary_goes_out_in_the_binary_payload_or_as_base64() {
    let t0 = Instant::now();
    let mut s = v3(TransportKind::Polling, t0, true);
    polled(&mut s);
    s.send(text("451-[\"x\",{\"_placeholder\":true,\"num\":0}]"))
        .unwrap();
    s.send(Frame::Binary(Bytes::from_static(&[1, 2]))).unwrap();
    let enc = s.poll_payload().unwrap();
    assert!(enc.is_binary());
    let body = enc.into_chunks().concat();
    assert_eq!(&body[..4], &[0, 3, 9, 0xFF]);
    assert_eq!(&body[body.len() - 6..], &[1, 3, 0xFF, 4, 1, 2]);

    let mut s = v3(TransportKind::Polling, t0, false);
    polled(&mut s);
    s.send(Frame::Binary(Bytes::from_static(&[1, 2]))).unwrap();
    let enc = s.poll_payload().unwrap();
    assert!(!enc.is_binary());
    assert_eq!(payload_string(enc), "6:b4AQI=");

    // And comes in either way.
    let mut s = v3(TransportKind::Polling, t0, true);
    s.handle_binary_payload(
        t0,
        Bytes::from_static(&[1, 3, 0xFF, 4, 1, 2, 0, 2, 0xFF, b'4', b'a']),
    );
    assert_eq!(
        s.poll_event(),
        Some(Event::Message(Message::Binary(Bytes::from_static(&[1, 2]))))
    );
    assert_eq!(
        s.poll_event(),
        Some(Event::Message(Message::Text(Bytes::from_static(b"a"))))
    );
    s.handle_payload(t0, Bytes::from_static(b"6:b4AQI="));
    assert_eq!(
        s.poll_event(),
        Some(Event::Message(Message::Binary(Bytes::from_static(&[1, 2]))))
    );
    // A v4 session has no binary payload.
    let mut s = Session::new(sid(), cfg(), TransportKind::Polling, t0);
    s.handle_binary_payload(t0, Bytes::from_static(&[0, 2, 0xFF, b'4', b'a']));
    assert_eq!(s.closed(), Some(&CloseReason::ParseError));
}

#[test]
fn v3_websocket_frames_carry_the_binary_type_byte() {
    let t0 = Instant::now();
    let mut s = v3(TransportKind::WebSocket, t0, true);
    assert!(matches!(s.poll_transmit(), Some(Frame::Text(_))));
    s.send(Frame::Binary(Bytes::from_static(&[7]))).unwrap();
    assert_eq!(
        s.poll_transmit(),
        Some(Frame::Binary(Bytes::from_static(&[4, 7])))
    );
    s.handle_frame(t0, Frame::Binary(Bytes::from_static(&[4, 8])));
    assert_eq!(
        s.poll_event(),
        Some(Event::Message(Message::Binary(Bytes::from_static(&[8]))))
    );
    s.handle_frame(t0, text("2"));
    assert_eq!(s.poll_transmit(), Some(text("3")));
}

#[test]
fn v3_upgrade_uses_the_same_probe() {
    let t0 = Instant::now();
    let mut s = v3(TransportKind::Polling, t0, true);
    polled(&mut s);
    assert!(s.start_probe(t0));
    assert_eq!(
        s.handle_probe_frame(t0, text("2probe")),
        ProbeReply::Send(text("3probe"))
    );
    s.handle_timeout(t0 + NOOP_DELAY);
    assert_eq!(polled(&mut s).as_deref(), Some("1:6"));
    assert_eq!(s.handle_probe_frame(t0, text("5")), ProbeReply::Upgraded);
    assert_eq!(s.transport(), TransportKind::WebSocket);
    assert_eq!(s.noop_payload().into_chunks().concat(), b"1:6");
}

#[test]
fn v3_pings_without_reading_are_bounded() {
    let t0 = Instant::now();
    let config = SessionConfig {
        max_buffered_packets: 4,
        ..cfg()
    };
    let mut s = Session::new_v3(sid(), config, TransportKind::Polling, t0, true);
    // The open packet and three pongs fill the outbox; the next ping closes.
    s.handle_payload(t0, Bytes::from_static(b"1:21:21:2"));
    assert!(s.closed().is_none());
    s.handle_payload(t0, Bytes::from_static(b"1:2"));
    assert_eq!(
        s.closed(),
        Some(&CloseReason::TransportError(
            "outbound buffer full (slow consumer)"
        ))
    );
}
