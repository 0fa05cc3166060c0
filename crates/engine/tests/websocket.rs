//! WebSocket over real sockets: direct sessions, the upgrade from polling, limits, bad frames,
//! slow readers.

mod common;

use common::{Seen, fast_config, open_sid, start};
use ferrio_engine::{CloseReason, CorsConfig, Message, TransportKind};
use ferrio_testkit::ws::{self, Read};
use ferrio_testkit::{http, within};
use tokio::time::Instant;

/// `ferrio_proto::engine::NOOP_DELAY` (the engine's tests do not depend on the proto crate).
fn ferrio_proto_noop_delay() -> std::time::Duration {
    std::time::Duration::from_millis(100)
}

fn ws_url() -> &'static str {
    "/engine.io/?EIO=4&transport=websocket"
}

/// A WebSocket for an existing (polling) session: the upgrade probe.
async fn probe_ws(server: &common::TestServer, sid: ferrio_engine::Sid) -> ws::Ws {
    ws::connect(
        server.addr,
        &format!("/engine.io/?EIO=4&transport=websocket&sid={sid}"),
    )
    .await
}

#[tokio::test(start_paused = true)]
async fn direct_websocket_session() {
    let mut server = start(fast_config()).await;
    let mut c = ws::connect(server.addr, ws_url()).await;
    let Read::Text(open) = ws::read(&mut c).await else {
        panic!("no open packet")
    };
    let sid = open_sid(&open);
    assert_eq!(
        open,
        format!(
            r#"0{{"sid":"{sid}","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}}"#
        )
    );
    ws::send_text(&mut c, "4hello").await;
    assert_eq!(ws::read(&mut c).await, Read::Text("4hello".into()));
    ws::send_binary(&mut c, &[1, 2, 3, 255]).await;
    assert_eq!(
        ws::read(&mut c).await,
        Read::Binary(vec![1, 2, 3, 255].into())
    );
    // Three heartbeats answered keep the session; each ping comes `pingInterval` after the
    // last pong (paused clock).
    let mut last_pong = Instant::now();
    for _ in 0..3 {
        assert_eq!(ws::read(&mut c).await, Read::Text("2".into()));
        assert_eq!(last_pong.elapsed(), std::time::Duration::from_millis(300));
        ws::send_text(&mut c, "3").await;
        last_pong = Instant::now();
    }
    assert_eq!(
        server.engine.socket(sid).unwrap().transport(),
        TransportKind::WebSocket
    );
    // The client closes the socket: transport close.
    c.close(None).await.unwrap();
    assert_eq!(server.disconnect_of(sid).await, CloseReason::TransportClose);
}

/// The ping comes `pingInterval` after the open packet and the socket is closed exactly
/// `pingTimeout` after it (paused clock).
#[tokio::test(start_paused = true)]
async fn missed_pong_closes_the_websocket() {
    let mut server = start(fast_config()).await;
    let mut c = ws::connect(server.addr, ws_url()).await;
    let Read::Text(open) = ws::read(&mut c).await else {
        panic!()
    };
    let opened = Instant::now();
    let sid = open_sid(&open);
    assert_eq!(ws::read(&mut c).await, Read::Text("2".into()));
    assert_eq!(opened.elapsed(), std::time::Duration::from_millis(300));
    let ping = Instant::now();
    assert!(within(5, "close", ws::closed(&mut c)).await);
    assert_eq!(ping.elapsed(), std::time::Duration::from_millis(200));
    assert_eq!(server.disconnect_of(sid).await, CloseReason::PingTimeout);
}

async fn open_ws(server: &common::TestServer) -> (ws::Ws, ferrio_engine::Sid) {
    let mut c = ws::connect(server.addr, ws_url()).await;
    let Read::Text(open) = ws::read(&mut c).await else {
        panic!("no open packet")
    };
    (c, open_sid(&open))
}

