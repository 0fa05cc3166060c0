//! ferrio-client with `socket.io-msgpack-parser` (`ClientBuilder::parser(Parser::MsgPack)`)
//! against the real npm `socket.io` 4.8 server using that parser and against the Ferrio server
//! (`SocketIoBuilder::parser`): namespaces with auth and refusals, msgpack values (binary,
//! 64-bit integers, floats, nested maps), offline buffering, outgoing listeners, and
//! connection state recovery offsets. Events, acks and binary over each transport are in
//! `interop_transports.rs`.

mod common;

use std::time::Duration;

use bytes::Bytes;
use ferrio_client::{ConnectErrorKind, DisconnectReason, Parser, SocketEvent};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use common::{CHOICES, Peer, TestServer, connected, disconnected, event, until};

common::each_server! {
    namespaces_auth_and_refusals;
    values_keep_their_msgpack_types;
    offline_buffer_and_outgoing_listeners;
    recovery_offsets;
    a_text_client_is_not_understood;
}

async fn msgpack_server(peer: Peer, extra: Value) -> TestServer {
    let mut options = json!({"parser": "msgpack"});
    if let (Some(o), Some(e)) = (options.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    TestServer::start(peer, options).await
}

async fn namespaces_auth_and_refusals(peer: Peer) {
    for (name, transports) in CHOICES {
        let mut server = msgpack_server(peer, json!({})).await;
        let client = server
            .client()
            .transports(transports)
            .parser(Parser::MsgPack)
            .build()
            .unwrap();
        // Two namespaces over one connection, each with its own auth.
        let chat = client.socket("/chat");
        chat.set_auth(ferrio_client::Auth::Value(json!({"token": "t1", "n": 3})));
        let mut chat_events = chat.events();
        chat.connect().await.unwrap();
        let id = connected(&mut chat_events).await;
        let line = server.line("connect /chat ").await;
        assert!(line.starts_with(&id), "{name}: {line}");
        let auth: Value = serde_json::from_str(line.rsplit(' ').next().unwrap()).unwrap();
        assert_eq!(auth, json!({"token": "t1", "n": 3}), "{name}: {line}");
        let welcome = event(&mut chat_events, "welcome").await;
        assert_eq!(welcome["nsp"], json!("/chat"), "{name}");
        assert_eq!(welcome["auth"], json!({"token": "t1", "n": 3}), "{name}");

        // A refusal with data reaches connect_error with that data.
        let private = client.socket("/private");
        private.set_auth(ferrio_client::Auth::Value(json!({"token": "bad"})));
        let mut private_events = private.events();
        private.connect().await.unwrap();
        let err = until(&mut private_events, "connect_error", |e| match e {
            SocketEvent::ConnectError(e) => Some(e),
            SocketEvent::Connect(_) => panic!("{name}: /private accepted a bad token"),
            _ => None,
        })
        .await;
        assert_eq!(err.kind, ConnectErrorKind::Server, "{name}");
        assert_eq!(err.message, "not authorized", "{name}");
        assert_eq!(
            err.data,
            Some(json!({"reason": "bad token", "code": 42})),
            "{name}"
        );
        // The other namespace is unaffected.
        let got = chat
            .emit_with_ack("ack", &"still")
            .timeout(Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(got.data::<String>().unwrap(), "still", "{name}");

        chat.disconnect().await.unwrap();
        assert_eq!(
            disconnected(&mut chat_events).await,
            DisconnectReason::IoClientDisconnect
        );
        assert_eq!(
            server.line("disconnect /chat ").await,
            "client namespace disconnect",
            "{name}"
        );
    }
}

async fn values_keep_their_msgpack_types(peer: Peer) {
    let mut server = msgpack_server(peer, json!({})).await;
    let client = server.client().parser(Parser::MsgPack).build().unwrap();
    let socket = client.socket("/");
    let mut events = socket.events();
    socket.connect().await.unwrap();
    connected(&mut events).await;
    // Node's msgpack decoder turns a uint64 into a JS number: beyond 2^53 it rounds, Ferrio
    // keeps it exact.
    let big: u64 = match peer {
        Peer::Node => (1 << 53) - 1,
        Peer::Ferrio => (1 << 53) + 1,
    };
    let blob = Bytes::from(vec![7u8; 3000]);
    let payload = (
        big,
        -5i64,
        1.5f64,
        json!({"nested": {"list": [1, "two", null, false]}}),
        blob.clone(),
    );
    let res = socket
        .emit_with_ack("ack", &payload)
        .timeout(Duration::from_secs(5))
        .await
        .unwrap();
    let back: (u64, i64, f64, Value, Bytes) = res.data().unwrap();
    assert_eq!(back.0, big);
    assert_eq!(back.1, -5);
    assert_eq!(back.2, 1.5);
    assert_eq!(back.3, json!({"nested": {"list": [1, "two", null, false]}}));
    assert_eq!(back.4, blob);
    // The peer saw native binary (a Buffer on Node), not an attachment placeholder.
    socket
        .emit("echo", &(Bytes::from_static(&[1, 2]),))
        .await
        .unwrap();
    assert_eq!(server.line("event / echo ").await, r#"[{"bin":[1,2]}]"#);
    let got = until(&mut events, "echo", |e| match e {
        SocketEvent::Event(ev) if ev.name() == "echo" => Some(ev),
        _ => None,
    })
    .await;
    assert!(got.args().has_binary());
    assert_eq!(got.data::<Bytes>().unwrap(), Bytes::from_static(&[1, 2]));
}

async fn offline_buffer_and_outgoing_listeners(peer: Peer) {
    let mut server = msgpack_server(peer, json!({})).await;
    let client = server.client().parser(Parser::MsgPack).build().unwrap();
    let socket = client.socket("/");
    let (tx, mut seen) = mpsc::unbounded_channel();
    socket.on_any_outgoing(move |ev| {
        let tx = tx.clone();
        async move {
            let _ = tx.send((
                ev.name().to_owned(),
                ev.data::<Value>().unwrap(),
                ev.wants_ack(),
            ));
        }
    });
    // Emitted before connecting: buffered, readable back from the buffer.
    socket.emit("echo", &("early", 1)).await.unwrap();
    let buffered = socket.send_buffer().await.unwrap();
    assert_eq!(buffered.len(), 1);
    assert_eq!(buffered[0].name(), "echo");
    assert_eq!(buffered[0].data::<Value>().unwrap(), json!(["early", 1]));
    let mut events = socket.events();
    socket.connect().await.unwrap();
    connected(&mut events).await;
    assert_eq!(event(&mut events, "echo").await, json!(["early", 1]));
    assert_eq!(server.line("event / echo ").await, r#"["early",1]"#);
    let ack = socket
        .emit_with_ack("ack", &"x")
        .timeout(Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(ack.data::<String>().unwrap(), "x");
    let first = tokio::time::timeout(Duration::from_secs(5), seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, ("echo".to_owned(), json!(["early", 1]), false));
    let second = tokio::time::timeout(Duration::from_secs(5), seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second, ("ack".to_owned(), json!("x"), true));
}

async fn recovery_offsets(peer: Peer) {
    let server = msgpack_server(peer, json!({"recovery": true})).await;
    let client = server.client().parser(Parser::MsgPack).build().unwrap();
    let socket = client.socket("/");
    let mut events = socket.events();
    socket.connect().await.unwrap();
    let id = connected(&mut events).await;
    socket.emit("emit-offsets", &3).await.unwrap();
    for i in 0..3 {
        let args = event(&mut events, "seq").await;
        assert_eq!(args[0], json!(i));
        assert!(
            args[1].is_string(),
            "the offset is the last argument: {args}"
        );
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
    assert_eq!(info.id, id);
}

/// Both sides must use the same format: a default-parser client is not understood by a
/// msgpack server and never connects.
async fn a_text_client_is_not_understood(peer: Peer) {
    let server = msgpack_server(peer, json!({})).await;
    let client = server.client().reconnection(false).build().unwrap();
    let socket = client.socket("/");
    let mut events = socket.events();
    socket.connect().await.unwrap();
    until(&mut events, "the connection to end", |e| match e {
        SocketEvent::Connect(_) => panic!("a text CONNECT was accepted by a msgpack server"),
        SocketEvent::ConnectError(_) | SocketEvent::Disconnect(_) => Some(()),
        _ => None,
    })
    .await;
    assert!(!socket.connected());
}
