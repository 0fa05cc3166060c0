//! The server side of one Engine.IO session, as a sans-IO state machine.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::payload::{self, Encoder};
use super::{Frame, Message, OpenPacket, Packet, Sid, v3};

/// How long after the upgrade probe a waiting poll gets its noop (Node checks every 100 ms).
pub const NOOP_DELAY: Duration = Duration::from_millis(100);

/// Settings of a session. The defaults are Node's (`engine.io` 6).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SessionConfig {
    /// Time between two pings sent by the server. Default 25 s.
    pub ping_interval: Duration,
    /// How long the server waits for the pong after a ping. Default 20 s.
    pub ping_timeout: Duration,
    /// How long a WebSocket probe may take to complete the upgrade. Default 10 s.
    pub upgrade_timeout: Duration,
    /// The largest polling body (and WebSocket message) accepted, in bytes; advertised to the
    /// client as `maxPayload`. Default 1 000 000 (Node's `maxHttpBufferSize`).
    pub max_payload: usize,
    /// Whether a polling session may upgrade to WebSocket. Default true.
    pub allow_upgrades: bool,
    /// Most packets a polling body may hold; past it the session closes with `parse error`.
    /// Default 16 384 (the JS client batches up to `max_payload` bytes in one body).
    pub max_payload_packets: usize,
    /// Most packets waiting to be written to the transport. When full, [`Session::send`] fails
    /// and the caller applies its slow-consumer policy. Default 1024.
    pub max_buffered_packets: usize,
    /// Most bytes waiting to be written to the transport (a single larger packet is still
    /// accepted into an empty outbox). Default 8 MiB.
    pub max_buffered_bytes: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            upgrade_timeout: Duration::from_millis(10_000),
            max_payload: 1_000_000,
            allow_upgrades: true,
            max_payload_packets: 16_384,
            max_buffered_packets: 1024,
            max_buffered_bytes: 8 * 1024 * 1024,
        }
    }
}

/// The transport a session currently uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    WebSocket,
}

impl TransportKind {
    /// The name used in the `transport` query parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Polling => "polling",
            TransportKind::WebSocket => "websocket",
        }
    }
}

/// The Engine.IO protocol revision of a session (the `EIO` query parameter of its handshake).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Engine.IO v3 (`socket.io-client` 2.x): the client pings, length-prefixed polling
    /// payloads, typed binary packets (see [`v3`]).
    V3 {
        /// Whether binary goes as binary (`false` when the client asked for `b64=1`: binary
        /// is then sent as base64 text).
        supports_binary: bool,
    },
    /// Engine.IO v4: the server pings, `\x1e`-separated polling payloads.
    V4,
}

impl Protocol {
    /// The revision number: 3 or 4.
    pub fn revision(self) -> u8 {
        match self {
            Protocol::V3 { .. } => 3,
            Protocol::V4 => 4,
        }
    }
}

/// Why a session closed. [`CloseReason::as_str`] gives Node's reason string.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client closed the transport or sent a close packet (`transport close`).
    TransportClose,
    /// The transport failed or the client broke a transport rule (`transport error`); the
    /// detail is for logs.
    TransportError(&'static str),
    /// No pong within `ping_timeout` (`ping timeout`).
    PingTimeout,
    /// The client sent bytes that are not Engine.IO packets (`parse error`).
    ParseError,
    /// The server closed the session (`forced close`).
    ForcedClose,
    /// The server is shutting down (`server shutting down`).
    ServerShuttingDown,
    /// The client reads too slowly: its outgoing queue reached `max_buffered_packets` or
    /// `max_buffered_bytes` (`slow consumer`; Node has no such limit).
    SlowConsumer,
}

