// The HTTP side of a Socket.IO connection seen from the real `socket.io-client` (pinned in
// package-lock.json): request extensions, header hooks and cookies, CORS origins, refusals and
// compressed polling answers. Driven by crates/server/tests/interop_http.rs.
//
// Usage: node sio/http.mjs <base-url> <mode> <scenario> [json-argument]
//   mode: websocket | polling | upgrade (polling, then the upgrade; scenarios wait for it)
//
// Output, one per line: `step <what>`, then `ok <json>` (exit 0) or `fail <reason>` (exit 1).
// An overall timeout (json-argument `timeout`, default 15 s) turns into `fail`.

import { io } from "socket.io-client";
import { Fetch, NodeWebSocket, NodeXHR } from "engine.io-client";
import { outcome } from "./outcome.mjs";

// SIO_PARSER=msgpack: the socket.io-msgpack-parser format (the server must use it too).
const parser =
  process.env.SIO_PARSER === "msgpack" ? (await import("socket.io-msgpack-parser")).default : undefined;

const [baseUrl, mode, scenario, rawArg] = process.argv.slice(2);
const arg = rawArg ? JSON.parse(rawArg) : {};

const { ok, fail } = outcome({ timeout: arg.timeout ?? 15000 });

/// The headers of every `101` the WebSocket transport gets (the `ws` package's `upgrade`
/// event), for the scenarios that look at them.
const upgradeHeaders = [];

/// The Node WebSocket transport, recording the headers of the server's `101`.
class RecordingWebSocket extends NodeWebSocket {
  createSocket(uri, protocols, opts) {
    const ws = super.createSocket(uri, protocols, opts);
    ws.on("upgrade", (res) => upgradeHeaders.push(res.headers));
    return ws;
  }
}

/// The transports of this mode: `polling` is the given polling implementation (the Node
/// default, XHR, unless a scenario asks for fetch).
function transports(polling = NodeXHR) {
  return {
    websocket: [RecordingWebSocket],
    polling: [polling],
    upgrade: [polling, RecordingWebSocket],
  }[mode];
}

function connect(extra = {}, polling) {
  return io(baseUrl, {
    transports: transports(polling),
    upgrade: mode === "upgrade",
    reconnection: false,
    forceNew: true,
    ...(parser ? { parser } : {}),
    ...extra,
  });
}

/// Resolves once the socket is connected (and, in mode `upgrade`, upgraded); rejects with
/// the `connect_error`.
function ready(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect_error", (e) => reject(e));
    socket.once("connect", () => {
      const engine = socket.io.engine;
      if (mode !== "upgrade" || engine.transport.name === "websocket") return resolve(socket);
      engine.once("upgrade", () => resolve(socket));
      engine.once("upgradeError", (e) => reject(new Error(`upgrade failed: ${e?.message ?? e}`)));
    });
  });
}

function once(socket, event) {
  return new Promise((resolve) => socket.once(event, (...args) => resolve(args)));
}

const SCENARIOS = {
  // A layer in front of the server turns the `session` cookie into an extension. Connects
  // with arg.cookie (if any) as a header, reads `welcome`, asks `whoami` (an ack).
  async extension() {
    const extraHeaders = arg.cookie ? { cookie: arg.cookie } : {};
    const s = connect({ extraHeaders });
    const welcome = once(s, "welcome");
    await ready(s);
    const [hello] = await welcome;
    const whoami = await s.timeout(5000).emitWithAck("whoami");
    ok({ hello, whoami, transport: s.io.engine.transport.name });
  },

  // Cookies set by the server (the sticky cookie and `initial_headers`), kept by the Node
  // client's jar (`withCredentials`) and sent back. Does arg.rounds acked round trips (each
  // one a POST and a GET over polling), then reports the jar, the `101` headers, and what
  // the server said it saw.
  async cookies() {
    const s = connect({ withCredentials: true });
    await ready(s);
    for (let i = 0; i < (arg.rounds ?? 3); i++) await s.timeout(5000).emitWithAck("round", i);
    const jar = {};
    for (const [name, cookie] of s.io.engine._cookieJar?.cookies ?? []) {
      jar[name] = { value: cookie.value, expires: cookie.expires !== undefined };
    }
    const seen = await s.timeout(5000).emitWithAck("seen");
    ok({ jar, upgradeHeaders, seen, transport: s.io.engine.transport.name });
  },

  // Connects with `Origin: o` for each o of arg.origins, one after the other; reports for
  // each whether it connected (and an echo worked) or the connect_error.
  async origins() {
    const results = {};
    for (const origin of arg.origins) {
      const s = connect({ extraHeaders: { origin } });
      try {
        await ready(s);
        const echo = await s.timeout(5000).emitWithAck("echo", origin);
        results[origin] = { connected: true, echo, acao: upgradeHeaders.at(-1)?.["access-control-allow-origin"] ?? null };
      } catch (e) {
        results[origin] = { connected: false, error: e.message, description: e.description?.message ?? e.description ?? null };
      }
      s.close();
    }
    ok(results);
  },

  // Connects at arg.path (the `path` option), reports an echo (an ack) and the transport.
  async path() {
    const s = connect({ path: arg.path });
    await ready(s);
    const echo = await s.timeout(5000).emitWithAck("echo", arg.path);
    ok({ echo, transport: s.io.engine.transport.name });
  },

  // A refused handshake: connects with arg.query (and arg.path, if any) and an `x-client`
  // header, reports the connect_error.
  async refused() {
    const path = arg.path ? { path: arg.path } : {};
    const s = connect({ query: arg.query ?? {}, extraHeaders: { "x-client": "node" }, ...path });
    try {
      await ready(s);
      fail("connected");
    } catch (e) {
      const description = e.description;
      const status = typeof description === "number" ? description : (description?.status ?? description?.message ?? null);
      ok({ error: e.message, status });
    }
  },

  // Large events from the server over polling (arg.fetch: the fetch transport, whose undici
  // sends `Accept-Encoding: gzip, deflate`, or arg.acceptEncoding, and decodes; otherwise
  // XHR, which asks for no coding). Asks `big` for arg.sizes, checks each string, and returns
  // what the server saw.
  async compression() {
    const extraHeaders = arg.acceptEncoding ? { "accept-encoding": arg.acceptEncoding } : {};
    const s = connect({ extraHeaders }, arg.fetch ? Fetch : NodeXHR);
    await ready(s);
    const sizes = [];
    for (const n of arg.sizes) {
      const got = once(s, "big");
      s.emit("big", n);
      const [text] = await got;
      const want = "0123456789abcdef".repeat(Math.ceil(n / 16)).slice(0, n);
      if (text !== want) return fail(`big ${n}: got ${text.length} characters, not the expected text`);
      sizes.push(text.length);
    }
    const seen = await s.timeout(5000).emitWithAck("seen");
    ok({ sizes, seen, transport: s.io.engine.transport.name });
  },
};

const run = SCENARIOS[scenario];
if (!run) fail(`unknown scenario ${scenario}`);
else {
  console.log(`step ${scenario} over ${mode}`);
  run().catch((e) => fail(`${scenario}: ${e?.stack ?? e}`));
}
