//! permessage-deflate and `compress(false)` against the real npm `socket.io-client` (its `ws`
//! package offers permessage-deflate by default), and raw clients for what the npm client does
//! not send: a zip bomb, and polling answers of `compress(false)` packets.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::{Mode, Server, builder};
use ferrio::{Args, PerMessageDeflate, SocketRef};
use ferrio_testkit::node::NodeProcess;
use ferrio_testkit::{http, within};
use flate2::{Compress, Compression, FlushCompress};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// As `deflate.mjs` builds it: `n` letters, the `i`-th being `'a' + (i * seed) % 26`.
fn big_text(n: usize, seed: usize) -> String {
    (0..n)
        .map(|i| char::from(b'a' + ((i * seed) % 26) as u8))
        .collect()
}

/// A server with the handlers of `deflate.mjs`, permessage-deflate as given.
fn server(deflate: Option<PerMessageDeflate>) -> Server {
    server_from(builder(), deflate)
}

/// As [`server`], from `b`.
fn server_from(b: ferrio::SocketIoBuilder, deflate: Option<PerMessageDeflate>) -> Server {
    let io = b.per_message_deflate(deflate).build();
    io.ns("/", async |socket: SocketRef| {
        socket.on("echo", async |socket: SocketRef, args: Args| {
            socket.emit("echo", &args).unwrap();
        });
        socket.on("plain", async |socket: SocketRef| {
            socket
                .compress(false)
                .emit("plain", &big_text(5000, 11))
                .unwrap();
        });
        socket.on("broadcast", async |socket: SocketRef| {
            socket
                .namespace()
                .emit("bcast", &big_text(5000, 13))
                .unwrap();
        });
    });
    Server::start(io)
}

/// Runs `deflate.mjs`; returns the negotiated params and the `result` lines as
/// `name -> [sent compressed, received compressed]` (each answer checked equal).
async fn run(server: &Server, mode: Mode) -> (Value, Vec<(String, u32, u32)>) {
    let mut node = NodeProcess::spawn("sio/deflate.mjs", &[&server.url, mode.arg()]);
    let ext = node.expect_line("extensions ", 20).await;
    let ext: Value = serde_json::from_str(&ext).expect("extensions json");
    let mut results = Vec::new();
    for _ in 0..5 {
        let line = node.expect_line("result ", 20).await;
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!(parts.len(), 4, "{line}");
        assert_eq!(parts[3], "true", "{mode:?}: the answer differs: {line}");
        results.push((
            parts[0].to_owned(),
            parts[1].parse().unwrap(),
            parts[2].parse().unwrap(),
        ));
    }
    node.expect_line("ok ", 20).await;
    (ext, results)
}

/// On: the npm client's offer is accepted, as `ws` answers it (`client_max_window_bits`
/// without a value is dropped from the answer), large messages are compressed both ways,
/// small ones are not, binary attachments too; `compress(false)` arrives uncompressed; a
/// broadcast is compressed for its recipient.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_client_negotiates_and_compresses_both_ways() {
    let server = server(Some(PerMessageDeflate::default()));
    for mode in [Mode::WebSocket, Mode::Upgrade] {
        let (ext, results) = run(&server, mode).await;
        assert_eq!(ext, json!({}), "{mode:?}: accepted params");
        let want = [
            ("echo-big-text", 1, 1),
            ("echo-small-text", 0, 0),
            // The attachment is compressed, its small placeholder packet is not.
            ("echo-big-binary", 1, 1),
            ("plain", 0, 0),
            ("broadcast", 0, 1),
        ];
        let got: Vec<(&str, u32, u32)> = results
            .iter()
            .map(|(n, s, r)| (n.as_str(), *s, *r))
            .collect();
        assert_eq!(got, want, "{mode:?}");
    }
}

