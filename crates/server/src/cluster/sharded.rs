//! The `ClusterAdapter` message family over sharded pub/sub, as `createShardedAdapter` of
//! `@socket.io/redis-adapter` 8.x uses it.
//!
//! Channels of namespace `nsp` with prefix `p` (default `socket.io`): `{p}#{nsp}#` (every
//! message), `{p}#{nsp}#{uid}#` (answers to this server) and, in the `dynamic` subscription
//! mode, `{p}#{nsp}#{room}#` for each public room (a room that is not a socket id) with local
//! sockets. Messages are `{type, data, uid, nsp}` (types 1-13), JSON unless they hold binary,
//! then msgpack. The server count is the subscriber count of `{p}#{nsp}#`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrio_proto::value::{Value, msgpack};
use tokio::sync::mpsc;

use super::core::{Core, random_hex};
use super::wire;
use super::{Backend, ClusterConfig, ClusterStats, MessageHandler, bump};
use crate::AckSink;
use crate::adapter::{
    Adapter, AdapterError, AdapterFactory, AdapterFuture, BroadcastOptions, BroadcastPacket,
    Gathered, LocalNamespace, Room, ServerAckFn, SocketInfo,
};

const HEARTBEAT: i64 = 2;
const INITIAL_HEARTBEAT: i64 = 1;
const BROADCAST: i64 = 3;
const SOCKETS_JOIN: i64 = 4;
const SOCKETS_LEAVE: i64 = 5;
const DISCONNECT_SOCKETS: i64 = 6;
const FETCH_SOCKETS: i64 = 7;
const FETCH_SOCKETS_RESPONSE: i64 = 8;
const SERVER_SIDE_EMIT: i64 = 9;
const SERVER_SIDE_EMIT_RESPONSE: i64 = 10;
const BROADCAST_CLIENT_COUNT: i64 = 11;
const BROADCAST_ACK: i64 = 12;
const ADAPTER_CLOSE: i64 = 13;

/// Which rooms get a channel of their own (Node's `subscriptionMode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscriptionMode {
    /// Only the namespace channel and the response channel.
    Static,
    /// A channel per public room (a room that is not a socket id). Node's default.
    #[default]
    Dynamic,
    /// A channel per room, socket rooms included.
    DynamicPrivate,
}

/// The adapter of one namespace in the sharded (`ClusterAdapter`) format.
pub struct ShardedAdapter {
    inner: Arc<Sharded>,
}

impl std::fmt::Debug for ShardedAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedAdapter")
            .field("uid", &self.inner.core.uid)
            .field("ns", &self.inner.core.local.name())
            .finish_non_exhaustive()
    }
}

struct Sharded {
    core: Arc<Core>,
    main: String,
    response: String,
    mode: SubscriptionMode,
    /// The rooms with a channel subscribed here.
    rooms: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Room subscription changes, applied in order by one task.
    subs: mpsc::Sender<(bool, String)>,
    subs_rx: std::sync::Mutex<Option<mpsc::Receiver<(bool, String)>>>,
}

/// Makes a [`ShardedAdapter`] for each namespace of one server.
#[derive(Clone)]
pub struct ShardedFactory {
    backend: Arc<dyn Backend>,
    config: ClusterConfig,
    prefix: String,
    mode: SubscriptionMode,
    stats: Arc<ClusterStats>,
}

impl std::fmt::Debug for ShardedFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedFactory")
            .field("prefix", &self.prefix)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl ShardedFactory {
    /// The channel prefix (Node's `channelPrefix`). Default `socket.io`.
    pub fn channel_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Which rooms get a channel of their own. Default [`SubscriptionMode::Dynamic`].
    pub fn subscription_mode(mut self, mode: SubscriptionMode) -> Self {
        self.mode = mode;
        self
    }

    /// The counters of every namespace's adapter.
    pub fn stats(&self) -> Arc<ClusterStats> {
        self.stats.clone()
    }
}

