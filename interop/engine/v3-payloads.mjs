// Checks Ferrio's Engine.IO v3 polling payloads with the real v3 codec: `engine.io-parser`
// 2.x, the one `socket.io-client` 2.5.0 (pinned as `socket.io-client-v2`) uses. A browser
// client with XHR2 sends and reads the binary payload format; the client in Node has no XHR2
// and always asks for base64, so this script speaks the format itself. Driven by
// crates/engine/tests/eio3.rs against an echo server with `allow_eio3`.
//
// Usage: node engine/v3-payloads.mjs <base-url>   (the engine at <base-url>/engine.io/)
// Prints `result <json>` with what the server answered, decoded by engine.io-parser 2.x
// (binary as {"$bin": hex}), or `fail <reason>` (exit code 1).

import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const fromClient = createRequire(require.resolve("socket.io-client-v2"));
const fromEngine = createRequire(fromClient.resolve("engine.io-client"));
const parser = fromEngine("engine.io-parser");

const base = process.argv[2];
setTimeout(() => fail("timed out"), 10000).unref();

function fail(reason) {
  console.log(`fail ${reason}`);
  process.exit(1);
}

function decode(body) {
  const packets = [];
  parser.decodePayload(body, (p) => {
    packets.push({
      type: p.type,
      data: Buffer.isBuffer(p.data) || p.data instanceof ArrayBuffer
        ? { $bin: Buffer.from(p.data).toString("hex") }
        : p.data,
    });
  });
  return packets;
}

function encode(packets, supportsBinary) {
  return new Promise((resolve) => parser.encodePayload(packets, supportsBinary, resolve));
}

async function get(url) {
  const res = await fetch(url);
  if (res.status !== 200) fail(`GET ${res.status} ${await res.text()}`);
  const type = res.headers.get("content-type");
  const body = type === "application/octet-stream"
    ? Buffer.from(await res.arrayBuffer())
    : await res.text();
  return { type, packets: decode(body) };
}

async function post(url, body) {
  const binary = typeof body !== "string";
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": binary ? "application/octet-stream" : "text/plain;charset=UTF-8" },
    body,
  });
  if (res.status !== 200) fail(`POST ${res.status} ${await res.text()}`);
}

const result = {};
const open = await get(`${base}/engine.io/?EIO=3&transport=polling`);
result.open = open.packets.map((p) => p.type);
const sid = JSON.parse(open.packets[0].data).sid;
const url = `${base}/engine.io/?EIO=3&transport=polling&sid=${sid}`;

// Binary payload: text (with characters of 2, 3 and 4 UTF-8 bytes), binary and a ping.
await post(url, await encode([
  { type: "message", data: "héllo €😀" },
  { type: "message", data: Buffer.from([1, 2, 3, 255]) },
  { type: "ping", data: "x" },
], true));
result.binary = await get(url);

// Text payload, binary as base64.
await post(url, await encode([
  { type: "message", data: "😀€" },
  { type: "message", data: Buffer.from([9]) },
], false));
result.text = await get(url);

// A client without binary support (`b64=1` on its handshake) gets base64 text.
const open64 = await get(`${base}/engine.io/?EIO=3&transport=polling&b64=1`);
const url64 = `${base}/engine.io/?EIO=3&transport=polling&sid=${JSON.parse(open64.packets[0].data).sid}`;
await post(url64, await encode([
  { type: "message", data: "é" },
  { type: "message", data: Buffer.from([0, 255]) },
], false));
result.base64 = await get(url64);
console.log(`result ${JSON.stringify(result)}`);
process.exit(0);
