//! The classic format of `@socket.io/redis-adapter` (`createAdapter`, 8.x).
//!
//! Channels of namespace `nsp` with prefix `key` (default `socket.io`):
//! `{key}#{nsp}#` (broadcasts to the namespace; prefix-subscribed, which also covers
//! `{key}#{nsp}#{room}#`, used for a broadcast to exactly one room), `{key}-request#{nsp}#`
//! (requests; its subscriber count is the server count, so each server subscribes once),
//! `{key}-response#{nsp}#` and `{key}-response#{nsp}#{uid}#` (answers).
//!
//! Broadcasts are msgpack `[uid, {type: 2, data, nsp}, {rooms, except, flags}]`. Requests are
//! JSON `{uid, requestId?, type, ...}` except a broadcast with acks (type 7, msgpack); answers
//! are JSON, except acks (type 9, msgpack). Answers from Ferrio carry an extra `uid` (and
//! `sid` on acks), which Node ignores.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrio_proto::engine::Sid;
use ferrio_proto::value::{Value, msgpack};

use super::core::{Core, random_alnum};
use super::wire;
use super::{Backend, ClusterConfig, ClusterStats, MessageHandler};
use crate::AckSink;
use crate::adapter::{
    Adapter, AdapterError, AdapterFactory, AdapterFuture, BroadcastOptions, BroadcastPacket,
    Gathered, LocalNamespace, Room, SocketInfo,
};

const SOCKETS: i64 = 0;
const ALL_ROOMS: i64 = 1;
const REMOTE_JOIN: i64 = 2;
const REMOTE_LEAVE: i64 = 3;
const REMOTE_DISCONNECT: i64 = 4;
const REMOTE_FETCH: i64 = 5;
const SERVER_SIDE_EMIT: i64 = 6;
const BROADCAST: i64 = 7;
const BROADCAST_CLIENT_COUNT: i64 = 8;
const BROADCAST_ACK: i64 = 9;

/// Settings of the classic format.
#[derive(Clone, Debug)]
struct Channels {
    broadcast: String,
    request: String,
    response: String,
    specific_response: String,
    publish_on_specific_response_channel: bool,
}

/// The adapter of one namespace in the classic `@socket.io/redis-adapter` format.
pub struct ClassicAdapter {
    inner: Arc<Classic>,
}

struct Classic {
    core: Arc<Core>,
    ch: Channels,
}

impl std::fmt::Debug for ClassicAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClassicAdapter")
            .field("uid", &self.inner.core.uid)
            .field("ns", &self.inner.core.local.name())
            .finish_non_exhaustive()
    }
}

/// Makes a [`ClassicAdapter`] for each namespace of one server.
#[derive(Clone)]
pub struct ClassicFactory {
    backend: Arc<dyn Backend>,
    config: ClusterConfig,
    key: String,
    specific: bool,
    stats: Arc<ClusterStats>,
}

impl std::fmt::Debug for ClassicFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClassicFactory")
            .field("key", &self.key)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ClassicFactory {
    /// The channel prefix (Node's `key`). Default `socket.io`.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    /// Answers go to the requester's own response channel (Node's
    /// `publishOnSpecificResponseChannel`). Default off.
    pub fn publish_on_specific_response_channel(mut self, on: bool) -> Self {
        self.specific = on;
        self
    }

    /// The counters of every namespace's adapter.
    pub fn stats(&self) -> Arc<ClusterStats> {
        self.stats.clone()
    }
}

impl AdapterFactory for ClassicFactory {
    fn create(&self, ns: LocalNamespace) -> Arc<dyn Adapter> {
        let nsp = ns.name().to_owned();
        let uid = random_alnum(6);
        let key = &self.key;
        let response = format!("{key}-response#{nsp}#");
        let ch = Channels {
            broadcast: format!("{key}#{nsp}#"),
            request: format!("{key}-request#{nsp}#"),
            specific_response: format!("{response}{uid}#"),
            response,
            publish_on_specific_response_channel: self.specific,
        };
        let core = Arc::new(Core::new(
            uid,
            ch.request.clone(),
            ns,
            self.backend.clone(),
            self.config.clone(),
            self.stats.clone(),
        ));
        Arc::new(ClassicAdapter {
            inner: Arc::new(Classic { core, ch }),
        })
    }
}

