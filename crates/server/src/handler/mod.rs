//! Handlers in the axum style: async closures whose arguments are extractors.
//!
//! - connection handlers (`io.ns(path, handler)`): [`FromConnectParts`] extractors such as
//!   [`SocketRef`], [`Data`] (the auth payload), [`TryData`], [`State`], [`HttpExtension`];
//! - event handlers (`socket.on(event, handler)`): [`FromMessageParts`] extractors such as
//!   [`SocketRef`], [`Data`], [`TryData`], [`AckSender`], [`Event`], [`State`],
//!   [`HttpExtension`];
//! - disconnect handlers (`socket.on_disconnect(handler)`): [`SocketRef`],
//!   [`DisconnectReason`], [`DisconnectDescription`], [`State`], [`Extension`],
//!   [`HttpExtension`].
//!
//! An event handler may return `Result<T, E>` (`T: Serialize`, `E: Display`) to answer the
//! client's acknowledgement; returning `()` answers nothing.
//!
//! A handler is any closure that can be cloned and called once per event (`FnOnce + Clone`):
//! `async |..| {..}`, `async move |..| {..}` and `move |..| async move {..}` closures that
//! capture clonable state (an `Arc`, a [`crate::SocketIo`], a channel sender) all work. Each
//! call runs on a clone of the closure, so what it captured is cloned once per call (cheap
//! for an `Arc`).

mod extract;

use std::fmt::Display;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use ferrio_proto::socket::Args;
use serde::Serialize;

pub use extract::{
    Data, DisconnectDescription, Event, Extension, HttpExtension, MaybeHttpExtension, State,
    TryData,
};

use crate::ack::AckSender;
use crate::socket::{DisconnectReason, SocketRef};

/// A boxed handler future.
pub(crate) type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// What an event handler gets: the event, its arguments and its ack id.
#[derive(Debug)]
#[non_exhaustive]
pub struct MessageParts {
    /// The event name.
    pub event: String,
    /// The arguments (raw until extracted).
    pub args: Args,
    /// The ack id, if the client waits for an acknowledgement; taken by [`AckSender`].
    pub ack_id: Option<u64>,
}

/// What a disconnect handler gets: Node's two `disconnect` arguments.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DisconnectParts {
    /// Why the socket disconnected.
    pub reason: DisconnectReason,
    /// What failed, for a transport error (`message too big`, `write failed`, ...): Node's
    /// `description` (there an `Error` object; here its text). `None` for the other reasons.
    pub description: Option<&'static str>,
}

/// What a connection handler gets: the auth payload.
#[derive(Debug)]
#[non_exhaustive]
pub struct ConnectParts {
    /// The CONNECT payload (`{}` when absent).
    pub auth: serde_json::Value,
}

/// An extraction failure: logged, and for an event with an ack id the ack is answered with
/// `{"error": message}`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Rejection(pub String);

/// Extracts a value from an incoming event.
pub trait FromMessageParts: Sized {
    /// Extracts; an error rejects the event.
    fn from_message_parts(socket: &SocketRef, parts: &mut MessageParts) -> Result<Self, Rejection>;
}

/// Extracts a value from a connection.
pub trait FromConnectParts: Sized {
    /// Extracts; an error refuses the handler (logged).
    fn from_connect_parts(socket: &SocketRef, parts: &ConnectParts) -> Result<Self, Rejection>;
}

/// Extracts a value when a socket disconnects.
pub trait FromDisconnectParts: Sized {
    /// Extracts; an error skips the handler (logged).
    fn from_disconnect_parts(
        socket: &SocketRef,
        parts: &DisconnectParts,
    ) -> Result<Self, Rejection>;
}

/// What an event handler returns: `()`, or `Result` to answer the acknowledgement.
pub trait HandlerOutput: Send + 'static {
    /// Answers the ack (if any) with this output.
    fn respond(self, ack: Option<AckSender>);
}

impl HandlerOutput for () {
    fn respond(self, _ack: Option<AckSender>) {}
}

impl<T, E> HandlerOutput for Result<T, E>
where
    T: Serialize + Send + 'static,
    E: Display + Send + 'static,
{
    fn respond(self, ack: Option<AckSender>) {
        let Some(ack) = ack else {
            if let Err(e) = self {
                tracing::warn!("event handler failed: {e}");
            }
            return;
        };
        let sent = match self {
            Ok(v) => ack.send(&v),
            Err(e) => ack.send_error(&e.to_string()),
        };
        if let Err(e) = sent {
            tracing::debug!("ack not sent: {e}");
        }
    }
}

/// An event handler: an async function of [`FromMessageParts`] extractors.
pub trait MessageHandler<M>: Send + Sync + 'static {
    /// Runs the extractors; returns the handler future, or `None` when rejected.
    fn call(&self, socket: SocketRef, parts: MessageParts) -> Option<BoxFuture>;
}

/// A connection handler: an async function of [`FromConnectParts`] extractors.
pub trait ConnectHandler<M>: Send + Sync + 'static {
    /// Runs the extractors; returns the handler future, or `None` when rejected.
    fn call(&self, socket: SocketRef, parts: &ConnectParts) -> Option<BoxFuture>;
}

