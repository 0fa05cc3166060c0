//! The `/news` namespace: a live feed the server pushes to every subscriber, on the same
//! connection as the chat (one Engine.IO session, two namespaces).
//!
//! Server → client: `headlines [item]` (the latest ones, on connection), then `headline item`
//! every interval, where `item` is `{id, ts, kind, title}` and `kind` is `stats` (who is
//! online, across the cluster; messages and files through this server) or `tip` (something to
//! try). Each server feeds its own subscribers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ferrio::{SocketIo, SocketRef};
use serde::Serialize;
use tokio::task::JoinHandle;

use crate::chat::{Chat, Online};

/// Items sent to a new subscriber.
const BACKLOG: usize = 10;

const TIPS: [&str; 9] = [
    "Open this page in a second tab, pick another nickname and chat with yourself.",
    "Click a name under \u{201c}Online\u{201d} to send a private message, delivered with an acknowledgement.",
    "Add ?transport=polling to the address to use HTTP long-polling only, as behind a strict proxy.",
    "Stop the server and start it again: the page reconnects by itself and joins its rooms again.",
    "Typing indicators are volatile events: dropped rather than queued when a client falls behind.",
    "Drop an image on the message box to share it as binary, without base64 over WebSocket.",
    "Type a new room name under the room list to create it; it disappears when the last member leaves.",
    "This feed is the /news namespace, multiplexed on the same connection as the chat.",
    "Lost your Wi-Fi for a moment? Connection state recovery replays the messages you missed.",
];

#[derive(Serialize, Clone)]
struct Headline {
    id: u64,
    ts: u64,
    kind: &'static str,
    title: String,
}

/// Registers `/news` and starts the task that publishes an item every `interval`.
pub fn register(io: &SocketIo, chat: Chat, interval: Duration) -> JoinHandle<()> {
    let recent: Arc<Mutex<VecDeque<Headline>>> = Arc::default();
    let backlog = recent.clone();
    io.ns("/news", move |socket: SocketRef| {
        let items: Vec<Headline> = lock(&backlog).iter().cloned().collect();
        async move {
            let _ = socket.emit("headlines", &items);
        }
    });
    // Each server feeds its own subscribers (with --redis, not the whole cluster's).
    let news = io.of("/news").local();
    let everyone = io.of("/");
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut id = 0u64;
        loop {
            ticker.tick().await;
            id += 1;
            let online = if id % 2 == 1 {
                Online::fetch(everyone.clone()).await
            } else {
                Online::default()
            };
            let item = headline(id, &chat, &online);
            {
                let mut r = lock(&recent);
                if r.len() == BACKLOG {
                    r.pop_front();
                }
                r.push_back(item.clone());
            }
            let _ = news.emit("headline", &item);
        }
    })
}

/// Odd items are numbers about the server, even ones tips.
fn headline(id: u64, chat: &Chat, online: &Online) -> Headline {
    let ts = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let (kind, title) = if id % 2 == 1 {
        let s = chat.stats(online);
        let people = match s.users {
            0 => "Nobody is online yet".to_owned(),
            1 => "1 person online".to_owned(),
            n => format!("{n} people online"),
        };
        let busiest = match s.busiest {
            Some((room, n)) => format!(" · busiest room #{room} ({n})"),
            None => String::new(),
        };
        (
            "stats",
            format!(
                "{people}{busiest} · {} and {} shared so far",
                plural(s.messages, "message"),
                plural(s.files, "file")
            ),
        )
    } else {
        let tip = TIPS[(id / 2) as usize % TIPS.len()];
        ("tip", tip.to_owned())
    };
    Headline {
        id,
        ts,
        kind,
        title,
    }
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
