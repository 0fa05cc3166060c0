// Socket.IO interop scenarios with the real `socket.io-client` (pinned in package-lock.json),
// driven by the Rust tests of crates/server/tests/interop_*.rs.
//
// Usage: node sio/client.mjs <base-url> <mode> <scenario> [json-argument]
//   mode: websocket (WebSocket only) | polling (long-polling only) | upgrade (polling, then the
//         upgrade to WebSocket; every scenario waits for the upgrade before it goes on)
//
// Output, one per line (stdout):
//   step <what>                   progress, for debugging a failure
//   <name> <values...>            what the Rust test waits for (listed with each scenario)
//   ok <json>                     the scenario passed; the JSON is its summary (exit code 0)
//   fail <reason>                 the scenario failed (exit code 1)
// An overall timeout (json-argument `timeout`, default 20 s) turns into `fail`.
//
// Environment: SIO_PARSER=msgpack makes every socket use socket.io-msgpack-parser.
//
// Binary values in summaries are written `{"$bin":"<hex>"}`. Managers never reconnect unless
// the scenario says so.

import { io, Manager } from "socket.io-client";
import { TRANSPORTS, outcome, plain } from "./outcome.mjs";

// SIO_PARSER=msgpack: the socket.io-msgpack-parser format (the server must use it too).
const parser =
  process.env.SIO_PARSER === "msgpack" ? (await import("socket.io-msgpack-parser")).default : undefined;

const [baseUrl, mode, scenario, rawArg] = process.argv.slice(2);
const arg = rawArg ? JSON.parse(rawArg) : {};

const { line, step, ok, fail } = outcome({ timeout: arg.timeout ?? 20000, encode: plain });

if (!baseUrl || !TRANSPORTS[mode]) {
  fail("usage: client.mjs <base-url> websocket|polling|upgrade <scenario> [json]");
}

/// Manager options for this mode (no reconnection unless `extra` enables it).
function options(extra = {}) {
  return {
    transports: TRANSPORTS[mode],
    upgrade: mode === "upgrade",
    reconnection: false,
    forceNew: true,
    ...(parser ? { parser } : {}),
    ...extra,
  };
}

/// A socket on its own manager.
function connect(nsp = "/", extra = {}) {
  return io(baseUrl + nsp, options(extra));
}

/// JSON with object keys sorted (the server may reorder keys: JSON objects are unordered).
function canonical(value) {
  return JSON.stringify(plain(value), (_, v) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]]))
      : v,
  );
}

function same(a, b) {
  return canonical(a) === canonical(b);
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

function checkSame(got, want, what) {
  check(same(got, want), `${what}: got ${canonical(got)}, want ${canonical(want)}`);
}

/// Every event a socket receives, kept until a scenario takes it (so that nothing emitted
/// right after CONNECT is missed while the scenario is still waiting for the upgrade).
class Inbox {
  constructor(socket) {
    this.items = [];
    this.waiters = [];
    socket.onAny((event, ...args) => this.push(event, args));
  }

  push(event, args) {
    const i = this.waiters.findIndex((w) => w.event === event);
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      w.resolve(args);
    } else {
      this.items.push({ event, args });
    }
  }

  /// The arguments of the next `event` (functions, i.e. ack callbacks, included).
  next(event) {
    const i = this.items.findIndex((x) => x.event === event);
    if (i >= 0) return Promise.resolve(this.items.splice(i, 1)[0].args);
    return new Promise((resolve) => this.waiters.push({ event, resolve }));
  }

  has(event) {
    return this.items.some((x) => x.event === event);
  }
}

/// The next `event` emitted by `emitter`, as the list of its arguments.
function once(emitter, event) {
  return new Promise((resolve) => emitter.once(event, (...args) => resolve(args)));
}

/// Resolves once the engine runs on WebSocket (mode `upgrade` only).
function upgraded(engine) {
  if (mode !== "upgrade" || engine.transport.name === "websocket") return Promise.resolve();
  return new Promise((resolve, reject) => {
    engine.once("upgrade", () => resolve());
    engine.once("upgradeError", (e) => reject(new Error(`upgrade failed: ${e?.message ?? e}`)));
  });
}

