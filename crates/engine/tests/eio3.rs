//! Engine.IO v3 (`allow_eio3`, the protocol of `socket.io-client` 2.x) over real sockets:
//! the refusal when off, the length-prefixed and binary polling payloads, the heartbeat the
//! client drives, typed binary WebSocket frames and the upgrade.

mod common;

use std::time::Duration;

use ::http::Method;
use bytes::Bytes;
use common::{Seen, fast_config, start};
use ferrio_engine::{CloseReason, EngineConfig, Message, Protocol, Sid, TransportKind};
use ferrio_testkit::ws::{self, Read};
use ferrio_testkit::{http, within};
use tokio::time::Instant;

fn v3_config() -> EngineConfig {
    let mut c = fast_config();
    c.allow_eio3 = true;
    c
}

fn url(sid: Sid) -> String {
    format!("/engine.io/?EIO=3&transport=polling&sid={sid}")
}

/// The sid of a v3 handshake body `<len>:0{...}`, after checking the length prefix.
fn v3_open_sid(body: &str) -> Sid {
    let (len, packet) = body.split_once(':').expect("length prefix");
    assert_eq!(len.parse::<usize>().unwrap(), packet.encode_utf16().count());
    common::open_sid(packet)
}

async fn v3_handshake(server: &common::TestServer, query: &str) -> Sid {
    let res = http::get(
        server.addr,
        &format!("/engine.io/?EIO=3&transport=polling{query}"),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    v3_open_sid(&res.text())
}

async fn post_binary(server: &common::TestServer, sid: Sid, body: &[u8]) -> http::Response {
    http::request(
        server.addr,
        Method::POST,
        &url(sid),
        &[("content-type", "application/octet-stream")],
        Bytes::copy_from_slice(body),
    )
    .await
}

#[tokio::test]
async fn refused_unless_allowed_and_only_for_eio_3() {
    let server = start(fast_config()).await;
    let res = http::get(server.addr, "/engine.io/?EIO=3&transport=polling").await;
    assert_eq!(res.status, 400);
    assert_eq!(
        res.text(),
        r#"{"code":5,"message":"Unsupported protocol version"}"#
    );
    // Allowed: still only `3` and `4` (Node would take anything but `4` for v3).
    let server = start(v3_config()).await;
    for query in [
        "transport=polling",
        "EIO=abc&transport=polling",
        "EIO=2&transport=polling",
    ] {
        let res = http::get(server.addr, &format!("/engine.io/?{query}")).await;
        assert_eq!(res.status, 400, "{query}");
        assert_eq!(
            res.text(),
            r#"{"code":5,"message":"Unsupported protocol version"}"#
        );
    }
    // JSONP polling is not served.
    let res = http::get(server.addr, "/engine.io/?EIO=3&transport=polling&j=0").await;
    assert_eq!(res.status, 400);
    assert_eq!(res.text(), r#"{"code":0,"message":"Transport unknown"}"#);
    // v4 is unchanged.
    server.assert_healthy().await;
}

#[tokio::test]
async fn polling_handshake_and_length_prefixed_payloads() {
    let mut server = start(v3_config()).await;
    let res = http::get(server.addr, "/engine.io/?EIO=3&transport=polling&t=x").await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    let body = res.text();
    let sid = v3_open_sid(&body);
    let open = format!(
        r#"0{{"sid":"{sid}","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}}"#
    );
    assert_eq!(body, format!("{}:{open}", open.len()));
    assert_eq!(
        server.engine.socket(sid).unwrap().protocol(),
        Protocol::V3 {
            supports_binary: true
        }
    );
    // Lengths count UTF-16 code units: `4€` is 2, `4😀` is 3.
    let res = http::post(server.addr, &url(sid), "6:4hello2:4€3:4😀").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.text(), "ok");
    let res = http::get(server.addr, &url(sid)).await;
    assert_eq!(res.text(), "6:4hello2:4€3:4😀");
    for text in ["hello", "€", "😀"] {
        server
            .wait_for("message", |s| {
                matches!(s, Seen::Message(x, Message::Text(t)) if *x == sid && t.as_ref() == text.as_bytes())
            })
            .await;
    }
    // A v4 body is a parse error in v3.
    let res = http::post(server.addr, &url(sid), "4a\x1e4b").await;
    assert_eq!(res.status, 400);
    assert_eq!(server.disconnect_of(sid).await, CloseReason::ParseError);
}

#[tokio::test]
async fn binary_polling_payloads_both_ways_and_base64_with_b64() {
    let mut server = start(v3_config()).await;
    let sid = v3_handshake(&server, "").await;
    // A text packet and a binary one, in the binary payload format.
    let mut body = vec![0u8, 3, 0xFF];
    body.extend_from_slice(b"4hi");
    body.extend_from_slice(&[1, 4, 0xFF, 4, 1, 2, 3]);
    let res = post_binary(&server, sid, &body).await;
    assert_eq!(res.status, 200);
    server
        .wait_for("binary message", |s| {
            *s == Seen::Message(sid, Message::Binary(Bytes::from_static(&[1, 2, 3])))
        })
        .await;
    // The echo holds binary: the binary payload, as octet-stream.
    let res = http::get(server.addr, &url(sid)).await;
    assert_eq!(res.header("content-type"), Some("application/octet-stream"));
    assert_eq!(res.body.as_ref(), &body[..]);

    // `b64=1`: binary goes as base64 text, and comes that way too.
    let sid = v3_handshake(&server, "&b64=1").await;
    let res = http::post(server.addr, &format!("{}&b64=1", url(sid)), "10:b4AQIDBA==").await;
    assert_eq!(res.status, 200);
    let res = http::get(server.addr, &format!("{}&b64=1", url(sid))).await;
    assert_eq!(
        res.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    assert_eq!(res.text(), "10:b4AQIDBA==");

    // A v4 session still refuses binary bodies.
    let v4 = server.handshake().await;
    let res = http::request(
        server.addr,
        Method::POST,
        &server.url(v4),
        &[("content-type", "application/octet-stream")],
        Bytes::from_static(&[0, 1, 0xFF, b'6']),
    )
    .await;
    assert_eq!(res.status, 400);
}

/// The client pings and the server answers `3` at once; with no ping for pingInterval +
/// pingTimeout (500 ms) the session closes (paused clock).
#[tokio::test(start_paused = true)]
async fn the_client_pings_and_the_server_answers() {
    let mut server = start(v3_config()).await;
    let sid = v3_handshake(&server, "").await;
    let opened = Instant::now();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(http::post(server.addr, &url(sid), "1:2").await.status, 200);
    assert_eq!(http::get(server.addr, &url(sid)).await.text(), "1:3");
    // The ping restarted the 500 ms: nothing happens at 500 ms from the handshake, the server
    // sends no ping of its own, and the session closes 500 ms after the ping.
    let held = server.held_get(sid).await;
    assert_eq!(server.disconnect_of(sid).await, CloseReason::PingTimeout);
    assert_eq!(opened.elapsed(), Duration::from_millis(900));
    assert_eq!(common::answer(held).await, "1:1");

    // A pong from a v3 client is the wrong direction.
    let sid = v3_handshake(&server, "").await;
    assert_eq!(http::post(server.addr, &url(sid), "1:3").await.status, 200);
    assert_eq!(
        server.disconnect_of(sid).await,
        CloseReason::TransportError("invalid heartbeat direction")
    );
}

#[tokio::test(start_paused = true)]
async fn websocket_frames_carry_the_binary_type() {
    let mut server = start(v3_config()).await;
    let mut c = ws::connect(server.addr, "/engine.io/?EIO=3&transport=websocket").await;
    let Read::Text(open) = ws::read(&mut c).await else {
        panic!("no open packet")
    };
    assert!(open.contains(r#""upgrades":[]"#), "{open}");
    let sid = common::open_sid(&open);
    let opened = Instant::now();
    ws::send_text(&mut c, "4hello").await;
    assert_eq!(ws::read(&mut c).await, Read::Text("4hello".into()));
    ws::send_binary(&mut c, &[4, 9, 8]).await;
    assert_eq!(
        ws::read(&mut c).await,
        Read::Binary(Bytes::from_static(&[4, 9, 8]))
    );
    server
        .wait_for("binary message", |s| {
            *s == Seen::Message(sid, Message::Binary(Bytes::from_static(&[9, 8])))
        })
        .await;
    ws::send_text(&mut c, "2").await;
    assert_eq!(ws::read(&mut c).await, Read::Text("3".into()));
    // No server ping; closed 500 ms after the last client ping.
    let pinged = Instant::now();
    assert!(within(5, "close", ws::closed(&mut c)).await);
    assert_eq!(pinged.elapsed(), Duration::from_millis(500));
    assert!(opened.elapsed() < Duration::from_millis(600));
    assert_eq!(server.disconnect_of(sid).await, CloseReason::PingTimeout);
}

#[tokio::test]
async fn upgrade_from_polling_with_the_same_probe() {
    let mut server = start(v3_config()).await;
    let sid = v3_handshake(&server, "").await;
    // The upgrade must speak the session's protocol.
    let res = http::request(
        server.addr,
        Method::GET,
        &format!("/engine.io/?EIO=4&transport=websocket&sid={sid}"),
        &[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
        Bytes::new(),
    )
    .await;
    assert_eq!(res.status, 400);
    let mut c = ws::connect(
        server.addr,
        &format!("/engine.io/?EIO=3&transport=websocket&sid={sid}"),
    )
    .await;
    ws::send_text(&mut c, "2probe").await;
    assert_eq!(ws::read(&mut c).await, Read::Text("3probe".into()));
    assert_eq!(http::get(server.addr, &url(sid)).await.text(), "1:6");
    ws::send_text(&mut c, "5").await;
    ws::send_binary(&mut c, &[4, 1]).await;
    assert_eq!(
        ws::read(&mut c).await,
        Read::Binary(Bytes::from_static(&[4, 1]))
    );
    assert_eq!(
        server.engine.socket(sid).unwrap().transport(),
        TransportKind::WebSocket
    );
    ws::send_text(&mut c, "1").await;
    assert_eq!(server.disconnect_of(sid).await, CloseReason::TransportClose);
}

/// The real v3 codec (`engine.io-parser` 2.x, which `socket.io-client` 2.x uses) reads what
/// Ferrio answers and writes what Ferrio reads: the binary payload format (UTF-8 text, typed
/// binary) and the text one (UTF-16 lengths, base64 binary), the latter also as the answer to
/// a `b64=1` client.
#[tokio::test]
async fn payloads_agree_with_engine_io_parser_2() {
    ferrio_testkit::node::require_node_modules();
    let server = start(v3_config()).await;
    let url = format!("http://{}", server.addr);
    let mut node = ferrio_testkit::node::NodeProcess::spawn("engine/v3-payloads.mjs", &[&url]);
    let line = node.expect_line("", 10).await;
    let mut result: serde_json::Value = match line.strip_prefix("result ") {
        Some(json) => serde_json::from_str(json).unwrap(),
        None => panic!("{line}"),
    };
    // The pong is written by the engine at once, the echoes come from the handler: the
    // order between them is not the protocol's.
    let packets = result["binary"]["packets"].as_array_mut().unwrap();
    let pong = packets
        .iter()
        .position(|p| p["type"] == "pong")
        .expect("a pong");
    packets.remove(pong);
    assert_eq!(
        result,
        serde_json::json!({
            "open": ["open"],
            "binary": {
                "type": "application/octet-stream",
                "packets": [
                    { "type": "message", "data": "héllo €😀" },
                    { "type": "message", "data": { "$bin": "010203ff" } },
                ]
            },
            // Posted as text with base64; answered in the binary format, which the client
            // supports (no `b64` in its handshake), as Node does.
            "text": {
                "type": "application/octet-stream",
                "packets": [
                    { "type": "message", "data": "😀€" },
                    { "type": "message", "data": { "$bin": "09" } },
                ]
            },
            "base64": {
                "type": "text/plain; charset=UTF-8",
                "packets": [
                    { "type": "message", "data": "é" },
                    { "type": "message", "data": { "$bin": "00ff" } },
                ]
            }
        })
    );
}

/// Bodies that break the v3 framing close only their session: a length far past the body
/// (the shape of socket.io-parser's CVE-2020-36049 payload), a length that ends inside a
/// character, junk in the binary format.
#[tokio::test]
async fn malformed_v3_bodies_close_only_their_session() {
    let mut server = start(v3_config()).await;
    let long = format!("99999991:42{}", "2".repeat(1000));
    for body in [long.as_str(), "2:4😀", "x:4a", "4a"] {
        let sid = v3_handshake(&server, "").await;
        let res = http::post(server.addr, &url(sid), body.to_owned()).await;
        assert_eq!(res.status, 400, "{body}");
        assert_eq!(
            server.disconnect_of(sid).await,
            CloseReason::ParseError,
            "{body}"
        );
    }
    for body in [
        &[0u8, 9, 9, 0xFF, b'4'][..],
        &[7, 1, 0xFF, b'6'],
        &[1, 2, 0xFF, 9, 9],
    ] {
        let sid = v3_handshake(&server, "").await;
        let res = post_binary(&server, sid, body).await;
        assert_eq!(res.status, 400, "{body:?}");
        assert_eq!(
            server.disconnect_of(sid).await,
            CloseReason::ParseError,
            "{body:?}"
        );
    }
    // Others go on.
    let sid = v3_handshake(&server, "").await;
    assert_eq!(
        http::post(server.addr, &url(sid), "3:4ok").await.status,
        200
    );
    assert_eq!(http::get(server.addr, &url(sid)).await.text(), "3:4ok");
    server.assert_healthy().await;
}
