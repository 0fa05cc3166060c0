//! Interop with the real `socket.io-client` 4.8 (`interop/sio/client.mjs`): namespaces on
//! one connection, dynamic namespaces (pattern and predicate), unknown namespaces, and
//! connection middlewares refusing with `{message, data}`, over WebSocket, polling, and
//! polling upgraded to WebSocket.
//!
//! Needs `npm ci` in `interop/` (`cargo xtask npm`).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Client, Probe, Server, builder, for_each_mode};
use ferrio::{Args, ConnectError, Data, Extension, SocketRef};
use serde_json::{Value, json};

/// Answers `echo` with the same arguments and greets with the namespace and the auth payload.
async fn greet(socket: SocketRef, Data(auth): Data<Value>) {
    socket
        .emit("welcome", &json!({ "ns": socket.ns_name(), "auth": auth }))
        .unwrap();
    socket.on("echo", async |socket: SocketRef, args: Args| {
        socket.emit("echo", &args).unwrap();
    });
}

/// `namespaces`: `/` and `/chat` from one manager share one Engine.IO connection, get
/// distinct socket ids, their events stay apart, and `io.of("/chat").emit` reaches only
/// `/chat`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_namespaces_on_one_connection() {
    for_each_mode(async |mode| {
        let io = builder().build();
        io.ns("/", greet);
        io.ns("/chat", greet);
        let server = Server::start(io);
        let mut client = Client::spawn(&server, mode, "namespaces", json!({}));
        let ids = client.expect("connected").await;
        assert_ne!(ids[0], ids[1]);
        let root = server.socket_in("/", &ids[0]);
        let chat = server.socket_in("/chat", &ids[1]);
        assert_eq!(server.io.connection_count(), 1);
        assert_eq!(server.io.of("/").socket_count(), 1);
        assert_eq!(server.io.of("/chat").socket_count(), 1);
        assert_eq!(root.handshake().auth(), &json!({ "which": "root" }));
        assert_eq!(chat.handshake().auth(), &json!({ "which": "chat" }));

        server
            .io
            .of("/chat")
            .emit("chat-only", &"for chat")
            .unwrap();
        server.io.emit("done", &()).unwrap();
        let summary = client.ok().await;
        assert_eq!(
            summary["rootWelcome"],
            json!({ "ns": "/", "auth": { "which": "root" } })
        );
        assert_eq!(
            summary["chatWelcome"],
            json!({ "ns": "/chat", "auth": { "which": "chat" } })
        );
        assert_eq!(summary["rootEcho"], json!(["r"]));
        assert_eq!(summary["chatEcho"], json!(["c"]));
        assert_eq!(summary["chatOnly"], json!("for chat"));
        assert_eq!(summary["rootGotChatOnly"], json!(false));
        assert_eq!(summary["sameEngine"], json!(true));
    })
    .await;
}

/// `dynamic`: `dyn_ns("/room-{id}")` creates `/room-42` and `/room-abc` on demand (each its
/// own namespace: an emit to one does not reach the other); `dyn_ns_fn` admits `/tenant-a`
/// with the right auth key and refuses `/tenant-b` with a wrong one; `/room-` (empty param)
/// and `/nowhere` get `connect_error` "Invalid namespace" and the client does not retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_and_unknown_namespaces() {
    for_each_mode(async |mode| {
        let io = builder().build();
        io.dyn_ns("/room-{id}", greet);
        io.dyn_ns_fn(
            |name, auth| name.starts_with("/tenant-") && auth["key"] == "k",
            greet,
        );
        let server = Server::start(io);
        let connect = json!([
            ["/room-42", {}],
            ["/room-abc", {}],
            ["/tenant-a", { "key": "k" }],
            ["/tenant-b", { "key": "wrong" }],
            ["/room-", {}],
            ["/nowhere", {}]
        ]);
        let mut client = Client::spawn(&server, mode, "dynamic", json!({ "connect": connect }));
        let results: Value = serde_json::from_str(&client.expect_raw("connected").await).unwrap();
        for ns in ["/room-42", "/room-abc", "/tenant-a"] {
            assert_eq!(results[ns]["connected"], json!(true), "{ns}: {results}");
            assert_eq!(results[ns]["welcome"]["ns"], json!(ns), "{results}");
            assert_eq!(server.io.of(ns).socket_count(), 1, "{ns}");
        }
        assert_eq!(
            results["/tenant-a"]["welcome"]["auth"],
            json!({ "key": "k" })
        );
        for ns in ["/tenant-b", "/room-", "/nowhere"] {
            assert_eq!(
                results[ns],
                json!({ "connected": false, "error": "Invalid namespace", "active": false }),
                "{ns}"
            );
        }

        server.io.of("/room-42").emit("room-msg", &"hi 42").unwrap();
        server.io.of("/room-42").emit("done", &()).unwrap();
        let summary = client.ok().await;
        assert_eq!(summary["roomMsg"], json!("hi 42"));
        assert_eq!(summary["othersGotRoomMsg"], json!(false));
    })
    .await;
}

