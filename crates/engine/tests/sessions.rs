//! The end of a session: which requests still get an answer after a close, and when the
//! session is freed. Timing is checked on tokio's paused clock (the engine runs on it), over
//! real loopback sockets.

mod common;

use std::time::Duration;

use common::{fast_config, start};
// `client_close_answers_pending_get_with_noop` (polling.rs) is the client-close case.
use ferrio_engine::{CloseReason, Frame};
use ferrio_testkit::http;
use tokio::time::Instant;

/// A server close with packets queued waits `close_timeout` for a last poll, then frees the
/// session even if the client never polls again.
#[tokio::test(start_paused = true)]
async fn server_closed_polling_session_is_freed_after_close_timeout() {
    let mut config = fast_config();
    config.session.ping_interval = Duration::from_secs(30);
    let close_timeout = config.close_timeout;
    let mut server = start(config).await;
    let sid = server.handshake().await;
    let socket = server.engine.socket(sid).unwrap();
    socket.send(Frame::text_message("bye")).unwrap();
    let t0 = Instant::now();
    socket.close();
    assert_eq!(server.disconnect_of(sid).await, CloseReason::ForcedClose);
    while server.engine.session_count() > 0 {
        assert!(
            t0.elapsed() <= close_timeout + Duration::from_millis(50),
            "{:?}",
            t0.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(t0.elapsed() >= close_timeout, "{:?}", t0.elapsed());
    let res = http::get(server.addr, &server.url(sid)).await;
    assert_eq!(res.status, 400);
    assert_eq!(res.text(), r#"{"code":1,"message":"Session ID unknown"}"#);
}

async fn assert_unknown(server: &common::TestServer, sid: ferrio_engine::Sid) {
    for res in [
        http::get(server.addr, &server.url(sid)).await,
        http::post(server.addr, &server.url(sid), "4x").await,
    ] {
        assert_eq!(res.status, 400);
        assert_eq!(res.text(), r#"{"code":1,"message":"Session ID unknown"}"#);
    }
}

/// Closed by an error (an invalid payload): the held GET gets the close packet, later requests
/// 400 code 1.
#[tokio::test]
async fn error_answers_the_held_poll_then_the_sid_is_unknown() {
    let mut config = fast_config();
    config.session.ping_interval = Duration::from_secs(30);
    let mut server = start(config).await;
    let sid = server.handshake().await;
    let get = server.held_get(sid).await;
    let res = http::post(server.addr, &server.url(sid), "abc").await;
    assert_eq!(res.status, 400);
    assert_eq!(common::answer(get).await, "1");
    assert_eq!(server.disconnect_of(sid).await, CloseReason::ParseError);
    assert_unknown(&server, sid).await;
}

/// Closed by a timeout (the ping is not answered): the held GET gets the close packet at the
/// pong deadline exactly (paused clock), later requests 400 code 1.
#[tokio::test(start_paused = true)]
async fn ping_timeout_answers_the_held_poll_then_the_sid_is_unknown() {
    let config = fast_config();
    let timeout = config.session.ping_timeout;
    let mut server = start(config).await;
    let sid = server.handshake().await;
    let res = http::get(server.addr, &server.url(sid)).await;
    assert_eq!(res.text(), "2");
    let ping = Instant::now();
    let get = server.held_get(sid).await;
    assert_eq!(common::answer(get).await, "1");
    assert_eq!(ping.elapsed(), timeout);
    assert_eq!(server.disconnect_of(sid).await, CloseReason::PingTimeout);
    assert_unknown(&server, sid).await;
}

/// Closed by the client with no GET held: the next poll gets 400 code 1 at once (it used to
/// get the noop for a second after the close).
#[tokio::test]
async fn a_poll_after_the_client_close_is_refused() {
    let mut config = fast_config();
    config.session.ping_interval = Duration::from_secs(30);
    let mut server = start(config).await;
    let sid = server.handshake().await;
    let res = http::post(server.addr, &server.url(sid), "1").await;
    assert_eq!(res.status, 200);
    assert_unknown(&server, sid).await;
    assert_eq!(server.disconnect_of(sid).await, CloseReason::TransportClose);
}
