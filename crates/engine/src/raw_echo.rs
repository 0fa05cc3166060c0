//! A raw WebSocket echo on the engine's own WebSocket path: the opening-handshake checks, the
//! limits of an [`EngineConfig`] and the codec the session driver uses. It exists for the
//! Autobahn|Testsuite (`cargo xtask autobahn`, the `autobahn-echo` test server); Engine.IO
//! framing is not involved, and applications have no use for it.

use futures_util::{SinkExt, StreamExt};
use http::{HeaderValue, Request, Response, header};
use hyper::upgrade::OnUpgrade;

use crate::errors::HttpError;
use crate::ws::{self, HandshakeError, Incoming, WsStream};
use crate::{EngineBody, EngineConfig};

/// Answers a WebSocket upgrade request, then echoes every message (text as text, binary as
/// binary) until the peer closes; protocol violations are answered as in a session (a close
/// frame with its code). Other requests get 400.
#[doc(hidden)]
pub fn raw_echo<B>(config: &EngineConfig, req: Request<B>) -> Response<EngineBody<String>> {
    let (mut parts, _body) = req.into_parts();
    let refused = |e: HttpError| {
        let mut res = e.response();
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        res
    };
    if !ws::is_upgrade_request(&parts.headers) {
        return refused(HttpError::BadRequest);
    }
    let (res, deflate) = match ws::switching_protocols(&parts, config) {
        Ok(answer) => answer,
        Err(HandshakeError::Version) => return refused(HttpError::UpgradeRequired),
        Err(HandshakeError::Invalid(_)) => return refused(HttpError::BadRequest),
    };
    let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
        return refused(HttpError::BadRequest);
    };
    let config = config.clone();
    tokio::spawn(async move {
        if let Some(ws) = ws::accept(on_upgrade, &config, deflate).await {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(600), echo(ws)).await;
        }
    });
    res
}

async fn echo(mut ws: WsStream) {
    while let Some(item) = ws.next().await {
        match item {
            Ok(msg) => match ws::from_message(msg) {
                Incoming::Frame(frame) => {
                    if ws.send(ws::to_message(frame, true)).await.is_err() {
                        return;
                    }
                }
                // The codec queued the pong; it goes out with this flush.
                Incoming::Control => {
                    if ws.flush().await.is_err() {
                        return;
                    }
                }
                Incoming::Closed => {
                    // Flushes the reply to the peer's close frame.
                    let _ = SinkExt::close(&mut ws).await;
                    return;
                }
            },
            Err(e) => {
                let (close, _) = ws::close_for_error(&e);
                if close.is_some() {
                    let _ = ws.close(close).await;
                }
                return;
            }
        }
    }
}
