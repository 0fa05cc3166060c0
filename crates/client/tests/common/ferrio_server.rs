//! The Ferrio counterpart of `interop/client/server.mjs`: the same options, namespaces,
//! handlers and printed lines (see the script's header), served in this process on a thread of
//! its own so that dropping it is a kill: every connection and session ends at once.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use ferrio::{
    AckSender, AllowRequest, Args, ConnectError, DisconnectReason, Event, RecoveryConfig, SocketIo,
    SocketIoConfig, SocketRef, State, Transports,
};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

/// A running Ferrio server and the lines it prints; dropping it kills it.
pub struct FerrioServer {
    pub port: u16,
    lines: mpsc::UnboundedReceiver<String>,
    kill: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FerrioServer {
    /// Starts the server with the options of `server.mjs` (`tracePackets` is ignored).
    pub fn start(options: &Value) -> Self {
        let port = options["port"].as_u64().map_or(0, |p| p as u16);
        // The previous server on this port (a restart) was joined when dropped, so its
        // listener is closed; std sets SO_REUSEADDR, so its old connections do not matter.
        let public = TcpListener::bind(("127.0.0.1", port)).expect("bind the Ferrio server");
        let port = public.local_addr().expect("local address").port();
        let (tx, lines) = mpsc::unbounded_channel();
        let (kill, killed) = oneshot::channel::<()>();
        let options = options.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let io = build(&options, Out(tx));
                let run = async {
                    match options.get("tls") {
                        None => ferrio::serve(public, io.service(), std::future::pending()).await,
                        Some(tls) => {
                            let inner = TcpListener::bind("127.0.0.1:0")?;
                            let inner_port = inner.local_addr()?.port();
                            let serve = ferrio::serve(inner, io.service(), std::future::pending());
                            tokio::try_join!(serve, tls_terminator(public, inner_port, tls))
                                .map(|_| ())
                        }
                    }
                };
                tokio::select! {
                    r = run => r.expect("Ferrio server failed"),
                    _ = killed => {}
                }
            });
            // Dropping the runtime here drops every task: listeners, connections, sessions.
        });
        FerrioServer {
            port,
            lines,
            kill: Some(kill),
            thread: Some(thread),
        }
    }

    /// The next printed line, or `None` once the server is gone.
    pub async fn line(&mut self) -> Option<String> {
        self.lines.recv().await
    }
}

impl Drop for FerrioServer {
    fn drop(&mut self) {
        drop(self.kill.take());
        if let Some(thread) = self.thread.take() {
            // Waits for the runtime to be dropped: when this returns, the port is free and
            // every connection closed, as after a process kill.
            let _ = thread.join();
        }
    }
}

/// Where the handlers print (the Node script's stdout).
#[derive(Clone)]
struct Out(mpsc::UnboundedSender<String>);

impl Out {
    fn print(&self, line: String) {
        let _ = self.0.send(line);
    }
}

/// What every handler shares.
#[derive(Clone)]
struct Ctx {
    out: Out,
    /// `<nsp>:<n>` of the `retry-me` events whose first ack was withheld.
    seen: Arc<Mutex<HashSet<String>>>,
}

