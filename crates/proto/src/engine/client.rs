//! The client side of one Engine.IO session, as a sans-IO state machine.
//!
//! It covers what `engine.io-client` does for one connection: the handshake, answering the
//! server's pings, detecting a dead server, the polling → WebSocket upgrade (probe, pause,
//! `5`) and close. Reconnection is not here: a closed session is dropped and a new one made.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};

use super::payload::{self, Encoder};
use super::{Frame, Message, OpenPacket, Packet, TransportKind};

/// Settings of a client session. The defaults are those of `engine.io-client` 6.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientSessionConfig {
    /// How long the handshake (the open packet) and a WebSocket probe may take. Default 20 s
    /// (the `timeout` option of `socket.io-client`).
    pub handshake_timeout: Duration,
    /// Whether to upgrade a polling session to WebSocket when the server offers it.
    /// Default true.
    pub upgrade: bool,
    /// Most packets one polling response may hold; past it the session closes with
    /// `parse error`. Default 16 384.
    pub max_payload_packets: usize,
    /// Most frames waiting to be written. When full, [`ClientSession::send`] fails with
    /// [`ClientSendError::Full`]. Default 4096.
    pub max_buffered_packets: usize,
}

impl Default for ClientSessionConfig {
    fn default() -> Self {
        ClientSessionConfig {
            handshake_timeout: Duration::from_secs(20),
            upgrade: true,
            max_payload_packets: 16_384,
            max_buffered_packets: 4096,
        }
    }
}

/// Why a client session closed. [`ClientCloseReason::as_str`] gives the reason string of
/// `engine.io-client`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientCloseReason {
    /// The server closed the transport, or sent a close packet (`transport close`).
    TransportClose,
    /// The transport failed (`transport error`); the detail is for logs.
    TransportError(String),
    /// No packet from the server for `pingInterval + pingTimeout` (`ping timeout`).
    PingTimeout,
    /// The server sent bytes that are not Engine.IO packets (`parse error`).
    ParseError,
    /// No open packet within the handshake timeout (`timeout`).
    HandshakeTimeout,
    /// The client closed the session (`forced close`).
    ForcedClose,
}

impl ClientCloseReason {
    /// The reason string of `engine.io-client`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ClientCloseReason::TransportClose => "transport close",
            ClientCloseReason::TransportError(_) => "transport error",
            ClientCloseReason::PingTimeout => "ping timeout",
            ClientCloseReason::ParseError => "parse error",
            ClientCloseReason::HandshakeTimeout => "timeout",
            ClientCloseReason::ForcedClose => "forced close",
        }
    }
}

impl fmt::Display for ClientCloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientCloseReason::TransportError(detail) => write!(f, "transport error: {detail}"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// What a client session reports to the layer above.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// The handshake completed.
    Opened(OpenPacket),
    /// A message from the server.
    Message(Message),
    /// The WebSocket probe succeeded: the probe socket is now the transport, and polling
    /// must stop.
    Upgraded,
    /// The probe failed: close the probe socket; the session goes on over polling.
    UpgradeFailed,
    /// The session is closed; no further event follows.
    Closed(ClientCloseReason),
}

/// Why [`ClientSession::send`] refused a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientSendError {
    /// Too many frames are waiting to be written.
    #[error("outbound buffer full")]
    Full,
    /// The session is closed.
    #[error("session closed")]
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Opening { deadline: Instant },
    Open,
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Upgrade {
    /// Nothing to do (not offered, not wanted, or finished).
    None,
    /// The server offers WebSocket: the driver should open a probe socket.
    Wanted,
    /// A probe socket is connecting or `2probe` was sent.
    Probing { deadline: Instant },
    /// `3probe` arrived: polling must pause (no new request) before `5` is sent.
    Pausing { deadline: Instant },
    /// Upgraded, or given up.
    Done,
}

