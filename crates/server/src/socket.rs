//! A socket: one client connected to one namespace.

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};

use ferrio_engine::{CloseReason, EngineSocket, Frame, SendOptions};
use ferrio_proto::engine::Sid;
use ferrio_proto::socket::{Args, Encoded, PacketData, Parser};
use ferrio_proto::value::{self, Value, ValueError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use crate::ack::{AckError, AckFuture, AckTable, AckTx};
use crate::adapter::{BroadcastOptions, HandshakeInfo, Room, SocketInfo};
use crate::close::DrainGuard;
use crate::conn::ConnShared;
use crate::handler::{
    BoxFuture, DisconnectHandler, DisconnectParts, Erased, ErasedDisconnect,
    ErasedDisconnectHandler, ErasedMessageHandler, MessageHandler, MessageParts,
};
use crate::listeners::{ListenerId, Listeners};
use crate::ns::Namespace;
use crate::operators::{BroadcastOperator, IntoRooms};
use crate::{SendError, worker};

/// Why a socket disconnected: exactly Node's reason strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// `transport close`: the client closed the connection.
    TransportClose,
    /// `transport error`: the connection failed.
    TransportError,
    /// `ping timeout`: the client stopped answering pings.
    PingTimeout,
    /// `parse error`: the client sent something that is not a packet.
    ParseError,
    /// `forced close`: the server closed the connection.
    ForcedClose,
    /// `server shutting down`.
    ServerShuttingDown,
    /// `forced server close`: the server closed the connection for a protocol violation (an
    /// event for a namespace not joined, a second CONNECT).
    ForcedServerClose,
    /// `client namespace disconnect`: the client left the namespace.
    ClientNamespaceDisconnect,
    /// `server namespace disconnect`: the server called `disconnect()`.
    ServerNamespaceDisconnect,
    /// `slow consumer`: the client read too slowly and its queue reached
    /// `max_buffered_packets` or `max_buffered_bytes` (Ferrio's own reason: Node's queue has
    /// no bound). The client sees its connection close.
    SlowConsumer,
}

impl DisconnectReason {
    /// Node's reason string.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::TransportClose => "transport close",
            DisconnectReason::TransportError => "transport error",
            DisconnectReason::PingTimeout => "ping timeout",
            DisconnectReason::ParseError => "parse error",
            DisconnectReason::ForcedClose => "forced close",
            DisconnectReason::ServerShuttingDown => "server shutting down",
            DisconnectReason::ForcedServerClose => "forced server close",
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
            DisconnectReason::SlowConsumer => "slow consumer",
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&CloseReason> for DisconnectReason {
    fn from(r: &CloseReason) -> Self {
        match r {
            CloseReason::TransportClose => DisconnectReason::TransportClose,
            CloseReason::TransportError(_) => DisconnectReason::TransportError,
            CloseReason::PingTimeout => DisconnectReason::PingTimeout,
            CloseReason::ParseError => DisconnectReason::ParseError,
            CloseReason::ServerShuttingDown => DisconnectReason::ServerShuttingDown,
            CloseReason::SlowConsumer => DisconnectReason::SlowConsumer,
            _ => DisconnectReason::ForcedClose,
        }
    }
}

/// The handshake of a socket: the HTTP request that opened the connection (method, URI,
/// version, headers, extensions: Node's `socket.request`) and the auth payload of this
/// namespace.
#[derive(Debug, Clone)]
pub struct Handshake {
    engine: Arc<ferrio_engine::Handshake>,
    auth: serde_json::Value,
    issued: SystemTime,
}

impl Handshake {
    /// Request headers.
    pub fn headers(&self) -> &http::HeaderMap {
        &self.engine.headers
    }

    /// Query parameters of the handshake request, percent-decoded.
    pub fn query(&self) -> &HashMap<String, String> {
        &self.engine.query
    }

    /// The CONNECT payload of this namespace (`{}` when absent).
    pub fn auth(&self) -> &serde_json::Value {
        &self.auth
    }

    /// The peer address, when known.
    pub fn address(&self) -> Option<std::net::SocketAddr> {
        self.engine.remote_addr
    }

    /// The request URI.
    pub fn url(&self) -> &http::Uri {
        &self.engine.uri
    }

    /// The request method (`GET`).
    pub fn method(&self) -> &http::Method {
        &self.engine.method
    }

    /// The HTTP version of the request.
    pub fn version(&self) -> http::Version {
        self.engine.version
    }

    /// The extensions of the request, as the tower layers in front of the server left them
    /// (Node's `socket.request`, with what its middlewares attached): read them here or with
    /// the [`crate::HttpExtension`] extractor. The peer address is [`Handshake::address`].
    pub fn extensions(&self) -> &http::Extensions {
        &self.engine.extensions
    }

    /// When the socket connected.
    pub fn issued(&self) -> SystemTime {
        self.issued
    }

    /// Whether the request came with an `Origin` header (a browser on another page).
    pub fn xdomain(&self) -> bool {
        self.engine.headers.contains_key(http::header::ORIGIN)
    }