/// The server's options change the answer, and the npm client follows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_client_follows_the_server_options() {
    let mut cfg = PerMessageDeflate::default();
    cfg.threshold = 10;
    cfg.server_no_context_takeover = true;
    cfg.client_no_context_takeover = true;
    cfg.server_max_window_bits = Some(10);
    cfg.client_max_window_bits = Some(11);
    let server = server(Some(cfg));
    let (ext, results) = run(&server, Mode::WebSocket).await;
    assert_eq!(
        ext,
        json!({
            "server_no_context_takeover": true,
            "client_no_context_takeover": true,
            "server_max_window_bits": 10,
            "client_max_window_bits": 11,
        })
    );
    // The npm client keeps its 1024-byte threshold; the server's is 10 bytes, so "hi"
    // (`42["echo","hi"]`, 15 bytes) comes back compressed.
    let small = results.iter().find(|r| r.0 == "echo-small-text").unwrap();
    assert_eq!((small.1, small.2), (0, 1));
    let big = results.iter().find(|r| r.0 == "echo-big-text").unwrap();
    assert_eq!((big.1, big.2), (1, 1));
    // Without server context the broadcast is compressed once for every recipient (a shared
    // result); the client inflates it (`deflate.mjs` checks the content).
    let bcast = results.iter().find(|r| r.0 == "broadcast").unwrap();
    assert_eq!((bcast.1, bcast.2), (0, 1));
    let plain = results.iter().find(|r| r.0 == "plain").unwrap();
    assert_eq!((plain.1, plain.2), (0, 0));
}

/// Without server context a broadcast's compressed bytes are shared by every recipient (see
/// `ws/deflate.rs`): two npm clients at once inflate them (`deflate.mjs` checks every answer,
/// and with both clients broadcasting each also gets the other's broadcasts in the middle of
/// its exchanges).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_broadcast_bytes_inflate_for_every_recipient() {
    let mut cfg = PerMessageDeflate::default();
    cfg.server_no_context_takeover = true;
    let server = server(Some(cfg));
    let ((a, _), (b, _)) =
        tokio::join!(run(&server, Mode::WebSocket), run(&server, Mode::WebSocket));
    for ext in [a, b] {
        assert_eq!(ext, json!({ "server_no_context_takeover": true }));
    }
}

/// Off by default, as on Node: no extension is answered, everything goes uncompressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_by_default_no_extension() {
    let server = server(None);
    assert!(
        ferrio::SocketIoConfig::default()
            .engine
            .per_message_deflate
            .is_none()
    );
    let (ext, results) = run(&server, Mode::WebSocket).await;
    assert_eq!(ext, Value::Null);
    assert!(results.iter().all(|r| r.1 == 0 && r.2 == 0), "{results:?}");
}

/// A raw WebSocket client that offers permessage-deflate: the `101` head and the stream.
async fn raw_deflate_client(addr: SocketAddr, offer: &str) -> (String, TcpStream) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {addr}\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Extensions: {offer}\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        assert_eq!(tcp.read(&mut b).await.unwrap(), 1, "head ended early");
        head.push(b[0]);
    }
    (String::from_utf8(head).unwrap(), tcp)
}

/// A masked client frame (mask zero: the payload goes as it is).
fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![b0];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(payload);
    out
}

/// Reads one server frame: (first byte, payload).
async fn read_frame(tcp: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    tcp.read_exact(&mut h).await.unwrap();
    let len = match h[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            tcp.read_exact(&mut l).await.unwrap();
            u16::from_be_bytes(l) as usize
        }
        127 => {
            let mut l = [0u8; 8];
            tcp.read_exact(&mut l).await.unwrap();
            u64::from_be_bytes(l) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    tcp.read_exact(&mut payload).await.unwrap();
    (h[0], payload)
}

/// Raw deflate of `data` with a sync flush, the tail stripped (RFC 7692 7.2.1).
fn deflate(data: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::best(), false);
    let mut out = Vec::with_capacity(data.len() / 100 + 1024);
    loop {
        let consumed = c.total_in() as usize;
        if out.len() == out.capacity() {
            out.reserve(out.capacity());
        }
        c.compress_vec(&data[consumed..], &mut out, FlushCompress::Sync)
            .unwrap();
        if c.total_in() as usize == data.len() && out.len() < out.capacity() {
            break;
        }
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

/// A zip bomb (a compressed frame of some 16 KB inflating to 16 MB, far past the 1 MB
/// `max_http_buffer_size`) closes that connection with 1009; the server stays up and an npm
/// client on another connection goes on compressing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zip_bomb_closes_with_1009_and_others_keep_working() {
    // Built first: the raw client does not answer pings while it is being compressed.
    let mut bomb = b"42[\"echo\",\"".to_vec();
    bomb.resize(16 << 20, b'a');
    let packed = deflate(&bomb);
    assert!(packed.len() < 100_000, "{}", packed.len());
    // No ping for the raw client to answer during the test.
    let quiet = builder()
        .ping_interval(Duration::from_secs(60))
        .ping_timeout(Duration::from_secs(60));
    let server = server_from(quiet, Some(PerMessageDeflate::default()));
    // The npm client runs its exchanges while the bomb goes off on another connection.
    let npm = run(&server, Mode::WebSocket);
    let bomb = async {
        let (head, mut tcp) = raw_deflate_client(
            server.addr,
            "permessage-deflate; client_max_window_bits, x-other",
        )
        .await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("sec-websocket-extensions: permessage-deflate\r\n"),
            "{head}"
        );
        let (b0, open) = within(5, "the open packet", read_frame(&mut tcp)).await;
        assert_eq!(b0, 0x81);
        assert!(open.starts_with(b"0{"));
        tcp.write_all(&frame(0x81, b"40")).await.unwrap();
        let (_, connect) = within(5, "the CONNECT answer", read_frame(&mut tcp)).await;
        assert!(connect.starts_with(b"40"), "{connect:?}");
        // A compressed text frame from this client is read.
        tcp.write_all(&frame(0xC1, &deflate(b"42[\"echo\",\"deflated\"]")))
            .await
            .unwrap();
        let (b0, echo) = within(5, "the echo", read_frame(&mut tcp)).await;
        assert_eq!(
            (b0, echo.as_slice()),
            (0x81, b"42[\"echo\",\"deflated\"]".as_slice())
        );

        tcp.write_all(&frame(0xC1, &packed)).await.unwrap();
        let close = within(5, "the close frame", async {
            loop {
                let (b0, payload) = read_frame(&mut tcp).await;
                if b0 & 0x0f == 0x8 {
                    return payload;
                }
            }
        })
        .await;
        assert!(close.len() >= 2, "close frame without a code: {close:?}");
        assert_eq!(u16::from_be_bytes([close[0], close[1]]), 1009);
    };
    let ((ext, results), ()) = tokio::join!(npm, bomb);
    assert_eq!(ext, json!({}));
    assert_eq!(results[0], ("echo-big-text".to_owned(), 1, 1));
}

