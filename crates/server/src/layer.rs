//! Mounting the server: a tower `Layer` for axum and other tower stacks.

use std::task::{Context, Poll};

use ferrio_engine::{EngineLayer, EngineService};
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::conn::IoHandler;

/// A tower layer that answers Socket.IO requests at the configured path (`/socket.io/`) and
/// passes every other request to the wrapped service.
#[derive(Clone)]
pub struct SocketIoLayer {
    engine: EngineLayer<IoHandler>,
}

impl std::fmt::Debug for SocketIoLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIoLayer").finish_non_exhaustive()
    }
}

impl SocketIoLayer {
    pub(crate) fn new(engine: EngineLayer<IoHandler>) -> Self {
        SocketIoLayer { engine }
    }
}

impl<S> Layer<S> for SocketIoLayer {
    type Service = SocketIoService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SocketIoService {
            inner: self.engine.layer(inner),
        }
    }
}

/// The service of [`SocketIoLayer`].
#[derive(Clone)]
pub struct SocketIoService<S> {
    inner: EngineService<IoHandler, S>,
}

impl<S> std::fmt::Debug for SocketIoService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIoService").finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SocketIoService<S>
where
    EngineService<IoHandler, S>: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = <EngineService<IoHandler, S> as Service<Request<ReqBody>>>::Error;
    type Future = <EngineService<IoHandler, S> as Service<Request<ReqBody>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        self.inner.call(req)
    }
}
