//! What the driver knows of one namespace socket: state, ack table, offline buffer, the
//! `retries` queue, and the recovery offset.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use serde_json::Value;
use tokio::sync::oneshot;

use ferrio_proto::socket::{Args, Encoded, Packet, PacketData, Parser, msgpack};

use crate::error::{AckError, DisconnectDetails};
use crate::socket::{OutgoingEvent, Shared, Status};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NspState {
    Disconnected,
    Connecting,
    Connected,
}

/// A packet of the `retries` queue.
pub(super) struct Queued {
    pub(super) packet: Encoded,
    pub(super) tx: Option<oneshot::Sender<Result<Args, AckError>>>,
    pub(super) timeout: Option<Duration>,
    pub(super) tries: u32,
    pub(super) pending: Option<(u64, Option<Instant>)>,
}

/// What the driver knows of one namespace socket.
pub(super) struct Nsp {
    pub(super) shared: Arc<Shared>,
    pub(super) active: bool,
    pub(super) state: NspState,
    pub(super) id: Option<String>,
    pub(super) pid: Option<String>,
    pub(super) last_offset: Option<String>,
    pub(super) recovered: bool,
    pub(super) next_ack_id: u64,
    pub(super) acks: HashMap<u64, oneshot::Sender<Result<Args, AckError>>>,
    pub(super) send_buffer: VecDeque<(Encoded, Option<u64>)>,
    pub(super) receive_buffer: VecDeque<Packet>,
    pub(super) queue: VecDeque<Queued>,
    pub(super) connect_generation: u64,
    /// The details of the last disconnect.
    pub(super) last_details: Option<DisconnectDetails>,
}

impl Nsp {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Nsp {
            shared,
            active: false,
            state: NspState::Disconnected,
            id: None,
            pid: None,
            last_offset: None,
            recovered: false,
            next_ack_id: 0,
            acks: HashMap::new(),
            send_buffer: VecDeque::new(),
            receive_buffer: VecDeque::new(),
            queue: VecDeque::new(),
            connect_generation: 0,
            last_details: None,
        }
    }

    pub(super) fn sync(&self) {
        if let Ok(mut s) = self.shared.status.lock() {
            *s = Status {
                id: self.id.clone(),
                connected: self.state == NspState::Connected,
                recovered: self.recovered,
                active: self.active,
                last_details: self.last_details.clone(),
            };
        }
    }

    pub(super) fn take_ack_id(&mut self) -> u64 {
        let id = self.next_ack_id;
        self.next_ack_id = self.next_ack_id.wrapping_add(1) % ferrio_proto::socket::MAX_ACK_ID;
        id
    }

    /// Fails the acks of packets already sent (`socket has been disconnected`); those still
    /// in the offline buffer keep waiting, as in `socket.io-client`.
    pub(super) fn fail_sent_acks(&mut self) {
        let buffered: Vec<u64> = self.send_buffer.iter().filter_map(|(_, id)| *id).collect();
        let ids: Vec<u64> = self
            .acks
            .keys()
            .copied()
            .filter(|id| !buffered.contains(id))
            .collect();
        for id in ids {
            if let Some(tx) = self.acks.remove(&id) {
                let _ = tx.send(Err(AckError::Disconnected));
            }
        }
        for q in &mut self.queue {
            q.pending = None;
        }
    }
}

/// The packet with `id` written as its ack id (after the namespace, before the JSON).
pub(super) fn with_ack_id(packet: &Encoded, nsp: &str, id: u64, parser: Parser) -> Encoded {
    if !parser.is_text() {
        return msgpack::with_id(packet, id);
    }
    let text = &packet.text;
    let mut at = 2;
    if !packet.attachments.is_empty() {
        at += packet.attachments.len().to_string().len() + 1;
    }
    if nsp != "/" {
        at += nsp.len() + 1;
    }
    let at = at.min(text.len());
    let digits = id.to_string();
    let mut out = BytesMut::with_capacity(text.len() + digits.len());
    out.put_slice(&text[..at]);
    out.put_slice(digits.as_bytes());
    out.put_slice(&text[at..]);
    Encoded {
        text: out.freeze(),
        attachments: packet.attachments.clone(),
    }
}

/// An event packet we encoded, read back for outgoing listeners and the offline buffer.
pub(super) fn outgoing(packet: &Encoded, parser: Parser) -> Option<OutgoingEvent> {
    match packet.decode(parser)?.data {
        PacketData::Event { name, args, id } => Some(OutgoingEvent::new(name, args, id.is_some())),
        _ => None,
    }
}

/// The last argument, if it is a string (a connection state recovery offset).
pub(super) fn last_string(args: &Args) -> Option<String> {
    match args {
        Args::Text(raw) => {
            let last = raw.last()?;
            if last.first() != Some(&b'"') {
                return None;
            }
            serde_json::from_slice(last).ok()
        }
        Args::Binary { values, .. } => match values.last()? {
            Value::String(s) => Some(s.clone()),
            _ => None,
        },
        Args::Values(values) => values.last()?.as_str().map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use ferrio_proto::socket::encode_event;

    use super::*;

    #[test]
    fn ack_ids_are_spliced_where_the_encoder_puts_them() {
        let bin = Bytes::from_static(&[1, 2]);
        for nsp in ["/", "/admin"] {
            for id in [0u64, 7, 123_456] {
                let plain = encode_event(nsp, None, "ev", &("x", 1)).unwrap();
                let expected = encode_event(nsp, Some(id), "ev", &("x", 1)).unwrap();
                assert_eq!(with_ack_id(&plain, nsp, id, Parser::Default), expected);
                let plain = encode_event(nsp, None, "ev", &(bin.clone(), "y")).unwrap();
                let expected = encode_event(nsp, Some(id), "ev", &(bin.clone(), "y")).unwrap();
                assert_eq!(with_ack_id(&plain, nsp, id, Parser::Default), expected);
            }
        }
    }

    #[test]
    fn outgoing_events_read_back_name_args_and_ack() {
        let bin = Bytes::from_static(&[1, 2]);
        let plain = encode_event("/a", None, "ev", &("x", bin.clone())).unwrap();
        let ev = outgoing(&plain, Parser::Default).unwrap();
        assert_eq!(ev.name(), "ev");
        assert_eq!(ev.data::<(String, Bytes)>().unwrap(), ("x".to_owned(), bin));
        assert!(!ev.wants_ack());
        assert!(
            outgoing(
                &with_ack_id(&plain, "/a", 3, Parser::Default),
                Parser::Default
            )
            .unwrap()
            .wants_ack()
        );
    }

    #[test]
    fn last_string_argument_is_the_offset() {
        let args = Args::Text(vec![
            Bytes::from_static(b"1"),
            Bytes::from_static(b"\"Q8\""),
        ]);
        assert_eq!(last_string(&args).as_deref(), Some("Q8"));
        let args = Args::Text(vec![Bytes::from_static(b"\"a\""), Bytes::from_static(b"2")]);
        assert_eq!(last_string(&args), None);
        assert_eq!(last_string(&Args::empty()), None);
    }
}
