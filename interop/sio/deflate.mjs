// permessage-deflate with the real `socket.io-client` (its `ws` package offers the extension by
// default), driven by crates/server/tests/interop_deflate.rs.
//
// Usage: node sio/deflate.mjs <base-url> <mode> [json-argument]
//   mode: websocket | upgrade (polling, then the WebSocket upgrade)
//
// The client reads what was negotiated from its `ws` socket (`_extensions`) and counts the
// messages its permessage-deflate instance compresses (sent with RSV1) and decompresses
// (received with RSV1), by wrapping that instance's `compress` and `decompress`.
//
// Output (stdout), one per line:
//   extensions <json>                   the accepted permessage-deflate params, or null
//   result <name> <sent> <received> <same>
//                                       one exchange: how many messages the client sent
//                                       compressed, how many it received compressed, and
//                                       whether the answer equals what the server was asked for
//   ok <json> | fail <reason>
// The exchanges (the server's handlers are in the Rust test):
//   echo-big-text, echo-small-text, echo-big-binary: `echo` answers the argument as `echo`
//   plain: the server answers 5000 characters with `compress(false)`
//   broadcast: the server broadcasts 5000 characters to everyone (`io.emit`)

import { io } from "socket.io-client";
import { outcome } from "./outcome.mjs";

const [baseUrl, mode, rawArg] = process.argv.slice(2);
const arg = rawArg ? JSON.parse(rawArg) : {};
const { ok, fail } = outcome({ timeout: arg.timeout ?? 20000 });

const transports = mode === "upgrade" ? ["polling", "websocket"] : ["websocket"];
const socket = io(baseUrl, { transports, reconnection: false, forceNew: true });

function bigText(n, seed) {
  let s = "";
  for (let i = 0; i < n; i++) s += String.fromCharCode(97 + ((i * seed) % 26));
  return s;
}

function once(event) {
  return new Promise((resolve) => socket.once(event, resolve));
}

await once("connect");
if (socket.io.engine.transport.name !== "websocket") {
  await new Promise((resolve) => socket.io.engine.once("upgrade", resolve));
}
const ws = socket.io.engine.transport.ws;
const ext = ws?._extensions?.["permessage-deflate"];
console.log(`extensions ${JSON.stringify(ext ? ext.params : null)}`);

const counts = { sent: 0, received: 0 };
if (ext) {
  const compress = ext.compress.bind(ext);
  const decompress = ext.decompress.bind(ext);
  ext.compress = (data, fin, cb) => {
    counts.sent++;
    compress(data, fin, cb);
  };
  ext.decompress = (data, fin, cb) => {
    counts.received++;
    decompress(data, fin, cb);
  };
}

function same(a, b) {
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) return Buffer.from(a).equals(Buffer.from(b));
  return a === b;
}

async function exchange(name, send, event, want) {
  const before = { ...counts };
  const answer = once(event);
  send();
  const got = await answer;
  const sent = counts.sent - before.sent;
  const received = counts.received - before.received;
  console.log(`result ${name} ${sent} ${received} ${same(got, want)}`);
  return { name, sent, received };
}

const big = bigText(5000, 7);
const bin = Buffer.from(bigText(4000, 3), "latin1");
const results = [];
results.push(await exchange("echo-big-text", () => socket.emit("echo", big), "echo", big));
results.push(await exchange("echo-small-text", () => socket.emit("echo", "hi"), "echo", "hi"));
results.push(await exchange("echo-big-binary", () => socket.emit("echo", bin), "echo", bin));
results.push(await exchange("plain", () => socket.emit("plain"), "plain", bigText(5000, 11)));
results.push(
  await exchange("broadcast", () => socket.emit("broadcast"), "bcast", bigText(5000, 13)),
);
socket.disconnect();
ok({ results });
