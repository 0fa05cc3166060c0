// The Node socket.io 4.8 peer of bench-server: `node server.mjs PORT`, 127.0.0.1, one line
// with the address and the pid. Namespace `/`: `echo` acks with its arguments, `broadcast`
// emits `broadcast` with its arguments to every socket of `/` (sender included). Node's
// defaults, both transports, CORS any origin, no recovery; ws uses bufferutil when present.
import { createServer } from "node:http";
import { Server } from "socket.io";

const port = Number(process.argv[2] ?? 0);
const httpServer = createServer();
httpServer.on("connection", (s) => s.setNoDelay(true));
const io = new Server(httpServer, { cors: { origin: "*" } });

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
