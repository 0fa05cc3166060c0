//! The server object, its builder and its namespace registry.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ferrio_engine::{
    BoxError, ConnectionError, ConnectionErrorHook, CookieConfig, CorsConfig, Engine, EngineConfig,
    HeadersHook, HttpCompression, NotFound, PerMessageDeflate, RequestBody, Transports,
};
use ferrio_proto::socket::{DecodeLimits, Parser};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::SendError;
use crate::ack::AckStream;
use crate::adapter::{AdapterError, AdapterFactory, Gathered, LocalAdapter, Room};
use crate::client_bundle::ClientBundle;
use crate::close::{Closing, Drain, Lifecycle};
use crate::conn::IoHandler;
use crate::handler::{ConnectHandler, ErasedConnect};
use crate::layer::{SocketIoLayer, SocketIoService};
use crate::listeners::{ListenerId, Listeners};
use crate::ns::{
    ConnectError, ConnectGuard, DynNamespace, Handlers, Matcher, MiddlewareFuture, Namespace,
    Registry,
};
use crate::operators::{BroadcastOperator, IntoRooms, RemoteSocket};
use crate::recovery::RecoveryConfig;
use crate::server_event::ServerEvent;
use crate::socket::SocketRef;
use crate::stats::{Counters, ServerStats};

/// Server settings. Defaults are Node's (socket.io 4.8 / engine.io 6.6).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SocketIoConfig {
    /// The Engine.IO settings (path `/socket.io/` by default).
    pub engine: EngineConfig,
    /// How long a client may take to join a namespace after the handshake. Default 45 s.
    pub connect_timeout: Duration,
    /// Timeout of `emit_with_ack` when none is given. Default none, as on Node: a socket's
    /// `emit_with_ack` waits until the client answers or disconnects, and a broadcast
    /// `emit_with_ack` without [`timeout`](crate::BroadcastOperator::timeout) times out at
    /// once (each target gets [`crate::AckError::Timeout`]; Node's callback gets "operation
    /// has timed out" right away too, unless no client is targeted).
    pub ack_timeout: Option<Duration>,
    /// Most acknowledgements one socket may wait for at once; past it `emit_with_ack` fails
    /// with [`crate::SendError::TooManyPendingAcks`] and a broadcast with acks skips that
    /// socket (Node: unbounded). Expired entries do not count. Default 1024.
    pub max_pending_acks: usize,
    /// Most handlers queued for one socket; past it the connection is closed (a client
    /// sending faster than its handlers finish). Default 1024.
    pub max_pending_events: usize,
    /// Most handlers of one socket running at once; past it new ones wait in the queue.
    /// Default 128.
    pub max_concurrent_handlers: usize,
    /// Decoder limits (attachments per packet, JSON depth).
    pub decode_limits: DecodeLimits,
    /// Whether a child of a dynamic namespace is removed once its last socket leaves (Node's
    /// `cleanupEmptyChildNamespaces`; there off by default, here on, so that clients naming
    /// ever new children cannot grow memory). Children are kept when connection state recovery
    /// is on. Default true.
    pub cleanup_empty_child_namespaces: bool,
    /// Most namespaces one connection may join at once; past it a CONNECT is refused with
    /// `CONNECT_ERROR "Too many namespaces"`. Default 256.
    pub max_namespaces_per_connection: usize,
    /// Connection state recovery; off by default (as in Node).
    pub connection_state_recovery: Option<RecoveryConfig>,
    /// The JavaScript client served under the path (Node's `serveClient`). Default none:
    /// unlike Node, the server does not ship the bundle; see [`ClientBundle::from_dir`].
    pub serve_client: Option<ClientBundle>,
    /// The packet format (Node's `parser`): the default `socket.io-parser` text format, or
    /// `socket.io-msgpack-parser`'s. Every client must use the same one. Default
    /// [`Parser::Default`].
    pub parser: Parser,
}

