//! The response body of the Engine.IO service.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// Boxed error of a response body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pin_project_lite::pin_project! {
    /// A response from the Engine.IO service: its own chunks, or the inner service's body for
    /// requests outside the Engine.IO path.
    pub struct EngineBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project_lite::pin_project! {
    #[project = BodyProj]
    #[project_ref = BodyRef]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Chunks { chunks: VecDeque<Bytes>, remaining: u64 },
    }
}

impl<B> EngineBody<B> {
    /// A body from a list of chunks.
    pub fn chunks(chunks: impl IntoIterator<Item = Bytes>) -> Self {
        let chunks: VecDeque<Bytes> = chunks.into_iter().filter(|c| !c.is_empty()).collect();
        let remaining = chunks.iter().map(|c| c.len() as u64).sum();
        EngineBody {
            kind: Kind::Chunks { chunks, remaining },
        }
    }

    /// A body of one chunk.
    pub fn full(b: impl Into<Bytes>) -> Self {
        Self::chunks([b.into()])
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self::chunks([])
    }

    /// The inner service's body.
    pub fn inner(body: B) -> Self {
        EngineBody {
            kind: Kind::Inner { body },
        }
    }
}

impl<B> Body for EngineBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().kind.project() {
            BodyProj::Inner { body } => body.poll_frame(cx).map_err(Into::into),
            BodyProj::Chunks { chunks, remaining } => Poll::Ready(chunks.pop_front().map(|c| {
                *remaining -= c.len() as u64;
                Ok(Frame::data(c))
            })),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Chunks { chunks, .. } => chunks.is_empty(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Chunks { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}
