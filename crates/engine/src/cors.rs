//! CORS and the `Origin` policy, with the headers of the npm `cors` package (which Node's
//! `socket.io` uses for its `cors` option).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, header};

use crate::EngineBody;
use crate::errors::HttpError;

/// Which browser origins may connect. Whatever the choice, pages of the server's own origin
/// (`Origin` naming the `Host` the request was sent to) are allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AllowedOrigins {
    /// Only pages served from the same host as the server. Default.
    SameOrigin,
    /// Any origin (the `cors` package's `origin: "*"`): `Access-Control-Allow-Origin: *`, or,
    /// with [`CorsConfig::credentials`], the request's origin reflected (its `origin: true`),
    /// since browsers refuse `*` on a request with credentials.
    Any,
    /// The origins one of these rules matches: exact names and regular expressions (the
    /// `cors` package's array of strings and `RegExp`s).
    List(Vec<OriginRule>),
    /// The origins a function accepts (the `cors` package's `origin` function).
    Predicate(OriginPredicate),
}

impl AllowedOrigins {
    /// The origins `f` accepts; `f` gets the `Origin` header as sent.
    pub fn predicate(f: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        AllowedOrigins::Predicate(OriginPredicate(Arc::new(f)))
    }
}

/// One entry of [`AllowedOrigins::List`]: an exact origin (`https://app.example.com`,
/// compared ASCII case-insensitively, as origins are) or a regular expression.
///
/// ```
/// use ferrio_engine::OriginRule;
///
/// let rule = OriginRule::regex(r"^https://([a-z0-9-]+\.)?example\.com$").unwrap();
/// assert!(rule.matches("https://app.example.com"));
/// assert!(!rule.matches("https://example.com.evil.net"));
/// assert!(OriginRule::from("https://a.example").matches("https://A.example"));
/// ```
#[derive(Clone, Debug)]
pub struct OriginRule(Rule);

#[derive(Clone, Debug)]
enum Rule {
    Exact(String),
    Regex(regex::Regex),
}

/// A regular expression given to [`OriginRule::regex`] that does not compile.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid origin pattern: {0}")]
pub struct InvalidOriginPattern(String);

impl OriginRule {
    /// Exactly this origin.
    pub fn exact(origin: impl Into<String>) -> Self {
        OriginRule(Rule::Exact(origin.into()))
    }

    /// The origins this regular expression matches, with JavaScript's `RegExp.test` meaning:
    /// a match anywhere in the origin, so anchor it (`^https://...$`). The syntax is the
    /// `regex` crate's, which agrees with JavaScript's for what origin patterns use (classes,
    /// groups, alternations, `?`, `*`, `+`, `{n,m}`, escapes); it has no look-around or
    /// backreferences, and matching takes linear time.
    pub fn regex(pattern: &str) -> Result<Self, InvalidOriginPattern> {
        regex::Regex::new(pattern)
            .map(|r| OriginRule(Rule::Regex(r)))
            .map_err(|e| InvalidOriginPattern(e.to_string()))
    }

    /// Whether `origin` is allowed by this rule.
    pub fn matches(&self, origin: &str) -> bool {
        match &self.0 {
            Rule::Exact(o) => o.eq_ignore_ascii_case(origin),
            Rule::Regex(r) => r.is_match(origin),
        }
    }
}

impl From<&str> for OriginRule {
    fn from(origin: &str) -> Self {
        OriginRule::exact(origin)
    }
}

impl From<String> for OriginRule {
    fn from(origin: String) -> Self {
        OriginRule::exact(origin)
    }
}

impl PartialEq for OriginRule {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Rule::Exact(a), Rule::Exact(b)) => a == b,
            (Rule::Regex(a), Rule::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl Eq for OriginRule {}

/// The function of [`AllowedOrigins::Predicate`]. Two predicates are equal when they are the
/// same function value (clones of one another).
#[derive(Clone)]
pub struct OriginPredicate(Arc<dyn Fn(&str) -> bool + Send + Sync>);

impl OriginPredicate {
    /// Wraps a function of the `Origin` header.
    pub fn new(f: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        OriginPredicate(Arc::new(f))
    }
}

impl fmt::Debug for OriginPredicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OriginPredicate(..)")
    }
}

