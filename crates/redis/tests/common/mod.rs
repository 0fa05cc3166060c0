//! Shared setup of the cluster tests: a private `redis-server`, Ferrio nodes served on free
//! ports, the Node side (`interop/cluster/peer.mjs`: Node servers with
//! `@socket.io/redis-adapter`, npm `socket.io-client` connections, the Node emitter), Rust
//! clients on `ferrio-client`, and a [`World`] that records, in order, every event each client
//! receives.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::TcpListener;
use std::time::Duration;

use ferrio::{AckSender, AdapterFactory, Data, SocketIo, SocketRef};
use ferrio_proto::socket::ArgList;
use ferrio_proto::value::Value;
use ferrio_testkit::node::NodeProcess;
use ferrio_testkit::within;
use serde_json::{Value as Json, json};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

#[allow(unused_imports)]
pub use ferrio_testkit::redis::RedisServer;

/// A value as the Node peer writes it: binary as `{"$bin": "<hex>"}`.
pub fn wire(v: &Value) -> Json {
    match v {
        Value::Binary(b) => {
            json!({ "$bin": b.iter().map(|x| format!("{x:02x}")).collect::<String>() })
        }
        Value::Array(items) => Json::Array(items.iter().map(wire).collect()),
        Value::Map(entries) => {
            Json::Object(entries.iter().map(|(k, v)| (k.clone(), wire(v))).collect())
        }
        other => serde_json::from_slice(&other.to_json()).unwrap_or(Json::Null),
    }
}

/// JSON arguments as values (`{"$bin": hex}` as binary).
pub fn values(args: Json) -> Vec<Value> {
    fn one(v: Json) -> Value {
        match v {
            Json::Object(m) if m.len() == 1 && m.get("$bin").is_some_and(Json::is_string) => {
                let hex = m["$bin"].as_str().unwrap_or_default();
                let bytes = (0..hex.len())
                    .step_by(2)
                    .filter_map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                    .collect::<Vec<u8>>();
                Value::Binary(bytes.into())
            }
            Json::Array(items) => Value::Array(items.into_iter().map(one).collect()),
            Json::Object(m) => Value::Map(m.into_iter().map(|(k, v)| (k, one(v))).collect()),
            other => Value::from(other),
        }
    }
    match args {
        Json::Array(items) => items.into_iter().map(one).collect(),
        other => vec![one(other)],
    }
}

/// `{"$bin": hex}`.
pub fn bin(bytes: &[u8]) -> Json {
    json!({ "$bin": bytes.iter().map(|x| format!("{x:02x}")).collect::<String>() })
}

