//! ferrio-client over TLS (`https` polling, `wss`) against the real npm `socket.io` 4.8 server
//! and the Ferrio server (behind a TLS terminator in the test: `ferrio::serve` speaks plain
//! HTTP), with a self-signed certificate made by the test.

mod common;

use std::time::Duration;

use ferrio_client::{Client, ConnectErrorKind, SocketEvent, Transport};
use serde_json::json;

use common::{CHOICES, Peer, TestServer, connected, event, until};

common::each_server! {
    tls_over_each_transport_with_a_trusted_root;
    an_untrusted_certificate_is_a_connect_error;
}

async fn tls_over_each_transport_with_a_trusted_root(peer: Peer) {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let tls = json!({"key": cert.key_pair.serialize_pem(), "cert": cert.cert.pem()});
    for (name, transports) in CHOICES {
        let mut server = TestServer::start(peer, json!({ "tls": tls })).await;
        let url = format!("https://127.0.0.1:{}", server.port);
        let client = Client::builder(&url)
            .transports(transports)
            .add_root_certificate(cert.cert.der().to_vec())
            .build()
            .unwrap();
        let socket = client.socket("/");
        let mut events = socket.events();
        socket.connect().await.unwrap();
        connected(&mut events).await;
        if name == "upgrade" {
            assert_eq!(server.line("upgrade / ").await, "websocket");
        }
        socket.emit("echo", &"secure").await.unwrap();
        assert_eq!(event(&mut events, "echo").await, json!("secure"), "{name}");
        let r = socket
            .emit_with_ack("ack", &1)
            .timeout(Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(r.data::<i32>().unwrap(), 1);
    }
}

async fn an_untrusted_certificate_is_a_connect_error(peer: Peer) {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let tls = json!({"key": cert.key_pair.serialize_pem(), "cert": cert.cert.pem()});
    for transports in [&[Transport::Polling][..], &[Transport::WebSocket]] {
        let server = TestServer::start(peer, json!({ "tls": tls })).await;
        let client = Client::builder(&format!("https://127.0.0.1:{}", server.port))
            .transports(transports)
            .reconnection(false)
            .build()
            .unwrap();
        let socket = client.socket("/");
        let mut events = socket.events();
        socket.connect().await.unwrap();
        let err = until(&mut events, "connect_error", |e| match e {
            SocketEvent::ConnectError(e) => Some(e),
            SocketEvent::Connect(_) => panic!("connected to an untrusted server"),
            _ => None,
        })
        .await;
        assert_eq!(err.kind, ConnectErrorKind::Transport);
        assert!(
            err.message.to_lowercase().contains("certificate"),
            "{err:?}"
        );
        assert!(!socket.active());
    }
}