impl ClassicAdapter {
    /// A factory for [`crate::SocketIoBuilder::adapter`]: every namespace of the server gets
    /// an adapter on `backend` (key `socket.io`; see [`ClassicFactory`] for the options).
    pub fn factory(backend: Arc<dyn Backend>, config: ClusterConfig) -> ClassicFactory {
        ClassicFactory {
            backend,
            config,
            key: "socket.io".to_owned(),
            specific: false,
            stats: Arc::default(),
        }
    }

    /// This server's id in the cluster (6 characters, as Node's `uid2(6)`).
    pub fn uid(&self) -> &str {
        &self.inner.core.uid
    }
}

fn json(v: &Value) -> Vec<u8> {
    v.to_json()
}

impl Classic {
    fn handler(self: &Arc<Self>, f: fn(&Classic, &str, Bytes)) -> MessageHandler {
        let weak = Arc::downgrade(self);
        Arc::new(move |channel, payload| {
            if let Some(me) = weak.upgrade() {
                f(&me, channel, payload);
            }
        })
    }

    fn response_channel(&self, requester: Option<&str>) -> String {
        match requester {
            Some(uid) if self.ch.publish_on_specific_response_channel => {
                format!("{}{uid}#", self.ch.response)
            }
            _ => self.ch.response.clone(),
        }
    }

    /// A message on `{key}#{nsp}#...`: a broadcast from another server.
    fn on_broadcast(&self, channel: &str, payload: Bytes) {
        let core = &self.core;
        let Some(rest) = channel.strip_prefix(self.ch.broadcast.as_str()) else {
            return core.ignored();
        };
        let room = rest.strip_suffix('#').unwrap_or(rest);
        if !room.is_empty() && !core.local.has_room(room) {
            return core.ignored();
        }
        let msg = match msgpack::decode(&payload) {
            Ok(v) => v,
            Err(e) => return core.malformed(&e.to_string()),
        };
        let Some([uid, packet, opts]) =
            msg.as_array().and_then(|a| <&[Value; 3]>::try_from(a).ok())
        else {
            return core.malformed("broadcast is not [uid, packet, opts]");
        };
        if uid.as_str() == Some(core.uid.as_str()) {
            return core.ignored();
        }
        core.seen(uid.as_str());
        let nsp = packet.get("nsp").and_then(Value::as_str).unwrap_or("/");
        if nsp != core.local.name() {
            return core.ignored();
        }
        let Some(data) = packet.get("data").and_then(Value::as_array) else {
            return core.malformed("broadcast packet without data");
        };
        match BroadcastPacket::from_data(nsp, core.local.parser(), data.to_vec()) {
            Ok(p) => core.local.broadcast(&p, &wire::opts(Some(opts))),
            Err(e) => core.malformed(&e.to_string()),
        }
    }

