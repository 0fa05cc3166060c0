// Every event of the chat app, driven by the official socket.io-client from Node.js, and the
// client bundle the server serves (status, headers, ETag, 304). Run by
// apps/chat/tests/node_client.rs, which starts the server with --client-dir pointing at
// interop/node_modules/socket.io-client/dist.
//
// Usage: node chat/events.mjs <server url>
// Prints `ok <test> <ms>` per test, `done` at the end; a failure prints `not ok <test>: <error>`
// and exits 1.

import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';

import { io, Manager } from 'socket.io-client';

const url = process.argv[2];
if (!url) {
  console.error('usage: node chat/events.mjs <url>');
  process.exit(2);
}

const require = createRequire(import.meta.url);
const clientPkg = require.resolve('socket.io-client/package.json');
const clientVersion = JSON.parse(readFileSync(clientPkg, 'utf8')).version;
const dist = join(dirname(clientPkg), 'dist');

const WAIT = 5000;
const sockets = [];

function assert(cond, what) {
  if (!cond) throw new Error(`assertion failed: ${what}`);
}

function eq(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

// The payload of the first `event` on `socket` whose arguments satisfy `pred`. (With connection
// state recovery on, the server appends the event's offset as a last argument, as Node does.)
function next(socket, event, pred = () => true, ms = WAIT) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, on);
      reject(new Error(`no "${event}" within ${ms} ms`));
    }, ms);
    function on(...args) {
      if (!pred(...args)) return;
      clearTimeout(timer);
      socket.off(event, on);
      resolve(args[0]);
    }
    socket.on(event, on);
  });
}

// No `event` matching `pred` within `ms` (used only after a later event proved delivery order).
function never(socket, event, pred = () => true) {
  const seen = [];
  const on = (...args) => { if (pred(...args)) seen.push(args); };
  socket.on(event, on);
  return () => { socket.off(event, on); return seen; };
}

const ack = (socket, event, ...args) => socket.timeout(WAIT).emitWithAck(event, ...args);

// A chat client, connected and welcomed.
async function connect(nick, opts = {}) {
  const socket = io(url, { forceNew: true, reconnection: false, auth: { nick }, ...opts });
  sockets.push(socket);
  const welcome = await next(socket, 'welcome');
  return { socket, welcome };
}

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

// ---------------------------------------------------------------- the served bundle

test('bundle: every file of dist/ served with Node serveClient headers', async () => {
  const files = readdirSync(dist).filter((f) => f.startsWith('socket.io.'));
  assert(files.includes('socket.io.min.js') && files.includes('socket.io.esm.min.js.map'), 'dist files');
  for (const f of files) {
    const res = await fetch(`${url}/socket.io/${f}`);
    eq(res.status, 200, `${f} status`);
    eq(res.headers.get('etag'), `"${clientVersion}"`, `${f} etag`);
    eq(res.headers.get('cache-control'), 'public, max-age=0', `${f} cache-control`);
    eq(res.headers.get('content-type'),
      f.endsWith('.map') ? 'application/json; charset=utf-8' : 'application/javascript; charset=utf-8',
      `${f} content-type`);
    const body = Buffer.from(await res.arrayBuffer());
    assert(body.equals(readFileSync(join(dist, f))), `${f} bytes equal the file`);
  }
});

test('bundle: If-None-Match answers 304 (strong and weak ETag), another ETag 200', async () => {
  for (const tag of [`"${clientVersion}"`, `W/"${clientVersion}"`]) {
    const res = await fetch(`${url}/socket.io/socket.io.js`, { headers: { 'if-none-match': tag } });
    eq(res.status, 304, `304 for ${tag}`);
    eq((await res.arrayBuffer()).byteLength, 0, 'empty 304 body');
  }
  const res = await fetch(`${url}/socket.io/socket.io.js`, { headers: { 'if-none-match': '"0.0.1"' } });
  eq(res.status, 200, 'stale ETag');
  await res.arrayBuffer();
});

test('bundle: the query string is ignored; other names go to Engine.IO', async () => {
  const res = await fetch(`${url}/socket.io/socket.io.min.js?v=${clientVersion}`);
  eq(res.status, 200, 'with a query');
  await res.arrayBuffer();
  const other = await fetch(`${url}/socket.io/nope.js`);
  assert(other.status === 400, `unknown file answered by Engine.IO (400), got ${other.status}`);
  await other.arrayBuffer();
});

