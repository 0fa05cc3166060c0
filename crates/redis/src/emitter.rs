//! An emitter for processes that are not Socket.IO servers (a worker, a cron job): it
//! publishes in the `@socket.io/redis-emitter` 5.x format, which the classic Redis adapter of
//! Ferrio and of Node both understand.

use bytes::Bytes;
use ferrio::Room;
use ferrio_proto::socket::RESERVED_EVENTS;
use ferrio_proto::value::{self, Value, msgpack};
use fred::clients::Client;
use fred::interfaces::{ClientLike, PubsubInterface};
use fred::prelude::{Builder, Config};
use serde::Serialize;

use crate::{RedisConfig, RedisError};

/// Why an emit failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EmitterError {
    /// A reserved event name (`connect`, `disconnect`, ...), refused as Node's emitter does.
    #[error("\"{0}\" is a reserved event name")]
    ReservedEvent(String),
    /// The data could not be encoded.
    #[error("cannot encode the payload: {0}")]
    Encode(String),
    /// Redis failed.
    #[error(transparent)]
    Redis(#[from] RedisError),
}

/// Publishes events to the sockets of a cluster, from outside it. Cheap to clone; the
/// operators return new emitters.
///
/// ```no_run
/// # async fn run() -> Result<(), ferrio_redis::EmitterError> {
/// use ferrio_redis::{Emitter, RedisConfig};
///
/// let emitter = Emitter::connect("redis://127.0.0.1:6379", RedisConfig::default()).await?;
/// emitter.to("lobby").emit("news", &("hello", 1)).await?;
/// emitter.of("/admin").sockets_join(&["audit"]).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Emitter {
    client: Client,
    key: String,
    nsp: String,
    rooms: Vec<Room>,
    except: Vec<Room>,
    volatile: bool,
    compress: Option<bool>,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("key", &self.key)
            .field("nsp", &self.nsp)
            .field("rooms", &self.rooms)
            .field("except", &self.except)
            .finish_non_exhaustive()
    }
}

fn rooms_value(rooms: &[Room]) -> Value {
    Value::Array(rooms.iter().map(|r| Value::from(r.as_ref())).collect())
}

impl Emitter {
    /// Connects to Redis (key `socket.io`, namespace `/`).
    pub async fn connect(url: &str, config: RedisConfig) -> Result<Emitter, RedisError> {
        let redis_config = Config::from_url(url).map_err(|e| RedisError(e.to_string()))?;
        let mut builder = Builder::from_config(redis_config);
        builder.with_performance_config(|p| p.default_command_timeout = config.command_timeout);
        let client = builder.build().map_err(|e| RedisError(e.to_string()))?;
        tokio::time::timeout(config.connect_timeout, client.init())
            .await
            .map_err(|_| RedisError(format!("no connection to {url} within the timeout")))?
            .map_err(|e| RedisError(e.to_string()))?;
        Ok(Emitter {
            client,
            key: "socket.io".to_owned(),
            nsp: "/".to_owned(),
            rooms: Vec::new(),
            except: Vec::new(),
            volatile: false,
            compress: None,
        })
    }

    /// The channel prefix (the adapters' `key`). Default `socket.io`.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    /// The emitter of another namespace (a leading `/` is added when missing).
    pub fn of(&self, nsp: &str) -> Emitter {
        let mut e = self.clone();
        e.nsp = if nsp.starts_with('/') {
            nsp.to_owned()
        } else {
            format!("/{nsp}")
        };
        e.rooms.clear();
        e.except.clear();
        e
    }

    /// Only sockets in this room (union over several calls).
    pub fn to(&self, room: impl Into<Room>) -> Emitter {
        let mut e = self.clone();
        e.rooms.push(room.into());
        e
    }

    /// Same as [`Emitter::to`].
    pub fn within(&self, room: impl Into<Room>) -> Emitter {
        self.to(room)
    }

    /// Leaves out sockets in this room.
    pub fn except(&self, room: impl Into<Room>) -> Emitter {
        let mut e = self.clone();
        e.except.push(room.into());
        e
    }

