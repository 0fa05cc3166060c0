//! Namespaces: their handlers, sockets and adapter.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, Weak};

use ferrio_proto::engine::Sid;
use ferrio_proto::socket::MAX_ACK_ID;

use crate::adapter::{
    Adapter, BroadcastOptions, LocalNamespace, Room, RoomChanges, RoomEvent, RoomIndex,
};
use crate::handler::ErasedConnectHandler;
use crate::io::IoShared;
use crate::listeners::Listeners;
use crate::recovery::RecoveryStore;
use crate::server_event::ServerEventHandler;
use crate::socket::SocketRef;

/// A connection refused by a middleware: the client gets `CONNECT_ERROR {message, data}`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ConnectError {
    /// The message (`err.message` in the JS client).
    pub message: String,
    /// Extra data (`err.data` in the JS client); left out when `None`.
    pub data: Option<serde_json::Value>,
}

impl ConnectError {
    /// A refusal with a message.
    pub fn new(message: impl Into<String>) -> Self {
        ConnectError {
            message: message.into(),
            data: None,
        }
    }

    /// Adds data sent along with the message.
    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = Some(data);
        self
    }
}

/// The future a middleware returns.
pub type MiddlewareFuture = Pin<Box<dyn Future<Output = Result<(), ConnectError>> + Send>>;

/// A connection middleware: runs before the connection handler; an error refuses the
/// connection.
pub(crate) type Middleware = Arc<dyn Fn(SocketRef) -> MiddlewareFuture + Send + Sync>;

/// The handlers of a namespace, shared by the children of a dynamic namespace.
#[derive(Default)]
pub(crate) struct Handlers {
    pub(crate) connect: RwLock<Option<Arc<dyn ErasedConnectHandler>>>,
    pub(crate) middlewares: RwLock<Vec<Middleware>>,
    pub(crate) server_events: RwLock<HashMap<String, ServerEventHandler>>,
}

impl Handlers {
    pub(crate) fn connect(&self) -> Option<Arc<dyn ErasedConnectHandler>> {
        self.connect
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn middlewares(&self) -> Vec<Middleware> {
        self.middlewares
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn server_event(&self, event: &str) -> Option<ServerEventHandler> {
        self.server_events
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(event)
            .cloned()
    }

    pub(crate) fn on_server_event(&self, event: String, handler: ServerEventHandler) {
        self.server_events
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(event, handler);
    }
}

/// A listener of a namespace's room events.
pub(crate) type RoomListener = Arc<dyn Fn(&RoomEvent) + Send + Sync>;

/// The namespaces of a server, by name.
pub(crate) type Registry = RwLock<HashMap<String, Arc<Namespace>>>;

/// One namespace.
pub(crate) struct Namespace {
    pub(crate) name: String,
    pub(crate) handlers: Arc<Handlers>,
    sockets: RwLock<HashMap<Sid, SocketRef>>,
    pub(crate) rooms: RoomIndex,
    /// `on_room_event` listeners (Node's adapter events).
    pub(crate) room_listeners: Listeners<RoomListener>,
    pub(crate) adapter: Arc<dyn Adapter>,
    /// Set once the adapter's `init` has finished: CONNECTs wait for it.
    ready: tokio::sync::OnceCell<()>,
    ack_ids: AtomicU64,
    pub(crate) shared: Arc<IoShared>,
    pub(crate) recovery: Option<RecoveryStore>,
    /// For a child of a dynamic namespace: the registry it is removed from once empty.
    child_of: Option<Weak<Registry>>,
    /// CONNECTs under way (middlewares running): the namespace is not empty meanwhile.
    pending: AtomicUsize,
}

/// A CONNECT under way for a namespace; dropped when the socket is in (or refused).
pub(crate) struct ConnectGuard(pub(crate) Arc<Namespace>);

impl Drop for ConnectGuard {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::AcqRel);
        self.0.cleanup_if_empty();
    }
}

