//! CORS and the `Origin` policy.

use http::{HeaderMap, HeaderValue, Response, StatusCode, header};

use crate::EngineBody;
use crate::errors::HttpError;

/// Which browser origins may connect.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AllowedOrigins {
    /// Only pages served from the same host as the server (`Origin` matches `Host`). Default.
    SameOrigin,
    /// Any origin (`Access-Control-Allow-Origin: *`): an explicit choice.
    Any,
    /// These origins exactly (`https://app.example.com`), plus the same origin.
    List(Vec<String>),
}

/// CORS and `Origin` policy, enforced on polling and WebSocket handshakes alike.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CorsConfig {
    /// The origins allowed. Default [`AllowedOrigins::SameOrigin`].
    pub origins: AllowedOrigins,
    /// Whether requests without an `Origin` header (native clients) are accepted. Default true.
    pub allow_missing_origin: bool,
    /// Whether to send `Access-Control-Allow-Credentials: true` (never with `*`). Default true.
    pub credentials: bool,
}

impl Default for CorsConfig {
    fn default() -> Self {
        CorsConfig {
            origins: AllowedOrigins::SameOrigin,
            allow_missing_origin: true,
            credentials: true,
        }
    }
}

impl CorsConfig {
    /// Any origin may connect.
    pub fn any() -> Self {
        CorsConfig {
            origins: AllowedOrigins::Any,
            credentials: false,
            ..CorsConfig::default()
        }
    }
}

impl CorsConfig {
    /// Whether every origin is allowed (`*`).
    pub(crate) fn is_any(&self) -> bool {
        self.origins == AllowedOrigins::Any
    }
}

/// Checks the `Origin` header against the policy. `Ok(Some(v))` is the value of
/// `Access-Control-Allow-Origin` to send.
pub(crate) fn check_origin(
    cors: &CorsConfig,
    headers: &HeaderMap,
) -> Result<Option<HeaderValue>, HttpError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        if cors.allow_missing_origin {
            return Ok(None);
        }
        return Err(HttpError::Forbidden("Forbidden".to_owned()));
    };
    let Ok(origin_str) = origin.to_str() else {
        return Err(HttpError::BadRequest);
    };
    let allowed = match &cors.origins {
        AllowedOrigins::Any => return Ok(Some(HeaderValue::from_static("*"))),
        AllowedOrigins::SameOrigin => same_origin(origin_str, headers),
        AllowedOrigins::List(list) => {
            list.iter().any(|o| o.eq_ignore_ascii_case(origin_str))
                || same_origin(origin_str, headers)
        }
    };
    if allowed {
        Ok(Some(origin.clone()))
    } else {
        tracing::debug!(origin = origin_str, "origin refused");
        Err(HttpError::Forbidden("Forbidden".to_owned()))
    }
}

/// Whether `Origin` (`scheme://host[:port]`) names the host the request was sent to.
fn same_origin(origin: &str, headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme {
        "http" | "ws" => "80",
        "https" | "wss" => "443",
        _ => return false,
    };
    let with_port = |a: &str| {
        if a.rsplit_once(':')
            .is_some_and(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
            && !a.ends_with(']')
        {
            a.to_ascii_lowercase()
        } else {
            format!("{}:{default_port}", a.to_ascii_lowercase())
        }
    };
    with_port(authority) == with_port(host)
}

pub(crate) fn preflight<RB>(headers: &HeaderMap) -> Response<EngineBody<RB>> {
    let mut res = Response::new(EngineBody::empty());
    *res.status_mut() = StatusCode::NO_CONTENT;
    let h = res.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET,HEAD,PUT,PATCH,POST,DELETE"),
    );
    if let Some(req_headers) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, req_headers.clone());
    }
    h.insert(
        header::VARY,
        HeaderValue::from_static("Access-Control-Request-Headers"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(h: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::HOST, HeaderValue::from_str(h).unwrap());
        m
    }

    #[test]
    fn same_origin_matches_host_and_default_ports() {
        assert!(same_origin(
            "http://localhost:3000",
            &host("localhost:3000")
        ));
        assert!(same_origin(
            "http://LOCALHOST:3000",
            &host("localhost:3000")
        ));
        assert!(same_origin("http://example.com", &host("example.com:80")));
        assert!(same_origin("https://example.com", &host("example.com:443")));
        assert!(!same_origin("https://example.com", &host("example.com:80")));
        assert!(!same_origin("http://evil.com", &host("localhost:3000")));
        assert!(!same_origin(
            "http://localhost:3001",
            &host("localhost:3000")
        ));
        assert!(!same_origin("null", &host("localhost:3000")));
        assert!(same_origin("http://[::1]:3000", &host("[::1]:3000")));
    }
}
