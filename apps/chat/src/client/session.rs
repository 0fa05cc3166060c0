//! The terminal's session: what the server says (connection changes and chat events), what
//! the user types, and the lines printed for both.

use std::collections::{BTreeSet, VecDeque};
use std::fmt::Display;

use ferrio_client::{ConnectErrorKind, DisconnectReason, Event, Socket, SocketEvent};
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::sync::mpsc;

use super::clock::{Clock, now_ms};
use super::input::{HELP, Input, parse};
use super::requests::{Outcome, Request};
use super::wire::{FileShare, Message, Peer, Private, RoomInfo, System, Welcome};
use super::{ClientArgs, Exit};

/// The terminal's state, owned by the one task that reads stdin and the socket's events.
pub(super) struct Session {
    pub(super) socket: Socket,
    pub(super) clock: Clock,
    pub(super) url: String,
    pub(super) first_room: String,
    pub(super) outcomes: mpsc::UnboundedSender<Outcome>,
    /// Set by the first `welcome`.
    pub(super) me: Option<Peer>,
    pub(super) users: Vec<Peer>,
    pub(super) rooms: Vec<RoomInfo>,
    /// The rooms this client is in.
    pub(super) joined: BTreeSet<String>,
    /// Rooms whose history was printed (once: not again after a reconnection).
    pub(super) seen: BTreeSet<String>,
    /// Where typed text goes.
    pub(super) current: Option<String>,
    /// Whether the first join was answered: lines typed before wait in `held`.
    pub(super) ready: bool,
    pub(super) held: VecDeque<String>,
    /// Requests waiting for their ack.
    pub(super) pending: usize,
    /// Failed connection attempts since the last connection.
    pub(super) attempts: u32,
    pub(super) exit: Option<Exit>,
}

impl Session {
    pub(super) fn new(
        socket: Socket,
        args: &ClientArgs,
        clock: Clock,
        outcomes: mpsc::UnboundedSender<Outcome>,
    ) -> Self {
        Session {
            socket,
            clock,
            url: args.url.clone(),
            first_room: args.room.clone(),
            outcomes,
            me: None,
            users: Vec::new(),
            rooms: Vec::new(),
            joined: BTreeSet::new(),
            seen: BTreeSet::new(),
            current: None,
            ready: false,
            held: VecDeque::new(),
            pending: 0,
            attempts: 0,
            exit: None,
        }
    }

    // ------------------------------------------------------------ the connection

    pub(super) async fn on_event(&mut self, event: SocketEvent) {
        match event {
            SocketEvent::Connect(info) => {
                self.attempts = 0;
                self.status(format_args!(
                    "connected to {} (socket id {})",
                    self.url, info.id
                ));
            }
            SocketEvent::Disconnect(DisconnectReason::IoClientDisconnect) => {}
            SocketEvent::Disconnect(reason) if reason.will_reconnect() => {
                self.status(format_args!("connection lost ({reason}); reconnecting…"));
            }
            SocketEvent::Disconnect(reason) => {
                self.error(format_args!("disconnected by the server ({reason})"));
                self.exit = Some(Exit::Failed);
            }
            SocketEvent::ConnectError(e) => match e.kind {
                ConnectErrorKind::Server => {
                    self.error(format_args!("refused by the server: {}", e.message));
                    self.exit = Some(Exit::Failed);
                }
                ConnectErrorKind::ReconnectFailed => {
                    self.error(format_args!("could not reconnect: {}", e.message));
                    self.exit = Some(Exit::Failed);
                }
                _ => {
                    self.attempts += 1;
                    let verb = if self.me.is_some() {
                        "reconnecting"
                    } else {
                        "connecting"
                    };
                    self.status(format_args!(
                        "{verb}… (attempt {}: {})",
                        self.attempts, e.message
                    ));
                }
            },
            SocketEvent::Event(event) => self.on_server_event(event).await,
            SocketEvent::Lagged(n) => {
                self.error(format_args!("{n} events dropped: the terminal fell behind"));
            }
            _ => {}
        }
    }

    pub(super) async fn on_server_event(&mut self, event: Event) {
        match event.name() {
            "welcome" => {
                if let Some(w) = self.read::<Welcome>(&event) {
                    self.on_welcome(w);
                }
            }
            "message" => {
                if let Some(m) = self.read::<Message>(&event) {
                    self.print_message(&m);
                }
            }
            "system" => {
                if let Some(s) = self.read::<System>(&event) {
                    self.print_system(&s);
                }
            }
            "private" => {
                if let Some(p) = self.read::<Private>(&event) {
                    self.line(p.ts, format_args!("private <{}> {}", p.from.nick, p.text));
                    // The sender's "delivered": this client showed it.
                    let _ = event.ack(&json!({ "ok": true })).await;
                }
            }
            "file" => {
                if let Some(f) = self.read::<FileShare>(&event) {
                    self.line(
                        f.ts,
                        format_args!(
                            "#{} <{}> shared {} ({}, {}; open the web page to see it)",
                            f.room,
                            f.from.nick,
                            f.name,
                            f.mime,
                            size(f.size)
                        ),
                    );
                    let _ = event.ack(&json!({ "ok": true })).await;
                }
            }
            "users" => {
                if let Some(users) = self.read(&event) {
                    self.users = users;
                }
            }
            "rooms" => {
                if let Some(rooms) = self.read(&event) {
                    self.rooms = rooms;
                }
            }
            // The typing indicator is the page's; a terminal shows no draft.
            _ => {}
        }
    }