impl ShardedAdapter {
    /// A factory for [`crate::SocketIoBuilder::adapter`] on a sharded backend.
    pub fn factory(backend: Arc<dyn Backend>, config: ClusterConfig) -> ShardedFactory {
        ShardedFactory {
            backend,
            config,
            prefix: "socket.io".to_owned(),
            mode: SubscriptionMode::Dynamic,
            stats: Arc::default(),
        }
    }

    /// This server's id in the cluster (16 hex characters, as Node's `randomBytes(8)`).
    pub fn uid(&self) -> &str {
        &self.inner.core.uid
    }
}

impl AdapterFactory for ShardedFactory {
    fn create(&self, ns: LocalNamespace) -> Arc<dyn Adapter> {
        let uid = random_hex(8);
        let main = format!("{}#{}#", self.prefix, ns.name());
        let response = format!("{main}{uid}#");
        let (subs, rx) = mpsc::channel(self.config.subscription_queue.max(1));
        let core = Arc::new(Core::new(
            uid,
            main.clone(),
            ns,
            self.backend.clone(),
            self.config.clone(),
            self.stats.clone(),
        ));
        Arc::new(ShardedAdapter {
            inner: Arc::new(Sharded {
                core,
                main,
                response,
                mode: self.mode,
                rooms: Default::default(),
                subs,
                subs_rx: std::sync::Mutex::new(Some(rx)),
            }),
        })
    }
}

impl Sharded {
    fn handler(self: &Arc<Self>) -> MessageHandler {
        let weak = Arc::downgrade(self);
        Arc::new(move |channel, payload| {
            if let Some(me) = weak.upgrade() {
                me.on_raw(channel, payload);
            }
        })
    }

    fn room_channel(&self, room: &str) -> String {
        format!("{}{room}#", self.main)
    }

    /// Whether a room gets its own channel here (Node's `shouldUseASeparateNamespace`).
    fn own_channel(&self, room: &str) -> bool {
        match self.mode {
            SubscriptionMode::Static => false,
            SubscriptionMode::Dynamic => !self.core.local.is_socket_room(room),
            SubscriptionMode::DynamicPrivate => true,
        }
    }

    /// Subscribes to a room's channel, or unsubscribes when this server subscribed to it.
    fn change_subscription(&self, subscribe: bool, room: &Room) {
        if self.mode == SubscriptionMode::Static {
            return;
        }
        {
            let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
            let changed = if subscribe {
                rooms.insert(room.to_string())
            } else {
                rooms.remove(room.as_ref())
            };
            if !changed {
                return;
            }
        }
        if self.subs.try_send((subscribe, room.to_string())).is_err() {
            bump(&self.core.stats.subscription_dropped, 1);
            tracing::warn!(ns = %self.core.local.name(), %room, "room subscription change dropped (queue full)");
        }
    }

    /// Encodes a message: JSON, or msgpack when it may hold binary and does.
    fn encode(&self, ty: i64, data: Option<Value>) -> Vec<u8> {
        let binary_types = [
            BROADCAST,
            BROADCAST_ACK,
            FETCH_SOCKETS_RESPONSE,
            SERVER_SIDE_EMIT,
            SERVER_SIDE_EMIT_RESPONSE,
        ];
        let binary = binary_types.contains(&ty) && data.as_ref().is_some_and(Value::has_binary);
        let mut fields = vec![("type", Value::from(ty))];
        if let Some(data) = data {
            fields.push(("data", data));
        }
        fields.push(("uid", Value::from(self.core.uid.as_str())));
        fields.push(("nsp", Value::from(self.core.local.name())));
        let msg = Value::map(fields);
        if binary {
            msgpack::encode(&msg)
        } else {
            msg.to_json()
        }
    }

    fn publish(&self, ty: i64, data: Value) -> Result<(), AdapterError> {
        self.core
            .publish(self.main.clone(), self.encode(ty, Some(data)))
    }

    fn respond(&self, requester: &str, ty: i64, data: Value) {
        let channel = format!("{}{requester}#", self.main);
        self.core
            .publish_response(channel, self.encode(ty, Some(data)));
    }