impl Default for SocketIoConfig {
    fn default() -> Self {
        let mut engine = EngineConfig::default();
        engine.path = "/socket.io/".to_owned();
        SocketIoConfig {
            engine,
            connect_timeout: Duration::from_secs(45),
            ack_timeout: None,
            max_pending_acks: 1024,
            max_pending_events: 1024,
            max_concurrent_handlers: 128,
            decode_limits: DecodeLimits::default(),
            max_namespaces_per_connection: 256,
            cleanup_empty_child_namespaces: true,
            connection_state_recovery: None,
            serve_client: None,
            parser: Parser::Default,
        }
    }
}

/// Values handlers receive with the [`crate::State`] extractor.
#[derive(Default)]
pub(crate) struct StateMap(HashMap<TypeId, Box<dyn Any + Send + Sync>>);

impl StateMap {
    pub(crate) fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.0
            .get(&TypeId::of::<T>())
            .and_then(|b| b.downcast_ref::<T>())
            .cloned()
    }
}

/// What every namespace and socket shares, immutable after build.
pub(crate) struct IoShared {
    pub(crate) config: SocketIoConfig,
    pub(crate) state: StateMap,
    pub(crate) adapter_factory: Arc<dyn AdapterFactory>,
    /// Connections and sockets not yet closed (what `close()` waits for).
    pub(crate) live: Arc<Drain>,
    /// Counters kept by the connections ([`SocketIo::stats`]).
    pub(crate) counters: Arc<Counters>,
}

/// The namespace registry.
pub(crate) struct IoInner {
    pub(crate) shared: Arc<IoShared>,
    namespaces: Arc<Registry>,
    dynamic: RwLock<Vec<DynNamespace>>,
    lifecycle: Lifecycle,
    /// `new_namespace` listeners.
    new_namespace: Listeners<NewNamespaceListener>,
}

/// A `new_namespace` listener.
type NewNamespaceListener = Arc<dyn Fn(BroadcastOperator) + Send + Sync>;

impl IoInner {
    /// The namespace a CONNECT asks for: a static one, an existing child, or a new child of
    /// the first dynamic namespace that matches. The guard counts the CONNECT as under way.
    pub(crate) fn namespace_for(
        &self,
        name: &str,
        auth: &serde_json::Value,
    ) -> Option<ConnectGuard> {
        if let Some(ns) = read(&self.namespaces).get(name) {
            return Some(ns.begin_connect());
        }
        let handlers = read(&self.dynamic)
            .iter()
            .find(|d| d.matcher.matches(name, auth))
            .map(|d| d.handlers.clone())?;
        let mut map = write(&self.namespaces);
        let mut created = false;
        let ns = map.entry(name.to_owned()).or_insert_with(|| {
            created = true;
            Namespace::new(
                name.to_owned(),
                handlers,
                self.shared.clone(),
                Some(Arc::downgrade(&self.namespaces)),
            )
        });
        let guard = ns.begin_connect();
        drop(map);
        if created {
            self.announce(&guard.0);
        }
        Some(guard)
    }

    /// Calls the `new_namespace` listeners (not for `/`, as Node, which creates it first).
    fn announce(&self, ns: &Arc<Namespace>) {
        if ns.name == "/" {
            return;
        }
        for (_, f) in self.new_namespace.snapshot().iter() {
            f(BroadcastOperator::new(ns.clone()));
        }
    }

    /// The namespace `io.of(name)` names: an existing one, a child of a dynamic namespace
    /// whose pattern matches (predicates get a null auth), or a new static one.
    fn namespace_named(&self, name: &str) -> Arc<Namespace> {
        if let Some(guard) = self.namespace_for(name, &serde_json::Value::Null) {
            return guard.0.clone();
        }
        self.static_ns(name)
    }

    /// The names of the namespaces (static ones and current children).
    pub(crate) fn names(&self) -> Vec<String> {
        read(&self.namespaces).keys().cloned().collect()
    }

    fn all_namespaces(&self) -> Vec<Arc<Namespace>> {
        read(&self.namespaces).values().cloned().collect()
    }

