//! The chat namespace `/`: nicknames, rooms with member counts and history, messages, system
//! messages, typing indicators, private messages and file sharing.
//!
//! Events (client → server, all but `typing` with an acknowledgement; an error is answered as
//! `{"error": "..."}`):
//!
//! | event | payload | ack |
//! | --- | --- | --- |
//! | `join` | `"room"` | `{room, members: [{id, nick}], history}` |
//! | `leave` | `"room"` | `{room}` |
//! | `message` | `{room, text}` | `{id, ts, recipients}` |
//! | `typing` | `{room, typing}` | (none; relayed `volatile`) |
//! | `private` | `{to, text}` | `{id, ts, to, delivered}` (`delivered`: the recipient acked) |
//! | `file` | `{room, name, type, data: <binary>}` | `{id, ts, recipients, delivered}` |
//! | `rooms` | (none) | `[{name, members}]` |
//!
//! Server → client: `welcome {id, nick, recovered, rooms, users, joined}`, `rooms`, `users`,
//! `message`, `system`, `typing`, `private` (to be acked), `file` (to be acked).
//!
//! The nickname comes in the CONNECT auth payload (`io({auth: {nick}})`), checked by a
//! middleware. Connection state recovery is on: a client back within two minutes keeps its id
//! and rooms and gets the messages it missed.

mod state;
mod validate;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use ferrio::{ConnectError, Data, DisconnectReason, SocketIo, SocketRef, State};
use serde::{Deserialize, Serialize};

pub use state::Chat;
use state::User;
use validate::{clean_file_name, clean_mime, clean_nick, clean_room, clean_text};

/// Largest file shared, in bytes.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Largest Engine.IO message: a file plus its base64 growth over polling.
pub const MAX_PAYLOAD: usize = 2_000_000;
/// The rooms that always exist.
pub const DEFAULT_ROOMS: [&str; 3] = ["lobby", "rust", "random"];
const MAX_TEXT_CHARS: usize = 2000;
const MAX_NICK_CHARS: usize = 24;
const MAX_ROOM_CHARS: usize = 32;
const MAX_ROOMS: usize = 64;
const MAX_FILE_NAME_CHARS: usize = 120;
const HISTORY: usize = 50;
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// The nickname, checked by the middleware and kept in the socket's extensions.
#[derive(Clone)]
struct Nick(String);

#[derive(Serialize, Clone, Debug, PartialEq)]
struct Peer {
    id: String,
    nick: String,
}

#[derive(Serialize)]
struct RoomInfo {
    name: String,
    members: usize,
}

#[derive(Serialize, Clone)]
struct ChatMessage {
    id: u64,
    room: String,
    from: Peer,
    text: String,
    ts: u64,
}

#[derive(Serialize, Clone)]
struct SystemMessage {
    room: String,
    text: String,
    ts: u64,
}

#[derive(Serialize, Clone)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum HistoryItem {
    Message(ChatMessage),
    System(SystemMessage),
}

#[derive(Serialize)]
struct Welcome {
    id: String,
    nick: String,
    recovered: bool,
    rooms: Vec<RoomInfo>,
    users: Vec<Peer>,
    joined: Vec<String>,
}

#[derive(Serialize)]
struct Joined {
    room: String,
    members: Vec<Peer>,
    history: Vec<HistoryItem>,
}

#[derive(Serialize)]
struct Left {
    room: String,
}

#[derive(Deserialize)]
struct Outgoing {
    room: String,
    text: String,
}

#[derive(Serialize)]
struct Sent {
    id: u64,
    ts: u64,
    recipients: usize,
}

#[derive(Deserialize)]
struct TypingIn {
    room: String,
    typing: bool,
}

#[derive(Serialize)]
struct TypingOut<'a> {
    room: &'a str,
    from: &'a Peer,
    typing: bool,
}

#[derive(Deserialize)]
struct PrivateIn {
    to: String,
    text: String,
}

#[derive(Serialize)]
struct PrivateMessage {
    id: u64,
    from: Peer,
    to: Peer,
    text: String,
    ts: u64,
}

#[derive(Serialize)]
struct PrivateSent {
    id: u64,
    ts: u64,
    to: Peer,
    delivered: bool,
}

#[derive(Deserialize)]
struct FileIn {
    room: String,
    name: String,
    #[serde(rename = "type", default)]
    mime: String,
    data: Bytes,
}

#[derive(Serialize)]
struct FileShare {
    id: u64,
    room: String,
    from: Peer,
    name: String,
    #[serde(rename = "type")]
    mime: String,
    size: usize,
    ts: u64,
    data: Bytes,
}

#[derive(Serialize)]
struct FileSent {
    id: u64,
    ts: u64,
    recipients: usize,
    delivered: usize,
}

/// Registers the chat namespace.
pub fn register(io: &SocketIo) {
    io.ns("/", on_connect).with(check_nick);
}

