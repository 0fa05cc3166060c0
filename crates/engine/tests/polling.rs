//! HTTP long-polling over real sockets: handshake, messages, heartbeat, close, errors, CORS.

mod common;

use std::time::Duration;

use ::http::Method;
use bytes::Bytes;
use common::{Seen, fast_config, open_sid, start};
use ferrio_engine::{
    AllowRequest, AllowedOrigins, CloseReason, CookieConfig, CorsConfig, Message, Rejection,
};
use ferrio_testkit::{http, within};
use tokio::time::Instant;

#[tokio::test]
async fn handshake_has_the_five_keys() {
    let server = start(fast_config()).await;
    let res = http::get(server.addr, "/engine.io/?EIO=4&transport=polling&t=abc").await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let body = res.text();
    let sid = open_sid(&body);
    assert_eq!(sid.as_str().len(), 20);
    assert_eq!(
        body,
        format!(
            r#"0{{"sid":"{sid}","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}}"#
        )
    );
}

#[tokio::test]
async fn text_and_binary_round_trip() {
    let mut server = start(fast_config()).await;
    let sid = server.handshake().await;
    server
        .wait_for("connect", |s| matches!(s, Seen::Connect(x) if *x == sid))
        .await;
    let res = http::post(server.addr, &server.url(sid), "4hello\x1ebAQIDBA==").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.text(), "ok");
    assert_eq!(res.header("content-type"), Some("text/html"));
    let res = http::get(server.addr, &server.url(sid)).await;
    assert_eq!(res.text(), "4hello\x1ebAQIDBA==");
    let seen = server
        .wait_for("binary message", |s| {
            matches!(s, Seen::Message(_, Message::Binary(_)))
        })
        .await;
    assert_eq!(
        seen,
        Seen::Message(sid, Message::Binary(Bytes::from_static(&[1, 2, 3, 4])))
    );
}