/// A Ferrio server with the handlers of `peer.mjs`'s Node servers, on a free port.
pub struct Node {
    pub name: String,
    pub io: SocketIo,
    pub url: String,
    /// The server-side events it got (`sse`), with their arguments.
    pub sse: mpsc::UnboundedReceiver<Json>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Node {
    /// Builds and serves a node on `factory`; it answers once its adapter is subscribed.
    pub async fn start(name: &str, factory: impl AdapterFactory) -> Node {
        let io = SocketIo::builder()
            .ping_interval(Duration::from_secs(2))
            .ping_timeout(Duration::from_secs(5))
            .adapter(factory)
            .build();
        io.ns("/", async |socket: SocketRef| {
            socket.on(
                "join",
                async |socket: SocketRef, Data(room): Data<String>, ack: AckSender| {
                    socket.join(room);
                    ack.send("joined").ok();
                },
            );
            socket.on(
                "leave",
                async |socket: SocketRef, Data(room): Data<String>, ack: AckSender| {
                    socket.leave(room);
                    ack.send("left").ok();
                },
            );
            socket.on(
                "set-data",
                async |socket: SocketRef, Data(data): Data<Json>, ack: AckSender| {
                    socket.set_data(&data).ok();
                    ack.send("set").ok();
                },
            );
            socket.on(
                "shout",
                async |socket: SocketRef, Data((room, msg)): Data<(String, Json)>| {
                    socket.to(room).emit("shouted", &msg).ok();
                },
            );
        });
        let (tx, sse) = mpsc::unbounded_channel();
        let me = name.to_owned();
        io.on_server_event("sse", move |mut ev| {
            let (tx, me) = (tx.clone(), me.clone());
            async move {
                let args: Vec<Json> = ev.args().iter().map(wire).collect();
                let _ = tx.send(Json::Array(args));
                ev.ack(&format!("{me}:pong")).ok();
            }
        });
        // The namespace serves once its adapter has subscribed: wait for it here, so that
        // the node is a full member of the cluster when the test goes on.
        within(10, "the adapter to start", io.server_count())
            .await
            .expect("server count");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(ferrio::serve(listener, io.service(), async {
            let _ = stopped.await;
        }));
        Node {
            name: name.to_owned(),
            io,
            url,
            sse,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The next server-side event it got (at most 10 s).
    pub async fn next_sse(&mut self) -> Json {
        within(10, "a server-side event", self.sse.recv())
            .await
            .expect("node alive")
    }

    /// Stops the node: its clients are disconnected, its adapter unsubscribes.
    pub async fn stop(mut self) {
        self.io.close();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = within(15, "the node to stop", task).await;
        }
    }
}

impl Drop for Node {
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

/// What a client received: the event and its arguments.
pub type Got = (String, Json);

/// The Node side and the Rust clients, with a log of what every client received.
pub struct World {
    peer: NodeProcess,
    next_id: u64,
    answers: HashMap<u64, Result<Json, String>>,
    rust_tx: mpsc::UnboundedSender<(String, Got)>,
    rust_rx: mpsc::UnboundedReceiver<(String, Got)>,
    rust: HashMap<String, ferrio_client::Client>,
    logs: HashMap<String, Vec<Got>>,
    node_events: VecDeque<Json>,
}

impl World {
    /// Starts `peer.mjs`.
    pub async fn start() -> World {
        let mut peer = NodeProcess::spawn_interactive("cluster/peer.mjs", &[]);
        within(
            20,
            "peer.mjs to start",
            peer.expect_line("{\"event\":\"ready\"", 20),
        )
        .await;
        let (rust_tx, rust_rx) = mpsc::unbounded_channel();
        World {
            peer,
            next_id: 0,
            answers: HashMap::new(),
            rust_tx,
            rust_rx,
            rust: HashMap::new(),
            logs: HashMap::new(),
            node_events: VecDeque::new(),
        }
    }

    fn take_line(&mut self, line: &str) {
        let Ok(v) = serde_json::from_str::<Json>(line) else {
            return;
        };
        if let Some(id) = v.get("id").and_then(Json::as_u64) {
            let r = if v["ok"] == true {
                Ok(v["result"].clone())
            } else {
                Err(v["error"].as_str().unwrap_or("?").to_owned())
            };
            self.answers.insert(id, r);
            return;
        }
        match v["event"].as_str() {
            Some("recv") => {
                let client = v["client"].as_str().unwrap_or("?").to_owned();
                let ev = v["ev"].as_str().unwrap_or("?").to_owned();
                self.logs
                    .entry(client)
                    .or_default()
                    .push((ev, v["args"].clone()));
            }
            Some("client-disconnect") => {
                let client = v["client"].as_str().unwrap_or("?").to_owned();
                self.logs
                    .entry(client)
                    .or_default()
                    .push(("disconnect".into(), json!([v["reason"].clone()])));
            }
            _ => self.node_events.push_back(v),
        }
    }

    /// Takes the next line of the peer or the next event of a Rust client.
    async fn pump(&mut self) {
        tokio::select! {
            line = self.peer.line() => {
                let line = line.expect("peer.mjs ended");
                self.take_line(&line);
            }
            Some((client, got)) = self.rust_rx.recv() => {
                self.logs.entry(client).or_default().push(got);
            }
        }
    }

    /// Sends a command to the peer and returns its result (at most 20 s); an error fails.
    pub async fn cmd(&mut self, mut cmd: Json) -> Json {
        self.next_id += 1;
        let id = self.next_id;
        cmd["id"] = json!(id);
        self.peer.send(&cmd.to_string()).await;
        let what = format!("the peer's answer to {cmd}");
        within(20, &what, async {
            loop {
                if let Some(r) = self.answers.remove(&id) {
                    return r.unwrap_or_else(|e| panic!("{cmd}: {e}"));
                }
                self.pump().await;
            }
        })
        .await
    }

    /// Starts a Node server in the peer; returns its URL.
    pub async fn node_server(&mut self, name: &str, redis: &str, mode: &str) -> String {
        let r = self
            .cmd(json!({"op": "server", "name": name, "redis": redis, "mode": mode}))
            .await;
        format!("http://127.0.0.1:{}", r["port"])
    }

    /// Calls `call` on a Node server's namespace `/` (operator fields in `extra`).
    pub async fn node_io(&mut self, server: &str, call: &str, extra: Json) -> Json {
        let mut cmd = json!({"op": "io", "server": server, "call": call});
        if let Json::Object(m) = extra {
            for (k, v) in m {
                cmd[k] = v;
            }
        }
        self.cmd(cmd).await
    }

    /// Connects an npm `socket.io-client` (WebSocket) to `url`; returns its socket id.
    pub async fn node_client(&mut self, name: &str, url: &str, auth: Json) -> String {
        self.logs.entry(name.to_owned()).or_default();
        let r = self
            .cmd(json!({"op": "client", "name": name, "url": url, "auth": auth}))
            .await;
        r["id"].as_str().expect("id").to_owned()
    }

    /// Connects a `ferrio-client` (polling, then the upgrade) to `url`; returns its socket id.
    /// It answers every ack with its name, except for events whose name starts with `silent`.
    pub async fn rust_client(&mut self, name: &str, url: &str, auth: Json) -> String {
        self.logs.entry(name.to_owned()).or_default();
        let client = ferrio_client::Client::builder(url)
            .auto_connect(false)
            .reconnection(false)
            .auth(auth)
            .build()
            .expect("client");
        let socket = client.socket("/");
        let (tx, me) = (self.rust_tx.clone(), name.to_owned());
        socket.on_any(move |event| {
            let (tx, me) = (tx.clone(), me.clone());
            async move {
                let args: Vec<Value> = event
                    .args()
                    .to_values()
                    .expect("received arguments are values");
                let ev = event.name().to_owned();
                let _ = tx.send((
                    me.clone(),
                    (ev.clone(), Json::Array(args.iter().map(wire).collect())),
                ));
                if !ev.starts_with("silent") && event.ack_sender().is_some() {
                    event.ack(&me).await.ok();
                }
            }
        });
        let (tx, me) = (self.rust_tx.clone(), name.to_owned());
        socket.on_disconnect(move |reason| {
            let (tx, me) = (tx.clone(), me.clone());
            async move {
                let _ = tx.send((me, ("disconnect".into(), json!([reason.to_string()]))));
            }
        });
        let (connected_tx, connected) = mpsc::unbounded_channel();
        socket.on_connect(move |info| {
            let tx = connected_tx.clone();
            async move {
                let _ = tx.send(info.id);
            }
        });
        socket.connect().await.expect("connect");
        let mut connected = connected;
        let id = within(10, "the Rust client to connect", connected.recv())
            .await
            .expect("connected");
        self.rust.insert(name.to_owned(), client);
        id
    }

    /// Makes a client emit an event with an ack (`join`, `leave`, `set-data`) and waits for
    /// the answer.
    pub async fn client_call(&mut self, client: &str, ev: &str, args: Json) {
        if let Some(c) = self.rust.get(client) {
            let socket = c.socket("/");
            let args = values(args);
            let send = async {
                socket
                    .emit_with_ack(ev, &ArgList(&args))
                    .timeout(Duration::from_secs(5))
                    .await
            };
            within(10, "a client call", send).await.expect("ack");
        } else {
            self.cmd(
                json!({"op": "clientEmit", "client": client, "ev": ev, "args": args, "ack": true}),
            )
            .await;
        }
    }

    /// Makes a client emit an event without ack.
    pub async fn client_emit(&mut self, client: &str, ev: &str, args: Json) {
        if let Some(c) = self.rust.get(client) {
            let socket = c.socket("/");
            let args = values(args);
            socket.emit(ev, &ArgList(&args)).await.expect("emit");
        } else {
            self.cmd(json!({"op": "clientEmit", "client": client, "ev": ev, "args": args}))
                .await;
        }
    }

    /// Waits (at most 10 s) until each of `clients` has received `ev`; returns the arguments
    /// of the last one.
    pub async fn expect(&mut self, clients: &[&str], ev: &str) -> Json {
        let what = format!("{clients:?} to receive `{ev}`");
        within(10, &what, async {
            loop {
                let all = clients.iter().all(|c| {
                    self.logs
                        .get(*c)
                        .is_some_and(|l| l.iter().any(|(e, _)| e == ev))
                });
                if all {
                    let last = clients.last().expect("a client");
                    return self.logs[*last]
                        .iter()
                        .find(|(e, _)| e == ev)
                        .map(|(_, a)| a.clone())
                        .unwrap_or(Json::Null);
                }
                self.pump().await;
            }
        })
        .await
    }

    /// Waits (at most 10 s) until `client` has received `ev` `n` times.
    pub async fn expect_count(&mut self, client: &str, ev: &str, n: usize) {
        let what = format!("{client} to receive `{ev}` {n} times");
        within(10, &what, async {
            loop {
                let count = self
                    .logs
                    .get(client)
                    .map_or(0, |l| l.iter().filter(|(e, _)| e == ev).count());
                if count >= n {
                    return;
                }
                self.pump().await;
            }
        })
        .await
    }

    /// The names of the events a client received, in order.
    pub fn events(&self, client: &str) -> Vec<String> {
        self.logs
            .get(client)
            .map(|l| l.iter().map(|(e, _)| e.clone()).collect())
            .unwrap_or_default()
    }

    /// Everything a client received, in order.
    pub fn logs_of(&self, client: &str) -> Vec<Got> {
        self.logs.get(client).cloned().unwrap_or_default()
    }

    /// The arguments of the first `ev` a client received.
    pub fn args(&self, client: &str, ev: &str) -> Json {
        self.logs
            .get(client)
            .and_then(|l| l.iter().find(|(e, _)| e == ev))
            .map(|(_, a)| a.clone())
            .unwrap_or(Json::Null)
    }

    /// The next event printed by a Node server (e.g. `sse`), at most 10 s.
    pub async fn node_event(&mut self, kind: &str) -> Json {
        let what = format!("a `{kind}` event from a Node server");
        within(10, &what, async {
            loop {
                if let Some(i) = self.node_events.iter().position(|e| e["event"] == kind) {
                    return self.node_events.remove(i).expect("present");
                }
                self.pump().await;
            }
        })
        .await
    }

    /// Runs the emitter of `@socket.io/redis-emitter` (operator fields in `extra`).
    pub async fn node_emitter(&mut self, redis: &str, call: &str, extra: Json) {
        let mut cmd = json!({"op": "emitter", "redis": redis, "call": call});
        if let Json::Object(m) = extra {
            for (k, v) in m {
                cmd[k] = v;
            }
        }
        self.cmd(cmd).await;
    }
}

/// Sorted strings of a JSON array.
pub fn sorted(v: &Json) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Sorted strings.
pub fn sort<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Vec<String> {
    let mut out: Vec<String> = items.into_iter().map(Into::into).collect();
    out.sort();
    out
}
