// The outcome protocol shared by the scenario scripts the Rust tests run: `step <text>` lines
// while the scenario runs, then exactly one `ok <json>` or `fail <reason>` line. An uncaught
// exception, an unhandled rejection, an early exit or the deadline is a `fail`.

/// Installs the handlers and the deadline; returns the functions that report.
/// `encode` turns the summary into JSON-able data (e.g. binary as {"$bin": hex}).
export function outcome({ timeout = 20000, encode = (v) => v } = {}) {
  let finished = false;
  process.exitCode = 1;
  const line = (text) => {
    if (!finished) console.log(text);
  };
  const step = (text) => line(`step ${text}`);
  const ok = (summary) => {
    if (finished) return;
    console.log(`ok ${JSON.stringify(encode(summary))}`);
    finished = true;
    process.exit(0);
  };
  const fail = (reason) => {
    if (finished) return;
    console.log(`fail ${reason}`);
    finished = true;
    process.exit(1);
  };
  process.on("exit", () => {
    if (!finished) console.log("fail exited before the scenario completed");
  });
  process.on("uncaughtException", (e) => fail(`uncaught exception: ${e?.stack ?? e}`));
  process.on("unhandledRejection", (e) => fail(`unhandled rejection: ${e?.stack ?? e}`));
  setTimeout(() => fail(`timed out after ${timeout} ms`), timeout);
  return { line, step, ok, fail };
}

/// The transports of each test mode.
export const TRANSPORTS = {
  websocket: ["websocket"],
  polling: ["polling"],
  upgrade: ["polling", "websocket"],
};

/// A value as JSON-able data: binary as {"$bin": hex}, recursively; functions (ack
/// callbacks) and undefined left out.
export function plain(value) {
  if (value === undefined || typeof value === "function") return undefined;
  if (Buffer.isBuffer(value)) return { $bin: value.toString("hex") };
  if (value instanceof ArrayBuffer) return { $bin: Buffer.from(value).toString("hex") };
  if (ArrayBuffer.isView(value)) {
    return { $bin: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex") };
  }
  if (Array.isArray(value)) {
    return value.filter((v) => typeof v !== "function").map((v) => plain(v) ?? null);
  }
  if (value && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) {
      const p = plain(v);
      if (p !== undefined) out[k] = p;
    }
    return out;
  }
  return value;
}