impl CloseReason {
    /// Node's reason string.
    pub fn as_str(&self) -> &'static str {
        match self {
            CloseReason::TransportClose => "transport close",
            CloseReason::TransportError(_) => "transport error",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::ParseError => "parse error",
            CloseReason::ForcedClose => "forced close",
            CloseReason::ServerShuttingDown => "server shutting down",
            CloseReason::SlowConsumer => "slow consumer",
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::TransportError(detail) => write!(f, "transport error: {detail}"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// What the session reports to the layer above.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A message from the client.
    Message(Message),
    /// The session is closed; no further event follows.
    Closed(CloseReason),
}

/// Why [`Session::send`] refused a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The outbox is full (the client does not read fast enough).
    #[error("outbound buffer full")]
    Full,
    /// The session is closed.
    #[error("session closed")]
    Closed,
}

/// The answer to a packet received on a WebSocket probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeReply {
    /// Write this frame (`3probe`) on the probe socket.
    Send(Frame),
    /// The upgrade is complete: the probe socket is now the session's transport.
    Upgraded,
    /// The upgrade failed: close the probe socket; the session goes on over polling.
    Aborted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Upgrade {
    None,
    Probing { deadline: Instant },
    Done,
}

/// The server side of one Engine.IO session: heartbeat, upgrade, close and a bounded outbox.
///
/// It performs no I/O and reads no clock. Call order, for the task that owns it:
/// 1. [`Session::new`] queues the open packet.
/// 2. Feed input as it happens: [`handle_frame`](Session::handle_frame) /
///    [`handle_payload`](Session::handle_payload) for what arrives on the current transport,
///    [`start_probe`](Session::start_probe) and
///    [`handle_probe_frame`](Session::handle_probe_frame) for a WebSocket upgrade,
///    [`handle_transport_closed`](Session::handle_transport_closed), and
///    [`handle_timeout`](Session::handle_timeout) once [`poll_timeout`](Session::poll_timeout)
///    has passed. Commands from the application: [`send`](Session::send),
///    [`close`](Session::close).
/// 3. After each input, drain [`poll_event`](Session::poll_event) until `None`, then write
///    output: on WebSocket every [`poll_transmit`](Session::poll_transmit) frame, on polling
///    [`poll_payload`](Session::poll_payload) when a GET is waiting.
/// 4. Once [`closed`](Session::closed) is `Some` and the output is drained, drop the session.
#[derive(Debug)]
pub struct Session {
    sid: Sid,
    protocol: Protocol,
    config: SessionConfig,
    transport: TransportKind,
    upgrade: Upgrade,
    next_ping: Option<Instant>,
    /// v4: when the pong to the last ping is due. v3: when the next client ping is due.
    pong_deadline: Option<Instant>,
    pong_grace_used: bool,
    /// The server holds reading (its handler is full): a pong cannot be read meanwhile.
    reading_held: bool,
    /// Queued frames, each with whether it may be compressed (`compress(false)` clears it).
    outbox: VecDeque<(Frame, bool)>,
    outbox_bytes: usize,
    noop_pending: bool,
    /// When the noop for the waiting poll is due, during an upgrade.
    noop_at: Option<Instant>,
    events: VecDeque<Event>,
    closed: Option<CloseReason>,
}

impl Session {
    /// A new session on `transport`, with the open packet queued as its first frame.
    pub fn new(sid: Sid, config: SessionConfig, transport: TransportKind, now: Instant) -> Self {
        Self::with_protocol(sid, config, transport, now, Protocol::V4)
    }

    /// A new Engine.IO v3 session: the server sends no ping and expects one from the client
    /// within `ping_interval + ping_timeout` (from the handshake, then from each ping), and
    /// speaks the v3 framing on both transports.
    pub fn new_v3(
        sid: Sid,
        config: SessionConfig,
        transport: TransportKind,
        now: Instant,
        supports_binary: bool,
    ) -> Self {
        Self::with_protocol(
            sid,
            config,
            transport,
            now,
            Protocol::V3 { supports_binary },
        )
    }

    fn with_protocol(
        sid: Sid,
        config: SessionConfig,
        transport: TransportKind,
        now: Instant,
        protocol: Protocol,
    ) -> Self {
        let upgrades = match transport {
            TransportKind::Polling if config.allow_upgrades => vec!["websocket".to_owned()],
            _ => Vec::new(),
        };
        let open = Packet::Open(OpenPacket {
            sid,
            upgrades,
            ping_interval: config.ping_interval,
            ping_timeout: config.ping_timeout,
            max_payload: config.max_payload as u64,
        })
        .encode();
        let (next_ping, pong_deadline) = match protocol {
            Protocol::V4 => (Some(now + config.ping_interval), None),
            Protocol::V3 { .. } => (None, Some(now + config.ping_interval + config.ping_timeout)),
        };
        let mut session = Session {
            sid,
            protocol,
            next_ping,
            config,
            transport,
            upgrade: Upgrade::None,
            pong_deadline,
            pong_grace_used: false,
            reading_held: false,
            outbox: VecDeque::new(),
            outbox_bytes: 0,
            noop_pending: false,
            noop_at: None,
            events: VecDeque::new(),
            closed: None,
        };
        session.push(open);
        session
    }

