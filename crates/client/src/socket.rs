//! A namespace socket: the handle users emit and listen on.

use std::collections::HashMap;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use futures_util::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};

use ferrio_proto::socket::{Args, ArgsError, Encoded, Parser, RESERVED_EVENTS};

use crate::bounded;
use crate::config::Auth;
use crate::driver::{AckRequest, Command, Control};
use crate::error::{AckError, ConnectError, DisconnectDetails, DisconnectReason, EmitError};

/// An event received from the server.
#[derive(Clone)]
pub struct Event {
    name: String,
    args: Args,
    ack: Option<AckSender>,
}

impl Event {
    pub(crate) fn new(name: String, args: Args, ack: Option<AckSender>) -> Self {
        Event { name, args, ack }
    }

    /// The event name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The arguments as `T`: with one argument, that argument; with several, a tuple (or a
    /// `Vec`) of all of them. Binary attachments deserialise as `bytes::Bytes` or `Vec<u8>`.
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, ArgsError> {
        self.args.deserialize()
    }

    /// Argument `i` as `T`, `None` if there are fewer arguments.
    pub fn arg<T: DeserializeOwned>(&self, i: usize) -> Option<Result<T, ArgsError>> {
        self.args.deserialize_arg(i)
    }

    /// The raw arguments.
    pub fn args(&self) -> &Args {
        &self.args
    }

    /// The ack the server asked for, if it did. Every copy of the event shares it: only the
    /// first answer is sent.
    pub fn ack_sender(&self) -> Option<&AckSender> {
        self.ack.as_ref()
    }

    /// Answers the server's ack request with `data` (a tuple is several arguments, `()`
    /// none). Does nothing if the server asked for no ack, or if it was already answered.
    pub async fn ack<T: Serialize + ?Sized>(&self, data: &T) -> Result<(), EmitError> {
        match &self.ack {
            Some(a) => a.send(data).await,
            None => Ok(()),
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("name", &self.name)
            .field("args", &self.args)
            .field("ack", &self.ack.as_ref().map(|a| a.id))
            .finish()
    }
}

/// An event this client sends, as outgoing listeners and the offline buffer show it.
#[derive(Clone, Debug)]
pub struct OutgoingEvent {
    name: String,
    args: Args,
    ack: bool,
}

impl OutgoingEvent {
    pub(crate) fn new(name: String, args: Args, ack: bool) -> Self {
        OutgoingEvent { name, args, ack }
    }

    /// The event name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The arguments as `T` (one argument as itself, several as a tuple).
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, ArgsError> {
        self.args.deserialize()
    }

    /// Argument `i` as `T`, `None` if there are fewer arguments.
    pub fn arg<T: DeserializeOwned>(&self, i: usize) -> Option<Result<T, ArgsError>> {
        self.args.deserialize_arg(i)
    }

    /// The raw arguments.
    pub fn args(&self) -> &Args {
        &self.args
    }

    /// Whether the packet asks the server for an ack.
    pub fn wants_ack(&self) -> bool {
        self.ack
    }
}

/// Answers one ack request of the server. Cloneable; only the first answer is sent.
#[derive(Clone)]
pub struct AckSender {
    nsp: Arc<str>,
    id: u64,
    parser: Parser,
    sent: Arc<AtomicBool>,
    cmd: mpsc::Sender<Command>,
}

impl AckSender {
    pub(crate) fn new(nsp: Arc<str>, id: u64, parser: Parser, cmd: mpsc::Sender<Command>) -> Self {
        AckSender {
            nsp,
            id,
            parser,
            sent: Arc::default(),
            cmd,
        }
    }

    /// Sends the ack with `data` (a tuple is several arguments, `()` none). Later calls on
    /// this sender or its clones do nothing. Dropped if the socket is disconnected by then.
    pub async fn send<T: Serialize + ?Sized>(&self, data: &T) -> Result<(), EmitError> {
        let packet = self.parser.encode_ack(&self.nsp, self.id, data)?;
        if self.sent.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.cmd
            .send(Command::Ack {
                nsp: self.nsp.clone(),
                packet,
            })
            .await
            .map_err(|_| EmitError::Closed)
    }

