//! CORS: the preflight and actual answers compared with a real Node `engine.io` server using
//! the npm `cors` package with the same options, and the `Origin` policy on both transports.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use ::http::{HeaderName, Method, StatusCode};
use bytes::Bytes;
use common::{fast_config, open_sid, start};
use ferrio_engine::{AllowedOrigins, CorsConfig, EngineConfig, OriginRule};
use ferrio_testkit::http::{self, Response};
use ferrio_testkit::node::NodeProcess;
use ferrio_testkit::ws;
use serde_json::{Value, json};

const HANDSHAKE: &str = "/engine.io/?EIO=4&transport=polling";

/// The headers the `cors` package may write, and that must therefore agree.
const CORS_HEADERS: [&str; 8] = [
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-expose-headers",
    "access-control-max-age",
    "vary",
    "content-length",
];

/// A Node `engine.io` server with `cors: options` (see interop/engine/cors-server.mjs).
struct NodeCors {
    addr: SocketAddr,
    _node: NodeProcess,
}

impl NodeCors {
    async fn start(options: Value) -> NodeCors {
        let mut node = NodeProcess::spawn("engine/cors-server.mjs", &[&options.to_string()]);
        let port: u16 = node.expect_line("listening ", 10).await.parse().unwrap();
        NodeCors {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            _node: node,
        }
    }
}

async fn send(addr: SocketAddr, method: Method, headers: &[(&str, &str)]) -> Response {
    http::request(addr, method, HANDSHAKE, headers, Bytes::new()).await
}

/// The CORS headers of a response, by name (several values of one name joined by `, `).
fn cors_headers(res: &Response, with_length: bool) -> Vec<(String, String)> {
    CORS_HEADERS
        .iter()
        .filter(|n| with_length || **n != "content-length")
        .filter_map(|n| {
            let values: Vec<&str> = res
                .headers
                .get_all(*n)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect();
            (!values.is_empty()).then(|| (n.to_string(), values.join(", ")))
        })
        .collect()
}

/// Sends the same preflight and the same handshake to Ferrio and to Node, and compares the
/// status of the preflight and the CORS headers of both answers.
async fn same_as_node(ferrio: SocketAddr, node: SocketAddr, origin: &str, request_headers: &str) {
    let mut pre: Vec<(&str, &str)> = vec![
        ("origin", origin),
        ("access-control-request-method", "POST"),
    ];
    if !request_headers.is_empty() {
        pre.push(("access-control-request-headers", request_headers));
    }
    let ours = send(ferrio, Method::OPTIONS, &pre).await;
    let theirs = send(node, Method::OPTIONS, &pre).await;
    assert_eq!(ours.status, theirs.status, "preflight from {origin}");
    // Node writes `Content-Length: 0` on a 204 too; hyper leaves it out, as RFC 9110 (8.6)
    // asks, and a 204 has no body anyway.
    let with_length = ours.status != StatusCode::NO_CONTENT;
    assert_eq!(
        cors_headers(&ours, with_length),
        cors_headers(&theirs, with_length),
        "preflight from {origin} with {request_headers:?}"
    );
    let ours = send(ferrio, Method::GET, &[("origin", origin)]).await;
    let theirs = send(node, Method::GET, &[("origin", origin)]).await;
    assert_eq!(ours.status, StatusCode::OK, "{}", ours.text());
    assert_eq!(theirs.status, StatusCode::OK, "{}", theirs.text());
    assert_eq!(
        cors_headers(&ours, false),
        cors_headers(&theirs, false),
        "handshake from {origin}"
    );
}

fn config_with(cors: CorsConfig) -> EngineConfig {
    let mut config = fast_config();
    config.cors = cors;
    config
}

#[tokio::test]
async fn every_option_answers_as_the_cors_package() {
    let mut cors = CorsConfig::list([
        OriginRule::exact("https://app.example"),
        OriginRule::regex(r"^https://[a-z]+\.preview\.example$").unwrap(),
    ]);
    cors.methods = vec![Method::GET, Method::POST];
    cors.allowed_headers = Some(vec![
        HeaderName::from_static("x-token"),
        HeaderName::from_static("content-type"),
    ]);
    cors.exposed_headers = vec![
        HeaderName::from_static("x-request-id"),
        HeaderName::from_static("x-served-by"),
    ];
    cors.max_age = Some(Duration::from_secs(600));
    cors.options_success_status = StatusCode::OK;
    let ferrio = start(config_with(cors)).await;
    let node = NodeCors::start(json!({
        "origin": ["https://app.example", {"regex": r"^https://[a-z]+\.preview\.example$"}],
        "credentials": true,
        "methods": ["GET", "POST"],
        "allowedHeaders": ["x-token", "content-type"],
        "exposedHeaders": ["x-request-id", "x-served-by"],
        "maxAge": 600,
        "optionsSuccessStatus": 200,
    }))
    .await;
    same_as_node(ferrio.addr, node.addr, "https://app.example", "x-token").await;
    same_as_node(ferrio.addr, node.addr, "https://pr.preview.example", "").await;
}

