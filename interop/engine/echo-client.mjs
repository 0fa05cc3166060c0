// Engine.IO echo round trip with the real `engine.io-client`.
//
// Usage: node engine/echo-client.mjs <base-url> <mode>
//   mode: polling | websocket | upgrade (polling, then upgrade to WebSocket)
//
// Against a server that echoes every message (text as text, binary as binary) with a short
// pingInterval, it:
//   1. opens a session and prints `open <transport>`; for `upgrade` it then waits for the
//      `upgrade` event and checks the transport is `websocket`;
//   2. sends two text messages and one binary message and checks each echo;
//   3. waits for 2 server pings while staying connected;
//   4. closes from the client and checks the `close` reason is `forced close`.
// Prints `ok <json summary>` and exits 0, or `fail <reason>` and exits 1 (10 s overall limit).
// The process exits only once every connection is gone, so a server that does not finish
// the close shows up as the timeout.

import { Socket } from "engine.io-client";

const TIMEOUT_MS = 10_000;
const PINGS = 2;
const TEXTS = ["hello", "€ utf8 ✓"];
const BINARY = [1, 2, 3, 255];
const MODES = {
  polling: { transports: ["polling"], upgrade: false },
  websocket: { transports: ["websocket"], upgrade: false },
  upgrade: { transports: ["polling", "websocket"], upgrade: true },
};

const [baseUrl, mode] = process.argv.slice(2);
let finished = false;
process.exitCode = 1;

function fail(reason) {
  if (finished) return;
  finished = true;
  console.log(`fail ${reason}`);
  process.exit(1);
}

process.on("exit", () => {
  if (!finished) console.log("fail exited before the scenario completed");
});
process.on("uncaughtException", (e) => fail(`uncaught exception: ${e?.stack ?? e}`));

const deadline = setTimeout(() => {
  if (finished) {
    // `ok` was printed but a connection is still open: the close did not complete.
    console.log(`fail connections still open ${TIMEOUT_MS} ms after the start`);
    process.exit(1);
  }
  fail(`timed out after ${TIMEOUT_MS} ms`);
}, TIMEOUT_MS);

if (!baseUrl || !MODES[mode]) {
  fail("usage: echo-client.mjs <base-url> polling|websocket|upgrade");
}

const { transports, upgrade } = MODES[mode];
const socket = new Socket(baseUrl, { path: "/engine.io/", transports, upgrade });
const summary = { mode, sid: null, opened: null, transport: null, echoes: [], pings: 0 };

// Resolves on the next event `name`; rejects if the socket closes or errors first.
function next(name) {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      socket.off(name, onEvent);
      socket.off("close", onClose);
      socket.off("error", onError);
    };
    const onEvent = (...args) => {
      cleanup();
      resolve(args);
    };
    const onClose = (reason, desc) => {
      cleanup();
      reject(new Error(`closed while waiting for ${name}: ${reason} ${describe(desc)}`));
    };
    const onError = (err) => {
      cleanup();
      reject(new Error(`error while waiting for ${name}: ${err?.message ?? err}`));
    };
    socket.on(name, onEvent);
    socket.on("close", onClose);
    socket.on("error", onError);
  });
}

function describe(desc) {
  if (!desc) return "";
  if (desc instanceof Error) return desc.message;
  return JSON.stringify(desc.description?.message ?? desc.description ?? desc);
}

function bytesOf(data) {
  if (Buffer.isBuffer(data)) return [...data];
  if (data instanceof ArrayBuffer) return [...new Uint8Array(data)];
  if (ArrayBuffer.isView(data)) return [...new Uint8Array(data.buffer, data.byteOffset, data.byteLength)];
  return null;
}

async function scenario() {
  await next("open");
  summary.sid = socket.id;
  summary.opened = socket.transport.name;
  console.log(`open ${socket.transport.name}`);
  const expectedOpen = mode === "websocket" ? "websocket" : "polling";
  if (socket.transport.name !== expectedOpen) {
    throw new Error(`opened on ${socket.transport.name}, expected ${expectedOpen}`);
  }

  if (mode === "upgrade") {
    const [transport] = await next("upgrade");
    if (transport.name !== "websocket" || socket.transport.name !== "websocket") {
      throw new Error(`upgraded to ${transport.name}, expected websocket`);
    }
    console.log("upgrade websocket");
  }

  // Every message is echoed in order, so collect the next three.
  const received = [];
  const echoes = new Promise((resolve, reject) => {
    socket.on("message", (data) => {
      received.push(data);
      if (received.length === TEXTS.length + 1) resolve();
    });
    socket.once("close", (reason) => reject(new Error(`closed before the echoes: ${reason}`)));
  });
  for (const text of TEXTS) socket.send(text);
  socket.send(Buffer.from(BINARY));
  await echoes;
  for (let i = 0; i < TEXTS.length; i++) {
    if (received[i] !== TEXTS[i]) {
      throw new Error(`echo ${i}: got ${JSON.stringify(received[i])}, want ${JSON.stringify(TEXTS[i])}`);
    }
    summary.echoes.push(received[i]);
  }
  const bytes = bytesOf(received[TEXTS.length]);
  if (!bytes || JSON.stringify(bytes) !== JSON.stringify(BINARY)) {
    throw new Error(`binary echo: got ${typeof received[TEXTS.length]} ${JSON.stringify(bytes ?? received[TEXTS.length])}`);
  }
  summary.echoes.push(bytes);

  // Heartbeats on the final transport: the client answers each ping; the session must stay up.
  for (let i = 0; i < PINGS; i++) {
    await next("ping");
    summary.pings++;
  }
  if (socket.readyState !== "open") throw new Error(`readyState ${socket.readyState} after pings`);
  summary.transport = socket.transport.name;

  const closed = new Promise((resolve) => socket.once("close", (reason) => resolve(reason)));
  socket.close();
  const reason = await closed;
  if (reason !== "forced close") throw new Error(`close reason ${reason}, want "forced close"`);
  summary.closeReason = reason;
}

scenario().then(
  () => {
    if (finished) return;
    finished = true;
    console.log(`ok ${JSON.stringify(summary)}`);
    process.exitCode = 0;
    // From here the process ends once the transport's connections are closed; the deadline
    // only fires if one is still open at the 10 s mark.
    deadline.unref();
  },
  (e) => fail(e?.message ?? String(e)),
);
