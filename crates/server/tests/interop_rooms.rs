//! Interop with the real `socket.io-client` 4.8 (`interop/sio/client.mjs`, scenario
//! `room-clients`): rooms, every broadcast operator, broadcast acks, `fetch_sockets`,
//! `sockets_join`, `sockets_leave` and `disconnect_sockets`, with three clients A, B, C, over
//! WebSocket, polling, and polling upgraded to WebSocket.
//!
//! The clients join their rooms with a `join` event: A in `r1`, B in `r1` and `r2`, C in `r2`
//! and `r3`. Each logs every event it receives; the server then ends the scenario with `end`.
//! One connection per client keeps each client's events in emit order, so the logs are
//! compared exactly.
//!
//! Needs `npm ci` in `interop/` (`cargo xtask npm`).

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use common::{Client, Mode, Notes, Probe, Server, builder, for_each_mode};
use ferrio::{
    AckError, AdapterError, Data, DisconnectReason, Gathered, RemoteSocket, Room, RoomEvent,
    SocketRef, State,
};
use serde_json::{Value, json};

/// The three clients' sockets, the server and the script.
struct Rooms {
    server: Server,
    client: Client,
    notes: Notes,
    a: SocketRef,
    b: SocketRef,
    c: SocketRef,
}

/// The room events of `/` are reported as `room` notes, `[name, room, sid or null]`.
async fn start(mode: Mode) -> Rooms {
    let (probe, notes) = Probe::new();
    let io = builder().with_state(probe.clone()).build();
    io.of("/").on_room_event(move |ev: &RoomEvent| {
        let sid = ev.sid().map(|s| s.to_string());
        probe.note("room", json!([ev.name(), ev.room().as_ref(), sid]));
    });
    io.ns("/", async |socket: SocketRef| {
        socket.on(
            "join",
            async |socket: SocketRef,
                   Data(rooms): Data<Vec<String>>|
                   -> Result<Vec<String>, String> {
                socket.join(rooms.clone());
                Ok(rooms)
            },
        );
        socket.on_disconnect(
            async |socket: SocketRef, reason: DisconnectReason, State(p): State<Probe>| {
                p.note("disconnect", json!([socket.id().as_str(), reason.as_str()]));
            },
        );
    });
    let server = Server::start(io);
    let clients = json!({ "clients": [
        { "name": "A", "rooms": ["r1"], "answer": true },
        { "name": "B", "rooms": ["r1", "r2"], "answer": true },
        { "name": "C", "rooms": ["r2", "r3"], "answer": false },
    ]});
    let mut client = Client::spawn(&server, mode, "room-clients", clients);
    let mut ids = BTreeMap::new();
    for _ in 0..3 {
        let l = client.expect("connected").await;
        ids.insert(l[0].clone(), l[1].clone());
    }
    client.expect("ready").await;
    let a = server.socket(&ids["A"]);
    let b = server.socket(&ids["B"]);
    let c = server.socket(&ids["C"]);
    Rooms {
        server,
        client,
        notes,
        a,
        b,
        c,
    }
}

fn rooms(socket: &SocketRef) -> HashSet<String> {
    socket.rooms().iter().map(|r| r.to_string()).collect()
}

/// The rooms of `/` on this server.
fn listed(io: &ferrio::SocketIo) -> HashSet<String> {
    io.of("/").rooms().iter().map(|r| r.to_string()).collect()
}

fn set(items: &[&str]) -> HashSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn ids(found: &Result<Gathered<RemoteSocket>, AdapterError>) -> HashSet<String> {
    let found = found.as_ref().expect("fetch_sockets");
    assert!(found.is_complete());
    found.iter().map(|s| s.id().to_string()).collect()
}

