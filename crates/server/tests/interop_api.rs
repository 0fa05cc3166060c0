//! Interop with the real `socket.io-client` 4.8 (`interop/sio/client.mjs`): the listener API
//! of a socket (scenario `api`: `send`/`message`, `once`, several catch-all listeners with
//! `prepend_any`/`off_any`, outgoing listeners with the event and its arguments), written with
//! `async move` closures that capture state; the arrival order through an async packet
//! middleware (`ordering`); the configured default ack timeout (`ack-timeouts`); over
//! WebSocket, polling, and polling upgraded to WebSocket.
//!
//! Needs `npm ci` in `interop/` (`cargo xtask npm`).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{
    Client, Probe, SeqLog, Server, builder, check_ordering, for_each_mode, ordering_handlers,
};
use ferrio::{AckError, AckSender, Args, Data, Event, MessageParts, SocketRef};
use serde_json::{Value, json};

/// Every argument as JSON.
fn values(args: &Args) -> Value {
    (0..args.len())
        .map(|i| {
            args.deserialize_arg::<Value>(i)
                .and_then(Result::ok)
                .unwrap_or(Value::Null)
        })
        .collect()
}

/// Handlers are `async move` closures capturing a clone of the server, a probe and a counter
/// (they did not compile when handlers had to be `Fn`). The connection handler emits `hello`
/// through the captured server; `message` (the client's `send`) is answered with `send`;
/// `once("a")` runs for the first `a` only; catch-all listeners run in order (`prepend_any`
/// first) and the removed one never; outgoing listeners see the event name and its
/// arguments, in order, the removed one never, and acks are not events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_api_with_capturing_handlers() {
    for_each_mode(async |mode| {
        let (probe, mut notes) = Probe::new();
        let io = builder().build();
        let connections = Arc::new(AtomicUsize::new(0));
        let io2 = io.clone();
        io.ns("/", async move |socket: SocketRef| {
            connections.fetch_add(1, Ordering::SeqCst);
            for name in ["L1", "L2"] {
                let p = probe.clone();
                let id = socket.on_any(async move |Event(event): Event| {
                    p.note("any", json!([name, event]));
                });
                if name == "L2" {
                    socket.off_any(Some(id));
                }
            }
            let p = probe.clone();
            socket.prepend_any(async move |Event(event): Event| {
                p.note("any", json!(["L0", event]));
            });
            for name in ["O1", "O2"] {
                let p = probe.clone();
                let id = socket.on_any_outgoing(move |event, args| {
                    p.note("out", json!([name, event, values(args)]));
                });
                if name == "O2" {
                    socket.off_any_outgoing(Some(id));
                }
            }
            let p = probe.clone();
            socket.prepend_any_outgoing(move |event, args| {
                p.note("out", json!(["O0", event, values(args)]));
            });
            let p = probe.clone();
            socket.once("a", async move |Data(n): Data<i64>| {
                p.note("once", n);
            });
            socket.on("message", async |socket: SocketRef, args: Args| {
                socket.send(&args).unwrap();
            });
            let count = connections.clone();
            socket.on("report", async move || -> Result<Value, String> {
                Ok(json!({ "connections": count.load(Ordering::SeqCst) }))
            });
            io2.to(socket.id()).emit("hello", &("from io", 1)).unwrap();
        });
        let server = Server::start(io);
        let mut client = Client::spawn(&server, mode, "api", json!({}));
        client.expect("connected").await;
        let summary = client.ok().await;
        assert_eq!(summary["hello"], json!(["from io", 1]));
        assert_eq!(summary["message"], json!(["hi", 1]));
        assert_eq!(summary["report"], json!({ "connections": 1 }));

        let mut any = Vec::new();
        for _ in 0..10 {
            any.push(notes.next("any").await);
        }
        let want: Vec<Value> = ["message", "a", "a", "b", "report"]
            .iter()
            .flat_map(|e| [json!(["L0", e]), json!(["L1", e])])
            .collect();
        assert_eq!(any, want);
        assert_eq!(notes.next("once").await, json!(1));
        let mut out = Vec::new();
        for _ in 0..4 {
            out.push(notes.next("out").await);
        }
        assert_eq!(
            out,
            [
                json!(["O0", "hello", ["from io", 1]]),
                json!(["O1", "hello", ["from io", 1]]),
                json!(["O0", "message", ["hi", 1]]),
                json!(["O1", "message", ["hi", 1]]),
            ]
        );
        // Every report was made before the client got its `report` answer: nothing else came.
        assert!(notes.drain("once").is_empty(), "once ran again");
        assert!(notes.drain("any").is_empty());
        assert!(notes.drain("out").is_empty());
    })
    .await;
}

/// An ordering burst (300 events) through an async packet middleware that waits on a timer
/// for every third event and yields for the others: handlers still start in arrival order
/// (each event waits for the one before it to be through the middlewares), nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_packet_middleware_keeps_arrival_order() {
    const COUNT: u64 = 300;
    for_each_mode(async |mode| {
        let log = SeqLog::default();
        let io = builder().with_state(log.clone()).build();
        io.ns("/", async |socket: SocketRef| {
            socket.use_async_middleware(async |_: SocketRef, parts: MessageParts| {
                match parts.args.deserialize::<u64>() {
                    Ok(n) if n % 3 == 0 => tokio::time::sleep(Duration::from_millis(1)).await,
                    _ => tokio::task::yield_now().await,
                }
                Ok(parts)
            });
            ordering_handlers(&socket);
        });
        let server = Server::start(io);
        check_ordering(&server, mode, COUNT, &log).await;
    })
    .await;
}

/// `SocketIoBuilder::ack_timeout` is the default timeout of a socket's and of a broadcast's
/// `emit_with_ack`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_ack_timeout() {
    for_each_mode(async |mode| {
        let io = builder().ack_timeout(Duration::from_millis(300)).build();
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
        let r = socket.emit_with_ack::<_, Value>("ignored", &1).await;
        assert!(matches!(r, Err(AckError::Timeout)), "{r:?}");
        assert!(start.elapsed() >= Duration::from_millis(290));
        let answers = server
            .io
            .emit_with_ack::<_, i64>("question", &5)
            .unwrap()
            .collect()
            .await;
        assert!(matches!(answers[..], [(Some(_), Ok(10))]), "{answers:?}");
        let r = socket
            .timeout(Duration::from_millis(100))
            .emit_with_ack::<_, Value>("late", &1)
            .await;
        assert!(matches!(r, Err(AckError::Timeout)), "{r:?}");
        socket.emit("done", &()).unwrap();
        assert_eq!(client.ok().await["after"], json!(4));
    })
    .await;
}