    fn on_raw(&self, channel: &str, payload: Bytes) {
        let msg = match wire::decode(&payload) {
            Ok(v) => v,
            Err(e) => return self.core.malformed(&e),
        };
        if channel == self.response {
            self.on_response(&msg);
        } else {
            self.on_message(&msg);
        }
    }

    fn on_message(&self, msg: &Value) {
        let core = &self.core;
        let uid = msg.get("uid").and_then(Value::as_str);
        if uid == Some(core.uid.as_str()) {
            return core.ignored();
        }
        if msg.get("nsp").and_then(Value::as_str) != Some(core.local.name()) {
            return core.ignored();
        }
        core.seen(uid);
        let data = msg.get("data");
        let field = |k: &str| data.and_then(|d| d.get(k));
        let request_id = field("requestId").and_then(Value::as_str);
        match msg.get("type").and_then(Value::as_i64) {
            Some(BROADCAST) => {
                let opts = wire::opts(field("opts"));
                let Some(items) = field("packet")
                    .and_then(|p| p.get("data"))
                    .and_then(Value::as_array)
                else {
                    return core.malformed("broadcast without packet data");
                };
                let packet = match BroadcastPacket::from_data(
                    core.local.name(),
                    core.local.parser(),
                    items.to_vec(),
                ) {
                    Ok(p) => p,
                    Err(e) => return core.malformed(&e.to_string()),
                };
                match (request_id, uid) {
                    (Some(id), Some(uid)) => self.answer_broadcast(&packet, &opts, id, uid),
                    _ => core.local.broadcast(&packet, &opts),
                }
            }
            Some(SOCKETS_JOIN) => core
                .local
                .sockets_join(&wire::opts(field("opts")), &wire::rooms(field("rooms"))),
            Some(SOCKETS_LEAVE) => core
                .local
                .sockets_leave(&wire::opts(field("opts")), &wire::rooms(field("rooms"))),
            Some(DISCONNECT_SOCKETS) => {
                let close = field("close").and_then(Value::as_bool).unwrap_or(false);
                core.local
                    .disconnect_sockets(&wire::opts(field("opts")), close)
            }
            Some(FETCH_SOCKETS) => {
                let (Some(id), Some(uid)) = (request_id, uid) else {
                    return core.malformed("fetchSockets without requestId");
                };
                let sockets = core.local.fetch_sockets(&wire::opts(field("opts")));
                let sockets = sockets.iter().map(SocketInfo::to_value).collect();
                self.respond(
                    uid,
                    FETCH_SOCKETS_RESPONSE,
                    Value::map([
                        ("requestId", Value::from(id)),
                        ("sockets", Value::Array(sockets)),
                    ]),
                );
            }
            Some(SERVER_SIDE_EMIT) => {
                let Some(items) = field("packet").and_then(Value::as_array) else {
                    return core.malformed("serverSideEmit without packet");
                };
                let ack = match (request_id, uid) {
                    (Some(id), Some(uid)) => Some(self.sse_ack(id, uid)),
                    _ => None,
                };
                core.local.server_side_event(items.to_vec(), ack);
            }
            // Answers may come on the main channel too (Node's `onMessage` forwards them).
            Some(
                FETCH_SOCKETS_RESPONSE
                | SERVER_SIDE_EMIT_RESPONSE
                | BROADCAST_CLIENT_COUNT
                | BROADCAST_ACK,
            ) => self.on_response(msg),
            Some(ADAPTER_CLOSE) => {
                if let Some(uid) = uid {
                    core.forget(uid);
                }
            }
            Some(INITIAL_HEARTBEAT | HEARTBEAT) => {}
            _ => core.ignored(),
        }
    }

    fn sse_ack(&self, id: &str, requester: &str) -> ServerAckFn {
        let core = self.core.clone();
        let channel = format!("{}{requester}#", self.main);
        let (main, id) = (self.main.clone(), id.to_owned());
        let me_uid = core.uid.clone();
        let nsp = core.local.name().to_owned();
        Box::new(move |arg: Value| {
            let _ = &main;
            let data = Value::map([("requestId", Value::from(id)), ("packet", arg)]);
            let binary = data.has_binary();
            let msg = Value::map([
                ("type", Value::from(SERVER_SIDE_EMIT_RESPONSE)),
                ("data", data),
                ("uid", Value::from(me_uid)),
                ("nsp", Value::from(nsp)),
            ]);
            let bytes = if binary {
                msgpack::encode(&msg)
            } else {
                msg.to_json()
            };
            core.publish_response(channel, bytes);
        })
    }

