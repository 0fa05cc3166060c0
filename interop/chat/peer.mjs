// A chat user on the official socket.io-client, talking in lines: the other side of
// apps/chat/tests/terminal_client.rs, which checks that the Rust terminal client
// (`ferrio-chat client`) and a JavaScript client speaking the page's protocol understand each
// other. The events and payloads are those of apps/chat/static/app.js.
//
// Usage: node chat/peer.mjs <server url> <nick> <room>
// Prints, one per line:
//   joined <room>                   the room is joined (the ack of `join`)
//   message <room> <nick> <text>    a message in a room
//   system <room> <text>            a system message
//   private <nick> <text>           a private message (acked, as the page does)
//   sent <recipients>               the ack of our `message`
//   private-sent <nick> <delivered> the ack of our `private`
//   error <text>                    an error answer, or a failure (then exit 1)
// Reads, one per line:
//   say <text>                      a message to the room
//   msg <nick> <text>               a private message
//   quit                            disconnect and exit 0

import { createInterface } from 'node:readline';

import { io } from 'socket.io-client';

const [url, nick, room] = process.argv.slice(2);
if (!url || !nick || !room) {
  console.error('usage: node chat/peer.mjs <url> <nick> <room>');
  process.exit(2);
}

const WAIT = 10000;
const out = (line) => console.log(line);
const fail = (text) => {
  out(`error ${text}`);
  process.exit(1);
};
setTimeout(() => fail('timed out after 60 s'), 60000).unref();

let users = [];
const socket = io(url, { forceNew: true, reconnection: false, auth: { nick } });
// With connection state recovery, the server appends the event's offset as a last argument;
// an ack callback, when asked for, is the last one.
const callback = (args) => args.find((a) => typeof a === 'function');

socket.on('connect_error', (err) => fail(`connect_error ${err.message}`));
socket.on('disconnect', (reason) => {
  if (reason !== 'io client disconnect') fail(`disconnected: ${reason}`);
});
socket.on('welcome', async (w) => {
  users = w.users;
  const res = await socket.timeout(WAIT).emitWithAck('join', room);
  if (res.error) fail(res.error);
  out(`joined ${res.room}`);
});
socket.on('users', (u) => { users = u; });
socket.on('message', (m) => out(`message ${m.room} ${m.from.nick} ${m.text}`));
socket.on('system', (m) => out(`system ${m.room} ${m.text}`));
socket.on('private', (m, ...rest) => {
  out(`private ${m.from.nick} ${m.text}`);
  const ack = callback(rest);
  if (ack) ack({ ok: true });
});

const lines = createInterface({ input: process.stdin });
lines.on('line', async (line) => {
  try {
    const [command, ...words] = line.split(' ');
    if (command === 'say') {
      const res = await socket.timeout(WAIT).emitWithAck('message', { room, text: words.join(' ') });
      out(res.error ? `error ${res.error}` : `sent ${res.recipients}`);
    } else if (command === 'msg') {
      const [to, ...text] = words;
      const peer = users.find((u) => u.nick === to);
      if (!peer) return out(`error ${to} is not online`);
      const res = await socket.timeout(WAIT).emitWithAck('private', { to: peer.id, text: text.join(' ') });
      out(res.error ? `error ${res.error}` : `private-sent ${res.to.nick} ${res.delivered}`);
    } else if (command === 'quit') {
      socket.disconnect();
      process.exit(0);
    } else {
      out(`error unknown command ${command}`);
    }
  } catch (e) {
    fail(e.message);
  }
});
lines.on('close', () => {
  socket.disconnect();
  process.exit(0);
});
