//! A mixed cluster on Redis 7 sharded pub/sub: two Ferrio nodes and two Node `socket.io` 4.8
//! servers with `createShardedAdapter` (`@socket.io/redis-adapter` 8.3, subscription mode
//! `dynamic`): broadcasts (to the namespace and through per-room channels), binary (msgpack
//! messages), `fetchSockets`, `socketsJoin`, `disconnectSockets`, `serverSideEmit` with acks and
//! broadcast acks in both directions.

mod common;

use std::time::Duration;

use common::{Node, RedisServer, World, bin, sort, sorted};
use ferrio::AdapterError;
use ferrio_redis::{RedisAdapter, RedisConfig};
use serde_json::{Value as Json, json};

async fn ferrio_node(name: &str, redis: &RedisServer) -> Node {
    let adapter = RedisAdapter::sharded(&redis.url(), RedisConfig::default())
        .await
        .expect("redis");
    Node::start(name, adapter).await
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
async fn ferrio_and_node_servers_in_one_sharded_cluster() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let mut w = World::start().await;
    let j1 = w.node_server("j1", &url, "sharded").await;
    let j2 = w.node_server("j2", &url, "sharded").await;
    let mut f1 = ferrio_node("f1", &redis).await;
    let mut f2 = ferrio_node("f2", &redis).await;
    assert_eq!(f1.io.server_count().await.unwrap(), 4);
    assert_eq!(w.node_io("j2", "serverCount", json!({})).await, json!(4));

    let c1 = w.node_client("c1", &f1.url, json!({})).await;
    let c2 = w.node_client("c2", &j1, json!({})).await;
    let c3 = w.node_client("c3", &f2.url, json!({})).await;
    let c4 = w.node_client("c4", &j2, json!({})).await;
    for (c, room) in [("c1", "a"), ("c2", "a"), ("c3", "b"), ("c4", "b")] {
        w.client_call(c, "join", json!([room])).await;
    }
    // The room channels are subscribed asynchronously, after the join: wait until each server
    // is subscribed to its public rooms (`PUBSUB SHARDNUMSUB` of the room channels).
    for (room, subscribers) in [("a", 2), ("b", 2)] {
        let channel = format!("socket.io#/#{room}#");
        ferrio_testkit::within(10, "the room channels", async {
            loop {
                let reply = ferrio_testkit::redis::command(
                    redis.port(),
                    &format!("PUBSUB SHARDNUMSUB {channel}"),
                )
                .await
                .unwrap();
                if reply.contains(&format!(":{subscribers}\r\n")) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
    }
    w.client_call("c3", "set-data", json!([{"user": "c3"}]))
        .await;
    let all = ["c1", "c2", "c3", "c4"];

    // To the namespace channel, to a room channel, binary (msgpack), both ways.
    f1.io.emit("from-f1", &"x").unwrap();
    w.expect(&all, "from-f1").await;
    w.node_io("j1", "emit", json!({"args": ["from-j1", 1]}))
        .await;
    w.expect(&all, "from-j1").await;
    f2.io
        .to("a")
        .emit("f2-to-a", &bytes::Bytes::from_static(&[1, 2]))
        .unwrap();
    assert_eq!(
        w.expect(&["c1", "c2"], "f2-to-a").await,
        json!([bin(&[1, 2])])
    );
    w.node_io(
        "j2",
        "emit",
        json!({"rooms": ["b"], "args": ["j2-to-b", bin(&[3])]}),
    )
    .await;
    assert_eq!(w.expect(&["c3", "c4"], "j2-to-b").await, json!([bin(&[3])]));
    w.node_io(
        "j1",
        "emit",
        json!({"rooms": ["a", "b"], "except": ["a"], "args": ["j1-b"]}),
    )
    .await;
    w.expect(&["c3", "c4"], "j1-b").await;
    w.client_emit("c1", "shout", json!(["a", "from c1"])).await;
    w.expect(&["c2"], "shouted").await;

    // fetchSockets both ways.
    let from_node = w.node_io("j1", "fetchSockets", json!({})).await;
    assert_eq!(
        ids(&from_node),
        sort([&c1, &c2, &c3, &c4].map(|s| s.as_str()))
    );
    let s3 = from_node
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == c3.as_str())
        .unwrap();
    assert_eq!(s3["data"], json!({"user": "c3"}));
    let from_ferrio = f1.io.to("a").fetch_sockets().await.unwrap();
    assert!(from_ferrio.is_complete());
    assert_eq!(
        sort(from_ferrio.iter().map(|s| s.id().to_string())),
        sort([&c1, &c2].map(|s| s.as_str()))
    );

    // socketsJoin both ways.
    w.node_io("j2", "socketsJoin", json!({"rooms": ["a"], "args": ["ja"]}))
        .await;
    assert_eq!(
        ids(&w
            .node_io("j2", "fetchSockets", json!({"rooms": ["ja"]}))
            .await),
        sort([&c1, &c2].map(|s| s.as_str()))
    );
    f1.io.to("b").sockets_join("fb").unwrap();
    let in_fb = f1.io.to("fb").fetch_sockets().await.unwrap();
    assert_eq!(
        sort(in_fb.iter().map(|s| s.id().to_string())),
        sort([&c3, &c4].map(|s| s.as_str()))
    );

    // serverSideEmit with acks, both ways.
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
    let answers = f2
        .io
        .server_side_emit_with_ack::<_, String>("sse", "from f2", Duration::from_secs(3))
        .await
        .unwrap();
    assert!(answers.is_complete());
    assert_eq!(
        sort(answers.values.clone()),
        sort(["f1:pong", "j1:pong", "j2:pong"])
    );

    // Broadcast acks, both ways.
    let from_node = w
        .node_io("j2", "emitWithAck", json!({"args": ["q"], "timeout": 3000}))
        .await;
    assert_eq!(sorted(&from_node["responses"]), sort(all));
    let answers = f1
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

    // allRooms is not part of this protocol (Node's ClusterAdapter has none either).
    assert!(matches!(
        f1.io.all_rooms().await,
        Err(AdapterError::Unsupported(_))
    ));

    // disconnectSockets both ways.
    w.node_io(
        "j1",
        "disconnectSockets",
        json!({"rooms": [c1.clone()], "args": [false]}),
    )
    .await;
    assert_eq!(
        w.expect(&["c1"], "disconnect").await,
        json!(["io server disconnect"])
    );
    f2.io.to(c2.clone()).disconnect_sockets(false).unwrap();
    assert_eq!(
        w.expect(&["c2"], "disconnect").await,
        json!(["io server disconnect"])
    );
}
