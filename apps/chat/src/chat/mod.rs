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

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use ferrio::{ConnectError, Data, DisconnectReason, SocketIo, SocketRef, State};
use serde::{Deserialize, Serialize};

use state::Profile;
pub use state::{Chat, Online};
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

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Peer {
    id: String,
    nick: String,
}

#[derive(Serialize)]
struct RoomInfo {
    name: String,
    members: usize,
}

#[derive(Serialize, Deserialize, Clone)]
struct ChatMessage {
    id: u64,
    room: String,
    from: Peer,
    text: String,
    ts: u64,
}

#[derive(Serialize, Deserialize, Clone)]
struct SystemMessage {
    room: String,
    text: String,
    ts: u64,
}

#[derive(Serialize, Deserialize, Clone)]
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

/// Registers the chat namespace, and the server-side events that keep the room histories of
/// the servers of a cluster in step.
pub fn register(io: &SocketIo, chat: &Chat) {
    io.ns("/", on_connect).with(check_nick);
    let c = chat.clone();
    io.on_server_event("chat:history", move |ev| {
        let c = c.clone();
        async move {
            match ev.data::<(String, HistoryItem)>() {
                Ok((room, item)) => c.remember(&room, item),
                Err(e) => tracing::debug!("bad chat:history from another server: {e}"),
            }
        }
    });
    let c = chat.clone();
    io.on_server_event("chat:snapshot", move |mut ev| {
        let c = c.clone();
        async move {
            let _ = ev.ack(&c.snapshot());
        }
    });
}

