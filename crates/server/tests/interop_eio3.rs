//! Interop with the real `socket.io-client` 2.5.0 (Engine.IO v3, Socket.IO protocol v4;
//! `interop/sio/client-v2.mjs`) on a server built with `allow_eio3(true)`: connection to `/`
//! without a CONNECT, events, acks both ways, binary both ways (as binary, and as base64 with
//! `forceBase64`), a second namespace with its auth in the query, a middleware error and an
//! unknown namespace reaching the client as `error`, and the server's disconnect, each over
//! WebSocket, polling, and polling upgraded to WebSocket. The same scenarios run against
//! Node's `socket.io` 4.8 with `allowEIO3: true` (`interop/sio/server-v2.mjs`) and give the
//! same results.
//!
//! Needs `npm ci` in `interop/` (`cargo xtask npm`).

mod common;

use std::future::Future;
use std::panic::AssertUnwindSafe;

use bytes::Bytes;
use common::{Mode, Probe, Server, bin, builder};
use ferrio::{AckSender, Args, ConnectError, Data, DisconnectReason, SocketIo, SocketRef, State};
use ferrio_testkit::node::{NodeProcess, require_node_modules};
use futures_util::FutureExt;
use futures_util::future::join_all;
use serde_json::{Value, json};

/// The handlers of `interop/sio/server-v2.mjs`, on `/` and `/admin`.
fn handlers(socket: SocketRef, probe: Probe) {
    probe.note(
        "connection",
        json!({
            "ns": socket.ns_name(),
            "id": socket.id().as_str(),
            "protocol": socket.protocol(),
        }),
    );
    socket
        .emit(
            "welcome",
            &json!({ "ns": socket.ns_name(), "auth": socket.handshake().auth() }),
        )
        .unwrap();
    socket.on("echo", async |socket: SocketRef, args: Args| {
        socket.emit("echo", &args).unwrap();
    });
    socket.on("ack-me", async |ack: AckSender, args: Args| {
        ack.send(&args).unwrap();
    });
    socket.on("bin", async |socket: SocketRef, args: Args| {
        socket.emit("bin-back", &args).unwrap();
    });
    socket.on("ask-me", async |socket: SocketRef, Data(n): Data<i64>| {
        let answer: (i64, Bytes) = socket
            .timeout(std::time::Duration::from_secs(5))
            .emit_with_ack("ask", &n)
            .await
            .unwrap();
        socket.emit("asked", &answer).unwrap();
    });
    socket.on("bye", async |socket: SocketRef| socket.disconnect(false));
    socket.on_disconnect(async |reason: DisconnectReason, State(p): State<Probe>| {
        p.note("disconnect", reason.as_str());
    });
}

fn ferrio_server(probe: Probe) -> Server {
    let io: SocketIo = builder().allow_eio3(true).with_state(probe).build();
    io.ns("/", async |socket: SocketRef, State(p): State<Probe>| {
        handlers(socket, p)
    })
    .with(async |socket: SocketRef| {
        // The connection to `/` that no CONNECT asked for still goes through middlewares.
        if let Some(p) = socket.state::<Probe>() {
            p.note("middleware", socket.ns_name());
        }
        Ok(())
    });
    io.ns(
        "/admin",
        async |socket: SocketRef, State(p): State<Probe>| handlers(socket, p),
    );
    io.ns("/private", async |_: SocketRef| {})
        .with(async |socket: SocketRef| {
            let err = ConnectError::new("not authorized");
            match socket.handshake().auth().get("withData") {
                Some(_) => Err(err.with_data(json!({ "code": 42 }))),
                None => Err(err),
            }
        });
    Server::start(io)
}

/// `node sio/client-v2.mjs <url> <mode> <scenario> <arg>`: its `connected` line and summary.
async fn run_client(url: &str, mode: Mode, scenario: &str, arg: Value) -> (Vec<String>, Value) {
    let arg = arg.to_string();
    let mut node = NodeProcess::spawn("sio/client-v2.mjs", &[url, mode.arg(), scenario, &arg]);
    let label = format!("{scenario} over {} {arg}", mode.arg());
    let mut seen = Vec::new();
    let mut connected = Vec::new();
    let summary = loop {
        let line = node.expect_line("", 20).await;
        seen.push(line.clone());
        if let Some(rest) = line.strip_prefix("connected ") {
            connected = rest.split(' ').map(str::to_owned).collect();
        } else if let Some(json) = line.strip_prefix("ok ") {
            break serde_json::from_str::<Value>(json).unwrap();
        } else if line.starts_with("fail ") {
            panic!("{label}: {line}\noutput: {seen:?}");
        }
    };
    let (exited_ok, rest) = node.finish(10).await;
    assert!(exited_ok, "{label}: exit status after `ok`: {rest:?}");
    (connected, summary)
}

