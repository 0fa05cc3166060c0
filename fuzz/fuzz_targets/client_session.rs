//! The client side of an Engine.IO session (`ClientSession`) driven by an arbitrary server and
//! driver: frames and polling bodies from the server, probe events, timer firings, sends,
//! closes and output drains, on a fake clock that only moves forward.
//!
//! Invariants checked:
//! - nothing panics;
//! - events: `Opened` at most once and before anything else; messages are the ones the server
//!   sent after the open packet, in order; `Upgraded` / `UpgradeFailed` at most once between
//!   them; exactly one `Closed`, last, and only once `is_closed()`;
//! - timers: `poll_timeout()` is `None` once closed, and after `handle_timeout(now)` nothing is
//!   due at `now` any more;
//! - output: every frame and polling body decodes as Engine.IO; sent messages come out in
//!   order, once each, and are dropped only when the session failed (not after a client
//!   `close()`, which writes them first); nothing goes out on the WebSocket transport before the
//!   upgrade nor on polling after it; after a client close on polling, the close packet `1` is
//!   the last body; the outbox holds at most `max_buffered_packets` messages plus the pongs
//!   answered since it was last empty;
//! - commands: `send` fails exactly when closed or full; `wants_poll` and `wants_probe` are
//!   false once closed; the transport only changes, to WebSocket, with `Upgraded`.
#![no_main]

use std::collections::VecDeque;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::{Bytes, BytesMut};
use ferrio_proto::engine::client::{
    ClientCloseReason, ClientEvent, ClientSendError, ClientSession, ClientSessionConfig,
};
use ferrio_proto::engine::{Frame, Message, Packet, TransportKind, payload};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    config: Config,
    ops: Vec<Op>,
}

/// Small bounds, so that limits and timers are reached within a short input.
#[derive(Arbitrary, Debug)]
struct Config {
    websocket: bool,
    upgrade: bool,
    handshake_timeout_ms: u16,
    max_payload_packets: u8,
    max_buffered_packets: u8,
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// A frame on the current transport (WebSocket; on polling the driver only feeds bodies,
    /// but the session must cope either way).
    Frame(ServerFrame),
    /// The body of a polling GET.
    Payload(PayloadInput),
    TransportError,
    TransportClosed,
    ProbeOpen,
    ProbeError,
    ProbeFrame(ServerFrame),
    PollingPaused,
    /// Moves the clock forward by this many milliseconds, then fires the timers.
    Advance(u16),
    /// Moves the clock to `poll_timeout()` (if later), then fires the timers.
    FireTimer,
    Send {
        binary: bool,
        len: u8,
    },
    Close,
    PollEvent,
    DrainTransmit,
    DrainProbe,
    PollPayload,
}

/// A frame from the server: arbitrary, or one of the packets that drive the state machine.
#[derive(Arbitrary, Debug)]
enum ServerFrame {
    Text(String),
    Binary(Vec<u8>),
    Open {
        websocket_upgrade: bool,
        ping_interval_ms: u16,
        ping_timeout_ms: u16,
        max_payload: u16,
    },
    Message(String),
    Ping,
    PongProbe,
    Close,
    Noop,
}

