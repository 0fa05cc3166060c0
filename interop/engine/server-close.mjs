// A session closed by the server, seen from the real `engine.io-client`.
//
// Usage: node engine/server-close.mjs <base-url> <mode>
//   mode: polling | websocket | upgrade (polling, then upgrade to WebSocket)
//
// Opens a session (for `upgrade`, waits until the upgrade is done) and prints `open <sid>`.
// The test then closes the session from the server; the script prints `close <reason>` when
// the client sees it and exits 0 once its connections are gone. Anything else prints
// `fail <reason>` and exits 1 (10 s overall limit).

import { Socket } from "engine.io-client";

const TIMEOUT_MS = 10_000;
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
  if (!finished) console.log("fail exited before the session was closed");
});
process.on("uncaughtException", (e) => fail(`uncaught exception: ${e?.stack ?? e}`));

const deadline = setTimeout(() => {
  if (finished) {
    console.log(`fail connections still open ${TIMEOUT_MS} ms after the start`);
    process.exit(1);
  }
  fail(`timed out after ${TIMEOUT_MS} ms`);
}, TIMEOUT_MS);

if (!baseUrl || !MODES[mode]) {
  fail("usage: server-close.mjs <base-url> polling|websocket|upgrade");
}

const { transports, upgrade } = MODES[mode];
const socket = new Socket(baseUrl, { path: "/engine.io/", transports, upgrade });
let opened = false;

function ready() {
  opened = true;
  console.log(`open ${socket.id}`);
}

socket.on("open", () => {
  if (mode !== "upgrade") ready();
});
socket.on("upgrade", (transport) => {
  if (transport.name !== "websocket") fail(`upgraded to ${transport.name}`);
  else ready();
});
socket.on("upgradeError", (err) => fail(`upgrade failed: ${err?.message ?? err}`));
socket.on("close", (reason, desc) => {
  if (!opened) return fail(`closed before it was ready: ${reason}`);
  const detail = desc?.description?.message ?? desc?.description ?? desc?.message ?? "";
  if (detail) console.error(`server-close.mjs: close detail: ${detail}`);
  finished = true;
  console.log(`close ${reason}`);
  process.exitCode = 0;
  // The process now ends once its connections are closed; the deadline fires only if one is
  // still open at the 10 s mark.
  deadline.unref();
});
