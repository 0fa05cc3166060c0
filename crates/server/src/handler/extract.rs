//! The extractors.

use serde::de::DeserializeOwned;

use super::{
    ConnectParts, DisconnectParts, FromConnectParts, FromDisconnectParts, FromMessageParts,
    MessageParts, Rejection,
};
use crate::ack::AckSender;
use crate::socket::{DisconnectReason, SocketRef};

/// The payload, deserialised: an event's arguments (one argument as `T`, several as a tuple
/// `T`), or a connection's auth object. A payload that does not fit rejects the handler: it is
/// logged and an awaited ack is answered with an error.
#[derive(Debug, Clone, PartialEq)]
pub struct Data<T>(pub T);

/// As [`Data`], but a payload that does not fit is handed to the handler as the error.
#[derive(Debug)]
pub struct TryData<T>(pub Result<T, Rejection>);

/// Node's second `disconnect` argument: what failed, for a transport error (`message too
/// big`, `write failed`, ...); `None` for the other reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisconnectDescription(pub Option<&'static str>);

/// The event name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event(pub String);

/// A clone of a value given to the builder with `with_state`.
#[derive(Debug, Clone)]
pub struct State<T>(pub T);

/// A clone of a value stored in the socket's extensions (`socket.extensions().insert(v)`).
#[derive(Debug, Clone)]
pub struct Extension<T>(pub T);

/// A clone of an extension of the HTTP request that opened the connection, as a tower layer
/// in front of the server put it there (an authenticated user, a decoded session cookie):
/// what Node's `socket.request` carries. Missing, it rejects the handler (logged; an awaited
/// ack is answered with an error). See [`crate::Handshake::extensions`].
///
/// ```
/// use ferrio::{HttpExtension, SocketIo, SocketRef};
///
/// #[derive(Clone)]
/// struct User(String);
///
/// let (_layer, io) = SocketIo::builder().build_layer();
/// io.ns("/", async |socket: SocketRef, HttpExtension(user): HttpExtension<User>| {
///     socket.emit("welcome", &user.0).ok();
/// });
/// ```
#[derive(Debug, Clone)]
pub struct HttpExtension<T>(pub T);

/// As [`HttpExtension`], but `None` when the request had no such extension.
#[derive(Debug, Clone)]
pub struct MaybeHttpExtension<T>(pub Option<T>);

fn args<T: DeserializeOwned>(parts: &MessageParts) -> Result<T, Rejection> {
    parts
        .args
        .deserialize()
        .map_err(|e| Rejection(format!("invalid payload for `{}`: {e}", parts.event)))
}

fn auth<T: DeserializeOwned>(parts: &ConnectParts) -> Result<T, Rejection> {
    T::deserialize(&parts.auth).map_err(|e| Rejection(format!("invalid auth payload: {e}")))
}

impl FromMessageParts for SocketRef {
    fn from_message_parts(socket: &SocketRef, _: &mut MessageParts) -> Result<Self, Rejection> {
        Ok(socket.clone())
    }
}

impl FromConnectParts for SocketRef {
    fn from_connect_parts(socket: &SocketRef, _: &ConnectParts) -> Result<Self, Rejection> {
        Ok(socket.clone())
    }
}

impl FromDisconnectParts for SocketRef {
    fn from_disconnect_parts(socket: &SocketRef, _: &DisconnectParts) -> Result<Self, Rejection> {
        Ok(socket.clone())
    }
}

impl FromDisconnectParts for DisconnectReason {
    fn from_disconnect_parts(_: &SocketRef, parts: &DisconnectParts) -> Result<Self, Rejection> {
        Ok(parts.reason)
    }
}

impl FromDisconnectParts for DisconnectDescription {
    fn from_disconnect_parts(_: &SocketRef, parts: &DisconnectParts) -> Result<Self, Rejection> {
        Ok(DisconnectDescription(parts.description))
    }
}

impl FromDisconnectParts for DisconnectParts {
    fn from_disconnect_parts(_: &SocketRef, parts: &DisconnectParts) -> Result<Self, Rejection> {
        Ok(parts.clone())
    }
}

impl<T: DeserializeOwned> FromMessageParts for Data<T> {
    fn from_message_parts(_: &SocketRef, parts: &mut MessageParts) -> Result<Self, Rejection> {
        args(parts).map(Data)
    }
}

impl<T: DeserializeOwned> FromConnectParts for Data<T> {
    fn from_connect_parts(_: &SocketRef, parts: &ConnectParts) -> Result<Self, Rejection> {
        auth(parts).map(Data)
    }
}

impl<T: DeserializeOwned> FromMessageParts for TryData<T> {
    fn from_message_parts(_: &SocketRef, parts: &mut MessageParts) -> Result<Self, Rejection> {
        Ok(TryData(args(parts)))
    }
}

impl<T: DeserializeOwned> FromConnectParts for TryData<T> {
    fn from_connect_parts(_: &SocketRef, parts: &ConnectParts) -> Result<Self, Rejection> {
        Ok(TryData(auth(parts)))
    }
}

