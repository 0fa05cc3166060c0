//! Three Ferrio nodes on one real `redis-server` (the classic `@socket.io/redis-adapter`
//! format), npm `socket.io-client` and `ferrio-client` connections spread over them: every
//! operator and every cluster API crosses nodes.
//!
//! Each step waits until the clients that must get a message have it; the full log of every
//! client is compared at the end, after a last broadcast from every node: Redis delivers one
//! node's messages in order, so a message that reached a client it should not have would be
//! in that log before the last one.

mod common;

use std::time::Duration;

use common::{Node, RedisServer, World, bin, sort};
use ferrio::AckError;
use ferrio_redis::{RedisAdapter, RedisConfig};
use serde_json::{Value as Json, json};

async fn node(name: &str, redis: &RedisServer) -> Node {
    let adapter = RedisAdapter::classic(&redis.url(), RedisConfig::default())
        .await
        .expect("redis");
    Node::start(name, adapter).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_ferrio_nodes_share_rooms_broadcasts_acks_and_requests() {
    let redis = RedisServer::start().await;
    let mut n1 = node("n1", &redis).await;
    let mut n2 = node("n2", &redis).await;
    let mut n3 = node("n3", &redis).await;
    for n in [&n1, &n2, &n3] {
        assert_eq!(n.io.server_count().await.unwrap(), 3, "{}", n.name);
    }

    let mut w = World::start().await;
    let c1 = w.node_client("c1", &n1.url, json!({"who": "c1"})).await;
    let c2 = w.node_client("c2", &n2.url, json!({"who": "c2"})).await;
    let c3 = w.node_client("c3", &n3.url, json!({"who": "c3"})).await;
    let r1 = w.rust_client("r1", &n1.url, json!({"who": "r1"})).await;
    let r2 = w.rust_client("r2", &n3.url, json!({"who": "r2"})).await;
    for (c, room) in [
        ("c1", "a"),
        ("c2", "a"),
        ("c2", "b"),
        ("c3", "b"),
        ("r1", "b"),
        ("r2", "a"),
    ] {
        w.client_call(c, "join", json!([room])).await;
    }
    w.client_call("c1", "set-data", json!([{"user": "c1"}]))
        .await;
    let all = ["c1", "c2", "c3", "r1", "r2"];

    // io.emit from any node reaches everyone.
    n1.io.emit("s1", "all").unwrap();
    assert_eq!(w.expect(&all, "s1").await, json!(["all"]));
    // One room (the room channel), two rooms, except.
    n2.io.to("a").emit("s2", &json!({"x": 1})).unwrap();
    assert_eq!(w.expect(&["c1", "c2", "r2"], "s2").await, json!([{"x": 1}]));
    n3.io.to("a").to("b").emit("s3", &()).unwrap();
    w.expect(&all, "s3").await;
    n3.io.to("a").except("b").emit("s3b", &()).unwrap();
    w.expect(&["c1", "r2"], "s3b").await;
    // A socket's `to`: the sender is left out (its own room in `except`) on every node.
    w.client_emit("c2", "shout", json!(["a", "hi"])).await;
    assert_eq!(w.expect(&["c1", "r2"], "shouted").await, json!(["hi"]));
    // `local` stays on its node.
    n1.io.local().emit("s5", &()).unwrap();
    w.expect(&["c1", "r1"], "s5").await;
    // volatile and compress travel; binary survives the trip (msgpack `bin`).
    n3.io.volatile().compress(false).emit("s6", &()).unwrap();
    w.expect(&all, "s6").await;
    let payload = (
        bytes::Bytes::from_static(&[1, 2, 3]),
        json!({"n": 1}),
        ferrio_proto::value::Value::map([(
            "inner",
            ferrio_proto::value::Value::Binary(bytes::Bytes::from_static(&[9])),
        )]),
    );
    n2.io.emit("s7", &payload).unwrap();
    assert_eq!(
        w.expect(&all, "s7").await,
        json!([bin(&[1, 2, 3]), {"n": 1}, {"inner": bin(&[9])}])
    );
    for c in all {
        assert_eq!(
            w.args(c, "s7"),
            json!([bin(&[1, 2, 3]), {"n": 1}, {"inner": bin(&[9])}]),
            "{c}"
        );
    }

    // Broadcast acks gather answers from every node: each client answers with its name, and
    // sockets on other Ferrio nodes keep their ids.
    let stream = n1
        .io
        .timeout(Duration::from_secs(3))
        .emit_with_ack::<_, String>("q", &1)
        .unwrap();
    let answers = stream.collect().await;
    let mut names: Vec<String> = answers
        .iter()
        .map(|(_, r)| r.as_ref().expect("answer").clone())
        .collect();
    names.sort();
    assert_eq!(names, sort(all));
    let ids: Vec<String> = answers
        .iter()
        .map(|(sid, _)| sid.expect("Ferrio nodes name their sockets").to_string())
        .collect();
    assert_eq!(
        sort(ids),
        sort([&c1, &c2, &c3, &r1, &r2].map(|s| s.as_str()))
    );
    // A room, and clients that never answer: the answers, then a timeout for each.
    let mut stream = n2
        .io
        .to("b")
        .timeout(Duration::from_millis(800))
        .emit_with_ack::<_, String>("silent-q", &())
        .unwrap();
    let mut got = Vec::new();
    while let Some((sid, r)) = stream.next().await {
        got.push(match r {
            Ok(name) => name,
            Err(AckError::Timeout) => {
                format!("timeout {}", sid.map(|s| s.to_string()).unwrap_or_default())
            }
            Err(e) => panic!("{e}"),
        });
    }
    got.sort();
    // r1 lives on another node: remote timeouts carry no socket id.
    assert_eq!(got, sort(["c2", "c3", "timeout "]));
    assert_eq!(stream.missing_servers(), 0);

    // fetch_sockets: every socket, with its handshake, rooms and data.
    let found = n3.io.fetch_sockets().await.unwrap();
    assert!(found.is_complete());
    assert_eq!(
        sort(found.iter().map(|s| s.id().to_string())),
        sort([&c1, &c2, &c3, &r1, &r2].map(|s| s.as_str()))
    );
    let s1 = found.iter().find(|s| s.id().as_str() == c1).unwrap();
    assert_eq!(s1.data::<Json>(), Some(json!({"user": "c1"})));
    assert_eq!(s1.handshake().auth, json!({"who": "c1"}));
    assert!(s1.handshake().issued > 0 && s1.handshake().time.contains("GMT"));
    assert_eq!(
        sort(s1.rooms().iter().map(|r| r.to_string())),
        sort([c1.as_str(), "a"])
    );
    assert!(s1.local().is_none(), "c1 lives on n1");
    let in_b = n1.io.to("b").fetch_sockets().await.unwrap();
    assert_eq!(
        sort(in_b.iter().map(|s| s.id().to_string())),
        sort([&c2, &c3, &r1].map(|s| s.as_str()))
    );

    // A remote socket's emit and join go through the cluster.
    let remote_c3 = in_b.iter().find(|s| s.id().as_str() == c3).unwrap();
    remote_c3.emit("direct", "to c3").unwrap();
    assert_eq!(w.expect(&["c3"], "direct").await, json!(["to c3"]));
    remote_c3.join("z").unwrap();
    // n1's fetch goes out after its join: n3 has applied the join when it answers.
    let in_z = n1.io.to("z").fetch_sockets().await.unwrap();
    assert_eq!(
        sort(in_z.iter().map(|s| s.id().to_string())),
        sort([c3.as_str()])
    );
    n2.io.to("z").emit("s10", &()).unwrap();
    w.expect(&["c3"], "s10").await;

    // sockets_join / sockets_leave by filter, on every node.
    n2.io.of("/").to("a").sockets_join("joined-a").unwrap();
    assert_eq!(
        n2.io
            .of("/")
            .to("joined-a")
            .fetch_sockets()
            .await
            .unwrap()
            .len(),
        3
    );
    n3.io.to("joined-a").emit("s11", &()).unwrap();
    w.expect(&["c1", "c2", "r2"], "s11").await;
    n1.io.of("/").to("b").sockets_leave("b").unwrap();
    assert!(n1.io.to("b").fetch_sockets().await.unwrap().is_empty());
    n2.io.to("b").emit("s12", &()).unwrap();

    // all_rooms across the cluster.
    let rooms = n2.io.all_rooms().await.unwrap();
    assert!(rooms.is_complete());
    for room in ["a", "z", "joined-a"] {
        assert!(rooms.iter().any(|r| r == room), "{room} in {rooms:?}");
    }
    assert!(!rooms.iter().any(|r| r == "b"));

    // Server-side events: to every other node, with and without acks.
    n1.io.server_side_emit("sse", &("hello", 2)).unwrap();
    assert_eq!(n2.next_sse().await, json!(["hello", 2]));
    assert_eq!(n3.next_sse().await, json!(["hello", 2]));
    let answers = n2
        .io
        .server_side_emit_with_ack::<_, String>("sse", "q", Duration::from_secs(3))
        .await
        .unwrap();
    assert!(answers.is_complete());
    assert_eq!(sort(answers.values.clone()), sort(["n1:pong", "n3:pong"]));
    assert_eq!(n1.next_sse().await, json!(["q"]));
    assert_eq!(n3.next_sse().await, json!(["q"]));
    assert!(
        n2.sse.try_recv().is_err(),
        "a node does not get its own server-side events"
    );

    // disconnect_sockets by filter, on another node.
    n1.io.to("z").disconnect_sockets(false).unwrap();
    assert_eq!(
        w.expect(&["c3"], "disconnect").await,
        json!(["io server disconnect"])
    );

    // The last broadcast of every node: nothing else reached anyone.
    for n in [&n1, &n2, &n3] {
        n.io.emit(&format!("end-{}", n.name), &()).unwrap();
    }
    let live = ["c1", "c2", "r1", "r2"];
    for e in ["end-n1", "end-n2", "end-n3"] {
        w.expect(&live, e).await;
    }
    let without_end = |c: &str| -> Vec<String> {
        w.events(c)
            .into_iter()
            .filter(|e| !e.starts_with("end-"))
            .collect()
    };
    assert_eq!(
        without_end("c1"),
        [
            "s1", "s2", "s3", "s3b", "shouted", "s5", "s6", "s7", "q", "s11"
        ]
    );
    assert_eq!(
        without_end("c2"),
        ["s1", "s2", "s3", "s6", "s7", "q", "silent-q", "s11"]
    );
    assert_eq!(
        without_end("c3"),
        [
            "s1",
            "s3",
            "s6",
            "s7",
            "q",
            "silent-q",
            "direct",
            "s10",
            "disconnect"
        ]
    );
    assert_eq!(
        without_end("r1"),
        ["s1", "s3", "s5", "s6", "s7", "q", "silent-q"]
    );
    assert_eq!(
        without_end("r2"),
        ["s1", "s2", "s3", "s3b", "shouted", "s6", "s7", "q", "s11"]
    );
    // A stopped node unsubscribes: the others count one server less.
    n3.stop().await;
    ferrio_testkit::within(10, "n3 to leave the count", async {
        while n1.io.server_count().await.unwrap() != 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}