/// The client side of one Engine.IO session.
///
/// It performs no I/O and reads no clock. Call order, for the task that owns it:
/// 1. [`ClientSession::new`] with the transport the handshake uses. Send the handshake request
///    (polling GET without `sid`, or the WebSocket connect) and feed what comes back.
/// 2. Feed input as it happens: [`handle_frame`](ClientSession::handle_frame) for each
///    WebSocket frame, [`handle_payload`](ClientSession::handle_payload) for each polling GET
///    body, [`handle_transport_error`](ClientSession::handle_transport_error) /
///    [`handle_transport_closed`](ClientSession::handle_transport_closed), and
///    [`handle_timeout`](ClientSession::handle_timeout) once
///    [`poll_timeout`](ClientSession::poll_timeout) has passed. Application output:
///    [`send`](ClientSession::send), [`close`](ClientSession::close).
/// 3. Upgrade: when [`wants_probe`](ClientSession::wants_probe) is true, open a WebSocket with
///    the session id and call [`handle_probe_open`](ClientSession::handle_probe_open) (or
///    [`handle_probe_error`](ClientSession::handle_probe_error)); write
///    [`poll_probe_transmit`](ClientSession::poll_probe_transmit) frames on it and feed its
///    frames to [`handle_probe_frame`](ClientSession::handle_probe_frame). While
///    [`is_pausing`](ClientSession::is_pausing), start no new polling request; once none is in
///    flight call [`handle_polling_paused`](ClientSession::handle_polling_paused).
/// 4. After each input, drain [`poll_event`](ClientSession::poll_event), then write output: on
///    WebSocket every [`poll_transmit`](ClientSession::poll_transmit) frame; on polling a POST
///    of [`poll_payload`](ClientSession::poll_payload) when no POST is in flight, and a new GET
///    when [`wants_poll`](ClientSession::wants_poll) and none is in flight.
/// 5. After [`ClientEvent::Closed`], write what is still queued (the close packet on polling)
///    and drop the session.
#[derive(Debug)]
pub struct ClientSession {
    config: ClientSessionConfig,
    transport: TransportKind,
    state: State,
    upgrade: Upgrade,
    open: Option<OpenPacket>,
    /// The server is considered gone at this instant unless a packet arrives.
    alive_until: Option<Instant>,
    outbox: VecDeque<Frame>,
    probe_outbox: VecDeque<Frame>,
    events: VecDeque<ClientEvent>,
    /// A client close on polling: the close packet goes once the outbox is written.
    close_packet_pending: bool,
    /// Pings received so far.
    pings: u64,
}

impl ClientSession {
    /// A session whose handshake is under way on `transport`.
    pub fn new(config: ClientSessionConfig, transport: TransportKind, now: Instant) -> Self {
        ClientSession {
            state: State::Opening {
                deadline: now + config.handshake_timeout,
            },
            config,
            transport,
            upgrade: Upgrade::None,
            open: None,
            alive_until: None,
            outbox: VecDeque::new(),
            probe_outbox: VecDeque::new(),
            events: VecDeque::new(),
            close_packet_pending: false,
            pings: 0,
        }
    }

    /// Handles one frame received on the current transport.
    pub fn handle_frame(&mut self, now: Instant, frame: Frame) {
        if self.state == State::Closed {
            return;
        }
        let packet = match Packet::decode(frame) {
            Ok(p) => p,
            Err(_) => return self.fail(ClientCloseReason::ParseError),
        };
        if let State::Opening { .. } = self.state {
            return match packet {
                Packet::Open(open) => self.on_open(now, open),
                _ => self.fail(ClientCloseReason::ParseError),
            };
        }
        if let Some(open) = &self.open {
            self.alive_until = Some(now + open.ping_interval + open.ping_timeout);
        }
        match packet {
            Packet::Ping(data) => {
                self.pings += 1;
                // A pong is always queued, even past the bound: it is small, one per ping,
                // and dropping it would make the server close a healthy session.
                self.outbox.push_back(Packet::Pong(data).encode());
            }
            Packet::Message(m) => self.events.push_back(ClientEvent::Message(m)),
            Packet::Close => self.fail(ClientCloseReason::TransportClose),
            // A noop ends a poll during the upgrade; a pong is not expected but harmless.
            Packet::Noop | Packet::Pong(_) => {}
            Packet::Open(_) | Packet::Upgrade => self.fail(ClientCloseReason::ParseError),
        }
    }

    /// Handles the body of a polling GET: every packet in it, in order.
    pub fn handle_payload(&mut self, now: Instant, body: Bytes) {
        if self.state == State::Closed {
            return;
        }
        match payload::decode(body, self.config.max_payload_packets) {
            Ok(frames) => {
                for frame in frames {
                    self.handle_frame(now, frame);
                    if self.state == State::Closed {
                        break;
                    }
                }
            }
            Err(_) => self.fail(ClientCloseReason::ParseError),
        }
    }

    /// The current transport failed (connection refused or reset, HTTP error status, ...).
    pub fn handle_transport_error(&mut self, detail: impl Into<String>) {
        self.fail(ClientCloseReason::TransportError(detail.into()));
    }

    /// The server closed the current transport cleanly.
    pub fn handle_transport_closed(&mut self) {
        self.fail(ClientCloseReason::TransportClose);
    }