#[tokio::test]
async fn bad_packets_close_only_that_connection() {
    let mut server = start(fast_config()).await;
    // Each of these closes the session: junk types, a client ping, an open packet, a close.
    for (frame, expected) in [
        ("abc", CloseReason::ParseError),
        ("", CloseReason::ParseError),
        ("9", CloseReason::ParseError),
        ("0{}", CloseReason::ParseError),
        (
            "2",
            CloseReason::TransportError("invalid heartbeat direction"),
        ),
        (
            "2probe",
            CloseReason::TransportError("invalid heartbeat direction"),
        ),
        ("1", CloseReason::TransportClose),
    ] {
        let (mut c, sid) = open_ws(&server).await;
        ws::send_text(&mut c, frame).await;
        assert!(within(5, "close", ws::closed(&mut c)).await, "{frame:?}");
        assert_eq!(server.disconnect_of(sid).await, expected, "{frame:?}");
    }
    // Noop and upgrade packets are ignored, as Node does.
    let (mut c, _) = open_ws(&server).await;
    ws::send_text(&mut c, "6").await;
    ws::send_text(&mut c, "5").await;
    ws::send_text(&mut c, "4still").await;
    assert_eq!(ws::read(&mut c).await, Read::Text("4still".into()));
    server.assert_healthy().await;
}

#[tokio::test]
async fn oversized_message_is_closed_with_1009() {
    let mut config = fast_config();
    config.session.max_payload = 1000;
    let mut server = start(config).await;
    let (mut c, sid) = open_ws(&server).await;
    ws::send_text(&mut c, &format!("4{}", "x".repeat(999))).await;
    assert!(matches!(ws::read(&mut c).await, Read::Text(t) if t.len() == 1000));
    ws::send_text(&mut c, &format!("4{}", "x".repeat(1000))).await;
    assert_eq!(ws::read(&mut c).await, Read::Close(1009));
    assert_eq!(
        server.disconnect_of(sid).await,
        CloseReason::TransportError("message too big")
    );
    server.assert_healthy().await;
}

