//! The chat's state.
//!
//! Who is online and in which room is not kept here: it is the sockets' own state (the nickname
//! in `socket.data`, the rooms in the room index), read with `fetch_sockets`, so that with
//! `--redis` every server of the cluster sees every user ([`Online`]). What a server keeps is
//! the recent history of each room, which every server appends to (the message's server tells
//! the others with a server-side event), and its counters.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use ferrio::BroadcastOperator;
use serde::Deserialize;

use super::{DEFAULT_ROOMS, HISTORY, HistoryItem, MAX_ROOMS, Peer, RoomInfo};

/// The chat state of this server, shared by the handlers (`State<Chat>`). Locked only for
/// short, synchronous sections.
#[derive(Clone, Default)]
pub struct Chat(Arc<Mutex<Inner>>);

#[derive(Default)]
struct Inner {
    history: BTreeMap<String, VecDeque<HistoryItem>>,
    messages: u64,
    files: u64,
}

/// Numbers for the news feed.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Users online.
    pub users: usize,
    /// The busiest room and its member count.
    pub busiest: Option<(String, usize)>,
    /// Messages sent through this server since the start.
    pub messages: u64,
    /// Files shared through this server since the start.
    pub files: u64,
}

impl Chat {
    /// An empty chat.
    pub fn new() -> Self {
        Chat::default()
    }

