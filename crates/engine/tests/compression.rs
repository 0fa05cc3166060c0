//! `httpCompression`: polling answers compressed with the coding the client accepts, checked by
//! decompressing them.

mod common;

use std::io::Read;

use ::http::Method;
use bytes::Bytes;
use common::{fast_config, start};
use ferrio_engine::{EngineConfig, HttpCompression};
use ferrio_testkit::http::{self, Response};

fn decode(coding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "gzip" => flate2::read::GzDecoder::new(body).read_to_end(&mut out),
        "deflate" => flate2::read::ZlibDecoder::new(body).read_to_end(&mut out),
        "br" => brotli::Decompressor::new(body, 4096).read_to_end(&mut out),
        other => panic!("unexpected coding {other}"),
    }
    .unwrap_or_else(|e| panic!("{coding}: {e}"));
    out
}

/// Echoes `message` through a fresh session and fetches it with this `Accept-Encoding`.
async fn echoed(config: EngineConfig, message: &str, accept: Option<&str>) -> Response {
    let server = start(config).await;
    let sid = server.handshake().await;
    let url = server.url(sid);
    let post = http::post(server.addr, &url, format!("4{message}")).await;
    assert_eq!(post.status, 200);
    assert!(post.header("content-encoding").is_none());
    let headers: Vec<(&str, &str)> = accept.map(|a| ("accept-encoding", a)).into_iter().collect();
    http::request(server.addr, Method::GET, &url, &headers, Bytes::new()).await
}

fn text(n: usize) -> String {
    (0..n).map(|i| char::from(b'a' + (i % 7) as u8)).collect()
}

#[tokio::test]
async fn poll_answers_are_compressed_with_the_accepted_coding() {
    let message = text(5000);
    for (accept, coding) in [
        ("gzip", "gzip"),
        ("deflate", "deflate"),
        ("br", "br"),
        ("gzip, deflate, br", "gzip"),
        ("br;q=1, gzip;q=0.5", "br"),
        ("*", "gzip"),
    ] {
        let res = echoed(fast_config(), &message, Some(accept)).await;
        assert_eq!(res.status, 200);
        assert_eq!(res.header("content-encoding"), Some(coding), "{accept}");
        assert_eq!(
            res.header("content-type"),
            Some("text/plain; charset=UTF-8")
        );
        assert_eq!(
            res.header("content-length")
                .map(|l| l.parse::<usize>().unwrap()),
            Some(res.body.len())
        );
        assert!(res.body.len() < 500, "{accept}: {} bytes", res.body.len());
        assert_eq!(decode(coding, &res.body), format!("4{message}").as_bytes());
    }
}

#[tokio::test]
async fn large_answers_are_compressed_off_the_runtime() {
    // Past the size compressed on a blocking thread.
    let message = text(300_000);
    for coding in ["gzip", "br"] {
        let res = echoed(fast_config(), &message, Some(coding)).await;
        assert_eq!(res.header("content-encoding"), Some(coding));
        assert_eq!(decode(coding, &res.body), format!("4{message}").as_bytes());
    }
}

#[tokio::test]
async fn small_unaccepted_or_disabled_answers_are_not_compressed() {
    // Under the 1024-byte threshold (the body is "4" and the message).
    let res = echoed(fast_config(), &text(1022), Some("gzip")).await;
    assert!(res.header("content-encoding").is_none());
    assert_eq!(res.body.len(), 1023);
    let res = echoed(fast_config(), &text(1023), Some("gzip")).await;
    assert_eq!(res.header("content-encoding"), Some("gzip"));
    // No Accept-Encoding, only identity, or a refused coding.
    for accept in [None, Some("identity"), Some("gzip;q=0"), Some("zstd")] {
        let res = echoed(fast_config(), &text(5000), accept).await;
        assert!(res.header("content-encoding").is_none(), "{accept:?}");
        assert_eq!(res.body.len(), 5001);
    }
    // Turned off, or with a coding switched off.
    let mut off = fast_config();
    off.http_compression = None;
    let res = echoed(off, &text(5000), Some("gzip")).await;
    assert!(res.header("content-encoding").is_none());
    let mut no_br = fast_config();
    let mut compression = HttpCompression::default();
    compression.brotli = false;
    compression.threshold = 10;
    no_br.http_compression = Some(compression);
    let res = echoed(no_br.clone(), &text(100), Some("br")).await;
    assert!(res.header("content-encoding").is_none());
    let res = echoed(no_br, &text(100), Some("br, deflate;q=0.5")).await;
    assert_eq!(res.header("content-encoding"), Some("deflate"));
}