fn build(options: &Value, out: Out) -> SocketIo {
    let ms =
        |key: &str, default: u64| Duration::from_millis(options[key].as_u64().unwrap_or(default));
    let mut config = SocketIoConfig::default();
    config.engine.session.ping_interval = ms("pingInterval", 25_000);
    config.engine.session.ping_timeout = ms("pingTimeout", 20_000);
    if let Some(list) = options["transports"].as_array() {
        let has = |t: &str| list.iter().any(|v| v == t);
        let mut transports = Transports::default();
        transports.polling = has("polling");
        transports.websocket = has("websocket");
        config.engine.transports = transports;
    }
    if let Some(path) = options["path"].as_str() {
        config.engine.path = path.to_owned();
    }
    // Called for each new Engine.IO connection (a handshake), never for an upgrade.
    let engine_out = out.clone();
    config.engine.allow_request = Some(AllowRequest::new(move |handshake| {
        let transport = handshake
            .query
            .get("transport")
            .cloned()
            .unwrap_or_default();
        engine_out.print(format!("engine {transport}"));
        async { Ok(()) }
    }));
    let mut builder = SocketIo::builder().config(config).with_state(Ctx {
        out,
        seen: Arc::default(),
    });
    if options["recovery"].as_bool() == Some(true) {
        builder = builder.connection_state_recovery(RecoveryConfig::default());
    }
    if options["parser"] == "msgpack" {
        builder = builder.parser(ferrio::Parser::MsgPack);
    }
    let io = builder.build();
    io.ns("/private", on_connection)
        .with(async |socket: SocketRef| {
            if socket.handshake().auth()["token"] == "good" {
                return Ok(());
            }
            Err(ConnectError::new("not authorized")
                .with_data(json!({"reason": "bad token", "code": 42})))
        });
    for name in ["/", "/chat", "/admin"] {
        io.ns(name, on_connection);
    }
    io
}

async fn on_connection(socket: SocketRef, State(ctx): State<Ctx>) {
    let nsp = socket.ns_name().to_owned();
    let auth = socket.handshake().auth().clone();
    ctx.out.print(format!(
        "connect {nsp} {} {} {auth}",
        socket.id(),
        socket.transport()
    ));
    if socket.transport() == "polling" {
        watch_upgrade(socket.clone(), ctx.out.clone());
    }
    socket.on_disconnect(
        async |s: SocketRef, reason: DisconnectReason, State(ctx): State<Ctx>| {
            ctx.out
                .print(format!("disconnect {} {reason}", s.ns_name()));
        },
    );
    socket.on_any(
        async |s: SocketRef, Event(name): Event, args: Args, State(ctx): State<Ctx>| {
            ctx.out
                .print(format!("event {} {name} {}", s.ns_name(), args_json(&args)));
        },
    );
    let _ = socket.emit(
        "welcome",
        &json!({"nsp": nsp, "id": socket.id().as_str(), "auth": auth}),
    );

    socket.on("echo", async |s: SocketRef, args: Args| {
        let _ = s.emit("echo", &args);
    });
    socket.on("ack", async |ack: AckSender, args: Args| {
        let _ = ack.send(&args);
    });
    socket.on("handshake", async |s: SocketRef, ack: AckSender| {
        let h = s.handshake();
        let header = h.headers().get("x-test").and_then(|v| v.to_str().ok());
        let _ = ack.send(&json!({ "query": h.query().get("k"), "header": header }));
    });
    socket.on(
        "ask",
        async |s: SocketRef, args: Args, State(ctx): State<Ctx>| {
            let payload = args.deserialize_arg::<Value>(0).and_then(Result::ok);
            let answer = s
                .timeout(Duration::from_secs(5))
                .emit_with_ack::<_, Value>("question", &payload.unwrap_or(Value::Null))
                .await;
            // The answer's arguments as a list. A typed ack reads one argument as itself, so a
            // single argument that is a list prints as its elements: no test answers with one.
            let out = match answer {
                Ok(Value::Array(list)) => Value::Array(list),
                Ok(one) => json!([one]),
                Err(e) => json!({"error": e.to_string()}),
            };
            ctx.out.print(format!("answer {} {out}", s.ns_name()));
            let _ = s.emit("answer", &out);
        },
    );
    socket.on(
        "retry-me",
        async |s: SocketRef, ack: AckSender, args: Args, State(ctx): State<Ctx>| {
            if !ack.is_requested() {
                return;
            }
            let n = args
                .deserialize_arg::<Value>(0)
                .and_then(Result::ok)
                .unwrap_or(Value::Null);
            let first = ctx
                .seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(format!("{}:{n}", s.ns_name()));
            if first {
                ctx.out.print(format!("withheld {n}"));
                return;
            }
            ctx.out.print(format!("acked {n}"));
            let _ = ack.send(&("ok", n));
        },
    );
    socket.on("server-disconnect", async |s: SocketRef| {
        s.disconnect(false)
    });
    socket.on("close-transport", async |s: SocketRef| s.close_connection());
    socket.on("emit-offsets", async |s: SocketRef, args: Args| {
        let count = args.deserialize_arg::<u64>(0).and_then(Result::ok);
        for i in 0..count.unwrap_or(0) {
            let _ = s.emit("seq", &i);
        }
    });
}

