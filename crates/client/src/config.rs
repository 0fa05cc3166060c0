//! Client options and their builder. Defaults are those of `socket.io-client` 4.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ferrio_proto::socket::Parser;
use futures_util::future::BoxFuture;
use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use serde_json::Value;

use crate::client::Client;
use crate::error::BuildError;
use crate::proxy::Proxy;

/// A transport the client may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    WebSocket,
}

/// The CONNECT payload sent for each namespace (`socket.handshake.auth` on the server).
#[derive(Clone, Default)]
pub enum Auth {
    /// No payload.
    #[default]
    None,
    /// This JSON value (an object).
    Value(Value),
    /// A function called before every CONNECT, reconnections included (to refresh a token).
    Fn(Arc<dyn Fn() -> BoxFuture<'static, Value> + Send + Sync>),
}

impl Auth {
    /// An auth function; its future runs on its own task, so it may take time.
    pub fn from_fn<F, Fut>(f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Value> + Send + 'static,
    {
        Auth::Fn(Arc::new(move || Box::pin(f())))
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Value(v) => f.debug_tuple("Value").field(v).finish(),
            Auth::Fn(_) => f.write_str("Fn(..)"),
        }
    }
}

/// The settled configuration of a client.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) url: Uri,
    pub(crate) secure: bool,
    pub(crate) path: String,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: HeaderMap,
    pub(crate) auth: Auth,
    pub(crate) transports: Vec<Transport>,
    pub(crate) upgrade: bool,
    pub(crate) timeout: Duration,
    pub(crate) auto_connect: bool,
    pub(crate) request_timeout: Option<Duration>,
    pub(crate) reconnection: bool,
    pub(crate) reconnection_attempts: u32,
    pub(crate) reconnection_delay: Duration,
    pub(crate) reconnection_delay_max: Duration,
    pub(crate) randomization_factor: f64,
    pub(crate) ack_timeout: Option<Duration>,
    pub(crate) retries: Option<u32>,
    pub(crate) root_certificates: Vec<Vec<u8>>,
    pub(crate) client_certificate: Option<(Vec<Vec<u8>>, Vec<u8>)>,
    pub(crate) reject_unauthorized: bool,
    pub(crate) with_credentials: bool,
    pub(crate) proxy: Option<Proxy>,
    pub(crate) command_capacity: usize,
    pub(crate) send_buffer_capacity: usize,
    pub(crate) receive_buffer_capacity: usize,
    pub(crate) event_stream_capacity: usize,
    pub(crate) max_pending_acks: usize,
    pub(crate) max_buffered_packets: usize,
    pub(crate) max_message_size: usize,
    pub(crate) max_attachments: usize,
    pub(crate) jitter_seed: Option<u64>,
    pub(crate) parser: Parser,
}

/// Builds a [`Client`]. Create it with [`Client::builder`].
///
/// Every option has the default of `socket.io-client` 4, given on its method. Every queue has
/// a bound, also given on its method, with what happens when it is full.
#[derive(Debug)]
#[must_use]
pub struct ClientBuilder {
    url: String,
    config: Config,
    error: Option<BuildError>,
}

impl ClientBuilder {
    pub(crate) fn new(url: &str) -> Self {
        ClientBuilder {
            url: url.to_owned(),
            config: Config {
                url: Uri::from_static("http://localhost/"),
                secure: false,
                path: "/socket.io/".to_owned(),
                query: Vec::new(),
                headers: HeaderMap::new(),
                auth: Auth::None,
                transports: vec![Transport::Polling, Transport::WebSocket],
                upgrade: true,
                timeout: Duration::from_secs(20),
                auto_connect: true,
                request_timeout: None,
                reconnection: true,
                reconnection_attempts: u32::MAX,
                reconnection_delay: Duration::from_secs(1),
                reconnection_delay_max: Duration::from_secs(5),
                randomization_factor: 0.5,
                ack_timeout: None,
                retries: None,
                root_certificates: Vec::new(),
                client_certificate: None,
                reject_unauthorized: true,
                with_credentials: false,
                proxy: None,
                command_capacity: 256,
                send_buffer_capacity: 1024,
                receive_buffer_capacity: 1024,
                event_stream_capacity: 1024,
                max_pending_acks: 4096,
                max_buffered_packets: 4096,
                max_message_size: 16 * 1024 * 1024,
                max_attachments: 10,
                jitter_seed: None,
                parser: Parser::Default,
            },
            error: None,
        }
    }

    /// The packet format (Node's `parser` option): [`Parser::Default`] (`socket.io-parser`),
    /// or [`Parser::MsgPack`] for a server that uses `socket.io-msgpack-parser`. Both sides
    /// must use the same one. Default [`Parser::Default`].
    pub fn parser(mut self, parser: Parser) -> Self {
        self.config.parser = parser;
        self
    }