    pub(crate) fn static_ns(&self, name: &str) -> Arc<Namespace> {
        let mut map = write(&self.namespaces);
        let mut created = false;
        let ns = map
            .entry(name.to_owned())
            .or_insert_with(|| {
                created = true;
                Namespace::new(
                    name.to_owned(),
                    Arc::new(Handlers::default()),
                    self.shared.clone(),
                    None,
                )
            })
            .clone();
        drop(map);
        if created {
            self.announce(&ns);
        }
        ns
    }
}

/// The Socket.IO server. Cloning is cheap; every clone is the same server.
#[derive(Clone)]
pub struct SocketIo {
    pub(crate) inner: Arc<IoInner>,
    pub(crate) engine: Engine<IoHandler>,
}

impl std::fmt::Debug for SocketIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIo").finish_non_exhaustive()
    }
}

/// Builds a [`SocketIo`].
pub struct SocketIoBuilder {
    config: SocketIoConfig,
    state: StateMap,
    adapter_factory: Arc<dyn AdapterFactory>,
}

impl std::fmt::Debug for SocketIoBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIoBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Default for SocketIoBuilder {
    fn default() -> Self {
        SocketIoBuilder {
            config: SocketIoConfig::default(),
            state: StateMap::default(),
            adapter_factory: Arc::new(LocalAdapter::factory()),
        }
    }
}

impl SocketIoBuilder {
    /// Replaces every setting.
    pub fn config(mut self, config: SocketIoConfig) -> Self {
        self.config = config;
        self
    }

