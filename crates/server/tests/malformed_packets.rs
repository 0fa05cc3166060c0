//! Malformed Socket.IO packets (`shared/reference/reliability.md` section 2.2) sent over raw
//! Engine.IO, on WebSocket and on polling: each one closes the connection that sent it, and
//! only that one; its socket and session are released; a control client on the same server
//! keeps working after every case. Packets the reference server accepts (unknown ack ids,
//! numeric event names, `"error"` and `"__proto__"` events, an unknown namespace) keep the
//! connection.

mod common;

use std::time::Duration;

use common::raw::{Frame, RawPolling, RawWs, b, t};
use common::{Client, Mode, Notes, Probe, Server, builder};
use ferrio::{Args, DisconnectReason, SocketRef, State};
use serde_json::json;

const PH0: &str = r#"{"_placeholder":true,"num":0}"#;
const PH1: &str = r#"{"_placeholder":true,"num":1}"#;

/// The cases that must close the connection: a name, whether the client joins `/` first,
/// and the messages (without the Engine.IO `4` prefix for text).
fn closing_cases() -> Vec<(String, bool, Vec<Frame>)> {
    let mut cases: Vec<(String, bool, Vec<Frame>)> = vec![
        ("type 7".into(), true, vec![t("7")]),
        ("type 9 with data".into(), true, vec![t(r#"9["echo"]"#)]),
        ("empty packet".into(), true, vec![t("")]),
        ("EVENT payload an object".into(), true, vec![t("2{}")]),
        ("EVENT payload a string".into(), true, vec![t(r#"2"echo""#)]),
        ("EVENT payload an empty array".into(), true, vec![t("2[]")]),
        ("EVENT without payload".into(), true, vec![t("2")]),
        (
            "EVENT name an object".into(),
            true,
            vec![t(r#"2[{"a":1}]"#)],
        ),
        ("EVENT name null".into(), true, vec![t("2[null]")]),
        ("truncated JSON".into(), true, vec![t(r#"2["echo""#)]),
        (
            "junk before the payload".into(),
            true,
            vec![t(r#"2abc["echo"]"#)],
        ),
        (
            "attachments without a dash".into(),
            true,
            vec![t(r#"5["echo"]"#)],
        ),
        ("attachments only the type".into(), true, vec![t("5")]),
        (
            "attachment count not a number".into(),
            true,
            vec![t(&format!(r#"5a-["echo",{PH0}]"#)), b(&[1])],
        ),
        (
            "negative attachment count".into(),
            true,
            vec![t(r#"5-1-["echo"]"#)],
        ),
        (
            "too many attachments (11)".into(),
            true,
            vec![t(&format!(
                r#"511-["echo",{}]"#,
                (0..11)
                    .map(|n| format!(r#"{{"_placeholder":true,"num":{n}}}"#))
                    .collect::<Vec<_>>()
                    .join(",")
            ))],
        ),
        (
            "huge attachment count".into(),
            true,
            vec![t(r#"51000000000-["echo"]"#)],
        ),
        (
            "placeholder out of range".into(),
            true,
            vec![t(&format!(r#"51-["echo",{PH1}]"#)), b(&[1])],
        ),
        (
            "placeholder num a string".into(),
            true,
            vec![t(r#"51-["echo",{"_placeholder":true,"num":"0"}]"#), b(&[1])],
        ),
        (
            "placeholder num negative".into(),
            true,
            vec![t(r#"51-["echo",{"_placeholder":true,"num":-1}]"#), b(&[1])],
        ),
        (
            "text while attachments are awaited".into(),
            true,
            vec![
                t(&format!(r#"52-["echo",{PH0},{PH1}]"#)),
                b(&[1]),
                t(r#"2["echo",1]"#),
            ],
        ),
        (
            "binary with no binary packet".into(),
            true,
            vec![b(&[1, 2, 3])],
        ),
        (
            "EVENT for a namespace not joined".into(),
            true,
            vec![t(r#"2/custom,["echo"]"#)],
        ),
        (
            "ACK for a namespace not joined".into(),
            true,
            vec![t("3/custom,1[]")],
        ),
        (
            "DISCONNECT for a namespace not joined".into(),
            true,
            vec![t("1/custom,")],
        ),
        ("duplicate CONNECT".into(), true, vec![t("0")]),
        (
            "ack id past u64".into(),
            true,
            vec![t(r#"299999999999999999999999["echo"]"#)],
        ),
        (
            "ack id 2^53".into(),
            true,
            vec![t(r#"29007199254740992["echo"]"#)],
        ),
        (
            "ACK id past u64".into(),
            true,
            vec![t("399999999999999999999999[]")],
        ),
        (
            "100000 nested arrays".into(),
            true,
            vec![t(&format!(
                r#"2["echo",{}{}]"#,
                "[".repeat(100_000),
                "]".repeat(100_000)
            ))],
        ),
        (
            "CONNECT_ERROR from the client".into(),
            true,
            vec![t(r#"4{"message":"x"}"#)],
        ),
        (
            "CONNECT payload a string".into(),
            true,
            vec![t(r#"0/custom,"str""#)],
        ),
        (
            "CONNECT payload an array".into(),
            true,
            vec![t("0/custom,[]")],
        ),
        (
            "EVENT before any CONNECT".into(),
            false,
            vec![t(r#"2["echo"]"#)],
        ),
        ("ACK before any CONNECT".into(), false, vec![t("30[]")]),
    ];
    for name in [
        "connect",
        "connect_error",
        "disconnect",
        "disconnecting",
        "newListener",
        "removeListener",
    ] {
        cases.push((
            format!("reserved event name {name}"),
            true,
            vec![t(&format!(r#"2["{name}"]"#))],
        ));
    }
    cases
}

/// Packets the reference accepts: after them the same connection still echoes.
fn harmless_cases() -> Vec<(&'static str, Vec<Frame>)> {
    vec![
        ("ACK for an unknown id", vec![t(r#"399["x"]"#)]),
        (
            "BINARY_ACK for an unknown id",
            vec![t(&format!("61-7[{PH0}]")), b(&[1])],
        ),
        ("numeric event name", vec![t(r#"2[1,"x"]"#)]),
        ("event named error", vec![t(r#"2["error","x"]"#)]),
        ("event named __proto__", vec![t(r#"2["__proto__"]"#)]),
        ("namespace without a trailing comma", vec![t("0/custom")]),
    ]
}

/// `/` echoes `echo` and greets the clients that bring a token (the JS `events` scenario);
/// `/custom` exists; every socket reports its disconnect reason.
fn app(ping: Duration) -> (Server, Notes) {
    let (probe, notes) = Probe::new();
    let io = builder()
        .ping_interval(ping)
        .ping_timeout(ping)
        .with_state(probe)
        .build();
    io.ns("/", async |socket: SocketRef| {
        let auth = socket.handshake().auth().clone();
        if auth.get("token").is_some() {
            socket
                .emit("welcome", &json!({ "ns": "/", "auth": auth }))
                .unwrap();
        }
        socket.on("echo", async |socket: SocketRef, args: Args| {
            socket.emit("echo", &args).unwrap();
        });
        socket.on_disconnect(
            async |socket: SocketRef, reason: DisconnectReason, State(p): State<Probe>| {
                p.note("disconnect", json!([socket.id().as_str(), reason.as_str()]));
            },
        );
    });
    io.ns("/custom", async |_: SocketRef| {});
    (Server::start(io), notes)
}

/// After a case: the bad connection's socket is gone and the control still answers.
async fn after_case(server: &Server, control: &mut RawWs, case: &str) {
    server
        .wait_until(&format!("{case}: connection released"), |io| {
            io.connection_count() == 1 && io.of("/").socket_count() == 1
        })
        .await;
    control.echo(case).await;
}

/// The disconnect report of the bad socket, with Node's reasons: "forced close" for a packet
/// that does not decode, "forced server close" for a valid packet in the wrong state.
async fn bad_socket_reason(notes: &mut Notes, id: &str, case: &str) {
    let report = notes.next("disconnect").await;
    assert_eq!(report[0], json!(id), "{case}: {report}");
    assert_protocol_reason(&report[1], case);
}

fn assert_protocol_reason(reason: &serde_json::Value, case: &str) {
    assert!(
        reason == &json!("forced close") || reason == &json!("forced server close"),
        "{case}: {reason}"
    );
}

/// Every closing case on its own raw WebSocket connection (the bad socket's disconnect reason
/// is Node's: see `bad_socket_reason`), then the harmless cases and an unknown namespace on live
/// connections, then the real JS client on the same server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_packets_over_websocket() {
    let (server, mut notes) = app(Duration::from_secs(20));
    let mut control = RawWs::open(server.addr).await;
    control.join().await;
    control.echo("start").await;

    for (case, join, frames) in closing_cases() {
        eprintln!("websocket: {case}");
        let mut bad = RawWs::open(server.addr).await;
        let id = if join { Some(bad.join().await) } else { None };
        for f in &frames {
            bad.send(f).await;
        }
        bad.closed(&case).await;
        if let Some(id) = id {
            bad_socket_reason(&mut notes, &id, &case).await;
        }
        after_case(&server, &mut control, &case).await;
    }

    for (case, frames) in harmless_cases() {
        eprintln!("websocket: {case}");
        let mut ok = RawWs::open(server.addr).await;
        ok.join().await;
        for f in &frames {
            ok.send(f).await;
        }
        if case == "namespace without a trailing comma" {
            assert!(ok.recv().await.starts_with(r#"0/custom,{"sid":"#), "{case}");
        }
        ok.echo(case).await;
    }

    // An unknown namespace is refused, the connection kept.
    let mut ok = RawWs::open(server.addr).await;
    ok.join().await;
    ok.send(&t("0/nowhere,")).await;
    assert_eq!(
        ok.recv().await,
        r#"4/nowhere,{"message":"Invalid namespace"}"#
    );
    ok.echo("after an unknown namespace").await;
    drop(ok);

    // The real JS client still works on this server.
    let mut client = Client::spawn(&server, Mode::WebSocket, "events", json!({}));
    let id = client.expect("connected").await.remove(0);
    server.socket(&id).emit("push", &1).unwrap();
    client.ok().await;
    control.echo("end").await;
}

/// The same cases over polling, each case's messages in one POST payload (binary as
/// `b<base64>`): the next GET finds the session gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_packets_over_polling() {
    let (server, mut notes) = app(Duration::from_secs(20));
    let mut control = RawWs::open(server.addr).await;
    control.join().await;

    for (case, join, frames) in closing_cases() {
        eprintln!("polling: {case}");
        let mut bad = RawPolling::open(server.addr).await;
        if join {
            bad.join().await;
        }
        bad.send(&frames).await;
        bad.closed(&case).await;
        if join {
            let report = notes.next("disconnect").await;
            assert_protocol_reason(&report[1], &case);
        }
        after_case(&server, &mut control, &case).await;
    }

    for (case, frames) in harmless_cases() {
        eprintln!("polling: {case}");
        let mut ok = RawPolling::open(server.addr).await;
        ok.join().await;
        ok.send(&frames).await;
        if case == "namespace without a trailing comma" {
            let res = ok.recv().await;
            assert!(res.text().starts_with(r#"40/custom,{"sid":"#), "{case}");
        }
        ok.echo(case).await;
    }
}

/// A binary packet that declares 2 attachments and gets 1, then silence: the partial packet
/// is held only while the connection lives; the ping timeout (200 + 200 ms here) closes it and
/// releases the socket and the session, on WebSocket and on polling. The control is the JS
/// client, which answers its pings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withheld_attachment_released_at_ping_timeout() {
    let (server, mut notes) = app(Duration::from_millis(200));
    let mut control = Client::spawn(&server, Mode::WebSocket, "events", json!({}));
    let control_id = control.expect("connected").await.remove(0);

    let mut bad = RawWs::open(server.addr).await;
    let id = bad.join().await;
    bad.send(&t(&format!(r#"52-["echo",{PH0},{PH1}]"#))).await;
    bad.send(&b(&[1, 2, 3])).await;
    assert_eq!(server.io.connection_count(), 2);
    // `bad` no longer reads, so it does not answer pings either.
    let report = notes.next("disconnect").await;
    assert_eq!(report, json!([id, "ping timeout"]));
    server
        .wait_until("the session released", |io| {
            io.connection_count() == 1 && io.of("/").socket_count() == 1
        })
        .await;
    bad.closed("the ping timeout").await;

    // The same over polling: the partial packet in one POST, then no GET.
    let mut bad = RawPolling::open(server.addr).await;
    bad.join().await;
    bad.send(&[t(&format!(r#"52-["echo",{PH0},{PH1}]"#)), b(&[1, 2, 3])])
        .await;
    let report = notes.next("disconnect").await;
    assert_eq!(report[1], json!("ping timeout"), "{report}");
    server
        .wait_until("the polling session released", |io| {
            io.connection_count() == 1 && io.of("/").socket_count() == 1
        })
        .await;

    server.socket(&control_id).emit("push", &1).unwrap();
    control.ok().await;
}

#[test]
fn base64_encodes() {
    use common::raw::base64;
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(&[1, 2, 3, 255]), "AQID/w==");
}