    /// A broadcast with acks from another server: client count first, then each ack.
    fn answer_broadcast(
        &self,
        packet: &BroadcastPacket,
        opts: &BroadcastOptions,
        id: &str,
        requester: &str,
    ) {
        let me = Arc::new(ResponseTarget {
            core: self.core.clone(),
            channel: format!("{}{requester}#", self.main),
            id: id.to_owned(),
        });
        let target = me.clone();
        let on_ack: crate::AckCallback = Arc::new(move |sid, args| {
            let data = Value::map([
                ("requestId", Value::from(target.id.as_str())),
                ("packet", wire::first_arg(&args)),
                ("sid", Value::from(sid.as_str())),
            ]);
            target.send(BROADCAST_ACK, data);
        });
        self.core
            .local
            .broadcast_with_ack(packet, opts, on_ack, |count| {
                let data = Value::map([
                    ("requestId", Value::from(me.id.as_str())),
                    ("clientCount", Value::from(count)),
                ]);
                me.send(BROADCAST_CLIENT_COUNT, data);
            });
    }

    fn on_response(&self, msg: &Value) {
        let core = &self.core;
        let uid = msg.get("uid").and_then(Value::as_str);
        let data = msg.get("data");
        let field = |k: &str| data.and_then(|d| d.get(k));
        let Some(id) = field("requestId").and_then(Value::as_str) else {
            return core.malformed("answer without requestId");
        };
        core.seen(uid);
        match msg.get("type").and_then(Value::as_i64) {
            Some(BROADCAST_CLIENT_COUNT) => match core.ack_sink(id) {
                Some(sink) => {
                    let n = field("clientCount").and_then(Value::as_u64).unwrap_or(0);
                    sink.remote_count(n as usize);
                }
                None => core.ignored(),
            },
            Some(BROADCAST_ACK) => match core.ack_sink(id) {
                Some(sink) => {
                    let sid = field("sid")
                        .and_then(Value::as_str)
                        .and_then(|s| ferrio_proto::engine::Sid::parse(s).ok());
                    sink.remote_ack(sid, field("packet").cloned().unwrap_or_default());
                }
                None => core.ignored(),
            },
            Some(FETCH_SOCKETS_RESPONSE) => {
                let sockets = field("sockets")
                    .and_then(Value::as_array)
                    .map(<[Value]>::to_vec)
                    .unwrap_or_default();
                if !core.answer(id, uid, sockets) {
                    core.ignored();
                }
            }
            Some(SERVER_SIDE_EMIT_RESPONSE) => {
                let packet = field("packet").cloned().unwrap_or_default();
                if !core.answer(id, uid, vec![packet]) {
                    core.ignored();
                }
            }
            _ => core.ignored(),
        }
    }

