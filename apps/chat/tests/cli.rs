//! The command line: what the app refuses, and a graceful stop on SIGTERM.

mod common;

use std::process::{Command, Output};

use common::{ChatServer, client_dir};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrio-chat"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run ferrio-chat")
}

#[test]
fn an_unreachable_redis_is_reported() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let dir = client_dir();
    let url = format!("redis://127.0.0.1:{port}");
    let out = run(&[
        "--port",
        "0",
        "--redis",
        &url,
        "--client-dir",
        dir.to_str().expect("utf-8"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--redis") && stderr.contains(&url),
        "{stderr}"
    );
}

#[test]
fn a_missing_client_bundle_says_what_to_run() {
    let out = run(&["--port", "0", "--client-dir", "/nonexistent/dist"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cargo xtask chat") && stderr.contains("npm ci"),
        "{stderr}"
    );
}

#[test]
fn a_busy_port_is_reported() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let dir = client_dir();
    let out = run(&[
        "--port",
        &port,
        "--client-dir",
        dir.to_str().expect("utf-8"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot listen on"), "{stderr}");
}

#[tokio::test]
async fn sigterm_stops_the_server_gracefully() {
    let server = ChatServer::start(0).await;
    let status = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    assert_eq!(server.wait(15).await, Some(0));
}
