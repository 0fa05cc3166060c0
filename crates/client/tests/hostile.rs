//! ferrio-client against hostile servers: a raw HTTP server in the test sends malformed
//! packets, oversized payloads, never answers the handshake, or stops pinging. Every time the
//! client reports an error, reconnects, and never panics.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ferrio_client::{Client, ConnectErrorKind, DisconnectReason, SocketEvent, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use common::{SECS, disconnected, until};

/// A request as the hostile server saw it.
#[derive(Debug, Clone)]
struct Req {
    method: String,
    target: String,
    body: String,
}

impl Req {
    fn is_handshake(&self) -> bool {
        self.method == "GET" && !self.target.contains("sid=")
    }

    fn is_poll(&self) -> bool {
        self.method == "GET" && self.target.contains("sid=")
    }
}

/// How to answer a request.
enum Reply {
    /// `200` with this body.
    Ok(Vec<u8>),
    /// This status and body.
    Status(u16, &'static str),
    /// Never answer (the connection stays open).
    Hang,
}

type Handler = Arc<dyn Fn(&Req) -> Reply + Send + Sync>;

/// Starts the server on a free port; every request is also sent on the returned channel.
async fn hostile(handler: Handler) -> (u16, mpsc::UnboundedReceiver<Req>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = handler.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let _ = serve(stream, handler, tx).await;
            });
        }
    });
    (port, rx)
}

async fn serve(
    mut stream: TcpStream,
    handler: Handler,
    tx: mpsc::UnboundedSender<Req>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_owned();
    let target = first.next().unwrap_or("").to_owned();
    let len: usize = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string();
    let req = Req {
        method,
        target,
        body,
    };
    let reply = handler(&req);
    let _ = tx.send(req);
    let (status, body) = match reply {
        Reply::Ok(b) => (200, b),
        Reply::Status(s, b) => (s, b.as_bytes().to_vec()),
        Reply::Hang => {
            // Hold the connection until the client gives up on it.
            let _ = stream.read(&mut chunk).await;
            return Ok(());
        }
    };
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&body).await?;
    stream.shutdown().await
}

fn open(ping_interval: u64, ping_timeout: u64) -> Vec<u8> {
    format!(
        r#"0{{"sid":"hostileSid0000000001","upgrades":[],"pingInterval":{ping_interval},"pingTimeout":{ping_timeout},"maxPayload":1000000}}"#
    )
    .into_bytes()
}

fn client(port: u16) -> Client {
    Client::builder(&format!("http://127.0.0.1:{port}"))
        .auto_connect(false)
        .transports(&[Transport::Polling])
        .timeout(Duration::from_millis(300))
        .reconnection_delay(Duration::from_millis(20))
        .reconnection_delay_max(Duration::from_millis(50))
        .max_message_size(64 * 1024)
        .build()
        .unwrap()
}

/// Waits until the server has seen `n` handshakes.
async fn handshakes(rx: &mut mpsc::UnboundedReceiver<Req>, n: usize) {
    let mut seen = 0;
    ferrio_testkit::within(SECS, "handshakes", async {
        while seen < n {
            let req = rx.recv().await.unwrap();
            if req.is_handshake() {
                seen += 1;
            }
        }
    })
    .await;
}

/// A server that opens, connects the namespace, then answers the second poll with `bad`.
fn connects_then(bad: &'static [u8]) -> Handler {
    let polls = Arc::new(AtomicUsize::new(0));
    Arc::new(move |req| {
        if req.is_handshake() {
            polls.store(0, Ordering::SeqCst);
            return Reply::Ok(open(10_000, 10_000));
        }
        if req.is_poll() {
            return match polls.fetch_add(1, Ordering::SeqCst) {
                0 => Reply::Ok(br#"40{"sid":"nspSid"}"#.to_vec()),
                1 => Reply::Ok(bad.to_vec()),
                _ => Reply::Hang,
            };
        }
        Reply::Ok(b"ok".to_vec())
    })
}

async fn expect_disconnect_and_reconnect(bad: &'static [u8], reason: DisconnectReason) {
    let (port, mut rx) = hostile(connects_then(bad)).await;
    let client = client(port);
    let socket = client.socket("/");
    let mut events = socket.events();
    socket.connect().await.unwrap();
    common::connected(&mut events).await;
    assert_eq!(disconnected(&mut events).await, reason, "{bad:?}");
    // It reconnects, and connects the namespace again.
    common::connected(&mut events).await;
    handshakes(&mut rx, 2).await;
    assert!(socket.active());
}

#[tokio::test]
async fn malformed_socketio_packets_are_a_parse_error() {
    for bad in [
        &b"4garbage"[..],
        br#"42{"not":"an array"}"#,
        br#"42["connect"]"#,
        b"451-[\"ev\",{\"_placeholder\":true,\"num\":7}]",
        b"49",
    ] {
        expect_disconnect_and_reconnect(bad, DisconnectReason::ParseError).await;
    }
}

#[tokio::test]
async fn malformed_engineio_packets_are_a_parse_error() {
    for bad in [&b"9x"[..], b"4a\x1e\x1e4b", b"b!!!", b"\xff\xfe", b"0{}"] {
        expect_disconnect_and_reconnect(bad, DisconnectReason::ParseError).await;
    }
}

#[tokio::test]
async fn server_close_packet_is_a_transport_close() {
    expect_disconnect_and_reconnect(b"1", DisconnectReason::TransportClose).await;
}

#[tokio::test]
async fn oversized_payload_is_a_transport_error() {
    let big: &'static [u8] = Box::leak(
        std::iter::once(b'4')
            .chain(std::iter::repeat_n(b'x', 100 * 1024))
            .collect::<Vec<u8>>()
            .into_boxed_slice(),
    );
    expect_disconnect_and_reconnect(big, DisconnectReason::TransportError).await;
}

