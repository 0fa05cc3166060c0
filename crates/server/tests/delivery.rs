//! Events at the edges of a socket's life, with raw Engine.IO clients that send as fast as
//! the protocol allows: an event sent the moment the CONNECT reply arrives reaches the
//! handler the connection handler registers; an event sent just before a DISCONNECT or a
//! transport close (in the same polling payload) still reaches its handler, as on Node, where
//! every received packet is dispatched before the close.

mod common;

use common::raw::{RawPolling, RawWs};
use common::{Notes, Probe, Server, builder};
use ferrio::{Args, Data, DisconnectReason, SocketRef, State};
use serde_json::json;

fn app() -> (Server, Notes) {
    let (probe, notes) = Probe::new();
    let io = builder().with_state(probe).build();
    io.ns("/", async |socket: SocketRef| {
        socket.on("echo", async |socket: SocketRef, args: Args| {
            socket.emit("echo", &args).unwrap();
        });
        socket.on("bye", async |Data(n): Data<u32>, State(p): State<Probe>| {
            p.note("bye", n)
        });
        socket.on_disconnect(async |reason: DisconnectReason, State(p): State<Probe>| {
            p.note("disconnect", reason.as_str());
        });
    });
    (Server::start(io), notes)
}

/// 100 times: join `/` and send `echo` as soon as the CONNECT reply is read; every echo
/// comes back (the handler lookup must not beat the connection handler).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_right_after_the_connect_reply() {
    let (server, _notes) = app();
    for n in 0..100 {
        let mut c = RawWs::open(server.addr).await;
        c.join().await;
        c.echo(&format!("at once {n}")).await;
    }
}

/// `42["bye",n]` and `41` in one POST: the `bye` handler runs, then the disconnect handler
/// with "client namespace disconnect"; `42["bye",n]` and the Engine.IO close `1` in one POST:
/// the handler runs, then "transport close".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_in_the_same_payload_as_the_end() {
    let (server, mut notes) = app();
    for n in 0..20u32 {
        let mut c = RawPolling::open(server.addr).await;
        c.join().await;
        let (end, reason) = if n % 2 == 0 {
            ("41", "client namespace disconnect")
        } else {
            ("1", "transport close")
        };
        c.post_raw(&format!("42[\"bye\",{n}]\x1e{end}")).await;
        assert_eq!(notes.next("disconnect").await, json!(reason), "round {n}");
        assert_eq!(
            notes.drain("bye"),
            [json!(n)],
            "round {n}: the bye handler ran"
        );
    }
}
