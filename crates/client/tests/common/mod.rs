//! Helpers shared by the client test files: the two servers the interop tests run against
//! (the Node server of `interop/client/server.mjs` and its Ferrio counterpart in
//! `ferrio_server.rs`), and waiting on socket events with a deadline that fails the test.

#![allow(dead_code)]

mod ferrio_server;

use std::time::Duration;

use ferrio_client::{Client, ClientBuilder, EventStream, SocketEvent, Transport};
use ferrio_testkit::node::NodeProcess;
use serde_json::{Value, json};

use ferrio_server::FerrioServer;

/// Every wait in these tests: long enough for a loaded CI machine, short enough to fail fast.
pub const SECS: u64 = 10;

/// The server a scenario runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// The real npm `socket.io` 4.8 server (`interop/client/server.mjs`): the reference.
    Node,
    /// The same server written with `ferrio` (`common/ferrio_server.rs`).
    Ferrio,
}

/// Generates, for each `async fn scenario(peer: Peer)`, the tests `scenario::node` and
/// `scenario::ferrio`. Attributes after `ferrio:` apply to the Ferrio test only (an
/// `#[ignore = "ferrio server: <reason>"]` for a known server bug).
#[allow(unused_macros)] // hostile.rs runs no scenario
macro_rules! each_server {
    ($($scenario:ident $(, ferrio: #[$attr:meta])?);+ $(;)?) => {$(
        mod $scenario {
            #[tokio::test]
            async fn node() {
                super::$scenario($crate::common::Peer::Node).await
            }

            $(#[$attr])?
            #[tokio::test]
            async fn ferrio() {
                super::$scenario($crate::common::Peer::Ferrio).await
            }
        }
    )+};
}
#[allow(unused_imports)]
pub(crate) use each_server;

/// A running test server (see the header of `interop/client/server.mjs` for its options,
/// namespaces, handlers and printed lines) and its port. Dropping it kills it.
pub struct TestServer {
    pub port: u16,
    backend: Backend,
}

enum Backend {
    Node(Box<NodeProcess>),
    Ferrio(FerrioServer),
}

impl TestServer {
    /// Starts the server with these options.
    pub async fn start(peer: Peer, options: Value) -> Self {
        match peer {
            Peer::Node => {
                let mut node = NodeProcess::spawn("client/server.mjs", &[&options.to_string()]);
                let port = node.expect_line("listening ", SECS).await;
                let port = port.trim().parse().expect("port");
                TestServer {
                    port,
                    backend: Backend::Node(Box::new(node)),
                }
            }
            Peer::Ferrio => {
                let server = FerrioServer::start(&options);
                TestServer {
                    port: server.port,
                    backend: Backend::Ferrio(server),
                }
            }
        }
    }

    /// Starts the server on a free port.
    pub async fn start_default(peer: Peer) -> Self {
        Self::start(peer, json!({})).await
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A client builder for this server, with fast reconnection for tests.
    pub fn client(&self) -> ClientBuilder {
        Client::builder(&self.url())
            .auto_connect(false)
            .reconnection_delay(Duration::from_millis(50))
            .reconnection_delay_max(Duration::from_millis(200))
            .timeout(Duration::from_secs(5))
    }

    /// The next line the server printed, or `None` once it is gone.
    async fn next_line(&mut self) -> Option<String> {
        match &mut self.backend {
            Backend::Node(node) => node.line().await,
            Backend::Ferrio(server) => server.line().await,
        }
    }

    /// Waits for a line starting with `prefix` and returns the rest.
    pub async fn line(&mut self, prefix: &str) -> String {
        let wait = async {
            while let Some(line) = self.next_line().await {
                if let Some(rest) = line.strip_prefix(prefix) {
                    return rest.to_owned();
                }
            }
            panic!("the server ended before printing {prefix:?}");
        };
        match tokio::time::timeout(Duration::from_secs(SECS), wait).await {
            Ok(v) => v,
            Err(_) => panic!("timed out waiting for the server to print {prefix:?}"),
        }
    }

    /// Every line up to and including the first that starts with `prefix`.
    pub async fn lines_until(&mut self, prefix: &str) -> Vec<String> {
        let wait = async {
            let mut lines = Vec::new();
            while let Some(line) = self.next_line().await {
                let done = line.starts_with(prefix);
                lines.push(line);
                if done {
                    return lines;
                }
            }
            panic!("the server ended before printing {prefix:?}: {lines:?}");
        };
        match tokio::time::timeout(Duration::from_secs(SECS), wait).await {
            Ok(v) => v,
            Err(_) => panic!("timed out waiting for the server to print {prefix:?}"),
        }
    }
}

/// The transport choices a test runs over.
pub const CHOICES: [(&str, &[Transport]); 3] = [
    ("polling", &[Transport::Polling]),
    ("websocket", &[Transport::WebSocket]),
    ("upgrade", &[Transport::Polling, Transport::WebSocket]),
];

/// The next item of the stream, failing the test after `SECS`.
pub async fn next(events: &mut EventStream) -> SocketEvent {
    match tokio::time::timeout(Duration::from_secs(SECS), events.next()).await {
        Ok(Some(e)) => e,
        Ok(None) => panic!("event stream ended"),
        Err(_) => panic!("timed out waiting for a socket event"),
    }
}

/// Skips items until one matches `f`, failing after `SECS`.
pub async fn until<T>(
    events: &mut EventStream,
    what: &str,
    mut f: impl FnMut(SocketEvent) -> Option<T>,
) -> T {
    let wait = async {
        loop {
            match events.next().await {
                Some(e) => {
                    if let Some(v) = f(e) {
                        return v;
                    }
                }
                None => panic!("event stream ended waiting for {what}"),
            }
        }
    };
    match tokio::time::timeout(Duration::from_secs(SECS), wait).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// Waits for the socket's connection, returning its id.
pub async fn connected(events: &mut EventStream) -> String {
    until(events, "connect", |e| match e {
        SocketEvent::Connect(info) => Some(info.id),
        SocketEvent::ConnectError(e) => panic!("connect error: {e:?}"),
        _ => None,
    })
    .await
}

/// Waits for the event `name`, returning its arguments as JSON.
pub async fn event(events: &mut EventStream, name: &str) -> Value {
    until(events, name, |e| match e {
        SocketEvent::Event(ev) if ev.name() == name => Some(ev.data::<Value>().expect("json")),
        _ => None,
    })
    .await
}

/// Waits for a disconnect, returning its reason.
pub async fn disconnected(events: &mut EventStream) -> ferrio_client::DisconnectReason {
    until(events, "disconnect", |e| match e {
        SocketEvent::Disconnect(r) => Some(r),
        _ => None,
    })
    .await
}