/// Takes the room histories of the servers already running (with `--redis`).
pub async fn catch_up(io: &SocketIo, chat: &Chat) {
    type Snapshot = BTreeMap<String, Vec<HistoryItem>>;
    match io
        .server_side_emit_with_ack::<_, Snapshot>("chat:snapshot", &(), Duration::from_secs(2))
        .await
    {
        Ok(answers) => {
            for snapshot in answers {
                chat.merge(snapshot);
            }
        }
        Err(e) => tracing::warn!("cannot take the other servers' history: {e}"),
    }
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

/// Everyone online, on every server.
async fn online(socket: &SocketRef) -> Online {
    Online::fetch(socket.namespace()).await
}

/// Adds a history item here and on the other servers.
fn remember(socket: &SocketRef, chat: &Chat, room: &str, item: HistoryItem) {
    chat.remember(room, item.clone());
    let _ = socket
        .broadcast()
        .server_side_emit("chat:history", &(room, &item));
}

/// A system message in a room's history (here and on the other servers).
fn system(socket: &SocketRef, chat: &Chat, room: &str, text: String) -> SystemMessage {
    let msg = SystemMessage {
        room: room.to_owned(),
        text,
        ts: now_ms(),
    };
    remember(socket, chat, room, HistoryItem::System(msg.clone()));
    msg
}

async fn on_connect(socket: SocketRef, State(chat): State<Chat>) {
    let Some(Nick(nick)) = socket.extensions().get::<Nick>() else {
        socket.disconnect(false);
        return;
    };
    let _ = socket.set_data(&Profile { nick: nick.clone() });
    socket.on("join", on_join);
    socket.on("leave", on_leave);
    socket.on("message", on_message);
    socket.on("typing", on_typing);
    socket.on("private", on_private);
    socket.on("file", on_file);
    socket.on("rooms", async |socket: SocketRef| -> Result<_, String> {
        Ok(online(&socket).await.room_list())
    });
    socket.on_disconnecting(on_disconnecting);
    socket.on_disconnect(on_disconnect);

    let id = socket.id().to_string();
    let recovered = socket.recovered();
    // A recovered socket is back in its rooms.
    let mut joined: Vec<String> = if recovered {
        socket
            .rooms()
            .into_iter()
            .map(|r| r.to_string())
            .filter(|r| *r != id)
            .collect()
    } else {
        Vec::new()
    };
    joined.sort();
    let notices: Vec<SystemMessage> = joined
        .iter()
        .map(|room| system(&socket, &chat, room, format!("{nick} is back")))
        .collect();
    let everyone = online(&socket).await;
    let welcome = Welcome {
        id: id.clone(),
        nick: nick.clone(),
        recovered,
        rooms: everyone.room_list(),
        users: everyone.user_list(),
        joined: joined.clone(),
    };
    tracing::info!(%id, %nick, recovered, transport = socket.transport(), "connected");
    let _ = socket.emit("welcome", &welcome);
    for notice in notices {
        let _ = socket.to(notice.room.clone()).emit("system", &notice);
    }
    let _ = socket.broadcast().emit("users", &welcome.users);
    if recovered {
        let _ = socket.broadcast().emit("rooms", &welcome.rooms);
    }
}

/// While the socket is still in its rooms: tell them.
async fn on_disconnecting(socket: SocketRef, State(chat): State<Chat>) {
    let Some(Profile { nick }) = socket.data::<Profile>() else {
        return;
    };
    let id = socket.id().to_string();
    for room in socket.rooms() {
        if room == id.as_str() {
            continue;
        }
        let notice = system(&socket, &chat, &room, format!("{nick} left"));
        let _ = socket.to(room.to_string()).emit("system", &notice);
    }
}

async fn on_disconnect(socket: SocketRef, reason: DisconnectReason, State(chat): State<Chat>) {
    tracing::info!(id = %socket.id(), %reason, "disconnected");
    // The socket has left the namespace: the lists no longer have it.
    let everyone = online(&socket).await;
    chat.prune(&everyone);
    let _ = socket.broadcast().emit("users", &everyone.user_list());
    let _ = socket.broadcast().emit("rooms", &everyone.room_list());
}

fn is_member(socket: &SocketRef, room: &str) -> bool {
    socket.rooms().iter().any(|r| r == room)
}

fn me(socket: &SocketRef) -> Result<Peer, String> {
    let Profile { nick } = socket
        .data::<Profile>()
        .ok_or_else(|| "you are not connected".to_owned())?;
    Ok(Peer {
        id: socket.id().to_string(),
        nick,
    })
}

async fn on_join(
    socket: SocketRef,
    Data(room): Data<String>,
    State(chat): State<Chat>,
) -> Result<Joined, String> {
    let room = clean_room(&room)?;
    let me = me(&socket)?;
    let fresh = !is_member(&socket, &room);
    if fresh {
        online(&socket).await.room_allowed(&room)?;
        socket.join(room.clone());
    }
    let notice = fresh.then(|| system(&socket, &chat, &room, format!("{} joined", me.nick)));
    let everyone = online(&socket).await;
    let joined = Joined {
        room: room.clone(),
        members: everyone.members_of(&room),
        history: chat.history(&room),
    };
    if let Some(notice) = notice {
        let _ = socket.to(room).emit("system", &notice);
    }
    emit_all(&socket, "rooms", &everyone.room_list());
    Ok(joined)
}

async fn on_leave(
    socket: SocketRef,
    Data(room): Data<String>,
    State(chat): State<Chat>,
) -> Result<Left, String> {
    let room = clean_room(&room)?;
    let me = me(&socket)?;
    if !is_member(&socket, &room) {
        return Err(format!("you are not in #{room}"));
    }
    socket.leave(room.clone());
    let everyone = online(&socket).await;
    let rooms = everyone.room_list();
    if rooms.iter().any(|r| r.name == room) {
        let notice = system(&socket, &chat, &room, format!("{} left", me.nick));
        let _ = socket.to(room.clone()).emit("system", &notice);
    }
    chat.prune(&everyone);
    emit_all(&socket, "rooms", &rooms);
    Ok(Left { room })
}

/// An id for a message, unique across servers (53 bits: exact in JavaScript).
fn message_id() -> u64 {
    rand::random::<u64>() >> 11
}

async fn on_message(
    socket: SocketRef,
    Data(msg): Data<Outgoing>,
    State(chat): State<Chat>,
) -> Result<Sent, String> {
    let text = clean_text(&msg.text)?;
    if !is_member(&socket, &msg.room) {
        return Err(format!("join #{} first", msg.room));
    }
    let message = ChatMessage {
        id: message_id(),
        room: msg.room.clone(),
        from: me(&socket)?,
        text,
        ts: now_ms(),
    };
    chat.count_message();
    remember(
        &socket,
        &chat,
        &msg.room,
        HistoryItem::Message(message.clone()),
    );
    let to = socket.to(msg.room);
    to.emit("message", &message).map_err(|e| e.to_string())?;
    let recipients = Online::fetch(to).await.members_of(&message.room).len();
    Ok(Sent {
        id: message.id,
        ts: message.ts,
        recipients,
    })
}

async fn on_typing(socket: SocketRef, Data(t): Data<TypingIn>) {
    if !is_member(&socket, &t.room) {
        return;
    }
    let Ok(from) = me(&socket) else {
        return;
    };
    let out = TypingOut {
        room: &t.room,
        from: &from,
        typing: t.typing,
    };
    let _ = socket.to(t.room.clone()).volatile().emit("typing", &out);
}

async fn on_private(socket: SocketRef, Data(p): Data<PrivateIn>) -> Result<PrivateSent, String> {
    let text = clean_text(&p.text)?;
    let from = me(&socket)?;
    if p.to == from.id {
        return Err("that is you".to_owned());
    }
    // The recipient's socket is in the room named by its id, on whichever server it is.
    let target = socket.to(p.to.clone());
    let nick = Online::fetch(target.clone())
        .await
        .nick(&p.to)
        .ok_or_else(|| "this user is not online".to_owned())?;
    let msg = PrivateMessage {
        id: message_id(),
        from,
        to: Peer {
            id: p.to.clone(),
            nick,
        },
        text,
        ts: now_ms(),
    };
    // Its client acks on display.
    let mut acks = target
        .timeout(DELIVERY_TIMEOUT)
        .emit_with_ack::<_, serde_json::Value>("private", &msg)
        .map_err(|e| e.to_string())?;
    let delivered = match acks.next().await {
        Some((_, r)) => r.is_ok(),
        None => return Err("this user is not online".to_owned()),
    };
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
    if !is_member(&socket, &f.room) {
        return Err(format!("join #{} first", f.room));
    }
    chat.count_file();
    let share = FileShare {
        id: message_id(),
        room: f.room.clone(),
        from: me(&socket)?,
        name: clean_file_name(&f.name),
        mime: clean_mime(&f.mime),
        size: f.data.len(),
        ts: now_ms(),
        data: f.data,
    };
    // With an ack: recipients confirm, and the file is not kept for connection recovery.
    let mut acks = socket
        .to(f.room)
        .timeout(DELIVERY_TIMEOUT)
        .emit_with_ack::<_, serde_json::Value>("file", &share)
        .map_err(|e| e.to_string())?;
    let (mut recipients, mut delivered) = (0, 0);
    while let Some((_, r)) = acks.next().await {
        recipients += 1;
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
