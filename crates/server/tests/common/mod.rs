//! Shared setup of the Socket.IO integration tests: a server on 127.0.0.1:0, the three
//! transport modes of the interop scenarios, the `interop/sio/client.mjs` runner, and a probe
//! that lets handlers report to the test.

#![allow(dead_code)]

pub mod raw;

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrio::{Data, Parser, SocketIo, SocketIoBuilder, SocketIoConfig, SocketRef, State};
use ferrio_testkit::node::NodeProcess;
use ferrio_testkit::within;
use futures_util::FutureExt;
use futures_util::future::join_all;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// How the JS client talks to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `transports: ["websocket"]`.
    WebSocket,
    /// `transports: ["polling"]`.
    Polling,
    /// The default: polling, then the upgrade to WebSocket (the scenarios wait for it).
    Upgrade,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::WebSocket, Mode::Polling, Mode::Upgrade];

    /// The mode argument of `client.mjs`.
    pub fn arg(self) -> &'static str {
        match self {
            Mode::WebSocket => "websocket",
            Mode::Polling => "polling",
            Mode::Upgrade => "upgrade",
        }
    }

    /// The transport the client ends up on.
    pub fn transport(self) -> &'static str {
        match self {
            Mode::Polling => "polling",
            Mode::WebSocket | Mode::Upgrade => "websocket",
        }
    }
}

tokio::task_local! {
    /// The packet format of the run a test is in (see [`for_each_mode`]).
    static PARSER: Parser;
}

/// The packet format of the current run: the server's [`builder`] and the JS client use it.
pub fn parser() -> Parser {
    PARSER.try_with(|p| *p).unwrap_or_default()
}

/// The environment that makes a script under `interop/sio` use the current run's packet
/// format: `SIO_PARSER=msgpack` or `SIO_PARSER=default`.
pub fn parser_env() -> (&'static str, &'static str) {
    let name = if parser() == Parser::MsgPack {
        "msgpack"
    } else {
        "default"
    };
    ("SIO_PARSER", name)
}

/// Runs `f` for the three modes and both packet formats (the default parser and
/// socket.io-msgpack-parser) at once, each with its own server; every run goes to the end,
/// then the failures are reported together, each with its mode and format.
pub async fn for_each_mode<F, Fut>(f: F)
where
    F: Fn(Mode) -> Fut,
    Fut: Future<Output = ()>,
{
    run_modes(&[Parser::Default, Parser::MsgPack], f).await
}

/// As [`for_each_mode`], with the default parser only (for scenarios about the text format
/// itself, or too heavy to run twice at once).
pub async fn for_each_mode_json<F, Fut>(f: F)
where
    F: Fn(Mode) -> Fut,
    Fut: Future<Output = ()>,
{
    run_modes(&[Parser::Default], f).await
}

async fn run_modes<F, Fut>(parsers: &[Parser], f: F)
where
    F: Fn(Mode) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut runs = Vec::new();
    for &p in parsers {
        for mode in Mode::ALL {
            let run = PARSER.scope(p, AssertUnwindSafe(f(mode)).catch_unwind());
            runs.push(run.map(move |r| (mode, p, r)));
        }
    }
    let failures: Vec<String> = join_all(runs)
        .await
        .into_iter()
        .filter_map(|(mode, p, r)| {
            let e = r.err()?;
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "non-string panic".to_owned());
            Some(format!("[{} {}] {msg}", mode.arg(), parser_name(p)))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn parser_name(p: Parser) -> &'static str {
    match p {
        Parser::MsgPack => "msgpack",
        _ => "default parser",
    }
}

/// The builder the tests start from: Node's defaults except shorter heartbeats (a dead
/// client is noticed in under 2 s) and a 5 s connect timeout.
pub fn builder() -> SocketIoBuilder {
    builder_with(SocketIoConfig::default())
}

/// [`builder`] from `config` (its heartbeat and connect timeout replaced).
pub fn builder_with(config: SocketIoConfig) -> SocketIoBuilder {
    SocketIo::builder()
        .config(config)
        .parser(parser())
        .ping_interval(Duration::from_millis(500))
        .ping_timeout(Duration::from_millis(1000))
        .connect_timeout(Duration::from_secs(5))
}

