//! What the connection itself reports: the events of `socket.io-client`'s `Manager`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use crate::bounded;
use crate::error::{ConnectError, DisconnectDetails};
use futures_util::Stream;
use futures_util::future::BoxFuture;

/// An event of the connection (the `Manager` of `socket.io-client`), as a stream item of
/// [`Client::events`](crate::Client::events) or the argument of
/// [`Client::on_event`](crate::Client::on_event). [`name`](ManagerEvent::name) gives the
/// event name of `socket.io-client`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ManagerEvent {
    /// The connection is open (`open`): the Engine.IO handshake is done.
    Open,
    /// The open connection closed (`close`), with the reason of `engine.io-client`
    /// (`transport close`, `transport error`, `ping timeout`, `parse error`, `forced close`)
    /// and the transport's details.
    Close {
        /// The reason string.
        reason: &'static str,
        /// What the transport said, for `transport close` and `transport error`.
        details: Option<DisconnectDetails>,
    },
    /// A connection attempt failed, or the open connection hit a transport error (`error`).
    Error(ConnectError),
    /// The server sent a ping (`ping`).
    Ping,
    /// A Socket.IO packet arrived, for any namespace (`packet`).
    Packet(PacketInfo),
    /// A reconnection attempt starts, with its number from 1 (`reconnect_attempt`).
    ReconnectAttempt(u32),
    /// A reconnection attempt opened the connection, with its number (`reconnect`).
    Reconnect(u32),
    /// A reconnection attempt failed (`reconnect_error`), after its [`ManagerEvent::Error`].
    ReconnectError(ConnectError),
    /// Every reconnection attempt failed; the client gives up (`reconnect_failed`).
    ReconnectFailed,
    /// This stream was full: `n` items were dropped before the next one (streams only).
    Lagged(u64),
}

impl ManagerEvent {
    /// The event name of `socket.io-client` (`lagged` for [`ManagerEvent::Lagged`]).
    pub fn name(&self) -> &'static str {
        match self {
            ManagerEvent::Open => "open",
            ManagerEvent::Close { .. } => "close",
            ManagerEvent::Error(_) => "error",
            ManagerEvent::Ping => "ping",
            ManagerEvent::Packet(_) => "packet",
            ManagerEvent::ReconnectAttempt(_) => "reconnect_attempt",
            ManagerEvent::Reconnect(_) => "reconnect",
            ManagerEvent::ReconnectError(_) => "reconnect_error",
            ManagerEvent::ReconnectFailed => "reconnect_failed",
            ManagerEvent::Lagged(_) => "lagged",
        }
    }
}

/// The Socket.IO packet of a [`ManagerEvent::Packet`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketInfo {
    /// The packet type.
    pub kind: PacketKind,
    /// The namespace.
    pub nsp: String,
    /// The ack id, if any.
    pub id: Option<u64>,
    /// The event name, for an event.
    pub event: Option<String>,
}

/// The type of a Socket.IO packet (binary events and acks are `Event` and `Ack`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PacketKind {
    /// CONNECT (the server's answer to ours).
    Connect,
    /// DISCONNECT.
    Disconnect,
    /// EVENT or BINARY_EVENT.
    Event,
    /// ACK or BINARY_ACK.
    Ack,
    /// CONNECT_ERROR.
    ConnectError,
}

type Handler = Arc<dyn Fn(ManagerEvent) -> BoxFuture<'static, ()> + Send + Sync>;

/// The listeners and streams of a client's connection events.
#[derive(Default)]
pub(crate) struct ManagerListeners {
    handlers: RwLock<Vec<Handler>>,
    streams: RwLock<Vec<bounded::Sink<ManagerEvent>>>,
}

impl ManagerListeners {
    pub(crate) fn on<F, Fut>(&self, handler: F)
    where
        F: Fn(ManagerEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let h: Handler = Arc::new(move |e| Box::pin(handler(e)));
        if let Ok(mut l) = self.handlers.write() {
            l.push(h);
        }
    }

    pub(crate) fn stream(&self, capacity: usize) -> ManagerEventStream {
        let (sink, rx) = bounded::channel(capacity);
        if let Ok(mut s) = self.streams.write() {
            s.push(sink);
        }
        ManagerEventStream { rx }
    }

    /// Hands `event` to every handler (each on its own task) and stream.
    pub(crate) fn emit(&self, event: ManagerEvent) {
        if let Ok(l) = self.handlers.read() {
            for h in l.iter() {
                tokio::spawn(h(event.clone()));
            }
        }
        let closed = match self.streams.read() {
            Ok(streams) => bounded::send_all(&streams, &event),
            Err(_) => false,
        };
        if closed && let Ok(mut s) = self.streams.write() {
            bounded::retain_open(&mut s);
        }
    }
}

/// The stream of [`Client::events`](crate::Client::events). Bounded by the client's
/// `event_stream_capacity`: a consumer that falls behind gets [`ManagerEvent::Lagged`].
pub struct ManagerEventStream {
    rx: bounded::Receiver<ManagerEvent>,
}

impl ManagerEventStream {
    /// The next item, `None` once the client is gone.
    pub async fn next(&mut self) -> Option<ManagerEvent> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for ManagerEventStream {
    type Item = ManagerEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ManagerEvent>> {
        self.get_mut().rx.poll_next(cx, ManagerEvent::Lagged)
    }
}

impl std::fmt::Debug for ManagerEventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagerEventStream").finish_non_exhaustive()
    }
}
