//! The sticky-session cookie, serialised as the npm `cookie` package (0.7) does for Node's
//! `engine.io`.

use std::fmt::{self, Write as _};
use std::time::{Duration, SystemTime};

use ferrio_proto::engine::Sid;
use http::{HeaderMap, HeaderValue, header};

/// The sticky-session cookie (Node's `cookie` option): `name=<sid>` with these attributes,
/// set on the handshake response so that a load balancer can route a session's requests to
/// the same server. Off by default, as on Node; [`CookieConfig::default`] is Node's default
/// when the option is on (`io`, `Path=/`, `HttpOnly`, `SameSite=Lax`).
///
/// ```
/// use std::time::Duration;
/// use ferrio_engine::{CookieConfig, SameSite};
///
/// let mut cookie = CookieConfig::default();
/// cookie.max_age = Some(Duration::from_secs(86_400));
/// cookie.secure = true;
/// cookie.same_site = Some(SameSite::None);
/// assert_eq!(
///     cookie.serialize("abc").unwrap(),
///     "io=abc; Max-Age=86400; Path=/; HttpOnly; Secure; SameSite=None"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CookieConfig {
    /// Cookie name, an HTTP token. Default `io`.
    pub name: String,
    /// `Max-Age`, in whole seconds (rounded down). Default none (a session cookie).
    pub max_age: Option<Duration>,
    /// `Domain`. Default none (the host that set it).
    pub domain: Option<String>,
    /// `Path`. Default `/`.
    pub path: Option<String>,
    /// `Expires`, written as an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`, JavaScript's
    /// `toUTCString`). Default none.
    pub expires: Option<SystemTime>,
    /// `HttpOnly`. Default true.
    pub http_only: bool,
    /// `Secure`. Default false.
    pub secure: bool,
    /// `Partitioned` (CHIPS). Default false.
    pub partitioned: bool,
    /// `Priority`. Default none.
    pub priority: Option<CookiePriority>,
    /// `SameSite`. Default `Lax`.
    pub same_site: Option<SameSite>,
}

/// The `SameSite` attribute of a cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SameSite {
    /// `SameSite=Strict` (the cookie package's `sameSite: true` too).
    Strict,
    /// `SameSite=Lax`.
    Lax,
    /// `SameSite=None` (browsers then require `Secure`).
    None,
}

/// The `Priority` attribute of a cookie (a Chromium extension).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CookiePriority {
    /// `Priority=Low`.
    Low,
    /// `Priority=Medium`.
    Medium,
    /// `Priority=High`.
    High,
}

/// A [`CookieConfig`] the `cookie` package would refuse to serialise.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidCookie {
    /// The name is empty or not an HTTP token.
    #[error("cookie name {0:?} is not an HTTP token")]
    Name(String),
    /// The value (the session id) has characters a cookie value cannot hold.
    #[error("cookie value {0:?} is invalid")]
    Value(String),
    /// The domain is not a host name.
    #[error("cookie domain {0:?} is invalid")]
    Domain(String),
    /// The path has a `;` or a control character.
    #[error("cookie path {0:?} is invalid")]
    Path(String),
}

impl Default for CookieConfig {
    fn default() -> Self {
        CookieConfig {
            name: "io".to_owned(),
            max_age: None,
            domain: None,
            path: Some("/".to_owned()),
            expires: None,
            http_only: true,
            secure: false,
            partitioned: false,
            priority: None,
            same_site: Some(SameSite::Lax),
        }
    }
}

impl CookieConfig {
    /// Checks the name, domain and path as the `cookie` package does.
    pub fn validate(&self) -> Result<(), InvalidCookie> {
        if self.name.is_empty() || !self.name.bytes().all(is_token_byte) {
            return Err(InvalidCookie::Name(self.name.clone()));
        }
        if let Some(d) = &self.domain
            && !is_domain(d)
        {
            return Err(InvalidCookie::Domain(d.clone()));
        }
        if let Some(p) = &self.path
            && !p.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b';')
        {
            return Err(InvalidCookie::Path(p.clone()));
        }
        Ok(())
    }

    /// The `Set-Cookie` value for `value` (attributes in the `cookie` package's order:
    /// `Max-Age`, `Domain`, `Path`, `Expires`, `HttpOnly`, `Secure`, `Partitioned`, `Priority`,
    /// `SameSite`).
    pub fn serialize(&self, value: &str) -> Result<String, InvalidCookie> {
        self.validate()?;
        if !value.bytes().all(is_cookie_value_byte) {
            return Err(InvalidCookie::Value(value.to_owned()));
        }
        let mut out = format!("{}={value}", self.name);
        self.write_attributes(&mut out);
        Ok(out)
    }

    fn write_attributes(&self, out: &mut String) {
        // Writing to a String cannot fail.
        let _ = self.try_write_attributes(out);
    }

    fn try_write_attributes(&self, out: &mut String) -> fmt::Result {
        if let Some(max_age) = self.max_age {
            write!(out, "; Max-Age={}", max_age.as_secs())?;
        }
        if let Some(d) = &self.domain {
            write!(out, "; Domain={d}")?;
        }
        if let Some(p) = self.path.as_deref().filter(|p| !p.is_empty()) {
            write!(out, "; Path={p}")?;
        }
        if let Some(e) = self.expires {
            write!(out, "; Expires={}", httpdate::fmt_http_date(e))?;
        }
        if self.http_only {
            out.push_str("; HttpOnly");
        }
        if self.secure {
            out.push_str("; Secure");
        }
        if self.partitioned {
            out.push_str("; Partitioned");
        }
        if let Some(p) = self.priority {
            out.push_str(match p {
                CookiePriority::Low => "; Priority=Low",
                CookiePriority::Medium => "; Priority=Medium",
                CookiePriority::High => "; Priority=High",
            });
        }
        if let Some(s) = self.same_site {
            out.push_str(match s {
                SameSite::Strict => "; SameSite=Strict",
                SameSite::Lax => "; SameSite=Lax",
                SameSite::None => "; SameSite=None",
            });
        }
        Ok(())
    }
}

