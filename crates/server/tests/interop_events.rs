//! Interop with the real `socket.io-client` 4.8 (`interop/sio/client.mjs`): events, acks,
//! ack timeouts, binary, catch-all listeners and ordering, each over WebSocket, polling, and
//! polling upgraded to WebSocket.
//!
//! Needs `npm ci` in `interop/` (`cargo xtask npm`).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{
    Client, Probe, SeqLog, Server, bin, builder, builder_with, check_ordering, for_each_mode,
    for_each_mode_json, ordering_handlers,
};
use ferrio::{
    AckError, AckSender, Args, Data, Event, MessageParts, SocketIoConfig, SocketRef, State,
};
use ferrio_testkit::within;
use futures_util::FutureExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `events`: the client's arguments (numbers, strings, objects, arrays, UTF-8) come back
/// unchanged; a typed handler gets a struct; an event with no arguments reaches its handler;
/// the connection handler's `welcome` (with the auth payload) and an emit from outside any
/// handler reach the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_both_ways() {
    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Typed {
        name: String,
        n: u32,
    }

    for_each_mode(async |mode| {
        let (probe, mut notes) = Probe::new();
        let io = builder().with_state(probe).build();
        io.ns("/", async |socket: SocketRef, Data(auth): Data<Value>| {
            socket
                .emit("welcome", &json!({ "ns": socket.ns_name(), "auth": auth }))
                .unwrap();
            socket.on("echo", async |socket: SocketRef, args: Args| {
                socket.emit("echo", &args).unwrap();
            });
            socket.on(
                "typed",
                async |Data(t): Data<Typed>, State(p): State<Probe>| {
                    p.note("typed", serde_json::to_value(t).unwrap());
                },
            );
            socket.on("no-args", async |args: Args, State(p): State<Probe>| {
                p.note("no-args", args.len());
            });
        });
        let server = Server::start(io);
        let mut client = Client::spawn(&server, mode, "events", json!({}));
        let connected = client.expect("connected").await;
        let (id, transport) = (&connected[0], &connected[1]);
        assert_eq!(transport, mode.transport());
        let socket = server.socket(id);
        // The client reports the upgrade when it sends the upgrade packet; the server may not
        // have read it yet.
        server
            .wait_until("the server-side upgrade", |_| {
                socket.transport() == mode.transport()
            })
            .await;
        assert_eq!(socket.handshake().auth(), &json!({ "token": "abc" }));
        // The rest of the handshake: the request that opened the session, as Node's
        // `socket.handshake` describes it.
        let hs = socket.handshake();
        let address = hs.address().expect("the peer address");
        assert!(address.ip().is_loopback(), "{address}");
        assert_eq!(hs.url().path(), "/socket.io/");
        assert_eq!(hs.query().get("EIO").map(String::as_str), Some("4"));
        assert!(hs.headers().contains_key(http::header::HOST));
        let age = std::time::SystemTime::now()
            .duration_since(hs.issued())
            .expect("issued in the past");
        assert!(age < Duration::from_secs(30), "{age:?}");
        let info = hs.to_json();
        let mut keys: Vec<&str> = info
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "address", "auth", "headers", "issued", "query", "secure", "time", "url", "xdomain"
            ]
        );
        assert_eq!(info["auth"], json!({ "token": "abc" }));
        assert_eq!(info["address"], json!(address.ip().to_string()));
        assert_eq!(info["query"]["EIO"], json!("4"));
        assert_eq!(info["url"], json!(hs.url().to_string()));

        assert_eq!(notes.next("typed").await, json!({ "name": "x", "n": 5 }));
        assert_eq!(notes.next("no-args").await, json!(0));
        socket
            .emit("push", &("a", 2, json!({ "k": [null] })))
            .unwrap();

        let summary = client.ok().await;
        assert_eq!(summary["push"], json!(["a", 2, { "k": [null] }]));
        assert_eq!(
            summary["echo"],
            json!([1, "two", { "three": [true, null] }, [1.5, -2], "€ ✓"])
        );
        // `socket.id` is not the Engine.IO session id (Socket.IO v5), both 20 characters.
        let engine_id = summary["engineId"].as_str().expect("the engine id");
        assert_eq!(summary["id"], json!(id));
        assert_ne!(engine_id, id.as_str());
        assert_eq!((engine_id.len(), id.len()), (20, 20));
    })
    .await;
}