impl Namespace {
    pub(crate) fn new(
        name: String,
        handlers: Arc<Handlers>,
        shared: Arc<IoShared>,
        child_of: Option<Weak<Registry>>,
    ) -> Arc<Self> {
        let ns = Arc::new_cyclic(|me| Namespace {
            child_of,
            pending: AtomicUsize::new(0),
            adapter: shared
                .adapter_factory
                .create(LocalNamespace::new(&name, me.clone())),
            ready: tokio::sync::OnceCell::new(),
            name,
            handlers,
            sockets: RwLock::new(HashMap::new()),
            rooms: RoomIndex::default(),
            room_listeners: Listeners::default(),
            ack_ids: AtomicU64::new(0),
            recovery: shared
                .config
                .connection_state_recovery
                .clone()
                .map(|c| RecoveryStore::new(c, shared.config.parser)),
            shared,
        });
        // Start the adapter now when there is a runtime; otherwise the first CONNECT does.
        if tokio::runtime::Handle::try_current().is_ok() {
            let me = ns.clone();
            tokio::spawn(async move { me.ready().await });
        }
        ns
    }

    /// Waits until the adapter has started (once; an error is logged and the namespace then
    /// serves its own sockets).
    pub(crate) async fn ready(&self) {
        self.ready
            .get_or_init(|| async {
                if let Err(e) = self.adapter.init().await {
                    tracing::warn!(ns = %self.name, "adapter failed to start: {e}");
                }
            })
            .await;
    }

    /// The sockets of this server an operation with these options reaches.
    pub(crate) fn targets(&self, opts: &BroadcastOptions) -> Vec<SocketRef> {
        let sids = self.rooms.sockets(opts);
        let sockets = self.sockets.read().unwrap_or_else(|p| p.into_inner());
        sids.iter()
            .filter_map(|sid| sockets.get(sid).cloned())
            .collect()
    }

    /// Adds a socket to rooms, telling the adapter about new rooms.
    pub(crate) fn join(&self, sid: Sid, rooms: &[Room]) {
        let events = !self.room_listeners.is_empty();
        self.room_changes(self.rooms.add_all(sid, rooms, events));
    }

    /// Removes a socket from rooms.
    pub(crate) fn leave(&self, sid: Sid, rooms: &[Room]) {
        let events = !self.room_listeners.is_empty();
        self.room_changes(self.rooms.del(sid, rooms, events));
    }

    /// Removes a socket from every room.
    pub(crate) fn leave_all(&self, sid: Sid) {
        let events = !self.room_listeners.is_empty();
        self.room_changes(self.rooms.del_all(sid, events));
    }

    /// Tells the adapter about created and deleted rooms, and the room listeners about every
    /// event (after the index lock is released).
    fn room_changes(&self, changes: RoomChanges) {
        for room in &changes.created {
            self.adapter.room_created(room);
        }
        for room in &changes.deleted {
            self.adapter.room_deleted(room);
        }
        if let Some(events) = changes.events {
            let listeners = self.room_listeners.snapshot();
            for event in &events {
                for (_, f) in listeners.iter() {
                    f(event);
                }
            }
        }
    }

    /// The packet format of the server.
    pub(crate) fn parser(&self) -> ferrio_proto::socket::Parser {
        self.shared.config.parser
    }

    /// The parser, to encode one event or ack packet: counted in
    /// [`crate::ServerStats::packets_encoded`].
    pub(crate) fn encoder(&self) -> ferrio_proto::socket::Parser {
        self.shared.counters.count_encoded();
        self.shared.config.parser
    }

    /// Node's ack ids: one counter per namespace, from 0.
    pub(crate) fn next_ack_id(&self) -> u64 {
        self.ack_ids.fetch_add(1, Ordering::Relaxed) % (MAX_ACK_ID + 1)
    }

    pub(crate) fn insert(&self, socket: SocketRef) {
        self.sockets
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(socket.id(), socket);
    }

