//! The HTTP request behind a socket, with the real npm `socket.io-client` over every
//! transport (`interop/sio/http.mjs`): extensions set by a tower layer, the header hooks and
//! cookies, CORS origins, refusals (`connection_error`) and compressed polling answers.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use common::{Mode, Server, builder, builder_with, for_each_mode};
use ferrio::{
    AckSender, AllowRequest, CookieConfig, CorsConfig, Data, HandshakeRejection, HttpExtension,
    MaybeHttpExtension, OriginRule, SocketIo, SocketIoConfig, SocketRef, State,
};
use ferrio_testkit::node::NodeProcess;
use http::{HeaderValue, header};
use serde_json::{Value, json};

/// `node interop/sio/http.mjs <url> <mode> <scenario> <arg>`: waits for its `ok` summary.
async fn run(url: &str, mode: Mode, scenario: &str, arg: Value) -> Value {
    let label = format!(
        "{scenario} over {} ({})",
        mode.arg(),
        common::parser_env().1
    );
    let mut node = NodeProcess::spawn_with_env(
        "sio/http.mjs",
        &[url, mode.arg(), scenario, &arg.to_string()],
        &[common::parser_env()],
    );
    let mut seen = Vec::new();
    let wait = async {
        while let Some(line) = node.line().await {
            if let Some(json) = line.strip_prefix("ok ") {
                return serde_json::from_str::<Value>(json).unwrap();
            }
            assert!(!line.starts_with("fail "), "{label}: {line}\n{seen:?}");
            seen.push(line);
        }
        panic!("{label}: the script ended without `ok`: {seen:?}");
    };
    let summary = tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .unwrap_or_else(|_| panic!("{label}: no summary within 20 s"));
    let (exited_ok, rest) = node.finish(10).await;
    assert!(exited_ok, "{label}: exit status after `ok`: {rest:?}");
    summary
}

/// The user a session cookie names, put into the request by a layer.
#[derive(Clone, Debug)]
struct User(String);

/// An axum middleware that decodes `Cookie: session=<name>` into a [`User`] extension.
async fn session_layer(mut req: Request, next: Next) -> Response {
    let user = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("session=").map(str::to_owned));
    if let Some(name) = user {
        req.extensions_mut().insert(User(name));
    }
    next.run(req).await
}

