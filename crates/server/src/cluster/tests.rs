//! The messages of both families against the golden bytes captured from Node's adapters
//! (`../shared/reference/interop.md` 2.1 and 2.2), encoded by Ferrio and decoded by it, on an
//! in-process bus.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ferrio_proto::value::{Value, msgpack};
use tokio::sync::mpsc;

use super::*;
use crate::SocketIo;

/// Everything published on the bus, in order.
fn capture(bus: &MemoryBus) -> mpsc::UnboundedReceiver<(String, Bytes)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let b = bus.backend();
    let handler: MessageHandler = Arc::new(move |ch: &str, p: Bytes| {
        let _ = tx.send((ch.to_owned(), p));
    });
    tokio::spawn(async move {
        b.subscribe_prefix(String::new(), handler).await.unwrap();
        // Keep the backend (and its subscription) alive for the test.
        std::future::pending::<()>().await;
    });
    rx
}

async fn next(rx: &mut mpsc::UnboundedReceiver<(String, Bytes)>) -> (String, Bytes) {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a published message")
        .expect("bus alive")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Node's golden bytes with its uid (`5WKaeZ`) replaced by ours.
fn golden(hex_str: &str, uid: &str) -> Vec<u8> {
    let bytes = hex(hex_str);
    let node_uid = b"5WKaeZ";
    let at = bytes.windows(6).position(|w| w == node_uid).unwrap();
    let mut out = bytes[..at].to_vec();
    out.extend_from_slice(uid.as_bytes());
    out.extend_from_slice(&bytes[at + 6..]);
    out
}

fn uid_of(packed: &Bytes) -> String {
    msgpack::decode(packed).unwrap().as_array().unwrap()[0]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn classic_broadcasts_are_nodes_bytes() {
    let bus = MemoryBus::new();
    let mut rx = capture(&bus);
    let io = SocketIo::builder()
        .adapter(ClassicAdapter::factory(
            bus.backend(),
            ClusterConfig::default(),
        ))
        .build();
    io.server_count().await.unwrap();
    io.emit("chat", &("hello", 1)).unwrap();
    let (ch, p) = next(&mut rx).await;
    assert_eq!(ch, "socket.io#/#");
    let uid = uid_of(&p);
    assert_eq!(uid.len(), 6);
    assert_eq!(
        p.as_ref(),
        golden(
            "93a635574b61655a83a47479706502a46461746193a463686174a568656c6c6f01a36e7370a12f83a5726f6f6d7390a665786365707490a5666c61677380",
            &uid
        )
    );
    io.to("room1")
        .emit("chat", &serde_json::json!({"a": 1}))
        .unwrap();
    let (ch, p) = next(&mut rx).await;
    assert_eq!(ch, "socket.io#/#room1#");
    assert_eq!(
        p.as_ref(),
        golden(
            "93a635574b61655a83a47479706502a46461746192a46368617481a16101a36e7370a12f83a5726f6f6d7391a5726f6f6d31a665786365707490a5666c61677380",
            &uid
        )
    );
    io.to(["r1", "r2"])
        .except("r3")
        .volatile()
        .emit("bin", &Bytes::from_static(&[1, 2, 3]))
        .unwrap();
    let (ch, p) = next(&mut rx).await;
    assert_eq!(ch, "socket.io#/#");
    assert_eq!(
        p.as_ref(),
        golden(
            "93a635574b61655a83a47479706502a46461746192a362696ec403010203a36e7370a12f83a5726f6f6d7392a27231a27232a665786365707491a27233a5666c61677381a8766f6c6174696c65c3",
            &uid
        )
    );
}

#[tokio::test]
async fn classic_requests_are_nodes_json() {
    let bus = MemoryBus::new();
    let mut rx = capture(&bus);
    let io = SocketIo::builder()
        .adapter(ClassicAdapter::factory(
            bus.backend(),
            ClusterConfig::default(),
        ))
        .build();
    io.server_count().await.unwrap();
    io.to("room1").sockets_join("room2").unwrap();
    let (ch, p) = next(&mut rx).await;
    assert_eq!(ch, "socket.io-request#/#");
    let v = Value::from_json(&p).unwrap();
    let uid = v.get("uid").unwrap().as_str().unwrap().to_owned();
    assert_eq!(
        String::from_utf8(p.to_vec()).unwrap(),
        format!(
            r#"{{"uid":"{uid}","type":2,"opts":{{"rooms":["room1"],"except":[]}},"rooms":["room2"]}}"#
        )
    );
    io.disconnect_sockets(true).unwrap();
    let (_, p) = next(&mut rx).await;
    assert_eq!(
        String::from_utf8(p.to_vec()).unwrap(),
        format!(r#"{{"uid":"{uid}","type":4,"opts":{{"rooms":[],"except":[]}},"close":true}}"#)
    );
    io.server_side_emit("ping", &42).unwrap();
    let (_, p) = next(&mut rx).await;
    assert_eq!(
        String::from_utf8(p.to_vec()).unwrap(),
        format!(r#"{{"uid":"{uid}","type":6,"data":["ping",42]}}"#)
    );
}

/// Node's captured messages, sent by a made-up node, reach this server's sockets' rooms.
#[tokio::test]
async fn node_messages_decode() {
    let bus = MemoryBus::new();
    let io = SocketIo::builder()
        .adapter(ClassicAdapter::factory(
            bus.backend(),
            ClusterConfig::default(),
        ))
        .build();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    io.on_server_event("ping", move |ev| {
        let s = s.clone();
        async move {
            s.lock().unwrap().push(ev.args().to_vec());
        }
    });
    io.server_count().await.unwrap();
    let node = bus.backend();
    node.publish(vec![(
        "socket.io-request#/#".into(),
        Bytes::from_static(br#"{"uid":"5WKaeZ","type":6,"data":["ping",42]}"#),
    )])
    .await
    .unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        while seen.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(seen.lock().unwrap()[0], vec![Value::from(42)]);
}

#[tokio::test]
async fn sharded_messages_are_nodes_json() {
    let bus = MemoryBus::new();
    let mut rx = capture(&bus);
    let io = SocketIo::builder()
        .adapter(ShardedAdapter::factory(
            bus.backend(),
            ClusterConfig::default(),
        ))
        .build();
    io.server_count().await.unwrap();
    io.to("room1").emit("chat", &1).unwrap();
    let (ch, p) = next(&mut rx).await;
    assert_eq!(ch, "socket.io#/#room1#");
    let v = Value::from_json(&p).unwrap();
    let uid = v.get("uid").unwrap().as_str().unwrap().to_owned();
    assert_eq!(uid.len(), 16);
    assert_eq!(
        String::from_utf8(p.to_vec()).unwrap(),
        format!(
            r#"{{"type":3,"data":{{"packet":{{"type":2,"data":["chat",1]}},"opts":{{"rooms":["room1"],"except":[],"flags":{{}}}}}},"uid":"{uid}","nsp":"/"}}"#
        )
    );
    // Binary: msgpack (first byte not `{`), the same structure.
    io.emit("bin", &Bytes::from_static(&[1])).unwrap();
    let (ch, p) = next(&mut rx).await;
    assert_eq!(ch, "socket.io#/#");
    assert_ne!(p[0], b'{');
    let v = msgpack::decode(&p).unwrap();
    assert_eq!(v.get("type"), Some(&Value::from(3)));
    assert_eq!(
        v.get("data")
            .and_then(|d| d.get("packet"))
            .and_then(|p| p.get("data")),
        Some(&Value::Array(vec![
            "bin".into(),
            Value::Binary(Bytes::from_static(&[1]))
        ]))
    );
}
