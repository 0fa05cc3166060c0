//! The adapter: the room index of a namespace, and the plug-in point for clustering.
//!
//! An adapter is an object-safe trait behind `Arc<dyn Adapter>`, so no generic spreads through
//! sockets, namespaces or user code. [`LocalAdapter`] keeps everything in memory; a cluster
//! adapter (Redis, ...) extends the same trait.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use ferrio_proto::engine::Sid;

/// A room name.
pub type Room = Cow<'static, str>;

/// Who a broadcast reaches, and how.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BroadcastOptions {
    /// Sockets in any of these rooms; every socket of the namespace when empty.
    pub rooms: Vec<Room>,
    /// Sockets in any of these rooms are left out.
    pub except: Vec<Room>,
    /// These sockets are left out (the sender, for `broadcast` and `socket.to`).
    pub except_sids: Vec<Sid>,
    /// Only this server, not the cluster.
    pub local: bool,
    /// Dropped for a client whose queue is full instead of disconnecting it.
    pub volatile: bool,
    /// Per-message compression requested (accepted for API parity; not applied).
    pub compress: bool,
    /// How long to wait for acknowledgements.
    pub timeout: Option<Duration>,
}

/// The room index of one namespace (and, for cluster adapters, the link to other servers).
///
/// Methods are synchronous and short: they are called with no lock held by the caller and
/// must not block.
pub trait Adapter: Send + Sync + 'static {
    /// Adds a socket to rooms.
    fn add_all(&self, sid: Sid, rooms: &[Room]);
    /// Removes a socket from rooms.
    fn del(&self, sid: Sid, rooms: &[Room]);
    /// Removes a socket from every room.
    fn del_all(&self, sid: Sid);
    /// The rooms of a socket.
    fn socket_rooms(&self, sid: Sid) -> HashSet<Room>;
    /// The local sockets a broadcast with these options reaches.
    fn sockets(&self, opts: &BroadcastOptions) -> Vec<Sid>;
    /// Every room that has at least one local socket.
    fn rooms(&self) -> Vec<Room>;
}

/// The in-memory adapter (Node's default): a room → sockets index and its reverse.
#[derive(Debug, Default)]
pub struct LocalAdapter {
    state: Mutex<RoomIndex>,
}

#[derive(Debug, Default)]
struct RoomIndex {
    rooms: HashMap<Room, HashSet<Sid>>,
    sids: HashMap<Sid, HashSet<Room>>,
}

impl LocalAdapter {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    fn index(&self) -> std::sync::MutexGuard<'_, RoomIndex> {
        // Every critical section leaves the index consistent, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Adapter for LocalAdapter {
    fn add_all(&self, sid: Sid, rooms: &[Room]) {
        let mut idx = self.index();
        for room in rooms {
            idx.sids.entry(sid).or_default().insert(room.clone());
            idx.rooms.entry(room.clone()).or_default().insert(sid);
        }
    }

    fn del(&self, sid: Sid, rooms: &[Room]) {
        let mut idx = self.index();
        for room in rooms {
            if let Some(set) = idx.sids.get_mut(&sid) {
                set.remove(room);
            }
            if let Some(set) = idx.rooms.get_mut(room) {
                set.remove(&sid);
                if set.is_empty() {
                    idx.rooms.remove(room);
                }
            }
        }
    }

    fn del_all(&self, sid: Sid) {
        let mut idx = self.index();
        let Some(rooms) = idx.sids.remove(&sid) else {
            return;
        };
        for room in rooms {
            if let Some(set) = idx.rooms.get_mut(&room) {
                set.remove(&sid);
                if set.is_empty() {
                    idx.rooms.remove(&room);
                }
            }
        }
    }

    fn socket_rooms(&self, sid: Sid) -> HashSet<Room> {
        self.index().sids.get(&sid).cloned().unwrap_or_default()
    }

    fn sockets(&self, opts: &BroadcastOptions) -> Vec<Sid> {
        let idx = self.index();
        let excluded = |sid: &Sid| {
            opts.except_sids.contains(sid)
                || opts.except.iter().any(|r| {
                    idx.rooms
                        .get(r)
                        .is_some_and(|members| members.contains(sid))
                })
        };
        if opts.rooms.is_empty() {
            return idx.sids.keys().filter(|s| !excluded(s)).copied().collect();
        }
        if opts.rooms.len() == 1 {
            return idx
                .rooms
                .get(&opts.rooms[0])
                .map(|m| m.iter().filter(|s| !excluded(s)).copied().collect())
                .unwrap_or_default();
        }
        let mut seen = HashSet::new();
        for room in &opts.rooms {
            if let Some(members) = idx.rooms.get(room) {
                seen.extend(members.iter().filter(|s| !excluded(s)).copied());
            }
        }
        seen.into_iter().collect()
    }

    fn rooms(&self) -> Vec<Room> {
        self.index().rooms.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(n: u8) -> Sid {
        Sid::from_random_bytes([n; 15])
    }

    fn sorted(mut v: Vec<Sid>) -> Vec<Sid> {
        v.sort();
        v
    }

    #[test]
    fn rooms_union_except_and_sender() {
        let a = LocalAdapter::new();
        a.add_all(sid(1), &["x".into(), "y".into()]);
        a.add_all(sid(2), &["y".into()]);
        a.add_all(sid(3), &["z".into()]);
        let all = BroadcastOptions::default();
        assert_eq!(
            sorted(a.sockets(&all)),
            sorted(vec![sid(1), sid(2), sid(3)])
        );
        let xy = BroadcastOptions {
            rooms: vec!["x".into(), "y".into()],
            ..Default::default()
        };
        assert_eq!(sorted(a.sockets(&xy)), sorted(vec![sid(1), sid(2)]));
        let not_x = BroadcastOptions {
            except: vec!["x".into()],
            ..Default::default()
        };
        assert_eq!(sorted(a.sockets(&not_x)), sorted(vec![sid(2), sid(3)]));
        let y_but_2 = BroadcastOptions {
            rooms: vec!["y".into()],
            except_sids: vec![sid(2)],
            ..Default::default()
        };
        assert_eq!(a.sockets(&y_but_2), vec![sid(1)]);
        a.del(sid(1), &["y".into()]);
        assert_eq!(a.socket_rooms(sid(1)), HashSet::from(["x".into()]));
        a.del_all(sid(1));
        assert!(a.socket_rooms(sid(1)).is_empty());
        let mut rooms = a.rooms();
        rooms.sort();
        assert_eq!(rooms, vec![Room::from("y"), Room::from("z")]);
    }
}