impl ServerFrame {
    fn into_frame(self) -> Frame {
        match self {
            ServerFrame::Text(s) => Frame::Text(Bytes::from(s)),
            ServerFrame::Binary(b) => Frame::Binary(Bytes::from(b)),
            ServerFrame::Open {
                websocket_upgrade,
                ping_interval_ms,
                ping_timeout_ms,
                max_payload,
            } => {
                let upgrades = if websocket_upgrade {
                    r#"["websocket"]"#
                } else {
                    "[]"
                };
                Frame::Text(Bytes::from(format!(
                    r#"0{{"sid":"fuzzSid_0123456789-A","upgrades":{upgrades},"pingInterval":{},"pingTimeout":{},"maxPayload":{max_payload}}}"#,
                    ping_interval_ms % 2000,
                    ping_timeout_ms % 2000,
                )))
            }
            ServerFrame::Message(s) => Frame::text_message(&s),
            ServerFrame::Ping => Packet::Ping(Bytes::new()).encode(),
            ServerFrame::PongProbe => Packet::Pong(Bytes::from_static(b"probe")).encode(),
            ServerFrame::Close => Packet::Close.encode(),
            ServerFrame::Noop => Packet::Noop.encode(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum PayloadInput {
    Raw(Vec<u8>),
    Frames(Vec<ServerFrame>),
}

impl PayloadInput {
    fn into_body(self) -> Bytes {
        match self {
            PayloadInput::Raw(b) => Bytes::from(b),
            PayloadInput::Frames(frames) => {
                let mut enc = payload::Encoder::new();
                for f in frames {
                    enc.push(&f.into_frame());
                }
                let mut out = BytesMut::new();
                for c in enc.into_chunks() {
                    out.extend_from_slice(&c);
                }
                out.freeze()
            }
        }
    }
}

fuzz_target!(|input: Input| {
    let mut h = Harness::new(&input.config);
    for op in input.ops {
        let before = h.session.transport();
        let paused = matches!(op, Op::PollingPaused) && h.session.is_pausing();
        h.apply(op);
        let after = h.session.transport();
        if before != after {
            assert!(
                paused && before == TransportKind::Polling && after == TransportKind::WebSocket,
                "the transport changed from {before:?} to {after:?} outside the upgrade"
            );
        }
        h.check();
    }
    h.finish();
});

struct Harness {
    session: ClientSession,
    base: Instant,
    elapsed: Duration,
    max_buffered_packets: usize,
    max_payload_packets: usize,
    next_id: u64,
    /// Whether the open packet has been fed (the session only reports messages after it).
    open_fed: bool,
    /// Messages fed after the open packet, not yet seen as events.
    fed: VecDeque<Message>,
    /// Frames accepted by `send`, not yet seen in the output.
    sent: VecDeque<Frame>,
    /// Pongs queued since the outbox was last seen empty.
    pongs: usize,
    events: Vec<ClientEvent>,
    /// The session closed by a failure (its queue dropped) rather than by `close()`.
    failed: bool,
    /// `close()` was called while open on polling: `1` must be the last body.
    close_packet_owed: bool,
    close_packet_seen: bool,
}

impl Harness {
    fn new(c: &Config) -> Self {
        static BASE: OnceLock<Instant> = OnceLock::new();
        let base = *BASE.get_or_init(Instant::now);
        let mut config = ClientSessionConfig::default();
        config.handshake_timeout = Duration::from_millis(u64::from(c.handshake_timeout_ms % 2000));
        config.upgrade = c.upgrade;
        config.max_payload_packets = 1 + usize::from(c.max_payload_packets % 8);
        config.max_buffered_packets = 1 + usize::from(c.max_buffered_packets % 8);
        let transport = if c.websocket {
            TransportKind::WebSocket
        } else {
            TransportKind::Polling
        };
        Harness {
            max_buffered_packets: config.max_buffered_packets,
            max_payload_packets: config.max_payload_packets,
            session: ClientSession::new(config, transport, base),
            base,
            elapsed: Duration::ZERO,
            next_id: 0,
            open_fed: false,
            fed: VecDeque::new(),
            sent: VecDeque::new(),
            pongs: 0,
            events: Vec::new(),
            failed: false,
            close_packet_owed: false,
            close_packet_seen: false,
        }
    }

    fn now(&self) -> Instant {
        self.base + self.elapsed
    }

    fn apply(&mut self, op: Op) {
        let now = self.now();
        match op {
            Op::Frame(f) => {
                let frame = f.into_frame();
                self.expect_fed(std::slice::from_ref(&frame));
                self.session.handle_frame(now, frame);
            }
            Op::Payload(p) => {
                let body = p.into_body();
                if let Ok(frames) = payload::decode(body.clone(), self.max_payload_packets) {
                    self.expect_fed(&frames);
                }
                self.session.handle_payload(now, body);
            }
            Op::TransportError => self.session.handle_transport_error("fuzz"),
            Op::TransportClosed => self.session.handle_transport_closed(),
            Op::ProbeOpen => self.session.handle_probe_open(now),
            Op::ProbeError => self.session.handle_probe_error(),
            Op::ProbeFrame(f) => self.session.handle_probe_frame(now, f.into_frame()),
            Op::PollingPaused => {
                let was_pausing = self.session.is_pausing() && self.session.is_open();
                self.session.handle_polling_paused(now);
                if was_pausing {
                    assert_eq!(self.session.transport(), TransportKind::WebSocket);
                    assert!(!self.session.is_pausing());
                }
            }
            Op::Advance(ms) => {
                self.elapsed += Duration::from_millis(u64::from(ms));
                self.fire();
            }
            Op::FireTimer => {
                if let Some(t) = self.session.poll_timeout() {
                    let at = t.saturating_duration_since(self.base);
                    self.elapsed = self.elapsed.max(at);
                }
                self.fire();
            }
            Op::Send { binary, len } => {
                let id = self.next_id;
                self.next_id += 1;
                let frame = if binary {
                    let mut b = id.to_be_bytes().to_vec();
                    b.resize(8 + usize::from(len), 0xAB);
                    Frame::Binary(Bytes::from(b))
                } else {
                    Frame::text_message(&format!("m{id}:{}", "x".repeat(usize::from(len))))
                };
                let closed = self.session.is_closed();
                let full = !self.session.has_capacity();
                match self.session.send(frame.clone()) {
                    Ok(()) => {
                        assert!(!closed && !full, "send accepted while closed or full");
                        self.sent.push_back(frame);
                    }
                    Err(ClientSendError::Closed) => assert!(closed, "send refused as closed"),
                    Err(ClientSendError::Full) => {
                        assert!(!closed && full, "send refused as full")
                    }
                    Err(e) => panic!("unexpected send error {e:?}"),
                }
            }
            Op::Close => {
                let owes = !self.session.is_closed()
                    && self.session.is_open()
                    && self.session.transport() == TransportKind::Polling;
                self.session.close();
                self.close_packet_owed |= owes;
            }
            Op::PollEvent => {
                if let Some(e) = self.session.poll_event() {
                    self.on_event(e);
                }
            }
            Op::DrainTransmit => {
                while let Some(f) = self.session.poll_transmit() {
                    assert_eq!(
                        self.session.transport(),
                        TransportKind::WebSocket,
                        "WebSocket output while polling"
                    );
                    self.on_output(f);
                }
            }
            Op::DrainProbe => {
                while let Some(f) = self.session.poll_probe_transmit() {
                    self.on_output(f);
                }
            }
            Op::PollPayload => {
                if let Some(body) = self.session.poll_payload() {
                    assert!(!self.close_packet_seen, "a body after the close packet");
                    let frames = payload::decode(body.clone(), usize::MAX)
                        .unwrap_or_else(|e| panic!("a body that does not decode: {e:?}"));
                    let max = self
                        .session
                        .handshake()
                        .map_or(usize::MAX, |o| o.max_payload as usize);
                    if frames.len() > 1 {
                        assert!(body.len() <= max, "a body of {} over {max}", body.len());
                    }
                    if body.as_ref() == b"1" {
                        assert!(self.close_packet_owed, "close packet not asked for");
                        self.close_packet_seen = true;
                    } else {
                        assert_eq!(
                            self.session.transport(),
                            TransportKind::Polling,
                            "polling output after the upgrade"
                        );
                        frames.into_iter().for_each(|f| self.on_output(f));
                    }
                }
            }
        }
    }

    fn fire(&mut self) {
        let now = self.now();
        self.session.handle_timeout(now);
        if let Some(t) = self.session.poll_timeout() {
            assert!(t > now, "a timer still due after handle_timeout");
        }
    }

    /// Records the messages the session should report for frames fed on the transport.
    fn expect_fed(&mut self, frames: &[Frame]) {
        for f in frames {
            if self.session.is_closed() {
                return;
            }
            match Packet::decode(f.clone()) {
                Ok(Packet::Open(_)) if !self.open_fed => self.open_fed = true,
                Ok(Packet::Message(m)) if self.open_fed => self.fed.push_back(m),
                Ok(Packet::Ping(_)) if self.open_fed => self.pongs += 1,
                // Anything else closes the session (or changes nothing): stop expecting.
                Ok(Packet::Noop | Packet::Pong(_)) if self.open_fed => {}
                _ => return,
            }
        }
    }

    fn on_event(&mut self, e: ClientEvent) {
        assert!(
            !matches!(self.events.last(), Some(ClientEvent::Closed(_))),
            "an event after Closed: {e:?}"
        );
        match &e {
            ClientEvent::Opened(_) => {
                assert!(self.events.is_empty(), "Opened not first");
            }
            ClientEvent::Message(m) => {
                assert!(self.opened(), "a message before Opened");
                let want = self.fed.pop_front().expect("a message that was not fed");
                assert_eq!(m, &want, "messages out of order");
            }
            ClientEvent::Upgraded | ClientEvent::UpgradeFailed => {
                assert!(self.opened(), "upgrade event before Opened");
                assert!(
                    !self
                        .events
                        .iter()
                        .any(|x| matches!(x, ClientEvent::Upgraded | ClientEvent::UpgradeFailed)),
                    "two upgrade outcomes"
                );
                if e == ClientEvent::Upgraded {
                    assert_eq!(self.session.transport(), TransportKind::WebSocket);
                }
            }
            ClientEvent::Closed(reason) => {
                assert!(self.session.is_closed(), "Closed while not closed");
                if *reason != ClientCloseReason::ForcedClose {
                    self.failed = true;
                    self.sent.clear();
                }
            }
        }
        self.events.push(e);
    }

    fn opened(&self) -> bool {
        matches!(self.events.first(), Some(ClientEvent::Opened(_)))
    }

    fn on_output(&mut self, f: Frame) {
        match Packet::decode(f.clone()) {
            Ok(Packet::Pong(_) | Packet::Ping(_) | Packet::Upgrade | Packet::Close) => {}
            Ok(Packet::Message(_)) => {
                if self.failed {
                    return;
                }
                let want = self.sent.pop_front().expect("a frame that was not sent");
                assert_eq!(f, want, "sent frames out of order");
            }
            other => panic!("output that is not a client packet: {other:?}"),
        }
    }

    fn check(&mut self) {
        if self.session.is_closed() {
            assert_eq!(self.session.poll_timeout(), None, "a timer once closed");
            assert!(!self.session.wants_poll(), "wants_poll once closed");
            assert!(!self.session.wants_probe(), "wants_probe once closed");
        }
        if self.session.wants_probe() {
            assert!(self.session.is_probing());
        }
        let buffered = self.session.buffered();
        assert!(
            buffered <= self.max_buffered_packets + self.pongs,
            "{buffered} frames buffered, bound {} + {} pongs",
            self.max_buffered_packets,
            self.pongs
        );
        if buffered == 0 {
            self.pongs = 0;
        }
    }

    fn finish(mut self) {
        while let Some(e) = self.session.poll_event() {
            self.on_event(e);
        }
        let closed = self
            .events
            .iter()
            .filter(|e| matches!(e, ClientEvent::Closed(_)))
            .count();
        assert_eq!(
            closed,
            usize::from(self.session.is_closed()),
            "Closed events"
        );
        if self.session.is_closed() && !self.failed {
            // A client close writes what was queued, then (polling) the close packet.
            while let Some(f) = self.session.poll_probe_transmit() {
                self.on_output(f);
            }
            while let Some(f) = self.session.poll_transmit() {
                self.on_output(f);
            }
            while let Some(body) = self.session.poll_payload() {
                if body.as_ref() == b"1" {
                    self.close_packet_seen = true;
                    break;
                }
                for f in payload::decode(body, usize::MAX).expect("a body that decodes") {
                    self.on_output(f);
                }
            }
            assert!(
                self.sent.is_empty(),
                "sent frames never written: {:?}",
                self.sent
            );
            assert_eq!(
                self.close_packet_seen, self.close_packet_owed,
                "the close packet"
            );
        }
    }
}
