//! The HTTP hooks (Node's `initial_headers`, `headers` and `connection_error` events) and the
//! sticky cookie, seen on raw HTTP and WebSocket answers.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ::http::{HeaderValue, Method, header};
use bytes::Bytes;
use common::{fast_config, open_sid, start};
use ferrio_engine::{
    AllowRequest, ConnectionErrorHook, CookieConfig, CookiePriority, CorsConfig, EngineConfig,
    HeadersHook, Rejection, SameSite,
};
use ferrio_testkit::{http, ws};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a hook saw: the kind of hook and the request's method and URI.
type Calls = Arc<Mutex<Vec<String>>>;

fn hooked(config: &mut EngineConfig) -> Calls {
    let calls = Calls::default();
    let c = calls.clone();
    config.initial_headers = Some(HeadersHook::new(move |h, req| {
        // Sees what the engine wrote before it (the cookie), and may add its own.
        let cookie = h.get(header::SET_COOKIE).is_some();
        c.lock().unwrap().push(format!(
            "initial {} {} cookie={cookie}",
            req.method, req.uri
        ));
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("theme=dark; Path=/"),
        );
        h.insert("x-initial", HeaderValue::from_static("1"));
    }));
    let c = calls.clone();
    config.headers = Some(HeadersHook::new(move |h, req| {
        c.lock()
            .unwrap()
            .push(format!("headers {} {}", req.method, req.uri));
        h.insert("x-served-by", HeaderValue::from_static("ferrio"));
        // A hook may replace the engine's own headers too.
        if req.method == Method::POST {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
        }
    }));
    calls
}

/// The sticky cookie, then the one `initial_headers` appends.
fn assert_both_cookies(headers: &::http::HeaderMap, sid: ferrio_engine::Sid) {
    let cookies: Vec<&str> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        cookies,
        [
            format!("io={sid}; Path=/; HttpOnly; SameSite=Lax").as_str(),
            "theme=dark; Path=/"
        ]
    );
}

fn take(calls: &Calls) -> Vec<String> {
    std::mem::take(&mut *calls.lock().unwrap())
}

#[tokio::test]
async fn polling_session_answers_carry_the_hook_headers() {
    let mut config = fast_config();
    config.cookie = Some(CookieConfig::default());
    let calls = hooked(&mut config);
    let server = start(config).await;

    let res = http::get(server.addr, "/engine.io/?EIO=4&transport=polling").await;
    let sid = open_sid(&res.text());
    assert_both_cookies(&res.headers, sid);
    assert_eq!(res.header("x-initial"), Some("1"));
    assert_eq!(res.header("x-served-by"), Some("ferrio"));
    assert_eq!(
        take(&calls),
        [
            "initial GET /engine.io/?EIO=4&transport=polling cookie=true",
            "headers GET /engine.io/?EIO=4&transport=polling",
        ]
    );

    // Every later answer of the session gets `headers` only.
    let url = server.url(sid);
    let post = http::post(server.addr, &url, "4hello").await;
    assert_eq!(post.status, 200);
    assert_eq!(post.header("x-served-by"), Some("ferrio"));
    assert_eq!(post.header("cache-control"), Some("private"));
    assert!(post.header("set-cookie").is_none());
    assert!(post.header("x-initial").is_none());
    let get = http::get(server.addr, &url).await;
    assert_eq!(get.text(), "4hello");
    assert_eq!(get.header("x-served-by"), Some("ferrio"));
    assert_eq!(
        take(&calls),
        [format!("headers POST {url}"), format!("headers GET {url}")]
    );

    // The upgrade's `101` too.
    let ws_url = format!("/engine.io/?EIO=4&transport=websocket&sid={sid}");
    let (_ws, headers) = ws::connect_with_response(server.addr, &ws_url, &[])
        .await
        .unwrap();
    assert_eq!(headers["x-served-by"], "ferrio");
    assert!(headers.get("x-initial").is_none());
    assert_eq!(take(&calls), [format!("headers GET {ws_url}")]);

    // Refusals and preflights get neither.
    let bad = http::get(server.addr, "/engine.io/?EIO=4&transport=polling&sid=nope").await;
    assert_eq!(bad.status, 400);
    assert!(bad.header("x-served-by").is_none());
    let pre = http::request(
        server.addr,
        Method::OPTIONS,
        "/engine.io/?EIO=4&transport=polling",
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(pre.status, 204);
    assert!(pre.header("x-served-by").is_none());
    assert!(take(&calls).is_empty());
}

#[tokio::test]
async fn websocket_handshake_carries_the_hook_headers_and_the_cookie() {
    let mut config = fast_config();
    config.cookie = Some(CookieConfig::default());
    let calls = hooked(&mut config);
    let server = start(config).await;
    let url = "/engine.io/?EIO=4&transport=websocket";
    let (mut c, headers) = ws::connect_with_response(server.addr, url, &[])
        .await
        .unwrap();
    let ws::Read::Text(open) = ws::read(&mut c).await else {
        panic!("no open packet")
    };
    let sid = open_sid(&open);
    assert_both_cookies(&headers, sid);
    assert_eq!(headers["x-initial"], "1");
    assert_eq!(headers["x-served-by"], "ferrio");
    assert_eq!(
        take(&calls),
        [
            format!("initial GET {url} cookie=true"),
            format!("headers GET {url}")
        ]
    );
}

#[tokio::test]
async fn sticky_cookie_with_every_attribute() {
    let mut config = fast_config();
    let mut cookie = CookieConfig::default();
    cookie.name = "lb".into();
    cookie.max_age = Some(Duration::from_secs(86_400));
    cookie.domain = Some("example.com".into());
    cookie.path = Some("/socket".into());
    cookie.expires = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000));
    cookie.http_only = false;
    cookie.secure = true;
    cookie.partitioned = true;
    cookie.priority = Some(CookiePriority::Low);
    cookie.same_site = Some(SameSite::None);
    config.cookie = Some(cookie);
    let server = start(config).await;
    let want = |sid| {
        format!(
            "lb={sid}; Max-Age=86400; Domain=example.com; Path=/socket; \
             Expires=Wed, 18 May 2033 03:33:20 GMT; Secure; Partitioned; Priority=Low; \
             SameSite=None"
        )
    };
    let res = http::get(server.addr, "/engine.io/?EIO=4&transport=polling").await;
    let sid = open_sid(&res.text());
    assert_eq!(res.header("set-cookie"), Some(want(sid).as_str()));
    // Only the handshake sets it.
    let get_res = http::post(server.addr, &server.url(sid), "4x").await;
    assert!(get_res.header("set-cookie").is_none());
    let (mut c, headers) =
        ws::connect_with_response(server.addr, "/engine.io/?EIO=4&transport=websocket", &[])
            .await
            .unwrap();
    let ws::Read::Text(open) = ws::read(&mut c).await else {
        panic!("no open packet")
    };
    assert_eq!(headers["set-cookie"], want(open_sid(&open)).as_str());
}

