//! Interop with the real `socket.io-client` 4.8 (`interop/sio/client.mjs`): disconnect
//! reasons seen on both sides, and reconnection of the JS client after a server restart on
//! the same port, over WebSocket, polling, and polling upgraded to WebSocket.
//!
//! Needs `npm ci` in `interop/` (`cargo xtask npm`).

mod common;

use common::{Client, Mode, Notes, Probe, Server, builder, for_each_mode};
use ferrio::{DisconnectDescription, DisconnectReason, SocketIo, SocketRef, State};
use ferrio_testkit::within;
use serde_json::{Value, json};

/// `/`, `/chat` and `/control`; every socket reports `disconnecting` (with its rooms) and
/// `disconnect` (with the reason) as `[ns, id, ...]`.
fn start() -> (Server, Notes) {
    let (probe, notes) = Probe::new();
    let io = builder().with_state(probe).build();
    for ns in ["/", "/chat", "/control"] {
        io.ns(ns, async |socket: SocketRef| {
            socket.join("custom");
            socket.on(
                "bye",
                async |socket: SocketRef,
                       ferrio::Data(v): ferrio::Data<String>,
                       State(p): State<Probe>| {
                    p.note("bye", json!([socket.ns_name(), v]));
                },
            );
            socket.on_disconnecting(
                async |socket: SocketRef, reason: DisconnectReason, State(p): State<Probe>| {
                    let mut rooms: Vec<String> =
                        socket.rooms().into_iter().map(String::from).collect();
                    rooms.sort();
                    p.note(
                        "disconnecting",
                        json!([
                            socket.ns_name(),
                            socket.id().as_str(),
                            reason.as_str(),
                            rooms
                        ]),
                    );
                },
            );
            socket.on_disconnect(
                async |socket: SocketRef, reason: DisconnectReason, State(p): State<Probe>| {
                    p.note(
                        "disconnect",
                        json!([
                            socket.ns_name(),
                            socket.id().as_str(),
                            reason.as_str(),
                            socket.rooms().len()
                        ]),
                    );
                },
            );
        });
    }
    (Server::start(io), notes)
}

/// Runs `disconnect` with `arg`; returns the script, the server, the reports and the ids.
async fn run(mode: Mode, arg: Value) -> (Client, Server, Notes, Vec<String>) {
    let (server, notes) = start();
    let mut client = Client::spawn(&server, mode, "disconnect", arg);
    let ids = client.expect("connected").await;
    (client, server, notes, ids)
}

/// Server `socket.disconnect(false)`: the client gets "io server disconnect" and does not
/// reconnect (reconnection is on); the server gets `disconnecting` (still in its rooms) then
/// `disconnect`, both "server namespace disconnect", after which the socket is in no room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_namespace_disconnect() {
    for_each_mode(async |mode| {
        let (client, server, mut notes, ids) =
            run(mode, json!({ "action": "wait", "reconnection": true })).await;
        let id = &ids[0];
        server.socket(id).disconnect(false);

        let mut rooms = vec![id.clone(), "custom".to_owned()];
        rooms.sort();
        assert_eq!(
            notes.next("disconnecting").await,
            json!(["/", id, "server namespace disconnect", rooms])
        );
        assert_eq!(
            notes.next("disconnect").await,
            json!(["/", id, "server namespace disconnect", 0])
        );
        let summary = client.ok().await;
        assert_eq!(
            summary,
            json!({ "/": { "reason": "io server disconnect", "active": false } })
        );
        assert_eq!(server.io.of("/").socket_count(), 0);
    })
    .await;
}

/// Client `socket.disconnect()` on `/`: the server gets "client namespace disconnect"; the
/// client's `/chat` on the same connection stays connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_namespace_disconnect() {
    for_each_mode(async |mode| {
        let arg = json!({ "action": "disconnect", "nsps": ["/", "/chat"], "control": true });
        let (mut client, server, mut notes, ids) = run(mode, arg).await;
        assert_eq!(
            notes.next("disconnect").await,
            json!(["/", ids[0], "client namespace disconnect", 0])
        );
        client.expect("control").await;
        assert_eq!(server.io.of("/").socket_count(), 0);
        assert_eq!(server.io.of("/chat").socket_count(), 1);
        assert!(server.socket_in("/chat", &ids[1]).connected());
        server.io.of("/control").emit("done", &()).unwrap();

        let summary = client.ok().await;
        assert_eq!(
            summary,
            json!({ "/": { "reason": "io client disconnect", "active": false } })
        );
    })
    .await;
}

