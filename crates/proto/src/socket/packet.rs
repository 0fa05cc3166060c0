//! Socket.IO v5 packets: the header codec, payload checks, and the encoder.

use std::fmt;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::args::{Args, write_args};
use super::binary::{Attachments, Placeholder, placeholder};

/// The largest ack id accepted or produced: 2^53 − 1, the largest integer JavaScript
/// represents exactly.
pub const MAX_ACK_ID: u64 = (1 << 53) - 1;

/// The longest namespace name accepted, in bytes.
pub const MAX_NAMESPACE_LEN: usize = 1024;

/// Event names a client may not send (they are local events of the Socket.IO API).
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// The seven Socket.IO packet types, in spec order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// `0`.
    Connect,
    /// `1`.
    Disconnect,
    /// `2`.
    Event,
    /// `3`.
    Ack,
    /// `4`.
    ConnectError,
    /// `5`.
    BinaryEvent,
    /// `6`.
    BinaryAck,
}

impl PacketType {
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            b'0' => PacketType::Connect,
            b'1' => PacketType::Disconnect,
            b'2' => PacketType::Event,
            b'3' => PacketType::Ack,
            b'4' => PacketType::ConnectError,
            b'5' => PacketType::BinaryEvent,
            b'6' => PacketType::BinaryAck,
            _ => return None,
        })
    }

    fn as_byte(self) -> u8 {
        match self {
            PacketType::Connect => b'0',
            PacketType::Disconnect => b'1',
            PacketType::Event => b'2',
            PacketType::Ack => b'3',
            PacketType::ConnectError => b'4',
            PacketType::BinaryEvent => b'5',
            PacketType::BinaryAck => b'6',
        }
    }

    fn is_binary(self) -> bool {
        matches!(self, PacketType::BinaryEvent | PacketType::BinaryAck)
    }
}

/// A decoded Socket.IO packet.
#[derive(Clone, Debug, PartialEq)]
pub struct Packet {
    /// The namespace (`/` when absent on the wire).
    pub nsp: String,
    /// What the packet carries.
    pub data: PacketData,
}

/// The type-specific content of a packet.
#[derive(Clone, Debug, PartialEq)]
pub enum PacketData {
    /// CONNECT with its payload (the `auth` object as raw JSON), if any.
    Connect(Option<Bytes>),
    /// DISCONNECT.
    Disconnect,
    /// EVENT or BINARY_EVENT.
    Event {
        /// The event name (a numeric name in its decimal form).
        name: String,
        /// The arguments after the name.
        args: Args,
        /// The ack id the sender waits on.
        id: Option<u64>,
    },
    /// ACK or BINARY_ACK.
    Ack {
        /// The arguments of the acknowledgement.
        args: Args,
        /// The ack id answered (a packet without one is ignored by receivers).
        id: Option<u64>,
    },
    /// CONNECT_ERROR with its payload as raw JSON (an object in v5).
    ConnectError(Bytes),
}

/// Why bytes are not a valid Socket.IO packet. Each closes the whole Engine.IO connection
/// (close reason `parse error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Empty packet.
    #[error("empty packet")]
    Empty,
    /// The type is not `0`..`6`.
    #[error("unknown packet type")]
    UnknownType,
    /// The attachment count is missing, not a canonical decimal number (a sign, a leading
    /// zero) or not followed by `-`.
    #[error("illegal attachments")]
    IllegalAttachments,
    /// More attachments than allowed.
    #[error("too many attachments (limit {0})")]
    TooManyAttachments(usize),
    /// The namespace is too long or not valid UTF-8.
    #[error("invalid namespace")]
    InvalidNamespace,
    /// The ack id is over [`MAX_ACK_ID`].
    #[error("ack id too large")]
    AckIdTooLarge,
    /// The ack id is not in canonical decimal form (a leading zero).
    #[error("ack id with a leading zero")]
    NonCanonicalAckId,
    /// The payload is not JSON, is nested too deep, or does not fit the packet type.
    #[error("invalid payload: {0}")]
    InvalidPayload(&'static str),
    /// A reserved event name.
    #[error("reserved event name")]
    ReservedEvent,
    /// A placeholder refers to an attachment that does not exist.
    #[error("invalid placeholder")]
    InvalidPlaceholder,
    /// A text packet arrived while attachments were awaited.
    #[error("text packet while attachments are pending")]
    UnexpectedText,
    /// A binary message arrived while no attachment was awaited.
    #[error("unexpected binary attachment")]
    UnexpectedBinary,
}

