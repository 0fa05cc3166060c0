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
    reject_unauthorized_false_accepts_any_certificate;
}

/// A CA and a client certificate it signed (CN `ferrio-test-client`): the CA in PEM, the
/// certificate and its key in DER.
fn client_identity() -> (String, Vec<u8>, Vec<u8>) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ferrio-test-ca");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "ferrio-test-client");
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    (ca.pem(), cert.der().to_vec(), key.serialize_der())
}

/// Node only: the Ferrio test server's TLS terminator asks for no client certificate.
#[tokio::test]
async fn client_certificates_are_presented_to_a_server_that_requires_them() {
    let server_cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (ca, cert, key) = client_identity();
    let tls = json!({
        "key": server_cert.key_pair.serialize_pem(),
        "cert": server_cert.cert.pem(),
        "ca": ca,
        "requestCert": true,
    });
    for transports in [&[Transport::Polling][..], &[Transport::WebSocket]] {
        let mut server = TestServer::start(Peer::Node, json!({ "tls": tls })).await;
        let url = format!("https://127.0.0.1:{}", server.port);
        // Without a certificate, the server refuses the connection.
        let anonymous = Client::builder(&url)
            .transports(transports)
            .reconnection(false)
            .add_root_certificate(server_cert.cert.der().to_vec())
            .build()
            .unwrap();
        let socket = anonymous.socket("/");
        let mut events = socket.events();
        let err = until(&mut events, "connect_error", |e| match e {
            SocketEvent::ConnectError(e) => Some(e),
            SocketEvent::Connect(_) => panic!("connected without a client certificate"),
            _ => None,
        })
        .await;
        assert_eq!(err.kind, ConnectErrorKind::Transport, "{err:?}");
        // With it, the server sees who we are.
        let client = Client::builder(&url)
            .transports(transports)
            .add_root_certificate(server_cert.cert.der().to_vec())
            .client_certificate(vec![cert.clone()], key.clone())
            .build()
            .unwrap();
        let socket = client.socket("/");
        let mut events = socket.events();
        connected(&mut events).await;
        assert_eq!(server.line("peer-cert ").await, "ferrio-test-client");
        socket.emit("echo", &"mutual").await.unwrap();
        assert_eq!(event(&mut events, "echo").await, json!("mutual"));
    }
    // A key that is not one fails the build.
    assert!(
        Client::builder("https://127.0.0.1:1")
            .client_certificate(vec![cert], b"not a key".to_vec())
            .build()
            .is_err()
    );
}

async fn reject_unauthorized_false_accepts_any_certificate(peer: Peer) {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let tls = json!({"key": cert.key_pair.serialize_pem(), "cert": cert.cert.pem()});
    for (name, transports) in CHOICES {
        let server = TestServer::start(peer, json!({ "tls": tls })).await;
        // No root for it: only `reject_unauthorized(false)` lets it through.
        let client = Client::builder(&format!("https://127.0.0.1:{}", server.port))
            .transports(transports)
            .reject_unauthorized(false)
            .build()
            .unwrap();
        let socket = client.socket("/");
        let mut events = socket.events();
        connected(&mut events).await;
        let r = socket
            .emit_with_ack("ack", &"unverified")
            .timeout(Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(r.data::<String>().unwrap(), "unverified", "{name}");
    }
}

/// Node only (`cookie: true` sets the `io` cookie on the handshake): cookies are kept and
/// sent back only with `with_credentials`, as `engine.io-client` in Node.
#[tokio::test]
async fn cookies_are_sent_back_only_with_credentials() {
    for credentials in [false, true] {
        for (name, transports) in [CHOICES[0], CHOICES[2]] {
            let mut server = TestServer::start(Peer::Node, json!({"cookie": true})).await;
            let client = server
                .client()
                .transports(transports)
                .with_credentials(credentials)
                .build()
                .unwrap();
            let socket = client.socket("/");
            let mut events = socket.events();
            socket.connect().await.unwrap();
            connected(&mut events).await;
            let mut lines = Vec::new();
            if name == "upgrade" {
                lines = server.lines_until("upgrade / ").await;
            }
            socket.emit("echo", &"marker").await.unwrap();
            assert_eq!(event(&mut events, "echo").await, json!("marker"));
            lines.extend(server.lines_until("event / echo").await);
            let cookies: Vec<&String> = lines.iter().filter(|l| l.starts_with("cookie ")).collect();
            if credentials {
                assert!(!cookies.is_empty(), "{name}: {lines:?}");
                assert!(
                    cookies.iter().all(|c| c.starts_with("cookie io=")),
                    "{cookies:?}"
                );
            } else {
                assert!(cookies.is_empty(), "{name}: {cookies:?}");
            }
        }
    }
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
