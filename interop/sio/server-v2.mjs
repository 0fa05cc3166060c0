// The Node reference for interop/sio/client-v2.mjs: npm `socket.io` 4.8 with
// `allowEIO3: true` and the handlers that crates/server/tests/interop_eio3.rs gives Ferrio.
//
// Usage: node sio/server-v2.mjs   (listens on a free port of 127.0.0.1)
// Prints `listening <port>`, then `connection <nsp> <protocol> <auth json>` for each socket.
//
// Handlers:
//   `/`        on connection emits "welcome" {ns, auth}; "echo" (...args) emits "echo" back;
//              "ack-me" (...args, cb) acks with the args; "bin" (...args) emits "bin-back";
//              "ask-me" (n) emits "ask" n with an ack and emits "asked" with the answer;
//              "bye" disconnects the socket
//   `/admin`   the same handlers
//   `/private` a middleware refuses every socket: Error("not authorized"), with
//              err.data = {code: 42} when the query has withData
//   no other namespace

import { createServer } from "node:http";
import { Server } from "socket.io";

const print = (line) => process.stdout.write(line + "\n");
const http = createServer();
const io = new Server(http, {
  allowEIO3: true,
  pingInterval: 500,
  pingTimeout: 1000,
  connectTimeout: 5000,
});

function handlers(socket) {
  print(`connection ${socket.nsp.name} ${socket.conn.protocol} ${JSON.stringify(socket.handshake.auth)}`);
  socket.emit("welcome", { ns: socket.nsp.name, auth: socket.handshake.auth });
  socket.on("echo", (...args) => socket.emit("echo", ...args));
  socket.on("ack-me", (...args) => {
    const cb = args.pop();
    cb(...args);
  });
  socket.on("bin", (...args) => socket.emit("bin-back", ...args));
  socket.on("ask-me", (n) => {
    socket.timeout(5000).emit("ask", n, (err, ...answer) => {
      socket.emit("asked", ...(err ? ["ack timeout"] : answer));
    });
  });
  socket.on("bye", () => socket.disconnect());
}

io.of("/").on("connection", handlers);
io.of("/admin").on("connection", handlers);
io.of("/private").use((socket, next) => {
  const err = new Error("not authorized");
  if (socket.handshake.auth.withData) err.data = { code: 42 };
  next(err);
});

http.listen(0, "127.0.0.1", () => print(`listening ${http.address().port}`));
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(0));
