//! The room index of one namespace: room → sockets and its reverse, in memory.
//!
//! Every method takes the lock for a short synchronous section (never across an `.await`) and
//! reports which rooms it created or deleted, so that the caller can tell the adapter after the
//! lock is released (the sharded Redis adapter subscribes to a channel per room), and, when
//! asked, every room event in Node's order (`create-room`, `join-room`, `leave-room`,
//! `delete-room`) for the namespace's room listeners.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::Mutex;

use ferrio_proto::engine::Sid;

use super::{BroadcastOptions, Room};

/// Rooms a change created and deleted, and its room events (when asked for).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct RoomChanges {
    pub(crate) created: Vec<Room>,
    pub(crate) deleted: Vec<Room>,
    pub(crate) events: Option<Vec<RoomEvent>>,
}

impl RoomChanges {
    fn new(events: bool) -> Self {
        RoomChanges {
            events: events.then(Vec::new),
            ..Default::default()
        }
    }

    fn event(&mut self, make: impl FnOnce() -> RoomEvent) {
        if let Some(events) = &mut self.events {
            events.push(make());
        }
    }
}

/// A change of the room index of a namespace on this server (Node's adapter events). A socket
/// joining a room that did not exist gives `Create` then `Join`; the last one leaving gives
/// `Leave` then `Delete`. Every socket is in its own room (its id), from its connection on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoomEvent {
    /// `create-room`: the room got its first socket.
    Create(Room),
    /// `delete-room`: the room lost its last socket.
    Delete(Room),
    /// `join-room`: a socket joined the room.
    Join {
        /// The room.
        room: Room,
        /// The socket.
        sid: Sid,
    },
    /// `leave-room`: a socket left the room.
    Leave {
        /// The room.
        room: Room,
        /// The socket.
        sid: Sid,
    },
}

impl RoomEvent {
    /// Node's event name: `create-room`, `delete-room`, `join-room` or `leave-room`.
    pub fn name(&self) -> &'static str {
        match self {
            RoomEvent::Create(_) => "create-room",
            RoomEvent::Delete(_) => "delete-room",
            RoomEvent::Join { .. } => "join-room",
            RoomEvent::Leave { .. } => "leave-room",
        }
    }

    /// The room.
    pub fn room(&self) -> &Room {
        match self {
            RoomEvent::Create(room)
            | RoomEvent::Delete(room)
            | RoomEvent::Join { room, .. }
            | RoomEvent::Leave { room, .. } => room,
        }
    }

    /// The socket that joined or left (`None` for `Create` and `Delete`).
    pub fn sid(&self) -> Option<Sid> {
        match self {
            RoomEvent::Join { sid, .. } | RoomEvent::Leave { sid, .. } => Some(*sid),
            RoomEvent::Create(_) | RoomEvent::Delete(_) => None,
        }
    }
}

/// The in-memory room index (Node's in-memory adapter's `rooms` and `sids`).
#[derive(Debug, Default)]
pub(crate) struct RoomIndex {
    state: Mutex<Index>,
}

#[derive(Debug, Default)]
struct Index {
    rooms: HashMap<Room, Members<Sid>>,
    sids: HashMap<Sid, Members<Room>>,
}

/// A set that holds a single member without allocating: the common case here (a socket's
/// own room has one member, and a socket that joined nothing else is in one room), where a
/// `HashSet` allocated a table per room and per socket (about 0.25 KiB per idle socket).
#[derive(Debug, Clone)]
enum Members<T> {
    One(T),
    Many(HashSet<T>),
}

impl<T> Default for Members<T> {
    fn default() -> Self {
        Members::Many(HashSet::new())
    }
}

impl<T: Eq + Hash + Clone> Members<T> {
    /// True when `v` was not a member.
    fn insert(&mut self, v: T) -> bool {
        match self {
            Members::Many(set) if set.is_empty() => {
                *self = Members::One(v);
                true
            }
            Members::Many(set) => set.insert(v),
            Members::One(x) if *x == v => false,
            Members::One(x) => {
                let set = HashSet::from([x.clone(), v]);
                *self = Members::Many(set);
                true
            }
        }
    }