/// A disconnect handler: an async function of [`FromDisconnectParts`] extractors.
pub trait DisconnectHandler<M>: Send + Sync + 'static {
    /// Runs the extractors; returns the handler future, or `None` when rejected.
    fn call(&self, socket: SocketRef, parts: &DisconnectParts) -> Option<BoxFuture>;
}

fn reject(socket: &SocketRef, parts: &mut MessageParts, e: Rejection) {
    tracing::warn!(sid = %socket.id(), event = %parts.event, "event rejected: {e}");
    if let Some(id) = parts.ack_id.take() {
        let _ = AckSender::new(socket.clone(), Some(id)).send_error(&e.0);
    }
}

macro_rules! impl_handlers {
    ($($T:ident),*) => {
        impl<F, Fut, Out, $($T,)*> MessageHandler<(Out, $($T,)*)> for F
        where
            F: FnOnce($($T),*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = Out> + Send + 'static,
            Out: HandlerOutput,
            $($T: FromMessageParts + Send + 'static,)*
        {
            #[allow(non_snake_case, unused_mut, unused_variables)]
            fn call(&self, socket: SocketRef, mut parts: MessageParts) -> Option<BoxFuture> {
                $(
                    let $T = match $T::from_message_parts(&socket, &mut parts) {
                        Ok(v) => v,
                        Err(e) => {
                            reject(&socket, &mut parts, e);
                            return None;
                        }
                    };
                )*
                let fut = (self.clone())($($T),*);
                let ack = parts.ack_id.map(|id| AckSender::new(socket, Some(id)));
                Some(Box::pin(async move { fut.await.respond(ack) }))
            }
        }

        impl<F, Fut, $($T,)*> ConnectHandler<($($T,)*)> for F
        where
            F: FnOnce($($T),*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = ()> + Send + 'static,
            $($T: FromConnectParts + Send + 'static,)*
        {
            #[allow(non_snake_case, unused_variables)]
            fn call(&self, socket: SocketRef, parts: &ConnectParts) -> Option<BoxFuture> {
                $(
                    let $T = match $T::from_connect_parts(&socket, parts) {
                        Ok(v) => v,
                        Err(e) => {
                            tracing::warn!(sid = %socket.id(), "connect handler rejected: {e}");
                            return None;
                        }
                    };
                )*
                Some(Box::pin((self.clone())($($T),*)))
            }
        }

        impl<F, Fut, $($T,)*> DisconnectHandler<($($T,)*)> for F
        where
            F: FnOnce($($T),*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = ()> + Send + 'static,
            $($T: FromDisconnectParts + Send + 'static,)*
        {
            #[allow(non_snake_case, unused_variables)]
            fn call(&self, socket: SocketRef, parts: &DisconnectParts) -> Option<BoxFuture> {
                $(
                    let $T = match $T::from_disconnect_parts(&socket, parts) {
                        Ok(v) => v,
                        Err(e) => {
                            tracing::warn!(sid = %socket.id(), "disconnect handler rejected: {e}");
                            return None;
                        }
                    };
                )*
                Some(Box::pin((self.clone())($($T),*)))
            }
        }
    };
}

impl_handlers!();
impl_handlers!(T1);
impl_handlers!(T1, T2);
impl_handlers!(T1, T2, T3);
impl_handlers!(T1, T2, T3, T4);
impl_handlers!(T1, T2, T3, T4, T5);
impl_handlers!(T1, T2, T3, T4, T5, T6);

/// Type-erased handlers, stored behind `Arc<dyn ...>`.
pub(crate) trait ErasedMessageHandler: Send + Sync + 'static {
    fn call(&self, socket: SocketRef, parts: MessageParts) -> Option<BoxFuture>;
}

pub(crate) trait ErasedConnectHandler: Send + Sync + 'static {
    fn call(&self, socket: SocketRef, parts: &ConnectParts) -> Option<BoxFuture>;
}

pub(crate) trait ErasedDisconnectHandler: Send + Sync + 'static {
    fn call(&self, socket: SocketRef, parts: &DisconnectParts) -> Option<BoxFuture>;
}

pub(crate) struct Erased<H, M>(pub(crate) H, pub(crate) PhantomData<fn() -> M>);

impl<H: MessageHandler<M>, M: 'static> ErasedMessageHandler for Erased<H, M> {
    fn call(&self, socket: SocketRef, parts: MessageParts) -> Option<BoxFuture> {
        self.0.call(socket, parts)
    }
}

/// Erases a connection handler (a separate wrapper type keeps the impls apart).
pub(crate) struct ErasedConnect<H, M>(pub(crate) H, pub(crate) PhantomData<fn() -> M>);

impl<H: ConnectHandler<M>, M: 'static> ErasedConnectHandler for ErasedConnect<H, M> {
    fn call(&self, socket: SocketRef, parts: &ConnectParts) -> Option<BoxFuture> {
        self.0.call(socket, parts)
    }
}

/// Erases a disconnect handler.
pub(crate) struct ErasedDisconnect<H, M>(pub(crate) H, pub(crate) PhantomData<fn() -> M>);

impl<H: DisconnectHandler<M>, M: 'static> ErasedDisconnectHandler for ErasedDisconnect<H, M> {
    fn call(&self, socket: SocketRef, parts: &DisconnectParts) -> Option<BoxFuture> {
        self.0.call(socket, parts)
    }
}