    async fn gather(
        self: Arc<Self>,
        ty: i64,
        data: Vec<(&'static str, Value)>,
        timeout: Duration,
    ) -> Result<Gathered<Value>, AdapterError> {
        let servers = self.core.server_count().await?;
        if servers <= 1 {
            return Ok(Gathered::complete(Vec::new()));
        }
        let id = random_hex(8);
        let mut fields = data;
        fields.push(("requestId", Value::from(id.as_str())));
        let msg = (self.main.clone(), self.encode(ty, Some(Value::map(fields))));
        self.core.request(id, servers - 1, msg, timeout).await
    }

    /// Applies room subscription changes in order.
    async fn subscriptions(self: Arc<Self>, mut rx: mpsc::Receiver<(bool, String)>) {
        while let Some((subscribe, room)) = rx.recv().await {
            let channel = self.room_channel(&room);
            let result = if subscribe {
                self.core.backend.subscribe(channel, self.handler()).await
            } else {
                self.core.backend.unsubscribe(channel).await
            };
            if let Err(e) = result {
                tracing::warn!(ns = %self.core.local.name(), %room, "room subscription change failed: {e}");
            }
        }
    }
}

/// Where the answers to one broadcast with acks go.
struct ResponseTarget {
    core: Arc<Core>,
    channel: String,
    id: String,
}

impl ResponseTarget {
    fn send(&self, ty: i64, data: Value) {
        let binary = data.has_binary();
        let msg = Value::map([
            ("type", Value::from(ty)),
            ("data", data),
            ("uid", Value::from(self.core.uid.as_str())),
            ("nsp", Value::from(self.core.local.name())),
        ]);
        let bytes = if binary {
            msgpack::encode(&msg)
        } else {
            msg.to_json()
        };
        self.core.publish_response(self.channel.clone(), bytes);
    }
}

impl Adapter for ShardedAdapter {
    fn init(&self) -> AdapterFuture<Result<(), AdapterError>> {
        let me = self.inner.clone();
        Box::pin(async move {
            me.core.start();
            let rx = me.subs_rx.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(rx) = rx {
                tokio::spawn(me.clone().subscriptions(rx));
            }
            let b = &me.core.backend;
            let err = |e: super::BackendError| AdapterError::Backend(e.0);
            b.subscribe(me.main.clone(), me.handler())
                .await
                .map_err(err)?;
            b.subscribe(me.response.clone(), me.handler())
                .await
                .map_err(err)?;
            // Rooms created before the adapter started.
            for room in me.core.local.rooms() {
                if me.own_channel(&room) {
                    me.change_subscription(true, &room);
                }
            }
            Ok(())
        })
    }

    fn close(&self) -> AdapterFuture<()> {
        let me = self.inner.clone();
        Box::pin(async move {
            let _ = me
                .core
                .publish(me.main.clone(), me.encode(ADAPTER_CLOSE, None));
            me.core.close();
            let b = &me.core.backend;
            let mut channels = vec![me.main.clone(), me.response.clone()];
            let rooms: Vec<String> = me
                .rooms
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .drain()
                .collect();
            channels.extend(rooms.iter().map(|r| me.room_channel(r)));
            for ch in channels {
                let _ = b.unsubscribe(ch).await;
            }
        })
    }

    fn broadcast(
        &self,
        packet: &BroadcastPacket,
        opts: &BroadcastOptions,
    ) -> Result<(), AdapterError> {
        let me = &self.inner;
        me.core.local.broadcast(packet, opts);
        if opts.flags.local {
            return Ok(());
        }
        let data = Value::map([
            (
                "packet",
                Value::map([
                    ("type", Value::from(2)),
                    ("data", Value::Array(packet.data()?.to_vec())),
                ]),
            ),
            ("opts", wire::opts_value(opts)),
        ]);
        let channel = match opts.rooms.as_slice() {
            [room]
                if match me.mode {
                    SubscriptionMode::Static => false,
                    // Node's test on the publishing side: a socket id is 20 characters.
                    SubscriptionMode::Dynamic => room.len() != 20,
                    SubscriptionMode::DynamicPrivate => true,
                } =>
            {
                me.room_channel(room)
            }
            _ => me.main.clone(),
        };
        me.core.publish(channel, me.encode(BROADCAST, Some(data)))
    }

    fn broadcast_with_ack(
        &self,
        packet: &BroadcastPacket,
        opts: &BroadcastOptions,
        acks: AckSink,
    ) -> Result<(), AdapterError> {
        let me = &self.inner;
        let mut result = Ok(());
        if opts.flags.local {
            acks.expect_servers(1);
        } else {
            let id = random_hex(8);
            let data = Value::map([
                (
                    "packet",
                    Value::map([
                        ("type", Value::from(2)),
                        ("data", Value::Array(packet.data()?.to_vec())),
                    ]),
                ),
                ("requestId", Value::from(id.as_str())),
                ("opts", wire::opts_value(opts)),
            ]);
            let timeout = opts
                .flags
                .timeout
                .unwrap_or(me.core.config.requests_timeout);
            result = me
                .core
                .publish_acked(id, acks.clone(), timeout, || me.publish(BROADCAST, data));
        }
        let sids = me
            .core
            .local
            .broadcast_with_ack(packet, opts, acks.local_callback(), |_| {});
        acks.local_count(sids);
        result
    }