    /// The path the server answers at. Default `/socket.io/`.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.config.engine.path = path.into();
        self
    }

    /// Time between pings. Default 25 s.
    pub fn ping_interval(mut self, d: Duration) -> Self {
        self.config.engine.session.ping_interval = d;
        self
    }

    /// Time to answer a ping. Default 20 s.
    pub fn ping_timeout(mut self, d: Duration) -> Self {
        self.config.engine.session.ping_timeout = d;
        self
    }

    /// Time to complete an upgrade to WebSocket. Default 10 s.
    pub fn upgrade_timeout(mut self, d: Duration) -> Self {
        self.config.engine.session.upgrade_timeout = d;
        self
    }

    /// Largest message accepted (`maxHttpBufferSize`). Default 1 000 000 bytes.
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.config.engine.session.max_payload = bytes;
        self
    }

    /// Most packets queued for one client before it is disconnected as too slow. Default
    /// 1024.
    pub fn max_buffered_packets(mut self, n: usize) -> Self {
        self.config.engine.session.max_buffered_packets = n;
        self
    }

    /// Time for a client to join a namespace. Default 45 s.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.config.connect_timeout = d;
        self
    }

    /// Default timeout of `emit_with_ack` (socket and broadcast). Default none: see
    /// [`SocketIoConfig::ack_timeout`].
    pub fn ack_timeout(mut self, d: Duration) -> Self {
        self.config.ack_timeout = Some(d);
        self
    }

    /// Allowed transports.
    pub fn transports(mut self, transports: Transports) -> Self {
        self.config.engine.transports = transports;
        self
    }

    /// CORS and `Origin` policy (same origin by default).
    pub fn cors(mut self, cors: CorsConfig) -> Self {
        self.config.engine.cors = cors;
        self
    }

    /// The sticky-session cookie set on the handshake (Node's `cookie` option), for load
    /// balancers that route by cookie. Default none.
    ///
    /// # Panics
    ///
    /// [`SocketIoBuilder::build`] panics when the cookie is invalid
    /// ([`CookieConfig::validate`]).
    pub fn cookie(mut self, cookie: CookieConfig) -> Self {
        self.config.engine.cookie = Some(cookie);
        self
    }

    /// Accepts Engine.IO v3 / Socket.IO v4 clients (`socket.io-client` 2.x, `EIO=3`), as
    /// Node's `allowEIO3`. Such a client is connected to `/` as soon as its session opens
    /// (middlewares still run), gives its auth as the namespace query, and gets Node's v4
    /// CONNECT and ERROR packets; [`crate::SocketRef::protocol`] tells it apart. Default
    /// false: an `EIO=3` handshake is refused with `400`
    /// `{"code":5,"message":"Unsupported protocol version"}`.
    pub fn allow_eio3(mut self, allow: bool) -> Self {
        self.config.engine.allow_eio3 = allow;
        self
    }

    /// Compression of polling responses (Node's `httpCompression`); `None` turns it off.
    /// Default on (gzip, deflate or br above 1024 bytes).
    pub fn http_compression(mut self, compression: Option<HttpCompression>) -> Self {
        self.config.engine.http_compression = compression;
        self
    }

    /// permessage-deflate on WebSocket connections (Node's `perMessageDeflate`); `None` (the
    /// default, as on Node) turns it off. See [`PerMessageDeflate`] for the options and the
    /// memory it costs per connection.
    pub fn per_message_deflate(mut self, deflate: Option<PerMessageDeflate>) -> Self {
        self.config.engine.per_message_deflate = deflate;
        self
    }

    /// Adds headers to the handshake response: the first polling answer or the WebSocket
    /// `101` (Node's `io.engine.on("initial_headers", (headers, req) => ..)`), e.g. a
    /// `Set-Cookie`. Called with the response headers and the request; replaces an earlier
    /// hook. It runs on the request's task: it must not block.
    pub fn on_initial_headers(
        mut self,
        f: impl Fn(&mut http::HeaderMap, &http::request::Parts) + Send + Sync + 'static,
    ) -> Self {
        self.config.engine.initial_headers = Some(HeadersHook::new(f));
        self
    }

    /// Adds headers to every response of a session, the handshake included (Node's
    /// `io.engine.on("headers", ..)`). Replaces an earlier hook; must not block.
    pub fn on_headers(
        mut self,
        f: impl Fn(&mut http::HeaderMap, &http::request::Parts) + Send + Sync + 'static,
    ) -> Self {
        self.config.engine.headers = Some(HeadersHook::new(f));
        self
    }

    /// Called for every HTTP request the engine refuses, with Node's code and message and
    /// the request (Node's `io.engine.on("connection_error", ..)`). Replaces an earlier
    /// hook; must not block.
    pub fn on_connection_error(
        mut self,
        f: impl Fn(&ConnectionError<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.config.engine.connection_error = Some(ConnectionErrorHook::new(f));
        self
    }

    /// Most attachments in one packet. Default 10.
    pub fn max_attachments(mut self, n: usize) -> Self {
        self.config.decode_limits.max_attachments = n;
        self
    }

    /// Turns on connection state recovery.
    pub fn connection_state_recovery(mut self, config: RecoveryConfig) -> Self {
        self.config.connection_state_recovery = Some(config);
        self
    }

    /// The packet format (Node's `parser` option; the clients must use the same:
    /// `socket.io-msgpack-parser` for [`Parser::MsgPack`]). Default [`Parser::Default`].
    pub fn parser(mut self, parser: Parser) -> Self {
        self.config.parser = parser;
        self
    }

    /// Serves the JavaScript client (`<path>socket.io.js`, `socket.io.min.js`, ...) from this
    /// bundle, like Node's `serveClient` (the `socket.io.msgpack.*` files only with the msgpack
    /// parser).
    pub fn serve_client(mut self, bundle: ClientBundle) -> Self {
        self.config.serve_client = Some(bundle);
        self
    }

    /// A value for the [`crate::State`] extractor (one per type).
    pub fn with_state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.state.0.insert(TypeId::of::<T>(), Box::new(value));
        self
    }

    /// The adapter each namespace gets: the in-memory [`LocalAdapter`] by default, a cluster
    /// adapter (e.g. `ferrio-redis`) to share rooms and broadcasts with other servers.
    pub fn adapter(mut self, factory: impl AdapterFactory) -> Self {
        self.adapter_factory = Arc::new(factory);
        self
    }

    /// The server.
    pub fn build(self) -> SocketIo {
        let shared = Arc::new(IoShared {
            config: self.config,
            state: self.state,
            adapter_factory: self.adapter_factory,
            live: Arc::default(),
            counters: Arc::default(),
        });
        let inner = Arc::new(IoInner {
            shared: shared.clone(),
            namespaces: Arc::new(RwLock::new(HashMap::new())),
            dynamic: RwLock::new(Vec::new()),
            lifecycle: Lifecycle::default(),
            new_namespace: Listeners::default(),
        });
        let engine = Engine::new(shared.config.engine.clone(), IoHandler::new(inner.clone()));
        SocketIo { inner, engine }
    }

    /// The server and a tower layer to mount it (e.g. on an axum `Router`).
    pub fn build_layer(self) -> (SocketIoLayer, SocketIo) {
        let io = self.build();
        (io.layer(), io)
    }

    /// The server and a service that serves it alone (404 elsewhere).
    pub fn build_svc(self) -> (SocketIoService<NotFound>, SocketIo) {
        let io = self.build();
        (io.service(), io)
    }
}