/// Runs `f` for each mode at once; every run goes to the end, then the failures are
/// reported together.
async fn each_mode<F, Fut>(f: F)
where
    F: Fn(Mode) -> Fut,
    Fut: Future<Output = ()>,
{
    require_node_modules();
    let runs = Mode::ALL.map(|mode| {
        AssertUnwindSafe(f(mode))
            .catch_unwind()
            .map(move |r| (mode, r))
    });
    let failures: Vec<String> = join_all(runs)
        .await
        .into_iter()
        .filter_map(|(mode, r)| {
            let e = r.err()?;
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "non-string panic".to_owned());
            Some(format!("[{}] {msg}", mode.arg()))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What the `main` scenario reports. In Node, the 2.x client's polling has no XHR2, so it
/// asks for base64 (`b64=1`) on polling; `forceBase64` does the same on WebSocket.
fn expected_main(mode: Mode, force_base64: bool) -> Value {
    json!({
        "transport": mode.transport(),
        "b64": force_base64 || mode == Mode::Polling,
        "welcome": { "ns": "/", "auth": {} },
        "echo": ["a", 1, { "k": [null] }, "€😀"],
        "ack": [1, "two", { "three": 3 }],
        "bin": [bin(&[1, 2, 3]), { "nested": bin(&[4, 5]) }],
        "binAck": [bin(&[9, 8])],
        "asked": [42, bin(&[7])],
        "disconnect": "io server disconnect",
    })
}

fn expected_namespaces(mode: Mode) -> Value {
    json!({
        "transport": mode.transport(),
        "adminId": true,
        "adminWelcome": { "ns": "/admin", "auth": { "token": "xyz" } },
        "adminEcho": ["on admin"],
        "privateError": "not authorized",
        "privateConnected": false,
        "privateErrorData": { "code": 42 },
        "unknownNamespace": { "message": "Invalid namespace" },
    })
}

/// `main`: the client is in `/` without sending a CONNECT (the middlewares of `/` run), with
/// the Engine.IO id as its socket id and protocol 4; events, acks and binary both ways; `socket.disconnect()`
/// reaches it as `io server disconnect`. With `forceBase64` binary goes as base64 text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_client_events_acks_binary_and_disconnect() {
    each_mode(async |mode| {
        for force_base64 in [false, true] {
            let (probe, mut notes) = Probe::new();
            let server = ferrio_server(probe);
            let (connected, summary) =
                run_client(&server.url, mode, "main", json!({ "b64": force_base64 })).await;
            assert_eq!(
                summary,
                expected_main(mode, force_base64),
                "b64 {force_base64}"
            );
            assert_eq!(notes.next("middleware").await, "/");
            let connection = notes.next("connection").await;
            assert_eq!(connection["ns"], "/");
            assert_eq!(connection["protocol"], 4);
            // Node's v3 socket id in `/`: the Engine.IO session id, which the client uses.
            assert_eq!(connection["id"], connected[0].as_str());
            assert_eq!(connected[1], mode.transport());
            assert_eq!(
                notes.next("disconnect").await,
                "server namespace disconnect"
            );
        }
    })
    .await;
}

/// `namespaces`: `/admin?token=xyz` connects with that query as its auth (the socket id on
/// the client is `/admin#<engine id>`); a middleware's error reaches the client's `error`
/// as its message, or as its data when it has some; an unknown namespace gets Node's
/// `{"message":"Invalid namespace"}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_client_namespaces_and_refusals() {
    each_mode(async |mode| {
        let (probe, mut notes) = Probe::new();
        let server = ferrio_server(probe);
        let (_, summary) = run_client(&server.url, mode, "namespaces", json!({})).await;
        assert_eq!(summary, expected_namespaces(mode));
        // Connected to `/` on its own first, then `/admin`.
        let mut namespaces = vec![
            notes.next("connection").await["ns"].clone(),
            notes.next("connection").await["ns"].clone(),
        ];
        namespaces.sort_by_key(|v| v.to_string());
        assert_eq!(namespaces, vec![json!("/"), json!("/admin")]);
    })
    .await;
}

/// The same scenarios against Node's `socket.io` 4.8 with `allowEIO3: true` give the same
/// summaries: the expectations above are Node's behaviour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_reference_gives_the_same_results() {
    require_node_modules();
    let mut node = NodeProcess::spawn("sio/server-v2.mjs", &[]);
    let port = node.expect_line("listening ", 10).await;
    let url = format!("http://127.0.0.1:{}", port.trim());
    let url = &url;
    each_mode(async |mode| {
        for force_base64 in [false, true] {
            let (_, summary) = run_client(url, mode, "main", json!({ "b64": force_base64 })).await;
            assert_eq!(
                summary,
                expected_main(mode, force_base64),
                "b64 {force_base64}"
            );
        }
        let (_, summary) = run_client(url, mode, "namespaces", json!({})).await;
        assert_eq!(summary, expected_namespaces(mode));
    })
    .await;
}

/// Off by default: the 2.x client cannot connect, and the engine answers its handshake
/// with Node's `Unsupported protocol version`.
#[tokio::test]
async fn refused_without_allow_eio3() {
    let io = builder().build();
    io.ns("/", async |_: SocketRef| {});
    let server = Server::start(io);
    let res = ferrio_testkit::http::get(server.addr, "/socket.io/?EIO=3&transport=polling").await;
    assert_eq!(res.status, 400);
    assert_eq!(
        res.text(),
        r#"{"code":5,"message":"Unsupported protocol version"}"#
    );
}