test('page: index, script and style served, the page loads the served client', async () => {
  const index = await fetch(`${url}/`);
  eq(index.status, 200, 'index status');
  assert(index.headers.get('content-type').startsWith('text/html'), 'html');
  assert((await index.text()).includes('/socket.io/socket.io.min.js'), 'the page loads the bundle');
  for (const [path, type] of [['/app.js', 'text/javascript'], ['/style.css', 'text/css'], ['/favicon.svg', 'image/svg+xml']]) {
    const res = await fetch(url + path);
    eq(res.status, 200, path);
    assert(res.headers.get('content-type').startsWith(type), `${path} type`);
    await res.arrayBuffer();
  }
});

// ---------------------------------------------------------------- chat namespace

let alice;
let bob;

test('connect: a nickname is required (middleware, connect_error)', async () => {
  for (const auth of [{}, { nick: '   ' }, { nick: 42 }]) {
    const socket = io(url, { forceNew: true, reconnection: false, auth });
    sockets.push(socket);
    const err = await next(socket, 'connect_error');
    eq(err.message, 'a nickname is required', 'message');
    socket.close();
  }
});

test('welcome: id, nickname, default rooms, users', async () => {
  alice = await connect('  alice ');
  const w = alice.welcome;
  eq(w.id, alice.socket.id, 'id is the socket id');
  eq(w.nick, 'alice', 'trimmed nick');
  eq(w.recovered, false, 'recovered');
  eq(w.rooms.map((r) => r.name), ['lobby', 'random', 'rust'], 'default rooms');
  assert(w.users.some((u) => u.id === w.id && u.nick === 'alice'), 'alice in users');
  eq(w.joined, [], 'joined');
});

test('users: everyone gets the list when someone connects', async () => {
  const users = next(alice.socket, 'users', (u) => u.some((x) => x.nick === 'bob'));
  bob = await connect('bob');
  const list = await users;
  assert(list.some((u) => u.id === bob.socket.id), 'bob with his id');
});

test('join: ack with members and history; system message and room counts to others', async () => {
  const a = await ack(alice.socket, 'join', 'rust');
  eq(a.room, 'rust', 'room');
  eq(a.members.map((m) => m.nick), ['alice'], 'members');
  const system = next(alice.socket, 'system', (m) => m.room === 'rust');
  const rooms = next(alice.socket, 'rooms', (r) => r.find((x) => x.name === 'rust')?.members === 2);
  const b = await ack(bob.socket, 'join', ' #Rust ');
  eq(b.room, 'rust', 'normalised name');
  eq(b.members.map((m) => m.nick).sort(), ['alice', 'bob'], 'members');
  assert(b.history.some((h) => h.kind === 'system' && h.text === 'alice joined'), 'history has alice joining');
  const s = await system;
  eq(s.text, 'bob joined', 'system text');
  assert(typeof s.ts === 'number' && Math.abs(s.ts - Date.now()) < 60_000, 'timestamp');
  await rooms;
  eq((await ack(bob.socket, 'join', 'rust')).room, 'rust', 'joining twice is fine');
});

test('join: invalid names and the room bound are refused', async () => {
  for (const name of ['', 'with space', 'x'.repeat(33), 7]) {
    const res = await ack(alice.socket, 'join', name);
    assert(typeof res.error === 'string', `error for ${JSON.stringify(name)}: ${JSON.stringify(res)}`);
  }
});

test('rooms: the list with member counts on request', async () => {
  const rooms = await ack(alice.socket, 'rooms');
  eq(rooms, [{ name: 'lobby', members: 0 }, { name: 'random', members: 0 }, { name: 'rust', members: 2 }], 'rooms');
});

test('message: broadcast to the room except the sender, ack with id, ts and recipients', async () => {
  const stop = never(alice.socket, 'message');
  const got = next(bob.socket, 'message');
  const res = await ack(alice.socket, 'message', { room: 'rust', text: '  hello rust  ' });
  const m = await got;
  eq(m.room, 'rust', 'room');
  eq(m.text, 'hello rust', 'trimmed text');
  eq(m.from, { id: alice.socket.id, nick: 'alice' }, 'from');
  eq(res.id, m.id, 'same id');
  eq(res.ts, m.ts, 'same timestamp');
  eq(res.recipients, 1, 'recipients');
  // Bob answers; once alice has his message, she provably did not get her own.
  const reply = next(alice.socket, 'message');
  await ack(bob.socket, 'message', { room: 'rust', text: 'hi' });
  eq((await reply).text, 'hi', 'reply');
  eq(stop().length, 1, 'alice got only the reply');
});