/// Resolves once the socket is connected (and upgraded); rejects with the `connect_error`.
function ready(socket) {
  return new Promise((resolve, reject) => {
    const onConnect = () => {
      socket.off("connect_error", onError);
      upgraded(socket.io.engine).then(() => resolve(socket), reject);
    };
    const onError = (err) => {
      socket.off("connect", onConnect);
      const e = new Error(err.message);
      e.data = err.data;
      reject(e);
    };
    if (socket.connected) return onConnect();
    socket.once("connect", onConnect);
    socket.once("connect_error", onError);
  });
}

function transport(socket) {
  return socket.io.engine.transport.name;
}

/// `emit` with a callback, resolving with every argument of the acknowledgement.
function emitAck(socket, event, ...args) {
  return new Promise((resolve) => socket.emit(event, ...args, (...res) => resolve(res)));
}

const SCENARIOS = {
  // Events both ways. Prints `connected <id> <transport>`, then waits for the test's `push`.
  async events() {
    const s = connect("/", { auth: { token: "abc" } });
    const inbox = new Inbox(s);
    await ready(s);
    const [welcome] = await inbox.next("welcome");
    checkSame(welcome, { ns: "/", auth: { token: "abc" } }, "welcome");
    line(`connected ${s.id} ${transport(s)}`);
    const sent = [1, "two", { three: [true, null] }, [1.5, -2], "€ ✓"];
    s.emit("echo", ...sent);
    const echo = await inbox.next("echo");
    checkSame(echo, sent, "echo");
    s.emit("typed", { name: "x", n: 5 });
    s.emit("no-args");
    const push = await inbox.next("push");
    ok({ welcome, echo, push, transport: transport(s), id: s.id, engineId: s.io.engine.id });
  },

  // Acks both ways. Prints `connected <id>`; answers `question` (a, b) with (a + b, "ok");
  // ends on `done`.
  async acks() {
    const s = connect("/");
    const inbox = new Inbox(s);
    s.on("question", (a, b, cb) => cb(a + b, "ok"));
    await ready(s);
    line(`connected ${s.id}`);
    const sum = await s.emitWithAck("sum", 2, 3);
    const multi = await emitAck(s, "ack-args", 1, "x", { y: true });
    const rejected = await s.emitWithAck("sum", "not a number", 3);
    const empty = await emitAck(s, "ack-empty");
    await inbox.next("done");
    ok({ sum, multi, rejected, emptyLen: empty.length, transport: transport(s) });
  },

  // Ack timeouts both ways. The client's `ignored` never answers, `late` answers after
  // 400 ms, `question` answers x * 2. Prints `connected <id>`; ends on `done`, after its late
  // answer went out and one more round trip worked.
  async "ack-timeouts"() {
    const s = connect("/");
    const inbox = new Inbox(s);
    let lateSent;
    const late = new Promise((resolve) => (lateSent = resolve));
    s.on("ignored", () => {});
    s.on("late", (x, cb) =>
      setTimeout(() => {
        cb("late answer");
        lateSent();
      }, 400),
    );
    s.on("question", (x, cb) => cb(x * 2));
    await ready(s);
    line(`connected ${s.id}`);
    const t0 = Date.now();
    let promiseStyle = "resolved";
    try {
      await s.timeout(300).emitWithAck("never", 1);
    } catch (e) {
      promiseStyle = e.message;
    }
    const elapsed = Date.now() - t0;
    const callbackStyle = await new Promise((resolve) =>
      s.timeout(200).emit("never", 2, (err, v) => resolve(err ? err.message : `value ${v}`)),
    );
    const inTime = await s.timeout(5000).emitWithAck("sum", 1, 1);
    await inbox.next("done");
    await late;
    const after = await s.timeout(5000).emitWithAck("sum", 2, 2);
    ok({ promiseStyle, elapsed, callbackStyle, inTime, after, connected: s.connected });
  },

  // Binary both ways: nested buffers, several attachments, binary acks. Prints
  // `connected <id>`; waits for the test's `from-server`, answers `bin-question` with
  // (Buffer 09 08 07, {echoed: <question>}); ends on `done`.
  async binary() {
    const s = connect("/");
    const inbox = new Inbox(s);
    s.on("bin-question", (q, cb) => cb(Buffer.from([9, 8, 7]), { echoed: q }));
    await ready(s);
    line(`connected ${s.id}`);
    const args = [
      Buffer.from([1, 2, 3]),
      { nested: { list: [Buffer.from([4]), "text", Buffer.alloc(0)] }, deep: [[[Buffer.from([5, 6])]]] },
      "plain",
    ];
    s.emit("bin-echo", ...args);
    const back = await inbox.next("bin-echo");
    checkSame(back, args, "bin-echo");
    check(Buffer.isBuffer(back[0]), "bin-echo: first argument is a Buffer");
    const acked = await emitAck(s, "bin-ack", ...args);
    checkSame(acked, args, "bin-ack");
    const typed = await s.emitWithAck("bin-typed", {
      name: "files",
      files: [Buffer.from("ab"), Buffer.from([0, 255]), Buffer.alloc(0)],
    });
    const fromServer = await inbox.next("from-server");
    await inbox.next("done");
    ok({ back, acked, typed, fromServer, transport: transport(s) });
  },

  // Catch-all listeners: emits a, b, c; waits for `reply` (to a), then the test's
  // `broadcast` and `direct`. Prints `connected <id>`.
  async any() {
    const s = connect("/");
    const inbox = new Inbox(s);
    await ready(s);
    line(`connected ${s.id}`);
    s.emit("a", 1);
    s.emit("b", { x: 1 });
    s.emit("c");
    const reply = await inbox.next("reply");
    const broadcast = await inbox.next("broadcast");
    const direct = await inbox.next("direct");
    ok({ reply, broadcast, direct });
  },

  // Packet middlewares (`socket.use`): the server refuses `secret` and `secret-async` and
  // rewrites the argument of `shout`; `report` answers what the server saw. Prints
  // `connected <id>`.
  async "packet-middleware"() {
    const s = connect("/");
    await ready(s);
    line(`connected ${s.id}`);
    s.emit("secret", "x");
    s.emit("secret-async", "y");
    s.emit("shout", "hi");
    const report = await s.emitWithAck("report");
    ok({ report });
  },

  // Ordering: emits `seq` 0..count-1 as fast as possible, asks `count` (an ack), prints
  // `sent <acked count>`, then checks that `s2c` 0..count-1 from the server arrive in order.
  async ordering() {
    const count = arg.count ?? 5000;
    const s = connect("/");
    let next = 0;
    let done;
    const allIn = new Promise((resolve) => (done = resolve));
    s.on("s2c", (n) => {
      if (n !== next) fail(`s2c: got ${n}, want ${next}`);
      next += 1;
      if (next === count) done();
    });
    await ready(s);
    line(`connected ${s.id}`);
    for (let i = 0; i < count; i++) s.emit("seq", i);
    const acked = await s.timeout(15000).emitWithAck("count");
    line(`sent ${acked}`);
    await allIn;
    ok({ acked, received: next, transport: transport(s) });
  },

  // Two namespaces on one manager (one Engine.IO connection). Prints
  // `connected <root id> <chat id>`; waits for the test's `chat-only` on /chat and `done` on /.
  async namespaces() {
    const m = new Manager(baseUrl, options());
    const root = m.socket("/", { auth: { which: "root" } });
    const chat = m.socket("/chat", { auth: { which: "chat" } });
    const rootIn = new Inbox(root);
    const chatIn = new Inbox(chat);
    await Promise.all([ready(root), ready(chat)]);
    const [rootWelcome] = await rootIn.next("welcome");
    const [chatWelcome] = await chatIn.next("welcome");
    line(`connected ${root.id} ${chat.id}`);
    root.emit("echo", "r");
    chat.emit("echo", "c");
    const rootEcho = await rootIn.next("echo");
    const chatEcho = await chatIn.next("echo");
    const [chatOnly] = await chatIn.next("chat-only");
    await rootIn.next("done");
    ok({
      rootWelcome,
      chatWelcome,
      rootEcho,
      chatEcho,
      chatOnly,
      rootGotChatOnly: rootIn.has("chat-only"),
      sameEngine: root.io.engine === chat.io.engine,
    });
  },

  // Dynamic and unknown namespaces, each on its own manager (arg.connect: [[nsp, auth], ...]).
  // Prints `connected <json results>`, then waits for the test's `room-msg` then `done` on
  // the first namespace that connected.
  // With arg.allDone, it waits for `done` on every connected namespace instead, and the
  // summary's `roomMsgs` lists, per namespace, the `room-msg` it got before its `done`.
  async dynamic() {
    const results = {};
    const sockets = {};
    await Promise.all(
      arg.connect.map(async ([nsp, auth]) => {
        const s = connect(nsp, { auth });
        const inbox = new Inbox(s);
        try {
          await ready(s);
          const [welcome] = await inbox.next("welcome");
          results[nsp] = { connected: true, welcome };
          sockets[nsp] = { s, inbox };
        } catch (e) {
          results[nsp] = { connected: false, error: e.message, active: s.active };
        }
      }),
    );
    line(`connected ${JSON.stringify(results)}`);
    if (arg.allDone) {
      const roomMsgs = {};
      await Promise.all(
        Object.entries(sockets).map(async ([nsp, { inbox }]) => {
          await inbox.next("done");
          roomMsgs[nsp] = inbox.items.filter((x) => x.event === "room-msg").map((x) => x.args[0]);
        }),
      );
      ok({ results, roomMsgs });
      return;
    }
    const first = arg.connect.map(([nsp]) => nsp).find((nsp) => sockets[nsp]);
    const [roomMsg] = await sockets[first].inbox.next("room-msg");
    await sockets[first].inbox.next("done");
    const others = Object.entries(sockets)
      .filter(([nsp]) => nsp !== first)
      .map(([, { inbox }]) => inbox.has("room-msg"));
    ok({ results, roomMsg, othersGotRoomMsg: others.some((x) => x) });
  },

  // Middlewares: arg.connect: [[nsp, auth, query], ...], one after the other. Prints
  // `ok` with, for each, the welcome (and with arg.askTag the ack of `tag`) or the
  // connect_error (message, data, whether the socket would reconnect).
  async middleware() {
    const results = [];
    for (const [nsp, auth, query] of arg.connect) {
      const s = connect(nsp, { auth, query: query ?? {} });
      const inbox = new Inbox(s);
      try {
        await ready(s);
        const [welcome] = await inbox.next("welcome");
        const tag = arg.askTag ? await s.timeout(5000).emitWithAck("tag") : undefined;
        results.push({ nsp, connected: true, welcome, tag });
      } catch (e) {
        results.push({
          nsp,
          connected: false,
          message: e.message,
          data: e.data === undefined ? "absent" : e.data,
          active: s.active,
        });
      }
      s.close();
    }
    ok(results);
  },

  // Several clients, one manager each (arg.clients: [{name, rooms, answer}]). Each joins its
  // rooms (`join` with an ack), then the script prints `connected <name> <id>` for each and
  // `ready`. Every event a client gets is logged as [event, ...args] (a `disconnect` as
  // ["disconnect", reason]); `poll` (q, cb) is answered with "<name>:<q>" when `answer`. Ends
  // when every client got `end` or was disconnected; the summary maps names to logs.
  async "room-clients"() {
    const clients = arg.clients.map((c) => ({ ...c, s: connect("/", { auth: { name: c.name } }), log: [] }));
    const ends = clients.map(
      (c) =>
        new Promise((resolve) => {
          c.s.onAny((event, ...args) => {
            if (event === "end") resolve();
            else c.log.push([event, ...args]);
          });
          c.s.on("poll", (q, cb) => {
            if (c.answer) cb(`${c.name}:${q}`);
          });
          c.s.on("disconnect", (reason) => {
            c.log.push(["disconnect", reason]);
            resolve();
          });
        }),
    );
    await Promise.all(clients.map((c) => ready(c.s)));
    for (const c of clients) {
      const rooms = await c.s.emitWithAck("join", c.rooms);
      checkSame(rooms, c.rooms, `${c.name} joined`);
    }
    for (const c of clients) line(`connected ${c.name} ${c.s.id}`);
    line("ready");
    await Promise.all(ends);
    ok(Object.fromEntries(clients.map((c) => [c.name, c.log])));
  },

  // Disconnections. Sockets on one manager for arg.nsps (default ["/"]); prints
  // `connected <id>...` in that order (arg.reconnection turns reconnection on, to check that
  // the socket does not use it). Then arg.action: "wait" (the server acts),
  // "disconnect" (socket.disconnect() on the first), "bye-then-disconnect" (emit `bye` then
  // disconnect at once), "close-manager" (the manager's engine is closed). Waits for arg.expect disconnections (default 1), printing
  // `disconnected <nsp> <reason>` for each; with arg.control, connects a new manager to
  // /control, prints `control <id>` and waits for its `done` (so that the process stays until
  // the server has seen the end). "oversized": the first socket emits `big` with a string of
  // arg.size characters.
  async disconnect() {
    const nsps = arg.nsps ?? ["/"];
    const m = new Manager(baseUrl, options({ reconnection: arg.reconnection ?? false, reconnectionDelay: 50 }));
    const sockets = nsps.map((nsp) => m.socket(nsp));
    const reasons = {};
    let expect = arg.expect ?? 1;
    let allGone;
    const gone = new Promise((resolve) => (allGone = resolve));
    sockets.forEach((s, i) =>
      s.on("disconnect", (reason) => {
        reasons[nsps[i]] = { reason, active: s.active };
        line(`disconnected ${nsps[i]} ${reason}`);
        if (--expect === 0) allGone();
      }),
    );
    await Promise.all(sockets.map(ready));
    line(`connected ${sockets.map((s) => s.id).join(" ")}`);
    if (arg.action === "disconnect") sockets[0].disconnect();
    if (arg.action === "bye-then-disconnect") {
      sockets[0].emit("bye", "see you");
      sockets[0].disconnect();
    }
    if (arg.action === "close-manager") m.engine.close();
    if (arg.action === "oversized") sockets[0].emit("big", "x".repeat(arg.size));
    await gone;
    if (arg.control) {
      const c = connect("/control");
      const inbox = new Inbox(c);
      await ready(c);
      line(`control ${c.id}`);
      await inbox.next("done");
    }
    ok(reasons);
  },

  // The listener API: send/message, once, several catch-all listeners, outgoing listeners.
  // Prints `connected <id>`; gets `hello`; sends `message` ("hi", 1) and waits for the
  // server's `message` answer; emits `a` (1), `a` (2), `b` ({x: true}); then asks `report`.
  async api() {
    const s = connect("/");
    const inbox = new Inbox(s);
    await ready(s);
    line(`connected ${s.id}`);
    const hello = await inbox.next("hello");
    s.send("hi", 1);
    const message = await inbox.next("message");
    s.emit("a", 1);
    s.emit("a", 2);
    s.emit("b", { x: true });
    const report = await s.emitWithAck("report");
    ok({ hello, message, report });
  },

  // Reconnection after a server restart: connects (reconnection on, short delays), gets
  // `welcome` {generation}, echoes once, prints `connected <id> <generation>`; after the
  // disconnect prints `disconnected <reason>`; once reconnected (and upgraded) gets the new
  // `welcome`, echoes again and prints `reconnected <id> <generation>`.
  async reconnect() {
    const s = connect("/", {
      reconnection: true,
      reconnectionDelay: 100,
      reconnectionDelayMax: 200,
      randomizationFactor: 0,
    });
    const inbox = new Inbox(s);
    let attempts = 0;
    s.io.on("reconnect_attempt", (n) => (attempts = n));
    await ready(s);
    const [first] = await inbox.next("welcome");
    const before = await s.timeout(5000).emitWithAck("echo-ack", "before");
    const firstId = s.id;
    line(`connected ${s.id} ${first.generation}`);
    const [reason] = await once(s, "disconnect");
    line(`disconnected ${reason}`);
    await once(s, "connect");
    await upgraded(s.io.engine);
    const [second] = await inbox.next("welcome");
    const after = await s.timeout(5000).emitWithAck("echo-ack", "after");
    line(`reconnected ${s.id} ${second.generation}`);
    ok({ firstId, secondId: s.id, first, second, before, after, reason, attempts, transport: transport(s) });
  },
};

const run = SCENARIOS[scenario];
if (!run) fail(`unknown scenario ${scenario}`);
else {
  step(`${scenario} over ${mode}`);
  run().catch((e) => fail(`${scenario}: ${e?.stack ?? e}`));
}