    /// Node's handshake object: `{headers, time, address, xdomain, secure, issued, url,
    /// query, auth}` (`time` as JavaScript's `Date.toString()`, `issued` in milliseconds since
    /// the epoch).
    pub fn info(&self) -> HandshakeInfo {
        let mut headers = serde_json::Map::new();
        for name in self.engine.headers.keys() {
            let values: Vec<&str> = self
                .engine
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            if !values.is_empty() {
                headers.insert(name.to_string(), values.join(", ").into());
            }
        }
        let issued = self
            .issued
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        HandshakeInfo {
            headers,
            time: value::date::date_string(issued as i64),
            address: self
                .address()
                .map(|a| a.ip().to_string())
                .unwrap_or_default(),
            xdomain: self.xdomain(),
            secure: false,
            issued,
            url: self.engine.uri.to_string(),
            query: self
                .engine
                .query
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect(),
            auth: self.auth.clone(),
        }
    }

    /// [`Handshake::info`] as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.info()).unwrap_or_default()
    }
}

/// Typed values attached to a socket (Node's `socket.data`).
#[derive(Default)]
pub struct Extensions {
    map: RwLock<HashMap<TypeId, Box<dyn Any + Send + Sync>>>,
}

impl Extensions {
    /// Stores a value, replacing the previous one of the same type.
    pub fn insert<T: Send + Sync + 'static>(&self, value: T) {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(TypeId::of::<T>(), Box::new(value));
    }

    /// A clone of the value of type `T`.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&TypeId::of::<T>())
            .and_then(|b| b.downcast_ref::<T>())
            .cloned()
    }

    /// Removes the value of type `T`.
    pub fn remove<T: Send + Sync + 'static>(&self) -> Option<T> {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&TypeId::of::<T>())
            .and_then(|b| b.downcast::<T>().ok())
            .map(|b| *b)
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extensions").finish_non_exhaustive()
    }
}

/// Called with every event the socket emits: its name and arguments (Node's `onAnyOutgoing`).
type AnyOutgoing = Arc<dyn Fn(&str, &Args) + Send + Sync>;

/// What an async packet middleware returns: the event's parts, maybe changed, or a refusal.
pub type PacketMiddlewareFuture =
    Pin<Box<dyn Future<Output = Result<MessageParts, crate::Rejection>> + Send>>;

/// A synchronous packet middleware.
type SyncMiddleware =
    Arc<dyn Fn(&SocketRef, &mut MessageParts) -> Result<(), crate::Rejection> + Send + Sync>;

/// An async packet middleware.
type AsyncMiddleware = Arc<dyn Fn(SocketRef, MessageParts) -> PacketMiddlewareFuture + Send + Sync>;

/// A per-socket packet middleware (Node's `socket.use`).
#[derive(Clone)]
enum PacketMiddleware {
    Sync(SyncMiddleware),
    Async(AsyncMiddleware),
}

/// The handler of one event.
struct EventHandler {
    handler: Arc<dyn ErasedMessageHandler>,
    /// Removed after its first call (`socket.once`).
    once: bool,
}

/// Called with the error of a packet middleware (Node's `error` event on the socket).
type ErrorHandler = Arc<dyn Fn(&SocketRef, &crate::Rejection) + Send + Sync>;

/// One client in one namespace. Handlers get it as [`SocketRef`].
pub struct Socket {
    id: Sid,
    pub(crate) ns: Arc<Namespace>,
    pub(crate) engine: EngineSocket,
    handshake: Handshake,
    handlers: RwLock<HashMap<String, EventHandler>>,
    any: Listeners<Arc<dyn ErasedMessageHandler>>,
    any_outgoing: Listeners<AnyOutgoing>,
    middlewares: RwLock<Vec<PacketMiddleware>>,
    /// Taken in arrival order by events that go through an async packet middleware, from
    /// their first middleware until their handler has started: handlers start in arrival order
    /// even when a middleware waits.
    turn: tokio::sync::Mutex<()>,
    on_error: RwLock<Option<ErrorHandler>>,
    on_disconnect: Mutex<Option<Arc<dyn ErasedDisconnectHandler>>>,
    on_disconnecting: Mutex<Option<Arc<dyn ErasedDisconnectHandler>>>,
    acks: Mutex<AckTable>,
    extensions: Arc<Extensions>,
    data: Mutex<Value>,
    /// `CONNECTING`, `CONNECTED` or `CLOSED`.
    state: AtomicU8,
    /// Why a socket closed while it was still connecting: the connect task closes it with
    /// this reason once it is in its namespace. The transitions out of `CONNECTING` happen
    /// with this lock held.
    early_close: Mutex<Option<(DisconnectReason, Option<&'static str>)>>,
    pid: Option<Sid>,
    recovered: bool,
    work: worker::Work,
    pub(crate) conn: Weak<ConnShared>,
    /// Counts the socket as open for `io.close()` until its disconnect handlers have run.
    live: Mutex<Option<DrainGuard>>,
}

/// A cheap, cloneable reference to a [`Socket`].
#[derive(Clone)]
pub struct SocketRef(pub(crate) Arc<Socket>);

impl Deref for SocketRef {
    type Target = Socket;

