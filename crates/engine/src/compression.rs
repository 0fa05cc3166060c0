//! Compression of polling responses (Node's `httpCompression`): gzip, deflate and brotli,
//! negotiated with `Accept-Encoding`.

use std::io::Write;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};

/// Compression of HTTP long-polling responses (Node's `httpCompression`). On by default, as
/// on Node: a poll answer of at least `threshold` bytes is compressed with the best coding the
/// client accepts (`Accept-Encoding`, chosen as Node's `accepts` package does: highest `q`,
/// then the client's order). WebSocket frames are never compressed here (that is
/// permessage-deflate, another setting).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpCompression {
    /// Smallest body compressed, in bytes. Default 1024 (Node's `threshold`).
    pub threshold: usize,
    /// gzip and deflate level, 0 (none) to 9 (smallest). Default 6 (zlib's default, as Node).
    pub level: u32,
    /// brotli quality, 0 to 11. Default 4: close to gzip's size at a fraction of brotli 11's
    /// time (the body is compressed on every poll).
    pub brotli_quality: u32,
    /// Offer `gzip`. Default true.
    pub gzip: bool,
    /// Offer `deflate` (zlib format, as Node's `createDeflate`). Default true.
    pub deflate: bool,
    /// Offer `br` (Node offers only gzip and deflate). Default true.
    pub brotli: bool,
}

impl Default for HttpCompression {
    fn default() -> Self {
        HttpCompression {
            threshold: 1024,
            level: 6,
            brotli_quality: 4,
            gzip: true,
            deflate: true,
            brotli: true,
        }
    }
}

/// A content coding the engine can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Coding {
    Gzip,
    Deflate,
    Brotli,
}

impl Coding {
    fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Brotli => "br",
        }
    }

    /// The `Content-Encoding` value.
    pub(crate) fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(self.name())
    }
}

/// Bodies at least this long are compressed on a blocking thread, so a large poll answer never
/// holds up the other tasks of a runtime worker.
pub(crate) const BLOCKING_THRESHOLD: usize = 64 * 1024;

impl HttpCompression {
    /// The coding for a body of `len` bytes answering a request with these headers, if any.
    pub(crate) fn choose(&self, len: usize, request: &HeaderMap) -> Option<Coding> {
        if len < self.threshold {
            return None;
        }
        let offered = [
            (Coding::Gzip, self.gzip),
            (Coding::Deflate, self.deflate),
            (Coding::Brotli, self.brotli),
        ];
        let offered: Vec<Coding> = offered
            .into_iter()
            .filter_map(|(c, on)| on.then_some(c))
            .collect();
        negotiate(request, &offered)
    }

    /// `chunks` compressed with `coding`.
    pub(crate) fn compress(&self, coding: Coding, chunks: &[Bytes]) -> std::io::Result<Bytes> {
        let len: usize = chunks.iter().map(Bytes::len).sum();
        let out = Vec::with_capacity(len / 3 + 64);
        let level = flate2::Compression::new(self.level.min(9));
        let out = match coding {
            Coding::Gzip => {
                let mut w = flate2::write::GzEncoder::new(out, level);
                write_all(&mut w, chunks)?;
                w.finish()?
            }
            Coding::Deflate => {
                let mut w = flate2::write::ZlibEncoder::new(out, level);
                write_all(&mut w, chunks)?;
                w.finish()?
            }
            Coding::Brotli => {
                // The smallest window that holds the whole body (16 to 22 bits): the encoder's
                // memory follows the body, not brotli's 4 MiB default.
                let lgwin = (usize::BITS - len.saturating_sub(1).leading_zeros()).clamp(16, 22);
                let mut w =
                    brotli::CompressorWriter::new(out, 4096, self.brotli_quality.min(11), lgwin);
                write_all(&mut w, chunks)?;
                w.flush()?;
                w.into_inner()
            }
        };
        Ok(Bytes::from(out))
    }
}

fn write_all(w: &mut impl Write, chunks: &[Bytes]) -> std::io::Result<()> {
    chunks.iter().try_for_each(|c| w.write_all(c))
}

/// One entry of `Accept-Encoding`.
struct Accepted<'a> {
    coding: &'a str,
    q: f32,
    /// Position in the header.
    order: usize,
}

