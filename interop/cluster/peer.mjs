// The Node side of the cluster tests (crates/redis/tests): Node `socket.io` 4.8 servers with
// `@socket.io/redis-adapter` 8.3 (classic `createAdapter` or `createShardedAdapter`), real
// `socket.io-client` connections, and the `@socket.io/redis-emitter`, all driven by JSON
// commands on stdin.
//
// Usage: node cluster/peer.mjs
// Reads one JSON command per line: {"id": n, "op": "...", ...}. Writes one JSON object per line:
//   {"id": n, "ok": true, "result": ...} | {"id": n, "ok": false, "error": "..."}  answers
//   {"event": "...", ...}                                                          events
// Binary values are written and read as {"$bin": "<hex>"}.
//
// Ops:
//   server  {name, redis: url | cluster: [host:port...], mode: "classic"|"sharded"}
//           starts a server on 127.0.0.1:0 -> {port}. Namespace "/": events `join`(room, ack),
//           `leave`(room, ack), `set-data`(data, ack), `shout`(room, msg) (emits `shouted` to
//           the room, the sender left out); server-side event `sse` (answers
//           "<name>:pong"); prints {"event":"sse","server":name,"args":[...]}.
//   io      {server, call, rooms?, except?, local?, volatile?, timeout?, args?}
//           call: emit | emitWithAck | fetchSockets | socketsJoin | socketsLeave |
//           disconnectSockets | serverSideEmit | serverSideEmitWithAck | serverCount | allRooms
//   client  {name, url, transports?, auth?} -> {id}; every event it gets prints
//           {"event":"recv","client":name,"ev":..,"args":[..]} (an ack it is asked for answers
//           "<name>"); a disconnect prints {"event":"client-disconnect","client":name,"reason":..}
//   clientEmit {client, ev, args, ack?}   -> the ack's arguments when ack is true
//   emitter {redis, nsp?, rooms?, except?, volatile?, call, args?}
//           call: emit | socketsJoin | socketsLeave | disconnectSockets | serverSideEmit
//   closeServer {server}

import { createServer } from 'node:http';
import { createInterface } from 'node:readline';

import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter';
import { Emitter } from '@socket.io/redis-emitter';
import { createClient, createCluster } from 'redis';
import { Server } from 'socket.io';
import { io as connect } from 'socket.io-client';

const servers = new Map();
const clients = new Map();
const redisClients = [];

const out = (obj) => console.log(JSON.stringify(obj));

function toWire(v) {
  if (Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
    return { $bin: Buffer.from(v.buffer ? v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength) : v).toString('hex') };
  }
  if (Array.isArray(v)) return v.map(toWire);
  if (v && typeof v === 'object') {
    const o = {};
    for (const [k, x] of Object.entries(v)) o[k] = toWire(x);
    return o;
  }
  return v;
}

function fromWire(v) {
  if (Array.isArray(v)) return v.map(fromWire);
  if (v && typeof v === 'object') {
    if (typeof v.$bin === 'string' && Object.keys(v).length === 1) return Buffer.from(v.$bin, 'hex');
    const o = {};
    for (const [k, x] of Object.entries(v)) o[k] = fromWire(x);
    return o;
  }
  return v;
}

async function redisPair(cmd) {
  const make = () => (cmd.cluster
    ? createCluster({ rootNodes: cmd.cluster.map((a) => ({ url: `redis://${a}` })) })
    : createClient({ url: cmd.redis }));
  const pub = make();
  const sub = make();
  for (const c of [pub, sub]) c.on('error', () => {});
  await Promise.all([pub.connect(), sub.connect()]);
  redisClients.push(pub, sub);
  return [pub, sub];
}

function operator(target, cmd) {
  let op = target;
  if (cmd.rooms?.length) op = op.to(cmd.rooms);
  if (cmd.except?.length) op = op.except(cmd.except);
  if (cmd.local) op = op.local;
  if (cmd.volatile) op = op.volatile;
  return op;
}