#[tokio::test]
async fn defaults_reflect_the_requested_headers_as_the_cors_package() {
    // The `cors` defaults, with credentials (Ferrio's default; the package's is off).
    let ferrio = start(config_with(CorsConfig::list(["https://app.example"]))).await;
    let node =
        NodeCors::start(json!({"origin": ["https://app.example"], "credentials": true})).await;
    same_as_node(
        ferrio.addr,
        node.addr,
        "https://app.example",
        "x-token, content-type",
    )
    .await;
    same_as_node(ferrio.addr, node.addr, "https://app.example", "").await;

    let mut cors = CorsConfig::list(["https://app.example"]);
    cors.credentials = false;
    let ferrio = start(config_with(cors)).await;
    let node = NodeCors::start(json!({"origin": ["https://app.example"]})).await;
    same_as_node(ferrio.addr, node.addr, "https://app.example", "x-token").await;
}

#[tokio::test]
async fn any_origin_and_predicates_answer_as_the_cors_package() {
    let ferrio = start(config_with(CorsConfig::any())).await;
    let node = NodeCors::start(json!({"origin": "*"})).await;
    same_as_node(
        ferrio.addr,
        node.addr,
        "https://anywhere.example",
        "x-token",
    )
    .await;

    // `Any` with credentials reflects the origin, as `origin: true` does.
    let mut any = CorsConfig::any();
    any.credentials = true;
    let ferrio = start(config_with(any)).await;
    let node = NodeCors::start(json!({"origin": true, "credentials": true})).await;
    same_as_node(ferrio.addr, node.addr, "https://anywhere.example", "").await;

    let ferrio = start(config_with(CorsConfig::predicate(|o| {
        o.ends_with(".c.example")
    })))
    .await;
    let node =
        NodeCors::start(json!({"origin": {"suffix": ".c.example"}, "credentials": true})).await;
    same_as_node(ferrio.addr, node.addr, "https://x.c.example", "x-token").await;
}

/// Unlike Node, which answers a foreign origin without CORS headers and lets a WebSocket from
/// anywhere in, a refused origin gets 403 on both transports, before any session exists.
#[tokio::test]
async fn refused_origins_get_403_on_both_transports() {
    let mut cors = CorsConfig::default();
    cors.origins = AllowedOrigins::List(vec![
        "https://app.example".into(),
        OriginRule::regex(r"^https://[a-z]+\.preview\.example$").unwrap(),
    ]);
    let server = start(config_with(cors)).await;
    for origin in [
        "https://evil.example",
        // The pattern is anchored: a suffix or prefix does not sneak in.
        "https://pr.preview.example.evil.net",
        "https://evil.net/https://pr.preview.example",
    ] {
        let res = send(server.addr, Method::GET, &[("origin", origin)]).await;
        assert_eq!(res.status, 403, "{origin}");
        assert_eq!(res.text(), r#"{"code":4,"message":"Forbidden"}"#);
        assert!(res.header("access-control-allow-origin").is_none());
        let pre = send(server.addr, Method::OPTIONS, &[("origin", origin)]).await;
        assert_eq!(pre.status, 403, "preflight from {origin}");
        let ws = ws::connect_with(
            server.addr,
            "/engine.io/?EIO=4&transport=websocket",
            &[("origin", origin)],
        )
        .await;
        assert!(ws.is_err(), "a WebSocket from {origin} was accepted");
    }
    for origin in ["https://app.example", "https://pr.preview.example"] {
        let res = send(server.addr, Method::GET, &[("origin", origin)]).await;
        assert_eq!(res.status, 200, "{origin}");
        open_sid(&res.text());
        let (_ws, headers) = ws::connect_with_response(
            server.addr,
            "/engine.io/?EIO=4&transport=websocket",
            &[("origin", origin)],
        )
        .await
        .unwrap_or_else(|e| panic!("WebSocket from {origin}: {e}"));
        assert_eq!(headers["access-control-allow-origin"], origin);
    }
    // The page of the server itself is always allowed.
    let same = format!("http://{}", server.addr);
    let res = send(server.addr, Method::GET, &[("origin", &same)]).await;
    assert_eq!(res.status, 200);
    // Two Origin headers are ambiguous.
    let res = send(
        server.addr,
        Method::GET,
        &[
            ("origin", "https://app.example"),
            ("origin", "https://evil.example"),
        ],
    )
    .await;
    assert_eq!(res.status, 400);
    server.assert_healthy().await;
}

#[tokio::test]
async fn a_predicate_decides_on_both_transports() {
    let server = start(config_with(CorsConfig::predicate(|o| {
        o.starts_with("https://") && o.ends_with(".tenant.example")
    })))
    .await;
    let ok = send(
        server.addr,
        Method::GET,
        &[("origin", "https://a.tenant.example")],
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://a.tenant.example")
    );
    assert_eq!(ok.header("access-control-allow-credentials"), Some("true"));
    let no = send(
        server.addr,
        Method::GET,
        &[("origin", "http://a.tenant.example")],
    )
    .await;
    assert_eq!(no.status, 403);
    let ws_no = ws::connect_with(
        server.addr,
        "/engine.io/?EIO=4&transport=websocket",
        &[("origin", "https://tenant.example.evil")],
    )
    .await;
    assert!(ws_no.is_err());
}