/// `acks`: a handler's `Ok` return value answers the client's `emitWithAck`; `AckSender`
/// answers with several arguments or none; a payload that does not deserialize answers
/// `{"error": ...}`; the server's `emit_with_ack` gets the client's callback arguments, also
/// with the emitter flags chained in any order (`volatile`, `timeout`, `compress`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_both_ways() {
    for_each_mode(async |mode| {
        let io = builder().build();
        io.ns("/", async |socket: SocketRef| {
            socket.on(
                "sum",
                async |Data((a, b)): Data<(i64, i64)>| -> Result<i64, String> { Ok(a + b) },
            );
            socket.on("ack-args", async |ack: AckSender, args: Args| {
                ack.send(&args).unwrap();
            });
            socket.on("ack-empty", async |ack: AckSender| {
                assert!(ack.is_requested());
                ack.send(&()).unwrap();
            });
        });
        let server = Server::start(io);
        let mut client = Client::spawn(&server, mode, "acks", json!({}));
        let id = client.expect("connected").await.remove(0);
        let socket = server.socket(&id);

        let answer: (i64, String) = socket.emit_with_ack("question", &(2, 40)).await.unwrap();
        assert_eq!(answer, (42, "ok".to_owned()));
        let answer: (i64, String) = socket
            .volatile()
            .timeout(Duration::from_secs(5))
            .emit_with_ack("question", &(1, 2))
            .await
            .unwrap();
        assert_eq!(answer.0, 3);
        let answer: (i64, String) = socket
            .timeout(Duration::from_secs(5))
            .compress(false)
            .volatile()
            .emit_with_ack("question", &(3, 4))
            .await
            .unwrap();
        assert_eq!(answer.0, 7);
        let answers = server
            .io
            .to(socket.id())
            .volatile()
            .compress(true)
            .timeout(Duration::from_secs(5))
            .emit_with_ack::<_, (i64, String)>("question", &(5, 6))
            .unwrap()
            .collect()
            .await;
        assert_eq!(answers.len(), 1);
        assert_eq!(answers[0].1.as_ref().unwrap().0, 11);
        socket.compress(false).volatile().emit("done", &()).unwrap();

        let summary = client.ok().await;
        assert_eq!(summary["sum"], json!(5));
        assert_eq!(summary["multi"], json!([1, "x", { "y": true }]));
        let error = summary["rejected"]["error"].as_str().unwrap_or_default();
        assert!(error.contains("invalid payload for `sum`"), "{summary}");
        assert_eq!(summary["emptyLen"], json!(0));
    })
    .await;
}