/// A [`SocketIo`] served on 127.0.0.1 by a spawned task; stopped when dropped.
pub struct Server {
    pub io: SocketIo,
    pub addr: SocketAddr,
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Serves `io` on a free port.
    pub fn start(io: SocketIo) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        Server::serve(io, listener)
    }

    /// Serves `io` on `port` again (after a restart): the old listener is closed, but its
    /// port may still be held for a moment by connections that are closing, so the bind is
    /// retried for at most 5 s.
    pub async fn start_on(io: SocketIo, port: u16) -> Server {
        let listener = within(5, "binding the same port again", async {
            loop {
                match TcpListener::bind(("127.0.0.1", port)) {
                    Ok(l) => return l,
                    Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(e) => panic!("bind 127.0.0.1:{port}: {e}"),
                }
            }
        })
        .await;
        Server::serve(io, listener)
    }

    fn serve(io: SocketIo, listener: TcpListener) -> Server {
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(ferrio::serve(listener, io.service(), async {
            let _ = stopped.await;
        }));
        Server {
            io,
            addr,
            url: format!("http://{addr}"),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Closes every connection (`server shutting down`), stops accepting and waits until the
    /// listener is closed.
    pub async fn stop(mut self) {
        self.io.close();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            within(15, "the server task to end", task)
                .await
                .expect("server task")
                .expect("serve");
        }
    }

    /// The socket with this id in namespace `ns`.
    pub fn socket_in(&self, ns: &str, id: &str) -> SocketRef {
        self.io
            .of(ns)
            .all_sockets()
            .into_iter()
            .find(|s| s.id().as_str() == id)
            .unwrap_or_else(|| panic!("no socket {id} in {ns}"))
    }

    /// The socket with this id in the main namespace.
    pub fn socket(&self, id: &str) -> SocketRef {
        self.socket_in("/", id)
    }

    /// Waits (at most 5 s, checking every 10 ms) until `cond` holds.
    pub async fn wait_until(&self, what: &str, mut cond: impl FnMut(&SocketIo) -> bool) {
        within(5, what, async {
            while !cond(&self.io) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.io.close();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// `node interop/sio/client.mjs <url> <mode> <scenario> <arg>`; killed when dropped.
pub struct Client {
    node: NodeProcess,
    label: String,
    seen: Vec<String>,
}

impl Client {
    pub fn spawn(server: &Server, mode: Mode, scenario: &str, arg: Value) -> Client {
        Client::spawn_url(&server.url, mode, scenario, arg)
    }

    /// As [`Client::spawn`], for a server at `url`.
    pub fn spawn_url(url: &str, mode: Mode, scenario: &str, arg: Value) -> Client {
        let arg = arg.to_string();
        let p = parser();
        let node = NodeProcess::spawn_with_env(
            "sio/client.mjs",
            &[url, mode.arg(), scenario, &arg],
            &[parser_env()],
        );
        Client {
            node,
            label: format!("{scenario} over {} ({})", mode.arg(), parser_name(p)),
            seen: Vec::new(),
        }
    }

    /// Waits (at most 20 s) for a line `<prefix> <rest>` and returns the rest split on
    /// spaces. A `fail` line, or the end of the output, fails the test with what was printed.
    pub async fn expect(&mut self, prefix: &str) -> Vec<String> {
        let rest = self.expect_raw(prefix).await;
        rest.split(' ').map(str::to_owned).collect()
    }

    /// As [`Client::expect`], the rest unsplit.
    pub async fn expect_raw(&mut self, prefix: &str) -> String {
        let want = format!("{prefix} ");
        let label = self.label.clone();
        let wait = async {
            loop {
                let Some(line) = self.node.line().await else {
                    panic!(
                        "{label}: the script ended before `{prefix}`: {:?}",
                        self.seen
                    );
                };
                self.seen.push(line.clone());
                if line.starts_with("fail ") {
                    panic!("{label}: {line}\noutput: {:?}", self.seen);
                }
                if let Some(rest) = line.strip_prefix(&want) {
                    return rest.to_owned();
                }
                if line == prefix {
                    return String::new();
                }
            }
        };
        match tokio::time::timeout(Duration::from_secs(20), wait).await {
            Ok(v) => v,
            Err(_) => panic!(
                "{label}: no `{prefix}` within 20 s; output: {:?}",
                self.seen
            ),
        }
    }

    /// Waits for `ok <json>` and the exit of the script; returns the summary.
    pub async fn ok(mut self) -> Value {
        let json = self.expect_raw("ok").await;
        let label = self.label.clone();
        let (exited_ok, rest) = self.node.finish(10).await;
        assert!(exited_ok, "{label}: exit status after `ok`: {rest:?}");
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{label}: bad summary {json}: {e}"))
    }
}

/// Lets handlers report to the test: give [`Probe`] to the builder with `with_state`, take it
/// with the `State` extractor, and read the reports from [`Notes`] in order.
#[derive(Clone, Debug)]
pub struct Probe(mpsc::UnboundedSender<(String, Value)>);

impl Probe {
    pub fn new() -> (Probe, Notes) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Probe(tx),
            Notes {
                rx,
                kept: Vec::new(),
            },
        )
    }

    /// Reports `value` under `kind`.
    pub fn note(&self, kind: &str, value: impl Into<Value>) {
        let _ = self.0.send((kind.to_owned(), value.into()));
    }
}

/// The reports of a [`Probe`].
#[derive(Debug)]
pub struct Notes {
    rx: mpsc::UnboundedReceiver<(String, Value)>,
    kept: Vec<(String, Value)>,
}

impl Notes {
    /// The next report of `kind` (at most 10 s); reports of other kinds are kept for later.
    pub async fn next(&mut self, kind: &str) -> Value {
        if let Some(i) = self.kept.iter().position(|(k, _)| k == kind) {
            return self.kept.remove(i).1;
        }
        within(10, &format!("a `{kind}` report"), async {
            loop {
                let (k, v) = self.rx.recv().await.expect("probe alive");
                if k == kind {
                    return v;
                }
                self.kept.push((k, v));
            }
        })
        .await
    }

    /// Every report of `kind` so far, without waiting.
    pub fn drain(&mut self, kind: &str) -> Vec<Value> {
        while let Ok(x) = self.rx.try_recv() {
            self.kept.push(x);
        }
        let (matching, rest): (Vec<_>, Vec<_>) = self.kept.drain(..).partition(|(k, _)| k == kind);
        self.kept = rest;
        matching.into_iter().map(|(_, v)| v).collect()
    }
}

/// `{"$bin": hex}`, as `client.mjs` writes binary values.
pub fn bin(bytes: &[u8]) -> Value {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    serde_json::json!({ "$bin": hex })
}

/// What the handlers of the `ordering` scenario record (give it to the builder with
/// `with_state`): the sequence numbers, in the order their handlers started.
pub type SeqLog = Arc<Mutex<Vec<u64>>>;

/// The handlers of the `ordering` scenario: `seq` records its number, `count` answers how
/// many were recorded.
pub fn ordering_handlers(socket: &SocketRef) {
    socket.on(
        "seq",
        async |Data(n): Data<u64>, State(log): State<SeqLog>| {
            log.lock().unwrap().push(n);
        },
    );
    socket.on(
        "count",
        async |State(log): State<SeqLog>| -> Result<usize, String> {
            Ok(log.lock().unwrap().len())
        },
    );
}

/// Runs the `ordering` scenario with `count` events against `server` (its `/` with
/// [`ordering_handlers`], `log` in its state): every event reached its handler, in the order
/// sent, before the client's `count` ack; then `count` server emits reach the client in order.
pub async fn check_ordering(server: &Server, mode: Mode, count: u64, log: &SeqLog) {
    let mut client = Client::spawn(
        server,
        mode,
        "ordering",
        serde_json::json!({ "count": count }),
    );
    let id = client.expect("connected").await.remove(0);
    let acked = client.expect("sent").await.remove(0);
    assert_eq!(acked, count.to_string());
    {
        let log = log.lock().unwrap();
        assert_eq!(log.len() as u64, count);
        let first_bad = log.iter().enumerate().find(|&(i, &n)| n != i as u64);
        assert!(first_bad.is_none(), "out of order at {first_bad:?}");
    }
    let socket = server.socket(&id);
    for n in 0..count {
        socket.emit("s2c", &n).unwrap();
    }
    let summary = client.ok().await;
    assert_eq!(summary["received"], serde_json::json!(count));
}