    fn deref(&self) -> &Socket {
        &self.0
    }
}

impl fmt::Debug for SocketRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.id)
            .field("ns", &self.ns.name)
            .finish_non_exhaustive()
    }
}

impl PartialEq for SocketRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

const CONNECTING: u8 = 0;
const CONNECTED: u8 = 1;
const CLOSED: u8 = 2;

/// How a socket starts: fresh, or recovered from a lost connection.
pub(crate) struct Origin {
    pub(crate) id: Sid,
    pub(crate) pid: Option<Sid>,
    pub(crate) recovered: bool,
    pub(crate) extensions: Arc<Extensions>,
    pub(crate) data: Value,
}

impl SocketRef {
    pub(crate) fn new(
        origin: Origin,
        ns: Arc<Namespace>,
        engine: EngineSocket,
        engine_handshake: Arc<ferrio_engine::Handshake>,
        auth: serde_json::Value,
        conn: Weak<ConnShared>,
    ) -> Self {
        let Origin {
            id,
            pid,
            recovered,
            extensions,
            data,
        } = origin;
        let limits = &ns.shared.config;
        let work = worker::Work::new(limits.max_pending_events, limits.max_concurrent_handlers);
        let ns_live = ns.shared.live.guard();
        SocketRef(Arc::new(Socket {
            id,
            ns,
            engine,
            handshake: Handshake {
                engine: engine_handshake,
                auth,
                issued: SystemTime::now(),
            },
            handlers: RwLock::new(HashMap::new()),
            any: Listeners::default(),
            any_outgoing: Listeners::default(),
            middlewares: RwLock::new(Vec::new()),
            turn: tokio::sync::Mutex::new(()),
            on_error: RwLock::new(None),
            on_disconnect: Mutex::new(None),
            on_disconnecting: Mutex::new(None),
            acks: Mutex::new(AckTable::default()),
            extensions,
            data: Mutex::new(data),
            state: AtomicU8::new(CONNECTING),
            early_close: Mutex::new(None),
            pid,
            recovered,
            work,
            conn,
            live: Mutex::new(Some(ns_live)),
        }))
    }

    /// Registers the handler of an event (replacing a previous one: one handler per event).
    pub fn on<H, M>(&self, event: impl Into<String>, handler: H)
    where
        H: MessageHandler<M>,
        M: Send + Sync + 'static,
    {
        self.set_handler(event.into(), Arc::new(Erased(handler, PhantomData)), false);
    }

    /// Registers a handler for the next occurrence of an event only (Node's `socket.once`);
    /// it replaces the event's handler, and is removed once called.
    pub fn once<H, M>(&self, event: impl Into<String>, handler: H)
    where
        H: MessageHandler<M>,
        M: Send + Sync + 'static,
    {
        self.set_handler(event.into(), Arc::new(Erased(handler, PhantomData)), true);
    }

    fn set_handler(&self, event: String, handler: Arc<dyn ErasedMessageHandler>, once: bool) {
        write(&self.handlers).insert(event, EventHandler { handler, once });
    }

    /// Removes the handler of an event.
    pub fn off(&self, event: &str) {
        write(&self.handlers).remove(event);
    }

    /// Adds a catch-all listener, called for every incoming event after the catch-all
    /// listeners already added (Node's `onAny`). It sees the event name with the
    /// [`crate::Event`] extractor and its arguments with [`Args`] or [`crate::Data`]; it cannot
    /// answer the event's ack.
    ///
    /// As in Node, catch-all listeners run when the event arrives, before the packet
    /// middlewares and the event's handler (also for an event a middleware refuses, or one
    /// without a handler).
    pub fn on_any<H, M>(&self, handler: H) -> ListenerId
    where
        H: MessageHandler<M>,
        M: Send + Sync + 'static,
    {
        self.any.add(Arc::new(Erased(handler, PhantomData)), false)
    }

    /// As [`on_any`](SocketRef::on_any), but before the catch-all listeners already added
    /// (Node's `prependAny`).
    pub fn prepend_any<H, M>(&self, handler: H) -> ListenerId
    where
        H: MessageHandler<M>,
        M: Send + Sync + 'static,
    {
        self.any.add(Arc::new(Erased(handler, PhantomData)), true)
    }

    /// Removes one catch-all listener, or all of them with `None` (Node's `offAny`).
    pub fn off_any(&self, listener: Option<ListenerId>) {
        self.any.remove(listener);
    }

    /// Adds a packet middleware (Node's `socket.use`): it runs for every incoming event, in
    /// the order added, before the handlers, and may change the event's arguments. An error
    /// drops the event (no handler runs, no ack is sent) and goes to [`SocketRef::on_error`]
    /// (logged when there is none).
    pub fn use_middleware<F>(&self, f: F)
    where
        F: Fn(&SocketRef, &mut MessageParts) -> Result<(), crate::Rejection>
            + Send
            + Sync
            + 'static,
    {
        write(&self.middlewares).push(PacketMiddleware::Sync(Arc::new(f)));
    }