impl SocketIo {
    /// A builder with Node's defaults.
    pub fn builder() -> SocketIoBuilder {
        SocketIoBuilder::default()
    }

    /// A tower layer serving this server in front of another service.
    pub fn layer(&self) -> SocketIoLayer {
        let config = &self.inner.shared.config;
        SocketIoLayer::new(
            self.engine.layer(),
            config.serve_client.clone(),
            &config.engine.path,
        )
    }

    /// A service serving this server alone; other paths get 404.
    pub fn service(&self) -> SocketIoService<NotFound> {
        use tower_layer::Layer;
        self.layer().layer(NotFound)
    }

    /// Registers a namespace and its connection handler (`io.of(path).on("connection")`).
    pub fn ns<H, M>(&self, path: impl Into<String>, handler: H) -> NamespaceBuilder
    where
        H: ConnectHandler<M>,
        M: Send + Sync + 'static,
    {
        let ns = self.inner.static_ns(&normalise(path.into()));
        *ns.handlers
            .connect
            .write()
            .unwrap_or_else(|p| p.into_inner()) =
            Some(Arc::new(ErasedConnect(handler, PhantomData)));
        NamespaceBuilder {
            handlers: ns.handlers.clone(),
            registry: self.inner.namespaces.clone(),
        }
    }

    /// Registers a dynamic namespace by pattern: `/room-{id}` matches `/room-1`, `/room-abc`.
    /// Each matching name becomes a child namespace with these handlers.
    pub fn dyn_ns<H, M>(&self, pattern: &str, handler: H) -> NamespaceBuilder
    where
        H: ConnectHandler<M>,
        M: Send + Sync + 'static,
    {
        self.add_dynamic(Matcher::pattern(pattern), handler)
    }

    /// Registers a dynamic namespace by predicate on the name and the auth payload.
    pub fn dyn_ns_fn<F, H, M>(&self, predicate: F, handler: H) -> NamespaceBuilder
    where
        F: Fn(&str, &serde_json::Value) -> bool + Send + Sync + 'static,
        H: ConnectHandler<M>,
        M: Send + Sync + 'static,
    {
        self.add_dynamic(Matcher::Predicate(Arc::new(predicate)), handler)
    }

    fn add_dynamic<H, M>(&self, matcher: Matcher, handler: H) -> NamespaceBuilder
    where
        H: ConnectHandler<M>,
        M: Send + Sync + 'static,
    {
        let handlers = Arc::new(Handlers::default());
        *handlers.connect.write().unwrap_or_else(|p| p.into_inner()) =
            Some(Arc::new(ErasedConnect(handler, PhantomData)));
        write(&self.inner.dynamic).push(DynNamespace {
            matcher,
            handlers: handlers.clone(),
        });
        NamespaceBuilder {
            handlers,
            registry: self.inner.namespaces.clone(),
        }
    }

    /// Operators on a namespace (`io.of("/chat").to("room").emit(...)`). The namespace is
    /// created (with no handler) if it does not exist.
    pub fn of(&self, path: impl Into<String>) -> BroadcastOperator {
        BroadcastOperator::new(self.inner.namespace_named(&normalise(path.into())))
    }