/// Middleware: a connection needs `auth.nick`, 1 to 24 characters once trimmed.
async fn check_nick(socket: SocketRef) -> Result<(), ConnectError> {
    let nick = socket
        .handshake()
        .auth()
        .get("nick")
        .and_then(|v| v.as_str())
        .map(clean_nick)
        .unwrap_or_default();
    if nick.is_empty() {
        return Err(ConnectError::new("a nickname is required"));
    }
    socket.extensions().insert(Nick(nick));
    Ok(())
}

async fn on_connect(socket: SocketRef, State(chat): State<Chat>) {
    let Some(Nick(nick)) = socket.extensions().get::<Nick>() else {
        socket.disconnect(false);
        return;
    };
    socket.on("join", on_join);
    socket.on("leave", on_leave);
    socket.on("message", on_message);
    socket.on("typing", on_typing);
    socket.on("private", on_private);
    socket.on("file", on_file);
    socket.on(
        "rooms",
        async |State(chat): State<Chat>| -> Result<_, String> { Ok(chat.lock().room_list()) },
    );
    socket.on_disconnect(on_disconnect);

    let id = socket.id().to_string();
    let recovered = socket.recovered();
    // A recovered socket is back in its rooms: count it in again.
    let joined: Vec<String> = if recovered {
        let mut rooms: Vec<String> = socket
            .rooms()
            .into_iter()
            .map(|r| r.to_string())
            .filter(|r| *r != id)
            .collect();
        rooms.sort();
        rooms
    } else {
        Vec::new()
    };
    let me = Peer {
        id: id.clone(),
        nick: nick.clone(),
    };
    let (welcome, notices) = {
        let mut c = chat.lock();
        c.users.insert(
            id.clone(),
            User {
                nick: nick.clone(),
                rooms: BTreeSet::new(),
            },
        );
        let mut notices = Vec::new();
        for room in &joined {
            if c.join(&id, room).is_ok() {
                notices.push(c.system(room, format!("{nick} is back")));
            }
        }
        let welcome = Welcome {
            id: id.clone(),
            nick: nick.clone(),
            recovered,
            rooms: c.room_list(),
            users: c.user_list(),
            joined: joined.clone(),
        };
        (welcome, notices)
    };
    tracing::info!(%id, nick = %me.nick, recovered, transport = socket.transport(), "connected");
    let _ = socket.emit("welcome", &welcome);
    for notice in notices {
        let _ = socket.to(notice.room.clone()).emit("system", &notice);
    }
    let _ = socket.broadcast().emit("users", &welcome.users);
    if recovered {
        let _ = socket.broadcast().emit("rooms", &welcome.rooms);
    }
}

async fn on_disconnect(socket: SocketRef, reason: DisconnectReason, State(chat): State<Chat>) {
    let id = socket.id().to_string();
    let (notices, rooms, users) = {
        let mut c = chat.lock();
        let Some(user) = c.users.remove(&id) else {
            return;
        };
        let mut notices = Vec::new();
        for room in &user.rooms {
            c.leave(&id, room);
            notices.push(c.system(room, format!("{} left", user.nick)));
        }
        (notices, c.room_list(), c.user_list())
    };
    tracing::info!(%id, %reason, "disconnected");
    for notice in notices {
        let _ = socket.to(notice.room.clone()).emit("system", &notice);
    }
    let _ = socket.broadcast().emit("users", &users);
    let _ = socket.broadcast().emit("rooms", &rooms);
}

async fn on_join(
    socket: SocketRef,
    Data(room): Data<String>,
    State(chat): State<Chat>,
) -> Result<Joined, String> {
    let room = clean_room(&room)?;
    let id = socket.id().to_string();
    let (joined, notice, rooms) = {
        let mut c = chat.lock();
        let nick = c.nick(&id)?;
        let fresh = c.join(&id, &room)?;
        let r = &c.rooms[&room];
        let joined = Joined {
            room: room.clone(),
            members: r
                .members
                .iter()
                .filter_map(|m| {
                    Some(Peer {
                        id: m.clone(),
                        nick: c.users.get(m)?.nick.clone(),
                    })
                })
                .collect(),
            history: r.history.iter().cloned().collect(),
        };
        let notice = fresh.then(|| c.system(&room, format!("{nick} joined")));
        (joined, notice, c.room_list())
    };
    socket.join(room.clone());
    if let Some(notice) = notice {
        let _ = socket.to(room).emit("system", &notice);
    }
    emit_all(&socket, "rooms", &rooms);
    Ok(joined)
}