    /// Whether an answer was already sent.
    pub fn is_sent(&self) -> bool {
        self.sent.load(Ordering::Acquire)
    }
}

/// What a socket reports, as a stream item (see [`Socket::events`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum SocketEvent {
    /// The namespace is connected.
    Connect(ConnectInfo),
    /// The namespace could not connect.
    ConnectError(ConnectError),
    /// The namespace was disconnected.
    Disconnect(DisconnectReason),
    /// An event from the server.
    Event(Event),
    /// This stream was full: `n` items were dropped before the next one.
    Lagged(u64),
}

/// Details of a namespace connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectInfo {
    /// The socket id given by the server (not the Engine.IO session id).
    pub id: String,
    /// Whether connection state recovery restored the previous session.
    pub recovered: bool,
}

type EventHandler = Arc<dyn Fn(Event) -> BoxFuture<'static, ()> + Send + Sync>;
type ConnectHandler = Arc<dyn Fn(ConnectInfo) -> BoxFuture<'static, ()> + Send + Sync>;
type ErrorHandler = Arc<dyn Fn(ConnectError) -> BoxFuture<'static, ()> + Send + Sync>;
type DisconnectHandler = Arc<dyn Fn(DisconnectReason) -> BoxFuture<'static, ()> + Send + Sync>;
type DetailsHandler = Arc<
    dyn Fn(DisconnectReason, Option<DisconnectDetails>) -> BoxFuture<'static, ()> + Send + Sync,
>;

type OutgoingHandler = Arc<dyn Fn(OutgoingEvent) -> BoxFuture<'static, ()> + Send + Sync>;

/// Identifies a listener added with [`Socket::on_any`], [`Socket::prepend_any`] or their
/// outgoing counterparts, to remove it alone (`offAny(listener)` in `socket.io-client`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListenerId(u64);

impl ListenerId {
    fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ListenerId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// A listener and what it needs to be removed.
pub(crate) struct Listener<H> {
    pub(crate) id: ListenerId,
    /// Called once, then removed (`socket.once`).
    pub(crate) once: bool,
    pub(crate) handler: H,
}

impl<H> Listener<H> {
    fn new(handler: H) -> Self {
        Listener {
            id: ListenerId::next(),
            once: false,
            handler,
        }
    }
}

/// Listeners of one socket. Read by the connection's task in short lock sections.
#[derive(Default)]
pub(crate) struct Listeners {
    pub(crate) events: HashMap<String, Vec<Listener<EventHandler>>>,
    pub(crate) any: Vec<Listener<EventHandler>>,
    pub(crate) any_outgoing: Vec<Listener<OutgoingHandler>>,
    pub(crate) connect: Vec<ConnectHandler>,
    pub(crate) connect_error: Vec<ErrorHandler>,
    pub(crate) disconnect: Vec<DisconnectHandler>,
    pub(crate) disconnect_details: Vec<DetailsHandler>,
    pub(crate) streams: Vec<bounded::Sink<SocketEvent>>,
}

/// What the connection's task shares with the handles of one socket.
pub(crate) struct Shared {
    pub(crate) nsp: Arc<str>,
    /// The packet format of the connection.
    pub(crate) parser: Parser,
    pub(crate) listeners: RwLock<Listeners>,
    pub(crate) status: Mutex<Status>,
    pub(crate) auth: Mutex<Option<Auth>>,
}

/// A snapshot of the socket's state, written by the connection's task.
#[derive(Clone, Debug, Default)]
pub(crate) struct Status {
    pub(crate) id: Option<String>,
    pub(crate) connected: bool,
    pub(crate) recovered: bool,
    pub(crate) active: bool,
    pub(crate) last_details: Option<DisconnectDetails>,
}

/// One namespace of a [`Client`](crate::Client): emit events, listen to them, answer acks.
///
/// Cheap to clone; every clone is the same socket. Listeners can be added at any time, but add
/// them before [`connect`](Socket::connect) to see every event.
///
/// Handlers run each on their own Tokio task, created in the order events arrive, so a slow
/// handler never delays the connection (pings, acks) nor other handlers, and a handler may
/// await `emit_with_ack` without deadlock. For strictly sequential processing use
/// [`events`](Socket::events).
#[derive(Clone)]
pub struct Socket {
    pub(crate) shared: Arc<Shared>,
    pub(crate) cmd: mpsc::Sender<Command>,
    pub(crate) ctl: mpsc::Sender<Control>,
    pub(crate) stream_capacity: usize,
}

impl Socket {
    /// The namespace (`/`, `/chat`, ...).
    pub fn namespace(&self) -> &str {
        &self.shared.nsp
    }