/// The client emits `bye` and disconnects at once (both packets usually arrive together):
/// the `bye` handler still runs, before the disconnect handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_right_before_a_client_disconnect() {
    for_each_mode(async |mode| {
        let arg =
            json!({ "action": "bye-then-disconnect", "nsps": ["/", "/chat"], "control": true });
        let (mut client, server, mut notes, ids) = run(mode, arg).await;
        assert_eq!(
            notes.next("disconnect").await,
            json!(["/", ids[0], "client namespace disconnect", 0])
        );
        assert_eq!(notes.drain("bye"), [json!(["/", "see you"])]);
        client.expect("control").await;
        server.io.of("/control").emit("done", &()).unwrap();
        client.ok().await;
    })
    .await;
}

/// The client closes its whole manager (the Engine.IO connection): the server sees
/// "transport close" on every namespace of that connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_closes_the_connection() {
    for_each_mode(async |mode| {
        let arg = json!({
            "action": "close-manager", "nsps": ["/", "/chat"], "expect": 2, "control": true
        });
        let (mut client, server, mut notes, ids) = run(mode, arg).await;
        let mut seen = vec![
            notes.next("disconnect").await,
            notes.next("disconnect").await,
        ];
        seen.sort_by_key(|v| v[0].as_str().map(str::to_owned));
        assert_eq!(
            seen,
            [
                json!(["/", ids[0], "transport close", 0]),
                json!(["/chat", ids[1], "transport close", 0])
            ]
        );
        client.expect("control").await;
        server.io.of("/control").emit("done", &()).unwrap();
        let summary = client.ok().await;
        assert_eq!(summary["/"]["reason"], json!("forced close"), "{summary}");
        assert_eq!(
            summary["/chat"]["reason"],
            json!("forced close"),
            "{summary}"
        );
    })
    .await;
}

/// `socket.disconnect(true)`, as Node's `client._disconnect()`: every namespace of that
/// connection gets a DISCONNECT packet and "server namespace disconnect" on the server, then the
/// connection is closed. The client sees "io server disconnect" on both namespaces, and neither
/// socket is active any more (reconnection is on, yet nothing reconnects).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_disconnect_closing_the_connection() {
    for_each_mode(async |mode| {
        let server = close_both_namespaces(
            mode,
            |s| s.disconnect(true),
            ("server namespace disconnect", "io server disconnect"),
            false,
        )
        .await;
        server
            .wait_until("the connection closed", |io| io.connection_count() == 0)
            .await;
    })
    .await;
}

/// Server `socket.close_connection()` (Node's `socket.conn.close()`): no DISCONNECT packet,
/// every namespace of the connection gets "forced close" on the server, the client sees
/// "transport close" on each and stays active (it will reconnect).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_closes_the_connection() {
    for_each_mode(async |mode| {
        close_both_namespaces(
            mode,
            |s| s.close_connection(),
            ("forced close", "transport close"),
            true,
        )
        .await;
    })
    .await;
}

/// A client in `/` and `/chat` over one connection; `close` is applied to its `/` socket.
/// Checks the disconnect reason of both namespaces on each side (`reasons`: server's,
/// client's) and whether the client stays active.
async fn close_both_namespaces(
    mode: Mode,
    close: impl FnOnce(&SocketRef),
    (server_reason, client_reason): (&str, &str),
    active: bool,
) -> Server {
    let arg =
        json!({ "action": "wait", "nsps": ["/", "/chat"], "expect": 2, "reconnection": true });
    let (client, server, mut notes, ids) = run(mode, arg).await;
    close(&server.socket(&ids[0]));
    let mut seen = vec![
        notes.next("disconnect").await,
        notes.next("disconnect").await,
    ];
    seen.sort_by_key(|v| v[0].as_str().map(str::to_owned));
    assert_eq!(
        seen,
        [
            json!(["/", ids[0], server_reason, 0]),
            json!(["/chat", ids[1], server_reason, 0])
        ]
    );
    let summary = client.ok().await;
    assert_eq!(
        summary,
        json!({
            "/": { "reason": client_reason, "active": active },
            "/chat": { "reason": client_reason, "active": active },
        })
    );
    server
}

/// `io.close().await`: every socket gets "server shutting down" and its disconnect handler
/// has run when it resolves; the client sees "transport close"; the server refuses new
/// connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_shutting_down() {
    for_each_mode(async |mode| {
        let arg = json!({ "action": "wait", "nsps": ["/", "/chat"], "expect": 2 });
        let (client, server, mut notes, ids) = run(mode, arg).await;
        within(10, "io.close()", server.io.close()).await;
        let mut seen = notes.drain("disconnect");
        assert_eq!(seen.len(), 2, "the drain waits for the disconnect handlers");
        seen.sort_by_key(|v| v[0].as_str().map(str::to_owned));
        assert_eq!(
            seen,
            [
                json!(["/", ids[0], "server shutting down", 0]),
                json!(["/chat", ids[1], "server shutting down", 0])
            ]
        );
        let summary = client.ok().await;
        assert_eq!(
            summary["/"]["reason"],
            json!("transport close"),
            "{summary}"
        );
        assert_eq!(
            summary["/chat"]["reason"],
            json!("transport close"),
            "{summary}"
        );
        server
            .wait_until("every connection closed", |io| io.connection_count() == 0)
            .await;
    })
    .await;
}

