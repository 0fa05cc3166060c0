//! CORS as a browser enforces it: headless Chromium (Debian's `chromium`, installed by
//! `cargo xtask test` when missing) runs a page of another origin with the real
//! `socket.io-client` bundle against two servers, one allowing the page and one refusing it
//! (`interop/sio/browser-cors.mjs`). Over polling every request is preflighted (a custom
//! header and credentials), the answers are compressed as Chromium asks, and only the exposed
//! headers can be read.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Server, builder};
use ferrio::{AckSender, CorsConfig, Data, SocketRef};
use ferrio_testkit::node::NodeProcess;
use http::{HeaderName, HeaderValue, header};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";

/// The `Content-Encoding` of every polling GET answer of a session.
type Codings = Arc<Mutex<Vec<String>>>;

fn server(mut cors: CorsConfig, codings: Codings) -> Server {
    cors.exposed_headers = vec![HeaderName::from_static("x-served-by")];
    let io = builder()
        .cors(cors)
        .on_headers(move |h, req| {
            h.insert("x-served-by", HeaderValue::from_static("ferrio"));
            h.insert("x-hidden", HeaderValue::from_static("1"));
            let poll = req.method == http::Method::GET
                && req.uri.query().unwrap_or("").contains("sid=")
                && req.uri.query().unwrap_or("").contains("transport=polling");
            if let Some(c) = h.get(header::CONTENT_ENCODING).filter(|_| poll) {
                codings.lock().unwrap().push(c.to_str().unwrap().to_owned());
            }
        })
        .build();
    io.ns("/", async |socket: SocketRef| {
        socket.on("whoami", async |socket: SocketRef, ack: AckSender| {
            let h = socket.handshake().headers();
            let header = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
            ack.send(&json!({"origin": header("origin"), "token": header("x-token")}))
                .ok();
        });
        socket.on("big", async |Data(n): Data<usize>, ack: AckSender| {
            ack.send(&"x".repeat(n)).ok();
        });
    });
    Server::start(io)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_another_origin_connects_only_where_cors_allows_it() {
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| CHROMIUM.to_owned());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: `cargo xtask test` installs Debian's chromium package \
         (or run `apt-get install -y chromium`)"
    );
    let codings = Codings::default();
    // The page's port is the script's choice: any page of `localhost`.
    let allowing = server(
        CorsConfig::predicate(|o| o.starts_with("http://localhost:")),
        codings.clone(),
    );
    let refusing = server(
        CorsConfig::list(["http://elsewhere.test"]),
        Codings::default(),
    );
    let mut node = NodeProcess::spawn("sio/browser-cors.mjs", &[&allowing.url, &refusing.url]);
    let line = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = node.line().await {
            if line.starts_with("ok ") || line.starts_with("fail ") {
                return line;
            }
        }
        panic!("the browser script ended without a result");
    })
    .await
    .expect("the browser script within 60 s");
    let s: Value = match line.strip_prefix("ok ") {
        Some(json) => serde_json::from_str(json).unwrap(),
        None => panic!("{line}"),
    };
    let (exited_ok, rest) = node.finish(20).await;
    assert!(exited_ok, "exit status: {rest:?}");

    let page = s["page"].as_str().unwrap();
    assert!(page.starts_with("http://localhost:"), "{s}");
    let seen = json!({"origin": page, "token": "abc"});
    assert_eq!(s["polling"]["connected"], true, "{s}");
    assert_eq!(s["polling"]["seen"], seen, "{s}");
    assert_eq!(s["polling"]["bigLength"], 5000, "{s}");
    assert_eq!(s["polling"]["transport"], "polling", "{s}");
    for t in ["websocket", "upgrade"] {
        assert_eq!(s[t]["connected"], true, "{t}: {s}");
        assert_eq!(s[t]["seen"]["origin"], page, "{s}");
        assert_eq!(s[t]["bigLength"], 5000, "{s}");
        assert_eq!(s[t]["transport"], "websocket", "{s}");
    }
    for t in ["refusedPolling", "refusedWebsocket"] {
        assert_eq!(s[t]["connected"], false, "{t}: {s}");
    }
    assert_eq!(
        s["readable"],
        json!({"served": "ferrio", "hidden": null}),
        "{s}"
    );
    // Chromium accepts gzip first (`gzip, deflate, br, zstd`): the 5000-byte answers came
    // compressed and were decoded by the browser.
    let codings = codings.lock().unwrap().clone();
    assert!(
        !codings.is_empty() && codings.iter().all(|c| c == "gzip"),
        "{codings:?}"
    );
    assert_eq!(refusing.io.of("/").all_sockets().len(), 0);
}
