//! The tower layer mounted on an axum `Router`, next to the application's own routes.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use ferrio::{Data, SocketIo, SocketRef};
use ferrio_testkit::ws::{self, Read};
use ferrio_testkit::{http, within};
use serde_json::Value;

#[tokio::test]
async fn layer_on_an_axum_router() {
    let (layer, io) = SocketIo::builder()
        .ping_interval(Duration::from_secs(30))
        .build_layer();
    io.ns("/", async |socket: SocketRef, Data(auth): Data<Value>| {
        let _ = socket.emit("auth", &auth);
    });
    let app = Router::new()
        .route("/", get(|| async { "hello" }))
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    // The application's route still answers.
    let res = http::get(addr, "/").await;
    assert_eq!(res.text(), "hello");
    // Polling handshake.
    let res = http::get(addr, "/socket.io/?EIO=4&transport=polling").await;
    assert_eq!(res.status, 200);
    assert!(res.text().starts_with(r#"0{"sid":""#), "{}", res.text());
    // WebSocket through axum's upgrade support, then a namespace connection.
    let mut c = ws::connect(addr, "/socket.io/?EIO=4&transport=websocket").await;
    assert!(matches!(ws::read(&mut c).await, Read::Text(t) if t.starts_with('0')));
    ws::send_text(&mut c, r#"40{"token":"t"}"#).await;
    let Read::Text(reply) = within(5, "CONNECT reply", ws::read(&mut c)).await else {
        panic!("no CONNECT reply")
    };
    assert!(reply.starts_with(r#"40{"sid":""#), "{reply}");
    assert_eq!(
        within(5, "auth event", ws::read(&mut c)).await,
        Read::Text(r#"42["auth",{"token":"t"}]"#.into())
    );
    server.abort();
}