async fn on_leave(
    socket: SocketRef,
    Data(room): Data<String>,
    State(chat): State<Chat>,
) -> Result<Left, String> {
    let room = clean_room(&room)?;
    let id = socket.id().to_string();
    let (notice, rooms) = {
        let mut c = chat.lock();
        let nick = c.nick(&id)?;
        if !c.leave(&id, &room) {
            return Err(format!("you are not in #{room}"));
        }
        let notice = c
            .rooms
            .contains_key(&room)
            .then(|| c.system(&room, format!("{nick} left")));
        (notice, c.room_list())
    };
    socket.leave(room.clone());
    if let Some(notice) = notice {
        let _ = socket.to(room.clone()).emit("system", &notice);
    }
    emit_all(&socket, "rooms", &rooms);
    Ok(Left { room })
}

async fn on_message(
    socket: SocketRef,
    Data(msg): Data<Outgoing>,
    State(chat): State<Chat>,
) -> Result<Sent, String> {
    let text = clean_text(&msg.text)?;
    let id = socket.id().to_string();
    let message = {
        let mut c = chat.lock();
        let from = c.member(&id, &msg.room)?;
        let message = ChatMessage {
            id: c.next_id(),
            room: msg.room.clone(),
            from,
            text,
            ts: now_ms(),
        };
        c.messages += 1;
        c.remember(&msg.room, HistoryItem::Message(message.clone()));
        message
    };
    let to = socket.to(msg.room);
    let recipients = to.sockets().len();
    to.emit("message", &message).map_err(|e| e.to_string())?;
    Ok(Sent {
        id: message.id,
        ts: message.ts,
        recipients,
    })
}

async fn on_typing(socket: SocketRef, Data(t): Data<TypingIn>, State(chat): State<Chat>) {
    let id = socket.id().to_string();
    let Ok(from) = chat.lock().member(&id, &t.room) else {
        return;
    };
    let out = TypingOut {
        room: &t.room,
        from: &from,
        typing: t.typing,
    };
    let _ = socket.to(t.room.clone()).volatile().emit("typing", &out);
}

async fn on_private(
    socket: SocketRef,
    Data(p): Data<PrivateIn>,
    State(chat): State<Chat>,
) -> Result<PrivateSent, String> {
    let text = clean_text(&p.text)?;
    let id = socket.id().to_string();
    if p.to == id {
        return Err("that is you".to_owned());
    }
    let msg = {
        let mut c = chat.lock();
        let from = Peer {
            id: id.clone(),
            nick: c.nick(&id)?,
        };
        let to = Peer {
            id: p.to.clone(),
            nick: c
                .nick(&p.to)
                .map_err(|_| "this user is not online".to_owned())?,
        };
        PrivateMessage {
            id: c.next_id(),
            from,
            to,
            text,
            ts: now_ms(),
        }
    };
    // The recipient's socket is in the room named by its id; its client acks on display.
    let mut acks = socket
        .to(p.to.clone())
        .timeout(DELIVERY_TIMEOUT)
        .emit_with_ack::<_, serde_json::Value>("private", &msg)
        .map_err(|e| e.to_string())?;
    if acks.remaining() == 0 {
        return Err("this user is not online".to_owned());
    }
    let delivered = matches!(acks.next().await, Some((_, Ok(_))));
    Ok(PrivateSent {
        id: msg.id,
        ts: msg.ts,
        to: msg.to,
        delivered,
    })
}

async fn on_file(
    socket: SocketRef,
    Data(f): Data<FileIn>,
    State(chat): State<Chat>,
) -> Result<FileSent, String> {
    if f.data.len() > MAX_FILE_BYTES {
        return Err(format!(
            "files are limited to {} KiB",
            MAX_FILE_BYTES / 1024
        ));
    }
    if f.data.is_empty() {
        return Err("the file is empty".to_owned());
    }
    let id = socket.id().to_string();
    let share = {
        let mut c = chat.lock();
        let from = c.member(&id, &f.room)?;
        c.files += 1;
        FileShare {
            id: c.next_id(),
            room: f.room.clone(),
            from,
            name: clean_file_name(&f.name),
            mime: clean_mime(&f.mime),
            size: f.data.len(),
            ts: now_ms(),
            data: f.data,
        }
    };
    // With an ack: recipients confirm, and the file is not kept for connection recovery.
    let mut acks = socket
        .to(f.room)
        .timeout(DELIVERY_TIMEOUT)
        .emit_with_ack::<_, serde_json::Value>("file", &share)
        .map_err(|e| e.to_string())?;
    let recipients = acks.remaining();
    let mut delivered = 0;
    while let Some((_, r)) = acks.next().await {
        delivered += usize::from(r.is_ok());
    }
    Ok(FileSent {
        id: share.id,
        ts: share.ts,
        recipients,
        delivered,
    })
}

/// Emits to every socket of the namespace, this one included.
fn emit_all<T: Serialize + ?Sized>(socket: &SocketRef, event: &str, data: &T) {
    let _ = socket.broadcast().emit(event, data);
    let _ = socket.emit(event, data);
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