/// Prints `upgrade <nsp> websocket` once the connection has moved to WebSocket. Ferrio has no
/// upgrade notification (Node's `socket.conn.on("upgrade")`), so this looks at the transport
/// every few milliseconds; the tests still wait on the printed line, not on time.
fn watch_upgrade(socket: SocketRef, out: Out) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        loop {
            tick.tick().await;
            if !socket.connected() {
                return;
            }
            if socket.transport() == "websocket" {
                out.print(format!("upgrade {} websocket", socket.ns_name()));
                return;
            }
        }
    });
}

/// The arguments as `server.mjs` prints them: a JSON list, binary as `{"bin": [bytes]}`.
fn args_json(args: &Args) -> Value {
    match args {
        Args::Text(raw) => raw
            .iter()
            .map(|r| serde_json::from_slice(r).unwrap_or(Value::Null))
            .collect(),
        Args::Binary {
            values,
            attachments,
        } => values.iter().map(|v| with_bytes(v, attachments)).collect(),
        Args::Values(values) => values.iter().map(dyn_json).collect(),
    }
}

/// A value as `server.mjs` prints it: binary as `{"bin": [bytes]}`.
fn dyn_json(v: &ferrio_proto::value::Value) -> Value {
    use ferrio_proto::value::Value as V;
    match v {
        V::Binary(b) => serde_json::json!({ "bin": b.to_vec() }),
        V::Array(items) => Value::Array(items.iter().map(dyn_json).collect()),
        V::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), dyn_json(v)))
                .collect(),
        ),
        other => serde_json::from_slice(&other.to_json()).unwrap_or(Value::Null),
    }
}

/// `v` with each attachment placeholder replaced by `{"bin": [bytes]}`.
fn with_bytes(v: &Value, attachments: &[bytes::Bytes]) -> Value {
    match v {
        Value::Object(map) if map.get("_placeholder") == Some(&Value::Bool(true)) => {
            let bin = map["num"]
                .as_u64()
                .and_then(|n| attachments.get(n as usize))
                .map(|b| b.to_vec())
                .unwrap_or_default();
            json!({ "bin": bin })
        }
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), with_bytes(v, attachments)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        Value::Array(list) => list.iter().map(|v| with_bytes(v, attachments)).collect(),
        other => other.clone(),
    }
}

/// Terminates TLS in front of the plain server, as a deployment's reverse proxy does
/// (`ferrio::serve` speaks plain HTTP): each TLS connection to `public` is piped to
/// `127.0.0.1:inner_port`.
async fn tls_terminator(public: TcpListener, inner_port: u16, tls: &Value) -> std::io::Result<()> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let pem = |key: &str| tls[key].as_str().unwrap_or_default().as_bytes().to_vec();
    let cert = CertificateDer::from_pem_slice(&pem("cert")).expect("certificate PEM");
    let key = PrivateKeyDer::from_pem_slice(&pem("key")).expect("key PEM");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .expect("TLS configuration");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    public.set_nonblocking(true)?;
    let public = tokio::net::TcpListener::from_std(public)?;
    loop {
        let (stream, _) = public.accept().await?;
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            // A client that refuses the certificate ends here, as it would at Node's server.
            let Ok(mut tls) = acceptor.accept(stream).await else {
                return;
            };
            let Ok(mut plain) = tokio::net::TcpStream::connect(("127.0.0.1", inner_port)).await
            else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
        });
    }
}
