//! The room index of one namespace: room → sockets and its reverse, in memory.
//!
//! Every method takes the lock for a short synchronous section (never across an `.await`) and
//! reports which rooms it created or deleted, so that the caller can tell the adapter after the
//! lock is released (the sharded Redis adapter subscribes to a channel per room).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use ferrio_proto::engine::Sid;

use super::{BroadcastOptions, Room};

/// Rooms a change created and deleted.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct RoomChanges {
    pub(crate) created: Vec<Room>,
    pub(crate) deleted: Vec<Room>,
}

/// The in-memory room index (Node's in-memory adapter's `rooms` and `sids`).
#[derive(Debug, Default)]
pub(crate) struct RoomIndex {
    state: Mutex<Index>,
}

#[derive(Debug, Default)]
struct Index {
    rooms: HashMap<Room, HashSet<Sid>>,
    sids: HashMap<Sid, HashSet<Room>>,
}

impl Index {
    fn remove_member(&mut self, room: &Room, sid: Sid, changes: &mut RoomChanges) {
        if let Some(set) = self.rooms.get_mut(room) {
            set.remove(&sid);
            if set.is_empty() {
                self.rooms.remove(room);
                changes.deleted.push(room.clone());
            }
        }
    }

    fn excluded(&self, opts: &BroadcastOptions) -> HashSet<Sid> {
        let mut out = HashSet::new();
        for room in &opts.except {
            if let Some(members) = self.rooms.get(room) {
                out.extend(members.iter().copied());
            }
        }
        out
    }
}

impl RoomIndex {
    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        // Every critical section leaves the index consistent, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a socket to rooms.
    pub(crate) fn add_all(&self, sid: Sid, rooms: &[Room]) -> RoomChanges {
        let mut changes = RoomChanges::default();
        let mut idx = self.index();
        idx.sids
            .entry(sid)
            .or_default()
            .extend(rooms.iter().cloned());
        for room in rooms {
            let members = idx.rooms.entry(room.clone()).or_insert_with(|| {
                changes.created.push(room.clone());
                HashSet::new()
            });
            members.insert(sid);
        }
        changes
    }

    /// Removes a socket from rooms.
    pub(crate) fn del(&self, sid: Sid, rooms: &[Room]) -> RoomChanges {
        let mut changes = RoomChanges::default();
        let mut idx = self.index();
        for room in rooms {
            if let Some(set) = idx.sids.get_mut(&sid) {
                set.remove(room);
            }
            idx.remove_member(room, sid, &mut changes);
        }
        changes
    }

    /// Removes a socket from every room.
    pub(crate) fn del_all(&self, sid: Sid) -> RoomChanges {
        let mut changes = RoomChanges::default();
        let mut idx = self.index();
        let Some(rooms) = idx.sids.remove(&sid) else {
            return changes;
        };
        for room in &rooms {
            idx.remove_member(room, sid, &mut changes);
        }
        changes
    }

    /// The rooms of a socket.
    pub(crate) fn socket_rooms(&self, sid: Sid) -> HashSet<Room> {
        self.index().sids.get(&sid).cloned().unwrap_or_default()
    }

    /// The sockets a broadcast with these options reaches: members of any of `rooms` (every
    /// socket when empty), minus members of any of `except`.
    pub(crate) fn sockets(&self, opts: &BroadcastOptions) -> Vec<Sid> {
        let idx = self.index();
        let excluded = idx.excluded(opts);
        if opts.rooms.is_empty() {
            return idx
                .sids
                .keys()
                .filter(|s| !excluded.contains(s))
                .copied()
                .collect();
        }
        if let [room] = opts.rooms.as_slice() {
            return idx
                .rooms
                .get(room)
                .map(|m| {
                    m.iter()
                        .filter(|s| !excluded.contains(s))
                        .copied()
                        .collect()
                })
                .unwrap_or_default();
        }
        let mut seen = HashSet::new();
        for room in &opts.rooms {
            if let Some(members) = idx.rooms.get(room) {
                seen.extend(members.iter().filter(|s| !excluded.contains(s)).copied());
            }
        }
        seen.into_iter().collect()
    }

    /// Every room with at least one socket.
    pub(crate) fn rooms(&self) -> Vec<Room> {
        self.index().rooms.keys().cloned().collect()
    }

    /// Whether a room has sockets here.
    pub(crate) fn has_room(&self, room: &str) -> bool {
        self.index().rooms.contains_key(room)
    }

    /// Whether `room` is the own room of a socket here (its id).
    pub(crate) fn is_socket_room(&self, room: &str) -> bool {
        Sid::parse(room).is_ok_and(|sid| self.index().sids.contains_key(&sid))
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

    fn opts(rooms: &[&'static str], except: &[&'static str]) -> BroadcastOptions {
        BroadcastOptions {
            rooms: rooms.iter().map(|r| Room::from(*r)).collect(),
            except: except.iter().map(|r| Room::from(*r)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn rooms_union_except_and_changes() {
        let a = RoomIndex::default();
        let c = a.add_all(sid(1), &["x".into(), "y".into()]);
        assert_eq!(c.created, vec![Room::from("x"), Room::from("y")]);
        assert!(a.add_all(sid(2), &["y".into()]).created.is_empty());
        a.add_all(sid(3), &["z".into()]);
        a.add_all(sid(2), &[Room::from(sid(2).to_string())]);
        assert_eq!(
            sorted(a.sockets(&opts(&[], &[]))),
            sorted(vec![sid(1), sid(2), sid(3)])
        );
        assert_eq!(
            sorted(a.sockets(&opts(&["x", "y"], &[]))),
            sorted(vec![sid(1), sid(2)])
        );
        assert_eq!(
            sorted(a.sockets(&opts(&[], &["x"]))),
            sorted(vec![sid(2), sid(3)])
        );
        // The sender's own room in `except` leaves the sender out.
        let own = sid(2).to_string();
        let y_but_2 = BroadcastOptions {
            rooms: vec!["y".into()],
            except: vec![Room::from(own.clone())],
            ..Default::default()
        };
        assert_eq!(a.sockets(&y_but_2), vec![sid(1)]);
        assert!(a.is_socket_room(&own));
        assert!(!a.is_socket_room("y"));
        assert_eq!(a.del(sid(1), &["y".into()]), RoomChanges::default());
        assert_eq!(a.socket_rooms(sid(1)), HashSet::from(["x".into()]));
        assert_eq!(
            a.del_all(sid(1)).deleted,
            vec![Room::from("x")],
            "the last member leaving deletes the room"
        );
        assert!(a.socket_rooms(sid(1)).is_empty());
        let mut rooms = a.rooms();
        rooms.sort();
        assert_eq!(
            rooms,
            vec![Room::from(own), Room::from("y"), Room::from("z")]
        );
        assert!(a.has_room("z") && !a.has_room("x"));
    }
}