/// `ack-timeouts`: the client's `timeout(300).emitWithAck` to a handler that never answers
/// rejects with "operation has timed out" (promise and callback styles); the server's
/// `timeout(d).emit_with_ack` to a client that never answers ends with `AckError::Timeout`
/// after about `d`; an answer that comes after the timeout is ignored and the connection keeps
/// working both ways. Without a timeout (the default, as on Node) the server's `emit_with_ack`
/// waits until the disconnect, and a broadcast `emit_with_ack` times out at once (Node's
/// callback gets "operation has timed out" at once too) unless it targets nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_timeouts_both_ways() {
    for_each_mode(async |mode| {
        let io = builder().build();
        io.ns("/", async |socket: SocketRef| {
            socket.on("never", async |_ack: AckSender| {});
            socket.on(
                "sum",
                async |Data((a, b)): Data<(i64, i64)>| -> Result<i64, String> { Ok(a + b) },
            );
        });
        let server = Server::start(io);
        let mut client = Client::spawn(&server, mode, "ack-timeouts", json!({}));
        let id = client.expect("connected").await.remove(0);
        let socket = server.socket(&id);

        let start = Instant::now();
        let r = socket
            .timeout(Duration::from_millis(300))
            .emit_with_ack::<_, Value>("ignored", &1)
            .await;
        let elapsed = start.elapsed();
        assert!(matches!(r, Err(AckError::Timeout)), "{r:?}");
        assert!(
            (Duration::from_millis(290)..Duration::from_secs(3)).contains(&elapsed),
            "{elapsed:?}"
        );
        let r = socket
            .timeout(Duration::from_millis(100))
            .emit_with_ack::<_, Value>("late", &1)
            .await;
        assert!(matches!(r, Err(AckError::Timeout)), "{r:?}");
        let doubled: i64 = socket
            .timeout(Duration::from_secs(5))
            .emit_with_ack("question", &21)
            .await
            .unwrap();
        assert_eq!(doubled, 42);

        let mut pending = socket.emit_with_ack::<_, Value>("ignored", &2);
        let doubled: i64 = socket
            .timeout(Duration::from_secs(5))
            .emit_with_ack("question", &2)
            .await
            .unwrap();
        assert_eq!(doubled, 4);
        assert!(
            (&mut pending).now_or_never().is_none(),
            "no default timeout"
        );
        let start = Instant::now();
        let answers = server
            .io
            .emit_with_ack::<_, i64>("question", &3)
            .unwrap()
            .collect()
            .await;
        assert!(
            matches!(answers[..], [(Some(_), Err(AckError::Timeout))]),
            "{answers:?}"
        );
        assert!(start.elapsed() < Duration::from_secs(1));
        let nobody = server
            .io
            .to("nobody")
            .emit_with_ack::<_, i64>("question", &3)
            .unwrap()
            .collect()
            .await;
        assert!(nobody.is_empty());
        socket.emit("done", &()).unwrap();

        let summary = client.ok().await;
        let r = within(10, "the pending ack to end", pending).await;
        assert!(matches!(r, Err(AckError::Disconnected)), "{r:?}");
        assert_eq!(summary["promiseStyle"], json!("operation has timed out"));
        assert_eq!(summary["callbackStyle"], json!("operation has timed out"));
        let elapsed = summary["elapsed"].as_u64().unwrap();
        assert!((290..3000).contains(&elapsed), "{summary}");
        assert_eq!(summary["inTime"], json!(2));
        // The late answer reached the server before this round trip: it was dropped quietly.
        assert_eq!(summary["after"], json!(4));
        assert_eq!(summary["connected"], json!(true));
    })
    .await;
}

