//! The client: one connection (Engine.IO session) shared by its namespace sockets.

use std::fmt;
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::mpsc;

use crate::config::{ClientBuilder, Config};
use crate::driver::{Command, Control, Driver, Registry};
use crate::error::{BuildError, EmitError};
use crate::events::{ManagerEvent, ManagerEventStream, ManagerListeners};
use crate::socket::{Listeners, Shared, Socket, Status};
use crate::transport::Endpoint;

/// A Socket.IO client: the `Manager` of `socket.io-client`.
///
/// It owns one connection to the server, opened when the first namespace connects and shared
/// by every [`Socket`] it creates (namespaces are multiplexed over it). It answers pings,
/// upgrades polling to WebSocket, and reconnects with exponential backoff, connecting every
/// active namespace again. Cheap to clone; every clone is the same client.
#[derive(Clone)]
pub struct Client {
    cmd: mpsc::Sender<Command>,
    ctl: mpsc::Sender<Control>,
    registry: Registry,
    manager: Arc<ManagerListeners>,
    config: Arc<Config>,
}

impl Client {
    /// A builder for a client of the server at `url` (`http://`, `https://`, `ws://` or
    /// `wss://`; the path is set with [`ClientBuilder::path`]).
    pub fn builder(url: &str) -> ClientBuilder {
        ClientBuilder::new(url)
    }

    pub(crate) fn start(config: Config) -> Result<Client, BuildError> {
        let config = Arc::new(config);
        let endpoint = Endpoint::new(config.clone())?;
        let (cmd, cmd_rx) = mpsc::channel(config.command_capacity);
        let (ctl, ctl_rx) = mpsc::channel(config.command_capacity);
        let registry: Registry = Arc::default();
        let manager: Arc<ManagerListeners> = Arc::default();
        let driver = Driver::new(
            config.clone(),
            endpoint,
            cmd_rx,
            cmd.downgrade(),
            ctl_rx,
            registry.clone(),
            manager.clone(),
        );
        if config.auto_connect {
            // The channel is new and empty: this cannot fail.
            let _ = ctl.try_send(Control::Open);
        }
        tokio::spawn(driver.run());
        Ok(Client {
            cmd,
            ctl,
            registry,
            manager,
            config,
        })
    }

    /// The socket of namespace `nsp` (`/` when empty). The same namespace always gives the
    /// same socket.
    ///
    /// With `auto_connect` (the default, as in `socket.io-client`) the socket connects by
    /// itself, and a socket that is no longer active (after a disconnect) connects again when
    /// asked for; listeners added right after this call see every event, since nothing
    /// arrives before the server's answer. Without it, add listeners, then call
    /// [`Socket::connect`].
    pub fn socket(&self, nsp: &str) -> Socket {
        let socket = self.socket_inner(nsp);
        if self.config.auto_connect && !socket.active() {
            let connect = Control::Connect {
                nsp: socket.shared.nsp.clone(),
            };
            if let Err(mpsc::error::TrySendError::Full(connect)) = self.ctl.try_send(connect) {
                let ctl = self.ctl.clone();
                tokio::spawn(async move { ctl.send(connect).await });
            }
        }
        socket
    }

    /// Opens the connection without connecting a namespace (`manager.open()`); `build`
    /// does it with `auto_connect`. Sockets connect over it with [`Socket::connect`].
    pub async fn open(&self) -> Result<(), EmitError> {
        self.ctl
            .send(Control::Open)
            .await
            .map_err(|_| EmitError::Closed)
    }

    /// Calls `handler` for every event of the connection (the `Manager` events of
    /// `socket.io-client`: `open`, `close`, `error`, `ping`, `packet`, `reconnect_attempt`,
    /// `reconnect`, `reconnect_error`, `reconnect_failed`), each on its own task.
    pub fn on_event<F, Fut>(&self, handler: F)
    where
        F: Fn(ManagerEvent) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.manager.on(handler);
    }

    /// The events of the connection as a stream (see [`on_event`](Client::on_event)),
    /// bounded by `event_stream_capacity`.
    pub fn events(&self) -> ManagerEventStream {
        self.manager.stream(self.config.event_stream_capacity)
    }

    fn socket_inner(&self, nsp: &str) -> Socket {
        let nsp: Arc<str> = if nsp.starts_with('/') {
            Arc::from(nsp)
        } else {
            Arc::from(format!("/{nsp}"))
        };
        let shared = match self.registry.lock() {
            Ok(mut r) => r
                .entry(nsp.clone())
                .or_insert_with(|| {
                    Arc::new(Shared {
                        nsp: nsp.clone(),
                        parser: self.config.parser,
                        listeners: RwLock::new(Listeners::default()),
                        status: Mutex::new(Status::default()),
                        auth: Mutex::new(None),
                    })
                })
                .clone(),
            Err(_) => Arc::new(Shared {
                nsp: nsp.clone(),
                parser: self.config.parser,
                listeners: RwLock::new(Listeners::default()),
                status: Mutex::new(Status::default()),
                auth: Mutex::new(None),
            }),
        };
        Socket {
            shared,
            cmd: self.cmd.clone(),
            ctl: self.ctl.clone(),
            stream_capacity: self.config.event_stream_capacity,
        }
    }

    /// Disconnects every namespace (`io client disconnect`) and closes the connection.
    pub async fn disconnect(&self) -> Result<(), EmitError> {
        self.ctl
            .send(Control::CloseAll)
            .await
            .map_err(|_| EmitError::Closed)
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .registry
            .lock()
            .map(|r| r.keys().map(|k| k.to_string()).collect::<Vec<_>>())
            .unwrap_or_default();
        f.debug_struct("Client")
            .field("url", &self.config.url)
            .field("namespaces", &names)
            .finish()
    }
}