    /// Adds a function called with each namespace when it is created (Node's `new_namespace`
    /// event): a static one (`io.ns`, `io.of`) or a child of a dynamic namespace, before its
    /// first socket connects. Not called for `/`, nor for the namespaces created before. It runs
    /// on the task creating the namespace (for a child, the connection's): keep it short.
    pub fn on_new_namespace(
        &self,
        f: impl Fn(BroadcastOperator) + Send + Sync + 'static,
    ) -> ListenerId {
        self.inner.new_namespace.add(Arc::new(f), false)
    }

    /// Removes one `new_namespace` listener, or all of them with `None`.
    pub fn off_new_namespace(&self, listener: Option<ListenerId>) {
        self.inner.new_namespace.remove(listener);
    }

    /// The names of the namespaces: static ones, and the children of dynamic namespaces that
    /// have sockets (empty children are removed, see
    /// [`SocketIoConfig::cleanup_empty_child_namespaces`]).
    pub fn namespaces(&self) -> Vec<String> {
        self.inner.names()
    }

    fn main(&self) -> BroadcastOperator {
        self.of("/")
    }

    /// Broadcast on the main namespace to these rooms.
    pub fn to(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.main().to(rooms)
    }

    /// Same as [`SocketIo::to`].
    pub fn within(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.main().to(rooms)
    }

    /// Broadcast on the main namespace except to these rooms.
    pub fn except(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.main().except(rooms)
    }

    /// Broadcast on the main namespace, this server only.
    pub fn local(&self) -> BroadcastOperator {
        self.main().local()
    }

    /// Broadcast on the main namespace, dropped for clients whose queue is full.
    pub fn volatile(&self) -> BroadcastOperator {
        self.main().volatile()
    }

    /// Broadcast on the main namespace with per-message compression set (see
    /// [`BroadcastOperator::compress`]).
    pub fn compress(&self, compress: bool) -> BroadcastOperator {
        self.main().compress(compress)
    }

    /// Timeout for a broadcast `emit_with_ack` on the main namespace.
    pub fn timeout(&self, d: Duration) -> BroadcastOperator {
        self.main().timeout(d)
    }