    /// Connects the namespace (and opens the connection if needed). Returns once queued; watch
    /// [`on_connect`](Socket::on_connect) or [`events`](Socket::events) for the outcome.
    pub async fn connect(&self) -> Result<(), EmitError> {
        self.control(Control::Connect {
            nsp: self.shared.nsp.clone(),
        })
        .await
    }

    /// Disconnects the namespace (`io client disconnect`); no reconnection. The connection
    /// closes when no namespace is left.
    pub async fn disconnect(&self) -> Result<(), EmitError> {
        self.control(Control::Disconnect {
            nsp: self.shared.nsp.clone(),
        })
        .await
    }

    /// Sets the CONNECT payload of this namespace (used from the next CONNECT on), replacing
    /// the client's.
    pub fn set_auth(&self, auth: Auth) {
        if let Ok(mut a) = self.shared.auth.lock() {
            *a = Some(auth);
        }
    }

    /// Emits `event` with `data` (a tuple is several arguments, `()` none, `bytes::Bytes`
    /// anywhere is a binary attachment). While disconnected the packet waits in the offline
    /// buffer and is sent on (re)connection, in order.
    pub async fn emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        self.emitter().emit(event, data).await
    }

    /// Emits a `message` event with `data` (`socket.send(...)` of `socket.io-client`; the
    /// server listens to it as `message`).
    pub async fn send<T: Serialize + ?Sized>(&self, data: &T) -> Result<(), EmitError> {
        self.emitter().send(data).await
    }

