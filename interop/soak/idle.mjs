// A socket.io-client that connects and then idles, for the half-open scenario of the soak suite
// (crates/server/tests/soak/half_open.rs), run inside a network namespace.
//
// Usage: node soak/idle.mjs <base-url> <websocket|polling>
// Output: `connected <socket id>` once connected (stdout). No reconnection: the test black-holes
// the connection, then kills this process.

import { io } from "socket.io-client";

const [baseUrl, transport] = process.argv.slice(2);
const socket = io(baseUrl, { transports: [transport], reconnection: false });
socket.on("connect", () => console.log(`connected ${socket.id}`));
socket.on("connect_error", (e) => {
  console.log(`fail ${e.message}`);
  process.exit(1);
});
