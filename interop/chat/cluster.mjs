// Two chat servers on one Redis are one chat: run by apps/chat/tests/cluster.rs with the
// official socket.io-client. alice is on server A, bob on server B; later carol comes to a
// third server C, started after the first messages.
//
// Usage: node chat/cluster.mjs <url A> <url B>
// Prints `ok <step>` per step and `ready-for-c` after the first phase, then reads one line
// `c <url C>` on stdin; prints `done` at the end. A failure prints `not ok <step>: <error>` and
// exits 1.

import { createInterface } from 'node:readline';

import { io } from 'socket.io-client';

const [urlA, urlB] = process.argv.slice(2);
const WAIT = 8000;
const sockets = [];

function eq(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

function assert(cond, what) {
  if (!cond) throw new Error(`assertion failed: ${what}`);
}

function next(socket, event, pred = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, on);
      reject(new Error(`no "${event}" within ${WAIT} ms`));
    }, WAIT);
    function on(...args) {
      if (!pred(...args)) return;
      clearTimeout(timer);
      socket.off(event, on);
      resolve(args[0]);
    }
    socket.on(event, on);
  });
}

async function connect(url, nick) {
  const socket = io(url, { forceNew: true, reconnection: false, auth: { nick } });
  sockets.push(socket);
  const welcome = next(socket, 'welcome');
  await next(socket, 'connect');
  return [socket, await welcome];
}

function call(socket, event, arg) {
  return socket.timeout(WAIT).emitWithAck(event, arg).then((res) => {
    if (res && res.error) throw new Error(`${event}: ${res.error}`);
    return res;
  });
}

async function step(name, f) {
  try {
    await f();
    console.log(`ok ${name}`);
  } catch (e) {
    console.log(`not ok ${name}: ${e?.stack ?? e}`);
    for (const s of sockets) s.close();
    process.exit(1);
  }
}

let alice;
let bob;
let aliceId;
let bobId;

await step('alice on A joins the lobby', async () => {
  let welcome;
  [alice, welcome] = await connect(urlA, 'alice');
  aliceId = welcome.id;
  const joined = await call(alice, 'join', 'lobby');
  eq(joined.members.map((m) => m.nick), ['alice'], 'lobby members');
});

await step('bob on B sees alice, and her join in the lobby history', async () => {
  let welcome;
  [bob, welcome] = await connect(urlB, 'bob');
  bobId = welcome.id;
  eq(welcome.users.map((u) => u.nick), ['alice', 'bob'], 'users');
  eq(welcome.rooms.find((r) => r.name === 'lobby').members, 1, 'lobby count in the welcome');
  const system = next(alice, 'system', (m) => m.text === 'bob joined');
  const joined = await call(bob, 'join', 'lobby');
  eq(joined.members.map((m) => m.nick), ['alice', 'bob'], 'lobby members');
  assert(joined.history.some((h) => h.kind === 'system' && h.text === 'alice joined'), 'history');
  await system;
});

await step('messages cross servers, with the recipient count', async () => {
  const got = next(bob, 'message');
  const sent = await call(alice, 'message', { room: 'lobby', text: 'hi from A' });
  eq(sent.recipients, 1, 'recipients');
  const m = await got;
  eq([m.from.nick, m.text], ['alice', 'hi from A'], 'message');
});

await step('a private message crosses servers and is acked by the recipient', async () => {
  const got = new Promise((resolve) => {
    alice.once('private', (msg, ack) => {
      ack({ ok: true });
      resolve(msg);
    });
  });
  const sent = await call(bob, 'private', { to: aliceId, text: 'psst' });
  eq([sent.to.nick, sent.delivered], ['alice', true], 'private ack');
  const m = await got;
  eq([m.from.nick, m.from.id, m.text], ['bob', bobId, 'psst'], 'private message');
});

await step('room counts and typing cross servers', async () => {
  const rooms = await call(alice, 'rooms');
  eq(rooms.find((r) => r.name === 'lobby').members, 2, 'lobby count on A');
  const typing = next(alice, 'typing');
  bob.emit('typing', { room: 'lobby', typing: true });
  eq((await typing).from.nick, 'bob', 'typing');
});

console.log('ready-for-c');
const rl = createInterface({ input: process.stdin });
const line = await new Promise((resolve) => rl.once('line', resolve));
const urlC = line.replace(/^c /, '');

await step('carol on a server started later gets the history and everyone', async () => {
  const [carol, welcome] = await connect(urlC, 'carol');
  eq(welcome.users.map((u) => u.nick), ['alice', 'bob', 'carol'], 'users');
  const joined = await call(carol, 'join', 'lobby');
  assert(joined.history.some((h) => h.kind === 'message' && h.text === 'hi from A'), 'history has the message');
  eq(joined.members.map((m) => m.nick), ['alice', 'bob', 'carol'], 'members');
});

await step('leaving is seen on the other servers', async () => {
  const seen = next(bob, 'users', (users) => users.length === 2);
  alice.close();
  const users = await seen;
  eq(users.map((u) => u.nick), ['bob', 'carol'], 'users after alice left');
});

for (const s of sockets) s.close();
rl.close();
console.log('done');
process.exit(0);
