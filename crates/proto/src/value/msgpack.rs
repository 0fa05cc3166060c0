//! msgpack for [`Value`], byte-compatible with `notepack.io` (what Node's Redis adapter, its
//! emitter and `socket.io-msgpack-parser` use).
//!
//! Encoding follows notepack 3: integers (and floats with an integral value, since JavaScript
//! has one number type) in their smallest encoding, other floats as float64, strings as
//! fixstr/str8/16/32, binary as bin8/16/32. Decoding accepts any msgpack value and also reads
//! notepack 2.2's extensions: `undefined` (fixext1 type 0) is left out of objects and is `null`
//! elsewhere, and dates (fixext8 type 0, and the timestamp extension -1) become ISO-8601 strings,
//! as `JSON.stringify` writes them. Decoding never panics: every length is checked against the
//! input, nesting is limited to [`MAX_DEPTH`], and object keys must be strings or integers.

use bytes::Bytes;

use super::Value;
use super::date::iso_string;

/// Deepest nesting of arrays and maps accepted by [`decode`].
pub const MAX_DEPTH: usize = 128;

/// Why bytes are not a msgpack value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a value.
    #[error("truncated msgpack value")]
    Truncated,
    /// Bytes were left after the value.
    #[error("trailing bytes after the msgpack value")]
    Trailing,
    /// A marker byte that is not msgpack (`0xc1`).
    #[error("invalid msgpack marker 0x{0:02x}")]
    InvalidMarker(u8),
    /// A string that is not UTF-8.
    #[error("msgpack string is not UTF-8")]
    InvalidUtf8,
    /// An object key that is not a string or an integer.
    #[error("msgpack map key is not a string")]
    InvalidKey,
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("msgpack value nested too deep")]
    TooDeep,
}

/// The msgpack encoding of a value.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode_into(value, &mut out);
    out
}

