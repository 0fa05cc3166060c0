//! permessage-deflate (RFC 7692) for the server codec: the negotiation of the extension in
//! the opening handshake and the per-connection compressor and decompressor.
//!
//! Both zlib streams are created lazily (the compressor on the first compressed message sent,
//! the decompressor on the first compressed message read), so an idle connection that
//! negotiated the extension holds none of them. Their cost once created, with zlib-rs (the
//! backend of `flate2` here), measured with a counting allocator: 371 KiB for the compressor
//! at the default window of 15 bits (259 KiB at 12, 245 KiB at 9: the hash table of
//! `memLevel` 8 dominates) and 46 KiB for the decompressor. With `client_no_context_takeover`
//! the decompressor is dropped after each message; with `server_no_context_takeover` the
//! connection has no compressor at all (below).
//!
//! With `server_no_context_takeover` negotiated, a compressed message depends only on its
//! bytes, the level and the window: the connection then has no compressor of its own (one per
//! worker thread is reused), and a broadcast, whose frame is one shared buffer for every
//! recipient, is compressed once: the first connection to write it leaves the result in a
//! small process-wide cache (`SHARED_ENTRIES` messages of at most `SHARED_MAX_LEN` bytes)
//! that the others find by the identity of that buffer.
//!
//! Inflating is bounded: the output of one message never grows past the configured maximum
//! message size (`max_payload`) plus one byte; past it the message is refused (close 1009).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// permessage-deflate on WebSocket connections (Node's `perMessageDeflate`, RFC 7692). Off
/// by default, as on Node; when on, the server accepts the client's first acceptable offer,
/// answering as the npm `ws` package does for the same options.
///
/// Messages of at least `threshold` bytes are compressed, unless they were sent with
/// `compress(false)`. Incoming compressed messages are inflated with the message size limit
/// (`max_payload`) applied to the inflated size: a message inflating past it closes the
/// connection with 1009.
///
/// Memory per connection (zlib-rs): none until a compressed message is sent or read; then
/// 46 KiB for the decompressor (dropped after each message with
/// `client_no_context_takeover`) and 371 KiB for the compressor at 15 window bits (245 KiB at
/// 9). With `server_no_context_takeover` a connection has no compressor (one per worker thread
/// is reused) and a broadcast is compressed once for all its recipients.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PerMessageDeflate {
    /// Smallest message compressed, in bytes. Default 1024 (Node's `threshold`).
    pub threshold: usize,
    /// zlib level of the compressor, 0 (none) to 9 (smallest). Default 6 (zlib's default, as
    /// Node).
    pub level: u32,
    /// Always answer `server_no_context_takeover`: each message is compressed afresh, so the
    /// connection keeps no compressor (one per worker thread is reused) and a broadcast is
    /// compressed once for all its recipients; the output is larger than with context. When
    /// false the server still accepts a client's request for it. Default false (as `ws`).
    pub server_no_context_takeover: bool,
    /// Always answer `client_no_context_takeover`: the client resets its compressor for each
    /// message, and the server drops its decompressor between messages. When false the
    /// server still accepts a client's offer of it. Default false (as `ws`).
    pub client_no_context_takeover: bool,
    /// The window of the server's compressor, 9 to 15 bits (`server_max_window_bits`, answered
    /// whether or not the client asked). An offer asking for a smaller window is declined.
    /// `None` (default): the client's request if any, else 15. Offers asking for 8 bits are
    /// always declined (zlib has no raw 256-byte window).
    pub server_max_window_bits: Option<u8>,
    /// The window the client's compressor must use, 8 to 15 bits (`client_max_window_bits`).
    /// An offer that does not allow the client's window to be set, or whose limit is smaller,
    /// is declined. `None` (default): the client's own limit, if it gave one.
    pub client_max_window_bits: Option<u8>,
}

impl Default for PerMessageDeflate {
    fn default() -> Self {
        PerMessageDeflate {
            threshold: 1024,
            level: 6,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: None,
            client_max_window_bits: None,
        }
    }
}

/// The extension name.
const NAME: &str = "permessage-deflate";