    /// The Engine.IO endpoint path. Default `/socket.io/`.
    pub fn path(mut self, path: &str) -> Self {
        let mut p = String::new();
        if !path.starts_with('/') {
            p.push('/');
        }
        p.push_str(path);
        if !p.ends_with('/') {
            p.push('/');
        }
        self.config.path = p;
        self
    }

    /// Adds a query parameter to every request (seen by the server in `socket.handshake.query`).
    pub fn query(mut self, key: &str, value: &str) -> Self {
        self.config.query.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Adds a header to every HTTP request and to the WebSocket handshake.
    pub fn extra_header(mut self, name: &str, value: &str) -> Self {
        match (
            HeaderName::try_from(name),
            HeaderValue::try_from(value.to_owned()),
        ) {
            (Ok(n), Ok(v)) => {
                self.config.headers.append(n, v);
            }
            _ => self.error = Some(BuildError::InvalidHeader(name.to_owned())),
        }
        self
    }

    /// Adds all these headers (see [`extra_header`](Self::extra_header)).
    pub fn extra_headers(mut self, headers: HeaderMap) -> Self {
        self.config.headers.extend(headers);
        self
    }

    /// The CONNECT payload of every namespace, unless a socket sets its own. Default none.
    pub fn auth(mut self, auth: Value) -> Self {
        self.config.auth = Auth::Value(auth);
        self
    }

    /// An auth function, called before every CONNECT (reconnections included).
    pub fn auth_fn<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Value> + Send + 'static,
    {
        self.config.auth = Auth::from_fn(f);
        self
    }

    /// The transports to use, the first one to open the connection. Default
    /// `[Polling, WebSocket]`: open with polling, then upgrade. `[WebSocket]` connects
    /// directly over WebSocket; `[Polling]` never upgrades.
    pub fn transports(mut self, transports: &[Transport]) -> Self {
        if transports.is_empty() {
            self.error = Some(BuildError::NoTransport);
        }
        self.config.transports = transports.to_vec();
        self
    }

    /// Whether to upgrade from polling to WebSocket when both are allowed. Default true.
    pub fn upgrade(mut self, upgrade: bool) -> Self {
        self.config.upgrade = upgrade;
        self
    }

    /// How long the Engine.IO handshake (and a WebSocket probe) may take. Default 20 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }

    /// Whether [`build`](Self::build) opens the connection and
    /// [`Client::socket`](crate::Client::socket) connects the socket by itself, as
    /// `socket.io-client`'s `autoConnect`. Default true. Off, nothing happens until
    /// [`Socket::connect`](crate::Socket::connect) (or [`Client::open`](crate::Client::open)).
    pub fn auto_connect(mut self, on: bool) -> Self {
        self.config.auto_connect = on;
        self
    }

    /// How long one polling request (GET or POST) may take; a request that takes longer is a
    /// transport error (`xhr poll error` / `xhr post error`) and the client reconnects.
    /// The `requestTimeout` option of `engine.io-client`. Default none, as there: a GET then
    /// waits as long as the server holds it (the heartbeat bounds that), and a POST gets
    /// `pingInterval + pingTimeout`, after which the server has given up on us anyway.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = Some(timeout);
        self
    }

    /// Whether to reconnect after the connection is lost. Default true.
    pub fn reconnection(mut self, on: bool) -> Self {
        self.config.reconnection = on;
        self
    }

    /// Most reconnection attempts before giving up. Default unlimited.
    pub fn reconnection_attempts(mut self, attempts: u32) -> Self {
        self.config.reconnection_attempts = attempts;
        self
    }

    /// The first reconnection delay, doubled at each attempt. Default 1 s.
    pub fn reconnection_delay(mut self, delay: Duration) -> Self {
        self.config.reconnection_delay = delay;
        self
    }

    /// The largest reconnection delay. Default 5 s.
    pub fn reconnection_delay_max(mut self, delay: Duration) -> Self {
        self.config.reconnection_delay_max = delay;
        self
    }

    /// The jitter of reconnection delays, `0.0..=1.0`. Default 0.5.
    pub fn randomization_factor(mut self, factor: f64) -> Self {
        self.config.randomization_factor = factor;
        self
    }

