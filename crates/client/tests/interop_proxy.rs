//! ferrio-client through an HTTP proxy (a tiny one in the test process) to the real npm
//! `socket.io` 4.8 server and the Ferrio server: plain polling as absolute-URI requests,
//! WebSocket and everything over TLS through a `CONNECT` tunnel.

mod common;

use std::time::Duration;

use ferrio_client::Client;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use common::{CHOICES, Peer, TestServer, connected, event};

common::each_server! {
    plain_transports_through_a_proxy;
    tls_transports_through_a_connect_tunnel;
}

/// Starts the proxy; each request line it handles (`CONNECT host:port`, `GET http://...`)
/// is sent on the channel.
async fn proxy() -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let _ = relay(stream, tx).await;
            });
        }
    });
    (url, rx)
}

async fn read_head(s: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        if s.read(&mut b).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(b[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// One request: a tunnel for CONNECT, else an absolute-form request forwarded in origin
/// form with `Connection: close`, its answer relayed until the server closes.
async fn relay(mut client: TcpStream, tx: mpsc::UnboundedSender<String>) -> std::io::Result<()> {
    let head = read_head(&mut client).await?;
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default().to_owned();
    let mut parts = first.split(' ');
    let (method, target, version) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let _ = tx.send(format!("{method} {target}"));
    if method == "CONNECT" {
        let mut upstream = TcpStream::connect(target).await?;
        client
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        return Ok(());
    }
    let rest = target.strip_prefix("http://").unwrap_or(target);
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut upstream = TcpStream::connect(authority).await?;
    let mut out = format!("{method} {path} {version}\r\n");
    let mut length = 0;
    for line in lines.filter(|l| !l.is_empty()) {
        let name = line
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if name == "content-length" {
            length = line[15..].trim().parse().unwrap_or(0);
        }
        if name != "connection" && name != "proxy-connection" {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    upstream.write_all(out.as_bytes()).await?;
    let mut body = vec![0u8; length];
    client.read_exact(&mut body).await?;
    upstream.write_all(&body).await?;
    tokio::io::copy(&mut upstream, &mut client).await?;
    client.shutdown().await
}

async fn plain_transports_through_a_proxy(peer: Peer) {
    for (name, transports) in CHOICES {
        let mut server = TestServer::start_default(peer).await;
        let (proxy_url, mut seen) = proxy().await;
        let client = server
            .client()
            .transports(transports)
            .proxy(&proxy_url)
            .build()
            .unwrap();
        let socket = client.socket("/");
        let mut events = socket.events();
        socket.connect().await.unwrap();
        connected(&mut events).await;
        if name == "upgrade" {
            assert_eq!(server.line("upgrade / ").await, "websocket");
        }
        socket.emit("echo", &"proxied").await.unwrap();
        assert_eq!(event(&mut events, "echo").await, json!("proxied"), "{name}");
        client.disconnect().await.unwrap();
        let mut lines = Vec::new();
        while let Ok(l) = seen.try_recv() {
            lines.push(l);
        }
        let origin = format!(
            "http://127.0.0.1:{}/socket.io/?EIO=4&transport=polling",
            server.port
        );
        let polls = lines
            .iter()
            .filter(|l| l.starts_with("GET ") && l[4..].starts_with(&origin))
            .count();
        let tunnels = lines
            .iter()
            .filter(|l| **l == format!("CONNECT 127.0.0.1:{}", server.port))
            .count();
        match name {
            "polling" => assert!(polls >= 2 && tunnels == 0, "{lines:?}"),
            "websocket" => assert!(polls == 0 && tunnels == 1, "{lines:?}"),
            _ => assert!(polls >= 1 && tunnels == 1, "{lines:?}"),
        }
    }
}

async fn tls_transports_through_a_connect_tunnel(peer: Peer) {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let tls = json!({"key": cert.key_pair.serialize_pem(), "cert": cert.cert.pem()});
    for (name, transports) in CHOICES {
        let server = TestServer::start(peer, json!({ "tls": tls })).await;
        let (proxy_url, mut seen) = proxy().await;
        let client = Client::builder(&format!("https://127.0.0.1:{}", server.port))
            .auto_connect(false)
            .transports(transports)
            .add_root_certificate(cert.cert.der().to_vec())
            .proxy(&proxy_url)
            .build()
            .unwrap();
        let socket = client.socket("/");
        let mut events = socket.events();
        socket.connect().await.unwrap();
        connected(&mut events).await;
        let r = socket
            .emit_with_ack("ack", &"tunnelled")
            .timeout(Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(r.data::<String>().unwrap(), "tunnelled", "{name}");
        let first = seen.try_recv().expect("the proxy was used");
        assert_eq!(
            first,
            format!("CONNECT 127.0.0.1:{}", server.port),
            "{name}"
        );
        while let Ok(l) = seen.try_recv() {
            assert!(
                l.starts_with("CONNECT "),
                "{name}: only tunnels over TLS: {l}"
            );
        }
    }
    // A proxy URL that is not http:// is refused when building.
    assert!(
        Client::builder("http://127.0.0.1:1")
            .proxy("socks5://127.0.0.1:1080")
            .build()
            .is_err()
    );
}
