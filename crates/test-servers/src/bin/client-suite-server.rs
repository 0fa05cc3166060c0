//! `client-suite-server`: reproduces the Node server of the official `socket.io-client` test
//! suite (`packages/socket.io-client/test/support/server.ts`), contract in
//! `shared/reference/test-servers.md` section 2.
//!
//! `cargo run --release --bin client-suite-server -- --port 3210`

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use clap::Parser;
use ferrio::{
    AckSender, AllowRequest, Args, ConnectError, Data, RecoveryConfig, SocketIo, SocketRef,
};
use ferrio_test_servers::{init_tracing, shutdown_signal};
use serde_json::{Value, json};

/// Command line.
#[derive(Parser, Debug)]
#[command(about = "The server of the official socket.io-client test suite, in Ferrio")]
struct Cli {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 3210)]
    port: u16,
}

/// Which of the `abuff*` / `blob*` events a socket has seen.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<HashSet<&'static str>>>);

impl Seen {
    fn mark(&self, what: &'static str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(what);
    }

    fn has(&self, what: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(what)
    }
}

fn seen(socket: &SocketRef) -> Seen {
    socket.extensions().get::<Seen>().unwrap_or_default()
}

/// `{hello: "lol", message: <binary>, goodbye: "gotcha"}`.
fn is_json_buff(args: &Args) -> bool {
    let Args::Binary { values, .. } = args else {
        return false;
    };
    let Some(Value::Object(o)) = values.first() else {
        return false;
    };
    let message_is_binary = matches!(
        o.get("message"),
        Some(Value::Object(m)) if m.get("_placeholder") == Some(&Value::Bool(true))
    );
    o.get("hello") == Some(&json!("lol"))
        && o.get("goodbye") == Some(&json!("gotcha"))
        && message_is_binary
}

fn build() -> SocketIo {
    let mut config = ferrio::SocketIoConfig::default();
    config.engine.session.ping_interval = Duration::from_millis(2000);
    // A fixed 10 ms handshake delay: the client's connection-timeout tests rely on it.
    config.engine.allow_request = Some(AllowRequest::new(|_| async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Ok(())
    }));
    config.engine.cors = ferrio::CorsConfig::any();
    let io = SocketIo::builder()
        .config(config)
        .connection_state_recovery(RecoveryConfig::default())
        .build();

    io.ns("/foo", async |socket: SocketRef| {
        socket.on("getId", async |socket: SocketRef, ack: AckSender| {
            let _ = ack.send(socket.id().as_str());
        });
    });
    for ns in ["/timeout_socket", "/valid", "/asd"] {
        io.ns(ns, async || {});
    }
    io.ns("/abc", async |socket: SocketRef| {
        let _ = socket.emit("handshake", &socket.handshake().to_json());
    });
    io.ns("/no", async || {})
        .with(async |_| Err(ConnectError::new("Auth failed (custom namespace)")));
    io.ns("/", main_handlers).with(async |socket: SocketRef| {
        match socket.handshake().query().get("fail") {
            Some(v) if !v.is_empty() => Err(ConnectError::new("Auth failed (main namespace)")),
            _ => Ok(()),
        }
    });
    io
}