    /// Handles one frame received on the current transport.
    pub fn handle_frame(&mut self, now: Instant, frame: Frame) {
        if self.closed.is_some() {
            return;
        }
        match self.decode(frame) {
            Ok(p) => self.handle_packet(now, p),
            Err(_) => self.fail(CloseReason::ParseError),
        }
    }

    /// Handles one decoded packet.
    fn handle_packet(&mut self, now: Instant, packet: Packet) {
        if let Protocol::V3 { .. } = self.protocol {
            return self.handle_v3_packet(now, packet);
        }
        match packet {
            Packet::Message(msg) => {
                self.extend_pong_deadline(now);
                self.events.push_back(Event::Message(msg));
            }
            Packet::Pong(_) => {
                // An unsolicited pong changes nothing (no timer is scheduled for it).
                if self.pong_deadline.take().is_some() {
                    self.pong_grace_used = false;
                    self.next_ping = Some(now + self.config.ping_interval);
                }
            }
            Packet::Ping(_) => {
                self.fail(CloseReason::TransportError("invalid heartbeat direction"))
            }
            Packet::Close => self.client_close(),
            Packet::Open(_) => self.fail(CloseReason::ParseError),
            // Node ignores both; they carry nothing.
            Packet::Upgrade | Packet::Noop => {}
        }
    }

    /// A packet from a v3 client: the client pings and the server answers at once.
    fn handle_v3_packet(&mut self, now: Instant, packet: Packet) {
        match packet {
            Packet::Message(msg) => self.events.push_back(Event::Message(msg)),
            Packet::Ping(_) => {
                if !self.has_capacity() {
                    // A client that pings but never reads: the pongs would only pile up.
                    return self.fail(CloseReason::TransportError(
                        "outbound buffer full (slow consumer)",
                    ));
                }
                // As Node: the pong carries no data, and the wait for the next ping starts
                // again.
                self.pong_deadline = Some(now + self.heartbeat_window());
                self.push(Packet::Pong(Bytes::new()).encode());
            }
            Packet::Pong(_) => {
                self.fail(CloseReason::TransportError("invalid heartbeat direction"))
            }
            Packet::Close => self.client_close(),
            Packet::Open(_) => self.fail(CloseReason::ParseError),
            Packet::Upgrade | Packet::Noop => {}
        }
    }

    /// Decodes a frame received on the transport or the probe, in this session's protocol.
    fn decode(&self, frame: Frame) -> Result<Packet, super::DecodeError> {
        match self.protocol {
            Protocol::V4 => Packet::decode(frame),
            Protocol::V3 { .. } => Packet::decode(v3::decode_frame(frame)?),
        }
    }

    /// How long the deadline of the heartbeat gives the client: the pong's `ping_timeout`
    /// (v4), the next ping's `ping_interval + ping_timeout` (v3).
    fn heartbeat_window(&self) -> Duration {
        match self.protocol {
            Protocol::V4 => self.config.ping_timeout,
            Protocol::V3 { .. } => self.config.ping_interval + self.config.ping_timeout,
        }
    }

    /// Handles a polling POST body: every packet in it, in order.
    pub fn handle_payload(&mut self, now: Instant, body: Bytes) {
        if self.closed.is_some() {
            return;
        }
        let max = self.config.max_payload_packets;
        let frames = match self.protocol {
            Protocol::V4 => payload::decode(body, max),
            Protocol::V3 { .. } => v3::decode_payload(body, max),
        };
        self.handle_frames(now, frames);
    }

    /// Handles a polling POST body sent as `application/octet-stream`: the binary payload
    /// format of v3. A v4 session has no such format and closes with `parse error`.
    pub fn handle_binary_payload(&mut self, now: Instant, body: Bytes) {
        if self.closed.is_some() {
            return;
        }
        let frames = match self.protocol {
            Protocol::V4 => Err(super::DecodeError::InvalidUtf8),
            Protocol::V3 { .. } => v3::decode_binary_payload(body, self.config.max_payload_packets),
        };
        self.handle_frames(now, frames);
    }