/// Limits applied by the decoder.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DecodeLimits {
    /// Most attachments one packet may declare. Default 10 (Node's `maxAttachments`).
    pub max_attachments: usize,
    /// Deepest nesting of arrays and objects in a payload. Default 128 (the limit of
    /// `serde_json`, which typed handlers deserialise with).
    pub max_depth: usize,
    /// How long a binary packet may wait for its next attachment (counted from its header,
    /// then from each attachment) when the decoder is given the time
    /// ([`Decoder::handle_text_at`]). Past it [`Decoder::handle_timeout`] drops the partial
    /// packet and counts it; an attachment that arrives later is then unexpected (a protocol
    /// error). Default 30 s.
    pub attachment_timeout: Duration,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_attachments: 10,
            max_depth: 128,
            attachment_timeout: Duration::from_secs(30),
        }
    }
}

/// The header of a text packet, before the payload is checked.
struct Header {
    ty: PacketType,
    attachments: usize,
    nsp: String,
    id: Option<u64>,
    payload: Bytes,
}

fn parse_header(text: &Bytes, limits: &DecodeLimits) -> Result<Header, Error> {
    let b = text.as_ref();
    let ty = PacketType::from_byte(*b.first().ok_or(Error::Empty)?).ok_or(Error::UnknownType)?;
    let mut i = 1;
    let mut attachments = 0usize;
    if ty.is_binary() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
            if i - start > 6 {
                return Err(Error::TooManyAttachments(limits.max_attachments));
            }
        }
        if i == start || b.get(i) != Some(&b'-') || has_leading_zero(&b[start..i]) {
            return Err(Error::IllegalAttachments);
        }
        attachments = digits(&b[start..i]).ok_or(Error::IllegalAttachments)? as usize;
        if attachments > limits.max_attachments {
            return Err(Error::TooManyAttachments(limits.max_attachments));
        }
        i += 1;
    }
    let mut nsp = String::from("/");
    if b.get(i) == Some(&b'/') {
        let start = i;
        while i < b.len() && b[i] != b',' {
            i += 1;
        }
        if i - start > MAX_NAMESPACE_LEN {
            return Err(Error::InvalidNamespace);
        }
        nsp = std::str::from_utf8(&b[start..i])
            .map_err(|_| Error::InvalidNamespace)?
            .to_owned();
        if i < b.len() {
            i += 1; // the comma
        }
    }
    let start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
        if i - start > 16 {
            return Err(Error::AckIdTooLarge);
        }
    }
    let id = if i > start {
        if has_leading_zero(&b[start..i]) {
            return Err(Error::NonCanonicalAckId);
        }
        let id = digits(&b[start..i]).ok_or(Error::AckIdTooLarge)?;
        if id > MAX_ACK_ID {
            return Err(Error::AckIdTooLarge);
        }
        Some(id)
    } else {
        None
    };
    let payload = text.slice(i..);
    if nesting_depth(&payload) > limits.max_depth {
        return Err(Error::InvalidPayload("JSON nested too deep"));
    }
    Ok(Header {
        ty,
        attachments,
        nsp,
        id,
        payload,
    })
}

