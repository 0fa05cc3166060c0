//! A test server on 127.0.0.1:0 with a recording echo handler.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use ferrio_engine::{
    CloseReason, Engine, EngineConfig, EngineHandler, EngineSocket, Frame, Message, Sid,
};
use ferrio_testkit::http;
use tokio::sync::{mpsc, oneshot};

/// What the handler saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Connect(Sid),
    Message(Sid, Message),
    Disconnect(Sid, CloseReason),
}

/// Echoes every message (except `flood`, which starts a flood of 64 KiB binary frames) and
/// reports everything it sees.
pub struct Recorder {
    tx: mpsc::UnboundedSender<Seen>,
}

impl EngineHandler for Recorder {
    type Session = ();

    fn on_connect(&self, socket: &EngineSocket) {
        let _ = self.tx.send(Seen::Connect(socket.sid()));
    }

    fn on_message(&self, _: &mut (), socket: &EngineSocket, message: Message) {
        let _ = self.tx.send(Seen::Message(socket.sid(), message.clone()));
        let frame = match message {
            Message::Text(t) if t.as_ref() == b"flood" => {
                let socket = socket.clone();
                tokio::spawn(async move {
                    let chunk = Bytes::from(vec![7u8; 64 * 1024]);
                    // Bounded: 100k frames is 6.4 GB, far past any buffer; it stops at the
                    // first refusal.
                    for _ in 0..100_000 {
                        if socket.send(Frame::Binary(chunk.clone())).is_err() {
                            return;
                        }
                        tokio::task::yield_now().await;
                    }
                });
                return;
            }
            Message::Text(t) => {
                let mut v = b"4".to_vec();
                v.extend_from_slice(&t);
                Frame::Text(v.into())
            }
            Message::Binary(b) => Frame::Binary(b),
        };
        let _ = socket.send(frame);
    }

    fn on_disconnect(&self, _: (), socket: &EngineSocket, reason: CloseReason) {
        let _ = self.tx.send(Seen::Disconnect(socket.sid(), reason));
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub engine: Engine<Recorder>,
    pub seen: mpsc::UnboundedReceiver<Seen>,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.engine.close();
    }
}

/// Settings for fast tests: ping every 300 ms, 200 ms to answer.
pub fn fast_config() -> EngineConfig {
    let mut c = EngineConfig::default();
    c.session.ping_interval = Duration::from_millis(300);
    c.session.ping_timeout = Duration::from_millis(200);
    c
}

pub async fn start(config: EngineConfig) -> TestServer {
    let (tx, seen) = mpsc::unbounded_channel();
    let engine = Engine::new(config, Recorder { tx });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let svc = engine.service();
    tokio::spawn(ferrio_engine::serve(listener, svc, async move {
        let _ = stopped.await;
    }));
    TestServer {
        addr,
        engine,
        seen,
        stop: Some(stop),
    }
}

impl TestServer {
    /// Waits for the next handler call matching `f`.
    pub async fn wait_for(&mut self, what: &str, f: impl Fn(&Seen) -> bool) -> Seen {
        ferrio_testkit::within(5, what, async {
            loop {
                let s = self.seen.recv().await.expect("handler channel open");
                if f(&s) {
                    return s;
                }
            }
        })
        .await
    }

    /// Waits (at most 5 s, checking every millisecond) until `cond` holds.
    pub async fn until(&self, what: &str, mut cond: impl FnMut(&Engine<Recorder>) -> bool) {
        ferrio_testkit::within(5, what, async {
            while !cond(&self.engine) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
    }

    /// Waits until the driver of `sid` holds a polling GET.
    pub async fn until_poll_waiting(&self, sid: Sid) {
        self.until("the GET to be held", |e| {
            e.socket(sid).is_some_and(|s| s.is_poll_waiting())
        })
        .await
    }

    /// Sends a polling GET for `sid` on a raw connection (`Connection: close`) and returns
    /// that connection once the driver holds the GET; read the answer with [`answer`].
    pub async fn held_get(&self, sid: Sid) -> tokio::net::TcpStream {
        use tokio::io::AsyncWriteExt;
        let mut s = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let req = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.url(sid),
            self.addr
        );
        s.write_all(req.as_bytes()).await.unwrap();
        self.until_poll_waiting(sid).await;
        s
    }

    /// Waits until the session `sid` is reported closed, and returns the reason.
    pub async fn disconnect_of(&mut self, sid: Sid) -> CloseReason {
        match self
            .wait_for(
                "disconnect",
                |s| matches!(s, Seen::Disconnect(x, _) if *x == sid),
            )
            .await
        {
            Seen::Disconnect(_, r) => r,
            _ => unreachable!(),
        }
    }

    /// A polling handshake; returns the sid.
    pub async fn handshake(&self) -> Sid {
        let res = http::get(self.addr, "/engine.io/?EIO=4&transport=polling").await;
        assert_eq!(res.status, 200, "{}", res.text());
        open_sid(&res.text())
    }

    pub fn url(&self, sid: Sid) -> String {
        format!("/engine.io/?EIO=4&transport=polling&sid={sid}")
    }

    /// A well-behaved client still gets its echo over polling.
    pub async fn assert_healthy(&self) {
        let sid = self.handshake().await;
        let res = http::post(self.addr, &self.url(sid), "4still alive").await;
        assert_eq!(res.status, 200);
        let res = http::get(self.addr, &self.url(sid)).await;
        assert_eq!(res.text(), "4still alive");
        let res = http::post(self.addr, &self.url(sid), "1").await;
        assert_eq!(res.status, 200);
    }
}

/// The body of the `200` answer on a connection from [`TestServer::held_get`].
pub async fn answer(mut s: tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    ferrio_testkit::within(5, "the held GET's answer", s.read_to_end(&mut out))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text.split_once("\r\n\r\n").unwrap().1.to_owned()
}

/// The sid of an open packet `0{...}`.
pub fn open_sid(open: &str) -> Sid {
    let json = open.strip_prefix('0').expect("open packet");
    let start = json.find("\"sid\":\"").expect("sid key") + 7;
    let end = start + json[start..].find('"').unwrap();
    Sid::parse(&json[start..end]).unwrap()
}

/// A handler that does nothing.
pub struct NoHandler;

impl EngineHandler for NoHandler {
    type Session = ();

    fn on_connect(&self, _: &EngineSocket) {}

    fn on_message(&self, _: &mut (), _: &EngineSocket, _: Message) {}

    fn on_disconnect(&self, _: (), _: &EngineSocket, _: CloseReason) {}
}
