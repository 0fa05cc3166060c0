//! Connection state recovery (socket.io ≥ 4.6, `connectionStateRecovery`): a socket that lost
//! its connection for a recoverable reason comes back with the same id, rooms and extensions,
//! and gets the events it missed.
//!
//! Every event emitted without an ack and not volatile gets one more last argument, its offset,
//! and is kept with its targets for `max_disconnection_duration` (and at most
//! `max_stored_packets` of them). A client that reconnects sends `{pid, offset}` in its CONNECT
//! payload; if the session is known and not expired and the offset is still stored, the packets
//! after it that the session's rooms would have received are replayed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrio_proto::engine::Sid;
use ferrio_proto::socket::{Encoded, Parser};
use ferrio_proto::value::Value;

use crate::adapter::{BroadcastOptions, Room};
use crate::socket::{DisconnectReason, Extensions};

/// Settings of connection state recovery. Defaults are Node's.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RecoveryConfig {
    /// How long a disconnected session can be recovered. Default 2 minutes.
    pub max_disconnection_duration: Duration,
    /// Whether middlewares are skipped for a recovered socket. Default true.
    pub skip_middlewares: bool,
    /// Most packets kept per namespace for replay (oldest dropped first). Default 10 000.
    pub max_stored_packets: usize,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(120),
            skip_middlewares: true,
            max_stored_packets: 10_000,
        }
    }
}

/// Whether a disconnect reason leaves the session recoverable (Node's list, plus the slow
/// consumer, a transport error in Node's terms).
pub(crate) fn is_recoverable(reason: DisconnectReason) -> bool {
    matches!(
        reason,
        DisconnectReason::TransportError
            | DisconnectReason::SlowConsumer
            | DisconnectReason::TransportClose
            | DisconnectReason::ForcedClose
            | DisconnectReason::PingTimeout
            | DisconnectReason::ServerShuttingDown
            | DisconnectReason::ForcedServerClose
    )
}

struct StoredPacket {
    offset: u64,
    at: Instant,
    rooms: Vec<Room>,
    except: Vec<Room>,
    encoded: Encoded,
}

struct StoredSession {
    sid: Sid,
    rooms: HashSet<Room>,
    extensions: Arc<Extensions>,
    data: Value,
    disconnected_at: Instant,
}

/// What a recovered socket gets back.
pub(crate) struct Restored {
    pub(crate) sid: Sid,
    pub(crate) rooms: Vec<Room>,
    pub(crate) extensions: Arc<Extensions>,
    pub(crate) data: Value,
    pub(crate) missed: Vec<Encoded>,
}

/// The sessions and packets of one namespace.
pub(crate) struct RecoveryStore {
    config: RecoveryConfig,
    parser: Parser,
    state: Mutex<StoreState>,
}

#[derive(Default)]
struct StoreState {
    next_offset: u64,
    packets: VecDeque<StoredPacket>,
    sessions: HashMap<Sid, StoredSession>,
}

impl RecoveryStore {
    pub(crate) fn new(config: RecoveryConfig, parser: Parser) -> Self {
        RecoveryStore {
            config,
            parser,
            state: Mutex::new(StoreState::default()),
        }
    }

    pub(crate) fn config(&self) -> &RecoveryConfig {
        &self.config
    }

    fn state(&self) -> std::sync::MutexGuard<'_, StoreState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends the offset to an encoded event and keeps it for replay.
    pub(crate) fn record(&self, encoded: Encoded, opts: &BroadcastOptions) -> Encoded {
        let now = Instant::now();
        let mut st = self.state();
        let offset = st.next_offset;
        st.next_offset += 1;
        let encoded = encoded.with_string_arg(self.parser, &offset_string(offset));
        st.packets.push_back(StoredPacket {
            offset,
            at: now,
            rooms: opts.rooms.clone(),
            except: opts.except.clone(),
            encoded: encoded.clone(),
        });
        let max_age = self.config.max_disconnection_duration;
        while st
            .packets
            .front()
            .is_some_and(|p| now.duration_since(p.at) > max_age)
            || st.packets.len() > self.config.max_stored_packets
        {
            st.packets.pop_front();
        }
        encoded
    }