    /// A message on the request channel.
    fn on_request(&self, _channel: &str, payload: Bytes) {
        let core = &self.core;
        let req = match wire::decode(&payload) {
            Ok(v) => v,
            Err(e) => return core.malformed(&e),
        };
        let uid = req.get("uid").and_then(Value::as_str);
        let request_id = req.get("requestId").and_then(Value::as_str);
        if uid == Some(core.uid.as_str()) || request_id.is_some_and(|id| core.is_own_request(id)) {
            return core.ignored();
        }
        core.seen(uid);
        let answer = |body: Vec<(&str, Value)>| {
            let mut fields = vec![("requestId", Value::from(request_id.unwrap_or("")))];
            fields.extend(body);
            fields.push(("uid", Value::from(core.uid.as_str())));
            core.publish_response(self.response_channel(uid), json(&Value::map(fields)));
        };
        match req.get("type").and_then(Value::as_i64) {
            Some(SOCKETS) if request_id.is_some() => {
                let ids = core.local.socket_ids(&wire::rooms(req.get("rooms")));
                let ids = ids.iter().map(|s| Value::from(s.as_str())).collect();
                answer(vec![("sockets", Value::Array(ids))]);
            }
            Some(ALL_ROOMS) if request_id.is_some() => {
                let rooms = core.local.rooms();
                let rooms = rooms.iter().map(|r| Value::from(r.as_ref())).collect();
                answer(vec![("rooms", Value::Array(rooms))]);
            }
            Some(t @ (REMOTE_JOIN | REMOTE_LEAVE | REMOTE_DISCONNECT)) => {
                if let Some(opts) = req.get("opts") {
                    let opts = wire::opts(Some(opts));
                    let rooms = wire::rooms(req.get("rooms"));
                    match t {
                        REMOTE_JOIN => core.local.sockets_join(&opts, &rooms),
                        REMOTE_LEAVE => core.local.sockets_leave(&opts, &rooms),
                        _ => core.local.disconnect_sockets(&opts, close_flag(&req)),
                    }
                    return;
                }
                // The legacy form names one socket and waits for `{requestId}`.
                let Some(sid) = req.get("sid").and_then(Value::as_str) else {
                    return core.malformed("remote join/leave/disconnect without opts or sid");
                };
                if !core.local.is_socket_room(sid) {
                    return;
                }
                let opts = BroadcastOptions {
                    rooms: vec![Room::Owned(sid.to_owned())],
                    ..Default::default()
                };
                let room = req
                    .get("room")
                    .and_then(Value::as_str)
                    .map(|r| Room::Owned(r.to_owned()));
                match (t, room) {
                    (REMOTE_JOIN, Some(room)) => core.local.sockets_join(&opts, &[room]),
                    (REMOTE_LEAVE, Some(room)) => core.local.sockets_leave(&opts, &[room]),
                    (REMOTE_DISCONNECT, _) => {
                        core.local.disconnect_sockets(&opts, close_flag(&req))
                    }
                    _ => return core.malformed("legacy join/leave without a room"),
                }
                answer(vec![]);
            }
            Some(REMOTE_FETCH) if request_id.is_some() => {
                let opts = wire::opts(req.get("opts"));
                let sockets = core.local.fetch_sockets(&opts);
                let sockets = sockets.iter().map(SocketInfo::to_value).collect();
                answer(vec![("sockets", Value::Array(sockets))]);
            }
            Some(SERVER_SIDE_EMIT) => {
                let Some(data) = req.get("data").and_then(Value::as_array) else {
                    return core.malformed("serverSideEmit without data");
                };
                let ack = request_id.map(|id| {
                    let id = id.to_owned();
                    let core = self.core.clone();
                    // Always the common response channel, as Node does.
                    let channel = self.ch.response.clone();
                    Box::new(move |arg: Value| {
                        let body = Value::map([
                            ("type", Value::from(SERVER_SIDE_EMIT)),
                            ("requestId", Value::from(id)),
                            ("data", arg),
                            ("uid", Value::from(core.uid.as_str())),
                        ]);
                        core.publish_response(channel, json(&body));
                    }) as crate::adapter::ServerAckFn
                });
                core.local.server_side_event(data.to_vec(), ack);
            }
            Some(BROADCAST) => self.on_broadcast_with_ack(&req, uid, request_id),
            _ => core.ignored(),
        }
    }

    /// A broadcast with acks from another server: client count first, then each ack.
    fn on_broadcast_with_ack(&self, req: &Value, uid: Option<&str>, request_id: Option<&str>) {
        let core = &self.core;
        let (Some(id), Some(packet)) = (request_id, req.get("packet")) else {
            return core.malformed("broadcast with ack without requestId or packet");
        };
        let nsp = packet.get("nsp").and_then(Value::as_str).unwrap_or("/");
        if nsp != core.local.name() {
            return core.ignored();
        }
        let Some(data) = packet.get("data").and_then(Value::as_array) else {
            return core.malformed("broadcast packet without data");
        };
        let packet = match BroadcastPacket::from_data(nsp, core.local.parser(), data.to_vec()) {
            Ok(p) => p,
            Err(e) => return core.malformed(&e.to_string()),
        };
        let opts = wire::opts(req.get("opts"));
        let channel = self.response_channel(uid);
        let (core2, id2, channel2) = (self.core.clone(), id.to_owned(), channel.clone());
        let on_ack: crate::AckCallback = Arc::new(move |sid: Sid, args| {
            let body = Value::map([
                ("type", Value::from(BROADCAST_ACK)),
                ("requestId", Value::from(id2.as_str())),
                ("packet", wire::first_arg(&args)),
                ("uid", Value::from(core2.uid.as_str())),
                ("sid", Value::from(sid.as_str())),
            ]);
            core2.publish_response(channel2.clone(), msgpack::encode(&body));
        });
        core.local
            .broadcast_with_ack(&packet, &opts, on_ack, |count| {
                let body = Value::map([
                    ("type", Value::from(BROADCAST_CLIENT_COUNT)),
                    ("requestId", Value::from(id)),
                    ("clientCount", Value::from(count)),
                    ("uid", Value::from(core.uid.as_str())),
                ]);
                core.publish_response(channel, json(&body));
            });
    }