    /// Emits to every socket of the main namespace.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), SendError> {
        self.main().emit(event, data)
    }

    /// Emits a `message` event to every socket of the main namespace (Node's `io.send`).
    pub fn send<T: Serialize + ?Sized>(&self, data: &T) -> Result<(), SendError> {
        self.main().send(data)
    }

    /// Emits to every socket of the main namespace and collects their acknowledgements.
    pub fn emit_with_ack<T, V>(&self, event: &str, data: &T) -> Result<AckStream<V>, SendError>
    where
        T: Serialize + ?Sized,
        V: DeserializeOwned,
    {
        self.main().emit_with_ack(event, data)
    }

    /// The sockets of the main namespace on this server.
    pub fn sockets(&self) -> Vec<SocketRef> {
        self.main().sockets()
    }

    /// Every socket of the main namespace across the cluster (`fetchSockets`).
    pub async fn fetch_sockets(&self) -> Result<Gathered<RemoteSocket>, AdapterError> {
        self.main().fetch_sockets().await
    }

    /// Makes every socket of the main namespace join rooms, across the cluster.
    pub fn sockets_join(&self, rooms: impl IntoRooms) -> Result<(), AdapterError> {
        self.main().sockets_join(rooms)
    }

    /// Makes every socket of the main namespace leave rooms, across the cluster.
    pub fn sockets_leave(&self, rooms: impl IntoRooms) -> Result<(), AdapterError> {
        self.main().sockets_leave(rooms)
    }

    /// Disconnects every socket of the main namespace, across the cluster.
    pub fn disconnect_sockets(&self, close: bool) -> Result<(), AdapterError> {
        self.main().disconnect_sockets(close)
    }

    /// Sends an event to the server-side handlers of the other servers of the cluster (on the
    /// main namespace; Node's `io.serverSideEmit`). A tuple is several arguments.
    pub fn server_side_emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), AdapterError> {
        self.main().server_side_emit(event, data)
    }

    /// Sends an event to the other servers and gathers one answer from each (within
    /// `timeout`; the answers that arrived, and how many servers did not answer).
    pub async fn server_side_emit_with_ack<T, V>(
        &self,
        event: &str,
        data: &T,
        timeout: Duration,
    ) -> Result<Gathered<V>, AdapterError>
    where
        T: Serialize + ?Sized,
        V: DeserializeOwned,
    {
        self.main()
            .server_side_emit_with_ack(event, data, timeout)
            .await
    }

    /// Registers the handler of a server-side event of the main namespace (Node's
    /// `io.on(event, ...)` for events from `serverSideEmit`).
    pub fn on_server_event<F, Fut>(&self, event: impl Into<String>, handler: F)
    where
        F: FnOnce(ServerEvent) -> Fut + Clone + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.inner
            .static_ns("/")
            .handlers
            .on_server_event(event.into(), crate::server_event::handler(handler));
    }

    /// The number of servers in the cluster (1 with the in-memory adapter).
    pub async fn server_count(&self) -> Result<usize, AdapterError> {
        self.main().server_count().await
    }

    /// Every room of the main namespace across the cluster.
    pub async fn all_rooms(&self) -> Result<Gathered<Room>, AdapterError> {
        self.main().all_rooms().await
    }

    /// Number of open Engine.IO connections.
    pub fn connection_count(&self) -> usize {
        self.engine.session_count()
    }

    /// What the server holds now: sessions, sockets, rooms, pending acknowledgements, partial
    /// packets (see [`ServerStats`]). Walks every namespace and socket: cheap enough for a
    /// metrics scrape, not for every event.
    pub fn stats(&self) -> ServerStats {
        let namespaces = self.inner.all_namespaces();
        let mut stats = ServerStats {
            sessions: self.engine.session_count(),
            polls_waiting: self.engine.poll_waiting_count(),
            live: self.inner.shared.live.count(),
            namespaces: namespaces.len(),
            partial_packets: self.inner.shared.counters.partial_packets(),
            dropped_partials: self.inner.shared.counters.dropped_partials(),
            packets_encoded: self.inner.shared.counters.packets_encoded(),
            ..ServerStats::default()
        };
        for ns in &namespaces {
            stats.rooms += ns.rooms.room_count();
            for socket in ns.all_sockets() {
                stats.sockets += 1;
                stats.pending_acks += socket.pending_acks();
            }
        }
        stats
    }

    /// Closes the server (Node's `io.close()`): refuses new clients, disconnects every client
    /// (`server shutting down`; the npm client sees `transport close` and reconnects), closes
    /// the adapters (a cluster adapter unsubscribes), and stops the listeners served by
    /// [`SocketIo::serve`] / [`SocketIo::serve_with`].
    ///
    /// It starts at once, whether or not the returned [`Closing`] is awaited; await it to wait
    /// until the drain is done (every disconnect handler finished, adapters closed, served
    /// listeners closed). A server mounted another way (the [`layer`](SocketIo::layer) in an
    /// axum app, [`crate::serve`] with a service) does not own its listener: pass
    /// [`closed()`](SocketIo::closed) as that server's shutdown signal.
    pub fn close(&self) -> Closing {
        let lifecycle = &self.inner.lifecycle;
        let first = lifecycle.start_closing();
        self.engine.close();
        let mut drained = lifecycle.drained.subscribe();
        let serving = lifecycle.serving.clone();
        let wait = async move {
            let _ = drained.wait_for(|d| *d).await;
            serving.wait_empty().await;
        };
        if !first {
            return Closing::new(wait);
        }
        // The adapters close at once, as Node closes each one right after its sockets: a
        // cluster adapter unsubscribes while the disconnect handlers still run.
        let closes: Vec<_> = self
            .inner
            .all_namespaces()
            .iter()
            .map(|ns| ns.adapter.close())
            .collect();
        let inner = self.inner.clone();
        let drain = async move {
            futures_util::future::join(
                inner.shared.live.wait_empty(),
                futures_util::future::join_all(closes),
            )
            .await;
            inner.lifecycle.drained.send_replace(true);
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(drain);
            Closing::new(wait)
        } else {
            // No runtime to run the drain in the background: it runs when awaited.
            Closing::new(async move {
                drain.await;
                wait.await;
            })
        }
    }

    /// Resolves once [`close`](SocketIo::close) has been called: the shutdown signal for a
    /// server this one does not own (`ferrio::serve(listener, svc, io.closed())`, axum's
    /// `with_graceful_shutdown(io.closed())`).
    pub fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        self.inner.lifecycle.closed()
    }

    /// Serves this server alone on `listener` (other paths get 404) until
    /// [`close`](SocketIo::close): then the listener is closed, and `close()` waits for this.
    pub fn serve(
        &self,
        listener: std::net::TcpListener,
    ) -> impl Future<Output = std::io::Result<()>> + Send + 'static {
        self.serve_with(listener, self.service())
    }

    /// As [`serve`](SocketIo::serve), with another service, e.g. the server's
    /// [`layer`](SocketIo::layer) around an axum `Router`.
    pub fn serve_with<S, B>(
        &self,
        listener: std::net::TcpListener,
        service: S,
    ) -> impl Future<Output = std::io::Result<()>> + Send + 'static
    where
        S: tower_service::Service<http::Request<RequestBody>, Response = http::Response<B>>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        // Counted now, so that a close() right after this call waits for it.
        let guard = self.inner.lifecycle.serving.guard();
        let closed = self.closed();
        async move {
            let result = ferrio_engine::serve(listener, service, closed).await;
            drop(guard);
            result
        }
    }

    /// The settings.
    pub fn config(&self) -> &SocketIoConfig {
        &self.inner.shared.config
    }
}