    /// Numbers for the news feed.
    pub fn stats(&self, online: &Online) -> Stats {
        let c = self.lock();
        Stats {
            users: online.members.len(),
            busiest: online
                .room_list()
                .into_iter()
                .filter(|r| r.members > 0)
                .max_by_key(|r| r.members)
                .map(|r| (r.name, r.members)),
            messages: c.messages,
            files: c.files,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps an item in a room's recent history.
    pub(super) fn remember(&self, room: &str, item: HistoryItem) {
        let mut c = self.lock();
        // Bounded: a server keeps the history of at most MAX_ROOMS rooms.
        if !c.history.contains_key(room) && c.history.len() >= MAX_ROOMS {
            return;
        }
        let h = c.history.entry(room.to_owned()).or_default();
        if h.len() == HISTORY {
            h.pop_front();
        }
        h.push_back(item);
    }

    /// A room's recent history.
    pub(super) fn history(&self, room: &str) -> Vec<HistoryItem> {
        self.lock()
            .history
            .get(room)
            .map(|h| h.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every room's history (for a server that starts later).
    pub(super) fn snapshot(&self) -> BTreeMap<String, Vec<HistoryItem>> {
        self.lock()
            .history
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
            .collect()
    }

    /// Takes the history of the rooms this server knows nothing of.
    pub(super) fn merge(&self, other: BTreeMap<String, Vec<HistoryItem>>) {
        let mut c = self.lock();
        for (room, items) in other {
            if c.history.len() >= MAX_ROOMS {
                break;
            }
            c.history
                .entry(room)
                .or_insert_with(|| items.into_iter().rev().take(HISTORY).rev().collect());
        }
    }

    /// Forgets the history of the rooms that no longer exist (a user room with no member).
    pub(super) fn prune(&self, online: &Online) {
        let rooms: BTreeSet<String> = online.room_list().into_iter().map(|r| r.name).collect();
        self.lock().history.retain(|room, _| rooms.contains(room));
    }

    pub(super) fn count_message(&self) {
        self.lock().messages += 1;
    }

    pub(super) fn count_file(&self) {
        self.lock().files += 1;
    }
}

/// `socket.data` of a chat socket.
#[derive(serde::Serialize, Deserialize, Clone, Debug, PartialEq)]
pub(super) struct Profile {
    pub(super) nick: String,
}

/// One user: a socket with its nickname and rooms.
#[derive(Debug, Clone)]
struct Member {
    id: String,
    nick: String,
    rooms: BTreeSet<String>,
}

/// Who is online, on every server of the cluster, at one moment.
#[derive(Debug, Clone, Default)]
pub struct Online {
    members: Vec<Member>,
}

impl Online {
    /// The sockets `op` selects, on every server (those of servers that do not answer in time
    /// are missing).
    pub async fn fetch(op: BroadcastOperator) -> Online {
        let found = match op.fetch_sockets().await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!("cannot list the users: {e}");
                return Online::default();
            }
        };
        if !found.is_complete() {
            tracing::warn!(
                missing = found.missing,
                "some servers did not answer: their users are missing"
            );
        }
        let members = found
            .iter()
            .filter_map(|s| {
                let id = s.id().to_string();
                let nick = s.data::<Profile>()?.nick;
                let rooms = s
                    .rooms()
                    .iter()
                    .map(|r| r.to_string())
                    .filter(|r| *r != id)
                    .collect();
                Some(Member { id, nick, rooms })
            })
            .collect();
        Online { members }
    }

    /// The default rooms and every room with members, with their member counts.
    pub(super) fn room_list(&self) -> Vec<RoomInfo> {
        let mut counts: BTreeMap<String, usize> =
            DEFAULT_ROOMS.iter().map(|r| ((*r).to_owned(), 0)).collect();
        for m in &self.members {
            for room in &m.rooms {
                *counts.entry(room.clone()).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .map(|(name, members)| RoomInfo { name, members })
            .collect()
    }

    /// Everyone online, by nickname.
    pub(super) fn user_list(&self) -> Vec<Peer> {
        let mut users: Vec<Peer> = self.members.iter().map(Member::peer).collect();
        users.sort_by_key(|u| u.nick.to_lowercase());
        users
    }

    /// The members of a room.
    pub(super) fn members_of(&self, room: &str) -> Vec<Peer> {
        let mut users: Vec<Peer> = self
            .members
            .iter()
            .filter(|m| m.rooms.contains(room))
            .map(Member::peer)
            .collect();
        users.sort_by_key(|u| u.nick.to_lowercase());
        users
    }

    /// The nickname of a socket.
    pub(super) fn nick(&self, id: &str) -> Option<String> {
        self.members
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.nick.clone())
    }

    /// Whether one more room may be created.
    pub(super) fn room_allowed(&self, room: &str) -> Result<(), String> {
        let rooms = self.room_list();
        if rooms.iter().any(|r| r.name == room) || rooms.len() < MAX_ROOMS {
            Ok(())
        } else {
            Err(format!("there are already {MAX_ROOMS} rooms"))
        }
    }
}

impl Member {
    fn peer(&self) -> Peer {
        Peer {
            id: self.id.clone(),
            nick: self.nick.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn online(members: &[(&str, &str, &[&str])]) -> Online {
        Online {
            members: members
                .iter()
                .map(|(id, nick, rooms)| Member {
                    id: (*id).to_owned(),
                    nick: (*nick).to_owned(),
                    rooms: rooms.iter().map(|r| (*r).to_owned()).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn rooms_members_and_history() {
        let o = online(&[
            ("a", "alice", &["lobby", "games"]),
            ("b", "Bob", &["lobby"]),
        ]);
        let counts: Vec<(String, usize)> = o
            .room_list()
            .into_iter()
            .map(|r| (r.name, r.members))
            .collect();
        assert_eq!(
            counts,
            [
                ("games".to_owned(), 1),
                ("lobby".to_owned(), 2),
                ("random".to_owned(), 0),
                ("rust".to_owned(), 0)
            ]
        );
        assert_eq!(o.members_of("lobby").len(), 2);
        assert_eq!(o.user_list()[0].nick, "alice");
        assert_eq!(o.nick("b").as_deref(), Some("Bob"));
        let chat = Chat::new();
        let note = |room: &str, text: String| {
            HistoryItem::System(super::super::SystemMessage {
                room: room.to_owned(),
                text,
                ts: 0,
            })
        };
        for i in 0..HISTORY + 5 {
            chat.remember("games", note("games", format!("{i}")));
        }
        assert_eq!(chat.history("games").len(), HISTORY);
        // A user room's history goes once it has no member; a default room's stays.
        chat.remember("lobby", note("lobby", "x".into()));
        chat.prune(&online(&[("b", "Bob", &["lobby"])]));
        assert!(chat.history("games").is_empty());
        assert_eq!(chat.history("lobby").len(), 1);
        let stats = chat.stats(&o);
        assert_eq!(
            (stats.users, stats.busiest),
            (2, Some(("lobby".to_owned(), 2)))
        );
    }

    #[test]
    fn the_number_of_rooms_is_bounded() {
        let rooms: Vec<String> = (0..MAX_ROOMS - DEFAULT_ROOMS.len())
            .map(|i| format!("r{i}"))
            .collect();
        let refs: Vec<&str> = rooms.iter().map(String::as_str).collect();
        let o = online(&[("a", "alice", &refs)]);
        assert!(o.room_allowed("one-too-many").is_err());
        assert!(o.room_allowed("lobby").is_ok());
        assert!(o.room_allowed("r0").is_ok());
    }
}
