//! A mixed cluster on one real `redis-server`: two Ferrio nodes and two Node `socket.io` 4.8
//! servers with `@socket.io/redis-adapter` 8.3 (`createAdapter`), npm `socket.io-client`
//! connections on each: broadcasts, rooms, binary, `fetchSockets`, `socketsJoin`,
//! `disconnectSockets`, `serverSideEmit` with acks, broadcast acks and `allRooms` work in both
//! directions; the Node `@socket.io/redis-emitter` reaches Ferrio clients and Ferrio's
//! `Emitter` reaches Node clients.

mod common;

use std::time::Duration;

use common::{Node, RedisServer, World, bin, sort, sorted};
use ferrio_redis::{Emitter, RedisAdapter, RedisConfig};
use serde_json::{Value as Json, json};

async fn ferrio_node(name: &str, redis: &RedisServer) -> Node {
    let adapter = RedisAdapter::classic(&redis.url(), RedisConfig::default())
        .await
        .expect("redis");
    Node::start(name, adapter).await
}

/// The arguments of the next `n` server-side events the Node servers got.
async fn node_sse(w: &mut World, n: usize) -> Vec<Json> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(w.node_event("sse").await["args"].clone());
    }
    out
}

fn ids(v: &Json) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .expect("sockets")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_owned())
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferrio_and_node_servers_in_one_classic_cluster() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let mut w = World::start().await;
    let j1 = w.node_server("j1", &url, "classic").await;
    let j2 = w.node_server("j2", &url, "classic").await;
    let mut f1 = ferrio_node("f1", &redis).await;
    let mut f2 = ferrio_node("f2", &redis).await;
    assert_eq!(f1.io.server_count().await.unwrap(), 4);
    assert_eq!(w.node_io("j1", "serverCount", json!({})).await, json!(4));

    let c1 = w.node_client("c1", &f1.url, json!({"on": "f1"})).await;
    let c2 = w.node_client("c2", &j1, json!({"on": "j1"})).await;
    let c3 = w.node_client("c3", &f2.url, json!({"on": "f2"})).await;
    let c4 = w.node_client("c4", &j2, json!({"on": "j2"})).await;
    let r1 = w.rust_client("r1", &f2.url, json!({"on": "f2"})).await;
    for (c, room) in [
        ("c1", "a"),
        ("c2", "a"),
        ("c3", "b"),
        ("c4", "b"),
        ("r1", "a"),
    ] {
        w.client_call(c, "join", json!([room])).await;
    }
    w.client_call("c1", "set-data", json!([{"user": "c1"}]))
        .await;
    w.client_call("c4", "set-data", json!([{"user": "c4"}]))
        .await;
    let all = ["c1", "c2", "c3", "c4", "r1"];

    // Broadcasts both ways: to everyone, to one room (the room channel), binary.
    f1.io.emit("from-f1", &(1, "x")).unwrap();
    assert_eq!(w.expect(&all, "from-f1").await, json!([1, "x"]));
    w.node_io("j1", "emit", json!({"args": ["from-j1", {"k": [1, 2]}]}))
        .await;
    assert_eq!(w.expect(&all, "from-j1").await, json!([{"k": [1, 2]}]));
    w.node_io(
        "j2",
        "emit",
        json!({"rooms": ["b"], "args": ["j2-to-b", bin(&[1, 2, 3])]}),
    )
    .await;
    assert_eq!(
        w.expect(&["c3", "c4"], "j2-to-b").await,
        json!([bin(&[1, 2, 3])])
    );
    f2.io
        .to("a")
        .emit("f2-to-a", &(bytes::Bytes::from_static(&[7, 8]), "t"))
        .unwrap();
    assert_eq!(
        w.expect(&["c1", "c2", "r1"], "f2-to-a").await,
        json!([bin(&[7, 8]), "t"])
    );
    w.node_io(
        "j1",
        "emit",
        json!({"rooms": ["a"], "except": ["b"], "args": ["j1-a-not-b"]}),
    )
    .await;
    w.expect(&["c1", "c2", "r1"], "j1-a-not-b").await;
    // A Node socket's `broadcast` leaves out only the sender, on Ferrio nodes too.
    w.client_emit("c2", "shout", json!(["a", "from c2"])).await;
    w.expect(&["c1", "r1"], "shouted").await;

    // fetchSockets: Node sees Ferrio's sockets with Node's shapes, Ferrio sees Node's.
    let from_node = w.node_io("j1", "fetchSockets", json!({})).await;
    assert_eq!(
        ids(&from_node),
        sort([&c1, &c2, &c3, &c4, &r1].map(|s| s.as_str()))
    );
    let s1 = from_node
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == c1.as_str())
        .unwrap();
    assert_eq!(s1["data"], json!({"user": "c1"}));
    assert_eq!(sorted(&s1["rooms"]), sort([c1.as_str(), "a"]));
    assert_eq!(s1["handshake"]["auth"], json!({"on": "f1"}));
    assert!(
        s1["handshake"]["time"]
            .as_str()
            .unwrap()
            .ends_with("(Coordinated Universal Time)")
    );
    assert!(s1["handshake"]["issued"].as_u64().unwrap() > 1_700_000_000_000);
    assert_eq!(s1["handshake"]["query"]["EIO"], "4");
    let from_ferrio = f1.io.to("b").fetch_sockets().await.unwrap();
    assert!(from_ferrio.is_complete());
    assert_eq!(
        sort(from_ferrio.iter().map(|s| s.id().to_string())),
        sort([&c3, &c4].map(|s| s.as_str()))
    );
    let s4 = from_ferrio.iter().find(|s| s.id().as_str() == c4).unwrap();
    assert_eq!(s4.data::<Json>(), Some(json!({"user": "c4"})));
    assert_eq!(s4.handshake().auth, json!({"on": "j2"}));
    assert!(s4.handshake().time.contains("GMT"));

    // socketsJoin both ways (each checked by a fetch from the same server, which other
    // servers answer after applying the join).
    w.node_io("j2", "socketsJoin", json!({"rooms": ["a"], "args": ["ja"]}))
        .await;
    let in_ja = w
        .node_io("j2", "fetchSockets", json!({"rooms": ["ja"]}))
        .await;
    assert_eq!(ids(&in_ja), sort([&c1, &c2, &r1].map(|s| s.as_str())));
    f2.io.emit("sync", &()).unwrap();
    w.expect(&all, "sync").await;
    f1.io.to("ja").emit("to-ja", &()).unwrap();
    w.expect(&["c1", "c2", "r1"], "to-ja").await;
    f1.io.to("b").sockets_join("fb").unwrap();
    let in_fb = f1.io.to("fb").fetch_sockets().await.unwrap();
    assert_eq!(
        sort(in_fb.iter().map(|s| s.id().to_string())),
        sort([&c3, &c4].map(|s| s.as_str()))
    );
    w.node_io("j1", "emit", json!({"rooms": ["fb"], "args": ["to-fb"]}))
        .await;
    w.expect(&["c3", "c4"], "to-fb").await;
    w.node_io(
        "j1",
        "socketsLeave",
        json!({"rooms": ["fb"], "args": ["fb"]}),
    )
    .await;
    assert_eq!(
        w.node_io("j1", "fetchSockets", json!({"rooms": ["fb"]}))
            .await,
        json!([])
    );

    // allRooms both ways.
    let rooms = w.node_io("j1", "allRooms", json!({})).await;
    for room in ["a", "b", "ja"] {
        assert!(
            sorted(&rooms).contains(&room.to_owned()),
            "{room} in {rooms}"
        );
    }
    let rooms = f2.io.all_rooms().await.unwrap();
    assert!(rooms.is_complete());
    for room in ["a", "b", "ja"] {
        assert!(rooms.iter().any(|r| r == room), "{room} in {rooms:?}");
    }

    // serverSideEmit both ways, with acks.
    let answers = w
        .node_io(
            "j1",
            "serverSideEmitWithAck",
            json!({"args": ["sse", "from j1"]}),
        )
        .await;
    assert_eq!(
        sorted(&answers["responses"]),
        sort(["f1:pong", "f2:pong", "j2:pong"])
    );
    assert_eq!(f1.next_sse().await, json!(["from j1"]));
    assert_eq!(f2.next_sse().await, json!(["from j1"]));
    assert_eq!(w.node_event("sse").await["args"], json!(["from j1"]));
    let answers = f1
        .io
        .server_side_emit_with_ack::<_, String>("sse", "from f1", Duration::from_secs(3))
        .await
        .unwrap();
    assert!(answers.is_complete());
    assert_eq!(
        sort(answers.values.clone()),
        sort(["f2:pong", "j1:pong", "j2:pong"])
    );
    assert_eq!(f2.next_sse().await, json!(["from f1"]));
    assert_eq!(
        node_sse(&mut w, 2).await,
        [json!(["from f1"]), json!(["from f1"])]
    );
    f2.io.server_side_emit("sse", &("plain", 1)).unwrap();
    assert_eq!(f1.next_sse().await, json!(["plain", 1]));
    assert_eq!(
        node_sse(&mut w, 2).await,
        [json!(["plain", 1]), json!(["plain", 1])]
    );

    // Broadcast acks both ways: every client answers with its name.
    let from_node = w
        .node_io("j1", "emitWithAck", json!({"args": ["q"], "timeout": 3000}))
        .await;
    assert_eq!(sorted(&from_node["responses"]), sort(all));
    let answers = f2
        .io
        .timeout(Duration::from_secs(3))
        .emit_with_ack::<_, String>("q2", &())
        .unwrap()
        .collect()
        .await;
    let names: Vec<String> = answers
        .into_iter()
        .map(|(_, r)| r.expect("answer"))
        .collect();
    assert_eq!(sort(names), sort(all));

    // The emitters: Node's reaches Ferrio's clients, Ferrio's reaches Node's.
    w.node_emitter(
        &url,
        "emit",
        json!({"rooms": ["a"], "args": ["node-emitter", bin(&[5])]}),
    )
    .await;
    assert_eq!(
        w.expect(&["c1", "c2", "r1"], "node-emitter").await,
        json!([bin(&[5])])
    );
    let emitter = Emitter::connect(&url, RedisConfig::default())
        .await
        .unwrap();
    emitter
        .to("b")
        .emit("ferrio-emitter", &(bytes::Bytes::from_static(&[6]), 2))
        .await
        .unwrap();
    assert_eq!(
        w.expect(&["c3", "c4"], "ferrio-emitter").await,
        json!([bin(&[6]), 2])
    );
    emitter.to("a").sockets_join(&["emitted"]).await.unwrap();
    emitter
        .server_side_emit("sse", &"from emitter")
        .await
        .unwrap();
    assert_eq!(f1.next_sse().await, json!(["from emitter"]));
    assert_eq!(f2.next_sse().await, json!(["from emitter"]));
    assert_eq!(
        node_sse(&mut w, 2).await,
        [json!(["from emitter"]), json!(["from emitter"])]
    );
    let in_emitted = w
        .node_io("j2", "fetchSockets", json!({"rooms": ["emitted"]}))
        .await;
    assert_eq!(ids(&in_emitted), sort([&c1, &c2, &r1].map(|s| s.as_str())));
    w.node_emitter(
        &url,
        "serverSideEmit",
        json!({"args": ["sse", "node emitter"]}),
    )
    .await;
    assert_eq!(f1.next_sse().await, json!(["node emitter"]));
    assert_eq!(f2.next_sse().await, json!(["node emitter"]));
    assert_eq!(
        node_sse(&mut w, 2).await,
        [json!(["node emitter"]), json!(["node emitter"])]
    );
    assert!(matches!(
        emitter.emit("disconnect", &()).await,
        Err(ferrio_redis::EmitterError::ReservedEvent(_))
    ));

    // disconnectSockets both ways.
    w.node_io(
        "j1",
        "disconnectSockets",
        json!({"rooms": [c3.clone()], "args": [false]}),
    )
    .await;
    assert_eq!(
        w.expect(&["c3"], "disconnect").await,
        json!(["io server disconnect"])
    );
    f1.io.to(c4.clone()).disconnect_sockets(false).unwrap();
    assert_eq!(
        w.expect(&["c4"], "disconnect").await,
        json!(["io server disconnect"])
    );
    w.node_emitter(
        &url,
        "disconnectSockets",
        json!({"rooms": [r1.clone()], "args": [true]}),
    )
    .await;
    w.expect(&["r1"], "disconnect").await;
}
