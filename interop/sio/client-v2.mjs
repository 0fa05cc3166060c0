// Socket.IO v2 interop scenarios: the real `socket.io-client` 2.5.0 (Engine.IO v3, Socket.IO
// protocol v4; pinned in package-lock.json as `socket.io-client-v2`) against a server that
// accepts it (Ferrio with `allow_eio3`, or Node `socket.io` with `allowEIO3: true`: the
// handlers of interop/sio/server-v2.mjs). Driven by crates/server/tests/interop_eio3.rs.
//
// Usage: node sio/client-v2.mjs <base-url> <mode> <scenario> [json-argument]
//   mode: websocket | polling | upgrade (polling, then the upgrade; scenarios wait for it)
//   json-argument: {"b64": true} makes the client send and expect binary as base64 text
//   (`forceBase64`), {"timeout": ms} bounds the run (default 20 s)
//
// Output, one per line: `step <what>`, `connected <socket id> <transport>`, then
// `ok <json summary>` (exit 0) or `fail <reason>` (exit 1). Binary values in summaries are
// written {"$bin":"<hex>"}.
//
// Scenarios (server side: interop/sio/server-v2.mjs):
//   main        `/` with query token=abc: welcome, echo, acks both ways (with binary), binary
//               events both ways, then the server disconnects the socket
//   namespaces  `/admin?token=xyz` (auth from the query), a middleware error (message, then
//               data), an unknown namespace

import io from "socket.io-client-v2";
import { TRANSPORTS, outcome, plain } from "./outcome.mjs";

const [baseUrl, mode, scenario, rawArg] = process.argv.slice(2);
const arg = rawArg ? JSON.parse(rawArg) : {};

const { line, step, ok, fail } = outcome({ timeout: arg.timeout ?? 20000, encode: plain });
if (!baseUrl || !TRANSPORTS[mode]) {
  fail("usage: client-v2.mjs <base-url> websocket|polling|upgrade <scenario> [json]");
}


function connect(nsp, extra = {}) {
  return io(baseUrl + nsp, {
    transports: TRANSPORTS[mode],
    upgrade: mode === "upgrade",
    reconnection: false,
    forceNew: true,
    forceBase64: arg.b64 === true,
    ...extra,
  });
}

/// Resolves with the arguments of the next `event` on `emitter`.
function next(emitter, event) {
  return new Promise((resolve) => emitter.once(event, (...args) => resolve(args)));
}

/// Resolves once the socket is connected (and, in upgrade mode, on WebSocket).
async function ready(socket) {
  if (!socket.connected) await next(socket, "connect");
  const engine = socket.io.engine;
  if (mode === "upgrade" && engine.transport.name !== "websocket") {
    step("waiting for the upgrade");
    await next(engine, "upgrade");
  }
  return engine.transport.name;
}

function emitWithAck(socket, ...args) {
  return new Promise((resolve) => socket.emit(...args, (...answer) => resolve(answer)));
}

const scenarios = {
  async main() {
    const socket = connect("/", { query: { token: "abc" } });
    const welcome = next(socket, "welcome");
    socket.on("ask", (n, cb) => cb(n * 2, Buffer.from([7])));
    const transport = await ready(socket);
    line(`connected ${socket.id} ${transport}`);
    const summary = { transport, b64: !socket.io.engine.transport.supportsBinary };
    summary.welcome = (await welcome)[0];
    step("echo");
    const echo = next(socket, "echo");
    socket.emit("echo", "a", 1, { k: [null] }, "€😀");
    summary.echo = await echo;
    step("ack");
    summary.ack = await emitWithAck(socket, "ack-me", 1, "two", { three: 3 });
    step("binary");
    const binBack = next(socket, "bin-back");
    socket.emit("bin", Buffer.from([1, 2, 3]), { nested: Buffer.from([4, 5]) });
    summary.bin = await binBack;
    summary.binAck = await emitWithAck(socket, "ack-me", Buffer.from([9, 8]));
    step("server ack");
    const asked = next(socket, "asked");
    socket.emit("ask-me", 21);
    summary.asked = await asked;
    step("server disconnect");
    const disconnect = next(socket, "disconnect");
    socket.emit("bye");
    summary.disconnect = (await disconnect)[0];
    ok(summary);
  },

  async namespaces() {
    const summary = {};
    const admin = connect("/admin", { query: { token: "xyz" } });
    const welcome = next(admin, "welcome");
    summary.transport = await ready(admin);
    line(`connected ${admin.id} ${summary.transport}`);
    summary.adminId = admin.id.startsWith("/admin#");
    summary.adminWelcome = (await welcome)[0];
    const echo = next(admin, "echo");
    admin.emit("echo", "on admin");
    summary.adminEcho = await echo;
    admin.close();

    step("middleware error");
    const refused = connect("/private");
    summary.privateError = (await next(refused, "error"))[0];
    summary.privateConnected = refused.connected;
    refused.close();
    const refusedData = connect("/private", { query: { withData: "1" } });
    summary.privateErrorData = (await next(refusedData, "error"))[0];
    refusedData.close();

    step("unknown namespace");
    const nope = connect("/nope");
    summary.unknownNamespace = (await next(nope, "error"))[0];
    nope.close();
    ok(summary);
  },
};

const run = scenarios[scenario];
if (!run) fail(`unknown scenario ${scenario}`);
else run().catch((e) => fail(`scenario threw: ${e?.stack ?? e}`));
