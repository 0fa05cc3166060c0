// A fresh `socket.io-client` per check, over WebSocket and over polling: proves that a server
// still serves new clients after a hostile request (crates/server/tests/hostile_input.rs).
//
// Usage: node sio/fresh.mjs <base-url>
//   Reads lines `check <label>` from stdin. For each, opens two new managers (`forceNew`, no
//   reconnection), one with `transports: ["websocket"]` and one with `["polling"]`, emits
//   `hello` with an acknowledgement on each, expects the answer `world`, closes both and
//   prints `ok <label>`. A failure prints `fail <label> <reason>` and exits 1. Each check has
//   5 s. The script exits 0 at the end of stdin.

import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const [baseUrl] = process.argv.slice(2);
const CHECK_MS = 5000;

function once(transport) {
  return new Promise((resolve, reject) => {
    const s = io(baseUrl, { transports: [transport], forceNew: true, reconnection: false });
    const timer = setTimeout(() => {
      s.close();
      reject(new Error(`${transport}: no answer within ${CHECK_MS} ms`));
    }, CHECK_MS);
    s.once("connect_error", (e) => {
      clearTimeout(timer);
      s.close();
      reject(new Error(`${transport}: connect_error ${e.message}`));
    });
    s.once("connect", () => {
      if (s.io.engine.transport.name !== transport) {
        clearTimeout(timer);
        s.close();
        reject(new Error(`${transport}: connected on ${s.io.engine.transport.name}`));
        return;
      }
      s.emit("hello", (answer) => {
        clearTimeout(timer);
        s.close();
        if (answer === "world") resolve();
        else reject(new Error(`${transport}: answer ${JSON.stringify(answer)}`));
      });
    });
  });
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const label = line.replace(/^check /, "");
  try {
    await once("websocket");
    await once("polling");
    console.log(`ok ${label}`);
  } catch (e) {
    console.log(`fail ${label} ${e?.message ?? e}`);
    process.exit(1);
  }
}
process.exit(0);
