//! The socket.io-client API that ferrio-client matches, against the real npm `socket.io`
//! 4.8 server and the Ferrio server: Manager events, `once`, `prependAny`/`offAny`,
//! `onAnyOutgoing`, `send`, `compress`, emitter flags, `autoConnect`, the disconnect
//! `details`, the offline buffer, `requestTimeout`.

mod common;

use std::time::Duration;

use ferrio_client::{
    AckError, Client, DisconnectReason, ManagerEvent, ManagerEventStream, PacketKind, SocketEvent,
    Transport,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use common::{Peer, SECS, TestServer, connected, disconnected, event};

common::each_server! {
    manager_events_follow_the_lifecycle;
    reconnection_events_count_attempts_until_they_fail;
    listener_api_once_prepend_off_and_outgoing;
    send_compress_and_chained_flags;
    auto_connect_is_the_default;
    disconnect_details_name_what_closed;
    offline_buffer_can_be_inspected_and_cleared;
    request_timeout_bounds_a_polling_request;
    path_query_and_extra_headers_reach_the_server;
}

/// Skips manager events until one matches `f`, failing after `SECS`.
async fn manager<T>(
    events: &mut ManagerEventStream,
    what: &str,
    mut f: impl FnMut(ManagerEvent) -> Option<T>,
) -> T {
    ferrio_testkit::within(SECS, what, async {
        loop {
            let e = events.next().await.expect("client gone");
            if let Some(v) = f(e) {
                return v;
            }
        }
    })
    .await
}

/// The next manager event that is not a ping or a packet.
async fn next_lifecycle(events: &mut ManagerEventStream) -> ManagerEvent {
    manager(events, "a lifecycle event", |e| match e {
        ManagerEvent::Ping | ManagerEvent::Packet(_) => None,
        other => Some(other),
    })
    .await
}

async fn manager_events_follow_the_lifecycle(peer: Peer) {
    let server = TestServer::start(peer, json!({"pingInterval": 100, "pingTimeout": 2000})).await;
    let client = server.client().build().unwrap();
    let mut m = client.events();
    let socket = client.socket("/");
    let mut events = socket.events();
    socket.connect().await.unwrap();
    assert!(matches!(next_lifecycle(&mut m).await, ManagerEvent::Open));
    // The CONNECT answer, then the welcome event, are packets of the connection.
    let packet = manager(&mut m, "the CONNECT packet", |e| match e {
        ManagerEvent::Packet(p) => Some(p),
        _ => None,
    })
    .await;
    assert_eq!(
        (packet.kind, packet.nsp.as_str()),
        (PacketKind::Connect, "/")
    );
    let welcome = manager(&mut m, "the welcome packet", |e| match e {
        ManagerEvent::Packet(p) if p.kind == PacketKind::Event => Some(p),
        _ => None,
    })
    .await;
    assert_eq!(welcome.event.as_deref(), Some("welcome"));
    connected(&mut events).await;
    manager(&mut m, "a ping", |e| {
        matches!(e, ManagerEvent::Ping).then_some(())
    })
    .await;
    assert_eq!(ManagerEvent::Ping.name(), "ping");

    // The server closes the connection: close, then one reconnection attempt that works.
    socket.emit("close-transport", &()).await.unwrap();
    match next_lifecycle(&mut m).await {
        ManagerEvent::Close { reason, .. } => assert_eq!(reason, "transport close"),
        other => panic!("expected close, got {other:?}"),
    }
    assert!(matches!(
        next_lifecycle(&mut m).await,
        ManagerEvent::ReconnectAttempt(1)
    ));
    assert!(matches!(next_lifecycle(&mut m).await, ManagerEvent::Open));
    assert!(matches!(
        next_lifecycle(&mut m).await,
        ManagerEvent::Reconnect(1)
    ));
    connected(&mut events).await;

    // Closed by the client: `forced close`.
    client.disconnect().await.unwrap();
    match next_lifecycle(&mut m).await {
        ManagerEvent::Close { reason, details } => {
            assert_eq!(reason, "forced close");
            assert_eq!(details, None);
        }
        other => panic!("expected close, got {other:?}"),
    }
}

async fn reconnection_events_count_attempts_until_they_fail(peer: Peer) {
    let server = TestServer::start_default(peer).await;
    let client = server.client().reconnection_attempts(2).build().unwrap();
    let mut m = client.events();
    let socket = client.socket("/");
    let mut events = socket.events();
    socket.connect().await.unwrap();
    connected(&mut events).await;
    assert!(matches!(next_lifecycle(&mut m).await, ManagerEvent::Open));
    // The server goes away for good: a transport error (`error`, then `close`) or close.
    drop(server);
    let close = manager(&mut m, "close", |e| match e {
        ManagerEvent::Close { reason, .. } => Some(reason),
        ManagerEvent::Error(_) | ManagerEvent::Ping | ManagerEvent::Packet(_) => None,
        other => panic!("expected close, got {other:?}"),
    })
    .await;
    assert!(
        ["transport close", "transport error"].contains(&close),
        "{close}"
    );
    for attempt in 1..=2 {
        match next_lifecycle(&mut m).await {
            ManagerEvent::ReconnectAttempt(n) => assert_eq!(n, attempt),
            other => panic!("expected reconnect_attempt {attempt}, got {other:?}"),
        }
        assert!(matches!(
            next_lifecycle(&mut m).await,
            ManagerEvent::Error(_)
        ));
        assert!(matches!(
            next_lifecycle(&mut m).await,
            ManagerEvent::ReconnectError(_)
        ));
    }
    assert!(matches!(
        next_lifecycle(&mut m).await,
        ManagerEvent::ReconnectFailed
    ));
    assert!(!socket.active());
}

async fn listener_api_once_prepend_off_and_outgoing(peer: Peer) {
    let mut server = TestServer::start_default(peer).await;
    let client = server.client().build().unwrap();
    let socket = client.socket("/");
    let mut events = socket.events();
    // Each listener reports synchronously, when the client calls it: that is the order of
    // the calls.
    let (tx, mut calls) = mpsc::unbounded_channel::<String>();
    let report = |tag: &'static str| {
        let tx = tx.clone();
        move |e: ferrio_client::Event| {
            let _ = tx.send(format!("{tag} {}", e.name()));
            async {}
        }
    };
    socket.once("echo", report("once"));
    let any = socket.on_any(report("any"));
    socket.prepend_any(report("prepended"));
    let out_tx = tx.clone();
    socket.on_any_outgoing(move |e| {
        let args: Value = e.args().deserialize().unwrap_or(Value::Null);
        let _ = out_tx.send(format!("out {} {args} ack={}", e.name(), e.wants_ack()));
        async {}
    });
    socket.connect().await.unwrap();
    connected(&mut events).await;
    let mut next = async || {
        ferrio_testkit::within(SECS, "a listener call", calls.recv())
            .await
            .unwrap()
    };
    assert_eq!(next().await, "prepended welcome");
    assert_eq!(next().await, "any welcome");

    socket.emit("echo", &(1, "a")).await.unwrap();
    assert_eq!(next().await, r#"out echo [1,"a"] ack=false"#);
    assert_eq!(next().await, "once echo");
    assert_eq!(next().await, "prepended echo");
    assert_eq!(next().await, "any echo");

    // `once` is gone; one catch-all listener removed, then all of them.
    socket.off_any(Some(any));
    let r = socket
        .emit_with_ack("ack", &2)
        .timeout(Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(r.data::<i32>().unwrap(), 2);
    // One argument reads as itself.
    assert_eq!(next().await, "out ack 2 ack=true");
    socket.emit("echo", &3).await.unwrap();
    assert_eq!(next().await, "out echo 3 ack=false");
    assert_eq!(next().await, "prepended echo");
    socket.off_any(None);
    socket.off_any_outgoing(None);
    socket.emit("echo", &4).await.unwrap();
    while event(&mut events, "echo").await != json!(4) {}
    // The server saw every emit; nothing else was reported.
    server.line("event / echo [4]").await;
    assert!(calls.try_recv().is_err());
}

async fn send_compress_and_chained_flags(peer: Peer) {
    let mut server = TestServer::start_default(peer).await;
    let client = server.client().build().unwrap();
    let socket = client.socket("/");
    let mut events = socket.events();
    socket.connect().await.unwrap();
    connected(&mut events).await;
    socket.send(&"hi").await.unwrap();
    assert_eq!(server.line("event / message ").await, r#"["hi"]"#);
    socket.compress(false).emit("echo", &"plain").await.unwrap();
    assert_eq!(event(&mut events, "echo").await, json!("plain"));
    // Flags chain in any order.
    let r = socket
        .volatile()
        .compress(true)
        .timeout(Duration::from_secs(5))
        .emit_with_ack("ack", &"chained")
        .await
        .unwrap();
    assert_eq!(r.data::<String>().unwrap(), "chained");
    let r = socket
        .timeout(Duration::from_secs(5))
        .volatile()
        .emit_with_ack("ack", &7)
        .await
        .unwrap();
    assert_eq!(r.data::<i32>().unwrap(), 7);
}

async fn auto_connect_is_the_default(peer: Peer) {
    let mut server = TestServer::start_default(peer).await;
    let client = Client::builder(&server.url())
        .reconnection_delay(Duration::from_millis(50))
        .build()
        .unwrap();
    // No connect() call: asking for the socket connects it.
    let socket = client.socket("/");
    let mut events = socket.events();
    connected(&mut events).await;
    server.line("connect / ").await;
    socket.disconnect().await.unwrap();
    assert_eq!(
        disconnected(&mut events).await,
        DisconnectReason::IoClientDisconnect
    );
    // An inactive socket asked for again connects again, as with `io.socket(nsp)`.
    let again = client.socket("/");
    connected(&mut events).await;
    assert!(again.connected());

    // Off: nothing happens until connect().
    let lazy = Client::builder(&server.url())
        .auto_connect(false)
        .build()
        .unwrap();
    let chat = lazy.socket("/chat");
    let mut chat_events = chat.events();
    socket.emit("echo", &"marker").await.unwrap();
    let lines = server.lines_until("event / echo").await;
    assert!(!lines.iter().any(|l| l.contains("/chat")), "{lines:?}");
    assert!(!chat.active());
    chat.connect().await.unwrap();
    connected(&mut chat_events).await;
}

async fn disconnect_details_name_what_closed(peer: Peer) {
    for (transports, description) in [
        (&[Transport::WebSocket][..], "websocket connection closed"),
        (&[Transport::Polling][..], "transport closed by the server"),
    ] {
        let server = TestServer::start_default(peer).await;
        let client = server.client().transports(transports).build().unwrap();
        let socket = client.socket("/");
        let (tx, mut seen) = mpsc::unbounded_channel();
        socket.on_disconnect_details(move |reason, details| {
            let _ = tx.send((reason, details));
            async {}
        });
        let mut events = socket.events();
        socket.connect().await.unwrap();
        connected(&mut events).await;
        socket.emit("close-transport", &()).await.unwrap();
        let (reason, details) = ferrio_testkit::within(SECS, "disconnect", seen.recv())
            .await
            .unwrap();
        assert_eq!(reason, DisconnectReason::TransportClose);
        let details = details.expect("details");
        assert_eq!(details.description, description);
        if transports == [Transport::WebSocket] {
            assert!(details.code.is_some(), "{details:?}");
        }
        assert_eq!(socket.disconnect_details(), Some(details));

        // A ping timeout has none, as in socket.io-client; the server's disconnect neither.
        connected(&mut events).await;
        socket.emit("server-disconnect", &()).await.unwrap();
        let (reason, details) = ferrio_testkit::within(SECS, "disconnect", seen.recv())
            .await
            .unwrap();
        assert_eq!(reason, DisconnectReason::IoServerDisconnect);
        assert_eq!(details, None);
    }
}

async fn offline_buffer_can_be_inspected_and_cleared(peer: Peer) {
    let mut server = TestServer::start_default(peer).await;
    let client = server.client().build().unwrap();
    let socket = client.socket("/");
    let mut events = socket.events();
    socket.emit("a", &1).await.unwrap();
    socket.emit("b", &(2, "x")).await.unwrap();
    let pending = {
        let socket = socket.clone();
        tokio::spawn(async move { socket.emit_with_ack("c", &3).await })
    };
    let buffered = ferrio_testkit::within(SECS, "three buffered events", async {
        loop {
            let b = socket.send_buffer().await.unwrap();
            if b.len() == 3 {
                return b;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    let names: Vec<&str> = buffered.iter().map(|e| e.name()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(
        buffered[1].data::<(i32, String)>().unwrap(),
        (2, "x".into())
    );
    assert!(buffered[2].wants_ack() && !buffered[0].wants_ack());

    assert_eq!(socket.clear_send_buffer().await.unwrap(), 3);
    assert!(matches!(pending.await.unwrap(), Err(AckError::Discarded)));
    assert!(socket.send_buffer().await.unwrap().is_empty());
    socket.emit("d", &4).await.unwrap();
    socket.connect().await.unwrap();
    connected(&mut events).await;
    let lines = server.lines_until("event / d ").await;
    let sent: Vec<&String> = lines.iter().filter(|l| l.starts_with("event / ")).collect();
    assert_eq!(sent, ["event / d [4]"], "{lines:?}");
}

async fn request_timeout_bounds_a_polling_request(peer: Peer) {
    // The server holds an idle poll for its ping interval (30 s here).
    let server = TestServer::start(peer, json!({"pingInterval": 30000})).await;
    let client = server
        .client()
        .transports(&[Transport::Polling])
        .request_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let mut m = client.events();
    let socket = client.socket("/");
    let mut events = socket.events();
    socket.connect().await.unwrap();
    connected(&mut events).await;
    let reason = common::until(&mut events, "the timed-out poll", |e| match e {
        SocketEvent::Disconnect(r) => Some(r),
        _ => None,
    })
    .await;
    assert_eq!(reason, DisconnectReason::TransportError);
    let details = socket.disconnect_details().expect("details");
    assert_eq!(details.description, "xhr poll error");
    assert!(
        details
            .context
            .as_deref()
            .unwrap_or("")
            .contains("timed out"),
        "{details:?}"
    );
    manager(&mut m, "the error event", |e| match e {
        ManagerEvent::Error(e) => Some(e),
        _ => None,
    })
    .await;
    // It reconnects.
    connected(&mut events).await;
}

/// `path`, `query` and `extra_header` over each transport: the client connects to a server
/// answering at another path (`path: "/custom"`, given without its trailing slash), and the
/// server's handshake has the query parameter and the header.
async fn path_query_and_extra_headers_reach_the_server(peer: Peer) {
    let server = TestServer::start(peer, json!({ "path": "/custom/" })).await;
    for (name, transports) in [
        ("websocket", &[Transport::WebSocket][..]),
        ("polling", &[Transport::Polling][..]),
        ("upgrade", &[Transport::Polling, Transport::WebSocket][..]),
    ] {
        let client = server
            .client()
            .transports(transports)
            .path("custom")
            .query("k", "v w&x")
            .extra_header("x-test", name)
            .build()
            .unwrap();
        let socket = client.socket("/");
        let mut events = socket.events();
        socket.connect().await.unwrap();
        connected(&mut events).await;
        let res = socket
            .emit_with_ack("handshake", &())
            .timeout(Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(
            res.data::<Value>().unwrap(),
            json!({ "query": "v w&x", "header": name }),
            "{name}"
        );
        client.disconnect().await.unwrap();
    }
    // At the default path nothing answers (Node's HTTP server leaves the request unanswered:
    // a handshake timeout; Ferrio's answers 404).
    let client = server
        .client()
        .transports(&[Transport::Polling])
        .timeout(Duration::from_secs(1))
        .reconnection(false)
        .build()
        .unwrap();
    let socket = client.socket("/");
    let mut events = socket.events();
    socket.connect().await.unwrap();
    ferrio_testkit::within(SECS, "a connect error at the default path", async {
        loop {
            match events.next().await.expect("client gone") {
                SocketEvent::ConnectError(_) | SocketEvent::Disconnect(_) => return,
                SocketEvent::Connect(_) => panic!("connected at the default path"),
                _ => {}
            }
        }
    })
    .await;
}
