//! The interface between the Engine.IO server and the layer above it.

use std::task::{Context, Poll};
use std::time::Instant;

use ferrio_proto::engine::{CloseReason, Message};

use crate::EngineSocket;

/// What the layer above (Socket.IO, or a raw Engine.IO application) implements.
///
/// Every method is called from the session's driver task, in order, for one session at a
/// time; they must not block. Use [`EngineSocket::send`] to answer, and spawn a task for
/// anything slow. The per-session state ([`EngineHandler::Session`]) is owned by the driver
/// and handed to each call, so it needs no lock.
pub trait EngineHandler: Send + Sync + 'static {
    /// State kept for each session, created by [`on_connect`](EngineHandler::on_connect).
    type Session: Send + 'static;

    /// A session was opened (after the handshake was accepted).
    fn on_connect(&self, socket: &EngineSocket) -> Self::Session;

    /// Whether the handler can take another message now. While it answers `Pending` (after
    /// arranging for `cx` to be woken), the driver stops reading from the transport and holds
    /// the answer to a polling POST: the client is slowed down instead of disconnected.
    /// The default is always ready.
    fn poll_ready(&self, session: &mut Self::Session, cx: &mut Context<'_>) -> Poll<()> {
        let _ = (session, cx);
        Poll::Ready(())
    }

    /// When the handler wants [`handle_timeout`](EngineHandler::handle_timeout) called next
    /// (a deadline of its own, e.g. for a packet's missing parts), on tokio's clock
    /// (`tokio::time::Instant::now().into_std()`). Asked after every call. The default is
    /// none.
    fn poll_timeout(&self, session: &Self::Session) -> Option<Instant> {
        let _ = session;
        None
    }

    /// The deadline from [`poll_timeout`](EngineHandler::poll_timeout) has passed (`now` is
    /// at least that deadline). Afterwards nothing may be due at `now` any more.
    fn handle_timeout(&self, session: &mut Self::Session, socket: &EngineSocket, now: Instant) {
        let _ = (session, socket, now);
    }

    /// A message arrived from the client.
    fn on_message(&self, session: &mut Self::Session, socket: &EngineSocket, message: Message);

    /// The session closed; no other call for this session follows.
    fn on_disconnect(&self, session: Self::Session, socket: &EngineSocket, reason: CloseReason);
}
