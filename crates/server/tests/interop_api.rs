//! Interop with the real `socket.io-client` 4.8 (`interop/sio/client.mjs`, scenario `api`):
//! the listener API of a socket (`send`/`message`, `once`, several catch-all listeners with
//! `prepend_any`/`off_any`, outgoing listeners with the event and its arguments), written with
//! `async move` closures that capture state, over WebSocket, polling, and polling upgraded to
//! WebSocket.
//!
//! Needs `npm ci` in `interop/` (`cargo xtask npm`).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Client, Probe, Server, builder, for_each_mode};
use ferrio::{Args, Data, Event, SocketRef};
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