/// Every operator: `to` (one room, several calls, a list: a union with each socket once),
/// `except`, `to` + `except`, a socket's `to`/`broadcast`/`except`/`local` (never the sender),
/// `local`, `volatile`, `compress`, a socket's own id as a room, and `leave`/`join`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_and_broadcast_operators() {
    for_each_mode(async |mode| {
        let Rooms {
            server,
            client,
            a,
            b,
            c,
            ..
        } = start(mode).await;
        let io = &server.io;
        let (aid, bid, cid) = (a.id().to_string(), b.id().to_string(), c.id().to_string());
        assert_eq!(rooms(&a), set(&[&aid, "r1"]));
        assert_eq!(rooms(&b), set(&[&bid, "r1", "r2"]));
        assert_eq!(rooms(&c), set(&[&cid, "r2", "r3"]));

        let mut expected: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        let mut sent = |label: &str, to: &str| {
            for name in to.chars() {
                let key = match name {
                    'A' => "A",
                    'B' => "B",
                    _ => "C",
                };
                expected.entry(key).or_default().push(json!(["m", label]));
            }
        };
        io.to("r1").emit("m", "to r1").unwrap();
        sent("to r1", "AB");
        io.to("r1").to("r3").emit("m", "to r1 to r3").unwrap();
        sent("to r1 to r3", "ABC");
        io.to(["r1", "r2"]).emit("m", "to [r1 r2]").unwrap();
        sent("to [r1 r2]", "ABC");
        io.except("r1").emit("m", "except r1").unwrap();
        sent("except r1", "C");
        io.except(["r1", "r3"]).emit("m", "except [r1 r3]").unwrap();
        sent("except [r1 r3]", "");
        io.to("r2").except("r3").emit("m", "r2 except r3").unwrap();
        sent("r2 except r3", "B");
        b.to("r1").emit("m", "b to r1").unwrap();
        sent("b to r1", "A");
        b.to(["r1", "r2"]).emit("m", "b to [r1 r2]").unwrap();
        sent("b to [r1 r2]", "AC");
        b.broadcast().emit("m", "b broadcast").unwrap();
        sent("b broadcast", "AC");
        b.except("r3").emit("m", "b except r3").unwrap();
        sent("b except r3", "A");
        a.local().emit("m", "a local").unwrap();
        sent("a local", "BC");
        io.local().emit("m", "local").unwrap();
        sent("local", "ABC");
        io.volatile().emit("m", "volatile").unwrap();
        sent("volatile", "ABC");
        io.of("/").compress(false).emit("m", "compress").unwrap();
        sent("compress", "ABC");
        a.volatile().emit("m", "a volatile").unwrap();
        sent("a volatile", "A");
        io.to(c.id()).emit("m", "to c's id").unwrap();
        sent("to c's id", "C");
        b.leave("r1");
        assert_eq!(rooms(&b), set(&[&bid, "r2"]));
        io.to("r1").emit("m", "r1 after b left").unwrap();
        sent("r1 after b left", "A");
        b.join(["r3", "r4"]);
        io.to("r3").emit("m", "r3 after b joined").unwrap();
        sent("r3 after b joined", "BC");
        io.emit("end", &()).unwrap();

        let summary = client.ok().await;
        for name in ["A", "B", "C"] {
            assert_eq!(
                summary[name],
                json!(expected.get(name).cloned().unwrap_or_default()),
                "client {name}"
            );
        }
    })
    .await;
}

/// `timeout(d).emit_with_ack` over a broadcast: one answer per socket (A and B answer with
/// their name, C never answers and times out, after the answers); on `io`, on `io.to(room)`
/// and on a socket's `broadcast()` (the sender excluded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_acks_with_timeouts() {
    for_each_mode(async |mode| {
        let Rooms {
            server,
            client,
            a,
            b,
            c,
            ..
        } = start(mode).await;
        let io = &server.io;
        let name = |sid: &ferrio::Sid| {
            [(&a, "A"), (&b, "B"), (&c, "C")]
                .iter()
                .find(|(s, _)| s.id() == *sid)
                .map(|(_, n)| *n)
                .unwrap()
        };
        let describe =
            |answers: Vec<(Option<ferrio::Sid>, Result<String, AckError>)>| -> Vec<String> {
                answers
                    .into_iter()
                    .map(|(sid, r)| (sid.expect("local sockets have ids"), r))
                    .map(|(sid, r)| match r {
                        Ok(v) => format!("{} {v}", name(&sid)),
                        Err(AckError::Timeout) => format!("{} timeout", name(&sid)),
                        Err(e) => format!("{} {e}", name(&sid)),
                    })
                    .collect()
            };

        let mut stream = io
            .timeout(Duration::from_millis(500))
            .emit_with_ack::<_, String>("poll", "q1")
            .unwrap();
        assert_eq!(stream.remaining(), 3);
        let mut got = describe(stream.collect().await);
        assert_eq!(
            got.pop().as_deref(),
            Some("C timeout"),
            "timeouts come last"
        );
        got.sort();
        assert_eq!(got, ["A A:q1", "B B:q1"]);

        let stream = io
            .to("r1")
            .timeout(Duration::from_millis(500))
            .emit_with_ack::<_, String>("poll", "q2")
            .unwrap();
        let mut got = describe(stream.collect().await);
        got.sort();
        assert_eq!(got, ["A A:q2", "B B:q2"]);

        let stream = b
            .broadcast()
            .timeout(Duration::from_millis(300))
            .emit_with_ack::<_, String>("poll", "q3")
            .unwrap();
        assert_eq!(describe(stream.collect().await), ["A A:q3", "C timeout"]);
        io.emit("end", &()).unwrap();

        let summary = client.ok().await;
        assert_eq!(
            summary["A"],
            json!([["poll", "q1"], ["poll", "q2"], ["poll", "q3"]])
        );
        assert_eq!(summary["B"], json!([["poll", "q1"], ["poll", "q2"]]));
        assert_eq!(summary["C"], json!([["poll", "q1"], ["poll", "q3"]]));
    })
    .await;
}

