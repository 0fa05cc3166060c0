//! Requests to the server that wait for its ack (`join`, `leave`, `message`, `private`,
//! `rooms`), each on a task of its own, and what the session does with the answer.

use std::time::Duration;

use ferrio_client::{AckError, AckResponse};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::input::parse;
use super::session::{Session, list};
use super::wire::{HistoryItem, Joined, Left, Peer, PrivateSent, RoomInfo, Sent};

/// The page's acknowledgement timeout.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// A request waiting for the server's ack.
pub(super) enum Request {
    Join { room: String, switch: bool },
    Leave { room: String },
    Message { room: String, text: String },
    Private { to: Peer, text: String },
    Rooms,
}

/// A request and the server's answer.
pub(super) struct Outcome {
    request: Request,
    result: Result<AckResponse, AckError>,
}

impl Session {
    /// Emits the request with an ack; its outcome comes back to [`Session::on_outcome`].
    pub(super) fn request(&mut self, request: Request) {
        let (event, data) = match &request {
            Request::Join { room, .. } => ("join", Some(json!(room))),
            Request::Leave { room } => ("leave", Some(json!(room))),
            Request::Message { room, text } => {
                ("message", Some(json!({ "room": room, "text": text })))
            }
            Request::Private { to, text } => {
                ("private", Some(json!({ "to": to.id, "text": text })))
            }
            Request::Rooms => ("rooms", None),
        };
        self.pending += 1;
        let socket = self.socket.clone();
        let outcomes = self.outcomes.clone();
        tokio::spawn(async move {
            let emit = match &data {
                Some(data) => socket.emit_with_ack(event, data),
                None => socket.emit_with_ack(event, &()),
            };
            let result = emit.timeout(ACK_TIMEOUT).await;
            let _ = outcomes.send(Outcome { request, result });
        });
    }

    pub(super) fn on_outcome(&mut self, Outcome { request, result }: Outcome) {
        self.pending = self.pending.saturating_sub(1);
        match request {
            Request::Join { room, switch } => {
                match answer::<Joined>(result) {
                    Ok(joined) => self.on_joined(joined, switch),
                    Err(e) => self.error(format_args!("could not join #{room}: {e}")),
                }
                if !self.ready {
                    self.ready = true;
                    while let Some(line) = self.held.pop_front() {
                        self.on_input(parse(&line));
                    }
                }
            }
            Request::Leave { room } => match answer::<Left>(result) {
                Ok(Left { room }) => {
                    self.joined.remove(&room);
                    self.status(format_args!("you left #{room}"));
                    if self.current.as_deref() == Some(room.as_str()) {
                        self.current = self.joined.first().cloned();
                        if let Some(next) = &self.current {
                            self.status(format_args!("now talking in #{next}"));
                        }
                    }
                }
                Err(e) => self.error(format_args!("could not leave #{room}: {e}")),
            },
            Request::Message { room, text } => match answer::<Sent>(result) {
                Ok(Sent { ts, recipients: 0 }) => self.line(
                    ts,
                    format_args!("#{room} ✓ sent (nobody else in #{room}): {text:?}"),
                ),
                Ok(Sent { ts, recipients }) => self.line(
                    ts,
                    format_args!(
                        "#{room} ✓ delivered to {recipients} {}: {text:?}",
                        if recipients == 1 { "person" } else { "people" }
                    ),
                ),
                Err(e) => self.error(format_args!("#{room} not sent ({e}): {text:?}")),
            },
            Request::Private { to, text } => match answer::<PrivateSent>(result) {
                Ok(PrivateSent {
                    ts,
                    to,
                    delivered: true,
                }) => self.line(
                    ts,
                    format_args!("private ✓✓ delivered to {}: {text:?}", to.nick),
                ),
                Ok(PrivateSent { ts, to, .. }) => self.line(
                    ts,
                    format_args!("private ✓ sent; {} did not confirm: {text:?}", to.nick),
                ),
                Err(e) => self.error(format_args!(
                    "private not delivered to {} ({e}): {text:?}",
                    to.nick
                )),
            },
            Request::Rooms => match answer::<Vec<RoomInfo>>(result) {
                Ok(rooms) => {
                    let names = rooms.iter().map(|r| {
                        let mut s = format!("#{} ({})", r.name, r.members);
                        if self.current.as_deref() == Some(r.name.as_str()) {
                            s.push_str(" current");
                        } else if self.joined.contains(&r.name) {
                            s.push_str(" joined");
                        }
                        s
                    });
                    self.status(format_args!("rooms: {}", list(names)));
                    self.rooms = rooms;
                }
                Err(e) => self.error(format_args!("no room list: {e}")),
            },
        }
    }

    fn on_joined(&mut self, joined: Joined, switch: bool) {
        let room = joined.room;
        if self.seen.insert(room.clone()) {
            for item in &joined.history {
                match item {
                    HistoryItem::Message(m) => self.print_message(m),
                    HistoryItem::System(s) => self.print_system(s),
                }
            }
        }
        self.joined.insert(room.clone());
        let members = joined.members.iter().map(|m| m.nick.clone());
        self.status(format_args!(
            "you joined #{room} ({} {}: {})",
            joined.members.len(),
            if joined.members.len() == 1 {
                "member"
            } else {
                "members"
            },
            list(members)
        ));
        if switch || self.current.is_none() {
            self.current = Some(room);
        }
    }
}

/// The server's answer: its value, or the text of `{"error": ...}` or of the failed wait.
fn answer<T: DeserializeOwned>(result: Result<AckResponse, AckError>) -> Result<T, String> {
    let value = match result {
        Ok(r) => r
            .arg::<Value>(0)
            .and_then(Result::ok)
            .unwrap_or(Value::Null),
        Err(AckError::Timeout) => return Err("no answer from the server".to_owned()),
        Err(AckError::Disconnected) => return Err("the connection was lost".to_owned()),
        Err(e) => return Err(e.to_string()),
    };
    if let Some(error) = value.get("error") {
        return Err(error.as_str().unwrap_or("error").to_owned());
    }
    serde_json::from_value(value).map_err(|e| format!("unexpected answer: {e}"))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use ferrio_client::Args;

    use super::*;

    fn ack(json: Value) -> Result<AckResponse, AckError> {
        Ok(AckResponse(Args::Text(vec![Bytes::from(json.to_string())])))
    }

    #[test]
    fn answers_errors_and_failed_waits() {
        let sent: Sent = answer(ack(json!({"id": 3, "ts": 5, "recipients": 2}))).unwrap();
        assert_eq!((sent.ts, sent.recipients), (5, 2));
        let err = answer::<Sent>(ack(json!({"error": "join #x first"}))).unwrap_err();
        assert_eq!(err, "join #x first");
        let err = answer::<Sent>(Err(AckError::Timeout)).unwrap_err();
        assert_eq!(err, "no answer from the server");
        assert!(answer::<Sent>(ack(json!("nonsense"))).is_err());
    }
}
