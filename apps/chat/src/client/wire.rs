//! The chat's events as the terminal client reads them: the same JSON the page reads (the
//! server's side is in `crate::chat`). Unknown fields are ignored, as the page ignores them.

use serde::Deserialize;

#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
pub(super) struct Peer {
    pub(super) id: String,
    pub(super) nick: String,
}

#[derive(Deserialize, Debug)]
pub(super) struct RoomInfo {
    pub(super) name: String,
    pub(super) members: usize,
}

/// `welcome`, after each (re)connection.
#[derive(Deserialize, Debug)]
pub(super) struct Welcome {
    pub(super) id: String,
    pub(super) nick: String,
    pub(super) recovered: bool,
    pub(super) rooms: Vec<RoomInfo>,
    pub(super) users: Vec<Peer>,
    pub(super) joined: Vec<String>,
}

/// `message`, and a message in a room's history.
#[derive(Deserialize, Debug)]
pub(super) struct Message {
    pub(super) room: String,
    pub(super) from: Peer,
    pub(super) text: String,
    pub(super) ts: u64,
}

/// `system`, and a system message in a room's history.
#[derive(Deserialize, Debug)]
pub(super) struct System {
    pub(super) room: String,
    pub(super) text: String,
    pub(super) ts: u64,
}

#[derive(Deserialize, Debug)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(super) enum HistoryItem {
    Message(Message),
    System(System),
}

/// The ack of `join`.
#[derive(Deserialize, Debug)]
pub(super) struct Joined {
    pub(super) room: String,
    pub(super) members: Vec<Peer>,
    pub(super) history: Vec<HistoryItem>,
}

/// The ack of `leave`.
#[derive(Deserialize, Debug)]
pub(super) struct Left {
    pub(super) room: String,
}

/// The ack of `message`.
#[derive(Deserialize, Debug)]
pub(super) struct Sent {
    pub(super) ts: u64,
    pub(super) recipients: usize,
}

/// `private`, which the server asks to ack.
#[derive(Deserialize, Debug)]
pub(super) struct Private {
    pub(super) from: Peer,
    pub(super) text: String,
    pub(super) ts: u64,
}

/// The ack of `private`: `delivered` when the recipient acked.
#[derive(Deserialize, Debug)]
pub(super) struct PrivateSent {
    pub(super) ts: u64,
    pub(super) to: Peer,
    pub(super) delivered: bool,
}

/// `file` (binary `data` left out: a terminal does not show it), which the server asks to ack.
#[derive(Deserialize, Debug)]
pub(super) struct FileShare {
    pub(super) room: String,
    pub(super) from: Peer,
    pub(super) name: String,
    #[serde(rename = "type")]
    pub(super) mime: String,
    pub(super) size: usize,
    pub(super) ts: u64,
}
