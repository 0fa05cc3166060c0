//! A handler that is not ready holds the polling POST answer and stops WebSocket reads; nothing
//! is lost or reordered, and nothing is closed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use ferrio_engine::{CloseReason, Engine, EngineConfig, EngineHandler, EngineSocket, Message};
use ferrio_testkit::ws::{self, Read};
use ferrio_testkit::{http, within};
use futures_util::task::AtomicWaker;
use tokio::sync::mpsc;

#[derive(Debug)]
enum Seen {
    Blocked,
    Message(Bytes),
}

struct Gate {
    open: Arc<AtomicBool>,
    waker: Arc<AtomicWaker>,
    seen: mpsc::UnboundedSender<Seen>,
}

impl EngineHandler for Gate {
    type Session = bool;

    fn on_connect(&self, _: &EngineSocket) -> bool {
        false
    }

    fn poll_ready(&self, reported: &mut bool, cx: &mut Context<'_>) -> Poll<()> {
        self.waker.register(cx.waker());
        if self.open.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        if !*reported {
            *reported = true;
            let _ = self.seen.send(Seen::Blocked);
        }
        Poll::Pending
    }

    fn on_message(&self, _: &mut bool, _: &EngineSocket, message: Message) {
        if let Message::Text(t) = message {
            let _ = self.seen.send(Seen::Message(t));
        }
    }

    fn on_disconnect(&self, _: bool, _: &EngineSocket, _: CloseReason) {}
}

struct Setup {
    addr: std::net::SocketAddr,
    open: Arc<AtomicBool>,
    waker: Arc<AtomicWaker>,
    seen: mpsc::UnboundedReceiver<Seen>,
    _engine: Engine<Gate>,
}

fn start() -> Setup {
    let open = Arc::new(AtomicBool::new(false));
    let waker = Arc::new(AtomicWaker::new());
    let (tx, seen) = mpsc::unbounded_channel();
    let engine = Engine::new(
        EngineConfig::default(),
        Gate {
            open: open.clone(),
            waker: waker.clone(),
            seen: tx,
        },
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(ferrio_engine::serve(
        listener,
        engine.service(),
        std::future::pending(),
    ));
    Setup {
        addr,
        open,
        waker,
        seen,
        _engine: engine,
    }
}

impl Setup {
    fn open_gate(&self) {
        self.open.store(true, Ordering::SeqCst);
        self.waker.wake();
    }

    async fn next(&mut self) -> Seen {
        within(5, "handler", self.seen.recv()).await.unwrap()
    }
}

#[tokio::test]
async fn polling_post_waits_for_the_handler() {
    let mut s = start();
    let res = http::get(s.addr, "/engine.io/?EIO=4&transport=polling").await;
    let body = res.text();
    let sid = &body[9..29];
    let url = format!("/engine.io/?EIO=4&transport=polling&sid={sid}");
    let addr = s.addr;
    let post = tokio::spawn(async move { http::post(addr, &url, "4a\x1e4b\x1e4c").await });
    assert!(matches!(s.next().await, Seen::Blocked));
    // The handler said it is not ready: the POST is not answered and nothing was handed over.
    assert!(!post.is_finished());
    assert!(s.seen.try_recv().is_err());
    s.open_gate();
    for expected in ["a", "b", "c"] {
        match s.next().await {
            Seen::Message(m) => assert_eq!(m, expected),
            other => panic!("{other:?}"),
        }
    }
    let res = within(5, "POST answer", post).await.unwrap();
    assert_eq!(res.text(), "ok");
}

#[tokio::test]
async fn websocket_reads_pause_while_the_handler_is_busy() {
    let mut s = start();
    let mut c = ws::connect(s.addr, "/engine.io/?EIO=4&transport=websocket").await;
    assert!(matches!(ws::read(&mut c).await, Read::Text(t) if t.starts_with('0')));
    for m in ["4one", "4two", "4three"] {
        ws::send_text(&mut c, m).await;
    }
    assert!(matches!(s.next().await, Seen::Blocked));
    assert!(s.seen.try_recv().is_err());
    s.open_gate();
    for expected in ["one", "two", "three"] {
        match s.next().await {
            Seen::Message(m) => assert_eq!(m, expected),
            other => panic!("{other:?}"),
        }
    }
}