    /// Adds an async packet middleware (Node's `socket.use` with a `next` called later): it
    /// gets the event's parts and gives them back, maybe changed, or refuses the event, as
    /// [`use_middleware`](SocketRef::use_middleware). Sync and async middlewares run in the
    /// order added.
    ///
    /// Handlers still start in the order the events arrived: while one event is in an async
    /// middleware, the next events wait for it (unlike Node, where a slow middleware lets
    /// later events overtake).
    pub fn use_async_middleware<F, Fut>(&self, f: F)
    where
        F: FnOnce(SocketRef, MessageParts) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<MessageParts, crate::Rejection>> + Send + 'static,
    {
        let f = Arc::new(
            move |s: SocketRef, p: MessageParts| -> PacketMiddlewareFuture {
                Box::pin((f.clone())(s, p))
            },
        );
        write(&self.middlewares).push(PacketMiddleware::Async(f));
    }

    /// Registers the function that receives packet middleware errors (Node's `error` event).
    pub fn on_error(&self, f: impl Fn(&SocketRef, &crate::Rejection) + Send + Sync + 'static) {
        *write(&self.on_error) = Some(Arc::new(f));
    }

    /// Adds a function called for every event this socket emits (its own emits and the
    /// broadcasts that reach it), with the event name and the arguments, after the ones
    /// already added (Node's `onAnyOutgoing`). It is called before the packet is queued, on
    /// the emitting task: keep it short.
    pub fn on_any_outgoing(&self, f: impl Fn(&str, &Args) + Send + Sync + 'static) -> ListenerId {
        self.any_outgoing.add(Arc::new(f), false)
    }

    /// As [`on_any_outgoing`](SocketRef::on_any_outgoing), before the ones already added
    /// (Node's `prependAnyOutgoing`).
    pub fn prepend_any_outgoing(
        &self,
        f: impl Fn(&str, &Args) + Send + Sync + 'static,
    ) -> ListenerId {
        self.any_outgoing.add(Arc::new(f), true)
    }

    /// Removes one outgoing listener, or all of them with `None` (Node's `offAnyOutgoing`).
    pub fn off_any_outgoing(&self, listener: Option<ListenerId>) {
        self.any_outgoing.remove(listener);
    }

    /// Registers the handler called when the socket disconnects.
    pub fn on_disconnect<H, M>(&self, handler: H)
    where
        H: DisconnectHandler<M>,
        M: Send + Sync + 'static,
    {
        *lock(&self.on_disconnect) = Some(Arc::new(ErasedDisconnect(handler, PhantomData)));
    }

    /// Registers the handler called when the socket is about to disconnect (it is still in
    /// its rooms).
    pub fn on_disconnecting<H, M>(&self, handler: H)
    where
        H: DisconnectHandler<M>,
        M: Send + Sync + 'static,
    {
        *lock(&self.on_disconnecting) = Some(Arc::new(ErasedDisconnect(handler, PhantomData)));
    }

