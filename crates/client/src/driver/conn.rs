//! One Engine.IO session of the driver and its transports (polling requests in flight,
//! WebSocket, upgrade probe). Nothing here waits: requests are futures polled by the driver,
//! WebSocket frames go out only while the socket is ready.

use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::BoxFuture;

use ferrio_proto::engine::client::ClientSession;
use ferrio_proto::engine::{Frame, Sid};
use ferrio_proto::socket::Decoder;

use crate::error::DisconnectDetails;
use crate::transport::{Endpoint, TransportError, WsConn, WsRead};

pub(super) type Fut<T> = BoxFuture<'static, Result<T, TransportError>>;

/// The current transport of a connection.
pub(super) enum Link {
    Polling {
        get: Option<Fut<Bytes>>,
        post: Option<Fut<()>>,
    },
    WsConnecting(Fut<WsConn>),
    Ws(Box<WsConn>),
}

pub(super) enum Probe {
    None,
    Connecting(Fut<WsConn>),
    Open(Box<WsConn>),
}

/// Something the transports produced.
pub(super) enum Io {
    Get(Result<Bytes, TransportError>),
    Post(Result<(), TransportError>),
    WsConnected(Result<WsConn, TransportError>),
    Ws(WsRead),
    ProbeConnected(Result<WsConn, TransportError>),
    Probe(WsRead),
}

/// A write that failed, and on which socket.
pub(super) enum WriteError {
    Link(TransportError),
    Probe(TransportError),
}

/// One Engine.IO session and its transports.
pub(super) struct Conn {
    pub(super) session: ClientSession,
    pub(super) sid: Option<Sid>,
    pub(super) link: Link,
    pub(super) probe: Probe,
    pub(super) decoder: Decoder,
    /// What the transport said when it ended (the `details` of the disconnect).
    pub(super) details: Option<DisconnectDetails>,
    /// Pings already reported as [`ManagerEvent::Ping`](crate::ManagerEvent::Ping).
    pub(super) pings_seen: u64,
}

impl Conn {
    /// The next input from the transports, if one is ready.
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
                if let Poll::Ready(r) = ws.poll_read(cx) {
                    return Poll::Ready(Io::Ws(r));
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
                if let Poll::Ready(r) = ws.poll_read(cx) {
                    return Poll::Ready(Io::Probe(r));
                }
            }
        }
        Poll::Pending
    }

    /// Writes what the WebSocket transport and the probe can take now; whether anything
    /// was written. On the transport, frames owed to the probe (`5` and what was queued
    /// during the pause) go before the session's outbox.
    pub(super) fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        now: Instant,
    ) -> Result<bool, WriteError> {
        let session = &mut self.session;
        let mut progress = false;
        if let Link::Ws(ws) = &mut self.link {
            progress |= ws
                .poll_write(cx, now, || {
                    session
                        .poll_probe_transmit()
                        .or_else(|| session.poll_transmit())
                })
                .map_err(WriteError::Link)?;
        }
        if let Probe::Open(ws) = &mut self.probe {
            progress |= ws
                .poll_write(cx, now, || session.poll_probe_transmit())
                .map_err(WriteError::Probe)?;
        }
        Ok(progress)
    }

    /// Since when the WebSocket transport has had output waiting with no byte written.
    pub(super) fn stalled_since(&mut self, now: Instant) -> Option<Instant> {
        match &mut self.link {
            Link::Ws(ws) => ws.stalled_since(now),
            _ => None,
        }
    }

    /// How long the transport may stall before the connection is given up: as long as the
    /// server waits before it declares us gone (`pingInterval + pingTimeout`, since our pongs
    /// cannot reach it), or the handshake `timeout` before the handshake.
    pub(super) fn stall_bound(&self, timeout: Duration) -> Duration {
        match self.session.handshake() {
            Some(open) => open.ping_interval + open.ping_timeout,
            None => timeout,
        }
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
                        let _ = ep.post(sid, b, timeout).await;
                    }
                })
                .await;
                // Dropped only now: an aborted pending GET makes the server close the
                // session before it reads the namespace DISCONNECT and the close packet.
                drop(get);
            });
        }
        Link::Ws(ws) => {
            let session = &mut conn.session;
            let frames: Vec<Frame> = std::iter::from_fn(|| {
                session
                    .poll_probe_transmit()
                    .or_else(|| session.poll_transmit())
            })
            .collect();
            tokio::spawn(ws.finish(frames, timeout));
        }
        Link::WsConnecting(_) => {}
    }
}