/// Appends the msgpack encoding of a value.
pub fn encode_into(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(0xc0),
        Value::Bool(false) => out.push(0xc2),
        Value::Bool(true) => out.push(0xc3),
        Value::Int(i) => write_int(*i, out),
        Value::UInt(u) => {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
        Value::Float(f) => {
            // JavaScript numbers with an integral value are integers on the wire.
            if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.223_372_036_854_775e18 {
                write_int(*f as i64, out);
            } else {
                out.push(0xcb);
                out.extend_from_slice(&f.to_be_bytes());
            }
        }
        Value::String(s) => {
            write_len(s.len(), out, 0xa0, 32, [0xd9, 0xda, 0xdb]);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Binary(b) => {
            write_len(b.len(), out, 0, 0, [0xc4, 0xc5, 0xc6]);
            out.extend_from_slice(b);
        }
        Value::Array(items) => {
            write_len(items.len(), out, 0x90, 16, [0xdc, 0xdc, 0xdd]);
            for item in items {
                encode_into(item, out);
            }
        }
        Value::Map(entries) => {
            write_len(entries.len(), out, 0x80, 16, [0xde, 0xde, 0xdf]);
            for (k, v) in entries {
                write_len(k.len(), out, 0xa0, 32, [0xd9, 0xda, 0xdb]);
                out.extend_from_slice(k.as_bytes());
                encode_into(v, out);
            }
        }
    }
}

/// A length prefix: the fix form below `fix_limit` (when there is one), else the 8-, 16- or
/// 32-bit form (`markers`; arrays and maps have no 8-bit form and repeat the 16-bit marker).
fn write_len(len: usize, out: &mut Vec<u8>, fix: u8, fix_limit: usize, markers: [u8; 3]) {
    if len < fix_limit {
        out.push(fix | len as u8);
    } else if len < 0x100 && markers[0] != markers[1] {
        out.push(markers[0]);
        out.push(len as u8);
    } else if len < 0x10000 {
        out.push(markers[1]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(markers[2]);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

fn write_int(i: i64, out: &mut Vec<u8>) {
    if i >= 0 {
        let u = i as u64;
        if u < 0x80 {
            out.push(u as u8);
        } else if u < 0x100 {
            out.extend_from_slice(&[0xcc, u as u8]);
        } else if u < 0x10000 {
            out.push(0xcd);
            out.extend_from_slice(&(u as u16).to_be_bytes());
        } else if u < 0x1_0000_0000 {
            out.push(0xce);
            out.extend_from_slice(&(u as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
    } else if i >= -0x20 {
        out.push(i as i8 as u8);
    } else if i >= -0x80 {
        out.extend_from_slice(&[0xd0, i as i8 as u8]);
    } else if i >= -0x8000 {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if i >= -0x8000_0000 {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

/// Reads one msgpack value that fills `input` exactly. Binary values share `input`'s memory.
pub fn decode(input: &Bytes) -> Result<Value, DecodeError> {
    let mut r = Reader { buf: input, pos: 0 };
    let v = r.value(0)?.unwrap_or(Value::Null);
    if r.pos != input.len() {
        return Err(DecodeError::Trailing);
    }
    Ok(v)
}

struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn len(&mut self, bytes: usize) -> Result<usize, DecodeError> {
        Ok(match bytes {
            1 => usize::from(self.byte()?),
            2 => usize::from(u16::from_be_bytes(self.be()?)),
            _ => u32::from_be_bytes(self.be()?) as usize,
        })
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn string(&mut self, len: usize) -> Result<String, DecodeError> {
        let s = self.take(len)?;
        std::str::from_utf8(s)
            .map(str::to_owned)
            .map_err(|_| DecodeError::InvalidUtf8)
    }

    fn binary(&mut self, len: usize) -> Result<Bytes, DecodeError> {
        let start = self.pos;
        self.take(len)?;
        Ok(self.buf.slice(start..start + len))
    }

    /// One value; `None` for JavaScript `undefined`.
    fn value(&mut self, depth: usize) -> Result<Option<Value>, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        let m = self.byte()?;
        let v = match m {
            0x00..=0x7f => Value::Int(i64::from(m)),
            0x80..=0x8f => self.map(usize::from(m & 0x0f), depth)?,
            0x90..=0x9f => self.array(usize::from(m & 0x0f), depth)?,
            0xa0..=0xbf => Value::String(self.string(usize::from(m & 0x1f))?),
            0xc0 => Value::Null,
            0xc1 => return Err(DecodeError::InvalidMarker(m)),
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4..=0xc6 => {
                let len = self.len(1 << (m - 0xc4))?;
                Value::Binary(self.binary(len)?)
            }
            0xc7..=0xc9 => {
                let len = self.len(1 << (m - 0xc7))?;
                let ty = self.byte()? as i8;
                return self.ext(ty, len);
            }
            0xca => Value::Float(f64::from(f32::from_be_bytes(self.be()?))),
            0xcb => Value::Float(f64::from_be_bytes(self.be()?)),
            0xcc => Value::Int(i64::from(self.byte()?)),
            0xcd => Value::Int(i64::from(u16::from_be_bytes(self.be()?))),
            0xce => Value::Int(i64::from(u32::from_be_bytes(self.be()?))),
            0xcf => Value::from(u64::from_be_bytes(self.be()?)),
            0xd0 => Value::Int(i64::from(self.byte()? as i8)),
            0xd1 => Value::Int(i64::from(i16::from_be_bytes(self.be()?))),
            0xd2 => Value::Int(i64::from(i32::from_be_bytes(self.be()?))),
            0xd3 => Value::Int(i64::from_be_bytes(self.be()?)),
            0xd4..=0xd8 => {
                let ty = self.byte()? as i8;
                return self.ext(ty, 1 << (m - 0xd4));
            }
            0xd9..=0xdb => {
                let len = self.len(1 << (m - 0xd9))?;
                Value::String(self.string(len)?)
            }
            0xdc | 0xdd => {
                let len = self.len(if m == 0xdc { 2 } else { 4 })?;
                self.array(len, depth)?
            }
            0xde | 0xdf => {
                let len = self.len(if m == 0xde { 2 } else { 4 })?;
                self.map(len, depth)?
            }
            0xe0..=0xff => Value::Int(i64::from(m as i8)),
        };
        Ok(Some(v))
    }

    fn array(&mut self, len: usize, depth: usize) -> Result<Value, DecodeError> {
        // Every element takes at least one byte: a length beyond the input is a lie.
        if len > self.remaining() {
            return Err(DecodeError::Truncated);
        }
        let mut items = Vec::with_capacity(len);
        for _ in 0..len {
            items.push(self.value(depth + 1)?.unwrap_or(Value::Null));
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, len: usize, depth: usize) -> Result<Value, DecodeError> {
        if len > self.remaining() / 2 {
            return Err(DecodeError::Truncated);
        }
        let mut entries = Vec::with_capacity(len);
        for _ in 0..len {
            let key = match self.value(depth + 1)? {
                Some(Value::String(s)) => s,
                Some(Value::Int(i)) => i.to_string(),
                Some(Value::UInt(u)) => u.to_string(),
                _ => return Err(DecodeError::InvalidKey),
            };
            // `undefined` members are absent, as in `JSON.stringify`.
            if let Some(v) = self.value(depth + 1)? {
                entries.push((key, v));
            }
        }
        Ok(Value::Map(entries))
    }

    fn ext(&mut self, ty: i8, len: usize) -> Result<Option<Value>, DecodeError> {
        let data = self.take(len)?;
        Ok(match (ty, len) {
            // notepack 2.2: `undefined`.
            (0, 1) => None,
            // notepack 2.2: a Date as milliseconds since the epoch (int64).
            (0, 8) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(data);
                Some(Value::String(iso_string(i64::from_be_bytes(a))))
            }
            // The timestamp extension (notepack 3).
            (-1, 4) => {
                let mut a = [0u8; 4];
                a.copy_from_slice(data);
                Some(Value::String(iso_string(
                    i64::from(u32::from_be_bytes(a)) * 1000,
                )))
            }
            (-1, 8) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(data);
                let v = u64::from_be_bytes(a);
                let nanos = (v >> 34) as u32;
                let secs = (v & 0x3_ffff_ffff) as i64;
                Some(Value::String(iso_string(
                    secs * 1000 + i64::from(nanos / 1_000_000),
                )))
            }
            (-1, 12) => {
                let mut n = [0u8; 4];
                n.copy_from_slice(&data[..4]);
                let mut s = [0u8; 8];
                s.copy_from_slice(&data[4..]);
                let secs = i64::from_be_bytes(s);
                Some(Value::String(iso_string(
                    secs.saturating_mul(1000)
                        .saturating_add(i64::from(u32::from_be_bytes(n) / 1_000_000)),
                )))
            }
            // Other extensions have no meaning here.
            _ => Some(Value::Null),
        })
    }
}