    /// Advances timers: the handshake timeout, the dead-server detection and the probe timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Closed => {}
            State::Opening { deadline } => {
                if now >= deadline {
                    self.fail(ClientCloseReason::HandshakeTimeout);
                }
            }
            State::Open => {
                if self.alive_until.is_some_and(|t| now >= t) {
                    return self.fail(ClientCloseReason::PingTimeout);
                }
                if let Upgrade::Probing { deadline } | Upgrade::Pausing { deadline } = self.upgrade
                    && now >= deadline
                {
                    self.abort_probe();
                }
            }
        }
    }

    /// Queues a message frame for the server.
    pub fn send(&mut self, frame: Frame) -> Result<(), ClientSendError> {
        if self.state == State::Closed {
            return Err(ClientSendError::Closed);
        }
        self.push(frame)
    }

    /// Closes the session from the client side. What is already queued is still to be
    /// written (as `engine.io-client` drains its write buffer first), followed on polling by a
    /// close packet in a POST of its own (Node handles a namespace DISCONNECT one tick later,
    /// so a close packet in the same body would overtake it); on WebSocket the caller closes
    /// the socket after writing.
    pub fn close(&mut self) {
        if self.state == State::Closed {
            return;
        }
        self.close_packet_pending = self.transport == TransportKind::Polling && self.open.is_some();
        self.set_closed(ClientCloseReason::ForcedClose);
    }

    /// The probe WebSocket is connected: `2probe` is queued on it.
    pub fn handle_probe_open(&mut self, now: Instant) {
        if self.upgrade != Upgrade::Wanted || self.state != State::Open {
            return;
        }
        self.upgrade = Upgrade::Probing {
            deadline: now + self.config.handshake_timeout,
        };
        self.probe_outbox
            .push_back(Packet::Ping(Bytes::from_static(b"probe")).encode());
    }

    /// The probe WebSocket could not connect or failed before the upgrade completed.
    pub fn handle_probe_error(&mut self) {
        self.abort_probe();
    }

    /// Handles a frame received on the probe WebSocket.
    pub fn handle_probe_frame(&mut self, now: Instant, frame: Frame) {
        let Upgrade::Probing { deadline } = self.upgrade else {
            return self.abort_probe();
        };
        match Packet::decode(frame) {
            Ok(Packet::Pong(data)) if data.as_ref() == b"probe" => {
                // The pause gets what is left of the probe's time, counted from now at most.
                let deadline = deadline.min(now + self.config.handshake_timeout);
                self.upgrade = Upgrade::Pausing { deadline };
            }
            _ => self.abort_probe(),
        }
    }

    /// No polling request is in flight any more: send `5` on the probe, which becomes the
    /// transport, with everything queued meanwhile after it.
    pub fn handle_polling_paused(&mut self, _now: Instant) {
        if !matches!(self.upgrade, Upgrade::Pausing { .. }) || self.state != State::Open {
            return;
        }
        self.upgrade = Upgrade::Done;
        self.transport = TransportKind::WebSocket;
        self.probe_outbox.push_back(Packet::Upgrade.encode());
        self.probe_outbox.extend(self.outbox.drain(..));
        self.events.push_back(ClientEvent::Upgraded);
    }

    /// The next event for the layer above.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// The next frame to write on the WebSocket transport. After the upgrade, the frames still
    /// owed on the probe socket (`5` and what was queued during the upgrade) come first, so
    /// that nothing sent later can overtake them (found by the `client_session` fuzz target).
    pub fn poll_transmit(&mut self) -> Option<Frame> {
        if self.transport != TransportKind::WebSocket {
            return None;
        }
        self.probe_outbox
            .pop_front()
            .or_else(|| self.outbox.pop_front())
    }

    /// The next frame to write on the probe WebSocket. After [`ClientEvent::Upgraded`] the
    /// probe socket is the transport: write these before any
    /// [`poll_transmit`](ClientSession::poll_transmit) frame (which also returns them first).
    pub fn poll_probe_transmit(&mut self) -> Option<Frame> {
        self.probe_outbox.pop_front()
    }

    /// The body of the next polling POST, at most `max_payload` bytes (or one larger frame),
    /// or `None` when nothing is queued or polling is paused.
    pub fn poll_payload(&mut self) -> Option<Bytes> {
        if self.outbox.is_empty() && self.close_packet_pending {
            self.close_packet_pending = false;
            return Some(Bytes::from_static(b"1"));
        }
        if self.transport != TransportKind::Polling
            || matches!(self.upgrade, Upgrade::Pausing { .. })
            || self.outbox.is_empty()
        {
            return None;
        }
        let max = self.open.as_ref().map_or(usize::MAX, |o| {
            usize::try_from(o.max_payload).unwrap_or(usize::MAX)
        });
        let mut enc = Encoder::new();
        while let Some(f) = self.outbox.front() {
            // A binary frame grows by a third in base64, plus the separator.
            let cost = match f {
                Frame::Text(t) => t.len() + 1,
                Frame::Binary(b) => b.len().div_ceil(3) * 4 + 2,
            };
            if !enc.is_empty() && enc.len() + cost > max {
                break;
            }
            let Some(f) = self.outbox.pop_front() else {
                break;
            };
            enc.push(&f);
        }
        let mut body = BytesMut::with_capacity(enc.len());
        for chunk in enc.into_chunks() {
            body.put_slice(&chunk);
        }
        Some(body.freeze())
    }

    /// Whether a polling GET should be in flight now.
    pub fn wants_poll(&self) -> bool {
        self.state == State::Open
            && self.transport == TransportKind::Polling
            && !matches!(self.upgrade, Upgrade::Pausing { .. })
    }

    /// Whether the driver should open a probe WebSocket now (once per session).
    pub fn wants_probe(&self) -> bool {
        self.state == State::Open && self.upgrade == Upgrade::Wanted
    }

    /// Whether a probe is under way (connecting, `2probe` sent, or pausing).
    pub fn is_probing(&self) -> bool {
        matches!(
            self.upgrade,
            Upgrade::Probing { .. } | Upgrade::Pausing { .. }
        ) || (self.upgrade == Upgrade::Wanted && self.state == State::Open)
    }

    /// Whether the probe succeeded and polling must finish its requests in flight.
    pub fn is_pausing(&self) -> bool {
        matches!(self.upgrade, Upgrade::Pausing { .. })
    }

    /// When [`handle_timeout`](ClientSession::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Closed => None,
            State::Opening { deadline } => Some(deadline),
            State::Open => {
                let probe = match self.upgrade {
                    Upgrade::Probing { deadline } | Upgrade::Pausing { deadline } => Some(deadline),
                    _ => None,
                };
                [self.alive_until, probe].into_iter().flatten().min()
            }
        }
    }

    /// The handshake data, once open.
    pub fn handshake(&self) -> Option<&OpenPacket> {
        self.open.as_ref()
    }

    /// The transport in use.
    pub fn transport(&self) -> TransportKind {
        self.transport
    }

    /// Whether the handshake is done and the session not closed.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Whether the session is closed.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// How many pings the server has sent so far (the `ping` event of `engine.io-client`:
    /// compare with the previous value after each input).
    pub fn pings(&self) -> u64 {
        self.pings
    }

    /// How many frames wait to be written.
    pub fn buffered(&self) -> usize {
        self.outbox.len()
    }

    /// Whether [`send`](ClientSession::send) would accept another frame.
    pub fn has_capacity(&self) -> bool {
        self.outbox.len() < self.config.max_buffered_packets
    }

    fn on_open(&mut self, now: Instant, open: OpenPacket) {
        self.alive_until = Some(now + open.ping_interval + open.ping_timeout);
        if self.config.upgrade
            && self.transport == TransportKind::Polling
            && open.upgrades.iter().any(|u| u == "websocket")
        {
            self.upgrade = Upgrade::Wanted;
        }
        self.state = State::Open;
        self.open = Some(open.clone());
        self.events.push_back(ClientEvent::Opened(open));
    }

    fn abort_probe(&mut self) {
        if matches!(
            self.upgrade,
            Upgrade::Wanted | Upgrade::Probing { .. } | Upgrade::Pausing { .. }
        ) {
            self.upgrade = Upgrade::Done;
            self.probe_outbox.clear();
            if self.state == State::Open {
                self.events.push_back(ClientEvent::UpgradeFailed);
            }
        }
    }

    fn push(&mut self, frame: Frame) -> Result<(), ClientSendError> {
        if self.outbox.len() >= self.config.max_buffered_packets {
            return Err(ClientSendError::Full);
        }
        self.outbox.push_back(frame);
        Ok(())
    }

    /// Closes on an error: what was queued is dropped.
    fn fail(&mut self, reason: ClientCloseReason) {
        if self.state == State::Closed {
            return;
        }
        self.outbox.clear();
        self.probe_outbox.clear();
        self.close_packet_pending = false;
        self.set_closed(reason);
    }

    fn set_closed(&mut self, reason: ClientCloseReason) {
        if matches!(
            self.upgrade,
            Upgrade::Wanted | Upgrade::Probing { .. } | Upgrade::Pausing { .. }
        ) {
            // The probe never became the transport: what it owed goes with it.
            self.upgrade = Upgrade::Done;
            self.probe_outbox.clear();
        }
        // After the upgrade the probe outbox holds `5` and what was queued before it, owed
        // on the transport: a client close still writes them (found by the client_session
        // fuzz target: a close right after the upgrade dropped the queued messages).
        self.state = State::Closed;
        self.events.push_back(ClientEvent::Closed(reason));
    }
}

#[cfg(test)]
mod tests;