#[tokio::test]
async fn upgrade_from_polling() {
    let mut server = start(fast_config()).await;
    let sid = server.handshake().await;
    let poll_url = server.url(sid);
    let mut c = probe_ws(&server, sid).await;
    ws::send_text(&mut c, "2probe").await;
    assert_eq!(ws::read(&mut c).await, Read::Text("3probe".into()));
    let res = http::get(server.addr, &poll_url).await;
    assert_eq!(res.text(), "6");
    ws::send_text(&mut c, "5").await;
    ws::send_text(&mut c, "4over websocket").await;
    assert_eq!(
        ws::read_text_answering_pings(&mut c).await,
        Read::Text("4over websocket".into())
    );
    assert_eq!(
        server.engine.socket(sid).unwrap().transport(),
        TransportKind::WebSocket
    );
    // Polling is over for this session.
    let res = http::get(server.addr, &poll_url).await;
    assert_eq!(res.status, 400);
    assert_eq!(res.text(), r#"{"code":3,"message":"Bad request"}"#);
    let res = http::post(server.addr, &poll_url, "4x").await;
    assert_eq!(res.status, 400);
    // A second WebSocket for the same session is closed straight away.
    let mut second = probe_ws(&server, sid).await;
    assert!(within(5, "second ws closed", ws::closed(&mut second)).await);
    // The first one still works.
    ws::send_text(&mut c, "4again").await;
    assert_eq!(
        ws::read_text_answering_pings(&mut c).await,
        Read::Text("4again".into())
    );
    let _ = server
        .wait_for("message", |s| {
            matches!(s, Seen::Message(x, Message::Text(t)) if *x == sid && t.as_ref() == b"again")
        })
        .await;
}

/// A GET held when the probe arrives is answered with a noop once `3probe` is out (Node's
/// 100 ms check; paused clock), not with anything else.
#[tokio::test(start_paused = true)]
async fn pending_poll_gets_noop_when_the_probe_arrives() {
    let mut config = fast_config();
    config.session.ping_interval = std::time::Duration::from_secs(30);
    let server = start(config).await;
    let sid = server.handshake().await;
    let held = server.held_get(sid).await;
    let mut c = probe_ws(&server, sid).await;
    let probed = Instant::now();
    ws::send_text(&mut c, "2probe").await;
    assert_eq!(ws::read(&mut c).await, Read::Text("3probe".into()));
    assert_eq!(common::answer(held).await, "6");
    assert_eq!(probed.elapsed(), ferrio_proto_noop_delay());
    ws::send_text(&mut c, "5").await;
    ws::send_text(&mut c, "4done").await;
    assert_eq!(
        ws::read_text_answering_pings(&mut c).await,
        Read::Text("4done".into())
    );
}

#[tokio::test]
async fn junk_on_the_probe_keeps_polling() {
    let server = start(fast_config()).await;
    let sid = server.handshake().await;
    let mut c = probe_ws(&server, sid).await;
    ws::send_text(&mut c, "4not a probe").await;
    assert!(within(5, "probe closed", ws::closed(&mut c)).await);
    let res = http::post(server.addr, &server.url(sid), "4polling").await;
    assert_eq!(res.status, 200);
    let res = http::get(server.addr, &server.url(sid)).await;
    assert_eq!(res.text(), "4polling");
}

/// Without `5` the probe is closed `upgrade_timeout` after it arrived (paused clock) and
/// polling goes on.
#[tokio::test(start_paused = true)]
async fn upgrade_timeout_closes_the_probe() {
    let mut config = fast_config();
    config.session.ping_interval = std::time::Duration::from_secs(30);
    config.session.upgrade_timeout = std::time::Duration::from_millis(100);
    let server = start(config).await;
    let sid = server.handshake().await;
    let started = Instant::now();
    let mut c = probe_ws(&server, sid).await;
    ws::send_text(&mut c, "2probe").await;
    assert_eq!(ws::read(&mut c).await, Read::Text("3probe".into()));
    assert!(within(5, "probe closed", ws::closed(&mut c)).await);
    assert_eq!(started.elapsed(), std::time::Duration::from_millis(100));
    assert_eq!(
        server.engine.socket(sid).unwrap().transport(),
        TransportKind::Polling
    );
}

#[tokio::test]
async fn websocket_errors() {
    let server = start(fast_config()).await;
    // Unknown sid: the upgrade is refused.
    let r = ws::connect_with(
        server.addr,
        "/engine.io/?EIO=4&transport=websocket&sid=unknownsid",
        &[],
    )
    .await;
    assert!(r.is_err());
    // Bad EIO.
    let r = ws::connect_with(server.addr, "/engine.io/?EIO=3&transport=websocket", &[]).await;
    assert!(r.is_err());
    // Unknown transport.
    let r = ws::connect_with(server.addr, "/engine.io/?EIO=4&transport=__proto__", &[]).await;
    assert!(r.is_err());
    assert_eq!(server.engine.session_count(), 0);
    server.assert_healthy().await;
}

#[tokio::test]
async fn origin_is_checked_on_websocket_too() {
    let server = start(fast_config()).await;
    let r = ws::connect_with(server.addr, ws_url(), &[("origin", "http://evil.example")]).await;
    match r {
        Err(ws::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
    let same = format!("http://{}", server.addr);
    let r = ws::connect_with(server.addr, ws_url(), &[("origin", &same)]).await;
    assert!(r.is_ok());
    let mut config = fast_config();
    config.cors = CorsConfig::any();
    let server = start(config).await;
    let r = ws::connect_with(server.addr, ws_url(), &[("origin", "http://evil.example")]).await;
    assert!(r.is_ok());
}

#[tokio::test]
async fn slow_reader_is_disconnected_and_others_are_unaffected() {
    let mut config = fast_config();
    config.session.ping_interval = std::time::Duration::from_secs(30);
    config.session.max_buffered_packets = 16;
    config.session.max_buffered_bytes = 1024 * 1024;
    let mut server = start(config).await;
    let (mut c, sid) = open_ws(&server).await;
    // Ask for a flood of 64 KiB frames, then never read again.
    ws::send_text(&mut c, "4flood").await;
    let reason = server.disconnect_of(sid).await;
    assert_eq!(reason, CloseReason::SlowConsumer);
    server.assert_healthy().await;
    drop(c);
}

#[tokio::test]
async fn invalid_frames_close_the_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start(fast_config()).await;
    // A raw upgrade, then frames a client must never send.
    let frames: &[&[u8]] = &[
        // RSV2 and RSV3 set (CVE-2022-21676 shape).
        &[0xF1, 0x80, 0, 0, 0, 0],
        // Unmasked text frame.
        &[0x81, 0x01, b'4'],
        // Unknown opcode 0x3.
        &[0x83, 0x80, 0, 0, 0, 0],
        // Fragmented control frame (ping without FIN).
        &[0x09, 0x80, 0, 0, 0, 0],
        // Text frame with invalid UTF-8.
        &[0x81, 0x82, 0, 0, 0, 0, 0xC3, 0x28],
        // A 64-bit length far over any limit.
        &[
            0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0,
        ],
    ];
    for frame in frames {
        let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let req = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            ws_url(),
            server.addr
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        // Read the 101 and the open packet.
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        assert!(
            got.starts_with(b"HTTP/1.1 101"),
            "{:?}",
            String::from_utf8_lossy(&got)
        );
        s.write_all(frame).await.unwrap();
        // The server ends the connection (after a close frame or not).
        let ended = within(5, "connection end", async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return true,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(ended, "{frame:?}");
    }
    // Every bad session is gone (the healthy one below may linger a moment after its close).
    assert_eq!(server.engine.session_count(), 0);
    server.assert_healthy().await;
}

#[tokio::test]
async fn huge_headers_and_garbage_are_refused() {
    let server = start(fast_config()).await;
    let big = format!(
        "GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let out = http::raw(server.addr, big.as_bytes(), 1 << 16).await;
    let out = String::from_utf8_lossy(&out);
    assert!(out.is_empty() || out.starts_with("HTTP/1.1 431"), "{out}");
    let out = http::raw(server.addr, b"\x00\x01\x02garbage\r\n\r\n", 1 << 16).await;
    let out = String::from_utf8_lossy(&out);
    assert!(out.is_empty() || out.starts_with("HTTP/1.1 400"), "{out}");
    // An h2c upgrade on the engine path is not a WebSocket: 400, nothing kept.
    let h2c = "GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nConnection: close, Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n";
    let out = http::raw(server.addr, h2c.as_bytes(), 1 << 16).await;
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    server.assert_healthy().await;
}

/// A client that polls again after the first noop (it got the noop before `3probe`) must get
/// a noop again, or it never pauses and the upgrade stalls until `upgrade_timeout` (found by
/// the chat's terminal client).
#[tokio::test(start_paused = true)]
async fn every_poll_during_the_upgrade_ends_with_a_noop() {
    let mut config = fast_config();
    config.session.ping_interval = std::time::Duration::from_secs(30);
    let server = start(config).await;
    let sid = server.handshake().await;
    let mut c = probe_ws(&server, sid).await;
    let probed = Instant::now();
    ws::send_text(&mut c, "2probe").await;
    assert_eq!(ws::read(&mut c).await, Read::Text("3probe".into()));
    for _ in 0..2 {
        let res = within(5, "noop", http::get(server.addr, &server.url(sid))).await;
        assert_eq!(res.text(), "6");
        // Not before Node's 100 ms check after the probe.
        assert!(
            probed.elapsed() >= ferrio_proto_noop_delay(),
            "{:?}",
            probed.elapsed()
        );
    }
    ws::send_text(&mut c, "5").await;
    ws::send_text(&mut c, "4done").await;
    assert_eq!(ws::read(&mut c).await, Read::Text("4done".into()));
}

/// `transports` without WebSocket: a WebSocket handshake, direct or as an upgrade of a
/// polling session, is `Transport unknown` (400 code 0, as Node), and polling goes on.
#[tokio::test]
async fn websocket_disabled_is_transport_unknown() {
    let mut config = fast_config();
    config.transports.websocket = false;
    let server = start(config).await;
    match ws::connect_with(server.addr, ws_url(), &[]).await {
        Err(ws::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), 400);
            assert_eq!(
                res.body().as_deref(),
                Some(br#"{"code":0,"message":"Transport unknown"}"#.as_slice())
            );
        }
        other => panic!("expected 400, got {other:?}"),
    }
    // As Node: the handshake offers no upgrade when WebSocket is off.
    let res = http::get(server.addr, "/engine.io/?EIO=4&transport=polling").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let open: serde_json::Value = serde_json::from_str(&res.text()[1..]).unwrap();
    assert_eq!(open["upgrades"], serde_json::json!([]), "{open}");
    let sid = server.handshake().await;
    let upgrade = format!("{}&sid={sid}", ws_url());
    match ws::connect_with(server.addr, &upgrade, &[]).await {
        Err(ws::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 400),
        other => panic!("expected 400, got {other:?}"),
    }
    let res = http::post(server.addr, &server.url(sid), b"4still".to_vec()).await;
    assert_eq!(res.status, 200);
    let res = http::get(server.addr, &server.url(sid)).await;
    assert_eq!(res.text(), "4still");
    server.assert_healthy().await;
}
