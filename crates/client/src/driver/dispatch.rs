//! The Socket.IO layer of the driver: packets from the server, and handing events to
//! handlers and streams.

use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;
use serde_json::Value;

use ferrio_proto::socket::{Encoded, Packet, PacketData};

use super::Driver;
use super::nsp::{NspState, last_string};
use crate::bounded;
use crate::error::{ConnectError, ConnectErrorKind, DisconnectDetails, DisconnectReason};
use crate::events::{ManagerEvent, PacketInfo, PacketKind};
use crate::socket::{AckSender, ConnectInfo, Event, SocketEvent};

impl Driver {
    pub(super) fn on_packet(&mut self, packet: Packet) {
        let now = Instant::now();
        self.manager
            .emit(ManagerEvent::Packet(packet_info(&packet)));
        let nsp: Arc<str> = Arc::from(packet.nsp.as_str());
        let receive_cap = self.config.receive_buffer_capacity;
        let Some(n) = self.sockets.get_mut(&nsp) else {
            tracing::debug!(nsp = %nsp, "packet for an unknown namespace ignored");
            return;
        };
        match packet.data {
            PacketData::Connect(payload) => {
                if n.state != NspState::Connecting {
                    return;
                }
                #[derive(Deserialize)]
                struct Reply {
                    sid: String,
                    pid: Option<String>,
                }
                let reply = payload.and_then(|p| serde_json::from_slice::<Reply>(&p).ok());
                let Some(reply) = reply else {
                    n.state = NspState::Disconnected;
                    n.active = false;
                    n.sync();
                    let err = ConnectError::new(
                        ConnectErrorKind::Server,
                        "It seems you are trying to reach a Socket.IO server in v2.x with a v3.x client, but they are not compatible",
                    );
                    self.notify(&nsp, SocketEvent::ConnectError(err));
                    return self.maybe_close_engine();
                };
                n.recovered = reply.pid.is_some() && reply.pid == n.pid;
                n.pid = reply.pid;
                n.id = Some(reply.sid.clone());
                n.state = NspState::Connected;
                n.sync();
                let info = ConnectInfo {
                    id: reply.sid,
                    recovered: n.recovered,
                };
                let received: Vec<Packet> = n.receive_buffer.drain(..).collect();
                let buffered: Vec<Encoded> = n.send_buffer.drain(..).map(|(p, _)| p).collect();
                for p in received {
                    self.on_packet(p);
                }
                for p in &buffered {
                    self.send_event(&nsp, p);
                }
                self.drain_queue(&nsp, true, now);
                self.notify(&nsp, SocketEvent::Connect(info));
            }
            PacketData::ConnectError(payload) => {
                #[derive(Deserialize)]
                struct Refusal {
                    message: Option<String>,
                    data: Option<Value>,
                }
                let (message, data) = match serde_json::from_slice::<Refusal>(&payload) {
                    Ok(r) => (r.message.unwrap_or_default(), r.data),
                    // v2 servers send a plain string.
                    Err(_) => (
                        serde_json::from_slice::<String>(&payload).unwrap_or_default(),
                        None,
                    ),
                };
                n.state = NspState::Disconnected;
                n.active = false;
                n.fail_sent_acks();
                n.sync();
                let err = ConnectError {
                    kind: ConnectErrorKind::Server,
                    message,
                    data,
                };
                self.notify(&nsp, SocketEvent::ConnectError(err));
                self.maybe_close_engine();
            }
            PacketData::Disconnect => {
                if n.state == NspState::Disconnected {
                    return;
                }
                n.state = NspState::Disconnected;
                n.active = false;
                n.id = None;
                n.fail_sent_acks();
                n.sync();
                self.notify_disconnect(&nsp, DisconnectReason::IoServerDisconnect, None);
                self.maybe_close_engine();
            }
            PacketData::Event { name, args, id } => {
                if n.state != NspState::Connected {
                    if n.receive_buffer.len() < receive_cap {
                        n.receive_buffer.push_back(Packet {
                            nsp: packet.nsp,
                            data: PacketData::Event { name, args, id },
                        });
                    } else {
                        tracing::warn!(nsp = %nsp, "receive buffer full: event dropped");
                    }
                    return;
                }
                if n.pid.is_some()
                    && let Some(offset) = last_string(&args)
                {
                    n.last_offset = Some(offset);
                }
                let ack = match (id, self.cmd_tx.upgrade()) {
                    (Some(id), Some(tx)) => {
                        Some(AckSender::new(nsp.clone(), id, n.shared.parser, tx))
                    }
                    _ => None,
                };
                self.dispatch(&nsp, Event::new(name, args, ack));
            }
            PacketData::Ack { args, id } => {
                let Some(id) = id else {
                    return;
                };
                let is_head = n
                    .queue
                    .front()
                    .and_then(|q| q.pending)
                    .is_some_and(|(pending, _)| pending == id);
                if is_head {
                    self.complete_head(&nsp, Some(args), now);
                } else if let Some(tx) = n.acks.remove(&id) {
                    let _ = tx.send(Ok(args));
                }
            }
        }
    }