/// The preferred coding among `offered` (in the server's order), as the npm `negotiator`
/// package (behind `accepts`, which Node's polling transport asks) chooses it: each offered
/// coding takes the most specific entry naming it (its own name before `*`), codings with
/// `q=0` or without any entry are out, and the rest are ranked by `q`, then specificity, then
/// the client's order, then ours. `identity` is not a candidate: with no acceptable coding the
/// body is sent as it is.
pub(crate) fn negotiate(request: &HeaderMap, offered: &[Coding]) -> Option<Coding> {
    let mut accepted = Vec::new();
    for value in request.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for entry in value.split(',') {
            let mut params = entry.split(';');
            let coding = params.next().unwrap_or("").trim();
            if coding.is_empty() || coding.contains(char::is_whitespace) {
                continue;
            }
            let q = params
                .map(str::trim)
                .find_map(|p| p.strip_prefix("q="))
                .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())
                .filter(|q| q.is_finite())
                .unwrap_or(0.0);
            accepted.push(Accepted {
                coding,
                q,
                order: accepted.len(),
            });
        }
    }
    // (q, specificity, client order, our order) for each offered coding with an entry.
    let mut ranked: Vec<(f32, u8, usize, usize, Coding)> = offered
        .iter()
        .enumerate()
        .filter_map(|(i, &c)| {
            let best = accepted
                .iter()
                .filter_map(|a| {
                    let s = if a.coding.eq_ignore_ascii_case(c.name()) {
                        1
                    } else if a.coding == "*" {
                        0
                    } else {
                        return None;
                    };
                    Some((s, a.q, a.order))
                })
                .max_by(|x, y| x.0.cmp(&y.0).then(x.1.total_cmp(&y.1)).then(x.2.cmp(&y.2)))?;
            Some((best.1, best.0, best.2, i, c))
        })
        .filter(|r| r.0 > 0.0)
        .collect();
    ranked.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(b.1.cmp(&a.1))
            .then(a.2.cmp(&b.2))
            .then(a.3.cmp(&b.3))
    });
    ranked.first().map(|r| r.4)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    const ALL: [Coding; 3] = [Coding::Gzip, Coding::Deflate, Coding::Brotli];
    const NODE: [Coding; 2] = [Coding::Gzip, Coding::Deflate];

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        h
    }

    /// The answers of `accepts(req).encodings(["gzip", "deflate"])` (Node) for these headers,
    /// and ours with `br` offered too.
    #[test]
    fn negotiates_as_the_accepts_package() {
        use Coding::*;
        let cases: &[(&str, Option<Coding>, Option<Coding>)] = &[
            ("gzip, deflate", Some(Gzip), Some(Gzip)),
            ("deflate, gzip", Some(Deflate), Some(Deflate)),
            ("gzip;q=0.5, deflate", Some(Deflate), Some(Deflate)),
            ("br, gzip", Some(Gzip), Some(Brotli)),
            ("gzip, deflate, br, zstd", Some(Gzip), Some(Gzip)),
            ("*", Some(Gzip), Some(Gzip)),
            ("*;q=0.1, deflate;q=0.5", Some(Deflate), Some(Deflate)),
            ("gzip;q=0, *", Some(Deflate), Some(Deflate)),
            ("identity", None, None),
            ("identity;q=1, gzip;q=0.2", Some(Gzip), Some(Gzip)),
            ("GZIP", Some(Gzip), Some(Gzip)),
            ("gzip;q=abc", None, None),
            ("", None, None),
            (" , ;q=1", None, None),
        ];
        for (header, node, ours) in cases {
            assert_eq!(
                negotiate(&accept(header), &NODE),
                *node,
                "{header:?} (Node)"
            );
            assert_eq!(negotiate(&accept(header), &ALL), *ours, "{header:?}");
        }
        assert_eq!(negotiate(&HeaderMap::new(), &ALL), None);
        // Several headers count as one list.
        let mut h = accept("br;q=0.1");
        h.append(header::ACCEPT_ENCODING, HeaderValue::from_static("deflate"));
        assert_eq!(negotiate(&h, &ALL), Some(Deflate));
    }

    #[test]
    fn threshold_and_offered_codings() {
        let cfg = HttpCompression::default();
        assert_eq!(cfg.choose(1023, &accept("gzip")), None);
        assert_eq!(cfg.choose(1024, &accept("gzip")), Some(Coding::Gzip));
        let only_br = HttpCompression {
            gzip: false,
            deflate: false,
            ..HttpCompression::default()
        };
        assert_eq!(
            only_br.choose(5000, &accept("gzip, br")),
            Some(Coding::Brotli)
        );
        assert_eq!(only_br.choose(5000, &accept("gzip")), None);
    }

    #[test]
    fn every_coding_round_trips() {
        let body: Vec<Bytes> = (0..200)
            .map(|i| Bytes::from(format!("42[\"chat\",{{\"n\":{i},\"text\":\"hello\"}}]\x1e")))
            .collect();
        let plain: Vec<u8> = body.iter().flat_map(|b| b.to_vec()).collect();
        let cfg = HttpCompression::default();
        for coding in ALL {
            let packed = cfg.compress(coding, &body).unwrap();
            assert!(
                packed.len() < plain.len() / 4,
                "{coding:?}: {}",
                packed.len()
            );
            let mut out = Vec::new();
            match coding {
                Coding::Gzip => {
                    flate2::read::GzDecoder::new(&packed[..])
                        .read_to_end(&mut out)
                        .unwrap();
                }
                Coding::Deflate => {
                    flate2::read::ZlibDecoder::new(&packed[..])
                        .read_to_end(&mut out)
                        .unwrap();
                }
                Coding::Brotli => {
                    brotli::Decompressor::new(&packed[..], 4096)
                        .read_to_end(&mut out)
                        .unwrap();
                }
            }
            assert_eq!(out, plain, "{coding:?}");
        }
    }
}