#[test]
#[should_panic(expected = "cookie name")]
fn an_invalid_cookie_is_refused_at_startup() {
    let mut config = fast_config();
    let mut cookie = CookieConfig::default();
    cookie.name = "bad name".into();
    config.cookie = Some(cookie);
    let _ = ferrio_engine::Engine::new(config, common::NoHandler);
}

/// One `connection_error` call: status, Node's code, message, method and URI.
type Refusal = (u16, Option<u8>, String, String, String);

#[tokio::test]
async fn every_refusal_calls_connection_error() {
    let refusals = Arc::new(Mutex::new(Vec::<Refusal>::new()));
    let mut config = fast_config();
    let r = refusals.clone();
    config.connection_error = Some(ConnectionErrorHook::new(move |e| {
        r.lock().unwrap().push((
            e.status.as_u16(),
            e.code,
            e.message.to_owned(),
            e.request.method.to_string(),
            e.request.uri.to_string(),
        ));
    }));
    config.allow_request = Some(AllowRequest::new(|h| async move {
        match h.query.contains_key("deny") {
            true => Err(Rejection {
                message: "go away".into(),
            }),
            false => Ok(()),
        }
    }));
    config.cors = CorsConfig::list(["https://app.example"]);
    config.session.max_payload = 100;
    config.body_read_timeout = Duration::from_millis(100);
    let server = start(config).await;
    let addr = server.addr;
    let sid = server.handshake().await;
    let session = server.url(sid);
    for p in [
        "/engine.io/?EIO=4",
        "/engine.io/?EIO=4&transport=polling&sid=nope",
    ] {
        http::get(addr, p).await;
    }
    http::post(addr, "/engine.io/?EIO=4&transport=polling", "4x").await;
    for p in [
        "/engine.io/?EIO=4&transport=websocket",
        "/engine.io/?EIO=4&transport=polling&deny=1",
        "/engine.io/?EIO=3&transport=polling",
    ] {
        http::get(addr, p).await;
    }
    http::request(
        addr,
        Method::GET,
        "/engine.io/?EIO=4&transport=polling",
        &[("origin", "https://evil.example")],
        Bytes::new(),
    )
    .await;
    http::request(addr, Method::PUT, &session, &[], Bytes::new()).await;
    http::request(
        addr,
        Method::GET,
        "/engine.io/?EIO=4&transport=websocket",
        &[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "12"),
        ],
        Bytes::new(),
    )
    .await;
    // 413 and 408 close the session: each on a session of its own.
    let big = server.url(server.handshake().await);
    http::post(addr, &big, "4".repeat(200)).await;
    let stalled = server.url(server.handshake().await);
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST {stalled} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\n4x"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    ferrio_testkit::within(5, "the 408", s.read_to_end(&mut answer))
        .await
        .unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 408"));

    let s = |v: &str| v.to_owned();
    let got = refusals.lock().unwrap().clone();
    let want: Vec<Refusal> = vec![
        (
            400,
            Some(0),
            s("Transport unknown"),
            s("GET"),
            s("/engine.io/?EIO=4"),
        ),
        (
            400,
            Some(1),
            s("Session ID unknown"),
            s("GET"),
            s("/engine.io/?EIO=4&transport=polling&sid=nope"),
        ),
        (
            400,
            Some(2),
            s("Bad handshake method"),
            s("POST"),
            s("/engine.io/?EIO=4&transport=polling"),
        ),
        (
            400,
            Some(3),
            s("Bad request"),
            s("GET"),
            s("/engine.io/?EIO=4&transport=websocket"),
        ),
        (
            403,
            Some(4),
            s("go away"),
            s("GET"),
            s("/engine.io/?EIO=4&transport=polling&deny=1"),
        ),
        (
            400,
            Some(5),
            s("Unsupported protocol version"),
            s("GET"),
            s("/engine.io/?EIO=3&transport=polling"),
        ),
        (
            403,
            Some(4),
            s("Forbidden"),
            s("GET"),
            s("/engine.io/?EIO=4&transport=polling"),
        ),
        (
            500,
            None,
            s("Method not allowed"),
            s("PUT"),
            session.clone(),
        ),
        (
            426,
            None,
            s("Unsupported WebSocket version"),
            s("GET"),
            s("/engine.io/?EIO=4&transport=websocket"),
        ),
        (413, None, s("Payload Too Large"), s("POST"), big),
        (408, None, s("Request body timed out"), s("POST"), stalled),
    ];
    assert_eq!(got, want);
    server.assert_healthy().await;
}