    fn sockets_join(&self, opts: &BroadcastOptions, rooms: &[Room]) -> Result<(), AdapterError> {
        let me = &self.inner;
        me.core.local.sockets_join(opts, rooms);
        if opts.flags.local {
            return Ok(());
        }
        me.publish(
            SOCKETS_JOIN,
            Value::map([
                ("opts", wire::opts_value(opts)),
                ("rooms", room_list(rooms)),
            ]),
        )
    }

    fn sockets_leave(&self, opts: &BroadcastOptions, rooms: &[Room]) -> Result<(), AdapterError> {
        let me = &self.inner;
        me.core.local.sockets_leave(opts, rooms);
        if opts.flags.local {
            return Ok(());
        }
        me.publish(
            SOCKETS_LEAVE,
            Value::map([
                ("opts", wire::opts_value(opts)),
                ("rooms", room_list(rooms)),
            ]),
        )
    }

    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) -> Result<(), AdapterError> {
        let me = &self.inner;
        me.core.local.disconnect_sockets(opts, close);
        if opts.flags.local {
            return Ok(());
        }
        me.publish(
            DISCONNECT_SOCKETS,
            Value::map([
                ("opts", wire::opts_value(opts)),
                ("close", Value::Bool(close)),
            ]),
        )
    }

    fn fetch_sockets(
        &self,
        opts: &BroadcastOptions,
    ) -> AdapterFuture<Result<Gathered<SocketInfo>, AdapterError>> {
        let me = self.inner.clone();
        let opts = opts.clone();
        Box::pin(async move {
            let local = me.core.local.fetch_sockets(&opts);
            if opts.flags.local {
                return Ok(Gathered::complete(local));
            }
            let timeout = opts
                .flags
                .timeout
                .unwrap_or(me.core.config.requests_timeout);
            let remote = me
                .gather(
                    FETCH_SOCKETS,
                    vec![("opts", wire::opts_value(&opts))],
                    timeout,
                )
                .await?;
            let mut all = Gathered::complete(local);
            all.values
                .extend(remote.values.iter().filter_map(SocketInfo::from_value));
            all.missing = remote.missing;
            all.missing_nodes = remote.missing_nodes;
            Ok(all)
        })
    }

    fn server_side_emit(&self, data: Vec<Value>) -> Result<(), AdapterError> {
        self.inner.publish(
            SERVER_SIDE_EMIT,
            Value::map([("packet", Value::Array(data))]),
        )
    }

    fn server_side_emit_with_ack(
        &self,
        data: Vec<Value>,
        timeout: Duration,
    ) -> AdapterFuture<Result<Gathered<Value>, AdapterError>> {
        let me = self.inner.clone();
        Box::pin(async move {
            me.gather(
                SERVER_SIDE_EMIT,
                vec![("packet", Value::Array(data))],
                timeout,
            )
            .await
        })
    }

    fn server_count(&self) -> AdapterFuture<Result<usize, AdapterError>> {
        let me = self.inner.clone();
        Box::pin(async move { me.core.server_count().await })
    }

    fn all_rooms(&self) -> AdapterFuture<Result<Gathered<Room>, AdapterError>> {
        Box::pin(std::future::ready(Err(AdapterError::Unsupported(
            "allRooms: the ClusterAdapter protocol has no such request",
        ))))
    }

    fn room_created(&self, room: &Room) {
        if self.inner.own_channel(room) {
            self.inner.change_subscription(true, room);
        }
    }

    fn room_deleted(&self, room: &Room) {
        self.inner.change_subscription(false, room);
    }
}

fn room_list(rooms: &[Room]) -> Value {
    Value::Array(rooms.iter().map(|r| Value::from(r.as_ref())).collect())
}
