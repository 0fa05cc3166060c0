//! The WebSocket codec boundary: the only module that knows tungstenite.

use bytes::Bytes;
use ferrio_proto::engine::Frame;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message as WsMessage, Utf8Bytes};

use crate::{EngineBody, EngineConfig};

pub(crate) use tokio_tungstenite::tungstenite::Error as WsError;
pub(crate) use tokio_tungstenite::tungstenite::protocol::CloseFrame;
pub(crate) use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// A server-side WebSocket over an upgraded hyper connection.
pub(crate) type WsStream = WebSocketStream<TokioIo<Upgraded>>;

/// What a WebSocket read yields, in Engine.IO terms.
pub(crate) enum Incoming {
    /// A data frame.
    Frame(Frame),
    /// A control frame (ping/pong) that tungstenite answers itself.
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

/// The `101 Switching Protocols` answer to an upgrade request.
pub(crate) fn switching_protocols<B>(headers: &HeaderMap) -> Option<Response<EngineBody<B>>> {
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?;
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut res = Response::new(EngineBody::empty());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).ok()?,
    );
    Some(res)
}

/// Completes the upgrade and wraps the connection with the configured limits.
pub(crate) async fn accept(on_upgrade: OnUpgrade, config: &EngineConfig) -> Option<WsStream> {
    let upgraded = on_upgrade.await.ok()?;
    let max = config.session.max_payload;
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
        .write_buffer_size(config.ws_write_buffer_size)
        .max_write_buffer_size(
            config
                .ws_max_write_buffer_size
                .max(config.ws_write_buffer_size + max + 1024),
        );
    Some(
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(ws_config))
            .await,
    )
}

/// Converts a frame for the wire.
pub(crate) fn to_message(frame: Frame) -> WsMessage {
    match frame {
        // Text frames are built from UTF-8 by construction; a broken one is sent as binary
        // rather than dropped silently, and logged.
        Frame::Text(b) => match Utf8Bytes::try_from(b) {
            Ok(t) => WsMessage::Text(t),
            Err(e) => {
                tracing::error!("text frame is not UTF-8: {e}");
                WsMessage::Binary(Bytes::new())
            }
        },
        Frame::Binary(b) => WsMessage::Binary(b),
    }
}

/// Converts what was read from the wire.
pub(crate) fn from_message(msg: WsMessage) -> Incoming {
    match msg {
        WsMessage::Text(t) => Incoming::Frame(Frame::Text(Bytes::from(t))),
        WsMessage::Binary(b) => Incoming::Frame(Frame::Binary(b)),
        WsMessage::Close(_) => Incoming::Closed,
        WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => Incoming::Control,
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
        WsError::Protocol(_) => (
            Some(CloseFrame {
                code: CloseCode::Protocol,
                reason: "".into(),
            }),
            "websocket protocol error",
        ),
        WsError::Utf8(_) => (
            Some(CloseFrame {
                code: CloseCode::Invalid,
                reason: "".into(),
            }),
            "invalid UTF-8 in text frame",
        ),
        _ => (None, "websocket error"),
    }
}