    /// Seeds the jitter RNG, for reproducible reconnection delays. Default: from entropy.
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.config.jitter_seed = Some(seed);
        self
    }

    /// The default timeout of every acknowledgement. Default none (wait forever, or until the
    /// socket disconnects).
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.config.ack_timeout = Some(timeout);
        self
    }

    /// At-least-once delivery: every emit waits for the server's ack (requested even for a
    /// plain `emit`), with [`ack_timeout`](Self::ack_timeout), and is sent again up to
    /// `retries` times. Packets go one at a time, in order. Default off.
    pub fn retries(mut self, retries: u32) -> Self {
        self.config.retries = Some(retries);
        self
    }

    /// Trusts this root certificate (DER) for `https`/`wss`, on top of the webpki roots.
    pub fn add_root_certificate(mut self, der: Vec<u8>) -> Self {
        self.config.root_certificates.push(der);
        self
    }

    /// Presents this certificate chain (DER, leaf first) and its private key (DER: PKCS#8,
    /// PKCS#1 or SEC1) to a server that asks for one (the `cert` and `key` options of
    /// `engine.io-client`). Default none.
    pub fn client_certificate(mut self, chain: Vec<Vec<u8>>, key: Vec<u8>) -> Self {
        self.config.client_certificate = Some((chain, key));
        self
    }

    /// Whether to refuse a server certificate that does not verify against the roots
    /// (`rejectUnauthorized`). Default true. **False accepts any certificate**: the
    /// connection is encrypted but anyone on the path can impersonate the server; for tests
    /// and private networks only.
    pub fn reject_unauthorized(mut self, reject: bool) -> Self {
        self.config.reject_unauthorized = reject;
        self
    }

    /// Whether to keep cookies (`withCredentials`). Default false, as `engine.io-client` in
    /// Node, which has a cookie jar only with this option: then every `Set-Cookie` of the
    /// server (a load balancer's sticky-session cookie, the `io` cookie) is kept and sent
    /// back on later polling requests and WebSocket handshakes. Off, no `Cookie` header is
    /// sent (headers given with [`extra_header`](Self::extra_header) still are).
    pub fn with_credentials(mut self, on: bool) -> Self {
        self.config.with_credentials = on;
        self
    }

    /// Reaches the server through this HTTP proxy (`http://host:port`; no proxy
    /// authentication yet): WebSocket and HTTPS go through a `CONNECT` tunnel, plain HTTP
    /// polling requests are sent to the proxy in absolute form. Node's client does this
    /// with an `agent`. Default none (direct).
    pub fn proxy(mut self, url: &str) -> Self {
        match Proxy::parse(url) {
            Ok(p) => self.config.proxy = Some(p),
            Err(e) => self.error = Some(e),
        }
        self
    }

    /// Bound of the queue from handles to the connection's task. When full, `emit` and the
    /// other calls wait for room. Default 256.
    pub fn command_capacity(mut self, capacity: usize) -> Self {
        self.config.command_capacity = capacity.max(1);
        self
    }

    /// Bound of each socket's offline buffer (emits made while disconnected, or waiting in the
    /// `retries` queue). When full, `emit` fails with [`EmitError::BufferFull`](crate::EmitError).
    /// Default 1024 packets.
    pub fn send_buffer_capacity(mut self, capacity: usize) -> Self {
        self.config.send_buffer_capacity = capacity;
        self
    }

    /// Bound of each socket's receive buffer (events that arrive before the CONNECT reply, as
    /// in connection state recovery). When full, later events are dropped and logged.
    /// Default 1024.
    pub fn receive_buffer_capacity(mut self, capacity: usize) -> Self {
        self.config.receive_buffer_capacity = capacity;
        self
    }

    /// Bound of each [`Socket::events`](crate::Socket::events) stream. When full, events are
    /// dropped for that stream, which then yields [`SocketEvent::Lagged`](crate::SocketEvent)
    /// with the count. Default 1024.
    pub fn event_stream_capacity(mut self, capacity: usize) -> Self {
        self.config.event_stream_capacity = capacity.max(1);
        self
    }

    /// Most acknowledgements awaited at once per socket. Past it, `emit_with_ack` fails with
    /// [`EmitError::TooManyPendingAcks`](crate::EmitError). Default 4096.
    pub fn max_pending_acks(mut self, max: usize) -> Self {
        self.config.max_pending_acks = max;
        self
    }

    /// Most Engine.IO frames waiting to be written. When reached, the connection's task stops
    /// taking commands (so `emit` waits) until the transport catches up. Default 4096.
    pub fn max_buffered_packets(mut self, max: usize) -> Self {
        self.config.max_buffered_packets = max.max(64);
        self
    }

    /// The largest WebSocket message or polling response accepted from the server, in bytes.
    /// A larger one is a transport error (the client reconnects). Default 16 MiB.
    pub fn max_message_size(mut self, max: usize) -> Self {
        self.config.max_message_size = max;
        self
    }

    /// Builds the client and starts its connection task (idle until a socket connects).
    ///
    /// Must be called inside a Tokio runtime.
    pub fn build(mut self) -> Result<Client, BuildError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let uri: Uri = self
            .url
            .parse()
            .map_err(|_| BuildError::InvalidUrl(self.url.clone()))?;
        let secure = match uri.scheme_str() {
            Some("http" | "ws") => false,
            Some("https" | "wss") => true,
            _ => return Err(BuildError::InvalidUrl(self.url)),
        };
        if uri.host().is_none() {
            return Err(BuildError::InvalidUrl(self.url));
        }
        self.config.url = uri;
        self.config.secure = secure;
        Client::start(self.config)
    }
}