const ops = {
  async server(cmd) {
    const [pub, sub] = await redisPair(cmd);
    const adapter = cmd.mode === 'sharded' ? createShardedAdapter(pub, sub) : createAdapter(pub, sub);
    const http = createServer();
    const io = new Server(http, { adapter, pingInterval: 2000, pingTimeout: 5000 });
    io.on('connection', (socket) => {
      socket.on('join', (room, ack) => { socket.join(room); ack?.('joined'); });
      socket.on('leave', (room, ack) => { socket.leave(room); ack?.('left'); });
      socket.on('set-data', (data, ack) => { socket.data = data; ack?.('set'); });
      socket.on('shout', (room, msg) => { socket.to(room).emit('shouted', msg); });
    });
    io.on('sse', (...args) => {
      const cb = typeof args[args.length - 1] === 'function' ? args.pop() : null;
      out({ event: 'sse', server: cmd.name, args: toWire(args) });
      cb?.(`${cmd.name}:pong`);
    });
    await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
    servers.set(cmd.name, { io, http });
    return { port: http.address().port };
  },

  async io(cmd) {
    const { io } = servers.get(cmd.server);
    const nsp = io.of(cmd.nsp ?? '/');
    const args = fromWire(cmd.args ?? []);
    switch (cmd.call) {
      case 'emit':
        operator(nsp, cmd).emit(...args);
        return null;
      case 'emitWithAck':
        try {
          return { responses: toWire(await operator(nsp, cmd).timeout(cmd.timeout ?? 2000).emitWithAck(...args)) };
        } catch (e) {
          return { error: e.message };
        }
      case 'fetchSockets': {
        const sockets = await operator(nsp, cmd).fetchSockets();
        return sockets.map((s) => ({ id: s.id, rooms: [...s.rooms], data: toWire(s.data), handshake: s.handshake }));
      }
      case 'socketsJoin': operator(nsp, cmd).socketsJoin(args[0]); return null;
      case 'socketsLeave': operator(nsp, cmd).socketsLeave(args[0]); return null;
      case 'disconnectSockets': operator(nsp, cmd).disconnectSockets(args[0] ?? false); return null;
      case 'serverSideEmit': nsp.serverSideEmit(...args); return null;
      case 'serverSideEmitWithAck':
        try {
          return { responses: toWire(await nsp.serverSideEmitWithAck(...args)) };
        } catch (e) {
          return { error: e.message };
        }
      case 'serverCount': return await nsp.adapter.serverCount();
      case 'allRooms': return [...await nsp.adapter.allRooms()].sort();
      default: throw new Error(`unknown call ${cmd.call}`);
    }
  },

  async client(cmd) {
    const socket = connect(cmd.url, {
      forceNew: true,
      reconnection: false,
      transports: cmd.transports ?? ['websocket'],
      auth: cmd.auth ?? {},
    });
    socket.onAny((ev, ...args) => {
      const cb = typeof args[args.length - 1] === 'function' ? args.pop() : null;
      out({ event: 'recv', client: cmd.name, ev, args: toWire(args) });
      cb?.(cmd.name);
    });
    socket.on('disconnect', (reason) => out({ event: 'client-disconnect', client: cmd.name, reason }));
    await new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    clients.set(cmd.name, socket);
    return { id: socket.id };
  },

  async clientEmit(cmd) {
    const socket = clients.get(cmd.client);
    const args = fromWire(cmd.args ?? []);
    if (cmd.ack) return toWire(await socket.timeout(5000).emitWithAck(cmd.ev, ...args));
    socket.emit(cmd.ev, ...args);
    return null;
  },

  async emitter(cmd) {
    const client = createClient({ url: cmd.redis });
    client.on('error', () => {});
    await client.connect();
    try {
      let e = new Emitter(client);
      if (cmd.nsp) e = e.of(cmd.nsp);
      const op = operator(e, cmd);
      const args = fromWire(cmd.args ?? []);
      switch (cmd.call) {
        case 'emit': await op.emit(...args); break;
        case 'socketsJoin': await op.socketsJoin(args[0]); break;
        case 'socketsLeave': await op.socketsLeave(args[0]); break;
        case 'disconnectSockets': await op.disconnectSockets(args[0] ?? false); break;
        case 'serverSideEmit': await e.serverSideEmit(...args); break;
        default: throw new Error(`unknown call ${cmd.call}`);
      }
      return null;
    } finally {
      await client.quit();
    }
  },

  async closeServer(cmd) {
    const s = servers.get(cmd.server);
    servers.delete(cmd.server);
    await new Promise((resolve) => s.io.close(() => resolve()));
    return null;
  },
};

const rl = createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  if (!line.trim()) return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    out({ event: 'bad-command', line });
    return;
  }
  try {
    const result = await ops[cmd.op](cmd);
    out({ id: cmd.id, ok: true, result: result ?? null });
  } catch (e) {
    out({ id: cmd.id, ok: false, error: String(e?.stack ?? e) });
  }
});
rl.on('close', async () => {
  for (const s of clients.values()) s.close();
  for (const { io } of servers.values()) io.close();
  await Promise.allSettled(redisClients.map((c) => c.quit()));
  process.exit(0);
});
out({ event: 'ready' });