/// `io.serve(listener)`: `io.close().await` also closes the listener (a new TCP connection is
/// refused) after the clients were disconnected, and the serve future has returned. A second
/// `close()` resolves as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_stops_the_served_listener() {
    let (probe, mut notes) = Probe::new();
    let io = builder().with_state(probe).build();
    io.ns("/", async |socket: SocketRef| {
        socket.on_disconnect(async |reason: DisconnectReason, State(p): State<Probe>| {
            p.note("disconnect", reason.as_str());
        });
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = tokio::spawn(io.serve(listener));
    let url = format!("http://{addr}");
    let mut client = Client::spawn_url(
        &url,
        Mode::WebSocket,
        "disconnect",
        json!({ "action": "wait" }),
    );
    client.expect("connected").await;

    within(15, "io.close()", io.close()).await;
    assert_eq!(notes.drain("disconnect"), [json!("server shutting down")]);
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert!(refused.is_err(), "the listener is closed: {refused:?}");
    within(5, "the serve future", serving)
        .await
        .unwrap()
        .unwrap();
    let summary = client.ok().await;
    assert_eq!(summary["/"]["reason"], json!("transport close"));
    within(5, "a second close()", io.close()).await;
}

/// Node's second `disconnect` argument: a client whose WebSocket message is over
/// `max_payload` is disconnected with "transport error" and the description "message too big"
/// (the close code 1009 reaches the npm client as "transport close"); a client leaving the
/// namespace gives no description.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_description() {
    let (probe, mut notes) = Probe::new();
    let io = builder().max_payload(10_000).with_state(probe).build();
    io.ns("/", async |socket: SocketRef| {
        socket.on_disconnect(
            async |reason: DisconnectReason,
                   DisconnectDescription(d): DisconnectDescription,
                   State(p): State<Probe>| {
                p.note("disconnect", json!([reason.as_str(), d]));
            },
        );
    });
    let server = Server::start(io);
    let mut client = Client::spawn(
        &server,
        Mode::WebSocket,
        "disconnect",
        json!({ "action": "oversized", "size": 20_000 }),
    );
    client.expect("connected").await;
    assert_eq!(
        notes.next("disconnect").await,
        json!(["transport error", "message too big"])
    );
    let summary = client.ok().await;
    assert_eq!(summary["/"]["reason"], json!("transport close"));

    let mut client = Client::spawn(
        &server,
        Mode::WebSocket,
        "disconnect",
        json!({ "action": "disconnect" }),
    );
    client.expect("connected").await;
    assert_eq!(
        notes.next("disconnect").await,
        json!(["client namespace disconnect", null])
    );
    client.ok().await;
}

/// The server stops (`io.close()`, listener closed) while the client is connected; a new
/// server is bound to the same port; the JS client reconnects by itself (new socket id, new
/// server generation) and exchanges events again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnection_after_a_server_restart() {
    fn generation(n: u64) -> SocketIo {
        let io = builder().build();
        io.ns("/", move |socket: SocketRef| async move {
            socket.emit("welcome", &json!({ "generation": n })).unwrap();
            socket.on(
                "echo-ack",
                async |ferrio::Data(v): ferrio::Data<Value>| -> Result<Value, String> { Ok(v) },
            );
        });
        io
    }

    for_each_mode(async |mode| {
        let server = Server::start(generation(1));
        let port = server.addr.port();
        let mut client = Client::spawn(&server, mode, "reconnect", json!({}));
        let first = client.expect("connected").await;
        assert_eq!(first[1], "1");
        server.stop().await;
        // Over polling the client may be between two requests when the server goes away: its
        // next request fails ("transport error") instead of reading the close packet.
        let reason = client.expect_raw("disconnected").await;
        assert!(
            reason == "transport close" || (mode == Mode::Polling && reason == "transport error"),
            "{reason}"
        );

        let server = Server::start_on(generation(2), port).await;
        let second = client.expect("reconnected").await;
        assert_eq!(second[1], "2");
        assert_ne!(first[0], second[0], "a new socket on the new server");
        let socket = server.socket(&second[0]);
        // The client reports the upgrade when it sends the upgrade packet; the server may not
        // have read it yet.
        server
            .wait_until("the server-side upgrade", |_| {
                socket.transport() == mode.transport()
            })
            .await;
        let summary = client.ok().await;
        assert_eq!(summary["before"], json!("before"));
        assert_eq!(summary["after"], json!("after"));
        assert_eq!(summary["transport"], json!(mode.transport()));
        assert!(summary["attempts"].as_u64().unwrap() >= 1, "{summary}");
    })
    .await;
}