test('message: refused outside the room, empty or too long', async () => {
  eq(await ack(alice.socket, 'message', { room: 'random', text: 'x' }), { error: 'join #random first' }, 'not a member');
  eq(await ack(alice.socket, 'message', { room: 'rust', text: '   ' }), { error: 'the message is empty' }, 'empty');
  const long = await ack(alice.socket, 'message', { room: 'rust', text: 'x'.repeat(2001) });
  assert(/limited to 2000/.test(long.error), 'too long');
  const bad = await ack(alice.socket, 'message', 'not an object');
  assert(typeof bad.error === 'string', 'wrong payload answered with an error');
});

test('typing: relayed to the room (volatile), on and off', async () => {
  const on = next(bob.socket, 'typing', (t) => t.typing);
  alice.socket.emit('typing', { room: 'rust', typing: true });
  eq(await on, { room: 'rust', from: { id: alice.socket.id, nick: 'alice' }, typing: true }, 'typing on');
  const off = next(bob.socket, 'typing', (t) => !t.typing);
  alice.socket.emit('typing', { room: 'rust', typing: false });
  eq((await off).typing, false, 'typing off');
});

test('private: to a socket id, confirmed by the recipient ack', async () => {
  let received;
  alice.socket.once('private', (m, cb) => { received = m; cb({ ok: true }); });
  const res = await ack(bob.socket, 'private', { to: alice.socket.id, text: 'psst' });
  eq(res.delivered, true, 'delivered');
  eq(res.to, { id: alice.socket.id, nick: 'alice' }, 'to');
  eq(received.text, 'psst', 'text');
  eq(received.from, { id: bob.socket.id, nick: 'bob' }, 'from');
  eq(received.id, res.id, 'id');
});

test('private: unknown recipient and yourself are refused', async () => {
  eq(await ack(bob.socket, 'private', { to: 'nobody', text: 'x' }), { error: 'this user is not online' }, 'unknown');
  eq(await ack(bob.socket, 'private', { to: bob.socket.id, text: 'x' }), { error: 'that is you' }, 'self');
});