    /// Emits an event to this client: a tuple is several arguments, `()` none, anything else
    /// one; `bytes::Bytes` values anywhere become binary attachments.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), SendError> {
        self.emit_opts(event, data, false, true)
    }

    /// Emits a `message` event (Node's `socket.send`).
    pub fn send<T: Serialize + ?Sized>(&self, data: &T) -> Result<(), SendError> {
        self.emit("message", data)
    }

    /// An emitter whose events are dropped when the client cannot take them now (its queue is
    /// full). Chain the other flags in any order: `socket.volatile().timeout(d).emit_with_ack(..)`.
    pub fn volatile(&self) -> SocketEmitter<'_> {
        self.emitter().volatile()
    }

    /// An emitter whose `emit_with_ack` waits at most `timeout`.
    pub fn timeout(&self, timeout: Duration) -> SocketEmitter<'_> {
        self.emitter().timeout(timeout)
    }

    /// An emitter with per-message compression set: `compress(false)` sends the packet
    /// uncompressed (no permessage-deflate for its WebSocket messages; a polling response
    /// holding only such packets is not HTTP-compressed, as on Node).
    pub fn compress(&self, compress: bool) -> SocketEmitter<'_> {
        self.emitter().compress(compress)
    }

    fn emitter(&self) -> SocketEmitter<'_> {
        SocketEmitter {
            socket: self,
            volatile: false,
            timeout: None,
            compress: None,
        }
    }

    /// Emits an event and waits for the client's acknowledgement, at most the configured
    /// [`ack_timeout`](crate::SocketIoConfig::ack_timeout): without one (the default, as on
    /// Node) until the client answers or the socket disconnects.
    pub fn emit_with_ack<T, V>(&self, event: &str, data: &T) -> AckFuture<V>
    where
        T: Serialize + ?Sized,
        V: DeserializeOwned,
    {
        self.0
            .emit_with_ack_timeout(event, data, self.ns.shared.config.ack_timeout, false, true)
    }

    /// Broadcast to the rooms given, except this socket.
    pub fn to(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.broadcast().to(rooms)
    }

    /// Same as [`SocketRef::to`].
    pub fn within(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.to(rooms)
    }

    /// Broadcast to every socket of the namespace except those in `rooms` and this one.
    pub fn except(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.broadcast().except(rooms)
    }

    /// Operators on this socket's namespace, every socket included (Node's `socket.nsp`).
    pub fn namespace(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.ns.clone())
    }

    /// Broadcast to every socket of the namespace except this one.
    pub fn broadcast(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.ns.clone()).except_sid(self.id)
    }

    /// Broadcast only on this server.
    pub fn local(&self) -> BroadcastOperator {
        self.broadcast().local()
    }

    /// Joins rooms (on this server: the room index is local, as in Node).
    pub fn join(&self, rooms: impl IntoRooms) {
        self.ns.join(self.id, &rooms.into_rooms());
    }

    /// Leaves rooms.
    pub fn leave(&self, rooms: impl IntoRooms) {
        self.ns.leave(self.id, &rooms.into_rooms());
    }

    /// Leaves every room (including its own).
    pub fn leave_all(&self) {
        self.ns.leave_all(self.id);
    }

    /// Disconnects from this namespace (`server namespace disconnect`): the client gets a
    /// DISCONNECT packet and does not reconnect it. With `close`, every namespace of the
    /// client's connection is disconnected that way, then the connection is closed (Node's
    /// `socket.disconnect(true)`): the client does not reconnect at all.
    pub fn disconnect(&self, close: bool) {
        if !self.connected() {
            return;
        }
        let conn = self.conn.upgrade();
        match (&conn, close) {
            (Some(conn), true) => conn.disconnect_all(),
            _ => {
                if let Some(conn) = &conn {
                    conn.remove(&self.ns.name);
                }
                self.0.server_disconnect();
            }
        }
        if close {
            self.engine.close();
        }
    }

    /// Closes the client's whole Engine.IO connection without a DISCONNECT packet (Node's
    /// `socket.conn.close()`): every socket of the connection disconnects with `forced close`
    /// (recoverable), and the client sees `transport close` and reconnects.
    pub fn close_connection(&self) {
        self.engine.close();
    }
}

impl Socket {
    /// The socket id (not the Engine.IO session id, which stays private).
    pub fn id(&self) -> Sid {
        self.id
    }

    /// The namespace name.
    pub fn ns_name(&self) -> &str {
        &self.ns.name
    }

    /// The handshake.
    pub fn handshake(&self) -> &Handshake {
        &self.handshake
    }

    /// Whether the socket is connected.
    pub fn connected(&self) -> bool {
        self.state.load(Ordering::Acquire) == CONNECTED
    }

    /// Acknowledgements this socket waits for (for [`crate::SocketIo::stats`]).
    pub(crate) fn pending_acks(&self) -> usize {
        self.acks.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The rooms of this socket (its own id included).
    pub fn rooms(&self) -> HashSet<Room> {
        self.ns.rooms.socket_rooms(self.id)
    }

    /// `socket.data` read as `T` (`None` when unset or of another shape). Unlike
    /// [`Socket::extensions`], this slot is serialisable: other servers see it in
    /// `fetch_sockets`, and connection state recovery restores it.
    pub fn data<T: DeserializeOwned>(&self) -> Option<T> {
        let data = lock(&self.data);
        if data.is_null() {
            return None;
        }
        value::from_value(&data).ok()
    }

    /// Sets `socket.data`.
    pub fn set_data<T: Serialize + ?Sized>(&self, data: &T) -> Result<(), ValueError> {
        *lock(&self.data) = value::to_value(data)?;
        Ok(())
    }

    /// `socket.data` as a value.
    pub fn data_value(&self) -> Value {
        lock(&self.data).clone()
    }

    /// The description other servers get from `fetch_sockets`.
    pub fn info(&self) -> SocketInfo {
        let mut rooms: Vec<Room> = self.rooms().into_iter().collect();
        rooms.sort();
        SocketInfo {
            id: self.id,
            handshake: self.handshake.info(),
            rooms,
            data: self.data_value(),
        }
    }

    /// The socket's typed values.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// Whether this socket was restored by connection state recovery (same id, rooms and
    /// extensions as before the connection was lost).
    pub fn recovered(&self) -> bool {
        self.recovered
    }

    /// The private session id sent to the client when connection state recovery is on.
    pub(crate) fn pid(&self) -> Option<Sid> {
        self.pid
    }

    /// The Socket.IO protocol of the client: 5, or 4 for a `socket.io-client` 2.x accepted
    /// with [`crate::SocketIoBuilder::allow_eio3`] (Engine.IO v3).
    pub fn protocol(&self) -> u8 {
        match self.engine.protocol() {
            ferrio_engine::Protocol::V3 { .. } => 4,
            _ => 5,
        }
    }

    /// The Engine.IO transport in use (`polling` or `websocket`).
    pub fn transport(&self) -> &'static str {
        self.engine.transport().as_str()
    }