/// What was agreed with one client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Negotiated {
    pub(crate) server_no_context_takeover: bool,
    pub(crate) client_no_context_takeover: bool,
    /// As answered (`None`: not in the answer, the window is 15).
    pub(crate) server_max_window_bits: Option<u8>,
    /// As answered (`None`: not in the answer, the window is 15).
    pub(crate) client_max_window_bits: Option<u8>,
    pub(crate) threshold: usize,
    pub(crate) level: u32,
}

impl Negotiated {
    /// The `Sec-WebSocket-Extensions` value of the 101 answer.
    pub(crate) fn header_value(&self) -> String {
        let mut s = String::from(NAME);
        if self.server_no_context_takeover {
            s.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        if let Some(b) = self.server_max_window_bits {
            s.push_str(&format!("; server_max_window_bits={b}"));
        }
        if let Some(b) = self.client_max_window_bits {
            s.push_str(&format!("; client_max_window_bits={b}"));
        }
        s
    }
}

/// One parsed extension offer: its name and parameters (a parameter without a value has
/// `None`; a quoted value is unescaped).
pub(crate) type Offer = (String, Vec<(String, Option<String>)>);

/// Parses `Sec-WebSocket-Extensions` values (RFC 6455 9.1: `1#extension`, each
/// `token *( ";" param )`, a param `token [ "=" ( token / quoted-string ) ]`, the unescaped
/// value of a quoted string being a token). Empty list elements are skipped (RFC 9110 5.6.1).
pub(crate) fn parse_offers<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<Offer>, &'static str> {
    let mut out = Vec::new();
    for value in values {
        let mut p = Parser { s: value, at: 0 };
        loop {
            p.ows();
            match p.peek() {
                None => break,
                Some(b',') => {
                    p.at += 1;
                    continue;
                }
                Some(_) => {}
            }
            let name = p.token().ok_or("extension name expected")?;
            let mut params = Vec::new();
            loop {
                p.ows();
                match p.peek() {
                    None => break,
                    Some(b',') => {
                        p.at += 1;
                        break;
                    }
                    Some(b';') => p.at += 1,
                    Some(_) => return Err("`;` or `,` expected"),
                }
                p.ows();
                let key = p.token().ok_or("parameter name expected")?;
                p.ows();
                let val = if p.peek() == Some(b'=') {
                    p.at += 1;
                    p.ows();
                    let v = if p.peek() == Some(b'"') {
                        let v = p.quoted()?;
                        if v.is_empty() || !v.bytes().all(is_tchar) {
                            return Err("quoted parameter value is not a token");
                        }
                        v
                    } else {
                        p.token().ok_or("parameter value expected")?
                    };
                    Some(v)
                } else {
                    None
                };
                params.push((key, val));
            }
            out.push((name, params));
        }
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn token(&mut self) -> Option<String> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        let t = self.s.get(start..self.at)?;
        // tchars are ASCII.
        (!t.is_empty()).then(|| String::from_utf8_lossy(t).into_owned())
    }

    fn quoted(&mut self) -> Result<String, &'static str> {
        self.at += 1;
        let mut v = Vec::new();
        loop {
            match self.peek() {
                None => return Err("unterminated quoted string"),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(String::from_utf8_lossy(&v).into_owned());
                }
                Some(b'\\') => {
                    self.at += 1;
                    let c = self.peek().ok_or("unterminated quoted string")?;
                    v.push(c);
                    self.at += 1;
                }
                Some(c) => {
                    v.push(c);
                    self.at += 1;
                }
            }
        }
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// The answer to the client's offers: the first permessage-deflate offer that is valid
/// (RFC 7692 section 7: known parameters, each once, with valid values) and acceptable under
/// `cfg`, or `None` when there is none (the connection goes on without the extension).
pub(crate) fn negotiate(offers: &[Offer], cfg: &PerMessageDeflate) -> Option<Negotiated> {
    offers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(NAME))
        .find_map(|(_, params)| accept(params, cfg))
}

/// A window size parameter value, 8 to 15.
fn window_bits(v: &str) -> Option<u8> {
    if v.is_empty() || v.len() > 2 || !v.bytes().all(|c| c.is_ascii_digit()) || v.starts_with('0') {
        return None;
    }
    v.parse::<u8>().ok().filter(|b| (8..=15).contains(b))
}