    pub(crate) fn remove(&self, sid: Sid) {
        self.sockets
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&sid);
        self.cleanup_if_empty();
    }

    /// Counts a CONNECT under way (call with the registry lock held, so that a cleanup cannot
    /// slip in between the lookup and the count).
    pub(crate) fn begin_connect(self: &Arc<Self>) -> ConnectGuard {
        self.pending.fetch_add(1, Ordering::AcqRel);
        ConnectGuard(self.clone())
    }

    /// A child of a dynamic namespace with no socket and no CONNECT under way leaves the
    /// registry (Node's `cleanupEmptyChildNamespaces`), so that a client cannot grow the
    /// server's memory by naming ever new children. Kept when connection state recovery is on:
    /// its stored sessions live in the namespace.
    fn cleanup_if_empty(&self) {
        if self.recovery.is_some() || !self.shared.config.cleanup_empty_child_namespaces {
            return;
        }
        let Some(registry) = self.child_of.as_ref().and_then(Weak::upgrade) else {
            return;
        };
        if self.len() > 0 || self.pending.load(Ordering::Acquire) > 0 {
            return;
        }
        let mut map = registry.write().unwrap_or_else(|p| p.into_inner());
        let is_me = map
            .get(&self.name)
            .is_some_and(|ns| std::ptr::eq(Arc::as_ptr(ns), self));
        if is_me && self.len() == 0 && self.pending.load(Ordering::Acquire) == 0 {
            map.remove(&self.name);
            drop(map);
            tracing::debug!(ns = %self.name, "empty child namespace removed");
            if tokio::runtime::Handle::try_current().is_ok() {
                tokio::spawn(self.adapter.close());
            }
        }
    }

    pub(crate) fn socket(&self, sid: Sid) -> Option<SocketRef> {
        self.sockets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&sid)
            .cloned()
    }

    pub(crate) fn all_sockets(&self) -> Vec<SocketRef> {
        self.sockets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.sockets.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// A predicate on a namespace name and the auth payload.
pub(crate) type NsPredicate = Arc<dyn Fn(&str, &serde_json::Value) -> bool + Send + Sync>;

/// How a dynamic namespace recognises names.
pub(crate) enum Matcher {
    /// `/room-{id}`: literals and `{param}` parts; a param matches one or more characters
    /// other than `/`.
    Pattern(Vec<Part>),
    /// A predicate on the name and the auth payload.
    Predicate(NsPredicate),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    Literal(String),
    Param,
}

impl Matcher {
    pub(crate) fn pattern(p: &str) -> Self {
        let mut parts = Vec::new();
        let mut rest = p;
        while let Some(start) = rest.find('{') {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_owned()));
            }
            match rest[start..].find('}') {
                Some(end) => {
                    parts.push(Part::Param);
                    rest = &rest[start + end + 1..];
                }
                None => {
                    parts.push(Part::Literal(rest[start..].to_owned()));
                    rest = "";
                }
            }
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Matcher::Pattern(parts)
    }

    pub(crate) fn matches(&self, name: &str, auth: &serde_json::Value) -> bool {
        match self {
            Matcher::Pattern(parts) => match_parts(parts, name),
            Matcher::Predicate(f) => f(name, auth),
        }
    }
}

fn match_parts(parts: &[Part], s: &str) -> bool {
    match parts.split_first() {
        None => s.is_empty(),
        Some((Part::Literal(l), rest)) => s
            .strip_prefix(l.as_str())
            .is_some_and(|s| match_parts(rest, s)),
        Some((Part::Param, rest)) => {
            // One or more characters up to the next `/`; try every split (names are short).
            let limit = s.find('/').unwrap_or(s.len());
            (1..=limit).any(|n| s.is_char_boundary(n) && match_parts(rest, &s[n..]))
        }
    }
}

/// A dynamic namespace: a matcher and the handlers its children share.
pub(crate) struct DynNamespace {
    pub(crate) matcher: Matcher,
    pub(crate) handlers: Arc<Handlers>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let null = serde_json::Value::Null;
        let m = Matcher::pattern("/room-{id}");
        assert!(m.matches("/room-1", &null));
        assert!(m.matches("/room-abc", &null));
        assert!(!m.matches("/room-", &null));
        assert!(!m.matches("/room-1/x", &null));
        assert!(!m.matches("/other", &null));
        let m = Matcher::pattern("/{tenant}/chat");
        assert!(m.matches("/acme/chat", &null));
        assert!(!m.matches("/acme/x/chat", &null));
        assert!(!m.matches("//chat", &null));
        let m = Matcher::pattern("/static");
        assert!(m.matches("/static", &null));
        assert!(!m.matches("/statics", &null));
    }
}
