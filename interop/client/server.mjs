// A real `socket.io` 4.8 server for the ferrio-client interop tests (crates/client/tests).
//
// Usage: node client/server.mjs [json-options]
//   port          port to listen on (default 0: a free one); if busy (a restart on the same
//                 port), retried every 50 ms for 5 s
//   host          address to listen on (default 127.0.0.1)
//   pingInterval  / pingTimeout   engine.io heartbeat, in ms (defaults 25000 / 20000)
//   transports    server transports (default ["polling", "websocket"])
//   recovery      enable connectionStateRecovery (default false)
//   tls           {key, cert} in PEM: serve HTTPS / WSS; with {ca, requestCert: true} client
//                 certificates signed by ca are required
//   cookie        the engine.io `cookie` option (the `io` cookie on the handshake)
//   tracePackets  print every Engine.IO packet received (debugging)
//   parser        "msgpack": the server uses socket.io-msgpack-parser (default: socket.io-parser)
//   path          the path the server answers at (default "/socket.io")
//
// Prints, one per line, what the tests wait for:
//   listening <port>
//   engine <transport>                     a new Engine.IO connection
//   peer-cert <CN>                         its client certificate (tls.requestCert)
//   cookie <header>                        a request that carried a Cookie header
//   connect <nsp> <socket id> <transport> <auth json>
//   upgrade <nsp> <transport>
//   event <nsp> <name> <args json>         every event received (binary as {"bin":[bytes]})
//   disconnect <nsp> <reason>
//   withheld <n> / acked <n>               the "retry-me" event (first try of each n withheld)
//   answer <nsp> <json>                    the client's answer to a "question"
//
// Namespaces: "/", "/chat", "/admin" and "/private" (a middleware refuses any auth whose token
// is not "good", with err.data). Events handled on each namespace:
//   echo (...args)           emits "echo" back with the same args
//   ack (...args, cb)        acks with the same args
//   ask (payload)            asks the client: emits "question" with an ack (5 s timeout); the
//                            answer is printed and emitted back as "answer"
//   retry-me (n, cb)         withholds the ack of the first try of each n, acks later tries
//   server-disconnect        socket.disconnect()
//   close-transport          closes the Engine.IO connection
//   handshake (cb)           acks {query, header}: the handshake's query parameter `k` and its
//                            `x-test` header (null when absent)
//   emit-offsets (count)     emits "seq" count times (with offsets when recovery is on)

import { createServer } from "node:http";
import { createServer as createTlsServer } from "node:https";
import { Server } from "socket.io";
import msgpackParser from "socket.io-msgpack-parser";

const opts = JSON.parse(process.argv[2] ?? "{}");
const print = (line) => process.stdout.write(line + "\n");

function json(args) {
  return JSON.stringify(args, (_k, v) => {
    if (v && v.type === "Buffer" && Array.isArray(v.data)) return { bin: v.data };
    return v;
  });
}

const httpServer = opts.tls
  ? createTlsServer({
      key: opts.tls.key,
      cert: opts.tls.cert,
      ca: opts.tls.ca,
      requestCert: opts.tls.requestCert ?? false,
      rejectUnauthorized: opts.tls.requestCert ?? false,
    })
  : createServer();
const io = new Server(httpServer, {
  pingInterval: opts.pingInterval ?? 25000,
  pingTimeout: opts.pingTimeout ?? 20000,
  transports: opts.transports ?? ["polling", "websocket"],
  connectionStateRecovery: opts.recovery ? { maxDisconnectionDuration: 60000 } : undefined,
  cookie: opts.cookie ?? false,
  path: opts.path ?? "/socket.io",
  ...(opts.parser === "msgpack" ? { parser: msgpackParser } : {}),
});

io.engine.on("headers", (_headers, req) => {
  if (req.headers.cookie) print(`cookie ${req.headers.cookie}`);
});

io.engine.on("connection", (raw) => {
  print(`engine ${raw.transport.name}`);
  if (opts.tls?.requestCert) {
    print(`peer-cert ${raw.request.socket.getPeerCertificate()?.subject?.CN}`);
  }
  if (opts.tracePackets) {
    raw.on("packet", (p) => print(`packet ${p.type} ${typeof p.data === "string" ? p.data : ""}`));
    raw.on("close", (reason) => print(`engine-close ${reason}`));
  }
});

io.of("/private").use((socket, next) => {
  if (socket.handshake.auth?.token === "good") return next();
  const err = new Error("not authorized");
  err.data = { reason: "bad token", code: 42 };
  next(err);
});

const seen = new Set();

for (const name of ["/", "/chat", "/admin", "/private"]) {
  io.of(name).on("connection", (socket) => {
    const nsp = socket.nsp.name;
    print(`connect ${nsp} ${socket.id} ${socket.conn.transport.name} ${json(socket.handshake.auth)}`);
    socket.conn.on("upgrade", (t) => print(`upgrade ${nsp} ${t.name}`));
    socket.on("disconnect", (reason) => print(`disconnect ${nsp} ${reason}`));
    socket.onAny((event, ...args) => {
      const data = args.filter((a) => typeof a !== "function");
      print(`event ${nsp} ${event} ${json(data)}`);
    });
    socket.emit("welcome", { nsp, id: socket.id, auth: socket.handshake.auth });

    socket.on("echo", (...args) => {
      const data = args.filter((a) => typeof a !== "function");
      socket.emit("echo", ...data);
    });
    socket.on("ack", (...args) => {
      const cb = args.pop();
      if (typeof cb === "function") cb(...args);
    });
    socket.on("ask", (payload) => {
      socket.timeout(5000).emit("question", payload, (err, ...answer) => {
        const out = err ? { error: err.message } : answer;
        print(`answer ${nsp} ${json(out)}`);
        socket.emit("answer", out);
      });
    });
    socket.on("retry-me", (n, cb) => {
      if (typeof cb !== "function") return;
      const key = `${nsp}:${n}`;
      if (!seen.has(key)) {
        seen.add(key);
        print(`withheld ${n}`);
        return;
      }
      print(`acked ${n}`);
      cb("ok", n);
    });
    socket.on("server-disconnect", () => socket.disconnect());
    socket.on("close-transport", () => socket.conn.close());
    socket.on("handshake", (cb) => {
      if (typeof cb !== "function") return;
      cb({ query: socket.handshake.query.k ?? null, header: socket.handshake.headers["x-test"] ?? null });
    });
    socket.on("emit-offsets", (count) => {
      for (let i = 0; i < count; i++) socket.emit("seq", i);
    });
  });
}

let tries = 0;
function listen() {
  httpServer.listen(opts.port ?? 0, opts.host ?? "127.0.0.1");
}
httpServer.on("error", (e) => {
  if (e.code === "EADDRINUSE" && tries++ < 100) {
    setTimeout(listen, 50);
    return;
  }
  print(`fail ${e.message}`);
  process.exit(1);
});
httpServer.on("listening", () => print(`listening ${httpServer.address().port}`));
listen();