    /// Handles the frames of a decoded payload, in v4 form.
    fn handle_frames(&mut self, now: Instant, frames: Result<Vec<Frame>, super::DecodeError>) {
        match frames {
            Ok(frames) => {
                // The payload codecs give v4 frames: no second conversion.
                for frame in frames {
                    match Packet::decode(frame) {
                        Ok(p) => self.handle_packet(now, p),
                        Err(_) => self.fail(CloseReason::ParseError),
                    }
                    if self.closed.is_some() {
                        break;
                    }
                }
            }
            Err(_) => self.fail(CloseReason::ParseError),
        }
    }

    /// A WebSocket with this session's id has connected: start probing it. `false` means the
    /// probe is refused (already upgraded, already probing, closed, or upgrades off) and the
    /// socket must be closed.
    pub fn start_probe(&mut self, now: Instant) -> bool {
        let allowed = self.closed.is_none()
            && self.config.allow_upgrades
            && self.transport == TransportKind::Polling
            && self.upgrade == Upgrade::None;
        if allowed {
            self.upgrade = Upgrade::Probing {
                deadline: now + self.config.upgrade_timeout,
            };
        }
        allowed
    }

    /// Handles one frame received on the probe socket.
    pub fn handle_probe_frame(&mut self, now: Instant, frame: Frame) -> ProbeReply {
        if self.closed.is_some() || !matches!(self.upgrade, Upgrade::Probing { .. }) {
            return ProbeReply::Aborted;
        }
        match self.decode(frame) {
            Ok(Packet::Ping(data)) if data.as_ref() == b"probe" => {
                // The waiting (or next) poll is answered with a noop so that the client can
                // pause polling and send the upgrade packet. Like Node, the noop comes from a
                // check `NOOP_DELAY` after the probe: a poll answered with data before then
                // needs none (clients count the packets they get).
                self.noop_at = Some(now + NOOP_DELAY);
                ProbeReply::Send(Packet::Pong(data).encode())
            }
            Ok(Packet::Upgrade) => {
                self.upgrade = Upgrade::Done;
                self.transport = TransportKind::WebSocket;
                self.noop_pending = false;
                self.noop_at = None;
                ProbeReply::Upgraded
            }
            _ => {
                self.abort_probe();
                ProbeReply::Aborted
            }
        }
    }

    /// The probe socket went away before the upgrade completed.
    pub fn abort_probe(&mut self) {
        if matches!(self.upgrade, Upgrade::Probing { .. }) {
            self.upgrade = Upgrade::None;
            self.noop_pending = false;
            self.noop_at = None;
        }
    }

    /// The current transport was closed or failed (WebSocket closed, pending GET aborted).
    pub fn handle_transport_closed(&mut self, reason: CloseReason) {
        self.fail(reason);
    }

    /// The server stops (`held`) or resumes reading the client, because its handler cannot
    /// take more messages (backpressure). While reading is held the pong deadline does not
    /// run: the client's pong may be waiting behind the messages not read, and it is the
    /// server that is slow, not the client. When reading resumes with a pong awaited, the
    /// client gets a full `ping_timeout` from then.
    pub fn set_reading_held(&mut self, now: Instant, held: bool) {
        if self.reading_held && !held && self.pong_deadline.is_some() {
            self.pong_deadline = Some(now + self.heartbeat_window());
        }
        self.reading_held = held;
    }

