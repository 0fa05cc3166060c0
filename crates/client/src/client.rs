//! The client: one connection (Engine.IO session) shared by its namespace sockets.

use std::fmt;
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::mpsc;

use crate::config::{ClientBuilder, Config};
use crate::driver::{Command, Control, Driver, Registry};
use crate::error::{BuildError, EmitError};
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
        let driver = Driver::new(
            config.clone(),
            endpoint,
            cmd_rx,
            cmd.downgrade(),
            ctl_rx,
            registry.clone(),
        );
        tokio::spawn(driver.run());
        Ok(Client {
            cmd,
            ctl,
            registry,
            config,
        })
    }

    /// The socket of namespace `nsp` (`/` when empty). The same namespace always gives the
    /// same socket. It is not connected yet: add listeners, then call [`Socket::connect`].
    pub fn socket(&self, nsp: &str) -> Socket {
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
                        listeners: RwLock::new(Listeners::default()),
                        status: Mutex::new(Status::default()),
                        auth: Mutex::new(None),
                    })
                })
                .clone(),
            Err(_) => Arc::new(Shared {
                nsp: nsp.clone(),
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
