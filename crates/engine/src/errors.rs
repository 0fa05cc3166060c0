//! Node's HTTP error answers.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::EngineBody;

/// An error answered over HTTP, with Node's status code and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HttpError {
    /// 400 `{"code":0,"message":"Transport unknown"}`.
    TransportUnknown,
    /// 400 `{"code":1,"message":"Session ID unknown"}`.
    SessionIdUnknown,
    /// 400 `{"code":2,"message":"Bad handshake method"}`.
    BadHandshakeMethod,
    /// 400 `{"code":3,"message":"Bad request"}`.
    BadRequest,
    /// 403 `{"code":4,"message":<message>}`.
    Forbidden(String),
    /// 400 `{"code":5,"message":"Unsupported protocol version"}`.
    UnsupportedProtocolVersion,
    /// 413: polling body over `max_payload`.
    PayloadTooLarge,
    /// 500: a method other than GET or POST on a polling session.
    MethodNotAllowed,
    /// 503: too many sessions.
    Unavailable,
    /// 426 with `Sec-WebSocket-Version: 13`: a WebSocket version other than 13.
    UpgradeRequired,
    /// 408: the request body stalled past `EngineConfig::body_read_timeout`.
    RequestTimeout,
}

impl HttpError {
    fn status_and_body(&self) -> (StatusCode, Bytes, &'static str) {
        const JSON: &str = "application/json";
        let json = |code: u8, msg: &str| {
            let body = serde_json::json!({ "code": code, "message": msg }).to_string();
            Bytes::from(body)
        };
        match self {
            HttpError::TransportUnknown => {
                (StatusCode::BAD_REQUEST, json(0, "Transport unknown"), JSON)
            }
            HttpError::SessionIdUnknown => {
                (StatusCode::BAD_REQUEST, json(1, "Session ID unknown"), JSON)
            }
            HttpError::BadHandshakeMethod => (
                StatusCode::BAD_REQUEST,
                json(2, "Bad handshake method"),
                JSON,
            ),
            HttpError::BadRequest => (StatusCode::BAD_REQUEST, json(3, "Bad request"), JSON),
            HttpError::Forbidden(m) => (StatusCode::FORBIDDEN, json(4, m), JSON),
            HttpError::UnsupportedProtocolVersion => (
                StatusCode::BAD_REQUEST,
                json(5, "Unsupported protocol version"),
                JSON,
            ),
            HttpError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                Bytes::from_static(b"Payload Too Large"),
                "text/plain; charset=UTF-8",
            ),
            HttpError::MethodNotAllowed => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Bytes::new(),
                "text/plain; charset=UTF-8",
            ),
            HttpError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                Bytes::from_static(b"Too many sessions"),
                "text/plain; charset=UTF-8",
            ),
            HttpError::UpgradeRequired => (
                StatusCode::UPGRADE_REQUIRED,
                Bytes::from_static(b"Unsupported WebSocket version"),
                "text/plain; charset=UTF-8",
            ),
            HttpError::RequestTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                Bytes::from_static(b"Request body timed out"),
                "text/plain; charset=UTF-8",
            ),
        }
    }

    /// The HTTP response.
    pub(crate) fn response<B>(&self) -> Response<EngineBody<B>> {
        let (status, body, ctype) = self.status_and_body();
        let mut res = Response::new(EngineBody::full(body));
        *res.status_mut() = status;
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
        match self {
            HttpError::UpgradeRequired => {
                h.insert(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                );
                h.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            HttpError::RequestTimeout => {
                h.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        res
    }
}
