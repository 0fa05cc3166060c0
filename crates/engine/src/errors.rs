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
    /// The status of the answer.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            HttpError::Forbidden(_) => StatusCode::FORBIDDEN,
            HttpError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            HttpError::MethodNotAllowed => StatusCode::INTERNAL_SERVER_ERROR,
            HttpError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::UpgradeRequired => StatusCode::UPGRADE_REQUIRED,
            HttpError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// Node's error code (0 to 5), for the refusals that have one.
    pub(crate) fn code(&self) -> Option<u8> {
        Some(match self {
            HttpError::TransportUnknown => 0,
            HttpError::SessionIdUnknown => 1,
            HttpError::BadHandshakeMethod => 2,
            HttpError::BadRequest => 3,
            HttpError::Forbidden(_) => 4,
            HttpError::UnsupportedProtocolVersion => 5,
            _ => return None,
        })
    }

    /// The message: Node's for codes 0 to 5, otherwise the text of the body.
    pub(crate) fn message(&self) -> &str {
        match self {
            HttpError::TransportUnknown => "Transport unknown",
            HttpError::SessionIdUnknown => "Session ID unknown",
            HttpError::BadHandshakeMethod => "Bad handshake method",
            HttpError::BadRequest => "Bad request",
            HttpError::Forbidden(m) => m,
            HttpError::UnsupportedProtocolVersion => "Unsupported protocol version",
            HttpError::PayloadTooLarge => "Payload Too Large",
            HttpError::MethodNotAllowed => "Method not allowed",
            HttpError::Unavailable => "Too many sessions",
            HttpError::UpgradeRequired => "Unsupported WebSocket version",
            HttpError::RequestTimeout => "Request body timed out",
        }
    }

    fn body_and_type(&self) -> (Bytes, &'static str) {
        match self.code() {
            Some(code) => {
                let body = serde_json::json!({ "code": code, "message": self.message() });
                (Bytes::from(body.to_string()), "application/json")
            }
            // Node answers a method other than GET or POST on a session with an empty 500.
            None if *self == HttpError::MethodNotAllowed => {
                (Bytes::new(), "text/plain; charset=UTF-8")
            }
            None => (
                Bytes::copy_from_slice(self.message().as_bytes()),
                "text/plain; charset=UTF-8",
            ),
        }
    }

    /// The HTTP response.
    pub(crate) fn response<B>(&self) -> Response<EngineBody<B>> {
        let (body, ctype) = self.body_and_type();
        let mut res = Response::new(EngineBody::full(body));
        *res.status_mut() = self.status();
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
