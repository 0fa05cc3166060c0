//! A Redis Cluster of three primaries (`redis-server --cluster-enabled yes` on free ports):
//! the server count is summed over the primaries (as Node does), and broadcasts and requests
//! cross between Ferrio nodes and a Node server on it, classic and sharded.

mod common;

use common::{Node, World, sort};
use ferrio_redis::{RedisAdapter, RedisConfig};
use ferrio_testkit::redis::RedisCluster;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_and_sharded_adapters_on_a_redis_cluster() {
    let cluster = RedisCluster::start(3).await;
    let url = cluster.url();
    let mut w = World::start().await;
    let j1 = w
        .cmd(json!({"op": "server", "name": "j1", "cluster": cluster.addrs(), "mode": "classic"}))
        .await;
    let j1 = format!("http://127.0.0.1:{}", j1["port"]);
    let f1 = Node::start(
        "f1",
        RedisAdapter::classic(&url, RedisConfig::default())
            .await
            .expect("redis"),
    )
    .await;
    let f2 = Node::start(
        "f2",
        RedisAdapter::classic(&url, RedisConfig::default())
            .await
            .expect("redis"),
    )
    .await;
    assert_eq!(f1.io.server_count().await.unwrap(), 3);
    assert_eq!(w.node_io("j1", "serverCount", json!({})).await, json!(3));

    let a = w.node_client("a", &f1.url, json!({})).await;
    let b = w.node_client("b", &j1, json!({})).await;
    let c = w.rust_client("c", &f2.url, json!({})).await;
    for (client, room) in [("a", "r"), ("b", "r"), ("c", "r")] {
        w.client_call(client, "join", json!([room])).await;
    }
    f1.io.to("r").emit("from-f1", &1).unwrap();
    w.expect(&["a", "b", "c"], "from-f1").await;
    w.node_io("j1", "emit", json!({"args": ["from-j1"]})).await;
    w.expect(&["a", "b", "c"], "from-j1").await;
    let found = f2.io.fetch_sockets().await.unwrap();
    assert!(found.is_complete());
    assert_eq!(
        sort(found.iter().map(|s| s.id().to_string())),
        sort([a.as_str(), b.as_str(), c.as_str()])
    );

    // The sharded format on the same cluster (SSUBSCRIBE routed by hash slot).
    let s1 = Node::start(
        "s1",
        RedisAdapter::sharded(&url, RedisConfig::default())
            .await
            .expect("redis"),
    )
    .await;
    let s2 = Node::start(
        "s2",
        RedisAdapter::sharded(&url, RedisConfig::default())
            .await
            .expect("redis"),
    )
    .await;
    assert_eq!(s1.io.server_count().await.unwrap(), 2);
    let d = w.node_client("d", &s2.url, json!({})).await;
    s1.io.emit("sharded", &()).unwrap();
    w.expect(&["d"], "sharded").await;
    let found = s1.io.fetch_sockets().await.unwrap();
    assert_eq!(
        found.iter().map(|s| s.id().to_string()).collect::<Vec<_>>(),
        [d]
    );
}