/// `binary`: nested buffers (4 attachments, one empty) come back identical as an event
/// (BINARY_EVENT) and as an ack (BINARY_ACK); a typed handler reads `Vec<Bytes>`; the server
/// sends a struct with `Bytes` at several depths; the server's binary `emit_with_ack` gets a
/// binary answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_both_ways() {
    #[derive(Deserialize)]
    struct Files {
        name: String,
        files: Vec<Bytes>,
    }
    #[derive(Serialize)]
    struct Inner {
        deep: Vec<Vec<Bytes>>,
    }
    #[derive(Serialize)]
    struct Out {
        label: &'static str,
        blob: Bytes,
        parts: Vec<Bytes>,
        inner: Inner,
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Question {
        blob: Bytes,
    }
    #[derive(Deserialize, Debug, PartialEq)]
    struct Echoed {
        echoed: Question,
    }

    for_each_mode(async |mode| {
        let io = builder().build();
        io.ns("/", async |socket: SocketRef| {
            socket.on("bin-echo", async |socket: SocketRef, args: Args| {
                assert!(args.has_binary());
                socket.emit("bin-echo", &args).unwrap();
            });
            socket.on("bin-ack", async |ack: AckSender, args: Args| {
                ack.send(&args).unwrap();
            });
            socket.on(
                "bin-typed",
                async |Data(f): Data<Files>| -> Result<Value, String> {
                    let sizes: Vec<usize> = f.files.iter().map(Bytes::len).collect();
                    Ok(json!({ "name": f.name, "sizes": sizes, "first": f.files[0].as_ref() }))
                },
            );
        });
        let server = Server::start(io);
        let mut client = Client::spawn(&server, mode, "binary", json!({}));
        let id = client.expect("connected").await.remove(0);
        let socket = server.socket(&id);

        let out = Out {
            label: "bytes",
            blob: Bytes::from_static(&[0, 1, 255]),
            parts: vec![Bytes::from_static(b"a"), Bytes::new()],
            inner: Inner {
                deep: vec![vec![Bytes::from_static(&[7; 3])]],
            },
        };
        socket
            .emit("from-server", &(out, Bytes::from_static(b"second")))
            .unwrap();
        let question = Question {
            blob: Bytes::from_static(&[1, 1, 2, 3, 5]),
        };
        let (answer, echoed): (Bytes, Echoed) = socket
            .emit_with_ack("bin-question", &question)
            .await
            .unwrap();
        assert_eq!(answer.as_ref(), &[9, 8, 7]);
        assert_eq!(echoed.echoed, question);
        socket.emit("done", &()).unwrap();

        let summary = client.ok().await;
        let sent = json!([
            bin(&[1, 2, 3]),
            { "nested": { "list": [bin(&[4]), "text", bin(&[])] }, "deep": [[[bin(&[5, 6])]]] },
            "plain"
        ]);
        assert_eq!(summary["back"], sent);
        assert_eq!(summary["acked"], sent);
        assert_eq!(
            summary["typed"],
            json!({ "name": "files", "sizes": [2, 2, 0], "first": [97, 98] })
        );
        assert_eq!(
            summary["fromServer"],
            json!([
                {
                    "label": "bytes",
                    "blob": bin(&[0, 1, 255]),
                    "parts": [bin(b"a"), bin(&[])],
                    "inner": { "deep": [[bin(&[7, 7, 7])]] }
                },
                bin(b"second")
            ])
        );
    })
    .await;
}

/// `any`: `on_any` sees every incoming event in order with its arguments (also one without
/// a handler); `on_any_outgoing` sees every outgoing event: the connection handler's, one
/// emitted by a handler, a broadcast and a direct emit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_all_listeners() {
    for_each_mode(async |mode| {
        let (probe, mut notes) = Probe::new();
        let io = builder().with_state(probe).build();
        io.ns("/", async |socket: SocketRef, State(p): State<Probe>| {
            socket.on_any(
                async |Event(name): Event, args: Args, State(p): State<Probe>| {
                    let args: Value = args.deserialize().unwrap_or(Value::Null);
                    p.note("in", json!([name, args]));
                },
            );
            socket.on_any_outgoing(move |name, _| p.note("out", name));
            socket.on("a", async |socket: SocketRef| {
                socket.emit("reply", &"to a").unwrap();
            });
            socket.emit("welcome", &()).unwrap();
        });
        let server = Server::start(io);
        let mut client = Client::spawn(&server, mode, "any", json!({}));
        let id = client.expect("connected").await.remove(0);
        let socket = server.socket(&id);

        assert_eq!(notes.next("in").await, json!(["a", 1]));
        assert_eq!(notes.next("in").await, json!(["b", { "x": 1 }]));
        assert_eq!(notes.next("in").await, json!(["c", []]));
        server.io.emit("broadcast", &1).unwrap();
        socket.emit("direct", &2).unwrap();

        let summary = client.ok().await;
        assert_eq!(summary["reply"], json!(["to a"]));
        assert_eq!(summary["broadcast"], json!([1]));
        assert_eq!(summary["direct"], json!([2]));
        let out: Vec<Value> = notes.drain("out");
        assert_eq!(out, ["welcome", "reply", "broadcast", "direct"]);
    })
    .await;
}