/// The deepest nesting of `[` and `{` outside strings (one linear pass, no recursion).
fn nesting_depth(json: &[u8]) -> usize {
    let (mut depth, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for &c in json {
        if in_str {
            match c {
                _ if esc => esc = false,
                b'\\' => esc = true,
                b'"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// `0` alone is canonical; `00`, `07` are not (Node would read them as 0 and 7).
fn has_leading_zero(d: &[u8]) -> bool {
    d.len() > 1 && d[0] == b'0'
}

fn digits(d: &[u8]) -> Option<u64> {
    d.iter().try_fold(0u64, |acc, c| {
        acc.checked_mul(10)?.checked_add(u64::from(c - b'0'))
    })
}

/// Splits a JSON array into its raw items (checking the JSON, depth included).
fn split_array(payload: &Bytes) -> Result<Vec<Bytes>, Error> {
    let items: Vec<&RawValue> =
        serde_json::from_slice(payload).map_err(|_| Error::InvalidPayload("not a JSON array"))?;
    let base = payload.as_ptr() as usize;
    Ok(items
        .iter()
        .map(|r| {
            let s = r.get();
            let off = s.as_ptr() as usize - base;
            payload.slice(off..off + s.len())
        })
        .collect())
}

fn event_name(first: &Bytes) -> Result<String, Error> {
    match first.first() {
        Some(b'"') => {
            let name: String = serde_json::from_slice(first)
                .map_err(|_| Error::InvalidPayload("bad event name"))?;
            if RESERVED_EVENTS.contains(&name.as_str()) {
                return Err(Error::ReservedEvent);
            }
            Ok(name)
        }
        Some(b'-' | b'0'..=b'9') => {
            let n: serde_json::Number = serde_json::from_slice(first)
                .map_err(|_| Error::InvalidPayload("bad event name"))?;
            Ok(n.to_string())
        }
        _ => Err(Error::InvalidPayload(
            "event name must be a string or a number",
        )),
    }
}

fn is_object(payload: &Bytes) -> bool {
    payload.first() == Some(&b'{')
        && serde_json::from_slice::<serde::de::IgnoredAny>(payload).is_ok()
}

/// A packet waiting for its attachments.
#[derive(Debug)]
struct Partial {
    header_nsp: String,
    ty: PacketType,
    id: Option<u64>,
    values: Vec<Value>,
    expected: usize,
    attachments: Vec<Bytes>,
}

/// Turns Engine.IO messages into Socket.IO packets, reassembling binary attachments.
///
/// Call [`handle_text_at`](Decoder::handle_text_at) and
/// [`handle_binary_at`](Decoder::handle_binary_at) in the order messages arrive. Any error is
/// a protocol violation: close the connection. While attachments are awaited,
/// [`poll_timeout`](Decoder::poll_timeout) is the deadline of the next one; call
/// [`handle_timeout`](Decoder::handle_timeout) when it passes (it drops the partial packet),
/// and [`reset`](Decoder::reset) on disconnect. [`dropped_partials`](Decoder::dropped_partials)
/// counts the partial packets dropped either way.
///
/// [`handle_text`](Decoder::handle_text) and [`handle_binary`](Decoder::handle_binary) are the
/// same without a clock: a partial packet they start has no deadline.
#[derive(Debug, Default)]
pub struct Decoder {
    limits: DecodeLimits,
    partial: Option<Partial>,
    deadline: Option<Instant>,
    dropped: u64,
    parser: super::Parser,
}

impl Decoder {
    /// A decoder of the default format with these limits.
    pub fn new(limits: DecodeLimits) -> Self {
        Self::with_parser(limits, super::Parser::Default)
    }

    /// A decoder of `parser`'s format. With [`Parser::MsgPack`](super::Parser::MsgPack) every
    /// packet is one binary message and a text message is an error.
    pub fn with_parser(limits: DecodeLimits, parser: super::Parser) -> Self {
        Decoder {
            limits,
            partial: None,
            deadline: None,
            dropped: 0,
            parser,
        }
    }

    /// Handles a text message received at `now`. `Ok(None)` means attachments are now
    /// awaited, until `now + attachment_timeout` for the first one.
    pub fn handle_text_at(&mut self, now: Instant, text: Bytes) -> Result<Option<Packet>, Error> {
        let out = self.handle_text(text);
        if matches!(out, Ok(None)) {
            self.deadline = now.checked_add(self.limits.attachment_timeout);
        }
        out
    }

    /// Handles a binary message (an attachment) received at `now`. `Ok(Some(_))` when the
    /// packet is complete; otherwise the next attachment is awaited until
    /// `now + attachment_timeout`.
    pub fn handle_binary_at(&mut self, now: Instant, data: Bytes) -> Result<Option<Packet>, Error> {
        let out = self.handle_binary(data);
        if matches!(out, Ok(None)) {
            self.deadline = now.checked_add(self.limits.attachment_timeout);
        }
        out
    }

    /// Handles a text message, with no deadline for the attachments it may announce.
    pub fn handle_text(&mut self, text: Bytes) -> Result<Option<Packet>, Error> {
        if self.partial.is_some() || !self.parser.is_text() {
            return Err(Error::UnexpectedText);
        }
        let h = parse_header(&text, &self.limits)?;
        let data = match h.ty {
            PacketType::Connect => {
                if h.payload.is_empty() {
                    PacketData::Connect(None)
                } else if is_object(&h.payload) {
                    PacketData::Connect(Some(h.payload))
                } else {
                    return Err(Error::InvalidPayload("CONNECT payload must be an object"));
                }
            }
            PacketType::Disconnect => {
                if !h.payload.is_empty() {
                    return Err(Error::InvalidPayload("DISCONNECT has no payload"));
                }
                PacketData::Disconnect
            }
            PacketType::ConnectError => {
                if serde_json::from_slice::<serde::de::IgnoredAny>(&h.payload).is_err() {
                    return Err(Error::InvalidPayload("CONNECT_ERROR payload is not JSON"));
                }
                PacketData::ConnectError(h.payload)
            }
            PacketType::Event | PacketType::Ack => {
                let mut items = split_array(&h.payload)?;
                if h.ty == PacketType::Event {
                    if items.is_empty() {
                        return Err(Error::InvalidPayload("EVENT needs an event name"));
                    }
                    let name = event_name(&items[0])?;
                    items.remove(0);
                    PacketData::Event {
                        name,
                        args: Args::Text(items),
                        id: h.id,
                    }
                } else {
                    PacketData::Ack {
                        args: Args::Text(items),
                        id: h.id,
                    }
                }
            }
            PacketType::BinaryEvent | PacketType::BinaryAck => {
                let mut values: Vec<Value> = serde_json::from_slice(&h.payload)
                    .map_err(|_| Error::InvalidPayload("not a JSON array"))?;
                if h.ty == PacketType::BinaryEvent {
                    let first = values
                        .first()
                        .ok_or(Error::InvalidPayload("EVENT needs an event name"))?;
                    match first {
                        Value::String(s) if RESERVED_EVENTS.contains(&s.as_str()) => {
                            return Err(Error::ReservedEvent);
                        }
                        Value::String(_) | Value::Number(_) => {}
                        _ => {
                            return Err(Error::InvalidPayload(
                                "event name must be a string or a number",
                            ));
                        }
                    }
                }
                for v in &values {
                    check_placeholders(v, h.attachments)?;
                }
                let partial = Partial {
                    header_nsp: h.nsp,
                    ty: h.ty,
                    id: h.id,
                    values: std::mem::take(&mut values),
                    expected: h.attachments,
                    attachments: Vec::with_capacity(h.attachments),
                };
                if partial.expected == 0 {
                    return Ok(Some(complete(partial)));
                }
                self.partial = Some(partial);
                self.deadline = None;
                return Ok(None);
            }
        };
        Ok(Some(Packet { nsp: h.nsp, data }))
    }

    /// Handles a binary message (an attachment), with no deadline for the next one.
    /// `Ok(Some(_))` when the packet is complete.
    pub fn handle_binary(&mut self, data: Bytes) -> Result<Option<Packet>, Error> {
        if !self.parser.is_text() {
            return super::msgpack::decode(&data).map(Some);
        }
        let partial = self.partial.as_mut().ok_or(Error::UnexpectedBinary)?;
        partial.attachments.push(data);
        self.deadline = None;
        if partial.attachments.len() < partial.expected {
            return Ok(None);
        }
        Ok(self.partial.take().map(complete))
    }

    /// When the awaited attachment is due, if one is awaited with a deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.partial.as_ref().and(self.deadline)
    }

    /// Drops the partial packet if its deadline has passed at `now`; returns whether it did.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        if self.poll_timeout().is_some_and(|d| d <= now) {
            self.drop_partial();
            return true;
        }
        false
    }

    /// Whether attachments are awaited.
    pub fn is_pending(&self) -> bool {
        self.partial.is_some()
    }

    /// Partial packets dropped so far, by [`Decoder::handle_timeout`] or [`Decoder::reset`].
    pub fn dropped_partials(&self) -> u64 {
        self.dropped
    }

    /// Drops a partial packet (on disconnect).
    pub fn reset(&mut self) {
        if self.partial.is_some() {
            self.drop_partial();
        }
    }

    fn drop_partial(&mut self) {
        self.partial = None;
        self.deadline = None;
        self.dropped += 1;
    }
}

fn check_placeholders(v: &Value, count: usize) -> Result<(), Error> {
    match v {
        Value::Object(map) => match placeholder(map) {
            Placeholder::Index(n) if n < count as u64 => Ok(()),
            Placeholder::Index(_) | Placeholder::Invalid => Err(Error::InvalidPlaceholder),
            Placeholder::No => map.values().try_for_each(|v| check_placeholders(v, count)),
        },
        Value::Array(items) => items.iter().try_for_each(|v| check_placeholders(v, count)),
        _ => Ok(()),
    }
}

fn complete(mut p: Partial) -> Packet {
    let data = if p.ty == PacketType::BinaryEvent {
        let name = match p.values.remove(0) {
            Value::String(s) => s,
            other => other.to_string(),
        };
        PacketData::Event {
            name,
            args: Args::Binary {
                values: p.values,
                attachments: p.attachments,
            },
            id: p.id,
        }
    } else {
        PacketData::Ack {
            args: Args::Binary {
                values: p.values,
                attachments: p.attachments,
            },
            id: p.id,
        }
    };
    Packet {
        nsp: p.header_nsp,
        data,
    }
}

/// An encoded packet: the text message (with the Engine.IO `4` prefix, ready to share) and
/// its attachments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// `4` + the Socket.IO packet text.
    pub text: Bytes,
    /// Binary attachments, each sent as its own binary message after `text`.
    pub attachments: Vec<Bytes>,
}

impl Encoded {
    /// The messages to send, in order: the text (when there is one: the msgpack format has
    /// none), then each binary message.
    pub fn frames(&self) -> impl Iterator<Item = crate::engine::Frame> + '_ {
        let text = (!self.text.is_empty()).then(|| crate::engine::Frame::Text(self.text.clone()));
        text.into_iter().chain(
            self.attachments
                .iter()
                .cloned()
                .map(crate::engine::Frame::Binary),
        )
    }

    /// How many messages [`Encoded::frames`] yields.
    pub fn frame_count(&self) -> usize {
        usize::from(!self.text.is_empty()) + self.attachments.len()
    }

    /// Reads the packet back (e.g. an emitted event's arguments for an outgoing listener).
    pub fn decode(&self, parser: super::Parser) -> Option<Packet> {
        let limits = DecodeLimits {
            max_attachments: self.attachments.len(),
            ..Default::default()
        };
        let mut decoder = Decoder::with_parser(limits, parser);
        let mut packet = None;
        if parser.is_text() {
            // The text starts with the Engine.IO message type (`4`).
            let text = self.text.get(1..).map(|_| self.text.slice(1..))?;
            packet = decoder.handle_text(text).ok()?;
        }
        for b in &self.attachments {
            packet = decoder.handle_binary(b.clone()).ok()?;
        }
        packet
    }

    /// The same EVENT with one more last argument, a string (the offset of connection state
    /// recovery).
    pub fn with_string_arg(&self, parser: super::Parser, arg: &str) -> Encoded {
        if !parser.is_text() {
            return super::msgpack::append_arg(self, crate::value::Value::from(arg));
        }
        let text = &self.text;
        let Some(close) = text.iter().rposition(|b| *b == b']') else {
            return self.clone();
        };
        let mut out = BytesMut::with_capacity(text.len() + arg.len() + 8);
        out.put_slice(&text[..close]);
        out.put_u8(b',');
        // A string is always valid JSON; the fallback cannot be reached.
        let quoted = serde_json::to_vec(arg).unwrap_or_else(|_| b"\"\"".to_vec());
        out.put_slice(&quoted);
        out.put_slice(&text[close..]);
        Encoded {
            text: Bytes::from(out),
            attachments: self.attachments.clone(),
        }
    }
}