/// An axum app: the Socket.IO layer behind the session middleware.
struct AxumServer {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AxumServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn axum_server() -> AxumServer {
    let (layer, io) = builder().build_layer();
    io.ns(
        "/",
        async |socket: SocketRef, MaybeHttpExtension(user): MaybeHttpExtension<User>| {
            let hello = json!({
                "user": user.map(|u| u.0),
                "method": socket.handshake().method().as_str(),
                "version": format!("{:?}", socket.handshake().version()),
            });
            socket.emit("welcome", &hello).ok();
            socket.on(
                "whoami",
                async |HttpExtension(user): HttpExtension<User>, ack: AckSender| {
                    ack.send(&user.0).ok();
                },
            );
        },
    );
    let app = Router::new()
        .layer(layer)
        .layer(middleware::from_fn(session_layer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    // The layer keeps the server (and its namespaces) alive.
    drop(io);
    AxumServer {
        url: format!("http://{addr}"),
        task,
    }
}

#[tokio::test]
async fn request_extensions_from_a_layer_reach_the_socket() {
    for_each_mode(async |mode| {
        let server = axum_server().await;
        let s = run(
            &server.url,
            mode,
            "extension",
            json!({"cookie": "session=alice"}),
        )
        .await;
        assert_eq!(s["hello"]["user"], "alice", "{s}");
        assert_eq!(s["hello"]["method"], "GET");
        assert_eq!(s["hello"]["version"], "HTTP/1.1");
        assert_eq!(s["whoami"], "alice");
        assert_eq!(s["transport"], mode.transport());

        // Without the cookie the layer adds nothing: `MaybeHttpExtension` is `None`, and a
        // handler that needs `HttpExtension` is rejected (its ack answers an error).
        let s = run(&server.url, mode, "extension", json!({})).await;
        assert_eq!(s["hello"]["user"], Value::Null, "{s}");
        let error = s["whoami"]["error"].as_str().unwrap_or_default();
        assert!(error.contains("no HTTP request extension"), "{s}");
    })
    .await;
}

/// What the `headers` hook saw of each request: whether it was the handshake, its transport
/// and its `Cookie` header.
type Requests = Arc<Mutex<Vec<Value>>>;

fn query_has(req: &http::request::Parts, needle: &str) -> bool {
    req.uri.query().unwrap_or("").contains(needle)
}

#[tokio::test]
async fn header_hooks_and_cookies_reach_the_npm_client() {
    for_each_mode(async |mode| {
        let requests = Requests::default();
        let seen = requests.clone();
        let mut cookie = CookieConfig::default();
        cookie.max_age = Some(Duration::from_secs(3600));
        let io = builder()
            .cookie(cookie)
            .on_initial_headers(|h, _| {
                h.append(
                    header::SET_COOKIE,
                    HeaderValue::from_static("session=s1; Path=/; Max-Age=3600; HttpOnly"),
                );
                h.insert("x-initial", HeaderValue::from_static("1"));
            })
            .on_headers(move |h, req| {
                seen.lock().unwrap().push(json!({
                    "initial": !query_has(req, "sid="),
                    "websocket": query_has(req, "transport=websocket"),
                    "cookie": req.headers.get(header::COOKIE).and_then(|v| v.to_str().ok()),
                }));
                h.insert("x-served-by", HeaderValue::from_static("ferrio"));
            })
            .with_state(requests.clone())
            .build();
        io.ns("/", async |socket: SocketRef| {
            socket.on("round", async |Data(i): Data<u32>, ack: AckSender| {
                ack.send(&i).ok();
            });
            socket.on(
                "seen",
                async |State(requests): State<Requests>, ack: AckSender| {
                    let list = requests.lock().unwrap().clone();
                    ack.send(&list).ok();
                },
            );
        });
        let server = Server::start(io);
        let s = run(&server.url, mode, "cookies", json!({"rounds": 3})).await;
        let seen = s["seen"].as_array().unwrap();
        assert_eq!(seen[0]["initial"], true, "{s}");
        assert_eq!(seen[0]["cookie"], Value::Null, "{s}");
        assert!(seen[1..].iter().all(|r| r["initial"] == false), "{s}");
        if mode == Mode::WebSocket {
            // One request, the handshake; the `101` brought the cookies and both hooks'
            // headers (the Node client keeps no cookie from a `101`).
            assert_eq!(seen.len(), 1, "{s}");
            let h = &s["upgradeHeaders"][0];
            let cookies = h["set-cookie"].as_array().unwrap();
            assert_eq!(cookies.len(), 2, "{s}");
            assert!(cookies[0].as_str().unwrap().starts_with("io="), "{s}");
            assert!(
                cookies[0]
                    .as_str()
                    .unwrap()
                    .ends_with("; Max-Age=3600; Path=/; HttpOnly; SameSite=Lax"),
                "{s}"
            );
            assert_eq!(cookies[1], "session=s1; Path=/; Max-Age=3600; HttpOnly");
            assert_eq!(h["x-initial"], "1");
            assert_eq!(h["x-served-by"], "ferrio");
            return;
        }
        // Polling: the client's jar kept both cookies (with their expiry) and sent them back
        // on every later request, the upgrade included.
        assert_eq!(
            s["jar"]["session"],
            json!({"value": "s1", "expires": true}),
            "{s}"
        );
        assert_eq!(s["jar"]["io"]["expires"], true, "{s}");
        let sid = s["jar"]["io"]["value"].as_str().unwrap();
        assert_eq!(sid.len(), 20, "{s}");
        let want = format!("io={sid}; session=s1");
        assert!(seen.len() >= 3, "{s}");
        for r in &seen[1..] {
            assert_eq!(r["cookie"], want.as_str(), "{s}");
        }
        if mode == Mode::Upgrade {
            assert!(seen.iter().any(|r| r["websocket"] == true), "{s}");
            assert_eq!(
                s["upgradeHeaders"][0]["x-served-by"], "ferrio",
                "the upgrade's 101: {s}"
            );
            assert!(s["upgradeHeaders"][0].get("x-initial").is_none(), "{s}");
        }
    })
    .await;
}

fn echo_ns(io: &SocketIo) {
    io.ns("/", async |socket: SocketRef| {
        socket.on("echo", async |Data(v): Data<Value>, ack: AckSender| {
            ack.send(&v).ok();
        });
    });
}

/// `SocketIoBuilder::path`: the npm client connects at the configured path (its `path`
/// option) on every transport, and is refused at the default `/socket.io/`.
#[tokio::test]
async fn the_npm_client_connects_at_the_configured_path() {
    for_each_mode(async |mode| {
        let io = builder().path("/realtime/").build();
        echo_ns(&io);
        let server = Server::start(io);
        let s = run(&server.url, mode, "path", json!({ "path": "/realtime/" })).await;
        assert_eq!(
            s,
            json!({ "echo": "/realtime/", "transport": mode.transport() })
        );
        let s = run(&server.url, mode, "refused", json!({})).await;
        assert!(s["error"].is_string(), "{s}");
    })
    .await;
}

#[tokio::test]
async fn cors_origins_by_list_regex_and_predicate_with_the_npm_client() {
    let origins = [
        "https://app.example",
        "https://pr.preview.example",
        "https://evil.example",
        "https://pr.preview.example.evil.net",
    ];
    for_each_mode(async |mode| {
        let list = CorsConfig::list([
            OriginRule::exact("https://app.example"),
            OriginRule::regex(r"^https://[a-z]+\.preview\.example$").unwrap(),
        ]);
        let predicate = CorsConfig::predicate(|o| {
            o == "https://app.example" || o.ends_with(".preview.example")
        });
        for cors in [list, predicate] {
            let io = builder().cors(cors).build();
            echo_ns(&io);
            let server = Server::start(io);
            let s = run(&server.url, mode, "origins", json!({"origins": origins})).await;
            for allowed in &origins[..2] {
                assert_eq!(s[allowed]["connected"], true, "{allowed}: {s}");
                assert_eq!(s[allowed]["echo"], *allowed, "{s}");
                if mode == Mode::WebSocket {
                    assert_eq!(s[allowed]["acao"], *allowed, "{s}");
                }
            }
            for refused in &origins[2..] {
                assert_eq!(s[refused]["connected"], false, "{refused}: {s}");
            }
            server
                .wait_until("the refused origins to leave no socket", |io| {
                    io.of("/").all_sockets().is_empty()
                })
                .await;
        }
    })
    .await;
}

/// One `connection_error` call.
type Refusals = Arc<Mutex<Vec<Value>>>;

#[tokio::test]
async fn refused_handshakes_reach_connection_error() {
    for_each_mode(async |mode| {
        let refusals = Refusals::default();
        let r = refusals.clone();
        let mut config = SocketIoConfig::default();
        config.engine.allow_request = Some(AllowRequest::new(|h| async move {
            match h.query.get("deny") {
                Some(_) => Err(HandshakeRejection {
                    message: "not today".into(),
                }),
                None => Ok(()),
            }
        }));
        let io = builder_with(config)
            .on_connection_error(move |e| {
                r.lock().unwrap().push(json!({
                    "status": e.status.as_u16(),
                    "code": e.code,
                    "message": e.message,
                    "deny": query_has(e.request, "deny=1"),
                    "websocket": query_has(e.request, "transport=websocket"),
                    "client": e.request.headers.get("x-client").and_then(|v| v.to_str().ok()),
                }));
            })
            .build();
        echo_ns(&io);
        let server = Server::start(io);
        let s = run(
            &server.url,
            mode,
            "refused",
            json!({"query": {"deny": "1"}}),
        )
        .await;
        let want = json!([{
            "status": 403,
            "code": 4,
            "message": "not today",
            "deny": true,
            "websocket": mode == Mode::WebSocket,
            "client": "node",
        }]);
        assert_eq!(Value::Array(refusals.lock().unwrap().clone()), want, "{s}");
        // The client saw the 403: XHR reports its status, `ws` its message.
        match mode {
            Mode::WebSocket => assert_eq!(s["status"], "Unexpected server response: 403"),
            _ => assert_eq!(s["status"], 403, "{s}"),
        }
    })
    .await;
}

/// What the `headers` hook saw of each poll: the request's `Accept-Encoding` and the
/// answer's `Content-Encoding`.
type Polls = Arc<Mutex<Vec<Value>>>;

async fn big_server() -> Server {
    let polls = Polls::default();
    let p = polls.clone();
    let io = builder()
        .on_headers(move |h, req| {
            if req.method == http::Method::GET && query_has(req, "sid=") {
                p.lock().unwrap().push(json!({
                    "accept": req.headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()),
                    "encoding": h.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()),
                }));
            }
        })
        .with_state(polls)
        .build();
    io.ns("/", async |socket: SocketRef| {
        socket.on("big", async |socket: SocketRef, Data(n): Data<usize>| {
            let text: String = "0123456789abcdef".repeat(n.div_ceil(16))[..n].to_owned();
            socket.emit("big", &text).ok();
        });
        socket.on(
            "seen",
            async |State(polls): State<Polls>, ack: AckSender| {
                let list = polls.lock().unwrap().clone();
                ack.send(&list).ok();
            },
        );
    });
    Server::start(io)
}

#[tokio::test]
async fn polling_answers_are_compressed_for_the_npm_client() {
    let sizes = json!([300, 5000, 300_000]);
    // Node's fetch (undici) asks for compression and decodes it.
    let server = big_server().await;
    let s = run(
        &server.url,
        Mode::Polling,
        "compression",
        json!({"fetch": true, "sizes": sizes}),
    )
    .await;
    assert_eq!(s["sizes"], sizes, "{s}");
    let seen = s["seen"].as_array().unwrap();
    let accept = seen[0]["accept"].as_str().unwrap_or_default();
    assert_eq!(accept, "gzip, deflate", "{s}");
    let codings: Vec<&str> = seen.iter().filter_map(|p| p["encoding"].as_str()).collect();
    // The 5000 and 300 000 character events at least (the 300-character one is under the
    // threshold, unless it shared a poll with another packet).
    assert!(codings.len() >= 2, "{s}");
    assert!(codings.iter().all(|c| *c == "gzip"), "{s}");

    // Brotli, when the client asks for it (undici offers it only over HTTPS by itself).
    let server = big_server().await;
    let arg = json!({"fetch": true, "acceptEncoding": "br", "sizes": sizes});
    let s = run(&server.url, Mode::Polling, "compression", arg).await;
    assert_eq!(s["sizes"], sizes, "{s}");
    let seen = s["seen"].as_array().unwrap();
    assert!(
        seen.iter().filter(|p| p["encoding"] == "br").count() >= 2,
        "{s}"
    );

    // Node's XHR transport asks for none: the same events arrive uncompressed.
    let server = big_server().await;
    let s = run(
        &server.url,
        Mode::Polling,
        "compression",
        json!({"sizes": sizes}),
    )
    .await;
    assert_eq!(s["sizes"], sizes, "{s}");
    let seen = s["seen"].as_array().unwrap();
    assert!(
        seen.iter()
            .all(|p| p["accept"].is_null() && p["encoding"].is_null()),
        "{s}"
    );

    // WebSocket frames are never compressed by it, and carry the same events.
    let server = big_server().await;
    let s = run(
        &server.url,
        Mode::WebSocket,
        "compression",
        json!({"sizes": sizes}),
    )
    .await;
    assert_eq!(s["sizes"], sizes, "{s}");
    assert_eq!(s["seen"], json!([]), "{s}");
}
