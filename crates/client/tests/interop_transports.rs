//! ferrio-client against the real npm `socket.io` 4.8 server and the Ferrio server (each
//! scenario runs against both), over each transport choice: polling only, WebSocket only,
//! polling upgraded to WebSocket.

mod common;

use std::time::Duration;

use bytes::Bytes;
use ferrio_client::{Parser, SocketEvent, Transport};
use serde_json::{Value, json};

use common::{CHOICES, Peer, TestServer, connected, event, next};

common::each_server! {
    emit_on_and_acks_over_each_transport;
}

/// Every transport choice, with each packet format (`socket.io-parser` and
/// `socket.io-msgpack-parser` on both sides).
async fn emit_on_and_acks_over_each_transport(peer: Peer) {
    for parser in [Parser::Default, Parser::MsgPack] {
        for (name, transports) in CHOICES {
            let name = format!("{name} ({parser:?})");
            emit_on_and_acks(peer, &name, transports, parser).await;
        }
    }
}

async fn emit_on_and_acks(peer: Peer, name: &str, transports: &[Transport], parser: Parser) {
    {
        let options = if parser == Parser::MsgPack {
            json!({"tracePackets": true, "parser": "msgpack"})
        } else {
            json!({"tracePackets": true})
        };
        let mut server = TestServer::start(peer, options).await;
        let client = server
            .client()
            .transports(transports)
            .parser(parser)
            .build()
            .unwrap();
        let socket = client.socket("/");
        let mut events = socket.events();
        socket.connect().await.unwrap();
        let id = connected(&mut events).await;
        assert_eq!(socket.id().as_deref(), Some(id.as_str()), "{name}");
        assert!(socket.connected());
        let line = server.line("connect / ").await;
        let expected_first = if transports == [Transport::WebSocket] {
            "websocket"
        } else {
            "polling"
        };
        assert!(
            line.starts_with(&format!("{id} {expected_first} ")),
            "{name}: {line}"
        );
        if transports.len() == 2 {
            assert_eq!(server.line("upgrade / ").await, "websocket");
        }
        // The server's welcome, then an echo.
        let welcome = event(&mut events, "welcome").await;
        assert_eq!(welcome["id"], json!(id));
        socket
            .emit("echo", &("hi", 1, json!({"a": [true]})))
            .await
            .unwrap();
        assert_eq!(
            event(&mut events, "echo").await,
            json!(["hi", 1, {"a": [true]}]),
            "{name}"
        );
        // Client → server ack.
        let res = socket
            .emit_with_ack("ack", &(7, "x"))
            .timeout(Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(
            res.data::<(i32, String)>().unwrap(),
            (7, "x".to_owned()),
            "{name}"
        );
        // Server → client ack, answered by a handler.
        socket.on("question", |ev| async move {
            let n: i64 = ev.data().unwrap();
            ev.ack(&(n * 2, "doubled")).await.unwrap();
        });
        socket.emit("ask", &21).await.unwrap();
        assert_eq!(
            server.line("answer / ").await,
            r#"[42,"doubled"]"#,
            "{name}"
        );
        assert_eq!(event(&mut events, "answer").await, json!([42, "doubled"]));
        // Binary both ways.
        let blob = Bytes::from_static(&[0, 1, 2, 255]);
        socket
            .emit("echo", &(blob.clone(), json!({"n": 1})))
            .await
            .unwrap();
        let got = common::until(&mut events, "binary echo", |e| match e {
            SocketEvent::Event(ev) if ev.name() == "echo" => Some(ev),
            _ => None,
        })
        .await;
        assert!(got.args().has_binary(), "{name}");
        let (b, meta): (Bytes, Value) = got.data().unwrap();
        assert_eq!(b, blob, "{name}");
        assert_eq!(meta, json!({"n": 1}));
        assert_eq!(
            server.line("event / echo ").await,
            r#"[{"bin":[0,1,2,255]},{"n":1}]"#
        );
        let res = socket
            .emit_with_ack("ack", &blob)
            .timeout(Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(res.data::<Bytes>().unwrap(), blob);

        socket.disconnect().await.unwrap();
        assert!(matches!(
            next(&mut events).await,
            SocketEvent::Disconnect(ferrio_client::DisconnectReason::IoClientDisconnect)
        ));
        assert_eq!(
            server.line("disconnect / ").await,
            "client namespace disconnect",
            "{name}"
        );
    }
}