impl fmt::Display for Encoded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.text))?;
        if !self.attachments.is_empty() {
            write!(f, " +{} attachments", self.attachments.len())?;
        }
        Ok(())
    }
}

fn header(ty: PacketType, nsp: &str, id: Option<u64>, capacity: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(capacity + nsp.len() + 24);
    buf.push(b'4');
    buf.push(ty.as_byte());
    if nsp != "/" {
        buf.extend_from_slice(nsp.as_bytes());
        buf.push(b',');
    }
    if let Some(id) = id {
        buf.extend_from_slice(id.to_string().as_bytes());
    }
    buf
}

/// Finishes a packet whose JSON starts at `json_start`: a binary type with the attachment
/// count when attachments were collected.
fn finish(mut buf: Vec<u8>, bins: Attachments, binary_ty: PacketType) -> Encoded {
    let attachments = bins.into_inner();
    if attachments.is_empty() {
        return Encoded {
            text: Bytes::from(buf),
            attachments,
        };
    }
    let count = attachments.len().to_string();
    let mut out = BytesMut::with_capacity(buf.len() + count.len() + 1);
    out.put_u8(b'4');
    out.put_u8(binary_ty.as_byte());
    out.put_slice(count.as_bytes());
    out.put_u8(b'-');
    out.put_slice(&buf[2..]);
    buf.clear();
    Encoded {
        text: out.freeze(),
        attachments,
    }
}