impl PartialEq for OriginPredicate {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for OriginPredicate {}

/// CORS and `Origin` policy, enforced on polling and WebSocket handshakes alike: a request
/// whose `Origin` is not allowed is refused with `403 {"code":4,"message":"Forbidden"}`
/// (Node's `cors` only leaves out the CORS headers, and checks no WebSocket). The headers are
/// the npm `cors` package's, for the allowed origins.
///
/// ```
/// use std::time::Duration;
/// use ferrio_engine::{AllowedOrigins, CorsConfig, OriginRule};
///
/// let mut cors = CorsConfig::default();
/// cors.origins = AllowedOrigins::List(vec![
///     "https://app.example.com".into(),
///     OriginRule::regex(r"^https://[a-z0-9-]+\.preview\.example\.com$").unwrap(),
/// ]);
/// cors.exposed_headers = vec![http::HeaderName::from_static("x-request-id")];
/// cors.max_age = Some(Duration::from_secs(600));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CorsConfig {
    /// The origins allowed. Default [`AllowedOrigins::SameOrigin`].
    pub origins: AllowedOrigins,
    /// Whether requests without an `Origin` header (native clients) are accepted. Default true.
    pub allow_missing_origin: bool,
    /// Whether to send `Access-Control-Allow-Credentials: true`, so that browsers send
    /// cookies (`withCredentials`). Default true (the `cors` package: false).
    pub credentials: bool,
    /// `Access-Control-Allow-Methods` of a preflight. Default `GET,HEAD,PUT,PATCH,POST,DELETE`
    /// (the `cors` package's).
    pub methods: Vec<Method>,
    /// `Access-Control-Allow-Headers` of a preflight. Default `None`: the request's
    /// `Access-Control-Request-Headers` are reflected (with `Vary:
    /// Access-Control-Request-Headers`), as the `cors` package does. An empty list sends none.
    pub allowed_headers: Option<Vec<HeaderName>>,
    /// `Access-Control-Expose-Headers` (response headers a page may read). Default none.
    pub exposed_headers: Vec<HeaderName>,
    /// `Access-Control-Max-Age` of a preflight, in whole seconds. Default none.
    pub max_age: Option<Duration>,
    /// The status of a preflight answer. Default 204 (the `cors` package's
    /// `optionsSuccessStatus`; some old browsers need 200).
    pub options_success_status: StatusCode,
}

impl Default for CorsConfig {
    fn default() -> Self {
        CorsConfig {
            origins: AllowedOrigins::SameOrigin,
            allow_missing_origin: true,
            credentials: true,
            methods: [
                Method::GET,
                Method::HEAD,
                Method::PUT,
                Method::PATCH,
                Method::POST,
                Method::DELETE,
            ]
            .into(),
            allowed_headers: None,
            exposed_headers: Vec::new(),
            max_age: None,
            options_success_status: StatusCode::NO_CONTENT,
        }
    }
}

impl CorsConfig {
    /// Any origin may connect, without credentials (`Access-Control-Allow-Origin: *`).
    pub fn any() -> Self {
        CorsConfig {
            origins: AllowedOrigins::Any,
            credentials: false,
            ..CorsConfig::default()
        }
    }

    /// The origins these rules match (and the same origin), with the other defaults.
    pub fn list(rules: impl IntoIterator<Item = impl Into<OriginRule>>) -> Self {
        CorsConfig {
            origins: AllowedOrigins::List(rules.into_iter().map(Into::into).collect()),
            ..CorsConfig::default()
        }
    }

    /// The origins `f` accepts (and the same origin), with the other defaults.
    pub fn predicate(f: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        CorsConfig {
            origins: AllowedOrigins::predicate(f),
            ..CorsConfig::default()
        }
    }
}

/// A [`CorsConfig`] with its constant header values made once.
#[derive(Debug)]
pub(crate) struct Cors {
    config: CorsConfig,
    methods: Option<HeaderValue>,
    allowed_headers: Option<HeaderValue>,
    exposed_headers: Option<HeaderValue>,
    max_age: Option<HeaderValue>,
}

/// The origin of a request the policy allowed: what `Access-Control-Allow-Origin` says.
#[derive(Debug)]
pub(crate) enum Allowed {
    /// `*`.
    Any,
    /// The request's origin, reflected.
    Origin(HeaderValue),
}