fn accept(params: &[(String, Option<String>)], cfg: &PerMessageDeflate) -> Option<Negotiated> {
    let mut server_nct = false;
    let mut client_nct = false;
    let mut server_bits: Option<u8> = None;
    // `Some(None)`: offered without a value (the client's window may be limited).
    let mut client_bits: Option<Option<u8>> = None;
    let mut seen = [false; 4];
    for (key, value) in params {
        let slot = match key.as_str() {
            "server_no_context_takeover" => 0,
            "client_no_context_takeover" => 1,
            "server_max_window_bits" => 2,
            "client_max_window_bits" => 3,
            _ => return None,
        };
        if std::mem::replace(&mut seen[slot], true) {
            return None;
        }
        match (slot, value) {
            (0, None) => server_nct = true,
            (1, None) => client_nct = true,
            (2, Some(v)) => server_bits = Some(window_bits(v)?),
            (3, None) => client_bits = Some(None),
            (3, Some(v)) => client_bits = Some(Some(window_bits(v)?)),
            _ => return None,
        }
    }
    let server_max_window_bits = match (server_bits, cfg.server_max_window_bits) {
        (Some(8), _) => return None,
        (Some(asked), Some(ours)) if ours > asked => return None,
        (_, Some(ours)) => Some(ours.clamp(9, 15)),
        (asked, None) => asked,
    };
    let client_max_window_bits = match (client_bits, cfg.client_max_window_bits) {
        (None, Some(_)) => return None,
        (Some(Some(limit)), Some(ours)) if ours > limit => return None,
        (_, Some(ours)) => Some(ours.clamp(8, 15)),
        (Some(limit), None) => limit,
        (None, None) => None,
    };
    Some(Negotiated {
        server_no_context_takeover: server_nct || cfg.server_no_context_takeover,
        client_no_context_takeover: client_nct || cfg.client_no_context_takeover,
        server_max_window_bits,
        client_max_window_bits,
        threshold: cfg.threshold,
        level: cfg.level.min(9),
    })
}

/// Why inflating a message failed.
#[derive(Debug)]
pub(crate) enum InflateError {
    /// The inflated message is past the limit (close 1009).
    TooBig,
    /// The compressed data is invalid (close 1007, as `ws`).
    Invalid,
}

/// The deflate state of one connection (both directions, each created on first use).
pub(crate) struct Deflate {
    params: Negotiated,
    compress: Option<Box<Compress>>,
    decompress: Option<Box<Decompress>>,
}

/// The tail a sync flush leaves, stripped from each message (RFC 7692 7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

impl Deflate {
    pub(crate) fn new(params: Negotiated) -> Self {
        Deflate {
            params,
            compress: None,
            decompress: None,
        }
    }

    /// Whether a data message of `len` bytes is sent compressed.
    pub(crate) fn wants(&self, len: usize) -> bool {
        len >= self.params.threshold
    }

    /// Heap bytes of zlib state currently held (for tests): whether each stream exists.
    #[cfg(test)]
    pub(crate) fn streams(&self) -> (bool, bool) {
        (self.compress.is_some(), self.decompress.is_some())
    }

    /// Compresses one whole message.
    pub(crate) fn compress(&mut self, data: &Bytes) -> Bytes {
        let params = self.params;
        let bits = params.server_max_window_bits.unwrap_or(15).clamp(9, 15);
        let level = params.level;
        if params.server_no_context_takeover {
            return compress_stateless(data, level, bits);
        }
        let c = self
            .compress
            .get_or_insert_with(|| Box::new(new_compressor(level, bits)));
        let mut out = Vec::new();
        deflate_message(c, data, &mut out);
        Bytes::from(out)
    }

