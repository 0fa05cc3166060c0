//! Engine.IO session ids.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest session id accepted, in bytes.
pub const MAX_SID_LEN: usize = 64;

/// An Engine.IO session id: 1 to 64 characters of the base64url alphabet (`A-Z a-z 0-9 - _`).
///
/// Ferrio's server makes 20-character ids from 15 random bytes (as Node's `base64id`). A `Sid`
/// can only be built by parsing or from random bytes, and it is `Copy` (no allocation).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid {
    len: u8,
    buf: [u8; MAX_SID_LEN],
}

/// Why a string is not a session id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SidError {
    /// Empty, or longer than [`MAX_SID_LEN`].
    #[error("session id has an invalid length")]
    Length,
    /// A character outside the base64url alphabet.
    #[error("session id has an invalid character")]
    Character,
}

impl Sid {
    /// Parses a session id received from a peer.
    pub fn parse(s: &str) -> Result<Self, SidError> {
        let bytes = s.as_bytes();
        if bytes.is_empty() || bytes.len() > MAX_SID_LEN {
            return Err(SidError::Length);
        }
        if !bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        {
            return Err(SidError::Character);
        }
        let mut buf = [0u8; MAX_SID_LEN];
        buf[..bytes.len()].copy_from_slice(bytes);
        Ok(Sid {
            // Fits: the length was checked against MAX_SID_LEN (64) above.
            len: bytes.len() as u8,
            buf,
        })
    }

    /// Makes a 20-character id from 15 bytes; pass bytes from a cryptographic RNG.
    pub fn from_random_bytes(bytes: [u8; 15]) -> Self {
        let mut buf = [0u8; MAX_SID_LEN];
        let n = URL_SAFE_NO_PAD
            .encode_slice(bytes, &mut buf)
            .unwrap_or_default();
        debug_assert_eq!(n, 20);
        Sid { len: n as u8, buf }
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored (checked in `parse`, base64url in
        // `from_random_bytes`), so this never fails.
        std::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({})", self.as_str())
    }
}

impl std::str::FromStr for Sid {
    type Err = SidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Sid::parse(s)
    }
}

impl Serialize for Sid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Sid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Sid::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_twenty_url_safe_chars() {
        let sid = Sid::from_random_bytes([0xff; 15]);
        assert_eq!(sid.as_str(), "____________________");
        let sid = Sid::from_random_bytes([0xfb; 15]);
        assert_eq!(sid.as_str().len(), 20);
        assert_eq!(Sid::parse(sid.as_str()), Ok(sid));
    }

    #[test]
    fn parse_rejects_junk() {
        assert_eq!(Sid::parse(""), Err(SidError::Length));
        assert_eq!(Sid::parse(&"a".repeat(65)), Err(SidError::Length));
        assert_eq!(Sid::parse("__proto__"), Sid::parse("__proto__"));
        assert_eq!(Sid::parse("a b"), Err(SidError::Character));
        assert_eq!(Sid::parse("ab/"), Err(SidError::Character));
        assert_eq!(Sid::parse("é"), Err(SidError::Character));
        assert!(Sid::parse("lv_VI97HAXpY6yYWAAAC").is_ok());
    }
}