    /// Advances timers: sends the ping that is due, closes on a missed pong, ends a probe that
    /// took too long.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed.is_some() {
            return;
        }
        if !self.reading_held && self.pong_deadline.is_some_and(|d| now >= d) {
            return self.fail(CloseReason::PingTimeout);
        }
        if let Upgrade::Probing { deadline } = self.upgrade
            && now >= deadline
        {
            self.abort_probe();
        }
        if self.noop_at.is_some_and(|t| now >= t) {
            // Like Node's interval: a poll that comes while the upgrade is under way (the
            // client may re-poll once after a noop) gets another noop at the next check.
            self.noop_pending = true;
            self.noop_at = self.is_probing().then(|| now + NOOP_DELAY);
        }
        if self.next_ping.is_some_and(|t| now >= t) {
            if !self.has_capacity() {
                // The client answers pings but reads nothing: the outbox would only grow.
                return self.fail(CloseReason::SlowConsumer);
            }
            // The deadline counts from when the ping was due, not from when the timer ran:
            // a late timer must not make the session outlive interval + timeout. A server so
            // late that the whole window has passed gives the client a full window from now.
            let due = self.next_ping.take().unwrap_or(now);
            let deadline = due + self.config.ping_timeout;
            self.pong_deadline = Some(if deadline > now {
                deadline
            } else {
                now + self.config.ping_timeout
            });
            self.push(Frame::Text(Bytes::from_static(b"2")));
        }
    }

    /// Queues a frame for the client.
    pub fn send(&mut self, frame: Frame) -> Result<(), SendError> {
        self.send_with(frame, true)
    }

    /// Queues a frame for the client; `compress: false` asks the transport not to compress
    /// it (Node's `compress` option: no permessage-deflate for this message, and a polling
    /// response holding only such frames is not HTTP-compressed).
    pub fn send_with(&mut self, frame: Frame, compress: bool) -> Result<(), SendError> {
        if self.closed.is_some() {
            return Err(SendError::Closed);
        }
        if !self.has_capacity() {
            return Err(SendError::Full);
        }
        self.push_with(frame, compress);
        Ok(())
    }

    /// Queues a frame even when the outbox is full: for the frames that must follow one
    /// already accepted (the attachments of a packet). Dropped when the session is closed.
    pub fn push_unbounded(&mut self, frame: Frame) {
        self.push_unbounded_with(frame, true);
    }

    /// As [`Session::push_unbounded`], with the `compress` option of
    /// [`Session::send_with`].
    pub fn push_unbounded_with(&mut self, frame: Frame, compress: bool) {
        if self.closed.is_none() {
            self.push_with(frame, compress);
        }
    }

    /// Closes the session from the server side. What is already queued is still written,
    /// followed on polling by the close packet.
    pub fn close(&mut self, reason: CloseReason) {
        if self.closed.is_some() {
            return;
        }
        if self.transport == TransportKind::Polling {
            self.push(Packet::Close.encode());
        }
        self.set_closed(reason);
    }

    /// The next event for the layer above.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front();
        release_if_empty(&mut self.events);
        event
    }

    /// The next event, left in place (a driver that applies backpressure looks before it
    /// takes).
    pub fn peek_event(&self) -> Option<&Event> {
        self.events.front()
    }

    /// The next frame to write on the WebSocket transport.
    pub fn poll_transmit(&mut self) -> Option<Frame> {
        self.poll_transmit_with().map(|(f, _)| f)
    }

    /// The next frame to write on the WebSocket transport, with whether it may be compressed.
    pub fn poll_transmit_with(&mut self) -> Option<(Frame, bool)> {
        if self.transport != TransportKind::WebSocket {
            return None;
        }
        self.pop().map(|(f, c)| (self.ws_frame(f), c))
    }

    /// A copy of every queued frame as the WebSocket carries it, whatever the transport (a
    /// driver that also hands a closed session's last packets to a WebSocket that was being
    /// probed).
    pub fn queued_frames(&self) -> Vec<Frame> {
        self.queued_frames_with()
            .into_iter()
            .map(|(f, _)| f)
            .collect()
    }

    /// As [`Session::queued_frames`], with whether each may be compressed.
    pub fn queued_frames_with(&self) -> Vec<(Frame, bool)> {
        self.outbox
            .iter()
            .map(|(f, c)| (self.ws_frame(f.clone()), *c))
            .collect()
    }

    /// A frame in this session's WebSocket form.
    fn ws_frame(&self, frame: Frame) -> Frame {
        match self.protocol {
            Protocol::V4 => frame,
            Protocol::V3 { supports_binary } => v3::encode_frame(frame, supports_binary),
        }
    }

    /// A polling body holding only a noop (`6`, or `1:6` in v3): the answer to a poll that
    /// must end with nothing to say.
    pub fn noop_payload(&self) -> Encoder {
        self.encode_payload(&[(Packet::Noop.encode(), true)])
    }

    fn encode_payload(&self, frames: &[(Frame, bool)]) -> Encoder {
        match self.protocol {
            Protocol::V4 => {
                let mut enc = Encoder::new();
                for (f, compress) in frames {
                    enc.push_with(f, *compress);
                }
                enc
            }
            Protocol::V3 { supports_binary } => {
                let plain: Vec<Frame> = frames.iter().map(|(f, _)| f.clone()).collect();
                let mut enc = v3::encode_payload(&plain, supports_binary);
                enc.set_compress(frames.iter().any(|(_, c)| *c));
                enc
            }
        }
    }

    /// The body for a waiting polling GET, or `None` when there is nothing to send yet.
    ///
    /// During an upgrade, after the probe, this is a lone noop. Otherwise it is everything
    /// queued: the server does not split its polling responses.
    pub fn poll_payload(&mut self) -> Option<Encoder> {
        if self.noop_pending {
            self.noop_pending = false;
            return Some(self.noop_payload());
        }
        if self.transport != TransportKind::Polling || self.outbox.is_empty() {
            return None;
        }
        if self.protocol == Protocol::V4 {
            let mut enc = Encoder::new();
            while let Some((f, compress)) = self.pop() {
                enc.push_with(&f, compress);
            }
            return Some(enc);
        }
        let mut frames = Vec::with_capacity(self.outbox.len());
        while let Some(f) = self.pop() {
            frames.push(f);
        }
        Some(self.encode_payload(&frames))
    }

    /// When [`handle_timeout`](Session::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed.is_some() {
            return None;
        }
        let probe = match self.upgrade {
            Upgrade::Probing { deadline } => Some(deadline),
            _ => None,
        };
        let pong = self.pong_deadline.filter(|_| !self.reading_held);
        [self.next_ping, pong, probe, self.noop_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// The session id.
    pub fn sid(&self) -> Sid {
        self.sid
    }

    /// The protocol revision of this session.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The settings of this session.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The transport in use.
    pub fn transport(&self) -> TransportKind {
        self.transport
    }

    /// Whether a WebSocket probe is in progress.
    pub fn is_probing(&self) -> bool {
        matches!(self.upgrade, Upgrade::Probing { .. })
    }

    /// Whether [`send`](Session::send) would accept another frame.
    pub fn has_capacity(&self) -> bool {
        self.outbox.is_empty()
            || (self.outbox.len() < self.config.max_buffered_packets
                && self.outbox_bytes < self.config.max_buffered_bytes)
    }

    /// Whether output is waiting.
    pub fn has_output(&self) -> bool {
        !self.outbox.is_empty() || self.noop_pending
    }

    /// The close reason, once the session is closed.
    pub fn closed(&self) -> Option<&CloseReason> {
        self.closed.as_ref()
    }

    fn client_close(&mut self) {
        self.outbox.clear();
        self.outbox_bytes = 0;
        if self.transport == TransportKind::Polling {
            self.push(Packet::Noop.encode());
        }
        self.set_closed(CloseReason::TransportClose);
    }

    /// Closes on an error: what was queued is dropped; on polling a waiting GET gets `1`.
    fn fail(&mut self, reason: CloseReason) {
        if self.closed.is_some() {
            return;
        }
        self.outbox.clear();
        self.outbox_bytes = 0;
        if self.transport == TransportKind::Polling {
            self.push(Packet::Close.encode());
        }
        self.set_closed(reason);
    }

    fn set_closed(&mut self, reason: CloseReason) {
        self.noop_pending = false;
        self.noop_at = None;
        self.upgrade = match self.upgrade {
            Upgrade::Probing { .. } => Upgrade::None,
            other => other,
        };
        self.events.push_back(Event::Closed(reason.clone()));
        self.closed = Some(reason);
    }

    /// engine.io 6.6: while a pong is awaited, the first other packet restarts the timeout
    /// once (a pong stuck behind a large upload is not a dead peer).
    fn extend_pong_deadline(&mut self, now: Instant) {
        if self.pong_deadline.is_some() && !self.pong_grace_used {
            self.pong_grace_used = true;
            self.pong_deadline = Some(now + self.config.ping_timeout);
        }
    }

    fn push(&mut self, frame: Frame) {
        self.push_with(frame, true);
    }

    fn push_with(&mut self, frame: Frame, compress: bool) {
        self.outbox_bytes += frame.len();
        self.outbox.push_back((frame, compress));
    }

    fn pop(&mut self) -> Option<(Frame, bool)> {
        let (f, compress) = self.outbox.pop_front()?;
        self.outbox_bytes -= f.len();
        release_if_empty(&mut self.outbox);
        Some((f, compress))
    }
}

/// Gives an emptied queue's memory back: an idle session then holds no buffer for its
/// outbox or its events (about 0.3 KiB per idle session otherwise, kept from its first
/// frames), at the price of one allocation per burst.
fn release_if_empty<T>(q: &mut VecDeque<T>) {
    if q.is_empty() && q.capacity() > 0 {
        *q = VecDeque::new();
    }
}

#[cfg(test)]
mod tests;
