//! The WebSocket boundary: the upgrade handshake and the codec (`codec`, our own small
//! server-side RFC 6455 codec, with permessage-deflate in `deflate`), the only module that
//! knows how frames look.

mod codec;
pub(crate) mod deflate;

use ferrio_proto::engine::Frame;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;

use crate::{EngineBody, EngineConfig};

pub(crate) use codec::{CloseCode, CloseFrame, Message as WsMessage, Outbound, WsError};
pub(crate) use deflate::Negotiated;

/// A server-side WebSocket over an upgraded hyper connection.
pub(crate) type WsStream = codec::Codec<TokioIo<Upgraded>>;

/// What a WebSocket read yields, in Engine.IO terms.
pub(crate) enum Incoming {
    /// A data frame.
    Frame(Frame),
    /// A control frame (ping/pong); the codec has queued the pong itself.
    Control,
    /// The peer closed the socket.
    Closed,
}

/// Whether the request asks for a WebSocket upgrade.
pub(crate) fn is_upgrade_request(headers: &HeaderMap) -> bool {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str().is_ok_and(|s| {
                s.split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    has_token(header::CONNECTION, "upgrade")
        && has_token(header::UPGRADE, "websocket")
        && headers.contains_key(header::SEC_WEBSOCKET_KEY)
}

/// Why an upgrade request is refused (RFC 6455 section 4.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HandshakeError {
    /// `Sec-WebSocket-Version` is missing, repeated or not `13`: answered `426` with
    /// `Sec-WebSocket-Version: 13`.
    Version,
    /// Anything else that makes the request an invalid opening handshake: answered `400`.
    Invalid(&'static str),
}

/// The `101 Switching Protocols` answer to an upgrade request, after checking the opening
/// handshake: a `GET` over HTTP/1.1 (or later), version 13 only, and one `Sec-WebSocket-Key`
/// that is the base64 of 16 bytes. With permessage-deflate configured, the client's offers
/// are parsed (a malformed `Sec-WebSocket-Extensions` is answered 400, as `ws` does) and the
/// first acceptable one is answered; what was agreed is returned for [`accept`].
pub(crate) fn switching_protocols<B>(
    parts: &http::request::Parts,
    config: &EngineConfig,
) -> Result<(Response<EngineBody<B>>, Option<Negotiated>), HandshakeError> {
    if parts.method != http::Method::GET {
        return Err(HandshakeError::Invalid(
            "the opening handshake must be a GET",
        ));
    }
    if parts.version < http::Version::HTTP_11 {
        return Err(HandshakeError::Invalid(
            "the opening handshake needs HTTP/1.1",
        ));
    }
    let headers = &parts.headers;
    let mut versions = headers.get_all(header::SEC_WEBSOCKET_VERSION).iter();
    match (versions.next(), versions.next()) {
        (Some(v), None) if v.as_bytes() == b"13" => {}
        _ => return Err(HandshakeError::Version),
    }
    let mut keys = headers.get_all(header::SEC_WEBSOCKET_KEY).iter();
    let key = match (keys.next(), keys.next()) {
        (Some(k), None) => k,
        (None, _) => return Err(HandshakeError::Invalid("no Sec-WebSocket-Key")),
        (Some(_), Some(_)) => return Err(HandshakeError::Invalid("two Sec-WebSocket-Key")),
    };
    if !is_valid_key(key.as_bytes()) {
        return Err(HandshakeError::Invalid(
            "Sec-WebSocket-Key is not the base64 of 16 bytes",
        ));
    }
    let negotiated = match &config.per_message_deflate {
        Some(cfg) if headers.contains_key(header::SEC_WEBSOCKET_EXTENSIONS) => {
            let values = headers
                .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
                .iter()
                .map(HeaderValue::as_bytes);
            let offers = deflate::parse_offers(values).map_err(|why| {
                tracing::debug!(why, "malformed Sec-WebSocket-Extensions");
                HandshakeError::Invalid("Invalid or unacceptable Sec-WebSocket-Extensions header")
            })?;
            deflate::negotiate(&offers, cfg)
        }
        _ => None,
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let accept = HeaderValue::from_str(&accept)
        .map_err(|_| HandshakeError::Invalid("Sec-WebSocket-Accept"))?;
    let mut res = Response::new(EngineBody::empty());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    if let Some(n) = &negotiated
        && let Ok(v) = HeaderValue::from_str(&n.header_value())
    {
        h.insert(header::SEC_WEBSOCKET_EXTENSIONS, v);
    }
    Ok((res, negotiated))
}

/// Whether a `Sec-WebSocket-Key` is the (canonical, padded) base64 of 16 bytes.
fn is_valid_key(key: &[u8]) -> bool {
    use base64::Engine as _;
    key.len() == 24
        && base64::engine::general_purpose::STANDARD
            .decode(key)
            .is_ok_and(|k| k.len() == 16)
}

/// Completes the upgrade and wraps the connection with the configured limits and what was
/// agreed for permessage-deflate.
pub(crate) async fn accept(
    on_upgrade: OnUpgrade,
    config: &EngineConfig,
    deflate: Option<Negotiated>,
) -> Option<WsStream> {
    let upgraded = on_upgrade.await.ok()?;
    let max = config.session.max_payload;
    let limits = codec::Limits {
        max_message: max,
        write_buffer_size: config.ws_write_buffer_size,
        max_write_buffer: config
            .ws_max_write_buffer_size
            .max(config.ws_write_buffer_size + max + 1024),
    };
    Some(codec::Codec::new(TokioIo::new(upgraded), limits, deflate))
}

/// Converts a frame for the wire; `compress: false` keeps it uncompressed whatever was
/// negotiated. Text frames are UTF-8 by construction (they are built from Rust strings) and
/// are not checked again.
pub(crate) fn to_message(frame: Frame, compress: bool) -> Outbound {
    let msg = match frame {
        Frame::Text(b) => WsMessage::Text(b),
        Frame::Binary(b) => WsMessage::Binary(b),
    };
    Outbound { msg, compress }
}

/// Converts what was read from the wire.
pub(crate) fn from_message(msg: WsMessage) -> Incoming {
    match msg {
        WsMessage::Text(t) => Incoming::Frame(Frame::Text(t)),
        WsMessage::Binary(b) => Incoming::Frame(Frame::Binary(b)),
        WsMessage::Close(_) => Incoming::Closed,
        WsMessage::Ping(_) | WsMessage::Pong(_) => Incoming::Control,
    }
}

/// The close frame that answers a read error, and a detail for the logs.
pub(crate) fn close_for_error(e: &WsError) -> (Option<CloseFrame>, &'static str) {
    match e {
        WsError::Capacity(_) => (
            Some(CloseFrame {
                code: CloseCode::Size,
                reason: "Max payload size exceeded".into(),
            }),
            "message too big",
        ),
        WsError::InflatedCapacity(_) => (
            Some(CloseFrame {
                code: CloseCode::Size,
                reason: "Max payload size exceeded".into(),
            }),
            "compressed message inflates past max payload",
        ),
        WsError::Protocol(_) => (
            Some(CloseFrame {
                code: CloseCode::Protocol,
                reason: String::new(),
            }),
            "websocket protocol error",
        ),
        WsError::Utf8 => (
            Some(CloseFrame {
                code: CloseCode::Invalid,
                reason: String::new(),
            }),
            "invalid UTF-8 in text frame",
        ),
        WsError::Inflate => (
            Some(CloseFrame {
                code: CloseCode::Invalid,
                reason: String::new(),
            }),
            "invalid compressed data",
        ),
        _ => (None, "websocket error"),
    }
}
