//! The Engine.IO server object: configuration, handler and session registry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ferrio_proto::engine::{CloseReason, Protocol, Session, Sid, TransportKind, payload::Encoder};
use tokio::sync::mpsc;

use crate::driver::{Cmd, Driver, clock_now};
use crate::ws::WsStream;
use crate::{EngineConfig, EngineHandler, EngineSocket, Handshake};

/// An Engine.IO server: hand it to [`crate::EngineLayer`] or [`Engine::service`] to serve it.
///
/// Cloning is cheap; every clone is the same server.
pub struct Engine<H> {
    pub(crate) shared: Arc<Shared<H>>,
}

impl<H> Clone for Engine<H> {
    fn clone(&self) -> Self {
        Engine {
            shared: self.shared.clone(),
        }
    }
}

pub(crate) struct Shared<H> {
    pub(crate) config: EngineConfig,
    pub(crate) path: String,
    pub(crate) handler: H,
    pub(crate) http: crate::service::HttpSettings,
    sessions: Mutex<HashMap<Sid, Entry>>,
    closing: AtomicBool,
}

/// What the registry keeps of a session: how to reach its driver.
#[derive(Clone)]
pub(crate) struct Entry {
    /// The HTTP requests of a polling session (polls, posts, the upgrade probe). A session
    /// opened on WebSocket gets none of those, and no channel: it would cost its first block
    /// (about 1.3 KiB) on every idle connection. Commands are boxed, so that the block holds
    /// pointers (288 B) rather than commands (1.5 KiB).
    pub(crate) cmd: Option<mpsc::Sender<Box<Cmd>>>,
    pub(crate) socket: EngineSocket,
    pub(crate) post_busy: Arc<AtomicBool>,
}

/// Commands a driver may have queued at once from HTTP requests (polls, posts, probes).
const CMD_QUEUE: usize = 8;

impl<H: EngineHandler> Engine<H> {
    /// A server with these settings, calling `handler` for every session.
    ///
    /// # Panics
    ///
    /// When `config.cookie` is invalid (see [`crate::CookieConfig::validate`]).
    pub fn new(config: EngineConfig, handler: H) -> Self {
        let path = config.normalised_path();
        let http = crate::service::HttpSettings::new(&config);
        Engine {
            shared: Arc::new(Shared {
                config,
                path,
                handler,
                http,
                sessions: Mutex::new(HashMap::new()),
                closing: AtomicBool::new(false),
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.shared.config
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.shared.handler
    }

    /// Number of open sessions.
    pub fn session_count(&self) -> usize {
        self.shared.sessions().len()
    }

    /// Number of sessions whose polling GET is held by the server, waiting for data (as of
    /// the last time each driver went idle; see [`EngineSocket::is_poll_waiting`]).
    pub fn poll_waiting_count(&self) -> usize {
        self.shared
            .sessions()
            .values()
            .filter(|e| e.socket.is_poll_waiting())
            .count()
    }

    /// The handle of an open session.
    pub fn socket(&self, sid: Sid) -> Option<EngineSocket> {
        self.shared.sessions().get(&sid).map(|e| e.socket.clone())
    }

    /// Closes every session with `server shutting down` and refuses new handshakes.
    pub fn close(&self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        let sockets: Vec<EngineSocket> = self
            .shared
            .sessions()
            .values()
            .map(|e| e.socket.clone())
            .collect();
        for s in sockets {
            s.close_with(CloseReason::ServerShuttingDown);
        }
    }

    /// Whether [`Engine::close`] was called.
    pub fn is_closing(&self) -> bool {
        self.shared.closing.load(Ordering::SeqCst)
    }

    /// Opens a session: registers it and spawns its driver. For polling, returns the body of
    /// the handshake response (the open packet).
    pub(crate) fn open(
        &self,
        sid: Sid,
        handshake: Arc<Handshake>,
        transport: TransportKind,
        protocol: Protocol,
        ws: Option<WsStream>,
    ) -> Option<Option<Encoder>> {
        let cfg = &self.shared.config;
        let (mut config, now) = (cfg.session.clone(), clock_now());
        // As Node: no upgrade is offered (or accepted) while WebSocket is not allowed.
        config.allow_upgrades &= cfg.transports.websocket;
        let mut session = match protocol {
            Protocol::V4 => Session::new(sid, config, transport, now),
            Protocol::V3 { supports_binary } => {
                Session::new_v3(sid, config, transport, now, supports_binary)
            }
        };
        let open = match transport {
            TransportKind::Polling => session.poll_payload(),
            TransportKind::WebSocket => None,
        };
        let (cmd_tx, cmd_rx) = match transport {
            TransportKind::Polling => {
                let (tx, rx) = mpsc::channel(CMD_QUEUE);
                (Some(tx), Some(rx))
            }
            TransportKind::WebSocket => (None, None),
        };
        let (socket, frames_rx) = EngineSocket::new(
            sid,
            protocol,
            handshake,
            transport,
            cfg.session.max_buffered_packets,
        );
        {
            let mut sessions = self.shared.sessions();
            if sessions.len() >= cfg.max_sessions {
                tracing::warn!(
                    limit = cfg.max_sessions,
                    "session limit reached: handshake refused"
                );
                return None;
            }
            sessions.insert(
                sid,
                Entry {
                    cmd: cmd_tx,
                    socket: socket.clone(),
                    post_busy: Arc::new(AtomicBool::new(false)),
                },
            );
        }
        let driver = Box::new(Driver::new(
            self.clone(),
            session,
            socket,
            cmd_rx,
            frames_rx,
            ws,
        ));
        tokio::spawn(driver.run());
        Some(open)
    }

    pub(crate) fn entry(&self, sid: Sid) -> Option<Entry> {
        self.shared.sessions().get(&sid).cloned()
    }

    pub(crate) fn remove(&self, sid: Sid) {
        self.shared.sessions().remove(&sid);
    }
}

impl<H> Shared<H> {
    fn sessions(&self) -> MutexGuard<'_, HashMap<Sid, Entry>> {
        // A panic while the lock is held cannot leave the map inconsistent (single inserts
        // and removes), so a poisoned lock is still usable.
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<H> Engine<H> {
    /// A fresh session id from a cryptographic RNG.
    pub(crate) fn new_sid() -> Sid {
        // ThreadRng is a CSPRNG (ChaCha) seeded from the operating system.
        Sid::from_random_bytes(rand::random())
    }
}