    /// Inflates one fragment of a compressed message into `out`, which must stay within
    /// `max` bytes; `fin` for the last fragment (the stripped tail is fed back then).
    pub(crate) fn decompress(
        &mut self,
        data: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(), InflateError> {
        let params = self.params;
        let d = self.decompress.get_or_insert_with(|| {
            let bits = params.client_max_window_bits.unwrap_or(15).clamp(9, 15);
            Box::new(Decompress::new_with_window_bits(false, bits))
        });
        let r = inflate_into(d, data, out, max).and_then(|ended| match fin && !ended {
            true => inflate_into(d, &TAIL, out, max).map(|_| ()),
            false => Ok(()),
        });
        if r.is_err() || (fin && params.client_no_context_takeover) {
            self.decompress = None;
        }
        r
    }
}

fn new_compressor(level: u32, bits: u8) -> Compress {
    Compress::new_with_window_bits(Compression::new(level), false, bits)
}

/// Compresses `data` as one message on `c` (sync flush, the tail stripped), appended to `out`.
fn deflate_message(c: &mut Compress, data: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.reserve(data.len() / 2 + 64);
    let base = c.total_in();
    loop {
        let consumed = (c.total_in() - base) as usize;
        let input = data.get(consumed..).unwrap_or_default();
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(64));
        }
        // Compressing into memory does not fail (the stream is ours and well formed).
        let _ = c.compress_vec(input, out, FlushCompress::Sync);
        let done = (c.total_in() - base) as usize == data.len();
        // The sync flush is complete once the compressor leaves room in the output.
        if done && out.len() < out.capacity() {
            break;
        }
    }
    if out[start..].ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    }
    if out.len() == start {
        // An empty message compresses to one empty stored block's first byte (7.2.3.6).
        out.push(0x00);
    }
}

/// Most compressed messages kept for other connections (see the module docs).
const SHARED_ENTRIES: usize = 16;
/// Largest message kept in the shared cache, in bytes.
const SHARED_MAX_LEN: usize = 256 * 1024;

/// A message compressed without context: the source (kept, so that its buffer cannot be
/// reused for other bytes while the entry lives), level, window and result.
struct SharedEntry {
    source: Bytes,
    level: u32,
    bits: u8,
    packed: Bytes,
}

static SHARED: Mutex<VecDeque<SharedEntry>> = Mutex::new(VecDeque::new());

thread_local! {
    /// The context-free compressor of this thread, with its level and window.
    static STATELESS: RefCell<Option<(u32, u8, Compress)>> = const { RefCell::new(None) };
}

/// Compresses a message without context: from the shared cache when another connection
/// already compressed this very buffer, else on this thread's compressor (reset after use).
fn compress_stateless(data: &Bytes, level: u32, bits: u8) -> Bytes {
    let same = |e: &SharedEntry| {
        e.source.as_ptr() == data.as_ptr()
            && e.source.len() == data.len()
            && e.level == level
            && e.bits == bits
    };
    let cacheable = data.len() <= SHARED_MAX_LEN;
    if cacheable {
        let cache = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = cache.iter().find(|e| same(e)) {
            return e.packed.clone();
        }
    }
    let mut out = Vec::new();
    STATELESS.with(|slot| {
        let mut slot = slot.borrow_mut();
        let fits = matches!(&*slot, Some((l, b, _)) if *l == level && *b == bits);
        if !fits {
            *slot = Some((level, bits, new_compressor(level, bits)));
        }
        if let Some((_, _, c)) = slot.as_mut() {
            deflate_message(c, data, &mut out);
            c.reset();
        }
    });
    let packed = Bytes::from(out);
    if cacheable {
        let mut cache = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if !cache.iter().any(same) {
            if cache.len() == SHARED_ENTRIES {
                cache.pop_front();
            }
            cache.push_back(SharedEntry {
                source: data.clone(),
                level,
                bits,
                packed: packed.clone(),
            });
        }
    }
    packed
}

/// Whether the shared cache holds the compressed form of this buffer (for tests).
#[cfg(test)]
pub(crate) fn shared_has(data: &Bytes) -> bool {
    let cache = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    cache
        .iter()
        .any(|e| e.source.as_ptr() == data.as_ptr() && e.source.len() == data.len())
}

