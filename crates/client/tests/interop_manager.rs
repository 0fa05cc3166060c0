//! ferrio-client's Manager behaviour against the real npm `socket.io` 4.8 server and the
//! Ferrio server (each scenario runs against both): namespaces multiplexed over one
//! connection, middleware refusal, disconnect reasons, reconnection after a server restart,
//! auth functions, nested acks.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ferrio_client::{ConnectErrorKind, DisconnectReason, SocketEvent, Transport};
use serde_json::{Value, json};

use common::{Peer, TestServer, connected, disconnected, event, until};

common::each_server! {
    namespaces_share_one_connection;
    middleware_refusal_carries_data_and_is_not_retried;
    disconnect_reasons_and_reconnection;
    server_restart_reconnects_every_namespace_with_backoff;
    a_handler_can_emit_with_ack_inside_an_ack_flow;
    callbacks_see_the_lifecycle;
}

async fn namespaces_share_one_connection(peer: Peer) {
    let mut server = TestServer::start_default(peer).await;
    let client = server
        .client()
        .auth(json!({"who": "client"}))
        .build()
        .unwrap();
    let main = client.socket("/");
    let chat = client.socket("chat");
    let admin = client.socket("/admin");
    admin.set_auth(ferrio_client::Auth::Value(json!({"who": "admin"})));
    assert_eq!(chat.namespace(), "/chat");
    let (mut e_main, mut e_chat, mut e_admin) = (main.events(), chat.events(), admin.events());
    main.connect().await.unwrap();
    chat.connect().await.unwrap();
    admin.connect().await.unwrap();
    let ids = [
        connected(&mut e_main).await,
        connected(&mut e_chat).await,
        connected(&mut e_admin).await,
    ];
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2],
        "one socket id per namespace"
    );
    // CONNECTs go in the order the sockets connected, on one Engine.IO connection.
    let mut lines = server.lines_until("connect /").await;
    lines.extend(server.lines_until("connect /").await);
    lines.extend(server.lines_until("connect /").await);
    let engines = lines.iter().filter(|l| l.starts_with("engine ")).count();
    assert_eq!(engines, 1, "one Engine.IO connection: {lines:?}");
    let connects: Vec<&String> = lines.iter().filter(|l| l.starts_with("connect ")).collect();
    assert!(connects[0].starts_with("connect / ") && connects[0].ends_with(r#"{"who":"client"}"#));
    assert!(
        connects[1].starts_with("connect /chat ") && connects[1].ends_with(r#"{"who":"client"}"#)
    );
    assert!(
        connects[2].starts_with("connect /admin ") && connects[2].ends_with(r#"{"who":"admin"}"#)
    );

    // Each namespace gets its own events.
    chat.emit("echo", &"to chat").await.unwrap();
    admin.emit("echo", &"to admin").await.unwrap();
    main.emit("echo", &"to main").await.unwrap();
    assert_eq!(event(&mut e_chat, "echo").await, json!("to chat"));
    assert_eq!(event(&mut e_admin, "echo").await, json!("to admin"));
    assert_eq!(event(&mut e_main, "echo").await, json!("to main"));

    // Leaving one namespace keeps the others.
    chat.disconnect().await.unwrap();
    assert_eq!(
        disconnected(&mut e_chat).await,
        DisconnectReason::IoClientDisconnect
    );
    assert_eq!(
        server.line("disconnect /chat ").await,
        "client namespace disconnect"
    );
    let r = admin
        .emit_with_ack("ack", &1)
        .timeout(Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(r.data::<i32>().unwrap(), 1);
    assert!(main.connected() && admin.connected() && !chat.connected());

    client.disconnect().await.unwrap();
    assert_eq!(
        disconnected(&mut e_main).await,
        DisconnectReason::IoClientDisconnect
    );
    assert_eq!(
        disconnected(&mut e_admin).await,
        DisconnectReason::IoClientDisconnect
    );
}

async fn middleware_refusal_carries_data_and_is_not_retried(peer: Peer) {
    let mut server = TestServer::start_default(peer).await;
    let client = server.client().build().unwrap();
    let private = client.socket("/private");
    let mut events = private.events();
    private.set_auth(ferrio_client::Auth::Value(json!({"token": "bad"})));
    private.connect().await.unwrap();
    let err = until(&mut events, "connect_error", |e| match e {
        SocketEvent::ConnectError(e) => Some(e),
        _ => None,
    })
    .await;
    assert_eq!(err.kind, ConnectErrorKind::Server);
    assert_eq!(err.message, "not authorized");
    assert_eq!(err.data, Some(json!({"reason": "bad token", "code": 42})));
    assert!(!private.active(), "no reconnection after a refusal");

    // Another namespace opens a new connection; nothing was retried in between.
    let chat = client.socket("/chat");
    let mut chat_events = chat.events();
    chat.connect().await.unwrap();
    connected(&mut chat_events).await;
    let lines = server.lines_until("connect /chat ").await;
    let engines = lines.iter().filter(|l| l.starts_with("engine ")).count();
    assert_eq!(
        engines, 2,
        "the refused connection closed, the new one opened: {lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains("/private")), "{lines:?}");

    // With the right token, the same socket connects.
    private.set_auth(ferrio_client::Auth::Value(json!({"token": "good"})));
    private.connect().await.unwrap();
    connected(&mut events).await;
    assert!(private.active() && private.connected());
}

async fn disconnect_reasons_and_reconnection(peer: Peer) {
    for (name, transports) in common::CHOICES {
        let mut server = TestServer::start_default(peer).await;
        let client = server.client().transports(transports).build().unwrap();
        let socket = client.socket("/");
        let mut events = socket.events();
        socket.connect().await.unwrap();
        let first = connected(&mut events).await;

        // The server closes the connection: transport close, then a reconnection.
        socket.emit("close-transport", &()).await.unwrap();
        assert_eq!(
            disconnected(&mut events).await,
            DisconnectReason::TransportClose,
            "{name}"
        );
        let second = connected(&mut events).await;
        assert_ne!(first, second, "{name}: a new session");
        assert!(socket.connected());

        // The server disconnects the socket: no reconnection.
        socket.emit("server-disconnect", &()).await.unwrap();
        assert_eq!(
            disconnected(&mut events).await,
            DisconnectReason::IoServerDisconnect,
            "{name}"
        );
        assert!(!socket.active() && !socket.connected());
        assert_eq!(server.line("disconnect / ").await, "forced close");
        assert_eq!(
            server.line("disconnect / ").await,
            "server namespace disconnect"
        );
        assert_eq!(
            DisconnectReason::IoServerDisconnect.as_str(),
            "io server disconnect"
        );
    }
}

async fn server_restart_reconnects_every_namespace_with_backoff(peer: Peer) {
    let server = TestServer::start_default(peer).await;
    let port = server.port;
    let auth_calls = Arc::new(AtomicU64::new(0));
    let calls = auth_calls.clone();
    let client = server
        .client()
        .transports(&[Transport::WebSocket])
        .auth_fn(move || {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            async move { json!({ "n": n }) }
        })
        .build()
        .unwrap();
    let main = client.socket("/");
    let chat = client.socket("/chat");
    let (mut e_main, mut e_chat) = (main.events(), chat.events());
    main.connect().await.unwrap();
    chat.connect().await.unwrap();
    let (m1, c1) = (connected(&mut e_main).await, connected(&mut e_chat).await);

    // Kill the server: both namespaces see the transport close.
    drop(server);
    assert_eq!(
        disconnected(&mut e_main).await,
        DisconnectReason::TransportClose
    );
    assert_eq!(
        disconnected(&mut e_chat).await,
        DisconnectReason::TransportClose
    );
    // At least one attempt fails while it is down (connection refused), and retries go on.
    let err = until(&mut e_main, "failed attempt", |e| match e {
        SocketEvent::ConnectError(e) => Some(e),
        _ => None,
    })
    .await;
    assert_eq!(err.kind, ConnectErrorKind::Transport);
    assert!(main.active());

    // Start it again on the same port: both namespaces connect again, with a fresh auth.
    let mut server = TestServer::start(peer, json!({"port": port})).await;
    let (m2, c2) = (
        reconnected(&mut e_main).await,
        reconnected(&mut e_chat).await,
    );
    assert!(m2 != m1 && c2 != c1);
    let mut lines = server.lines_until("connect /").await;
    lines.extend(server.lines_until("connect /").await);
    assert!(
        lines.iter().any(|l| l.starts_with("connect / ")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("connect /chat ")),
        "{lines:?}"
    );
    let calls = auth_calls.load(Ordering::SeqCst);
    assert!(calls >= 4, "auth evaluated for every CONNECT ({calls})");
    main.emit("echo", &"back").await.unwrap();
    assert_eq!(event(&mut e_main, "echo").await, json!("back"));
}

/// Waits for the next connection, skipping the failed attempts before it.
async fn reconnected(events: &mut ferrio_client::EventStream) -> String {
    until(events, "reconnection", |e| match e {
        SocketEvent::Connect(info) => Some(info.id),
        _ => None,
    })
    .await
}

async fn a_handler_can_emit_with_ack_inside_an_ack_flow(peer: Peer) {
    let mut server = TestServer::start_default(peer).await;
    let client = server.client().build().unwrap();
    let socket = client.socket("/");
    let mut events = socket.events();
    // The server's question is answered with what another ack returned: a handler awaiting an
    // ack must not block the connection.
    let s = socket.clone();
    socket.on("question", move |ev| {
        let s = s.clone();
        async move {
            let q: Value = ev.data().unwrap();
            let first = s
                .emit_with_ack("ack", &q)
                .timeout(Duration::from_secs(5))
                .await
                .unwrap();
            let first: Value = first.data().unwrap();
            // And from the continuation of that ack, another one.
            let second = s
                .emit_with_ack("ack", &json!({"nested": first}))
                .timeout(Duration::from_secs(5))
                .await
                .unwrap();
            ev.ack(&second.data::<Value>().unwrap()).await.unwrap();
        }
    });
    socket.connect().await.unwrap();
    connected(&mut events).await;
    socket.emit("ask", &json!({"q": 1})).await.unwrap();
    assert_eq!(server.line("answer / ").await, r#"[{"nested":{"q":1}}]"#);
    assert_eq!(
        event(&mut events, "answer").await,
        json!([{"nested": {"q": 1}}])
    );
}

async fn callbacks_see_the_lifecycle(peer: Peer) {
    let server = TestServer::start_default(peer).await;
    let client = server.client().build().unwrap();
    let socket = client.socket("/");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let t = tx.clone();
    socket.on_connect(move |info| {
        let t = t.clone();
        async move {
            let _ = t.send(format!("connect {}", info.recovered));
        }
    });
    let t = tx.clone();
    socket.on_disconnect(move |r| {
        let t = t.clone();
        async move {
            let _ = t.send(format!("disconnect {r}"));
        }
    });
    let t = tx.clone();
    socket.on_any(move |ev| {
        let t = t.clone();
        async move {
            let _ = t.send(format!("any {}", ev.name()));
        }
    });
    socket.connect().await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let line = ferrio_testkit::within(10, "callbacks", rx.recv())
            .await
            .unwrap();
        seen.push(line);
    }
    seen.sort();
    assert_eq!(seen, ["any welcome", "connect false"]);
    socket.disconnect().await.unwrap();
    let line = ferrio_testkit::within(10, "disconnect callback", rx.recv())
        .await
        .unwrap();
    assert_eq!(line, "disconnect io client disconnect");
}
