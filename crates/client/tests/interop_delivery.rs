//! Delivery guarantees of ferrio-client against the real npm `socket.io` 4.8 server and the
//! Ferrio server (each scenario runs against both): ack timeouts, at-least-once `retries`
//! against a server that withholds acks, the offline buffer, volatile emits, and the client
//! side of connection state recovery.

mod common;

use std::time::Duration;

use ferrio_client::{AckError, DisconnectReason, EmitError, SocketEvent};
use serde_json::{Value, json};

use common::{Peer, TestServer, connected, disconnected, event, until};

common::each_server! {
    retries_resend_until_acked_one_at_a_time_in_order;
    ack_timeout_without_retries;
    offline_buffer_is_flushed_in_order_and_volatile_is_dropped;
    offline_buffer_is_bounded;
    connection_state_recovery_restores_the_session;
    a_slow_event_stream_reports_what_it_dropped;
}

async fn retries_resend_until_acked_one_at_a_time_in_order(peer: Peer) {
    let mut server = TestServer::start_default(peer).await;
    let client = server
        .client()
        .retries(3)
        .ack_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let socket = client.socket("/");
    let mut events = socket.events();
    socket.connect().await.unwrap();
    connected(&mut events).await;

    // The server withholds the first ack of each n: the client sends again after 300 ms.
    let r = socket.emit_with_ack("retry-me", &1).await.unwrap();
    assert_eq!(r.data::<(String, i32)>().unwrap(), ("ok".to_owned(), 1));
    assert_eq!(
        server.lines_until("acked 1").await.last().unwrap(),
        "acked 1"
    );

    // Two packets queued at once: the second waits until the first is acked.
    let s = socket.clone();
    let first = tokio::spawn(async move { s.emit_with_ack("retry-me", &2).await });
    let s = socket.clone();
    let second = tokio::spawn(async move {
        // A plain emit is at-least-once too (the server must ack it).
        s.emit("retry-me", &3).await
    });
    ferrio_testkit::within(10, "first ack", first)
        .await
        .unwrap()
        .unwrap();
    ferrio_testkit::within(10, "second emit", second)
        .await
        .unwrap()
        .unwrap();
    let lines = server.lines_until("acked 3").await;
    let order: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("withheld") || l.starts_with("acked"))
        .map(String::as_str)
        .collect();
    assert_eq!(order, ["withheld 2", "acked 2", "withheld 3", "acked 3"]);

    // Never acked: retries + 1 sends, then a timeout.
    let err = socket.emit_with_ack("nothing", &"x").await.unwrap_err();
    assert!(matches!(err, AckError::Timeout), "{err:?}");
    let lines = server.lines_until("event / nothing").await;
    assert_eq!(lines.last().unwrap(), r#"event / nothing ["x"]"#);
    for _ in 0..3 {
        assert_eq!(server.line("event / nothing ").await, r#"["x"]"#);
    }
}

async fn ack_timeout_without_retries(peer: Peer) {
    let server = TestServer::start_default(peer).await;
    let client = server.client().build().unwrap();
    let socket = client.socket("/");
    let mut events = socket.events();
    socket.connect().await.unwrap();
    connected(&mut events).await;
    let err = socket
        .emit_with_ack("nothing", &())
        .timeout(Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(matches!(err, AckError::Timeout), "{err:?}");
    assert_eq!(err.to_string(), "operation has timed out");
    // The socket still works afterwards.
    let r = socket
        .emit_with_ack("ack", &5)
        .timeout(Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(r.data::<i32>().unwrap(), 5);
    // Reserved names are refused locally.
    assert!(matches!(
        socket.emit("disconnect", &()).await,
        Err(EmitError::ReservedEvent(_))
    ));
}

async fn offline_buffer_is_flushed_in_order_and_volatile_is_dropped(peer: Peer) {
    let mut server = TestServer::start_default(peer).await;
    let client = server.client().reconnection(false).build().unwrap();
    let socket = client.socket("/");
    let mut events = socket.events();

    // Before the first connection.
    for i in 0..5 {
        socket.emit("buf", &i).await.unwrap();
    }
    socket.volatile().emit("vol", &0).await.unwrap();
    let s = socket.clone();
    let acked = tokio::spawn(async move {
        s.emit_with_ack("ack", &"buffered ack")
            .timeout(Duration::from_secs(10))
            .await
    });
    socket.connect().await.unwrap();
    connected(&mut events).await;
    let r = ferrio_testkit::within(10, "buffered ack", acked)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.data::<String>().unwrap(), "buffered ack");
    socket.volatile().emit("vol", &"live").await.unwrap();
    let lines = server.lines_until(r#"event / vol"#).await;
    // The ack request was emitted from another task: its place among the others is not
    // fixed, but it was buffered and answered.
    assert!(lines.contains(&r#"event / ack ["buffered ack"]"#.to_owned()));
    let seen: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("event / ") && !l.starts_with("event / ack "))
        .map(String::as_str)
        .collect();
    assert_eq!(
        seen,
        [
            "event / buf [0]",
            "event / buf [1]",
            "event / buf [2]",
            "event / buf [3]",
            "event / buf [4]",
            r#"event / vol ["live"]"#,
        ]
    );

    // Disconnected mid-session (no automatic reconnection here, so the test controls when).
    socket.emit("close-transport", &()).await.unwrap();
    assert_eq!(
        disconnected(&mut events).await,
        DisconnectReason::TransportClose
    );
    assert!(!socket.active());
    for i in 0..3 {
        socket.emit("again", &i).await.unwrap();
    }
    socket.volatile().emit("vol", &"offline").await.unwrap();
    socket.connect().await.unwrap();
    connected(&mut events).await;
    socket.emit("again", &"live").await.unwrap();
    let lines = server.lines_until(r#"event / again ["live"]"#).await;
    let seen: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("event / "))
        .map(String::as_str)
        .collect();
    assert_eq!(
        seen,
        [
            "event / close-transport []",
            "event / again [0]",
            "event / again [1]",
            "event / again [2]",
            r#"event / again ["live"]"#,
        ]
    );
}

async fn offline_buffer_is_bounded(peer: Peer) {
    let server = TestServer::start_default(peer).await;
    let client = server.client().send_buffer_capacity(2).build().unwrap();
    let socket = client.socket("/");
    socket.emit("a", &1).await.unwrap();
    socket.emit("a", &2).await.unwrap();
    let err = socket.emit("a", &3).await.unwrap_err();
    assert!(matches!(err, EmitError::BufferFull), "{err:?}");
}

async fn connection_state_recovery_restores_the_session(peer: Peer) {
    let server = TestServer::start(peer, json!({"recovery": true})).await;
    let client = server.client().build().unwrap();
    let socket = client.socket("/");
    let mut events = socket.events();
    socket.connect().await.unwrap();
    let id = connected(&mut events).await;
    assert!(!socket.recovered());
    socket.emit("emit-offsets", &3).await.unwrap();
    for i in 0..3 {
        // The offset is the last argument, left in place as socket.io-client does.
        let args = event(&mut events, "seq").await;
        assert_eq!(args[0], json!(i));
        assert!(args[1].is_string(), "{args}");
    }
    socket.emit("close-transport", &()).await.unwrap();
    assert_eq!(
        disconnected(&mut events).await,
        DisconnectReason::TransportClose
    );
    let info = until(&mut events, "recovered connection", |e| match e {
        SocketEvent::Connect(info) => Some(info),
        _ => None,
    })
    .await;
    assert!(info.recovered, "{info:?}");
    assert_eq!(info.id, id, "same socket id after recovery");
    assert!(socket.recovered());
    let v: Value = socket
        .emit_with_ack("ack", &"still here")
        .timeout(Duration::from_secs(5))
        .await
        .unwrap()
        .data()
        .unwrap();
    assert_eq!(v, json!("still here"));
}

async fn a_slow_event_stream_reports_what_it_dropped(peer: Peer) {
    let server = TestServer::start_default(peer).await;
    let client = server.client().event_stream_capacity(4).build().unwrap();
    let socket = client.socket("/");
    // A handler sees every event; it tells when all 50 have arrived.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    socket.on("seq", move |ev| {
        let tx = tx.clone();
        async move {
            if ev.data::<i64>().unwrap() == 49 {
                let _ = tx.send(());
            }
        }
    });
    let (ctx, mut crx) = tokio::sync::mpsc::unbounded_channel();
    socket.on_connect(move |_| {
        let ctx = ctx.clone();
        async move {
            let _ = ctx.send(());
        }
    });
    let mut events = socket.events();
    socket.connect().await.unwrap();
    // Wait for the connection without reading the stream.
    ferrio_testkit::within(10, "connect", crx.recv())
        .await
        .unwrap();
    socket.emit("emit-offsets", &50).await.unwrap();
    ferrio_testkit::within(10, "the 50 events", rx.recv())
        .await
        .unwrap();
    // Connect, welcome and two events fit; the other 48 are reported as dropped.
    assert!(matches!(
        common::next(&mut events).await,
        SocketEvent::Connect(_)
    ));
    let mut names = Vec::new();
    for _ in 0..3 {
        match common::next(&mut events).await {
            SocketEvent::Event(e) => names.push(e.name().to_owned()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(names, ["welcome", "seq", "seq"]);
    assert!(matches!(
        common::next(&mut events).await,
        SocketEvent::Lagged(48)
    ));
}