/// A checked [`CookieConfig`], serialised once: only the session id changes.
#[derive(Clone, Debug)]
pub(crate) struct CookieTemplate {
    prefix: String,
    attributes: String,
}

impl CookieTemplate {
    /// The template of `config`.
    ///
    /// # Panics
    ///
    /// When the configuration is invalid ([`CookieConfig::validate`]): a setting the server
    /// could never use is a programming error, reported at startup.
    pub(crate) fn new(config: &CookieConfig) -> Self {
        if let Err(e) = config.validate() {
            panic!("EngineConfig::cookie: {e}");
        }
        let mut attributes = String::new();
        config.write_attributes(&mut attributes);
        CookieTemplate {
            prefix: format!("{}=", config.name),
            attributes,
        }
    }

    /// Sets the cookie of session `sid` on a response (a session id is base64url, always a
    /// valid cookie value).
    pub(crate) fn set(&self, sid: Sid, headers: &mut HeaderMap) {
        let value = format!("{}{sid}{}", self.prefix, self.attributes);
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.append(header::SET_COOKIE, v);
        }
    }
}

/// `[!#$%&'*+\-.^_`|~0-9A-Za-z]`: the `cookie` package's name check (an RFC 7230 token).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 6265 cookie-octet (after `encodeURIComponent`, which leaves a session id unchanged).
fn is_cookie_value_byte(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

/// The `cookie` package's domain check: labels of letters, digits and inner hyphens (at most
/// 63 characters), separated by dots, with an optional leading dot.
fn is_domain(d: &str) -> bool {
    let d = d.strip_prefix('.').unwrap_or(d);
    !d.is_empty()
        && d.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected strings written by `cookie.serialize` 0.7.2 (Node) with the same options.
    #[test]
    fn serialises_every_attribute_as_the_cookie_package() {
        assert_eq!(
            CookieConfig::default().serialize("sid").unwrap(),
            "io=sid; Path=/; HttpOnly; SameSite=Lax"
        );
        let every = CookieConfig {
            name: "srv".into(),
            max_age: Some(Duration::from_millis(3_600_900)),
            domain: Some(".example.com".into()),
            path: Some("/socket.io".into()),
            expires: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777)),
            http_only: true,
            secure: true,
            partitioned: true,
            priority: Some(CookiePriority::High),
            same_site: Some(SameSite::Strict),
        };
        assert_eq!(
            every.serialize("sid").unwrap(),
            "srv=sid; Max-Age=3600; Domain=.example.com; Path=/socket.io; \
             Expires=Sun, 06 Nov 1994 08:49:37 GMT; HttpOnly; Secure; Partitioned; \
             Priority=High; SameSite=Strict"
        );
        let bare = CookieConfig {
            path: None,
            http_only: false,
            same_site: None,
            ..CookieConfig::default()
        };
        assert_eq!(bare.serialize("sid").unwrap(), "io=sid");
        let empty_path = CookieConfig {
            path: Some(String::new()),
            ..bare
        };
        assert_eq!(empty_path.serialize("sid").unwrap(), "io=sid");
    }

    #[test]
    fn refuses_what_the_cookie_package_refuses() {
        let with = |f: fn(&mut CookieConfig)| {
            let mut c = CookieConfig::default();
            f(&mut c);
            c.validate()
        };
        assert!(matches!(
            with(|c| c.name = "a b".into()),
            Err(InvalidCookie::Name(_))
        ));
        assert!(matches!(
            with(|c| c.name = String::new()),
            Err(InvalidCookie::Name(_))
        ));
        assert!(matches!(
            with(|c| c.domain = Some("-bad.example".into())),
            Err(InvalidCookie::Domain(_))
        ));
        assert!(matches!(
            with(|c| c.domain = Some("a..b".into())),
            Err(InvalidCookie::Domain(_))
        ));
        assert!(matches!(
            with(|c| c.path = Some("/a;b".into())),
            Err(InvalidCookie::Path(_))
        ));
        assert!(with(|c| c.domain = Some("Sub-1.Example.COM".into())).is_ok());
        assert!(matches!(
            CookieConfig::default().serialize("a;b"),
            Err(InvalidCookie::Value(_))
        ));
    }

    #[test]
    fn template_sets_the_session_id() {
        let t = CookieTemplate::new(&CookieConfig::default());
        let sid = Sid::from_random_bytes([7; 15]);
        let mut h = HeaderMap::new();
        t.set(sid, &mut h);
        assert_eq!(
            h[header::SET_COOKIE],
            format!("io={sid}; Path=/; HttpOnly; SameSite=Lax").as_str()
        );
    }
}