    /// An emitter whose packets are dropped, not buffered, while disconnected.
    pub fn volatile(&self) -> Emitter<'_> {
        self.emitter().volatile()
    }

    /// An emitter with the `compress` flag (default true). The flag asks for
    /// permessage-deflate on that packet; `ferrio-client` does not negotiate
    /// permessage-deflate, so, as `socket.io-client` on a connection without it, the flag is
    /// accepted and has no effect on the wire.
    pub fn compress(&self, compress: bool) -> Emitter<'_> {
        self.emitter().compress(compress)
    }

    /// An emitter whose acks time out after `timeout` (`socket.timeout(ms).emit(...)`).
    pub fn timeout(&self, timeout: Duration) -> Emitter<'_> {
        self.emitter().timeout(timeout)
    }

    /// Emits `event` and waits for the server's ack. Set a timeout with
    /// [`EmitWithAck::timeout`] (default: the client's `ack_timeout`, or none).
    pub fn emit_with_ack<'a, T: Serialize + ?Sized>(
        &'a self,
        event: &str,
        data: &T,
    ) -> EmitWithAck<'a> {
        self.emitter().emit_with_ack(event, data)
    }

    /// Calls `handler` for every `event` from the server.
    pub fn on<F, Fut>(&self, event: &str, handler: F)
    where
        F: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let h: EventHandler = Arc::new(move |e| Box::pin(handler(e)));
        self.listeners(|l| {
            l.events
                .entry(event.to_owned())
                .or_default()
                .push(Listener::new(h))
        });
    }

    /// Calls `handler` for the next `event` from the server only (`socket.once`).
    pub fn once<F, Fut>(&self, event: &str, handler: F)
    where
        F: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let h: EventHandler = Arc::new(move |e| Box::pin(handler(e)));
        let mut listener = Listener::new(h);
        listener.once = true;
        self.listeners(|l| l.events.entry(event.to_owned()).or_default().push(listener));
    }

    /// Calls `handler` for every event from the server, whatever its name, after the
    /// catch-all listeners already added (`onAny`).
    pub fn on_any<F, Fut>(&self, handler: F) -> ListenerId
    where
        F: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let h: EventHandler = Arc::new(move |e| Box::pin(handler(e)));
        self.add(|l| &mut l.any, h, false)
    }

    /// As [`on_any`](Socket::on_any), but before the catch-all listeners already added
    /// (`prependAny`).
    pub fn prepend_any<F, Fut>(&self, handler: F) -> ListenerId
    where
        F: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let h: EventHandler = Arc::new(move |e| Box::pin(handler(e)));
        self.add(|l| &mut l.any, h, true)
    }

    /// Removes one catch-all listener, or all of them with `None` (`offAny`).
    pub fn off_any(&self, listener: Option<ListenerId>) {
        self.remove(|l| &mut l.any, listener);
    }

    /// Calls `handler` with every event this socket sends, when it is sent (an emit
    /// buffered offline is seen when the buffer is flushed), with its name and arguments
    /// (`onAnyOutgoing`). Acks are not events and are not seen.
    pub fn on_any_outgoing<F, Fut>(&self, handler: F) -> ListenerId
    where
        F: Fn(OutgoingEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let h: OutgoingHandler = Arc::new(move |e| Box::pin(handler(e)));
        self.add(|l| &mut l.any_outgoing, h, false)
    }

    /// As [`on_any_outgoing`](Socket::on_any_outgoing), before the listeners already added
    /// (`prependAnyOutgoing`).
    pub fn prepend_any_outgoing<F, Fut>(&self, handler: F) -> ListenerId
    where
        F: Fn(OutgoingEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let h: OutgoingHandler = Arc::new(move |e| Box::pin(handler(e)));
        self.add(|l| &mut l.any_outgoing, h, true)
    }

    /// Removes one outgoing listener, or all of them with `None` (`offAnyOutgoing`).
    pub fn off_any_outgoing(&self, listener: Option<ListenerId>) {
        self.remove(|l| &mut l.any_outgoing, listener);
    }

    /// Removes every handler of `event`.
    pub fn off(&self, event: &str) {
        self.listeners(|l| {
            l.events.remove(event);
        });
    }

    /// The events waiting in the offline buffer (emitted while disconnected, sent on the
    /// next connection), oldest first (`socket.sendBuffer`). The `retries` queue is not
    /// part of it.
    pub async fn send_buffer(&self) -> Result<Vec<OutgoingEvent>, EmitError> {
        let (tx, rx) = oneshot::channel();
        self.control(Control::SendBuffer {
            nsp: self.shared.nsp.clone(),
            reply: tx,
        })
        .await?;
        rx.await.map_err(|_| EmitError::Closed)
    }

    /// Empties the offline buffer (`socket.sendBuffer = []`) and returns how many events it
    /// held. Their acks fail with [`AckError::Discarded`].
    pub async fn clear_send_buffer(&self) -> Result<usize, EmitError> {
        let (tx, rx) = oneshot::channel();
        self.control(Control::ClearSendBuffer {
            nsp: self.shared.nsp.clone(),
            reply: tx,
        })
        .await?;
        rx.await.map_err(|_| EmitError::Closed)
    }

    /// Calls `handler` on each namespace connection (reconnections included).
    pub fn on_connect<F, Fut>(&self, handler: F)
    where
        F: Fn(ConnectInfo) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let h: ConnectHandler = Arc::new(move |e| Box::pin(handler(e)));
        self.listeners(|l| l.connect.push(h));
    }

    /// Calls `handler` when a connection attempt fails.
    pub fn on_connect_error<F, Fut>(&self, handler: F)
    where
        F: Fn(ConnectError) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let h: ErrorHandler = Arc::new(move |e| Box::pin(handler(e)));
        self.listeners(|l| l.connect_error.push(h));
    }

    /// Calls `handler` when the namespace disconnects.
    pub fn on_disconnect<F, Fut>(&self, handler: F)
    where
        F: Fn(DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let h: DisconnectHandler = Arc::new(move |e| Box::pin(handler(e)));
        self.listeners(|l| l.disconnect.push(h));
    }

    /// Calls `handler` when the namespace disconnects, with the transport's details (the
    /// second argument of the `disconnect` event of `socket.io-client`): what closed or
    /// failed, for `transport close` and `transport error`; `None` for the other reasons.
    pub fn on_disconnect_details<F, Fut>(&self, handler: F)
    where
        F: Fn(DisconnectReason, Option<DisconnectDetails>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let h: DetailsHandler = Arc::new(move |r, d| Box::pin(handler(r, d)));
        self.listeners(|l| l.disconnect_details.push(h));
    }

    /// The details of the last disconnect (see
    /// [`on_disconnect_details`](Socket::on_disconnect_details)), also once a
    /// [`SocketEvent::Disconnect`] has been read from a stream.
    pub fn disconnect_details(&self) -> Option<DisconnectDetails> {
        self.status().last_details
    }

    /// Everything this socket reports, in order, as a stream. Bounded by the client's
    /// `event_stream_capacity`: a consumer that falls behind gets [`SocketEvent::Lagged`].
    pub fn events(&self) -> EventStream {
        let (sink, rx) = bounded::channel(self.stream_capacity);
        self.listeners(|l| l.streams.push(sink));
        EventStream { rx }
    }

    /// The socket id given by the server, while connected.
    pub fn id(&self) -> Option<String> {
        self.status().id
    }

    /// Whether the namespace is connected.
    pub fn connected(&self) -> bool {
        self.status().connected
    }

    /// Whether the last connection recovered the previous session (connection state
    /// recovery).
    pub fn recovered(&self) -> bool {
        self.status().recovered
    }

    /// Whether the socket is connected or trying to (false after a CONNECT_ERROR, a server
    /// or client disconnect, or when reconnection gave up).
    pub fn active(&self) -> bool {
        self.status().active
    }

    fn status(&self) -> Status {
        self.shared
            .status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Adds a listener to the list `list` picks, first or last.
    fn add<H>(
        &self,
        list: impl FnOnce(&mut Listeners) -> &mut Vec<Listener<H>>,
        handler: H,
        prepend: bool,
    ) -> ListenerId {
        let listener = Listener::new(handler);
        let id = listener.id;
        self.listeners(|l| match prepend {
            true => list(l).insert(0, listener),
            false => list(l).push(listener),
        });
        id
    }

    /// Removes listener `id` from the list `list` picks, or all of them.
    fn remove<H>(
        &self,
        list: impl FnOnce(&mut Listeners) -> &mut Vec<Listener<H>>,
        id: Option<ListenerId>,
    ) {
        self.listeners(|l| match id {
            Some(id) => list(l).retain(|h| h.id != id),
            None => list(l).clear(),
        });
    }

    fn listeners(&self, f: impl FnOnce(&mut Listeners)) {
        if let Ok(mut l) = self.shared.listeners.write() {
            f(&mut l);
        }
    }

    fn emitter(&self) -> Emitter<'_> {
        Emitter {
            socket: self,
            volatile: false,
            compress: true,
            timeout: None,
        }
    }

    async fn command(&self, cmd: Command) -> Result<(), EmitError> {
        self.cmd.send(cmd).await.map_err(|_| EmitError::Closed)
    }

    async fn control(&self, c: Control) -> Result<(), EmitError> {
        self.ctl.send(c).await.map_err(|_| EmitError::Closed)
    }
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("nsp", &self.shared.nsp)
            .field("status", &self.status())
            .finish()
    }
}

