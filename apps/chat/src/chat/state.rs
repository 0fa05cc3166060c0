//! The chat's state: who is online, the rooms with their members and recent history.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{
    DEFAULT_ROOMS, HISTORY, HistoryItem, MAX_ROOMS, Peer, RoomInfo, SystemMessage, now_ms,
};

/// The chat state, shared by the handlers (`State<Chat>`). Locked only for short,
/// synchronous sections.
#[derive(Clone, Default)]
pub struct Chat(Arc<Mutex<Inner>>);

#[derive(Default)]
pub(super) struct Inner {
    pub(super) users: BTreeMap<String, User>,
    pub(super) rooms: BTreeMap<String, Room>,
    pub(super) next_id: u64,
    pub(super) messages: u64,
    pub(super) files: u64,
}

pub(super) struct User {
    pub(super) nick: String,
    pub(super) rooms: BTreeSet<String>,
}

#[derive(Default)]
pub(super) struct Room {
    pub(super) members: BTreeSet<String>,
    pub(super) history: VecDeque<HistoryItem>,
    pub(super) permanent: bool,
}

/// Numbers for the news feed.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Users online.
    pub users: usize,
    /// The busiest room and its member count.
    pub busiest: Option<(String, usize)>,
    /// Messages sent since the start.
    pub messages: u64,
    /// Files shared since the start.
    pub files: u64,
}

impl Chat {
    /// An empty chat with the default rooms.
    pub fn new() -> Self {
        let chat = Chat::default();
        {
            let mut c = chat.lock();
            for name in DEFAULT_ROOMS {
                c.rooms.insert(
                    name.to_owned(),
                    Room {
                        permanent: true,
                        ..Room::default()
                    },
                );
            }
        }
        chat
    }

    /// Numbers for the news feed.
    pub fn stats(&self) -> Stats {
        let c = self.lock();
        Stats {
            users: c.users.len(),
            busiest: c
                .rooms
                .iter()
                .max_by_key(|(_, r)| r.members.len())
                .filter(|(_, r)| !r.members.is_empty())
                .map(|(n, r)| (n.clone(), r.members.len())),
            messages: c.messages,
            files: c.files,
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    /// Adds a member; `Ok(true)` when it was not in the room yet.
    pub(super) fn join(&mut self, id: &str, room: &str) -> Result<bool, String> {
        if !self.rooms.contains_key(room) && self.rooms.len() >= MAX_ROOMS {
            return Err(format!("there are already {MAX_ROOMS} rooms"));
        }
        let user = self
            .users
            .get_mut(id)
            .ok_or_else(|| "you are not connected".to_owned())?;
        user.rooms.insert(room.to_owned());
        Ok(self
            .rooms
            .entry(room.to_owned())
            .or_default()
            .members
            .insert(id.to_owned()))
    }

    /// Removes a member (and the room, when it is empty and not a default one); whether it
    /// was a member.
    pub(super) fn leave(&mut self, id: &str, room: &str) -> bool {
        if let Some(user) = self.users.get_mut(id) {
            user.rooms.remove(room);
        }
        let Some(r) = self.rooms.get_mut(room) else {
            return false;
        };
        let was = r.members.remove(id);
        if r.members.is_empty() && !r.permanent {
            self.rooms.remove(room);
        }
        was
    }

    pub(super) fn nick(&self, id: &str) -> Result<String, String> {
        self.users
            .get(id)
            .map(|u| u.nick.clone())
            .ok_or_else(|| "you are not connected".to_owned())
    }

    /// The sender of a message to `room`, if it is a member.
    pub(super) fn member(&self, id: &str, room: &str) -> Result<Peer, String> {
        let user = self
            .users
            .get(id)
            .ok_or_else(|| "you are not connected".to_owned())?;
        if !user.rooms.contains(room) {
            return Err(format!("join #{room} first"));
        }
        Ok(Peer {
            id: id.to_owned(),
            nick: user.nick.clone(),
        })
    }

    /// A system message, kept in the room's history.
    pub(super) fn system(&mut self, room: &str, text: String) -> SystemMessage {
        let msg = SystemMessage {
            room: room.to_owned(),
            text,
            ts: now_ms(),
        };
        self.remember(room, HistoryItem::System(msg.clone()));
        msg
    }

    pub(super) fn remember(&mut self, room: &str, item: HistoryItem) {
        if let Some(r) = self.rooms.get_mut(room) {
            if r.history.len() == HISTORY {
                r.history.pop_front();
            }
            r.history.push_back(item);
        }
    }

    pub(super) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub(super) fn room_list(&self) -> Vec<RoomInfo> {
        self.rooms
            .iter()
            .map(|(name, r)| RoomInfo {
                name: name.clone(),
                members: r.members.len(),
            })
            .collect()
    }

    pub(super) fn user_list(&self) -> Vec<Peer> {
        let mut users: Vec<Peer> = self
            .users
            .iter()
            .map(|(id, u)| Peer {
                id: id.clone(),
                nick: u.nick.clone(),
            })
            .collect();
        users.sort_by_key(|u| u.nick.to_lowercase());
        users
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_counts_history_and_room_lifecycle() {
        let chat = Chat::new();
        let mut c = chat.lock();
        for (id, nick) in [("a", "alice"), ("b", "bob")] {
            c.users.insert(
                id.to_owned(),
                User {
                    nick: nick.to_owned(),
                    rooms: BTreeSet::new(),
                },
            );
        }
        assert_eq!(c.join("a", "lobby"), Ok(true));
        assert_eq!(c.join("a", "lobby"), Ok(false));
        assert_eq!(c.join("b", "games"), Ok(true));
        assert!(c.join("zed", "lobby").is_err());
        assert_eq!(c.member("a", "lobby").unwrap().nick, "alice");
        assert!(c.member("b", "lobby").is_err());
        let counts: Vec<(String, usize)> = c
            .room_list()
            .into_iter()
            .map(|r| (r.name, r.members))
            .collect();
        assert_eq!(
            counts,
            [
                ("games".to_owned(), 1),
                ("lobby".to_owned(), 1),
                ("random".to_owned(), 0),
                ("rust".to_owned(), 0)
            ]
        );
        for i in 0..HISTORY + 5 {
            c.system("lobby", format!("{i}"));
        }
        assert_eq!(c.rooms["lobby"].history.len(), HISTORY);
        // A user room disappears when empty; a default room stays.
        assert!(c.leave("b", "games"));
        assert!(!c.rooms.contains_key("games"));
        assert!(c.leave("a", "lobby"));
        assert!(c.rooms.contains_key("lobby"));
        assert!(!c.leave("a", "lobby"));
    }

    #[test]
    fn the_number_of_rooms_is_bounded() {
        let chat = Chat::new();
        let mut c = chat.lock();
        c.users.insert(
            "a".to_owned(),
            User {
                nick: "alice".to_owned(),
                rooms: BTreeSet::new(),
            },
        );
        for i in 0..MAX_ROOMS - DEFAULT_ROOMS.len() {
            assert!(c.join("a", &format!("r{i}")).is_ok());
        }
        assert!(c.join("a", "one-too-many").is_err());
        assert!(c.join("a", "lobby").is_ok());
    }
}
