//! Server-side events: what servers of a cluster send each other with `server_side_emit`
//! (Node's `io.serverSideEmit` and `io.on(event, ...)`).

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use ferrio_proto::value::{self, Value, ValueError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::adapter::ServerAckFn;
use crate::handler::BoxFuture;

/// An event from another server of the cluster.
pub struct ServerEvent {
    event: String,
    args: Vec<Value>,
    ack: Option<ServerAckFn>,
}

impl fmt::Debug for ServerEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerEvent")
            .field("event", &self.event)
            .field("args", &self.args)
            .field("wants_ack", &self.ack.is_some())
            .finish()
    }
}

impl ServerEvent {
    pub(crate) fn new(event: String, args: Vec<Value>, ack: Option<ServerAckFn>) -> Self {
        ServerEvent { event, args, ack }
    }

    /// The event name.
    pub fn event(&self) -> &str {
        &self.event
    }

    /// The arguments.
    pub fn args(&self) -> &[Value] {
        &self.args
    }

    /// The arguments as one value: with exactly one argument, that argument; otherwise the
    /// list of all of them (so a tuple type reads several arguments).
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, ValueError> {
        match self.args.as_slice() {
            [one] => value::from_value(one),
            many => value::from_value(&Value::Array(many.to_vec())),
        }
    }

    /// Whether the sending server waits for an answer (`server_side_emit_with_ack`).
    pub fn wants_ack(&self) -> bool {
        self.ack.is_some()
    }

    /// Answers the sending server (the first answer counts; without a request for one, this
    /// does nothing).
    pub fn ack<T: Serialize + ?Sized>(&mut self, answer: &T) -> Result<(), ValueError> {
        let v = value::to_value(answer)?;
        if let Some(ack) = self.ack.take() {
            ack(v);
        }
        Ok(())
    }
}

/// A registered server-side event handler.
pub(crate) type ServerEventHandler = Arc<dyn Fn(ServerEvent) -> BoxFuture + Send + Sync>;

/// Boxes a handler closure.
pub(crate) fn handler<F, Fut>(f: F) -> ServerEventHandler
where
    F: FnOnce(ServerEvent) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |ev| Box::pin((f.clone())(ev)))
}