    /// A clone of the state of type `T` given to the builder.
    pub fn state<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.ns.shared.state.get::<T>()
    }

    /// Sends an encoded packet with its attachments as one group.
    pub(crate) fn send_encoded(
        &self,
        e: &Encoded,
        volatile: bool,
        compress: bool,
    ) -> Result<(), SendError> {
        send_frames(&self.engine, e, volatile, compress)
    }

    pub(crate) fn emit_opts<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
        volatile: bool,
        compress: bool,
    ) -> Result<(), SendError> {
        crate::operators::check_event(event)?;
        if !self.connected() {
            return Err(SendError::Closed);
        }
        let mut encoded = self
            .ns
            .encoder()
            .encode_event(&self.ns.name, None, event, data)?;
        if !volatile && let Some(store) = &self.ns.recovery {
            let opts = BroadcastOptions {
                rooms: vec![Room::Owned(self.id.to_string())],
                ..Default::default()
            };
            encoded = store.record(encoded, &opts);
        }
        self.notify_outgoing(event, &encoded);
        self.send_encoded(&encoded, volatile, compress)
    }

    /// Whether an outgoing listener is registered.
    pub(crate) fn has_outgoing_listeners(&self) -> bool {
        !self.any_outgoing.is_empty()
    }

    /// Tells the outgoing listeners about an event this socket sends.
    pub(crate) fn notify_outgoing(&self, event: &str, encoded: &Encoded) {
        if self.has_outgoing_listeners()
            && let Some(args) = outgoing_args(encoded, self.ns.parser())
        {
            self.notify_outgoing_args(event, &args);
        }
    }

    /// As [`Socket::notify_outgoing`], with the arguments already read back (a broadcast reads
    /// them once for all its recipients).
    pub(crate) fn notify_outgoing_args(&self, event: &str, args: &Args) {
        for (_, f) in self.any_outgoing.snapshot().iter() {
            f(event, args);
        }
    }

    pub(crate) fn emit_with_ack_timeout<T, V>(
        self: &Arc<Self>,
        event: &str,
        data: &T,
        timeout: Option<Duration>,
        volatile: bool,
        compress: bool,
    ) -> AckFuture<V>
    where
        T: Serialize + ?Sized,
        V: DeserializeOwned,
    {
        if let Err(e) = crate::operators::check_event(event) {
            return AckFuture::failed(AckError::Send(e));
        }
        if !self.connected() {
            return AckFuture::failed(AckError::Send(SendError::Closed));
        }
        let id = self.ns.next_ack_id();
        let encoded = match self
            .ns
            .encoder()
            .encode_event(&self.ns.name, Some(id), event, data)
        {
            Ok(e) => e,
            Err(e) => return AckFuture::failed(AckError::Send(e.into())),
        };
        let (tx, rx) = oneshot::channel();
        if !self.register_ack(id, AckTx::One(tx), timeout.map(|t| Instant::now() + t)) {
            return AckFuture::failed(AckError::Send(SendError::TooManyPendingAcks));
        }
        self.notify_outgoing(event, &encoded);
        if let Err(e) = self.send_encoded(&encoded, volatile, compress) {
            lock(&self.acks).remove(id);
            return AckFuture::failed(AckError::Send(e));
        }
        AckFuture::waiting(rx, timeout, SocketRef(self.clone()), id)
    }

    /// Registers an ack (a broadcast's id is shared by every recipient), with its deadline
    /// (`None`: until the answer or the disconnect). False when the socket already waits for
    /// `max_pending_acks` answers.
    pub(crate) fn register_ack(&self, id: u64, tx: AckTx, deadline: Option<Instant>) -> bool {
        let max = self.ns.shared.config.max_pending_acks;
        lock(&self.acks).insert(id, tx, deadline, max)
    }

    pub(crate) fn forget_ack(&self, id: u64) {
        lock(&self.acks).remove(id);
    }

    /// An ACK packet from the client.
    pub(crate) fn resolve_ack(&self, id: u64, args: Args) {
        match lock(&self.acks).take(id) {
            Some(AckTx::One(tx)) => {
                let _ = tx.send(args);
            }
            Some(AckTx::Callback(f)) => f(self.id, args),
            None => tracing::debug!(sid = %self.id, id, "ack for an unknown id ignored"),
        }
    }

    /// An EVENT from the client, run on the socket's worker in arrival order: first the
    /// catch-all listeners (as Node, before the middlewares), then the packet middlewares,
    /// then the event's handler. The handlers are looked up when the worker starts the event,
    /// not when it arrives, so that the connection handler (queued before) has registered
    /// them: a client may send an event the moment it reads the CONNECT reply.
    pub(crate) fn dispatch(self: &Arc<Self>, parts: MessageParts) {
        let me = self.clone();
        self.run(Box::pin(async move {
            let any: Vec<BoxFuture> = me
                .any
                .snapshot()
                .iter()
                .filter_map(|(_, any)| {
                    let copy = MessageParts {
                        event: parts.event.clone(),
                        args: parts.args.clone(),
                        ack_id: None,
                    };
                    any.call(SocketRef(me.clone()), copy)
                })
                .collect();
            let main = me.clone().middlewares_then_handler(parts);
            // Both start now, the catch-all listeners first; then they run concurrently.
            if any.is_empty() {
                main.await;
            } else {
                futures_util::future::join(futures_util::future::join_all(any), main).await;
            }
        }));
    }

    async fn middlewares_then_handler(self: Arc<Self>, mut parts: MessageParts) {
        let me = SocketRef(self.clone());
        let middlewares = read(&self.middlewares).clone();
        let turn = if middlewares
            .iter()
            .any(|m| matches!(m, PacketMiddleware::Async(_)))
        {
            Some(self.turn.lock().await)
        } else {
            None
        };
        for mw in middlewares {
            let result = match mw {
                PacketMiddleware::Sync(f) => f(&me, &mut parts),
                PacketMiddleware::Async(f) => {
                    let event = parts.event.clone();
                    match f(me.clone(), parts).await {
                        Ok(p) => {
                            parts = p;
                            Ok(())
                        }
                        Err(e) => {
                            parts = MessageParts {
                                event,
                                args: Args::empty(),
                                ack_id: None,
                            };
                            Err(e)
                        }
                    }
                }
            };
            if let Err(e) = result {
                let on_error = read(&self.on_error).clone();
                match on_error {
                    Some(f) => f(&me, &e),
                    None => tracing::warn!(
                        sid = %self.id,
                        event = %parts.event,
                        "event refused by a packet middleware: {e}"
                    ),
                }
                return;
            }
        }
        let Some(handler) = self.take_handler(&parts.event) else {
            tracing::trace!(sid = %self.id, event = %parts.event, "no handler");
            return;
        };
        let Some(mut fut) = handler.call(me, parts) else {
            return;
        };
        // Started (polled once) before the next event may go through the middlewares.
        let first = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
        drop(turn);
        if first.is_pending() {
            fut.await;
        }
    }

    /// The handler of an event; a `once` handler is removed.
    fn take_handler(&self, event: &str) -> Option<Arc<dyn ErasedMessageHandler>> {
        let (handler, once) = {
            let map = read(&self.handlers);
            let h = map.get(event)?;
            (h.handler.clone(), h.once)
        };
        if once {
            let mut map = write(&self.handlers);
            // Still the same handler: remove it; otherwise it was replaced or taken meanwhile.
            if !map
                .get(event)
                .is_some_and(|h| Arc::ptr_eq(&h.handler, &handler))
            {
                return map.get(event).map(|h| h.handler.clone());
            }
            map.remove(event);
        }
        Some(handler)
    }

    /// Whether the socket's handler queue has room (see `EngineHandler::poll_ready`).
    pub(crate) fn poll_ready(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        self.work.poll_ready(cx)
    }

    pub(crate) fn run(self: &Arc<Self>, fut: crate::handler::BoxFuture) {
        if !worker::run(self, fut) {
            tracing::warn!(
                sid = %self.id,
                "too many pending events for this socket (slow handlers): closing the connection"
            );
            self.engine
                .close_with(CloseReason::TransportError("too many pending events"));
        }
    }

    /// A socket that will never connect (refused, or its connection closed meanwhile) stops
    /// counting for `io.close()`, wherever references to it are kept.
    pub(crate) fn release(&self) {
        lock(&self.live).take();
    }

    /// Marks the socket connected (it is in its namespace and rooms). False when it was closed
    /// meanwhile (its connection closed, the client left): it is then closed now, with the
    /// reason it got, and must not be announced to the client.
    pub(crate) fn set_connected(self: &Arc<Self>) -> bool {
        let early = {
            let mut early = lock(&self.early_close);
            match self.state.compare_exchange(
                CONNECTING,
                CONNECTED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(_) => early.take(),
            }
        };
        let (reason, description) = early.unwrap_or((DisconnectReason::TransportClose, None));
        self.closed(reason, description);
        false
    }

    /// Sends DISCONNECT and closes the socket (`server namespace disconnect`).
    pub(crate) fn server_disconnect(self: &Arc<Self>) {
        let _ = self.send_encoded(
            &self.ns.parser().encode_disconnect(&self.ns.name),
            false,
            true,
        );
        self.close(DisconnectReason::ServerNamespaceDisconnect, None);
    }

    /// Closes the socket locally: disconnecting handler, rooms left, disconnect handler. Runs
    /// once. `description` is Node's second `disconnect` argument (what failed, for a
    /// transport error).
    pub(crate) fn close(
        self: &Arc<Self>,
        reason: DisconnectReason,
        description: Option<&'static str>,
    ) {
        {
            let mut early = lock(&self.early_close);
            if self
                .state
                .compare_exchange(CONNECTING, CLOSED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                // Still connecting: `set_connected` closes it once it is in its rooms.
                *early = Some((reason, description));
                return;
            }
        }
        if self
            .state
            .compare_exchange(CONNECTED, CLOSED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.closed(reason, description);
        }
    }

    /// The work of a close, once.
    fn closed(self: &Arc<Self>, reason: DisconnectReason, description: Option<&'static str>) {
        tracing::debug!(sid = %self.id, ns = %self.ns.name, %reason, "socket disconnected");
        self.ns.remove(self.id);
        lock(&self.acks).clear();
        if let (Some(store), Some(pid)) = (&self.ns.recovery, self.pid)
            && crate::recovery::is_recoverable(reason)
        {
            store.save(
                pid,
                self.id,
                self.rooms(),
                self.extensions.clone(),
                self.data_value(),
            );
        }
        let me = SocketRef(self.clone());
        let ns = self.ns.clone();
        let id = self.id;
        let parts = DisconnectParts {
            reason,
            description,
        };
        let live = lock(&self.live).take();
        let fin = async move {
            // Taken when the worker starts this, after what was queued before: a connection
            // handler still in the queue has registered them by then.
            let disconnecting = lock(&me.on_disconnecting).take();
            let disconnect = lock(&me.on_disconnect).take();
            if let Some(h) = disconnecting
                && let Some(f) = h.call(me.clone(), &parts)
            {
                f.await;
            }
            ns.leave_all(id);
            if let Some(h) = disconnect
                && let Some(f) = h.call(me.clone(), &parts)
            {
                f.await;
            }
            // The handlers are done with: drop them (they may hold this socket).
            write(&me.handlers).clear();
            me.any.remove(None);
            me.any_outgoing.remove(None);
            write(&me.middlewares).clear();
            *write(&me.on_error) = None;
            drop(live);
        };
        worker::finish(self, Box::pin(fin));
    }
}

