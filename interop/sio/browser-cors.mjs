// CORS as a browser enforces it: a page of another origin (http://localhost:<port>, served
// here; a loopback page, so that Chromium's private network rules stay out of the way)
// connects to Ferrio at 127.0.0.1 with the real socket.io-client bundle, in headless Chromium
// (Debian's /usr/bin/chromium, driven by playwright-core). Run by
// crates/server/tests/browser_cors.rs, which owns the Ferrio servers.
//
// Usage: node sio/browser-cors.mjs <url of a server allowing http://localhost:*> <url of one
//        refusing it>
//
// Prints `ok <json>` (each attempt: connected or the error, what the server saw, the
// transport; what a fetch of the handshake could read of its headers) and exits 0; a failure
// prints `fail <reason>` and exits 1.

import { readFileSync } from "node:fs";
import { createServer } from "node:http";

import { chromium } from "playwright-core";

const [allowed, refused] = process.argv.slice(2);
// The package's exports leave out dist/, so it is read by path.
const bundle = readFileSync(
  new URL("../node_modules/socket.io-client/dist/socket.io.min.js", import.meta.url),
  "utf8",
);

// The page and the bundle, from the page's own origin.
const pageServer = createServer((req, res) => {
  if (req.url === "/socket.io.min.js") {
    res.writeHead(200, { "content-type": "application/javascript" });
    return res.end(bundle);
  }
  res.writeHead(200, { "content-type": "text/html" });
  res.end('<!doctype html><meta charset="utf-8"><script src="/socket.io.min.js"></script>');
});
await new Promise((resolve) => pageServer.listen(0, "127.0.0.1", resolve));
const pageOrigin = `http://localhost:${pageServer.address().port}`;

let browser;
async function main() {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--disable-dev-shm-usage"],
  });
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  await page.goto(`${pageOrigin}/`);
  const results = await page.evaluate(async ({ allowed, refused }) => {
    function attempt(url, opts) {
      return new Promise((resolve) => {
        const s = io(url, { reconnection: false, forceNew: true, ...opts });
        const timer = setTimeout(() => {
          s.close();
          resolve({ connected: false, error: "timeout" });
        }, 8000);
        s.on("connect", async () => {
          try {
            if (opts.upgrade !== false && !opts.transports) {
              if (s.io.engine.transport.name !== "websocket") {
                await new Promise((r) => s.io.engine.once("upgrade", r));
              }
            }
            const seen = await s.timeout(5000).emitWithAck("whoami");
            const big = await s.timeout(5000).emitWithAck("big", 5000);
            resolve({ connected: true, seen, bigLength: big.length, transport: s.io.engine.transport.name });
          } catch (e) {
            resolve({ connected: true, error: e.message });
          } finally {
            clearTimeout(timer);
            s.close();
          }
        });
        s.on("connect_error", (e) => {
          clearTimeout(timer);
          s.close();
          resolve({ connected: false, error: e.message });
        });
      });
    }
    const out = {};
    // A custom header and credentials: every polling request is preflighted.
    out.polling = await attempt(allowed, {
      transports: ["polling"],
      withCredentials: true,
      extraHeaders: { "x-token": "abc" },
    });
    out.websocket = await attempt(allowed, { transports: ["websocket"] });
    out.upgrade = await attempt(allowed, { withCredentials: true });
    out.refusedPolling = await attempt(refused, { transports: ["polling"] });
    out.refusedWebsocket = await attempt(refused, { transports: ["websocket"] });
    // What a page may read of an answer: only the exposed headers.
    try {
      const res = await fetch(`${allowed}/socket.io/?EIO=4&transport=polling`, { credentials: "include" });
      out.readable = { served: res.headers.get("x-served-by"), hidden: res.headers.get("x-hidden") };
    } catch (e) {
      out.readable = { error: e.message };
    }
    return out;
  }, { allowed, refused });
  console.log(`ok ${JSON.stringify({ page: pageOrigin, ...results })}`);
}

main()
  .then(() => browser?.close())
  .then(() => process.exit(0))
  .catch(async (e) => {
    console.log(`fail ${e?.stack ?? e}`);
    await browser?.close().catch(() => {});
    process.exit(1);
  });