fn check_event(event: &str) -> Result<(), EmitError> {
    if RESERVED_EVENTS.contains(&event) {
        return Err(EmitError::ReservedEvent(event.to_owned()));
    }
    Ok(())
}

/// An emit with flags: [`volatile`](Emitter::volatile), [`compress`](Emitter::compress),
/// [`timeout`](Emitter::timeout), chainable in any order
/// (`socket.volatile().timeout(d).emit_with_ack(..)`).
#[derive(Debug)]
#[must_use = "an emitter does nothing until `emit` is called"]
pub struct Emitter<'a> {
    socket: &'a Socket,
    volatile: bool,
    compress: bool,
    timeout: Option<Duration>,
}

impl<'a> Emitter<'a> {
    /// Drop the packet, rather than buffer it, while disconnected.
    pub fn volatile(mut self) -> Self {
        self.volatile = true;
        self
    }

    /// The `compress` flag; see [`Socket::compress`].
    pub fn compress(mut self, compress: bool) -> Self {
        self.compress = compress;
        self
    }

    /// The ack timeout of [`emit_with_ack`](Emitter::emit_with_ack).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Emits `event` with `data`; see [`Socket::emit`].
    pub async fn emit<T: Serialize + ?Sized>(self, event: &str, data: &T) -> Result<(), EmitError> {
        check_event(event)?;
        let shared = &self.socket.shared;
        let packet = shared.parser.encode_event(&shared.nsp, None, event, data)?;
        let (tx, rx) = oneshot::channel();
        self.socket
            .command(Command::Emit {
                nsp: self.socket.shared.nsp.clone(),
                packet,
                volatile: self.volatile,
                ack: None,
                reply: tx,
            })
            .await?;
        rx.await.map_err(|_| EmitError::Closed)?
    }