impl Cors {
    pub(crate) fn new(config: &CorsConfig) -> Self {
        let join = |items: &mut dyn Iterator<Item = &str>| {
            let joined = items.collect::<Vec<_>>().join(",");
            (!joined.is_empty())
                .then(|| HeaderValue::from_str(&joined).ok())
                .flatten()
        };
        Cors {
            methods: join(&mut config.methods.iter().map(Method::as_str)),
            allowed_headers: config
                .allowed_headers
                .as_ref()
                .and_then(|h| join(&mut h.iter().map(HeaderName::as_str))),
            exposed_headers: join(&mut config.exposed_headers.iter().map(HeaderName::as_str)),
            max_age: config.max_age.map(|d| HeaderValue::from(d.as_secs())),
            config: config.clone(),
        }
    }

    /// Checks the `Origin` header against the policy: `Ok(None)` when there is none (and that
    /// is allowed), `Ok(Some(..))` when it is allowed.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<Option<Allowed>, HttpError> {
        let cors = &self.config;
        let mut origins = headers.get_all(header::ORIGIN).iter();
        let origin = match (origins.next(), origins.next()) {
            (None, _) if cors.allow_missing_origin => return Ok(None),
            (None, _) => return Err(HttpError::Forbidden("Forbidden".to_owned())),
            (Some(o), None) => o,
            (Some(_), Some(_)) => {
                tracing::debug!("two Origin headers");
                return Err(HttpError::BadRequest);
            }
        };
        let Ok(origin_str) = origin.to_str() else {
            return Err(HttpError::BadRequest);
        };
        let allowed = match &cors.origins {
            AllowedOrigins::Any if cors.credentials => true,
            AllowedOrigins::Any => return Ok(Some(Allowed::Any)),
            AllowedOrigins::SameOrigin => same_origin(origin_str, headers),
            AllowedOrigins::List(rules) => {
                rules.iter().any(|r| r.matches(origin_str)) || same_origin(origin_str, headers)
            }
            AllowedOrigins::Predicate(p) => (p.0)(origin_str) || same_origin(origin_str, headers),
        };
        if allowed {
            Ok(Some(Allowed::Origin(origin.clone())))
        } else {
            tracing::debug!(origin = origin_str, "origin refused");
            Err(HttpError::Forbidden("Forbidden".to_owned()))
        }
    }

    /// The CORS headers of an actual (not preflight) response to an allowed origin.
    pub(crate) fn apply(&self, allowed: &Allowed, headers: &mut HeaderMap) {
        self.origin_headers(allowed, headers, false);
        if let Some(v) = &self.exposed_headers {
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v.clone());
        }
    }

    /// The answer to a preflight (`OPTIONS`), as the `cors` package gives it.
    pub(crate) fn preflight<RB>(
        &self,
        allowed: Option<&Allowed>,
        request: &HeaderMap,
    ) -> Response<EngineBody<RB>> {
        let mut res = Response::new(EngineBody::empty());
        *res.status_mut() = self.config.options_success_status;
        let h = res.headers_mut();
        let reflect_headers = self.config.allowed_headers.is_none();
        match allowed {
            Some(allowed) => self.origin_headers(allowed, h, reflect_headers),
            None if reflect_headers => {
                h.insert(
                    header::VARY,
                    HeaderValue::from_static("Access-Control-Request-Headers"),
                );
            }
            None => {}
        }
        if let Some(v) = &self.methods {
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v.clone());
        }
        let allow_headers = if reflect_headers {
            request
                .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
                .filter(|v| !v.is_empty())
                .cloned()
        } else {
            self.allowed_headers.clone()
        };
        if let Some(v) = allow_headers {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
        if let Some(v) = &self.max_age {
            h.insert(header::ACCESS_CONTROL_MAX_AGE, v.clone());
        }
        if let Some(v) = &self.exposed_headers {
            h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v.clone());
        }
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        res
    }

    /// `Access-Control-Allow-Origin`, `Vary` and `Access-Control-Allow-Credentials`. `Vary`
    /// is one header, `Origin` first, as the `vary` package writes it.
    fn origin_headers(&self, allowed: &Allowed, h: &mut HeaderMap, vary_request_headers: bool) {
        match allowed {
            Allowed::Any => {
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                );
                if vary_request_headers {
                    h.insert(
                        header::VARY,
                        HeaderValue::from_static("Access-Control-Request-Headers"),
                    );
                }
            }
            Allowed::Origin(origin) => {
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
                h.insert(
                    header::VARY,
                    HeaderValue::from_static(if vary_request_headers {
                        "Origin, Access-Control-Request-Headers"
                    } else {
                        "Origin"
                    }),
                );
                if self.config.credentials {
                    h.insert(
                        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                        HeaderValue::from_static("true"),
                    );
                }
            }
        }
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