/// A malformed `Sec-WebSocket-Extensions` is refused with 400 (as `ws` does); an offer the
/// server cannot accept (`server_max_window_bits=8`) is declined and the next one taken.
#[tokio::test]
async fn malformed_offers_are_refused_and_unacceptable_ones_declined() {
    let server = server(Some(PerMessageDeflate::default()));
    let (head, _) = raw_deflate_client(server.addr, "permessage-deflate; a=\"1").await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let (head, _) = raw_deflate_client(
        server.addr,
        "permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=12",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains(
            "sec-websocket-extensions: permessage-deflate; server_max_window_bits=12\r\n"
        ),
        "{head}"
    );
}

/// Polling: a response holding only `compress(false)` packets is not HTTP-compressed, one
/// holding some other packet is (Node: `packets.some(p => p.options.compress)`).
#[tokio::test]
async fn polling_compress_false_is_not_http_compressed() {
    // No ping during the test: a ping is a packet that may be compressed.
    let io = builder()
        .ping_interval(Duration::from_secs(60))
        .ping_timeout(Duration::from_secs(60))
        .build();
    io.ns("/", async |_: SocketRef| {});
    let server = Server::start(io);
    let open = http::get(server.addr, "/socket.io/?EIO=4&transport=polling").await;
    let body = open.text();
    let sid = body
        .split("\"sid\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let url = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(http::post(server.addr, &url, "40").await.status, 200);
    let gzip = [("accept-encoding", "gzip")];
    let connect = http::request(server.addr, ::http::Method::GET, &url, &gzip, Bytes::new()).await;
    let id = connect.text();
    let id = id
        .split("\"sid\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let socket = server.socket(&id);
    let big = big_text(5000, 7);

    socket.compress(false).emit("a", &big).unwrap();
    socket.compress(false).emit("b", &big).unwrap();
    let res = http::request(server.addr, ::http::Method::GET, &url, &gzip, Bytes::new()).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-encoding"), None);
    assert!(res.text().contains(&big));

    socket.compress(false).emit("a", &big).unwrap();
    socket.emit("b", &big).unwrap();
    let res = http::request(server.addr, ::http::Method::GET, &url, &gzip, Bytes::new()).await;
    assert_eq!(res.header("content-encoding"), Some("gzip"));
    // Broadcast operators carry the flag too.
    server.io.compress(false).emit("c", &big).unwrap();
    let res = within(
        5,
        "the broadcast poll",
        http::request(server.addr, ::http::Method::GET, &url, &gzip, Bytes::new()),
    )
    .await;
    assert_eq!(res.header("content-encoding"), None);
    assert!(res.text().contains(&big));
}
