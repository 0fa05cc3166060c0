// A real `engine.io` 6.6 server with a `cors` option, for comparing its CORS answers (the npm
// `cors` package, as Node's socket.io uses it) with Ferrio's (crates/engine/tests/cors.rs).
//
// Usage: node engine/cors-server.mjs <json-cors-options>
//   The options of the `cors` package, except that `origin` may hold, alone or in an array,
//   {"regex": "<source>"} (a RegExp) or {"suffix": "<text>"} (alone: the function form,
//   `(origin, cb) => cb(null, origin.endsWith(text))`).
//
// Prints `listening <port>` (a free port on 127.0.0.1); runs until killed.

import { createServer } from "node:http";
import { Server } from "engine.io";

const options = JSON.parse(process.argv[2] ?? "{}");

function origin(spec) {
  if (Array.isArray(spec)) return spec.map(origin);
  if (spec && typeof spec === "object" && "regex" in spec) return new RegExp(spec.regex);
  if (spec && typeof spec === "object" && "suffix" in spec) {
    return (o, cb) => cb(null, typeof o === "string" && o.endsWith(spec.suffix));
  }
  return spec;
}

if ("origin" in options) options.origin = origin(options.origin);

const http = createServer();
const engine = new Server({ cors: options });
engine.attach(http);
http.listen(0, "127.0.0.1", () => console.log(`listening ${http.address().port}`));