#[tokio::test]
async fn bad_handshakes_are_connect_errors_then_retried() {
    let bodies: [&'static [u8]; 4] = [
        br#"0{"sid":1}"#,
        b"4hello",
        br#"0{"sid":"a b","upgrades":[],"pingInterval":1,"pingTimeout":1,"maxPayload":1}"#,
        b"",
    ];
    for body in bodies {
        let (port, mut rx) = hostile(Arc::new(move |_| Reply::Ok(body.to_vec()))).await;
        let client = client(port);
        let socket = client.socket("/");
        let mut events = socket.events();
        socket.connect().await.unwrap();
        let err = until(&mut events, "connect_error", |e| match e {
            SocketEvent::ConnectError(e) => Some(e),
            SocketEvent::Connect(_) => panic!("connected to {body:?}"),
            _ => None,
        })
        .await;
        assert_eq!(err.kind, ConnectErrorKind::Transport, "{body:?}");
        handshakes(&mut rx, 3).await;
        assert!(socket.active());
    }
    // An HTTP error status too.
    let (port, mut rx) = hostile(Arc::new(|_| Reply::Status(500, "boom"))).await;
    let client = client(port);
    let socket = client.socket("/");
    let mut events = socket.events();
    socket.connect().await.unwrap();
    let err = until(&mut events, "connect_error", |e| match e {
        SocketEvent::ConnectError(e) => Some(e),
        _ => None,
    })
    .await;
    assert!(err.message.contains("500"), "{err:?}");
    handshakes(&mut rx, 2).await;
}

#[tokio::test]
async fn a_server_that_never_answers_the_handshake_times_out() {
    let (port, mut rx) = hostile(Arc::new(|_| Reply::Hang)).await;
    let client = client(port);
    let socket = client.socket("/");
    let mut events = socket.events();
    socket.connect().await.unwrap();
    let err = until(&mut events, "connect_error", |e| match e {
        SocketEvent::ConnectError(e) => Some(e),
        _ => None,
    })
    .await;
    assert_eq!(err.kind, ConnectErrorKind::Timeout);
    assert_eq!(err.message, "timeout");
    handshakes(&mut rx, 2).await;
}

#[tokio::test]
async fn a_server_that_stops_pinging_is_a_ping_timeout() {
    let polls = Arc::new(AtomicUsize::new(0));
    let handler: Handler = Arc::new(move |req| {
        if req.is_handshake() {
            polls.store(0, Ordering::SeqCst);
            return Reply::Ok(open(100, 100));
        }
        if req.is_poll() && polls.fetch_add(1, Ordering::SeqCst) == 0 {
            return Reply::Ok(br#"40{"sid":"nspSid"}"#.to_vec());
        }
        if req.is_poll() {
            return Reply::Hang;
        }
        Reply::Ok(b"ok".to_vec())
    });
    let (port, mut rx) = hostile(handler).await;
    let client = client(port);
    let socket = client.socket("/");
    let mut events = socket.events();
    socket.connect().await.unwrap();
    common::connected(&mut events).await;
    assert_eq!(
        disconnected(&mut events).await,
        DisconnectReason::PingTimeout
    );
    common::connected(&mut events).await;
    handshakes(&mut rx, 2).await;
    // The client answered nothing it should not have: its POSTs are CONNECTs only.
    while let Ok(req) = rx.try_recv() {
        if req.method == "POST" {
            assert_eq!(req.body, "40", "{req:?}");
        }
    }
}

#[tokio::test]
async fn reconnection_attempts_are_bounded() {
    let (port, mut rx) = hostile(Arc::new(|_| Reply::Status(503, "down"))).await;
    let client = Client::builder(&format!("http://127.0.0.1:{port}"))
        .auto_connect(false)
        .transports(&[Transport::Polling])
        .reconnection_delay(Duration::from_millis(10))
        .reconnection_delay_max(Duration::from_millis(20))
        .reconnection_attempts(2)
        .build()
        .unwrap();
    let socket = client.socket("/");
    let mut events = socket.events();
    socket.connect().await.unwrap();
    let kinds: Vec<ConnectErrorKind> = {
        let mut kinds = Vec::new();
        while kinds.last() != Some(&ConnectErrorKind::ReconnectFailed) {
            let e = until(&mut events, "connect_error", |e| match e {
                SocketEvent::ConnectError(e) => Some(e),
                _ => None,
            })
            .await;
            kinds.push(e.kind);
        }
        kinds
    };
    // The first attempt and two reconnections, then it gives up.
    assert_eq!(
        kinds,
        [
            ConnectErrorKind::Transport,
            ConnectErrorKind::Transport,
            ConnectErrorKind::Transport,
            ConnectErrorKind::ReconnectFailed
        ]
    );
    assert!(!socket.active());
    handshakes(&mut rx, 3).await;
    assert!(rx.try_recv().is_err(), "no attempt after giving up");
}