    /// True when `v` was a member.
    fn remove(&mut self, v: &T) -> bool {
        match self {
            Members::One(x) if x == v => {
                *self = Members::default();
                true
            }
            Members::One(_) => false,
            Members::Many(set) => set.remove(v),
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self, Members::Many(set) if set.is_empty())
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        let (one, many) = match self {
            Members::One(x) => (Some(x), None),
            Members::Many(set) => (None, Some(set)),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}

impl Index {
    fn remove_member(&mut self, room: &Room, sid: Sid, changes: &mut RoomChanges) {
        if let Some(set) = self.rooms.get_mut(room) {
            if set.remove(&sid) {
                changes.event(|| RoomEvent::Leave {
                    room: room.clone(),
                    sid,
                });
            }
            if set.is_empty() {
                self.rooms.remove(room);
                changes.deleted.push(room.clone());
                changes.event(|| RoomEvent::Delete(room.clone()));
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

    /// Adds a socket to rooms (with `events`, the changes list the room events).
    pub(crate) fn add_all(&self, sid: Sid, rooms: &[Room], events: bool) -> RoomChanges {
        let mut changes = RoomChanges::new(events);
        let mut idx = self.index();
        let mine = idx.sids.entry(sid).or_default();
        for room in rooms {
            mine.insert(room.clone());
        }
        for room in rooms {
            let members = idx.rooms.entry(room.clone()).or_insert_with(|| {
                changes.created.push(room.clone());
                changes.event(|| RoomEvent::Create(room.clone()));
                Members::default()
            });
            if members.insert(sid) {
                changes.event(|| RoomEvent::Join {
                    room: room.clone(),
                    sid,
                });
            }
        }
        changes
    }

    /// Removes a socket from rooms.
    pub(crate) fn del(&self, sid: Sid, rooms: &[Room], events: bool) -> RoomChanges {
        let mut changes = RoomChanges::new(events);
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
    pub(crate) fn del_all(&self, sid: Sid, events: bool) -> RoomChanges {
        let mut changes = RoomChanges::new(events);
        let mut idx = self.index();
        let Some(rooms) = idx.sids.remove(&sid) else {
            return changes;
        };
        for room in rooms.iter() {
            idx.remove_member(room, sid, &mut changes);
        }
        changes
    }

    /// The rooms of a socket.
    pub(crate) fn socket_rooms(&self, sid: Sid) -> HashSet<Room> {
        self.index()
            .sids
            .get(&sid)
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default()
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

    /// How many rooms have at least one socket.
    pub(crate) fn room_count(&self) -> usize {
        self.index().rooms.len()
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
        let c = a.add_all(sid(1), &["x".into(), "y".into()], false);
        assert_eq!(c.created, vec![Room::from("x"), Room::from("y")]);
        assert!(a.add_all(sid(2), &["y".into()], false).created.is_empty());
        a.add_all(sid(3), &["z".into()], false);
        a.add_all(sid(2), &[Room::from(sid(2).to_string())], false);
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
        assert_eq!(a.del(sid(1), &["y".into()], false), RoomChanges::default());
        assert_eq!(a.socket_rooms(sid(1)), HashSet::from(["x".into()]));
        assert_eq!(
            a.del_all(sid(1), false).deleted,
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

    #[test]
    fn members_one_then_many_then_none() {
        let mut m = Members::default();
        assert!(m.is_empty() && m.iter().next().is_none());
        assert!(m.insert(1) && !m.insert(1));
        assert!(matches!(m, Members::One(1)), "one member: no table");
        assert!(m.insert(2) && m.insert(3) && !m.insert(2));
        let mut all: Vec<i32> = m.iter().copied().collect();
        all.sort();
        assert_eq!(all, [1, 2, 3]);
        assert!(m.remove(&2) && !m.remove(&2) && m.remove(&1) && m.remove(&3));
        assert!(m.is_empty());
        let mut one = Members::default();
        one.insert(7);
        assert!(!one.remove(&8) && one.remove(&7) && one.is_empty());
    }

    #[test]
    fn room_events_in_node_order() {
        let a = RoomIndex::default();
        let (x, y): (Room, Room) = ("x".into(), "y".into());
        let joined = a.add_all(sid(1), &[x.clone(), y.clone()], true);
        assert_eq!(
            joined.events,
            Some(vec![
                RoomEvent::Create(x.clone()),
                RoomEvent::Join {
                    room: x.clone(),
                    sid: sid(1)
                },
                RoomEvent::Create(y.clone()),
                RoomEvent::Join {
                    room: y.clone(),
                    sid: sid(1)
                },
            ])
        );
        assert_eq!(
            a.add_all(sid(2), std::slice::from_ref(&x), true).events,
            Some(vec![RoomEvent::Join {
                room: x.clone(),
                sid: sid(2)
            }])
        );
        assert_eq!(
            a.add_all(sid(2), std::slice::from_ref(&x), true).events,
            Some(vec![]),
            "joining again changes nothing"
        );
        assert_eq!(
            a.del(sid(1), &[x.clone(), "never".into()], true).events,
            Some(vec![RoomEvent::Leave {
                room: x.clone(),
                sid: sid(1)
            }])
        );
        let left = a.del_all(sid(1), true);
        assert_eq!(
            left.events,
            Some(vec![
                RoomEvent::Leave {
                    room: y.clone(),
                    sid: sid(1)
                },
                RoomEvent::Delete(y.clone()),
            ])
        );
        assert_eq!(left.deleted, vec![y]);
        assert_eq!(a.del_all(sid(2), false).events, None, "not asked for");
        let ev = RoomEvent::Join {
            room: x.clone(),
            sid: sid(2),
        };
        assert_eq!(
            (ev.name(), ev.room(), ev.sid()),
            ("join-room", &x, Some(sid(2)))
        );
        assert_eq!(RoomEvent::Delete(x).name(), "delete-room");
    }
}
