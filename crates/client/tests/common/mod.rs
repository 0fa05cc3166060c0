//! Helpers shared by the client test files: the Node server of `interop/client/server.mjs`,
//! and waiting on socket events with a deadline that fails the test.

#![allow(dead_code)]

use std::time::Duration;

use ferrio_client::{Client, ClientBuilder, EventStream, SocketEvent, Transport};
use ferrio_testkit::node::NodeProcess;
use serde_json::{Value, json};

/// Every wait in these tests: long enough for a loaded CI machine, short enough to fail fast.
pub const SECS: u64 = 10;

/// A running `interop/client/server.mjs` and its port.
pub struct NodeServer {
    pub node: NodeProcess,
    pub port: u16,
}

impl NodeServer {
    /// Starts the server with these options (see the script's header).
    pub async fn start(options: Value) -> Self {
        let mut node = NodeProcess::spawn("client/server.mjs", &[&options.to_string()]);
        let port = node.expect_line("listening ", SECS).await;
        let port = port.trim().parse().expect("port");
        NodeServer { node, port }
    }

    /// Starts the server on a free port.
    pub async fn start_default() -> Self {
        Self::start(json!({})).await
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A client builder for this server, with fast reconnection for tests.
    pub fn client(&self) -> ClientBuilder {
        Client::builder(&self.url())
            .reconnection_delay(Duration::from_millis(50))
            .reconnection_delay_max(Duration::from_millis(200))
            .timeout(Duration::from_secs(5))
    }

    /// Waits for a line starting with `prefix` and returns the rest.
    pub async fn line(&mut self, prefix: &str) -> String {
        self.node.expect_line(prefix, SECS).await
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

impl NodeServer {
    /// Every line up to and including the first that starts with `prefix`.
    pub async fn lines_until(&mut self, prefix: &str) -> Vec<String> {
        let node = &mut self.node;
        let wait = async {
            let mut lines = Vec::new();
            while let Some(line) = node.line().await {
                let done = line.starts_with(prefix);
                lines.push(line);
                if done {
                    return lines;
                }
            }
            panic!("node ended before printing {prefix:?}: {lines:?}");
        };
        match tokio::time::timeout(Duration::from_secs(SECS), wait).await {
            Ok(v) => v,
            Err(_) => panic!("timed out waiting for node to print {prefix:?}"),
        }
    }
}

/// Waits for a disconnect, returning its reason.
pub async fn disconnected(events: &mut EventStream) -> ferrio_client::DisconnectReason {
    until(events, "disconnect", |e| match e {
        SocketEvent::Disconnect(r) => Some(r),
        _ => None,
    })
    .await
}