/// Feeds `input` to `d`, appending to `out` without letting it pass `max` (+1 byte, to tell
/// "exactly max" from "more"). True when the deflate stream ended (a final block).
fn inflate_into(
    d: &mut Decompress,
    input: &[u8],
    out: &mut Vec<u8>,
    max: usize,
) -> Result<bool, InflateError> {
    let base = d.total_in();
    loop {
        if out.len() > max {
            return Err(InflateError::TooBig);
        }
        if out.len() == out.capacity() {
            // Grow by doubling, never past the limit.
            let room = (max + 1 - out.len()).min(out.len().max(1024));
            out.reserve_exact(room);
        }
        let consumed = (d.total_in() - base) as usize;
        let before_out = out.len();
        let status = d
            .decompress_vec(
                input.get(consumed..).unwrap_or_default(),
                out,
                FlushDecompress::Sync,
            )
            .map_err(|_| InflateError::Invalid)?;
        let consumed_now = (d.total_in() - base) as usize;
        if status == Status::StreamEnd {
            if consumed_now < input.len() {
                // Data after the final block of the message.
                return Err(InflateError::Invalid);
            }
            if out.len() > max {
                return Err(InflateError::TooBig);
            }
            d.reset(false);
            return Ok(true);
        }
        let progressed = consumed_now > consumed || out.len() > before_out;
        if consumed_now == input.len() && out.len() < out.capacity() {
            return Ok(false);
        }
        if !progressed && out.len() < out.capacity() {
            // Waiting for more input.
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offers(s: &str) -> Vec<Offer> {
        parse_offers([s.as_bytes()]).unwrap()
    }

    fn answer(s: &str, cfg: &PerMessageDeflate) -> Option<String> {
        negotiate(&offers(s), cfg).map(|n| n.header_value())
    }

    #[test]
    fn parses_several_offers_params_and_quoted_values() {
        let o = parse_offers([
            b"permessage-deflate; client_max_window_bits, x-foo".as_slice(),
            b" permessage-deflate ; server_max_window_bits=\"10\" ;client_no_context_takeover,,"
                .as_slice(),
        ])
        .unwrap();
        assert_eq!(o.len(), 3);
        assert_eq!(o[0].0, "permessage-deflate");
        assert_eq!(o[0].1, vec![("client_max_window_bits".into(), None)]);
        assert_eq!(o[1], ("x-foo".into(), vec![]));
        assert_eq!(
            o[2].1,
            vec![
                ("server_max_window_bits".into(), Some("10".into())),
                ("client_no_context_takeover".into(), None)
            ]
        );
        assert_eq!(
            parse_offers([b"a; b=\"x\\yz\"".as_slice()]).unwrap()[0].1[0].1,
            Some("xyz".into())
        );
    }

    #[test]
    fn refuses_malformed_headers() {
        for bad in [
            "permessage-deflate; ",
            "permessage-deflate; a=",
            "permessage-deflate; a=\"1",
            "permessage-deflate; a=\"1 2\"",
            "permessage-deflate x",
            "permessage-deflate; a b",
            ";a",
            "perm\u{e9}",
        ] {
            assert!(parse_offers([bad.as_bytes()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn answers_as_ws_with_default_options() {
        let d = PerMessageDeflate::default();
        // The npm client's offer.
        assert_eq!(
            answer("permessage-deflate; client_max_window_bits", &d).as_deref(),
            Some("permessage-deflate")
        );
        assert_eq!(
            answer(
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12",
                &d
            )
            .as_deref(),
            Some(
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12"
            )
        );
        assert_eq!(answer("x-webkit-deflate-frame", &d), None);
    }

    #[test]
    fn declines_invalid_offers_and_takes_the_next() {
        let d = PerMessageDeflate::default();
        for bad in [
            "permessage-deflate; foo",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=08",
            "permessage-deflate; server_max_window_bits=8",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        ] {
            assert_eq!(answer(bad, &d), None, "{bad}");
            let two = format!("{bad}, permessage-deflate");
            assert_eq!(
                answer(&two, &d).as_deref(),
                Some("permessage-deflate"),
                "{two}"
            );
        }
    }

    #[test]
    fn applies_the_server_options() {
        let cfg = PerMessageDeflate {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: Some(10),
            client_max_window_bits: Some(11),
            ..Default::default()
        };
        assert_eq!(
            answer("permessage-deflate; client_max_window_bits", &cfg).as_deref(),
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=11"
            )
        );
        // The client cannot limit its window: declined.
        assert_eq!(answer("permessage-deflate", &cfg), None);
        // Limits smaller than ours: declined.
        assert_eq!(
            answer("permessage-deflate; client_max_window_bits=10", &cfg),
            None
        );
        assert_eq!(
            answer(
                "permessage-deflate; client_max_window_bits; server_max_window_bits=9",
                &cfg
            ),
            None
        );
    }

    fn roundtrip(params: Negotiated, msgs: &[&[u8]]) {
        let mut tx = Deflate::new(params);
        let mut rx = Deflate::new(params);
        for m in msgs {
            let wire = tx.compress(&Bytes::copy_from_slice(m));
            let mut out = Vec::new();
            rx.decompress(&wire, true, &mut out, 1 << 20).unwrap();
            assert_eq!(&out, m);
        }
    }

    fn params() -> Negotiated {
        negotiate(&offers("permessage-deflate"), &PerMessageDeflate::default()).unwrap()
    }

    #[test]
    fn compresses_and_inflates_with_and_without_context_takeover() {
        let big = vec![b'a'; 100_000];
        let msgs: [&[u8]; 4] = [b"hello hello hello", b"", &big, b"hello hello hello"];
        roundtrip(params(), &msgs);
        let mut p = params();
        p.server_no_context_takeover = true;
        p.client_no_context_takeover = true;
        p.server_max_window_bits = Some(9);
        roundtrip(p, &msgs);
    }

    #[test]
    fn context_takeover_keeps_the_streams_and_no_takeover_drops_them() {
        let mut d = Deflate::new(params());
        assert_eq!(d.streams(), (false, false));
        let wire = d.compress(&Bytes::from_static(b"abcabcabc"));
        let mut out = Vec::new();
        d.decompress(&wire, true, &mut out, 100).unwrap();
        assert_eq!(d.streams(), (true, true));
        let mut p = params();
        p.server_no_context_takeover = true;
        p.client_no_context_takeover = true;
        let mut d = Deflate::new(p);
        let wire = d.compress(&Bytes::from_static(b"abcabcabc"));
        out.clear();
        d.decompress(&wire, true, &mut out, 100).unwrap();
        assert_eq!(d.streams(), (false, false));
    }

    #[test]
    fn inflating_stops_at_the_limit() {
        // 10 MB of zeros compress to about 10 KB.
        let bomb = vec![0u8; 10 << 20];
        let wire = Deflate::new(params()).compress(&Bytes::from(bomb.clone()));
        assert!(wire.len() < 20_000);
        let mut out = Vec::new();
        let e = Deflate::new(params()).decompress(&wire, true, &mut out, 100_000);
        assert!(matches!(e, Err(InflateError::TooBig)));
        assert!(out.capacity() <= 2 * 100_000 + 2048, "{}", out.capacity());
        // Exactly at the limit is fine.
        let mut out = Vec::new();
        Deflate::new(params())
            .decompress(&wire, true, &mut out, bomb.len())
            .unwrap();
        assert_eq!(out.len(), bomb.len());
    }

    #[test]
    fn fragments_inflate_in_pieces() {
        let msg = b"fragmented message, fragmented message, fragmented message".repeat(50);
        let wire = Deflate::new(params()).compress(&Bytes::from(msg.clone()));
        let mut rx = Deflate::new(params());
        let mut out = Vec::new();
        let (a, b) = wire.split_at(wire.len() / 2);
        rx.decompress(a, false, &mut out, 1 << 20).unwrap();
        rx.decompress(b, true, &mut out, 1 << 20).unwrap();
        assert_eq!(out, msg);
    }

    #[test]
    fn without_server_context_a_shared_buffer_is_compressed_once() {
        let mut p = params();
        p.server_no_context_takeover = true;
        let msg = Bytes::from(b"a broadcast, a broadcast, a broadcast".repeat(100));
        let (mut a, mut b) = (Deflate::new(p), Deflate::new(p));
        let first = a.compress(&msg);
        assert!(shared_has(&msg));
        let second = b.compress(&msg);
        // The same bytes: the second connection took them from the cache.
        assert_eq!(first.as_ptr(), second.as_ptr());
        // Neither connection holds a compressor.
        assert_eq!((a.streams(), b.streams()), ((false, false), (false, false)));
        // A copy of the same content is another buffer: compressed again, same result.
        let copy = Bytes::copy_from_slice(&msg);
        let third = a.compress(&copy);
        assert_ne!(third.as_ptr(), first.as_ptr());
        assert_eq!(third, first);
        let mut out = Vec::new();
        Deflate::new(p)
            .decompress(&second, true, &mut out, 1 << 20)
            .unwrap();
        assert_eq!(out, msg);
    }

    #[test]
    fn garbage_is_invalid() {
        let mut out = Vec::new();
        let e = Deflate::new(params()).decompress(&[0xff, 0xff, 0xff, 0xff], true, &mut out, 100);
        assert!(matches!(e, Err(InflateError::Invalid)));
    }
}