    /// Emits a `message` event; see [`Socket::send`].
    pub async fn send<T: Serialize + ?Sized>(self, data: &T) -> Result<(), EmitError> {
        self.emit("message", data).await
    }

    /// Emits `event` and waits for the server's ack; see [`Socket::emit_with_ack`].
    pub fn emit_with_ack<T: Serialize + ?Sized>(self, event: &str, data: &T) -> EmitWithAck<'a> {
        EmitWithAck {
            socket: self.socket,
            packet: check_event(event).and_then(|()| {
                let shared = &self.socket.shared;
                Ok(shared.parser.encode_event(&shared.nsp, None, event, data)?)
            }),
            timeout: self.timeout,
            volatile: self.volatile,
        }
    }
}

/// An emit waiting for its ack. Await it (after an optional [`timeout`](Self::timeout)) to get
/// the server's answer.
#[must_use = "an emit with ack does nothing until awaited"]
pub struct EmitWithAck<'a> {
    socket: &'a Socket,
    packet: Result<Encoded, EmitError>,
    timeout: Option<Duration>,
    volatile: bool,
}

impl EmitWithAck<'_> {
    /// Fails with [`AckError::Timeout`] if no ack arrives within `timeout` (with `retries`,
    /// each try gets this timeout).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl<'a> IntoFuture for EmitWithAck<'a> {
    type Output = Result<AckResponse, AckError>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let packet = self.packet?;
            let (ack_tx, ack_rx) = oneshot::channel();
            let (tx, rx) = oneshot::channel();
            self.socket
                .command(Command::Emit {
                    nsp: self.socket.shared.nsp.clone(),
                    packet,
                    volatile: self.volatile,
                    ack: Some(AckRequest {
                        tx: ack_tx,
                        timeout: self.timeout,
                    }),
                    reply: tx,
                })
                .await?;
            rx.await.map_err(|_| EmitError::Closed)??;
            // The connection's task enforces the timeout (it knows when the packet was sent
            // and resends with `retries`).
            match ack_rx.await {
                Ok(r) => r.map(AckResponse),
                Err(_) => Err(AckError::Closed),
            }
        })
    }
}

/// The arguments of an ack from the server.
#[derive(Clone, Debug, PartialEq)]
pub struct AckResponse(pub Args);

impl AckResponse {
    /// The arguments as `T` (one argument as itself, several as a tuple).
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, ArgsError> {
        self.0.deserialize()
    }

    /// Argument `i` as `T`.
    pub fn arg<T: DeserializeOwned>(&self, i: usize) -> Option<Result<T, ArgsError>> {
        self.0.deserialize_arg(i)
    }
}

/// The stream of [`Socket::events`].
pub struct EventStream {
    rx: bounded::Receiver<SocketEvent>,
}

impl EventStream {
    /// The next item, `None` once the client is gone.
    pub async fn next(&mut self) -> Option<SocketEvent> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for EventStream {
    type Item = SocketEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SocketEvent>> {
        // Items queued before the overflow come first, then the count of the dropped ones.
        self.get_mut().rx.poll_next(cx, SocketEvent::Lagged)
    }
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream").finish_non_exhaustive()
    }
}
