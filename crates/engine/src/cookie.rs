//! The sticky-session cookie.

use ferrio_proto::engine::Sid;
use http::{HeaderMap, HeaderValue, header};

/// The sticky-session cookie (Node's `cookie` option): `name=<sid>` set on the handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CookieConfig {
    /// Cookie name. Default `io`.
    pub name: String,
    /// Cookie path. Default `/`.
    pub path: String,
    /// `HttpOnly`. Default true.
    pub http_only: bool,
    /// `SameSite` value. Default `Lax`.
    pub same_site: String,
}

impl Default for CookieConfig {
    fn default() -> Self {
        CookieConfig {
            name: "io".to_owned(),
            path: "/".to_owned(),
            http_only: true,
            same_site: "Lax".to_owned(),
        }
    }
}

/// Sets the sticky cookie of session `sid`, when configured.
pub(crate) fn set_cookie(cookie: Option<&CookieConfig>, sid: Sid, headers: &mut HeaderMap) {
    let Some(c) = cookie else {
        return;
    };
    let mut v = format!("{}={}; Path={}", c.name, sid, c.path);
    if c.http_only {
        v.push_str("; HttpOnly");
    }
    if !c.same_site.is_empty() {
        v.push_str("; SameSite=");
        v.push_str(&c.same_site);
    }
    if let Ok(v) = HeaderValue::from_str(&v) {
        headers.insert(header::SET_COOKIE, v);
    }
}