    /// Dropped for clients that cannot take it now.
    pub fn volatile(&self) -> Emitter {
        let mut e = self.clone();
        e.volatile = true;
        e
    }

    /// Per-message compression flag.
    pub fn compress(&self, compress: bool) -> Emitter {
        let mut e = self.clone();
        e.compress = Some(compress);
        e
    }

    /// Emits an event (a tuple is several arguments; `bytes::Bytes` is binary).
    pub async fn emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), EmitterError> {
        if RESERVED_EVENTS.contains(&event) {
            return Err(EmitterError::ReservedEvent(event.to_owned()));
        }
        let mut items = vec![Value::from(event)];
        items.extend(value::to_args(data).map_err(|e| EmitterError::Encode(e.to_string()))?);
        let mut flags = Vec::new();
        if self.volatile {
            flags.push(("volatile".to_owned(), Value::Bool(true)));
        }
        if let Some(c) = self.compress {
            flags.push(("compress".to_owned(), Value::Bool(c)));
        }
        let msg = Value::Array(vec![
            Value::from("emitter"),
            Value::map([
                ("type", Value::from(2)),
                ("data", Value::Array(items)),
                ("nsp", Value::from(self.nsp.as_str())),
            ]),
            Value::map([
                ("rooms", rooms_value(&self.rooms)),
                ("flags", Value::Map(flags)),
                ("except", rooms_value(&self.except)),
            ]),
        ]);
        let mut channel = format!("{}#{}#", self.key, self.nsp);
        if let [room] = self.rooms.as_slice() {
            channel.push_str(room);
            channel.push('#');
        }
        self.publish(channel, Bytes::from(msgpack::encode(&msg)))
            .await
    }

    /// Makes the matching sockets join rooms, on every server.
    pub async fn sockets_join(&self, rooms: &[&str]) -> Result<(), EmitterError> {
        self.request(
            2,
            (
                "rooms",
                Value::Array(rooms.iter().map(|r| Value::from(*r)).collect()),
            ),
        )
        .await
    }

    /// Makes the matching sockets leave rooms, on every server.
    pub async fn sockets_leave(&self, rooms: &[&str]) -> Result<(), EmitterError> {
        self.request(
            3,
            (
                "rooms",
                Value::Array(rooms.iter().map(|r| Value::from(*r)).collect()),
            ),
        )
        .await
    }

    /// Disconnects the matching sockets (`close`: their whole connections), on every server.
    pub async fn disconnect_sockets(&self, close: bool) -> Result<(), EmitterError> {
        self.request(4, ("close", Value::Bool(close))).await
    }

    /// Sends an event to the server-side handlers of every server (no acks, as in Node).
    pub async fn server_side_emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), EmitterError> {
        if RESERVED_EVENTS.contains(&event) {
            return Err(EmitterError::ReservedEvent(event.to_owned()));
        }
        let mut items = vec![Value::from(event)];
        items.extend(value::to_args(data).map_err(|e| EmitterError::Encode(e.to_string()))?);
        let body = Value::map([
            ("uid", Value::from("emitter")),
            ("type", Value::from(6)),
            ("data", Value::Array(items)),
        ]);
        self.publish(self.request_channel(), Bytes::from(body.to_json()))
            .await
    }

    fn request_channel(&self) -> String {
        format!("{}-request#{}#", self.key, self.nsp)
    }

    async fn request(&self, ty: i64, extra: (&str, Value)) -> Result<(), EmitterError> {
        let body = Value::map([
            ("type", Value::from(ty)),
            (
                "opts",
                Value::map([
                    ("rooms", rooms_value(&self.rooms)),
                    ("except", rooms_value(&self.except)),
                ]),
            ),
            extra,
        ]);
        self.publish(self.request_channel(), Bytes::from(body.to_json()))
            .await
    }

    async fn publish(&self, channel: String, payload: Bytes) -> Result<(), EmitterError> {
        let _: () = self
            .client
            .publish(channel, payload)
            .await
            .map_err(|e| RedisError(e.to_string()))?;
        Ok(())
    }
}