/// EVENT (or BINARY_EVENT): `["name", ...args]`. See [`super::args`] for how `data` maps to
/// arguments.
pub fn encode_event<T: Serialize + ?Sized>(
    nsp: &str,
    id: Option<u64>,
    name: &str,
    data: &T,
) -> Result<Encoded, serde_json::Error> {
    let mut buf = header(PacketType::Event, nsp, id, name.len() + 32);
    buf.push(b'[');
    serde_json::to_writer(&mut buf, name)?;
    let bins = Attachments::default();
    write_args(data, &mut buf, &bins)?;
    buf.push(b']');
    Ok(finish(buf, bins, PacketType::BinaryEvent))
}

/// ACK (or BINARY_ACK): `[...args]`.
pub fn encode_ack<T: Serialize + ?Sized>(
    nsp: &str,
    id: u64,
    data: &T,
) -> Result<Encoded, serde_json::Error> {
    let mut buf = header(PacketType::Ack, nsp, Some(id), 32);
    let json_start = buf.len();
    buf.push(b'[');
    let bins = Attachments::default();
    write_args(data, &mut buf, &bins)?;
    // `write_args` puts a comma before every argument; the first one is not wanted here.
    if buf.get(json_start + 1) == Some(&b',') {
        buf.remove(json_start + 1);
    }
    buf.push(b']');
    Ok(finish(buf, bins, PacketType::BinaryAck))
}

