// The Node socket.io 4.8 peer of bench-server: `node server.mjs PORT [--redis URL]`,
// 127.0.0.1, one line with the address and the pid. With --redis it joins a cluster through
// @socket.io/redis-adapter 8.3 (createAdapter, key socket.io). Namespace `/`: `echo` acks with its arguments, `broadcast`
// emits `broadcast` with its arguments to every socket of `/` (sender included). Node's
// defaults, both transports, CORS any origin, no recovery; ws uses bufferutil when present.
// --allow-eio3 accepts socket.io-client 2.x too (allowEIO3), as bench-server --allow-eio3.
import { createServer } from "node:http";
import { Server } from "socket.io";

const port = Number(process.argv[2] ?? 0);
const redisAt = process.argv.indexOf("--redis");
const redisUrl = redisAt > 0 ? process.argv[redisAt + 1] : null;
const httpServer = createServer();
httpServer.on("connection", (s) => s.setNoDelay(true));
const opts = { cors: { origin: "*" }, allowEIO3: process.argv.includes("--allow-eio3") };
if (redisUrl) {
  const { createAdapter } = await import("@socket.io/redis-adapter");
  const { createClient } = await import("redis");
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  opts.adapter = createAdapter(pub, sub);
}
const io = new Server(httpServer, opts);

io.on("connection", (socket) => {
  socket.on("echo", (...args) => {
    const ack = args.pop();
    if (typeof ack === "function") ack(...args);
  });
  socket.on("broadcast", (...args) => {
    io.emit("broadcast", ...args);
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  const { address, port } = httpServer.address();
  console.log(`listening on ${address}:${port} pid ${process.pid}`);
});
const stop = () => io.close(() => process.exit(0));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