async fn main_handlers(socket: SocketRef) {
    socket.extensions().insert(Seen::default());
    socket.on("hi", async |s: SocketRef| {
        let _ = s.emit("hi", &());
    });
    socket.on("echo", async |ack: AckSender, mut args: Args| {
        if args.is_empty() {
            let _ = ack.send(&Value::Null);
        } else {
            args.truncate(1);
            let _ = ack.send(&args);
        }
    });
    socket.on("ack", async |s: SocketRef| {
        let answer = s
            .timeout(Duration::from_secs(60))
            .emit_with_ack::<_, (Value, Value)>("ack", &());
        if let Ok((a, b)) = answer.await {
            let truthy = |v: Option<&Value>| {
                !matches!(v, None | Some(Value::Null) | Some(Value::Bool(false)))
            };
            if a == json!(5) && truthy(b.get("test")) {
                let _ = s.emit("got it", &());
            }
        }
    });
    socket.on("getAckDate", async |ack: AckSender| {
        let _ = ack.send(&iso_now());
    });
    socket.on("getDate", async |s: SocketRef| {
        let _ = s.emit("takeDate", &iso_now());
    });
    socket.on("getDateObj", async |s: SocketRef| {
        let _ = s.emit("takeDateObj", &json!({ "date": iso_now() }));
    });
    socket.on("getUtf8", async |s: SocketRef| {
        for text in [
            "てすと",
            "Я Б Г Д Ж Й",
            "Ä ä Ü ü ß",
            "utf8 — string",
            "utf8 — string",
        ] {
            let _ = s.emit("takeUtf8", text);
        }
    });
    socket.on("false", async |s: SocketRef| {
        let _ = s.emit("false", &false);
    });
    socket.on("doge", async |s: SocketRef| {
        let _ = s.emit("doge", &Bytes::from_static(b"asdfasdf"));
    });
    socket.on("buffa", async |s: SocketRef, args: Args| {
        if args.is_binary(0) {
            let _ = s.emit("buffack", &());
        }
    });
    socket.on("jsonbuff", async |s: SocketRef, args: Args| {
        if is_json_buff(&args) {
            let _ = s.emit("jsonbuff-ack", &());
        }
    });
    socket.on("abuff1", async |s: SocketRef, args: Args| {
        if args.is_binary(0) {
            seen(&s).mark("abuff1");
        }
    });
    socket.on("abuff2", async |s: SocketRef| {
        if seen(&s).has("abuff1") {
            let _ = s.emit("abuff2-ack", &());
        }
    });
    socket.on("blob", async |s: SocketRef, args: Args| {
        if args.is_binary(0) {
            let _ = s.emit("back", &());
        }
    });
    socket.on("jsonblob", async |s: SocketRef, args: Args| {
        if is_json_buff(&args) {
            let _ = s.emit("jsonblob-ack", &());
        }
    });
    socket.on("blob1", async |s: SocketRef, args: Args| {
        if args.is_binary(0) {
            seen(&s).mark("blob1");
        }
    });
    socket.on("blob2", async |s: SocketRef, Data(a): Data<Value>| {
        let seen = seen(&s);
        if seen.has("blob1") && a == json!("second") {
            seen.mark("blob2");
        }
    });
    socket.on("blob3", async |s: SocketRef, args: Args| {
        let seen = seen(&s);
        if args.is_binary(0) && seen.has("blob1") && seen.has("blob2") {
            let _ = s.emit("blob3-ack", &());
        }
    });
    socket.on("getbin", async |s: SocketRef| {
        let _ = s.emit("takebin", &Bytes::from_static(b"asdfasdf"));
    });
    socket.on("getHandshake", async |s: SocketRef, ack: AckSender| {
        let _ = ack.send(&s.handshake().to_json());
    });
    socket.on("getId", async |s: SocketRef, ack: AckSender| {
        let _ = ack.send(s.id().as_str());
    });
}

/// The current time as JavaScript's `Date.prototype.toJSON` writes it.
fn iso_now() -> String {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    init_tracing();
    let cli = Cli::parse();
    let io = build();
    // `localhost` may resolve to ::1 or 127.0.0.1: listen on both loopbacks.
    let v4 = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], cli.port)))?;
    let port = v4.local_addr()?.port();
    let v6 =
        std::net::TcpListener::bind(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port))).ok();
    println!("listening on 127.0.0.1:{port}");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let extra = v6.map(|l| tokio::spawn(ferrio::serve(l, io.service(), wait(stop_rx.clone()))));
    let main = ferrio::serve(v4, io.service(), wait(stop_rx));
    let io2 = io.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        io2.close();
        let _ = stop_tx.send(true);
    });
    main.await?;
    if let Some(t) = extra {
        let _ = t.await;
    }
    Ok(())
}