/// Sends an encoded packet's messages as one group (nothing can come between a packet and
/// its attachments); `volatile`: dropped when the client cannot take them now; `compress:
/// false`: never compressed (Node's `compress(false)`).
pub(crate) fn send_frames(
    engine: &EngineSocket,
    e: &Encoded,
    volatile: bool,
    compress: bool,
) -> Result<(), SendError> {
    let opts = SendOptions::default().volatile(volatile).compress(compress);
    let result = if e.frame_count() == 1 {
        let Some(frame) = e.frames().next() else {
            return Ok(());
        };
        engine.send_with(frame, opts)
    } else {
        let frames: Vec<Frame> = e.frames().collect();
        engine.send_all_with(frames, opts)
    };
    result.map_err(SendError::from)
}

/// The arguments of an encoded event, read back for the outgoing listeners.
pub(crate) fn outgoing_args(encoded: &Encoded, parser: Parser) -> Option<Args> {
    match encoded.decode(parser)?.data {
        PacketData::Event { args, .. } => Some(args),
        _ => None,
    }
}

/// Options for the next emit of a socket, chained in any order:
/// `socket.volatile().timeout(d).emit_with_ack(..)`, `socket.timeout(d).volatile()...`.
#[derive(Debug, Clone)]
pub struct SocketEmitter<'a> {
    socket: &'a SocketRef,
    volatile: bool,
    timeout: Option<Duration>,
    compress: Option<bool>,
}