    /// A message on a response channel: an answer to one of this server's requests.
    fn on_response(&self, _channel: &str, payload: Bytes) {
        let core = &self.core;
        let res = match wire::decode(&payload) {
            Ok(v) => v,
            Err(e) => return core.malformed(&e),
        };
        let Some(id) = res.get("requestId").and_then(Value::as_str) else {
            return core.ignored();
        };
        let from = res.get("uid").and_then(Value::as_str);
        if let Some(sink) = core.ack_sink(id) {
            core.seen(from);
            match res.get("type").and_then(Value::as_i64) {
                Some(BROADCAST_CLIENT_COUNT) => {
                    let n = res.get("clientCount").and_then(Value::as_u64).unwrap_or(0);
                    sink.remote_count(n as usize);
                }
                Some(BROADCAST_ACK) => {
                    let sid = res
                        .get("sid")
                        .and_then(Value::as_str)
                        .and_then(|s| Sid::parse(s).ok());
                    sink.remote_ack(sid, res.get("packet").cloned().unwrap_or_default());
                }
                _ => core.ignored(),
            }
            return;
        }
        let values = if let Some(sockets) = res.get("sockets").and_then(Value::as_array) {
            sockets.to_vec()
        } else if let Some(rooms) = res.get("rooms").and_then(Value::as_array) {
            rooms.to_vec()
        } else if res.get("type").and_then(Value::as_i64) == Some(SERVER_SIDE_EMIT) {
            vec![res.get("data").cloned().unwrap_or_default()]
        } else {
            Vec::new()
        };
        if core.answer(id, from, values) {
            core.seen(from);
        } else {
            core.ignored();
        }
    }

    fn publish_request(&self, body: &Value) -> Result<(), AdapterError> {
        self.core.publish(self.ch.request.clone(), json(body))
    }

    fn filter_request(
        &self,
        ty: i64,
        opts: &BroadcastOptions,
        extra: (&str, Value),
    ) -> Result<(), AdapterError> {
        self.publish_request(&Value::map([
            ("uid", Value::from(self.core.uid.as_str())),
            ("type", Value::from(ty)),
            ("opts", wire::filter_value(opts)),
            extra,
        ]))
    }

    /// A request answered by every other server; `expected` counts them.
    async fn gather(
        self: Arc<Self>,
        body: Vec<(&'static str, Value)>,
        timeout: Duration,
    ) -> Result<Gathered<Value>, AdapterError> {
        let servers = self.core.server_count().await?;
        if servers <= 1 {
            return Ok(Gathered::complete(Vec::new()));
        }
        let id = random_alnum(6);
        let mut fields = vec![
            ("uid", Value::from(self.core.uid.as_str())),
            ("requestId", Value::from(id.as_str())),
        ];
        fields.extend(body);
        let msg = (self.ch.request.clone(), json(&Value::map(fields)));
        self.core.request(id, servers - 1, msg, timeout).await
    }
}

fn close_flag(req: &Value) -> bool {
    req.get("close").and_then(Value::as_bool).unwrap_or(false)
}

impl Adapter for ClassicAdapter {
    fn init(&self) -> AdapterFuture<Result<(), AdapterError>> {
        let me = self.inner.clone();
        Box::pin(async move {
            me.core.start();
            let b = &me.core.backend;
            let err = |e: super::BackendError| AdapterError::Backend(e.0);
            b.subscribe_prefix(me.ch.broadcast.clone(), me.handler(Classic::on_broadcast))
                .await
                .map_err(err)?;
            b.subscribe(me.ch.request.clone(), me.handler(Classic::on_request))
                .await
                .map_err(err)?;
            b.subscribe(me.ch.response.clone(), me.handler(Classic::on_response))
                .await
                .map_err(err)?;
            b.subscribe(
                me.ch.specific_response.clone(),
                me.handler(Classic::on_response),
            )
            .await
            .map_err(err)?;
            Ok(())
        })
    }