test('file: binary to the room, byte for byte, acked by recipients', async () => {
  const data = Buffer.alloc(200_000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
  let got;
  bob.socket.once('file', (f, cb) => { got = f; cb({ ok: true }); });
  const res = await ack(alice.socket, 'file', { room: 'rust', name: '../cat.png', type: 'image/PNG', data });
  eq({ recipients: res.recipients, delivered: res.delivered }, { recipients: 1, delivered: 1 }, 'acks');
  assert(Buffer.isBuffer(got.data) && got.data.equals(data), 'same bytes');
  eq([got.name, got.type, got.size, got.room, got.from.nick], ['..cat.png', 'image/png', data.length, 'rust', 'alice'], 'metadata');
});

test('file: over polling only (base64 attachments) too', async () => {
  const carol = await connect('carol', { transports: ['polling'] });
  await ack(carol.socket, 'join', 'rust');
  const data = Buffer.from([0, 1, 2, 253, 254, 255]);
  let got;
  carol.socket.once('file', (f, cb) => { got = f; cb('thanks'); });
  bob.socket.once('file', (_f, cb) => cb());
  const res = await ack(alice.socket, 'file', { room: 'rust', name: 'b.bin', type: 'nonsense', data });
  eq(res.delivered, 2, 'bob and carol');
  assert(got.data.equals(data), 'same bytes over polling');
  eq(got.type, 'application/octet-stream', 'invalid type replaced');
  alice.socket.once('file', (_f, cb) => cb());
  bob.socket.once('file', (_f, cb) => cb());
  const up = await ack(carol.socket, 'file', { room: 'rust', name: 'up.bin', type: 'text/plain', data: Buffer.from('from polling') });
  eq(up.recipients, 2, 'upload over polling');
  eq(carol.socket.io.engine.transport.name, 'polling', 'still polling');
  carol.socket.close();
});

test('file: over the size limit or empty is refused', async () => {
  const big = await ack(alice.socket, 'file', { room: 'rust', name: 'big', type: 'text/plain', data: Buffer.alloc(1024 * 1024 + 1) });
  eq(big, { error: 'files are limited to 1024 KiB' }, 'too big');
  const empty = await ack(alice.socket, 'file', { room: 'rust', name: 'e', type: 'text/plain', data: Buffer.alloc(0) });
  eq(empty, { error: 'the file is empty' }, 'empty');
  const notInRoom = await ack(alice.socket, 'file', { room: 'random', name: 'x', type: 'text/plain', data: Buffer.from('x') });
  eq(notInRoom, { error: 'join #random first' }, 'not a member');
});

test('history: a late joiner gets the last messages', async () => {
  const dave = await connect('dave');
  const res = await ack(dave.socket, 'join', 'rust');
  const texts = res.history.filter((h) => h.kind === 'message').map((h) => h.text);
  eq(texts, ['hello rust', 'hi'], 'messages in history (files are not kept)');
  dave.socket.close();
});

test('leave: ack, system message to the room, counts; leaving twice is an error', async () => {
  const system = next(alice.socket, 'system', (m) => m.text === 'bob left' && m.room === 'rust');
  const rooms = next(alice.socket, 'rooms', (r) => r.find((x) => x.name === 'rust')?.members === 1);
  eq(await ack(bob.socket, 'leave', 'rust'), { room: 'rust' }, 'ack');
  await system;
  await rooms;
  eq(await ack(bob.socket, 'leave', 'rust'), { error: 'you are not in #rust' }, 'twice');
});

test('rooms: a new room appears, and disappears with its last member', async () => {
  const created = next(alice.socket, 'rooms', (r) => r.some((x) => x.name === 'game-night'));
  await ack(bob.socket, 'join', 'game-night');
  await created;
  const gone = next(alice.socket, 'rooms', (r) => !r.some((x) => x.name === 'game-night'));
  await ack(bob.socket, 'leave', 'game-night');
  await gone;
});

test('disconnect: users list and a system message in the rooms left', async () => {
  await ack(bob.socket, 'join', 'lobby');
  await ack(alice.socket, 'join', 'lobby');
  const system = next(alice.socket, 'system', (m) => m.room === 'lobby' && m.text === 'bob left');
  const users = next(alice.socket, 'users', (u) => !u.some((x) => x.nick === 'bob'));
  bob.socket.close();
  await system;
  await users;
});

test('recovery: a client back after a lost connection keeps its id and rooms and gets what it missed', async () => {
  const erin = await connect('erin');
  await ack(erin.socket, 'join', 'rust');
  const id = erin.socket.id;
  // The connection drops (not a clean leave): the server notices...
  const left = next(alice.socket, 'system', (m) => m.text === 'erin left');
  erin.socket.io.engine.close();
  await left;
  // ... alice writes meanwhile ...
  await ack(alice.socket, 'message', { room: 'rust', text: 'while erin was away' });
  // ... and erin comes back.
  const back = next(alice.socket, 'system', (m) => m.text === 'erin is back');
  const missed = next(erin.socket, 'message', (m) => m.text === 'while erin was away');
  const welcome = next(erin.socket, 'welcome');
  erin.socket.connect();
  const w = await welcome;
  eq([w.recovered, erin.socket.recovered, erin.socket.id], [true, true, id], 'recovered with the same id');
  eq(w.joined, ['rust'], 'still in #rust');
  await missed;
  await back;
  const again = next(erin.socket, 'message', (m) => m.text === 'and now');
  await ack(alice.socket, 'message', { room: 'rust', text: 'and now' });
  await again;
  erin.socket.close();
});

// ---------------------------------------------------------------- news namespace

test('news: backlog on connection, then live items, on the same connection as the chat', async () => {
  const manager = new Manager(url, { reconnection: false });
  const chat = manager.socket('/', { auth: { nick: 'reader' } });
  const news = manager.socket('/news');
  sockets.push(chat, news);
  const backlog = next(news, 'headlines');
  const welcome = next(chat, 'welcome');
  chat.connect();
  news.connect();
  const items = await backlog;
  assert(Array.isArray(items) && items.length >= 1 && items.length <= 10, `backlog of 1..10 items, got ${items.length}`);
  const live = await next(news, 'headline', () => true, 3000);
  assert(['stats', 'tip'].includes(live.kind) && live.title.length > 0 && live.id > items.at(-1).id, 'a newer item');
  await welcome;
  assert(chat.io === news.io && chat.io.engine.id, 'one Engine.IO session for both namespaces');
});

// ---------------------------------------------------------------- runner

let failed = false;
for (const { name, fn } of tests) {
  const start = Date.now();
  try {
    await fn();
    console.log(`ok ${name} ${Date.now() - start}`);
  } catch (e) {
    console.log(`not ok ${name}: ${e.message}`);
    console.error(e.stack);
    failed = true;
    break;
  }
}
for (const s of sockets) s.close();
console.log(failed ? 'failed' : 'done');
process.exit(failed ? 1 : 0);
