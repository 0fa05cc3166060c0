//! Faults of a cluster on a real `redis-server`: Redis killed and restarted during traffic,
//! a server that stops answering during a request, malformed and unknown messages, a publish
//! queue that fills. No node crashes, local traffic never stops, cluster traffic resumes by
//! itself, nothing is delivered twice, memory stays bounded.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Node, RedisServer, World};
use ferrio::cluster::{ClassicAdapter, ClusterConfig, ClusterStats};
use ferrio::{AdapterError, SendError};
use ferrio_redis::{RedisAdapter, RedisBackend, RedisConfig};
use ferrio_testkit::within;
use serde_json::json;

fn config() -> RedisConfig {
    let mut c = RedisConfig::default();
    c.reconnect_min_delay = Duration::from_millis(50);
    c.reconnect_max_delay = Duration::from_millis(300);
    c.command_timeout = Duration::from_millis(800);
    c.cluster.requests_timeout = Duration::from_millis(800);
    c
}

async fn node(
    name: &str,
    redis: &RedisServer,
    config: RedisConfig,
) -> (Node, Arc<RedisBackend>, Arc<ClusterStats>) {
    let backend = RedisAdapter::classic_backend(&redis.url(), &config)
        .await
        .expect("redis");
    let factory = ClassicAdapter::factory(backend.clone(), config.cluster.clone());
    let stats = factory.stats();
    (Node::start(name, factory).await, backend, stats)
}