    /// Keeps a disconnected session.
    pub(crate) fn save(
        &self,
        pid: Sid,
        sid: Sid,
        rooms: HashSet<Room>,
        extensions: Arc<Extensions>,
        data: Value,
    ) {
        let now = Instant::now();
        let max_age = self.config.max_disconnection_duration;
        let mut st = self.state();
        st.sessions
            .retain(|_, s| now.duration_since(s.disconnected_at) <= max_age);
        st.sessions.insert(
            pid,
            StoredSession {
                sid,
                rooms,
                extensions,
                data,
                disconnected_at: now,
            },
        );
    }

    /// Takes back a session, with the packets it missed after `offset`.
    pub(crate) fn restore(&self, pid: &str, offset: &str) -> Option<Restored> {
        let pid = Sid::parse(pid).ok()?;
        let offset = parse_offset(offset)?;
        let mut st = self.state();
        let session = st.sessions.remove(&pid)?;
        if session.disconnected_at.elapsed() > self.config.max_disconnection_duration {
            return None;
        }
        let start = st.packets.iter().position(|p| p.offset == offset)?;
        let missed = st
            .packets
            .iter()
            .skip(start + 1)
            .filter(|p| reaches(p, &session))
            .map(|p| p.encoded.clone())
            .collect();
        Some(Restored {
            sid: session.sid,
            rooms: session.rooms.into_iter().collect(),
            extensions: session.extensions,
            data: session.data,
            missed,
        })
    }
}

fn reaches(p: &StoredPacket, s: &StoredSession) -> bool {
    let in_rooms = p.rooms.is_empty() || p.rooms.iter().any(|r| s.rooms.contains(r));
    let excluded = p.except.iter().any(|r| s.rooms.contains(r));
    in_rooms && !excluded
}

/// Offsets on the wire: fixed-width base-36 strings, so that they also sort as strings.
fn offset_string(n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut buf = [b'0'; 13];
    let mut n = n;
    for slot in buf.iter_mut().rev() {
        *slot = DIGITS[(n % 36) as usize];
        n /= 36;
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn parse_offset(s: &str) -> Option<u64> {
    if s.len() != 13 {
        return None;
    }
    u64::from_str_radix(s, 36).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrio_proto::socket::encode_event;

    #[test]
    fn offsets_sort_and_parse() {
        let a = offset_string(35);
        let b = offset_string(36);
        assert!(a < b);
        assert_eq!(parse_offset(&a), Some(35));
        assert_eq!(parse_offset(&offset_string(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_offset("nope"), None);
    }

    #[test]
    fn replays_what_the_session_missed() {
        let store = RecoveryStore::new(RecoveryConfig::default(), Parser::Default);
        let sid = Sid::from_random_bytes([1; 15]);
        let pid = Sid::from_random_bytes([2; 15]);
        let to = |room: &'static str| BroadcastOptions {
            rooms: vec![room.into()],
            ..Default::default()
        };
        let first = store.record(encode_event("/", None, "a", &1).unwrap(), &to("r"));
        assert!(first.text.starts_with(br#"42["a",1,""#));
        let text = std::str::from_utf8(&first.text).unwrap();
        let offset = text[text.len() - 15..text.len() - 2].to_owned();
        assert_eq!(parse_offset(&offset), Some(0), "{text}");
        store.save(
            pid,
            sid,
            HashSet::from([Room::from("r")]),
            Arc::new(Extensions::default()),
            Value::Null,
        );
        store.record(encode_event("/", None, "b", &()).unwrap(), &to("r"));
        store.record(encode_event("/", None, "c", &()).unwrap(), &to("other"));
        let restored = store.restore(pid.as_str(), &offset).unwrap();
        assert_eq!(restored.sid, sid);
        assert_eq!(restored.missed.len(), 1);
        assert!(restored.missed[0].text.starts_with(br#"42["b","#));
        // A session is restored once.
        assert!(store.restore(pid.as_str(), &offset).is_none());
    }
}