/// On tokio's paused clock: each ping goes out `pingInterval` after the last pong, and the
/// session ends exactly `pingTimeout` after the unanswered one.
#[tokio::test(start_paused = true)]
async fn heartbeat_keeps_the_session_and_a_missed_pong_ends_it() {
    let config = fast_config();
    let (interval, timeout) = (config.session.ping_interval, config.session.ping_timeout);
    let mut server = start(config).await;
    let sid = server.handshake().await;
    let mut last_pong = Instant::now();
    for _ in 0..3 {
        let res = http::get(server.addr, &server.url(sid)).await;
        assert_eq!(res.text(), "2");
        assert_eq!(last_pong.elapsed(), interval);
        let res = http::post(server.addr, &server.url(sid), "3").await;
        assert_eq!(res.status, 200);
        last_pong = Instant::now();
    }
    // Now stop answering: the next ping goes unanswered.
    let res = http::get(server.addr, &server.url(sid)).await;
    assert_eq!(res.text(), "2");
    let ping = Instant::now();
    assert_eq!(server.disconnect_of(sid).await, CloseReason::PingTimeout);
    assert_eq!(ping.elapsed(), timeout);
    let res = http::get(server.addr, &server.url(sid)).await;
    assert_eq!(res.status, 400);
    assert_eq!(res.text(), r#"{"code":1,"message":"Session ID unknown"}"#);
}

/// The official suite GETs `pingInterval + pingTimeout` (500 ms) after the handshake and
/// expects 400: the session must be gone by then, not later (paused clock).
#[tokio::test(start_paused = true)]
async fn session_dies_within_interval_plus_timeout() {
    let config = fast_config();
    let bound = config.session.ping_interval + config.session.ping_timeout;
    let mut server = start(config).await;
    let sid = server.handshake().await;
    let t0 = Instant::now();
    let reason = server.disconnect_of(sid).await;
    assert_eq!(reason, CloseReason::PingTimeout);
    assert_eq!(t0.elapsed(), bound, "closed later than interval + timeout");
    // And a GET sent at the bound (here just after it was reached) finds the session gone.
    tokio::time::sleep_until(t0 + bound).await;
    let res = http::get(server.addr, &server.url(sid)).await;
    assert_eq!(res.status, 400);
    assert_eq!(res.text(), r#"{"code":1,"message":"Session ID unknown"}"#);
}

/// A GET that is held when the client posts `1` is answered with a noop; the session is then
/// gone for every later request.
#[tokio::test]
async fn client_close_answers_pending_get_with_noop() {
    let mut config = fast_config();
    config.session.ping_interval = Duration::from_secs(30);
    let mut server = start(config).await;
    let sid = server.handshake().await;
    let get = server.held_get(sid).await;
    let res = http::post(server.addr, &server.url(sid), "1").await;
    assert_eq!(res.status, 200);
    assert_eq!(common::answer(get).await, "6");
    assert_eq!(server.disconnect_of(sid).await, CloseReason::TransportClose);
    let res = http::get(server.addr, &server.url(sid)).await;
    assert_eq!(res.status, 400);
    assert_eq!(res.text(), r#"{"code":1,"message":"Session ID unknown"}"#);
}

#[tokio::test]
async fn overlapping_gets_close_the_session() {
    let mut server = start(fast_config()).await;
    let sid = server.handshake().await;
    let (addr, url) = (server.addr, server.url(sid));
    let first = tokio::spawn({
        let url = url.clone();
        async move { http::get(addr, &url).await }
    });
    let second = tokio::spawn(async move { http::get(addr, &url).await });
    let (a, b) = (
        within(5, "first GET", first).await.unwrap(),
        within(5, "second GET", second).await.unwrap(),
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 400]);
    let ok = if a.status == 200 { a } else { b };
    assert_eq!(ok.text(), "1");
    assert_eq!(
        server.disconnect_of(sid).await,
        CloseReason::TransportError("overlap from client")
    );
    server.assert_healthy().await;
}

/// A held GET whose connection the client closes ends the session (Node's "closes the
/// session upon cancelled polling request"). The heartbeat is far away, so no ping timeout
/// can be the reason instead.
#[tokio::test]
async fn aborted_get_closes_the_session() {
    let mut config = fast_config();
    config.session.ping_interval = Duration::from_secs(30);
    let mut server = start(config).await;
    let sid = server.handshake().await;
    let get = server.held_get(sid).await;
    drop(get);
    let reason = server.disconnect_of(sid).await;
    assert_eq!(
        reason,
        CloseReason::TransportError("poll connection closed prematurely")
    );
    server.assert_healthy().await;
}

#[tokio::test]
async fn server_close_flushes_then_sends_close_packet() {
    let mut server = start(fast_config()).await;
    let sid = server.handshake().await;
    let socket = server.engine.socket(sid).unwrap();
    socket
        .send(ferrio_engine::Frame::text_message("bye"))
        .unwrap();
    socket.close();
    let res = http::get(server.addr, &server.url(sid)).await;
    assert_eq!(res.text(), "4bye\x1e1");
    assert_eq!(server.disconnect_of(sid).await, CloseReason::ForcedClose);
    let res = http::get(server.addr, &server.url(sid)).await;
    assert_eq!(res.status, 400);
}

#[tokio::test]
async fn error_codes_match_node() {
    let mut config = fast_config();
    config.allow_request = Some(AllowRequest::new(|h| async move {
        if h.query.contains_key("deny") {
            Err(Rejection {
                message: "go away".into(),
            })
        } else {
            Ok(())
        }
    }));
    let mut server = start(config).await;
    let addr = server.addr;
    let cases: &[(Method, &str, u16, &str)] = &[
        (
            Method::GET,
            "/engine.io/?EIO=4",
            400,
            r#"{"code":0,"message":"Transport unknown"}"#,
        ),
        (
            Method::GET,
            "/engine.io/?EIO=4&transport=foo",
            400,
            r#"{"code":0,"message":"Transport unknown"}"#,
        ),
        (
            Method::GET,
            "/engine.io/?EIO=4&transport=__proto__",
            400,
            r#"{"code":0,"message":"Transport unknown"}"#,
        ),
        (
            Method::GET,
            "/engine.io/?EIO=4&transport=constructor",
            400,
            r#"{"code":0,"message":"Transport unknown"}"#,
        ),
        (
            Method::GET,
            "/engine.io/?EIO=4&transport=polling&sid=nope",
            400,
            r#"{"code":1,"message":"Session ID unknown"}"#,
        ),
        (
            Method::GET,
            "/engine.io/?EIO=4&transport=polling&sid=__proto__",
            400,
            r#"{"code":1,"message":"Session ID unknown"}"#,
        ),
        (
            Method::GET,
            "/engine.io/?EIO=4&transport=polling&sid=hasOwnProperty",
            400,
            r#"{"code":1,"message":"Session ID unknown"}"#,
        ),
        (
            Method::GET,
            "/engine.io/?EIO=4&transport=polling&sid=%00%FF",
            400,
            r#"{"code":1,"message":"Session ID unknown"}"#,
        ),
        (
            Method::POST,
            "/engine.io/?EIO=4&transport=polling",
            400,
            r#"{"code":2,"message":"Bad handshake method"}"#,
        ),
        (
            Method::PUT,
            "/engine.io/?EIO=4&transport=polling",
            400,
            r#"{"code":2,"message":"Bad handshake method"}"#,
        ),
        (
            Method::GET,
            "/engine.io/?EIO=4&transport=websocket",
            400,
            r#"{"code":3,"message":"Bad request"}"#,
        ),
        (
            Method::GET,
            "/engine.io/?EIO=4&transport=polling&deny=1",
            403,
            r#"{"code":4,"message":"go away"}"#,
        ),
        (
            Method::GET,
            "/engine.io/?transport=polling",
            400,
            r#"{"code":5,"message":"Unsupported protocol version"}"#,
        ),
        (
            Method::GET,
            "/engine.io/?EIO=3&transport=polling",
            400,
            r#"{"code":5,"message":"Unsupported protocol version"}"#,
        ),
        (
            Method::GET,
            "/engine.io/?EIO=abc&transport=polling",
            400,
            r#"{"code":5,"message":"Unsupported protocol version"}"#,
        ),
        (
            Method::GET,
            "/engine.io/?EIO=40&transport=polling",
            400,
            r#"{"code":5,"message":"Unsupported protocol version"}"#,
        ),
    ];
    for (method, uri, status, body) in cases {
        let res = http::request(addr, method.clone(), uri, &[], Bytes::new()).await;
        assert_eq!(
            res.status.as_u16(),
            *status,
            "{method} {uri}: {}",
            res.text()
        );
        assert_eq!(res.text(), *body, "{method} {uri}");
        if *status != 500 {
            assert_eq!(
                res.header("content-type"),
                Some("application/json"),
                "{uri}"
            );
        }
    }
    // A method other than GET/POST on a live session: 500, session kept.
    let sid = server.handshake().await;
    let res = http::request(addr, Method::PUT, &server.url(sid), &[], Bytes::new()).await;
    assert_eq!(res.status, 500);
    // No session was created by any refused request.
    assert_eq!(server.engine.session_count(), 1);
    let _ = server
        .wait_for("connect", |s| matches!(s, Seen::Connect(x) if *x == sid))
        .await;
    server.assert_healthy().await;
}

#[tokio::test]
async fn octet_stream_post_is_refused_and_closes() {
    let mut server = start(fast_config()).await;
    let sid = server.handshake().await;
    let res = http::request(
        server.addr,
        Method::POST,
        &server.url(sid),
        &[("content-type", "application/octet-stream")],
        Bytes::from_static(&[1, 2, 3]),
    )
    .await;
    assert_eq!(res.status, 400);
    assert_eq!(
        server.disconnect_of(sid).await,
        CloseReason::TransportError("invalid content")
    );
    server.assert_healthy().await;
}

#[tokio::test]
async fn oversized_post_gets_413_and_closes() {
    let mut config = fast_config();
    config.session.max_payload = 1000;
    let mut server = start(config).await;
    // Declared length over the limit.
    let sid = server.handshake().await;
    let res = http::post(server.addr, &server.url(sid), vec![b'4'; 1001]).await;
    assert_eq!(res.status, 413);
    assert_eq!(
        server.disconnect_of(sid).await,
        CloseReason::TransportError("payload too large")
    );
    // No declared length (chunked): the limit is applied while reading.
    let sid = server.handshake().await;
    let raw = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n7d0\r\n{}\r\n0\r\n\r\n",
        server.url(sid),
        "4".repeat(2000)
    );
    let out = http::raw(server.addr, raw.as_bytes(), 1 << 16).await;
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
    assert_eq!(
        server.disconnect_of(sid).await,
        CloseReason::TransportError("payload too large")
    );
    // Exactly at the limit is fine.
    let sid = server.handshake().await;
    let res = http::post(server.addr, &server.url(sid), vec![b'4'; 1000]).await;
    assert_eq!(res.status, 200);
    server.assert_healthy().await;
}

#[tokio::test]
async fn invalid_payloads_close_only_that_session() {
    let mut server = start(fast_config()).await;
    let bodies: &[&[u8]] = &[
        b"abc",
        b"",
        b"9",
        b"4a\x1e\x1e4b",
        b"b!!!notbase64",
        b"\xff\xfe\xfd",
        b"0{\"sid\":\"x\"}",
        b"2",
    ];
    for body in bodies {
        let sid = server.handshake().await;
        let res = http::post(server.addr, &server.url(sid), body.to_vec()).await;
        assert!(
            res.status == 400 || res.status == 200,
            "{body:?}: {}",
            res.status
        );
        let reason = server.disconnect_of(sid).await;
        assert!(
            matches!(
                reason,
                CloseReason::ParseError | CloseReason::TransportError(_)
            ),
            "{body:?}: {reason:?}"
        );
        let res = http::get(server.addr, &server.url(sid)).await;
        assert_eq!(res.status, 400, "{body:?}");
    }
    server.assert_healthy().await;
}

#[tokio::test]
async fn too_many_packets_in_one_post() {
    let mut config = fast_config();
    config.session.max_payload_packets = 100;
    let mut server = start(config).await;
    let sid = server.handshake().await;
    let body = vec!["6"; 101].join("\x1e");
    let res = http::post(server.addr, &server.url(sid), body).await;
    assert_eq!(res.status, 400);
    assert_eq!(server.disconnect_of(sid).await, CloseReason::ParseError);
    server.assert_healthy().await;
}

#[tokio::test]
async fn cors_same_origin_by_default() {
    let server = start(fast_config()).await;
    let host = server.addr.to_string();
    let same = format!("http://{host}");
    let ok = http::request(
        server.addr,
        Method::GET,
        "/engine.io/?EIO=4&transport=polling",
        &[("origin", &same)],
        Bytes::new(),
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some(same.as_str())
    );
    assert_eq!(ok.header("access-control-allow-credentials"), Some("true"));
    let evil = http::request(
        server.addr,
        Method::GET,
        "/engine.io/?EIO=4&transport=polling",
        &[("origin", "http://evil.example")],
        Bytes::new(),
    )
    .await;
    assert_eq!(evil.status, 403);
    assert_eq!(evil.text(), r#"{"code":4,"message":"Forbidden"}"#);
    assert!(evil.header("access-control-allow-origin").is_none());
    // Native clients send no Origin.
    let native = http::get(server.addr, "/engine.io/?EIO=4&transport=polling").await;
    assert_eq!(native.status, 200);
    assert!(native.header("access-control-allow-origin").is_none());
    assert_eq!(server.engine.session_count(), 2);
}

#[tokio::test]
async fn cors_list_any_and_preflight() {
    let mut config = fast_config();
    config.cors.origins = AllowedOrigins::List(vec!["https://app.example".into()]);
    let server = start(config).await;
    let res = http::request(
        server.addr,
        Method::GET,
        "/engine.io/?EIO=4&transport=polling",
        &[("origin", "https://app.example")],
        Bytes::new(),
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let pre = http::request(
        server.addr,
        Method::OPTIONS,
        "/engine.io/?EIO=4&transport=polling",
        &[
            ("origin", "https://app.example"),
            ("access-control-request-headers", "content-type"),
        ],
        Bytes::new(),
    )
    .await;
    assert_eq!(pre.status, 204);
    assert_eq!(
        pre.header("access-control-allow-methods"),
        Some("GET,HEAD,PUT,PATCH,POST,DELETE")
    );
    assert_eq!(
        pre.header("access-control-allow-headers"),
        Some("content-type")
    );

    let mut config = fast_config();
    config.cors = CorsConfig::any();
    let server = start(config).await;
    let res = http::request(
        server.addr,
        Method::GET,
        "/engine.io/?EIO=4&transport=polling",
        &[("origin", "http://anything.example")],
        Bytes::new(),
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("access-control-allow-origin"), Some("*"));
    assert!(res.header("access-control-allow-credentials").is_none());
}

#[tokio::test]
async fn origin_with_invalid_characters_is_a_bad_request() {
    let server = start(fast_config()).await;
    let out = http::raw(
        server.addr,
        b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nConnection: close\r\nOrigin: http://a\xff\xfe\r\n\r\n",
        1 << 16,
    )
    .await;
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    server.assert_healthy().await;
}

#[tokio::test]
async fn sticky_cookie_when_configured() {
    let mut config = fast_config();
    config.cookie = Some(CookieConfig::default());
    let server = start(config).await;
    let res = http::get(server.addr, "/engine.io/?EIO=4&transport=polling").await;
    let sid = open_sid(&res.text());
    assert_eq!(
        res.header("set-cookie"),
        Some(format!("io={sid}; Path=/; HttpOnly; SameSite=Lax").as_str())
    );
}

#[tokio::test]
async fn polling_disabled_is_transport_unknown() {
    let mut config = fast_config();
    config.transports.polling = false;
    let server = start(config).await;
    let res = http::get(server.addr, "/engine.io/?EIO=4&transport=polling").await;
    assert_eq!(res.text(), r#"{"code":0,"message":"Transport unknown"}"#);
}

#[tokio::test]
async fn other_paths_are_not_answered_by_the_engine() {
    let server = start(fast_config()).await;
    let res = http::get(server.addr, "/other?EIO=4&transport=polling").await;
    assert_eq!(res.status, 404);
    let res = http::get(server.addr, "/engine.iox/?EIO=4&transport=polling").await;
    assert_eq!(res.status, 404);
}

#[tokio::test]
async fn shutdown_closes_every_session() {
    let mut server = start(fast_config()).await;
    let a = server.handshake().await;
    let b = server.handshake().await;
    server.engine.close();
    let mut reasons = vec![];
    for _ in 0..2 {
        let s = server
            .wait_for("disconnect", |s| matches!(s, Seen::Disconnect(..)))
            .await;
        if let Seen::Disconnect(sid, r) = s {
            assert!(sid == a || sid == b);
            reasons.push(r);
        }
    }
    assert_eq!(reasons, vec![CloseReason::ServerShuttingDown; 2]);
    let res = http::get(server.addr, "/engine.io/?EIO=4&transport=polling").await;
    assert_eq!(res.status, 503);
}