impl SocketEmitter<'_> {
    /// The event is dropped when the client cannot take it now (its queue is full), instead of
    /// disconnecting a slow client.
    pub fn volatile(mut self) -> Self {
        self.volatile = true;
        self
    }

    /// `emit_with_ack` waits at most `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Per-message compression: `false` sends this packet uncompressed (see
    /// [`SocketRef::compress`]).
    pub fn compress(mut self, compress: bool) -> Self {
        self.compress = Some(compress);
        self
    }

    /// Emits the event.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), SendError> {
        self.socket
            .emit_opts(event, data, self.volatile, self.compress.unwrap_or(true))
    }

    /// Emits a `message` event (Node's `socket.send`).
    pub fn send<T: Serialize + ?Sized>(&self, data: &T) -> Result<(), SendError> {
        self.emit("message", data)
    }

    /// Emits and waits for the acknowledgement, at most this emitter's timeout, else the
    /// server's `ack_timeout` (none by default: until the answer or the disconnect).
    pub fn emit_with_ack<T, V>(&self, event: &str, data: &T) -> AckFuture<V>
    where
        T: Serialize + ?Sized,
        V: DeserializeOwned,
    {
        let timeout = self.timeout.or(self.socket.ns.shared.config.ack_timeout);
        self.socket.0.emit_with_ack_timeout(
            event,
            data,
            timeout,
            self.volatile,
            self.compress.unwrap_or(true),
        )
    }
}

impl worker::HasWork for Socket {
    fn work(&self) -> &worker::Work {
        &self.work
    }
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.id)
            .field("ns", &self.ns.name)
            .finish_non_exhaustive()
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

fn lock<T>(l: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    l.lock().unwrap_or_else(|p| p.into_inner())
}