/// A dynamic namespace as Node's parent namespace: `new_namespace` listeners see each child
/// when it is created (and static namespaces created later, not `/`, nor refused names); the
/// parent's `emit` reaches every child (`/room-42`, `/room-abc`) and no other namespace
/// (`/tenant-a` of another dynamic namespace); `namespaces()` lists the children.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_namespace_and_new_namespace_event() {
    for_each_mode(async |mode| {
        let (probe, mut notes) = Probe::new();
        let io = builder().build();
        let p = probe.clone();
        io.on_new_namespace(move |ns| p.note("new", ns.name()));
        let removed = io.on_new_namespace(move |ns| probe.note("removed", ns.name()));
        io.off_new_namespace(Some(removed));
        let rooms = io.dyn_ns("/room-{id}", greet);
        io.dyn_ns_fn(|name, _| name.starts_with("/tenant-"), greet);
        io.of("/");
        let server = Server::start(io);
        let connect = json!([["/room-42", {}], ["/room-abc", {}], ["/tenant-a", {}], ["/nowhere", {}]]);
        let arg = json!({ "connect": connect, "allDone": true });
        let mut client = Client::spawn(&server, mode, "dynamic", arg);
        let results: Value = serde_json::from_str(&client.expect_raw("connected").await).unwrap();
        assert_eq!(results["/nowhere"]["connected"], json!(false), "{results}");
        let mut created: Vec<Value> = vec![
            notes.next("new").await,
            notes.next("new").await,
            notes.next("new").await,
        ];
        created.sort_by_key(|v| v.to_string());
        assert_eq!(created, [json!("/room-42"), json!("/room-abc"), json!("/tenant-a")]);
        let names: Vec<String> = rooms.namespaces().iter().map(|ns| ns.name().to_owned()).collect();
        assert_eq!(names, ["/room-42", "/room-abc"]);

        rooms.emit("room-msg", &"to every room").unwrap();
        for ns in ["/room-42", "/room-abc", "/tenant-a"] {
            server.io.of(ns).emit("done", &()).unwrap();
        }
        let summary = client.ok().await;
        assert_eq!(
            summary["roomMsgs"],
            json!({ "/room-42": ["to every room"], "/room-abc": ["to every room"], "/tenant-a": [] })
        );
        server.io.of("/static-later");
        assert_eq!(notes.next("new").await, json!("/static-later"));
        assert!(notes.drain("new").is_empty(), "not for `/`, nor twice");
        assert!(notes.drain("removed").is_empty());
    })
    .await;
}

/// `middleware`: a refusing middleware's message and data reach the JS `connect_error` as
/// `err.message` and `err.data` (`data` absent when not given), the client does not retry,
/// and later middlewares and the connection handler do not run; an accepting chain runs in
/// order (the second middleware sees the handshake query and stores an extension that the
/// connection handler and the `Extension` extractor of an event handler read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn middleware_errors_with_data() {
    #[derive(Clone)]
    struct Tag(String);

    for_each_mode(async |mode| {
        let second_ran = Arc::new(AtomicUsize::new(0));
        let io = builder().build();
        let counter = second_ran.clone();
        io.ns("/private", async |socket: SocketRef| {
            let Tag(tag) = socket.extensions().get::<Tag>().unwrap();
            socket.emit("welcome", &json!({ "tag": tag })).unwrap();
            socket.on("tag", async |Extension(Tag(tag)): Extension<Tag>| {
                Ok::<_, String>(tag)
            });
        })
        .with(async |socket: SocketRef| {
            // Asynchronous on purpose: the refusal comes after a yield.
            tokio::task::yield_now().await;
            if socket.handshake().auth()["token"] == "good" {
                Ok(())
            } else {
                Err(ConnectError::new("not authorized")
                    .with_data(json!({ "code": 4001, "reason": "bad token" })))
            }
        })
        .with(move |socket: SocketRef| {
            counter.fetch_add(1, Ordering::SeqCst);
            let q = socket.handshake().query().get("q").cloned();
            async move {
                socket
                    .extensions()
                    .insert(Tag(format!("q={}", q.unwrap_or_default())));
                Ok(())
            }
        });
        io.ns("/nodata", async |_: SocketRef| {})
            .with(async |_: SocketRef| Err(ConnectError::new("go away")));
        let server = Server::start(io);
        let connect = json!([
            ["/private", { "token": "bad" }],
            ["/private", { "token": "good" }, { "q": "42" }],
            ["/nodata", {}]
        ]);
        let client = Client::spawn(
            &server,
            mode,
            "middleware",
            json!({ "connect": connect, "askTag": true }),
        );
        let summary = client.ok().await;
        assert_eq!(
            summary,
            json!([
                {
                    "nsp": "/private",
                    "connected": false,
                    "message": "not authorized",
                    "data": { "code": 4001, "reason": "bad token" },
                    "active": false
                },
                {
                    "nsp": "/private",
                    "connected": true,
                    "welcome": { "tag": "q=42" },
                    "tag": "q=42"
                },
                {
                    "nsp": "/nodata",
                    "connected": false,
                    "message": "go away",
                    "data": "absent",
                    "active": false
                }
            ])
        );
        assert_eq!(second_ran.load(Ordering::SeqCst), 1);
    })
    .await;
}
