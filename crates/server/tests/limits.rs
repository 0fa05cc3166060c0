//! Limits a client cannot push past: namespaces per connection.

mod common;

use common::raw::{RawWs, t};
use common::{Server, builder_with};
use ferrio::{Args, SocketIoConfig, SocketRef};

/// A connection may join at most `max_namespaces_per_connection` namespaces (each one a socket
/// with its own task); past it a CONNECT is refused with a CONNECT_ERROR, the connection and
/// its sockets stay, and leaving one makes room again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_per_connection_are_bounded() {
    let mut config = SocketIoConfig::default();
    config.max_namespaces_per_connection = 3;
    let io = builder_with(config).build();
    io.ns("/", async |socket: SocketRef| {
        socket.on("echo", async |socket: SocketRef, args: Args| {
            socket.emit("echo", &args).unwrap();
        });
    });
    io.dyn_ns("/room-{id}", async |_: SocketRef| {});
    let server = Server::start(io);
    let mut c = RawWs::open(server.addr).await;
    c.join().await;
    for n in 1..=2 {
        c.send(&t(&format!("0/room-{n},"))).await;
        assert!(
            c.recv()
                .await
                .starts_with(&format!(r#"0/room-{n},{{"sid":"#))
        );
    }
    c.send(&t("0/room-3,")).await;
    assert_eq!(
        c.recv().await,
        r#"4/room-3,{"message":"Too many namespaces"}"#
    );
    c.echo("still connected").await;
    c.send(&t("1/room-1,")).await;
    c.send(&t("0/room-3,")).await;
    assert!(c.recv().await.starts_with(r#"0/room-3,{"sid":"#));
}

/// Children of a dynamic namespace are removed once empty, so a client naming ever new ones
/// cannot grow the server's memory; a child with sockets stays, and a name used again gets a
/// fresh child with the same handlers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_dynamic_children_are_removed() {
    let io = builder_with(SocketIoConfig::default()).build();
    io.ns("/", async |_: SocketRef| {});
    io.dyn_ns("/room-{id}", async |socket: SocketRef| {
        socket.on("echo", async |socket: SocketRef, args: Args| {
            socket.emit("echo", &args).unwrap();
        });
    });
    let server = Server::start(io);
    let mut c = RawWs::open(server.addr).await;
    c.join().await;
    for n in 0..50 {
        c.send(&t(&format!("0/room-{n},"))).await;
        assert!(
            c.recv()
                .await
                .starts_with(&format!(r#"0/room-{n},{{"sid":"#))
        );
        c.send(&t(&format!("1/room-{n},"))).await;
    }
    c.send(&t("0/room-keep,")).await;
    assert!(c.recv().await.starts_with(r#"0/room-keep,{"sid":"#));
    server
        .wait_until("empty children removed", |io| {
            let mut names = io.namespaces();
            names.sort();
            names == ["/", "/room-keep"]
        })
        .await;
    // The same name again: a new child, with the handlers of the dynamic namespace.
    c.send(&t("0/room-7,")).await;
    assert!(c.recv().await.starts_with(r#"0/room-7,{"sid":"#));
    c.send(&t(r#"2/room-7,["echo","again"]"#)).await;
    assert_eq!(c.recv().await, r#"2/room-7,["echo","again"]"#);
}