/// A namespace registered with [`SocketIo::ns`], or a dynamic namespace registered with
/// [`SocketIo::dyn_ns`] / [`SocketIo::dyn_ns_fn`] (Node's parent namespace): adds middlewares
/// and server-side event handlers, and emits to every namespace it serves.
#[derive(Clone)]
pub struct NamespaceBuilder {
    handlers: Arc<Handlers>,
    registry: Arc<Registry>,
}

impl std::fmt::Debug for NamespaceBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamespaceBuilder").finish_non_exhaustive()
    }
}

impl NamespaceBuilder {
    /// The namespaces these handlers serve now: the namespace itself, or the current children
    /// of a dynamic namespace.
    pub fn namespaces(&self) -> Vec<BroadcastOperator> {
        let mut found: Vec<Arc<Namespace>> = read(&self.registry)
            .values()
            .filter(|ns| Arc::ptr_eq(&ns.handlers, &self.handlers))
            .cloned()
            .collect();
        found.sort_by(|a, b| a.name.cmp(&b.name));
        found.into_iter().map(BroadcastOperator::new).collect()
    }

    /// Emits to every socket of every namespace these handlers serve (Node's
    /// `io.of(/regex/).emit(...)`: a dynamic namespace emits to all its children). Each child's
    /// adapter gets the packet, so a cluster adapter reaches that child on other servers too.
    /// The first error is returned, after every namespace has been tried.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), SendError> {
        let mut result = Ok(());
        for ns in self.namespaces() {
            if let Err(e) = ns.emit(event, data)
                && result.is_ok()
            {
                result = Err(e);
            }
        }
        result
    }
    /// Registers the handler of a server-side event of this namespace (events other servers
    /// send with `server_side_emit`).
    pub fn on_server_event<F, Fut>(self, event: impl Into<String>, handler: F) -> Self
    where
        F: FnOnce(ServerEvent) -> Fut + Clone + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.handlers
            .on_server_event(event.into(), crate::server_event::handler(handler));
        self
    }

    /// Adds a connection middleware (`nsp.use`): it runs before the connection handler, in
    /// the order added; an error refuses the connection with `CONNECT_ERROR {message, data}`.
    pub fn with<F, Fut>(self, middleware: F) -> Self
    where
        F: FnOnce(SocketRef) -> Fut + Clone + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        let f =
            Arc::new(move |s: SocketRef| -> MiddlewareFuture { Box::pin((middleware.clone())(s)) });
        self.handlers
            .middlewares
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(f);
        self
    }
}

fn normalise(path: String) -> String {
    if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}
