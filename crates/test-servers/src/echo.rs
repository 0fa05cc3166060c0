//! A raw Engine.IO echo handler: every message goes back unchanged (text as text, binary as
//! binary), nothing is sent on connect.

use ferrio_engine::{CloseReason, EngineHandler, EngineSocket, Frame, Message};

/// Sends every message back to its sender.
#[derive(Debug, Default, Clone, Copy)]
pub struct Echo;

impl EngineHandler for Echo {
    type Session = ();

    fn on_connect(&self, _socket: &EngineSocket) {}

    fn on_message(&self, _: &mut (), socket: &EngineSocket, message: Message) {
        let frame = match message {
            Message::Text(t) => {
                let mut buf = Vec::with_capacity(t.len() + 1);
                buf.push(b'4');
                buf.extend_from_slice(&t);
                Frame::Text(buf.into())
            }
            Message::Binary(b) => Frame::Binary(b),
        };
        // A full queue closes the session (slow consumer); nothing else to do here.
        let _ = socket.send(frame);
    }

    fn on_disconnect(&self, _: (), _socket: &EngineSocket, _reason: CloseReason) {}
}