/// CONNECT reply: `0/nsp,{...}`.
pub fn encode_connect<T: Serialize + ?Sized>(nsp: &str, data: &T) -> Encoded {
    let mut buf = header(PacketType::Connect, nsp, None, 64);
    // Serialising the reply (a map of strings) cannot fail.
    let _ = serde_json::to_writer(&mut buf, data);
    Encoded {
        text: Bytes::from(buf),
        attachments: Vec::new(),
    }
}

/// CONNECT with no payload (a client to the main namespace: `0`).
pub fn encode_connect_empty(nsp: &str) -> Encoded {
    Encoded {
        text: Bytes::from(header(PacketType::Connect, nsp, None, 0)),
        attachments: Vec::new(),
    }
}

/// DISCONNECT: `1` / `1/nsp,`.
pub fn encode_disconnect(nsp: &str) -> Encoded {
    Encoded {
        text: Bytes::from(header(PacketType::Disconnect, nsp, None, 0)),
        attachments: Vec::new(),
    }
}

/// CONNECT_ERROR: `4{"message":...,"data":...}` (`data` left out when `None`).
pub fn encode_connect_error(nsp: &str, message: &str, data: Option<&Value>) -> Encoded {
    #[derive(Serialize)]
    struct Err<'a> {
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<&'a Value>,
    }
    let mut buf = header(PacketType::ConnectError, nsp, None, 64);
    let _ = serde_json::to_writer(&mut buf, &Err { message, data });
    Encoded {
        text: Bytes::from(buf),
        attachments: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