    pub(super) fn on_welcome(&mut self, w: Welcome) {
        let first = self.me.is_none();
        self.me = Some(Peer {
            id: w.id,
            nick: w.nick,
        });
        self.users = w.users;
        self.rooms = w.rooms;
        if w.recovered {
            self.joined = w.joined.into_iter().collect();
            self.status("reconnected: session recovered, missed messages replayed");
        } else if first {
            let room = self.first_room.clone();
            self.request(Request::Join { room, switch: true });
        } else {
            // A new session (the server restarted): join the same rooms again.
            let rooms = std::mem::take(&mut self.joined);
            if rooms.is_empty() {
                self.status("reconnected with a new session");
            } else {
                self.status(format_args!(
                    "reconnected with a new session; rejoining {}",
                    list(rooms.iter().map(|r| format!("#{r}")))
                ));
            }
            for room in rooms {
                self.request(Request::Join {
                    room,
                    switch: false,
                });
            }
        }
    }

    // ------------------------------------------------------------ what the user types

    pub(super) fn on_line(&mut self, line: &str) {
        let input = parse(line);
        if matches!(input, Input::Quit) {
            self.exit = Some(Exit::Done);
        } else if self.ready {
            self.on_input(input);
        } else if !matches!(input, Input::Empty) {
            self.held.push_back(line.to_owned());
        }
    }

    pub(super) fn on_input(&mut self, input: Input<'_>) {
        match input {
            Input::Say(text) => match self.current.clone() {
                Some(room) => self.request(Request::Message {
                    room,
                    text: text.to_owned(),
                }),
                None => self.error("you are in no room: /join <room> first"),
            },
            Input::Private { nick, text } => match self.find(nick) {
                Ok(to) => self.request(Request::Private {
                    to,
                    text: text.to_owned(),
                }),
                Err(e) => self.error(e),
            },
            Input::Join(room) => {
                let room = room.trim().trim_start_matches('#').to_lowercase();
                if self.joined.contains(&room) {
                    self.status(format_args!("now talking in #{room}"));
                    self.current = Some(room);
                } else {
                    self.request(Request::Join { room, switch: true });
                }
            }
            Input::Leave(room) => {
                let room = room
                    .map(|r| r.trim().trim_start_matches('#').to_lowercase())
                    .or_else(|| self.current.clone());
                match room {
                    Some(room) => self.request(Request::Leave { room }),
                    None => self.error("you are in no room"),
                }
            }
            Input::Rooms => self.request(Request::Rooms),
            Input::Who => {
                let me = self.me.as_ref().map(|m| m.id.as_str());
                let names = self.users.iter().map(|u| {
                    if Some(u.id.as_str()) == me {
                        format!("{} (you)", u.nick)
                    } else {
                        u.nick.clone()
                    }
                });
                self.status(format_args!(
                    "online ({}): {}",
                    self.users.len(),
                    list(names)
                ));
            }
            Input::Help => {
                for line in HELP {
                    self.status(line);
                }
            }
            Input::Quit => self.exit = Some(Exit::Done),
            Input::Empty => {}
            Input::Invalid(usage) => self.error(usage),
        }
    }

    /// The online user called `nick` (exactly, else ignoring case).
    pub(super) fn find(&self, nick: &str) -> Result<Peer, String> {
        let nick = nick.trim_start_matches('@');
        let mut found: Vec<&Peer> = self.users.iter().filter(|u| u.nick == nick).collect();
        if found.is_empty() {
            found = self
                .users
                .iter()
                .filter(|u| u.nick.to_lowercase() == nick.to_lowercase())
                .collect();
        }
        match found.as_slice() {
            [] => Err(format!(
                "nobody called {nick} is online (/who lists who is)"
            )),
            [peer] => Ok((*peer).clone()),
            more => Err(format!("{} people are called {nick}", more.len())),
        }
    }

    /// Whether nothing is waiting: the first room answered, no line held, no ack awaited.
    pub(super) fn idle(&self) -> bool {
        self.ready && self.held.is_empty() && self.pending == 0
    }

    // ------------------------------------------------------------ output

    pub(super) fn print_message(&self, m: &Message) {
        self.line(
            m.ts,
            format_args!("#{} <{}> {}", m.room, m.from.nick, m.text),
        );
    }

    pub(super) fn print_system(&self, s: &System) {
        self.line(s.ts, format_args!("#{} * {}", s.room, s.text));
    }

    /// A connection or state change.
    pub(super) fn status(&self, text: impl Display) {
        self.line(now_ms(), format_args!("* {text}"));
    }

    /// Something that did not work.
    pub(super) fn error(&self, text: impl Display) {
        self.line(now_ms(), format_args!("✗ {text}"));
    }

    pub(super) fn line(&self, ts: u64, text: impl Display) {
        println!("[{}] {text}", self.clock.format(ts));
    }

    /// The first argument of a server event as `T` (with connection state recovery, the
    /// server appends the event's offset as a last argument, as Node does).
    pub(super) fn read<T: DeserializeOwned>(&self, event: &Event) -> Option<T> {
        match event.arg::<T>(0) {
            Some(Ok(v)) => Some(v),
            Some(Err(e)) => {
                self.error(format_args!(
                    "unreadable {:?} from the server: {e}",
                    event.name()
                ));
                None
            }
            None => None,
        }
    }
}

/// `a, b, c`, or `none`.
pub(super) fn list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

fn size(n: usize) -> String {
    match n {
        n if n < 1024 => format!("{n} B"),
        n if n < 1024 * 1024 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{:.2} MiB", n as f64 / 1_048_576.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn sizes_and_lists() {
        assert_eq!(size(10), "10 B");
        assert_eq!(size(2048), "2.0 KiB");
        assert_eq!(size(3 * 1_048_576), "3.00 MiB");
        assert_eq!(list(Vec::new().into_iter()), "none");
        assert_eq!(list(["a".to_owned(), "b".to_owned()].into_iter()), "a, b");
    }
}