/// Waits until `node` counts `n` servers again (its subscription is back).
async fn until_servers(node: &Node, n: usize) {
    within(20, "the cluster to be back", async {
        loop {
            if node.io.server_count().await.is_ok_and(|c| c == n) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_during_traffic() {
    let mut redis = RedisServer::start().await;
    let (n1, b1, s1) = node("n1", &redis, config()).await;
    let (n2, b2, _) = node("n2", &redis, config()).await;
    let mut w = World::start().await;
    w.rust_client("r1", &n1.url, json!({})).await;
    w.node_client("c2", &n2.url, json!({})).await;
    w.client_call("c2", "join", json!(["room"])).await;
    n1.io.emit("before", &()).unwrap();
    w.expect(&["r1", "c2"], "before").await;

    redis.kill().await;
    // Local traffic goes on: n1's own client gets it, and so do events to n2's handlers.
    let mut seq = 0;
    n1.io.emit("during", &seq).unwrap();
    w.expect(&["r1"], "during").await;
    w.client_call("c2", "join", json!(["other"])).await;
    // Once the client knows Redis is gone, publishes fail at once and are counted.
    within(10, "a failed publish to be counted", async {
        while s1.snapshot().publish_failed == 0 {
            seq += 1;
            n1.io.emit("during", &seq).unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    redis.restart().await;
    until_servers(&n1, 2).await;
    until_servers(&n2, 2).await;
    assert!(b1.stats().outages() >= 1 && b2.stats().outages() >= 1);
    assert!(b1.stats().reconnects() >= 1);
    n1.io.emit("after", &()).unwrap();
    w.expect(&["r1", "c2"], "after").await;
    n2.io.to("room").emit("after-2", &()).unwrap();
    w.expect(&["c2"], "after-2").await;
    n2.io.emit("after-3", &()).unwrap();
    w.expect(&["r1", "c2"], "after-3").await;
    // c2 may have got a publish written just as Redis died (sent late), but nothing twice and
    // in order; the rest of the outage is lost, as documented.
    let c2 = w.events("c2");
    let tail: Vec<&str> = c2
        .iter()
        .map(String::as_str)
        .filter(|e| *e != "during")
        .collect();
    assert_eq!(tail, ["before", "after", "after-2", "after-3"]);
    let during: Vec<u64> = w
        .logs_of("c2")
        .iter()
        .filter(|(e, _)| e == "during")
        .map(|(_, a)| a[0].as_u64().unwrap())
        .collect();
    assert!(during.windows(2).all(|p| p[0] < p[1]), "{during:?}");
    let r1 = w.events("r1");
    assert_eq!(r1.first().map(String::as_str), Some("before"));
    assert_eq!(&r1[r1.len() - 2..], ["after", "after-3"]);
    assert!(r1[1..r1.len() - 2].iter().all(|e| e == "during"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_answering_gives_a_partial_result() {
    let redis = RedisServer::start().await;
    let (n1, _, _) = node("n1", &redis, config()).await;
    let (n2, _, _) = node("n2", &redis, config()).await;
    let mut w = World::start().await;
    let a = w.rust_client("a", &n1.url, json!({})).await;
    let b = w.node_client("b", &n2.url, json!({})).await;
    assert_eq!(n1.io.fetch_sockets().await.unwrap().len(), 2);

    // A third server that is subscribed (so it is counted) but never answers: a process
    // frozen or dying mid-request looks exactly like this.
    let mut zombie = tokio::net::TcpStream::connect(("127.0.0.1", redis.port()))
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut zombie, b"SUBSCRIBE socket.io-request#/#\r\n")
        .await
        .unwrap();
    until_servers(&n1, 3).await;

    let started = std::time::Instant::now();
    let found = n1.io.fetch_sockets().await.unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(found.missing, 1, "one server did not answer");
    let mut ids: Vec<String> = found.iter().map(|s| s.id().to_string()).collect();
    ids.sort();
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(ids, want, "what did arrive is returned");
    let answers = n2
        .io
        .server_side_emit_with_ack::<_, String>("sse", &(), Duration::from_millis(800))
        .await
        .unwrap();
    assert_eq!(
        (answers.values.clone(), answers.missing),
        (vec!["n1:pong".to_owned()], 1)
    );
    let stream = n1
        .io
        .timeout(Duration::from_millis(800))
        .emit_with_ack::<_, String>("q", &())
        .unwrap();
    let mut stream = stream;
    let mut names = Vec::new();
    while let Some((_, r)) = stream.next().await {
        names.push(r.unwrap());
    }
    names.sort();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(
        stream.missing_servers(),
        1,
        "the zombie never sent its client count"
    );
    drop(zombie);
    until_servers(&n1, 2).await;
    assert!(n1.io.fetch_sockets().await.unwrap().is_complete());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_unknown_messages_are_ignored_and_counted() {
    let redis = RedisServer::start().await;
    let (n1, _, s1) = node("n1", &redis, config()).await;
    let mut w = World::start().await;
    w.rust_client("a", &n1.url, json!({})).await;
    w.client_call("a", "join", json!(["room"])).await;
    let garbage: [(&str, &[u8]); 8] = [
        ("socket.io#/#", b"\xc1\xff not msgpack"),
        ("socket.io#/#", b"\x93\xa1x"),
        ("socket.io#/#", b"\x93\xa6remote\x80\x80"),
        ("socket.io#/#room#", b"\x81\xa4type\x02"),
        ("socket.io-request#/#", b"{not json"),
        (
            "socket.io-request#/#",
            b"{\"uid\":\"newer\",\"type\":99,\"future\":true}",
        ),
        ("socket.io-request#/#", b"{\"uid\":\"x\",\"type\":5}"),
        ("socket.io-response#/#", b"\xde\xad\xbe\xef"),
    ];
    for (channel, payload) in garbage {
        let reply = redis.publish(channel, payload).await.unwrap();
        assert!(reply.starts_with(':'), "{reply}");
    }
    // A valid message from another server after the garbage still arrives: the node is fine.
    let emitter = ferrio_redis::Emitter::connect(&redis.url(), RedisConfig::default())
        .await
        .unwrap();
    emitter.to("room").emit("still-fine", &1).await.unwrap();
    w.expect(&["a"], "still-fine").await;
    let stats = s1.snapshot();
    assert!(stats.malformed >= 5, "{stats:?}");
    assert!(stats.ignored >= 2, "{stats:?}");
    assert_eq!(w.events("a"), ["still-fine"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_publish_queue_is_an_error_and_memory_stays_bounded() {
    let redis = RedisServer::start().await;
    let mut c = config();
    c.cluster = {
        let mut k = ClusterConfig::default();
        k.publish_queue = 8;
        k.publish_batch = 4;
        k.requests_timeout = Duration::from_millis(800);
        k
    };
    let (n1, _, s1) = node("n1", &redis, c).await;
    let (n2, _, _) = node("n2", &redis, config()).await;
    let mut w = World::start().await;
    w.rust_client("a", &n1.url, json!({})).await;
    w.node_client("b", &n2.url, json!({})).await;

    // Redis frozen: the publish in flight waits for its timeout, the queue fills.
    redis.pause();
    let mut refused = 0;
    for i in 0..200 {
        match n1.io.emit("burst", &i) {
            Ok(()) => {}
            Err(SendError::Cluster(AdapterError::QueueFull)) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        refused >= 180,
        "at most queue + batch accepted, refused {refused}"
    );
    assert_eq!(s1.snapshot().queue_full, refused);
    // The local client got every one.
    w.expect_count("a", "burst", 200).await;
    redis.resume();
    until_servers(&n1, 2).await;
    n1.io.emit("after", &()).unwrap();
    w.expect(&["b"], "after").await;
    // b got at most what the queue held, each once, then `after`.
    let got = w.events("b");
    assert_eq!(got.last().map(String::as_str), Some("after"));
    assert!(got.len() <= 1 + 8 + 4, "{got:?}");
}