impl FromMessageParts for Event {
    fn from_message_parts(_: &SocketRef, parts: &mut MessageParts) -> Result<Self, Rejection> {
        Ok(Event(parts.event.clone()))
    }
}

impl FromMessageParts for AckSender {
    fn from_message_parts(socket: &SocketRef, parts: &mut MessageParts) -> Result<Self, Rejection> {
        Ok(AckSender::new(socket.clone(), parts.ack_id.take()))
    }
}

fn state<T: Clone + Send + Sync + 'static>(socket: &SocketRef) -> Result<State<T>, Rejection> {
    socket.state::<T>().map(State).ok_or_else(|| {
        Rejection(format!(
            "no state of type {} (add it with SocketIoBuilder::with_state)",
            std::any::type_name::<T>()
        ))
    })
}

fn extension<T: Clone + Send + Sync + 'static>(
    socket: &SocketRef,
) -> Result<Extension<T>, Rejection> {
    socket
        .extensions()
        .get::<T>()
        .map(Extension)
        .ok_or_else(|| {
            Rejection(format!(
                "no extension of type {}",
                std::any::type_name::<T>()
            ))
        })
}

impl<T: Clone + Send + Sync + 'static> FromMessageParts for State<T> {
    fn from_message_parts(socket: &SocketRef, _: &mut MessageParts) -> Result<Self, Rejection> {
        state(socket)
    }
}

impl<T: Clone + Send + Sync + 'static> FromConnectParts for State<T> {
    fn from_connect_parts(socket: &SocketRef, _: &ConnectParts) -> Result<Self, Rejection> {
        state(socket)
    }
}

impl<T: Clone + Send + Sync + 'static> FromDisconnectParts for State<T> {
    fn from_disconnect_parts(socket: &SocketRef, _: &DisconnectParts) -> Result<Self, Rejection> {
        state(socket)
    }
}

impl<T: Clone + Send + Sync + 'static> FromMessageParts for Extension<T> {
    fn from_message_parts(socket: &SocketRef, _: &mut MessageParts) -> Result<Self, Rejection> {
        extension(socket)
    }
}

impl<T: Clone + Send + Sync + 'static> FromDisconnectParts for Extension<T> {
    fn from_disconnect_parts(socket: &SocketRef, _: &DisconnectParts) -> Result<Self, Rejection> {
        extension(socket)
    }
}

fn http_extension<T: Clone + Send + Sync + 'static>(socket: &SocketRef) -> Option<T> {
    socket.handshake().extensions().get::<T>().cloned()
}

fn required_http_extension<T: Clone + Send + Sync + 'static>(
    socket: &SocketRef,
) -> Result<HttpExtension<T>, Rejection> {
    http_extension(socket).map(HttpExtension).ok_or_else(|| {
        Rejection(format!(
            "no HTTP request extension of type {}",
            std::any::type_name::<T>()
        ))
    })
}

impl<T: Clone + Send + Sync + 'static> FromConnectParts for HttpExtension<T> {
    fn from_connect_parts(socket: &SocketRef, _: &ConnectParts) -> Result<Self, Rejection> {
        required_http_extension(socket)
    }
}

impl<T: Clone + Send + Sync + 'static> FromMessageParts for HttpExtension<T> {
    fn from_message_parts(socket: &SocketRef, _: &mut MessageParts) -> Result<Self, Rejection> {
        required_http_extension(socket)
    }
}

impl<T: Clone + Send + Sync + 'static> FromDisconnectParts for HttpExtension<T> {
    fn from_disconnect_parts(socket: &SocketRef, _: &DisconnectParts) -> Result<Self, Rejection> {
        required_http_extension(socket)
    }
}

impl<T: Clone + Send + Sync + 'static> FromConnectParts for MaybeHttpExtension<T> {
    fn from_connect_parts(socket: &SocketRef, _: &ConnectParts) -> Result<Self, Rejection> {
        Ok(MaybeHttpExtension(http_extension(socket)))
    }
}

impl<T: Clone + Send + Sync + 'static> FromMessageParts for MaybeHttpExtension<T> {
    fn from_message_parts(socket: &SocketRef, _: &mut MessageParts) -> Result<Self, Rejection> {
        Ok(MaybeHttpExtension(http_extension(socket)))
    }
}

impl<T: Clone + Send + Sync + 'static> FromDisconnectParts for MaybeHttpExtension<T> {
    fn from_disconnect_parts(socket: &SocketRef, _: &DisconnectParts) -> Result<Self, Rejection> {
        Ok(MaybeHttpExtension(http_extension(socket)))
    }
}

/// The raw arguments, taken from the event (send them again unchanged with `emit(event,
/// &args)`: they stay separate arguments, binary included).
impl FromMessageParts for ferrio_proto::socket::Args {
    fn from_message_parts(_: &SocketRef, parts: &mut MessageParts) -> Result<Self, Rejection> {
        Ok(std::mem::replace(
            &mut parts.args,
            ferrio_proto::socket::Args::empty(),
        ))
    }
}