/// The room listing of a namespace and its room events (Node's adapter events): each socket's
/// own room at its connection (`create-room` then `join-room`), the rooms the clients joined
/// (created by the first member only), a leave that empties nothing, a disconnect that leaves
/// every room (`leave-room`, then `delete-room` for the rooms it emptied); a removed listener
/// is not called, the others still are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_listing_and_room_events() {
    for_each_mode(async |mode| {
        let Rooms {
            server,
            client,
            mut notes,
            a,
            b,
            c,
        } = start(mode).await;
        let io = &server.io;
        let (aid, bid, cid) = (a.id().to_string(), b.id().to_string(), c.id().to_string());
        assert_eq!(listed(io), set(&[&aid, &bid, &cid, "r1", "r2", "r3"]));

        // Connections first (in any order between clients), then the joins in order A, B, C.
        let mut events = Vec::new();
        for _ in 0..14 {
            events.push(notes.next("room").await);
        }
        let (own, joins): (Vec<Value>, Vec<Value>) = events
            .into_iter()
            .partition(|e| [&aid, &bid, &cid].iter().any(|id| e[1] == json!(id)));
        for id in [&aid, &bid, &cid] {
            let mine: Vec<&Value> = own.iter().filter(|e| e[1] == json!(id)).collect();
            assert_eq!(
                mine,
                [
                    &json!(["create-room", id, null]),
                    &json!(["join-room", id, id])
                ]
            );
        }
        assert_eq!(
            joins,
            [
                json!(["create-room", "r1", null]),
                json!(["join-room", "r1", aid]),
                json!(["join-room", "r1", bid]),
                json!(["create-room", "r2", null]),
                json!(["join-room", "r2", bid]),
                json!(["join-room", "r2", cid]),
                json!(["create-room", "r3", null]),
                json!(["join-room", "r3", cid]),
            ]
        );

        let (probe, mut removed) = Probe::new();
        let id = io
            .of("/")
            .on_room_event(move |ev: &RoomEvent| probe.note("removed", ev.name()));
        io.of("/").off_room_event(Some(id));
        a.leave("r1");
        assert_eq!(notes.next("room").await, json!(["leave-room", "r1", aid]));
        c.disconnect(false);
        let mut left = Vec::new();
        for _ in 0..5 {
            left.push(notes.next("room").await);
        }
        let position = |e: Value| {
            left.iter()
                .position(|x| *x == e)
                .unwrap_or_else(|| panic!("{e} in {left:?}"))
        };
        assert!(
            position(json!(["leave-room", "r3", cid]))
                < position(json!(["delete-room", "r3", null]))
        );
        assert!(
            position(json!(["leave-room", cid, cid])) < position(json!(["delete-room", cid, null]))
        );
        position(json!(["leave-room", "r2", cid]));
        assert!(
            removed.drain("removed").is_empty(),
            "a removed listener is not called"
        );
        assert_eq!(listed(io), set(&[&aid, &bid, "r1", "r2"]));
        io.emit("end", &()).unwrap();
        client.ok().await;
    })
    .await;
}

/// `fetch_sockets`, `sockets_join`, `sockets_leave` and `disconnect_sockets` on operators:
/// they act on exactly the sockets the operator selects; the disconnected client sees
/// "io server disconnect" and the server "server namespace disconnect".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_join_leave_disconnect_sockets() {
    for_each_mode(async |mode| {
        let Rooms {
            server,
            client,
            mut notes,
            a,
            b,
            c,
        } = start(mode).await;
        let io = &server.io;
        let (aid, bid, cid) = (a.id().to_string(), b.id().to_string(), c.id().to_string());
        assert_eq!(ids(&io.to("r2").fetch_sockets().await), set(&[&bid, &cid]));
        assert_eq!(
            ids(&io.of("/").fetch_sockets().await),
            set(&[&aid, &bid, &cid])
        );

        io.to("r2").sockets_join("r2b").unwrap();
        assert_eq!(ids(&io.to("r2b").fetch_sockets().await), set(&[&bid, &cid]));
        io.to("r2b").emit("m", "r2b").unwrap();

        io.to("r1").sockets_leave(Room::from("r1")).unwrap();
        assert!(ids(&io.to("r1").fetch_sockets().await).is_empty());
        assert_eq!(rooms(&a), set(&[&aid]));
        io.to("r1").emit("m", "nobody").unwrap();

        io.of("/").sockets_join(vec!["all", "every"]).unwrap();
        assert_eq!(
            ids(&io.to("every").fetch_sockets().await),
            set(&[&aid, &bid, &cid])
        );
        io.to("all").emit("m", "all").unwrap();

        io.to("r3").disconnect_sockets(false).unwrap();
        assert_eq!(
            notes.next("disconnect").await,
            json!([cid, "server namespace disconnect"])
        );
        assert_eq!(io.of("/").socket_count(), 2);
        assert_eq!(ids(&io.to("r2").fetch_sockets().await), set(&[&bid]));
        io.emit("end", &()).unwrap();

        let summary = client.ok().await;
        assert_eq!(summary["A"], json!([["m", "all"]]));
        assert_eq!(summary["B"], json!([["m", "r2b"], ["m", "all"]]));
        assert_eq!(
            summary["C"],
            json!([
                ["m", "r2b"],
                ["m", "all"],
                ["disconnect", "io server disconnect"]
            ])
        );
    })
    .await;
}
