//! Mounting the server: a tower `Layer` for axum and other tower stacks.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ferrio_engine::{EngineBody, EngineLayer, EngineService};
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::client_bundle::ClientBundle;
use crate::conn::IoHandler;

/// A tower layer that answers Socket.IO requests at the configured path (`/socket.io/`) and
/// passes every other request to the wrapped service. With a [`ClientBundle`], it first
/// answers requests for the JavaScript client files under that path.
#[derive(Clone)]
pub struct SocketIoLayer {
    engine: EngineLayer<IoHandler>,
    client: Option<ServedClient>,
}

/// The client bundle and the path prefix it is served under (`/socket.io/`).
#[derive(Clone)]
struct ServedClient {
    bundle: ClientBundle,
    prefix: Arc<str>,
}

impl std::fmt::Debug for SocketIoLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIoLayer").finish_non_exhaustive()
    }
}

impl SocketIoLayer {
    pub(crate) fn new(
        engine: EngineLayer<IoHandler>,
        client: Option<ClientBundle>,
        path: &str,
    ) -> Self {
        let prefix: Arc<str> = format!("{}/", path.trim_end_matches('/')).into();
        SocketIoLayer {
            engine,
            client: client.map(|bundle| ServedClient { bundle, prefix }),
        }
    }
}

impl<S> Layer<S> for SocketIoLayer {
    type Service = SocketIoService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SocketIoService {
            inner: self.engine.layer(inner),
            client: self.client.clone(),
        }
    }
}

/// The service of [`SocketIoLayer`].
#[derive(Clone)]
pub struct SocketIoService<S> {
    inner: EngineService<IoHandler, S>,
    client: Option<ServedClient>,
}

impl<S> std::fmt::Debug for SocketIoService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIoService").finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SocketIoService<S>
where
    EngineService<IoHandler, S>:
        Service<Request<ReqBody>, Response = Response<EngineBody<ResBody>>>,
{
    type Response = Response<EngineBody<ResBody>>;
    type Error = <EngineService<IoHandler, S> as Service<Request<ReqBody>>>::Error;
    type Future =
        SocketIoFuture<<EngineService<IoHandler, S> as Service<Request<ReqBody>>>::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if let Some(client) = &self.client
            && let Some(name) = req.uri().path().strip_prefix(&*client.prefix)
            && let Some(res) = client.bundle.respond(req.method(), name, req.headers())
        {
            return SocketIoFuture {
                kind: Kind::Client {
                    res: Some(res.map(EngineBody::full)),
                },
            };
        }
        SocketIoFuture {
            kind: Kind::Engine {
                fut: self.inner.call(req),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`SocketIoService`].
    pub struct SocketIoFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        Client { res: Option<Response<EngineBody<B>>> },
        Engine { #[pin] fut: F },
    }
}

impl<F, B, E> Future for SocketIoFuture<F, B>
where
    F: Future<Output = Result<Response<EngineBody<B>>, E>>,
{
    type Output = Result<Response<EngineBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Client { res } => match res.take() {
                Some(res) => Poll::Ready(Ok(res)),
                None => panic!("SocketIoFuture polled after completion"),
            },
            KindProj::Engine { fut } => fut.poll(cx),
        }
    }
}

impl<F, B> std::fmt::Debug for SocketIoFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIoFuture").finish_non_exhaustive()
    }
}