    fn close(&self) -> AdapterFuture<()> {
        let me = self.inner.clone();
        Box::pin(async move {
            me.core.close();
            let b = &me.core.backend;
            let _ = b.unsubscribe_prefix(me.ch.broadcast.clone()).await;
            for ch in [&me.ch.request, &me.ch.response, &me.ch.specific_response] {
                let _ = b.unsubscribe(ch.clone()).await;
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
        let msg = Value::Array(vec![
            Value::from(me.core.uid.as_str()),
            packet.to_value()?,
            wire::opts_value(opts),
        ]);
        let channel = match opts.rooms.as_slice() {
            [room] => format!("{}{room}#", me.ch.broadcast),
            _ => me.ch.broadcast.clone(),
        };
        me.core.publish(channel, msgpack::encode(&msg))
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
            let id = random_alnum(6);
            let request = Value::map([
                ("uid", Value::from(me.core.uid.as_str())),
                ("requestId", Value::from(id.as_str())),
                ("type", Value::from(BROADCAST)),
                ("packet", packet.to_value()?),
                ("opts", wire::opts_value(opts)),
            ]);
            let timeout = opts
                .flags
                .timeout
                .unwrap_or(me.core.config.requests_timeout);
            let payload = msgpack::encode(&request);
            result = me.core.publish_acked(id, acks.clone(), timeout, || {
                me.core.publish(me.ch.request.clone(), payload)
            });
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
        me.filter_request(REMOTE_JOIN, opts, ("rooms", room_list(rooms)))
    }

    fn sockets_leave(&self, opts: &BroadcastOptions, rooms: &[Room]) -> Result<(), AdapterError> {
        let me = &self.inner;
        me.core.local.sockets_leave(opts, rooms);
        if opts.flags.local {
            return Ok(());
        }
        me.filter_request(REMOTE_LEAVE, opts, ("rooms", room_list(rooms)))
    }

    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) -> Result<(), AdapterError> {
        let me = &self.inner;
        me.core.local.disconnect_sockets(opts, close);
        if opts.flags.local {
            return Ok(());
        }
        me.filter_request(REMOTE_DISCONNECT, opts, ("close", Value::Bool(close)))
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
            let timeout = me.core.config.requests_timeout;
            let remote = me
                .clone()
                .gather(
                    vec![
                        ("type", Value::from(REMOTE_FETCH)),
                        ("opts", wire::filter_value(&opts)),
                    ],
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
        let me = &self.inner;
        me.publish_request(&Value::map([
            ("uid", Value::from(me.core.uid.as_str())),
            ("type", Value::from(SERVER_SIDE_EMIT)),
            ("data", Value::Array(data)),
        ]))
    }

    fn server_side_emit_with_ack(
        &self,
        data: Vec<Value>,
        timeout: Duration,
    ) -> AdapterFuture<Result<Gathered<Value>, AdapterError>> {
        let me = self.inner.clone();
        Box::pin(async move {
            me.gather(
                vec![
                    ("type", Value::from(SERVER_SIDE_EMIT)),
                    ("data", Value::Array(data)),
                ],
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
        let me = self.inner.clone();
        Box::pin(async move {
            let mut rooms: std::collections::BTreeSet<Room> =
                me.core.local.rooms().into_iter().collect();
            let timeout = me.core.config.requests_timeout;
            let remote = me
                .gather(vec![("type", Value::from(ALL_ROOMS))], timeout)
                .await?;
            rooms.extend(wire::rooms(Some(&Value::Array(remote.values.clone()))));
            Ok(Gathered {
                values: rooms.into_iter().collect(),
                missing: remote.missing,
                missing_nodes: remote.missing_nodes,
            })
        })
    }
}

fn room_list(rooms: &[Room]) -> Value {
    Value::Array(rooms.iter().map(|r| Value::from(r.as_ref())).collect())
}
