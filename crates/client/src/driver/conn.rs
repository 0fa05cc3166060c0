//! One Engine.IO session of the driver and its transports (polling requests in flight,
//! WebSocket, upgrade probe).

use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;

use ferrio_proto::engine::client::ClientSession;
use ferrio_proto::engine::{Frame, Sid};
use ferrio_proto::socket::Decoder;

use crate::transport::{Endpoint, TransportError, WsRead, WsStream, ws_read, ws_write};

pub(super) type Fut<T> = BoxFuture<'static, Result<T, TransportError>>;

/// The current transport of a connection.
pub(super) enum Link {
    Polling {
        get: Option<Fut<Bytes>>,
        post: Option<Fut<()>>,
    },
    WsConnecting(Fut<WsStream>),
    Ws(Box<WsStream>),
}

pub(super) enum Probe {
    None,
    Connecting(Fut<WsStream>),
    Open(Box<WsStream>),
}

/// Something the transports produced.
pub(super) enum Io {
    Get(Result<Bytes, TransportError>),
    Post(Result<(), TransportError>),
    WsConnected(Result<WsStream, TransportError>),
    Ws(WsRead),
    ProbeConnected(Result<WsStream, TransportError>),
    Probe(WsRead),
}

/// One Engine.IO session and its transports.
pub(super) struct Conn {
    pub(super) session: ClientSession,
    pub(super) sid: Option<Sid>,
    pub(super) link: Link,
    pub(super) probe: Probe,
    pub(super) decoder: Decoder,
}

impl Conn {
    pub(super) fn poll_io(&mut self, cx: &mut Context<'_>) -> Poll<Io> {
        match &mut self.link {
            Link::Polling { get, post } => {
                if let Some(f) = get
                    && let Poll::Ready(r) = f.as_mut().poll(cx)
                {
                    *get = None;
                    return Poll::Ready(Io::Get(r));
                }
                if let Some(f) = post
                    && let Poll::Ready(r) = f.as_mut().poll(cx)
                {
                    *post = None;
                    return Poll::Ready(Io::Post(r));
                }
            }
            Link::WsConnecting(f) => {
                if let Poll::Ready(r) = f.as_mut().poll(cx) {
                    return Poll::Ready(Io::WsConnected(r));
                }
            }
            Link::Ws(ws) => {
                while let Poll::Ready(m) = ws.poll_next_unpin(cx) {
                    if let Some(r) = ws_read(m) {
                        return Poll::Ready(Io::Ws(r));
                    }
                }
            }
        }
        match &mut self.probe {
            Probe::None => {}
            Probe::Connecting(f) => {
                if let Poll::Ready(r) = f.as_mut().poll(cx) {
                    self.probe = Probe::None;
                    return Poll::Ready(Io::ProbeConnected(r));
                }
            }
            Probe::Open(ws) => {
                while let Poll::Ready(m) = ws.poll_next_unpin(cx) {
                    if let Some(r) = ws_read(m) {
                        return Poll::Ready(Io::Probe(r));
                    }
                }
            }
        }
        Poll::Pending
    }

    pub(super) fn polling_idle(&self) -> bool {
        match &self.link {
            Link::Polling { get, post } => get.is_none() && post.is_none(),
            _ => true,
        }
    }
}

/// Writes what the closed session still has queued, then closes its transports, on a task of
/// its own (bounded by `timeout`).
pub(super) fn flush_and_close(endpoint: &Endpoint, conn: &mut Conn, timeout: Duration) {
    let link = std::mem::replace(
        &mut conn.link,
        Link::Polling {
            get: None,
            post: None,
        },
    );
    conn.probe = Probe::None;
    match link {
        Link::Polling { get, post } => {
            let Some(sid) = conn.sid else {
                return;
            };
            let bodies: Vec<Bytes> = std::iter::from_fn(|| conn.session.poll_payload()).collect();
            if bodies.is_empty() {
                return;
            }
            let ep = endpoint.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(timeout, async move {
                    if let Some(p) = post {
                        let _ = p.await;
                    }
                    for b in bodies {
                        let _ = ep.post(sid, b).await;
                    }
                })
                .await;
                // Dropped only now: an aborted pending GET makes the server close the
                // session before it reads the namespace DISCONNECT and the close packet.
                drop(get);
            });
        }
        Link::Ws(mut ws) => {
            let frames: Vec<Frame> = std::iter::from_fn(|| conn.session.poll_transmit()).collect();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(timeout, async move {
                    let _ = ws_write(&mut ws, frames, timeout).await;
                    let _ = ws.close(None).await;
                })
                .await;
            });
        }
        Link::WsConnecting(_) => {}
    }
}
