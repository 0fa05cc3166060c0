//! Interop with the real `engine.io-client` (pinned in `interop/package-lock.json`): an
//! in-process ferrio-engine with the [`Echo`] handler, against the scripts of
//! `interop/engine/`, on polling, WebSocket, and polling upgraded to WebSocket.
//!
//! Needs `npm ci` in `interop/` (`cargo xtask npm`).

use std::net::TcpListener;
use std::time::Duration;

use ferrio_engine::{
    CloseReason, Engine, EngineConfig, EngineHandler, EngineSocket, Message, Sid, TransportKind,
};
use ferrio_test_servers::echo::Echo;
use ferrio_testkit::node::NodeProcess;
use ferrio_testkit::within;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// The reasons `engine.io-client` gives when the server ends the session.
const SERVER_CLOSE_REASONS: [&str; 2] = ["transport close", "transport error"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_polling() {
    echo("polling", "polling").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_websocket() {
    echo("websocket", "websocket").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_upgrade() {
    echo("upgrade", "polling").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_close_polling() {
    server_close("polling", TransportKind::Polling).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_close_websocket() {
    server_close("websocket", TransportKind::WebSocket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_close_upgrade() {
    server_close("upgrade", TransportKind::WebSocket).await;
}

/// `echo-client.mjs`: text, UTF-8 text and binary echoed, two heartbeats answered, then a
/// client close that the server sees as `transport close` and that removes the session.
async fn echo(mode: &str, opened_on: &str) {
    let mut server = Server::start();
    let node = NodeProcess::spawn("engine/echo-client.mjs", &[&server.url, mode]);
    let (ok, lines) = node.finish(15).await;
    assert!(ok, "echo-client.mjs {mode} failed: {lines:?}");
    assert_eq!(
        lines.first().map(String::as_str),
        Some(format!("open {opened_on}").as_str()),
        "{lines:?}"
    );
    let summary = lines
        .iter()
        .find_map(|l| l.strip_prefix("ok "))
        .unwrap_or_else(|| panic!("no `ok` line: {lines:?}"));
    assert!(
        summary.contains(r#""transport":"websocket""#) == (mode != "polling"),
        "wrong final transport: {summary}"
    );

    let (sid, reason) = server.next_disconnect().await;
    assert!(
        summary.contains(&format!(r#""sid":"{sid}""#)),
        "{sid} is not the client's session: {summary}"
    );
    assert_eq!(reason, CloseReason::TransportClose, "{mode}");
    server.wait_no_sessions().await;
}

/// `server-close.mjs`: the server closes the session through its [`EngineSocket`]; the JS
/// client sees a server-side close and its process ends.
async fn server_close(mode: &str, transport: TransportKind) {
    let mut server = Server::start();
    let mut node = NodeProcess::spawn("engine/server-close.mjs", &[&server.url, mode]);
    let line = within(10, "the `open <sid>` line", node.line())
        .await
        .expect("server-close.mjs ended without output");
    let sid = line
        .strip_prefix("open ")
        .unwrap_or_else(|| panic!("server-close.mjs {mode}: {line}"));
    let sid = Sid::parse(sid).expect("a valid sid");
    let socket = server.engine.socket(sid).expect("the session is open");
    // The client reports the upgrade once it has sent `5`; the server may take a moment
    // more to read it.
    within(5, "the server side of the transport", async {
        while socket.transport() != transport {
            tokio::task::yield_now().await;
        }
    })
    .await;

    socket.close();

    let (ok, lines) = node.finish(15).await;
    assert!(ok, "server-close.mjs {mode} failed: {lines:?}");
    let reason = lines
        .iter()
        .find_map(|l| l.strip_prefix("close "))
        .unwrap_or_else(|| panic!("no `close` line: {lines:?}"));
    eprintln!("server-close {mode}: engine.io-client close reason {reason:?}");
    assert!(
        SERVER_CLOSE_REASONS.contains(&reason),
        "{mode}: client close reason {reason:?}"
    );
    assert_eq!(
        server.next_disconnect().await,
        (sid, CloseReason::ForcedClose)
    );
    server.wait_no_sessions().await;
}

/// Echo, plus a report of every session end.
struct Recording {
    disconnects: mpsc::UnboundedSender<(Sid, CloseReason)>,
}

impl EngineHandler for Recording {
    type Session = ();

    fn on_connect(&self, socket: &EngineSocket) {
        Echo.on_connect(socket);
    }

    fn on_message(&self, state: &mut (), socket: &EngineSocket, message: Message) {
        Echo.on_message(state, socket, message);
    }

    fn on_disconnect(&self, state: (), socket: &EngineSocket, reason: CloseReason) {
        let _ = self.disconnects.send((socket.sid(), reason.clone()));
        Echo.on_disconnect(state, socket, reason);
    }
}

/// An engine served on 127.0.0.1:0 by a spawned task; stopped when dropped.
struct Server {
    engine: Engine<Recording>,
    url: String,
    disconnects: mpsc::UnboundedReceiver<(Sid, CloseReason)>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    fn start() -> Self {
        ferrio_test_servers::init_tracing();
        let mut config = EngineConfig::default();
        config.session.ping_interval = Duration::from_millis(100);
        config.session.ping_timeout = Duration::from_millis(200);
        let (tx, disconnects) = mpsc::unbounded_channel();
        let engine = Engine::new(config, Recording { disconnects: tx });
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(ferrio_engine::serve(listener, engine.service(), async {
            let _ = stopped.await;
        }));
        Server {
            engine,
            url,
            disconnects,
            stop: Some(stop),
            task,
        }
    }

    async fn next_disconnect(&mut self) -> (Sid, CloseReason) {
        within(5, "on_disconnect", self.disconnects.recv())
            .await
            .expect("the engine is alive")
    }

    /// Waits (bounded) until the registry is empty.
    async fn wait_no_sessions(&self) {
        within(5, "session_count() == 0", async {
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            while self.engine.session_count() > 0 {
                tick.tick().await;
            }
        })
        .await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.engine.close();
        self.task.abort();
    }
}