    /// Hands an event to its handlers (each on its own task) and to the event streams.
    pub(super) fn dispatch(&mut self, nsp: &Arc<str>, event: Event) {
        let Some(n) = self.sockets.get(nsp) else {
            return;
        };
        // A write lock: `once` listeners are removed as they are taken.
        let handlers = match n.shared.listeners.write() {
            Ok(mut l) => {
                let mut handlers = Vec::new();
                if let Some(list) = l.events.get_mut(event.name()) {
                    handlers.extend(list.iter().map(|h| h.handler.clone()));
                    list.retain(|h| !h.once);
                    if list.is_empty() {
                        l.events.remove(event.name());
                    }
                }
                handlers.extend(l.any.iter().map(|h| h.handler.clone()));
                handlers
            }
            Err(_) => Vec::new(),
        };
        for h in handlers {
            tokio::spawn(h(event.clone()));
        }
        self.send_to_streams(nsp, SocketEvent::Event(event));
    }

    /// Reports a disconnect, with the transport's details (kept for
    /// [`Socket::disconnect_details`](crate::Socket::disconnect_details)).
    pub(super) fn notify_disconnect(
        &mut self,
        nsp: &Arc<str>,
        reason: DisconnectReason,
        details: Option<DisconnectDetails>,
    ) {
        if let Some(n) = self.sockets.get_mut(nsp) {
            n.last_details = details;
            n.sync();
        }
        self.notify(nsp, SocketEvent::Disconnect(reason));
    }

    /// Reports a lifecycle event to the listeners and streams of a socket.
    pub(super) fn notify(&mut self, nsp: &Arc<str>, event: SocketEvent) {
        let Some(n) = self.sockets.get(nsp) else {
            return;
        };
        if let Ok(l) = n.shared.listeners.read() {
            match &event {
                SocketEvent::Connect(info) => {
                    for h in &l.connect {
                        tokio::spawn(h(info.clone()));
                    }
                }
                SocketEvent::ConnectError(e) => {
                    for h in &l.connect_error {
                        tokio::spawn(h(e.clone()));
                    }
                }
                SocketEvent::Disconnect(r) => {
                    for h in &l.disconnect {
                        tokio::spawn(h(r.clone()));
                    }
                    let details = n.last_details.clone();
                    for h in &l.disconnect_details {
                        tokio::spawn(h(r.clone(), details.clone()));
                    }
                }
                _ => {}
            }
        }
        self.send_to_streams(nsp, event);
    }

    pub(super) fn send_to_streams(&mut self, nsp: &Arc<str>, event: SocketEvent) {
        let Some(n) = self.sockets.get(nsp) else {
            return;
        };
        let closed = match n.shared.listeners.read() {
            Ok(l) => bounded::send_all(&l.streams, &event),
            Err(_) => false,
        };
        if closed && let Ok(mut l) = n.shared.listeners.write() {
            bounded::retain_open(&mut l.streams);
        }
    }
}

/// What the `packet` event of the connection shows of a packet.
fn packet_info(packet: &Packet) -> PacketInfo {
    let (kind, id, event) = match &packet.data {
        PacketData::Connect(_) => (PacketKind::Connect, None, None),
        PacketData::Disconnect => (PacketKind::Disconnect, None, None),
        PacketData::Event { name, id, .. } => (PacketKind::Event, *id, Some(name.clone())),
        PacketData::Ack { id, .. } => (PacketKind::Ack, *id, None),
        PacketData::ConnectError(_) => (PacketKind::ConnectError, None, None),
    };
    PacketInfo {
        kind,
        nsp: packet.nsp.as_str().to_owned(),
        id,
        event,
    }
}