/// `packet-middleware`: a packet middleware refuses `secret` (its handler never runs, the error
/// goes to `on_error`) and rewrites the argument of `shout` before its handler sees it; an
/// async middleware after it (it waits on a timer) refuses `secret-async` and rewrites `shout`
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packet_middlewares() {
    for_each_mode(async |mode| {
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let io = builder().with_state(seen.clone()).build();
        io.ns("/", async |socket: SocketRef| {
            socket.use_middleware(|_, parts| {
                if parts.event == "secret" {
                    return Err(ferrio::Rejection("not allowed".into()));
                }
                if parts.event == "shout" {
                    let text: String = parts.args.deserialize().unwrap_or_default();
                    parts.args = Args::Text(vec![
                        serde_json::to_vec(&text.to_uppercase()).unwrap().into(),
                    ]);
                }
                Ok(())
            });
            socket.use_async_middleware(async |_: SocketRef, mut parts: MessageParts| {
                tokio::time::sleep(Duration::from_millis(5)).await;
                match parts.event.as_str() {
                    "secret-async" => Err(ferrio::Rejection("not allowed either".into())),
                    "shout" => {
                        let text: String = parts.args.deserialize().unwrap_or_default();
                        parts.args = Args::Text(vec![
                            serde_json::to_vec(&format!("{text}!")).unwrap().into(),
                        ]);
                        Ok(parts)
                    }
                    _ => Ok(parts),
                }
            });
            let errors = Arc::new(Mutex::new(Vec::<String>::new()));
            let errs = errors.clone();
            socket.on_error(move |_, e| errs.lock().unwrap().push(e.0.clone()));
            type Seen = Arc<Mutex<Vec<String>>>;
            for secret in ["secret", "secret-async"] {
                socket.on(secret, async |State(seen): State<Seen>| {
                    seen.lock().unwrap().push("secret handler ran".into());
                });
            }
            socket.on(
                "shout",
                async |Data(text): Data<String>, State(seen): State<Seen>| {
                    seen.lock().unwrap().push(text);
                },
            );
            socket.on("report", move |State(seen): State<Seen>| {
                let errors = errors.clone();
                async move {
                    Ok::<_, String>(json!({
                        "seen": seen.lock().unwrap().clone(),
                        "errors": errors.lock().unwrap().clone(),
                    }))
                }
            });
        });
        let server = Server::start(io);
        let mut client = Client::spawn(&server, mode, "packet-middleware", json!({}));
        client.expect("connected").await;
        let summary = client.ok().await;
        assert_eq!(
            summary["report"],
            json!({ "seen": ["HI!"], "errors": ["not allowed", "not allowed either"] })
        );
    })
    .await;
}

/// `ordering`: 5000 events sent back to back by one client reach their handlers in the order
/// sent. What is asserted: each handler records its sequence number when it is first polled
/// (the documented guarantee is the start order; handlers then run concurrently), and the
/// record is exactly 0, 1, ..., 4999 (nothing lost, duplicated or reordered); the client's
/// `count` ack, sent after the 5000 events, sees all of them. Then 5000 server emits reach the
/// client in order (checked by the script).
///
/// The burst is larger than the default `max_pending_events` (1024), which is raised here:
/// see [`burst_of_events_with_default_limits`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordering_of_thousands_of_events() {
    ordering(Some(100_000)).await;
}

/// The same burst with the default settings: the JS client writes the 5000 events at once
/// (over polling in one POST payload), more than the socket's handler queue holds
/// (`max_pending_events` = 1024). The engine driver applies backpressure (it stops reading
/// the WebSocket, holds the POST answer) until the worker has room: nothing is lost, nothing
/// is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_of_events_with_default_limits() {
    ordering(None).await;
}

async fn ordering(max_pending_events: Option<usize>) {
    const COUNT: u64 = 5000;
    for_each_mode_json(async |mode| {
        let log = SeqLog::default();
        let mut config = SocketIoConfig::default();
        if let Some(n) = max_pending_events {
            config.max_pending_events = n;
        }
        // The client's pong waits behind its 5000 events (its event loop sends them first);
        // on a loaded machine reading them all can take longer than the tests' usual 1 s
        // ping timeout (Node's default is 20 s).
        let io = builder_with(config)
            .ping_timeout(Duration::from_secs(10))
            .max_buffered_packets(2 * COUNT as usize)
            .with_state(log.clone())
            .build();
        io.ns("/", async |socket: SocketRef| ordering_handlers(&socket));
        let server = Server::start(io);
        check_ordering(&server, mode, COUNT, &log).await;
    })
    .await;
}
