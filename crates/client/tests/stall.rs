//! ferrio-client against a server that stops reading: a raw WebSocket server in the test
//! accepts, opens the session, then never reads again (while it keeps pinging and sending
//! events). The client's writes stall; everything else goes on, and the client gives up on
//! the connection after `pingInterval + pingTimeout` without a byte written, then reconnects.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrio_client::{AckError, Client, DisconnectReason, SocketEvent, Transport};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpSocket;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use common::{SECS, connected, disconnected, until};

const PING_INTERVAL_MS: u64 = 300;
const PING_TIMEOUT_MS: u64 = 1500;

/// What the server reports.
#[derive(Debug)]
enum Seen {
    /// Connection `n` (from 1) was accepted and opened.
    Opened(usize),
    /// A text frame read on a connection after the first (the first is never read).
    Frame(usize, String),
}

/// Starts the server. Connection 1 is never read after the WebSocket handshake; the later
/// ones are read and reported. Every connection gets the open packet, the CONNECT replies of
/// `namespaces`, then a ping and a `tick` event every 100 ms.
async fn stalling_server(
    namespaces: &'static [&'static str],
) -> (u16, mpsc::UnboundedReceiver<Seen>) {
    let socket = TcpSocket::new_v4().unwrap();
    // A small receive buffer: the client's writes stall after little data.
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(16).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((stream, _)) = listener.accept().await {
            n += 1;
            let tx = tx.clone();
            tokio::spawn(async move {
                let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                let (mut sink, mut read) = ws.split();
                let open = format!(
                    r#"0{{"sid":"stallSid000000000{n:03}","upgrades":[],"pingInterval":{PING_INTERVAL_MS},"pingTimeout":{PING_TIMEOUT_MS},"maxPayload":1000000}}"#
                );
                let mut first = vec![open];
                for nsp in namespaces {
                    first.push(match *nsp {
                        "/" => format!(r#"40{{"sid":"s{n}"}}"#),
                        other => format!(r#"40{other},{{"sid":"s{n}"}}"#),
                    });
                }
                for text in first {
                    if sink.send(Message::text(text)).await.is_err() {
                        return;
                    }
                }
                let _ = tx.send(Seen::Opened(n));
                // Connection 1 is never read: its read half is only kept, so the socket
                // stays open until the client gives up on it.
                let _unread = if n > 1 {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        while let Some(Ok(msg)) = read.next().await {
                            if let Message::Text(t) = msg {
                                let _ = tx.send(Seen::Frame(n, t.to_string()));
                            }
                        }
                    });
                    None
                } else {
                    Some(read)
                };
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                for i in 0u64.. {
                    tick.tick().await;
                    let ping = sink.send(Message::text("2")).await;
                    let event = sink.send(Message::text(format!(r#"42["tick",{i}]"#))).await;
                    if ping.is_err() || event.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, rx)
}

async fn seen(
    rx: &mut mpsc::UnboundedReceiver<Seen>,
    what: &str,
    mut f: impl FnMut(&Seen) -> bool,
) {
    ferrio_testkit::within(SECS, what, async {
        loop {
            let s = rx.recv().await.expect("server gone");
            if f(&s) {
                return;
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_server_that_stops_reading_stalls_nothing_else_and_is_given_up() {
    let (port, mut rx) = stalling_server(&["/", "/b"]).await;
    let client = Client::builder(&format!("ws://127.0.0.1:{port}"))
        .transports(&[Transport::WebSocket])
        .reconnection_delay(Duration::from_millis(50))
        .reconnection_delay_max(Duration::from_millis(100))
        // Far beyond the stall bound: nothing here may wait for it.
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let root = client.socket("/");
    let b = client.socket("/b");
    let mut root_events = root.events();
    let mut b_events = b.events();
    root.connect().await.unwrap();
    b.connect().await.unwrap();
    connected(&mut root_events).await;
    connected(&mut b_events).await;
    seen(&mut rx, "connection 1", |s| matches!(s, Seen::Opened(1))).await;

    // 8 MiB the server never reads: far more than the socket buffers hold.
    let chunk = Bytes::from(vec![7u8; 256 * 1024]);
    let started = Instant::now();
    for _ in 0..32 {
        root.emit("big", &chunk).await.unwrap();
    }

    // Ack timers fire while the writes are stuck.
    let ack = ferrio_testkit::within(SECS, "the ack timeout", async {
        root.emit_with_ack("never-answered", &())
            .timeout(Duration::from_millis(100))
            .await
    })
    .await;
    assert!(matches!(ack, Err(AckError::Timeout)), "{ack:?}");
    assert!(
        root.connected(),
        "still connected: the ack timer did not wait for the stall"
    );

    // Reads go on: the server's events arrive (and its pings keep the heartbeat alive).
    for _ in 0..3 {
        common::event(&mut root_events, "tick").await;
    }

    // Commands go on: an emit is queued, and a namespace disconnects at once.
    ferrio_testkit::within(SECS, "an emit and a disconnect", async {
        b.emit("small", &1).await.unwrap();
        b.disconnect().await.unwrap();
    })
    .await;
    assert_eq!(
        disconnected(&mut b_events).await,
        DisconnectReason::IoClientDisconnect
    );
    assert!(
        root.connected(),
        "the stall was not detected before the disconnect"
    );

    // The stalled connection is given up: not one byte written for pingInterval +
    // pingTimeout. The stall began after `started`, so that bound is also a lower bound.
    let reason = until(&mut root_events, "the stall disconnect", |e| match e {
        SocketEvent::Disconnect(r) => Some(r),
        _ => None,
    })
    .await;
    let elapsed = started.elapsed();
    let bound = Duration::from_millis(PING_INTERVAL_MS + PING_TIMEOUT_MS);
    assert_eq!(reason, DisconnectReason::TransportError);
    assert!(
        elapsed >= bound,
        "gave up after {elapsed:?}, before {bound:?}"
    );
    assert!(
        elapsed < bound + Duration::from_secs(4),
        "gave up after {elapsed:?}, bound {bound:?}"
    );
    let details = root.disconnect_details().expect("details");
    assert_eq!(details.description, "websocket error");
    assert!(
        details
            .context
            .as_deref()
            .unwrap_or("")
            .contains("write stalled"),
        "{details:?}"
    );

    // It reconnects (only the namespace still active), and the new connection works both
    // ways: the server reads the client's pong and an emit.
    seen(&mut rx, "connection 2", |s| matches!(s, Seen::Opened(2))).await;
    connected(&mut root_events).await;
    assert!(!b.active());
    seen(
        &mut rx,
        "a pong on connection 2",
        |s| matches!(s, Seen::Frame(2, t) if t == "3"),
    )
    .await;
    root.emit("after", &"ok").await.unwrap();
    seen(
        &mut rx,
        "the emit on connection 2",
        |s| matches!(s, Seen::Frame(2, t) if t == r#"42["after","ok"]"#),
    )
    .await;

    client.disconnect().await.unwrap();
    assert_eq!(
        disconnected(&mut root_events).await,
        DisconnectReason::IoClientDisconnect
    );
}
