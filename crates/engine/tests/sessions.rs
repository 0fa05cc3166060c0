//! The end of a session: which requests still get an answer after a close, and when the
//! session is freed. Timing is checked on tokio's paused clock (the engine runs on it), over
//! real loopback sockets.

mod common;

use std::time::Duration;

use common::{fast_config, start};
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
