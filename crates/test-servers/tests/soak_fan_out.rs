//! Large fan-out (issue 10 section 2; `docs/RELIABILITY.md` section 5): one room of 1,000
//! sockets (long form: 10,000) of a `soak-server` process gets a steady broadcast (`fan
//! <total> <rate> <bytes>`: `io.to("fan").emit`). Pass: every socket gets every broadcast
//! exactly once and in order, nobody is disconnected, and the server encodes each broadcast
//! once whatever the number of targets (`ServerStats::packets_encoded` goes up by one per
//! broadcast). Printed: the delivery rate reached, the latency and the lag (last broadcast
//! sent to last received), the CPU time of both processes and the server's memory.
//!
//! The server runs in its own process so that each process holds one descriptor per socket
//! (10,000 sockets in one process would need 20,000, this machine's limit). The clients are
//! cheap on purpose: a raw WebSocket over a tokio `TcpStream`, each read into one scratch
//! buffer per thread and its frames parsed in place, so that the test is not what limits a
//! million deliveries a second.

mod common;

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use common::soak_server::SoakServer;
use ferrio_testkit::within;
use futures_util::future::join_all;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The form of the run.
struct Form {
    sockets: usize,
    rate: u64,
    total: u64,
    /// Bytes of the string of each broadcast.
    bytes: usize,
    /// How long every broadcast may take to arrive once the last is sent.
    drain_secs: u64,
    /// The server's `max_buffered_packets`: a socket this far behind is cut.
    queue: usize,
}

impl Form {
    fn pick() -> Form {
        if std::env::var("SOAK_LONG").is_ok_and(|v| v == "1") {
            Form {
                sockets: 10_000,
                rate: 100,
                total: 3_000,
                bytes: 256,
                drain_secs: 60,
                queue: 4096,
            }
        } else {
            Form {
                sockets: 1_000,
                rate: 20,
                total: 40,
                bytes: 256,
                drain_secs: 20,
                queue: 1024,
            }
        }
    }
}

#[test]
fn every_socket_of_a_large_room_gets_each_broadcast_once_in_order() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run(Form::pick()));
}

async fn run(form: Form) {
    let Form {
        sockets,
        rate,
        total,
        bytes,
        drain_secs,
        queue,
    } = form;
    // The heartbeat of a normal server: a ping waits behind the broadcasts queued before it,
    // so a socket whose queue lags by more than the ping timeout is cut (`ping timeout`).
    let queue = queue.to_string();
    let mut server = SoakServer::start(&[
        "--ping-interval-ms",
        "5000",
        "--ping-timeout-ms",
        "20000",
        "--max-buffered-packets",
        &queue,
    ])
    .await;
    let mut conns = Vec::with_capacity(sockets);
    while conns.len() < sockets {
        let n = (sockets - conns.len()).min(200);
        let batch = join_all((0..n).map(|_| Conn::open(server.addr)));
        for c in within(60, "the clients to connect", batch).await {
            conns.push(c.expect("connect"));
        }
    }
    within(30, "every socket in the room", async {
        loop {
            let stats = stats(&mut server).await;
            if stats.room == sockets {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let readers: Vec<_> = conns
        .into_iter()
        .map(|c| tokio::spawn(c.receive(total, bytes)))
        .collect();
    let cpu_before = (Cpu::of(&server.pid.to_string()), Cpu::of("self"));
    let rss_before = memory_kib(server.pid, "VmRSS:");
    server.command(&format!("fan {total} {rate} {bytes}")).await;
    // The broadcasts fall behind their rate on a loaded machine: give them four times as long.
    let broadcast_secs = total.div_ceil(rate) * 4 + 30;
    let sent = server.expect("fan sent ", broadcast_secs).await;
    let field = |name: &str| -> u64 {
        sent.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in `fan sent {sent}`"))
    };
    let (encoded, room, sent_ms) = (field("encoded"), field("room"), field("ms"));
    let results = within(drain_secs, "every broadcast to arrive", join_all(readers)).await;
    let cpu_after = (Cpu::of(&server.pid.to_string()), Cpu::of("self"));
    let mut failed = Vec::new();
    let mut open = Vec::with_capacity(sockets);
    let mut latency = [0u64; BUCKETS];
    let mut worst_seq = 0;
    let (mut max_latency, mut lag, mut first_sent, mut last_received) = (0, 0, u64::MAX, 0);
    for r in results {
        match r.expect("reader") {
            Ok(got) => {
                for (sum, n) in latency.iter_mut().zip(got.latency) {
                    *sum += n;
                }
                if got.max_latency > max_latency {
                    (max_latency, worst_seq) = (got.max_latency, got.worst_seq);
                }
                lag = lag.max(got.last_latency);
                first_sent = first_sent.min(got.first_sent);
                last_received = last_received.max(got.last_received);
                open.push(got.conn);
            }
            Err(e) => failed.push(e),
        }
    }
    let end = stats(&mut server).await;
    let deliveries = total * open.len() as u64;
    let window = Duration::from_micros(last_received.saturating_sub(first_sent).max(1));
    let (server_cpu, client_cpu) = (
        cpu_after.0.since(cpu_before.0),
        cpu_after.1.since(cpu_before.1),
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "fan-out: {sockets} sockets, {total} broadcasts of {bytes} B asked at {rate}/s, sent in \
         {sent_ms} ms ({:.1}/s): {deliveries} deliveries to the {} sockets that got each once \
         and in order; {encoded} encodings; disconnected: {:?}",
        total as f64 * 1e3 / sent_ms.max(1) as f64,
        open.len(),
        end.disconnects
    );
    println!(
        "fan-out: first sent to last received {:.2} s: {:.0} deliveries/s; latency p50 <= {} ms, \
         p99 <= {} ms, max {:.1} ms (broadcast {worst_seq}); lag (last broadcast sent to last received) {:.1} ms",
        window.as_secs_f64(),
        deliveries as f64 / window.as_secs_f64(),
        quantile_ms(&latency, 0.5).min(max_latency.div_ceil(1000)),
        quantile_ms(&latency, 0.99).min(max_latency.div_ceil(1000)),
        max_latency as f64 / 1e3,
        lag as f64 / 1e3
    );
    println!(
        "fan-out: CPU from the first broadcast to the last delivery: server {:.2} s ({:.2} \
         cores), clients {:.2} s ({:.2} cores); server RSS {} KiB before, {} KiB after, peak {} \
         KiB; load average {}",
        server_cpu.as_secs_f64(),
        ms(server_cpu) / ms(window),
        client_cpu.as_secs_f64(),
        ms(client_cpu) / ms(window),
        rss_before,
        memory_kib(server.pid, "VmRSS:"),
        memory_kib(server.pid, "VmHWM:"),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    assert!(
        failed.is_empty(),
        "{} of {sockets} sockets did not get each broadcast once, in order; first: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert_eq!(room, sockets as u64, "the room at the first broadcast");
    assert_eq!(
        encoded, total,
        "each broadcast encoded once for its {sockets} targets"
    );
    assert_eq!(
        (end.sockets, end.room, end.disconnects.as_str()),
        (sockets, sockets, ""),
        "nobody was disconnected"
    );
    drop(open);
}

/// What `stats` prints that the test reads.
struct Stats {
    sockets: usize,
    room: usize,
    /// `reason:count,…` of the sockets disconnected so far.
    disconnects: String,
}

/// Asks the server for its `stats` line.
async fn stats(server: &mut SoakServer) -> Stats {
    server.command("stats").await;
    let line = server.expect("stats ", 10).await;
    let field = |name: &str| -> usize {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in `stats {line}`"))
    };
    Stats {
        sockets: field("sockets"),
        room: field("room"),
        disconnects: line
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix("disconnects="))
            .unwrap_or_default()
            .to_owned(),
    }
}

/// Latency histogram: bucket `i` counts latencies below 2^i ms (bucket 0: below 1 ms).
const BUCKETS: usize = 24;

/// The upper bound, in ms, of the bucket that holds the `q`-th quantile.
fn quantile_ms(hist: &[u64; BUCKETS], q: f64) -> u64 {
    let total: u64 = hist.iter().sum();
    let rank = (total as f64 * q).ceil() as u64;
    let mut seen = 0;
    for (i, n) in hist.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return 1 << i;
        }
    }
    1 << (BUCKETS - 1)
}

/// What one socket received, once it has every broadcast.
struct Received {
    /// Kept open until the end: closing it would be a disconnect.
    conn: Conn,
    latency: [u64; BUCKETS],
    /// Microseconds.
    max_latency: u64,
    /// The broadcast that took `max_latency`.
    worst_seq: u64,
    /// Send to receipt of the last broadcast, microseconds.
    last_latency: u64,
    /// Send time of the first broadcast, microseconds since the Unix epoch.
    first_sent: u64,
    /// When the last broadcast arrived, microseconds since the Unix epoch.
    last_received: u64,
}

/// One client: a WebSocket joined to `/`, spoken by hand (server frames are not masked;
/// ours are, with a fixed key).
struct Conn {
    stream: TcpStream,
    /// Bytes read but not parsed yet (a frame cut by the read).
    pending: Vec<u8>,
}

/// The fixed masking key of our frames.
const MASK: [u8; 4] = [0x5a, 0x17, 0xc3, 0x81];

/// Where each thread reads: one buffer per thread, not per socket.
const SCRATCH: usize = 64 * 1024;

thread_local! {
    static SCRATCH_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH]);
}

impl Conn {
    /// Opens a WebSocket and joins `/`.
    async fn open(addr: SocketAddr) -> io::Result<Conn> {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let request = format!(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {addr}\r\n\
             Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut head = Vec::new();
        let end = loop {
            if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            head.extend_from_slice(&chunk[..n]);
        };
        if !head.starts_with(b"HTTP/1.1 101") {
            return Err(io::Error::other(format!(
                "upgrade refused: {}",
                String::from_utf8_lossy(&head[..end])
            )));
        }
        let mut conn = Conn {
            stream,
            pending: head.split_off(end),
        };
        let open = conn.next_text().await?;
        if !open.starts_with(b"0{") {
            return Err(io::Error::other("no Engine.IO open packet"));
        }
        conn.send_text(b"40").await?;
        let connect = conn.next_text().await?;
        if !connect.starts_with(b"40{") {
            return Err(io::Error::other(format!(
                "no CONNECT reply: {}",
                String::from_utf8_lossy(&connect)
            )));
        }
        Ok(conn)
    }

    /// The next text frame (pings answered), for the handshake: not the fast path.
    async fn next_text(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some((opcode, start, end)) = frame_at(&self.pending)? {
                let payload = self.pending[start..end].to_vec();
                self.pending.drain(..end);
                match (opcode, payload.as_slice()) {
                    (0x1, b"2") => self.send_text(b"3").await?,
                    (0x1, _) => return Ok(payload),
                    (0x8, _) => return Err(closed(&payload)),
                    _ => {}
                }
                continue;
            }
            let mut chunk = [0u8; 1024];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.pending.extend_from_slice(&chunk[..n]);
        }
    }

    async fn send_text(&mut self, payload: &[u8]) -> io::Result<()> {
        // Short frames only (the handshake's and pongs).
        let mut frame = vec![0x81, 0x80 | payload.len() as u8];
        frame.extend_from_slice(&MASK);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
        self.stream.write_all(&frame).await
    }

    /// Reads broadcasts `0..total` (answering pings); fails at the first one missing, doubled
    /// or out of order, or when the connection ends first.
    async fn receive(mut self, total: u64, bytes: usize) -> Result<Received, String> {
        let mut state = Tally {
            next: 0,
            total,
            bytes,
            pong_due: false,
            latency: [0; BUCKETS],
            max_latency: 0,
            worst_seq: 0,
            last_latency: 0,
            first_sent: 0,
        };
        while state.next < total {
            self.stream
                .readable()
                .await
                .map_err(|e| format!("after {} broadcasts: {e}", state.next))?;
            match self.read_and_parse(&mut state) {
                Ok(true) => {}
                Ok(false) => return Err(format!("connection ended after {}", state.next)),
                Err(e) => return Err(format!("after {} broadcasts: {e}", state.next)),
            }
            if std::mem::take(&mut state.pong_due) {
                self.send_text(b"3")
                    .await
                    .map_err(|e| format!("pong after {}: {e}", state.next))?;
            }
        }
        Ok(Received {
            conn: self,
            latency: state.latency,
            max_latency: state.max_latency,
            worst_seq: state.worst_seq,
            last_latency: state.last_latency,
            first_sent: state.first_sent,
            last_received: now_us(),
        })
    }

    /// One non-blocking read into this thread's scratch buffer, and the frames it completes.
    /// False at the end of the stream.
    fn read_and_parse(&mut self, state: &mut Tally) -> io::Result<bool> {
        SCRATCH_BUF.with_borrow_mut(|scratch| {
            let n = match self.stream.try_read(scratch) {
                Ok(0) => return Ok(false),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) => return Err(e),
            };
            if self.pending.is_empty() {
                let used = state.frames(&scratch[..n])?;
                self.pending.extend_from_slice(&scratch[used..n]);
            } else {
                self.pending.extend_from_slice(&scratch[..n]);
                let used = state.frames(&self.pending)?;
                self.pending.drain(..used);
            }
            Ok(true)
        })
    }
}

/// What a reader has checked so far.
struct Tally {
    next: u64,
    total: u64,
    bytes: usize,
    pong_due: bool,
    latency: [u64; BUCKETS],
    max_latency: u64,
    worst_seq: u64,
    last_latency: u64,
    first_sent: u64,
}

impl Tally {
    /// Checks the whole frames at the start of `buf`; returns how many bytes they took.
    fn frames(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut at = 0;
        while let Some((opcode, start, end)) = frame_at(&buf[at..])? {
            let payload = &buf[at + start..at + end];
            at += end;
            match opcode {
                0x1 if payload == b"2" => self.pong_due = true,
                0x1 => self.broadcast(payload)?,
                0x8 => return Err(closed(payload)),
                _ => {}
            }
        }
        Ok(at)
    }

    /// One `42["fan",seq,t,"yy…"]`.
    fn broadcast(&mut self, payload: &[u8]) -> io::Result<()> {
        let bad = || {
            io::Error::other(format!(
                "unexpected frame {:.80}",
                String::from_utf8_lossy(payload)
            ))
        };
        let rest = payload.strip_prefix(b"42[\"fan\",").ok_or_else(bad)?;
        let (seq, rest) = number(rest).ok_or_else(bad)?;
        let (t, rest) = number(rest).ok_or_else(bad)?;
        if rest.len() != self.bytes + 3 || !rest.starts_with(b"\"") || !rest.ends_with(b"\"]") {
            return Err(bad());
        }
        if seq != self.next || seq >= self.total {
            return Err(io::Error::other(format!(
                "broadcast {seq} where {} was due",
                self.next
            )));
        }
        let latency = now_us().saturating_sub(t);
        let ms = latency / 1000;
        let bucket = (u64::BITS - ms.leading_zeros()) as usize;
        self.latency[bucket.min(BUCKETS - 1)] += 1;
        if latency > self.max_latency {
            self.max_latency = latency;
            self.worst_seq = seq;
        }
        if seq == 0 {
            self.first_sent = t;
        }
        if seq + 1 == self.total {
            self.last_latency = latency;
        }
        self.next += 1;
        Ok(())
    }
}

/// The error for a close frame from the server: its code and reason.
fn closed(payload: &[u8]) -> io::Error {
    let code = payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
    let reason = String::from_utf8_lossy(payload.get(2..).unwrap_or_default());
    io::Error::other(format!("closed by the server: {code:?} {reason:?}"))
}

/// A decimal number followed by `,`, and what follows the comma.
fn number(buf: &[u8]) -> Option<(u64, &[u8])> {
    let digits = buf.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 || buf.get(digits) != Some(&b',') {
        return None;
    }
    let n = buf[..digits]
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some((n, &buf[digits + 1..]))
}

/// The whole (unmasked, unfragmented) frame at the start of `buf`: opcode and the range of
/// its payload; `None` until it is all there.
fn frame_at(buf: &[u8]) -> io::Result<Option<(u8, usize, usize)>> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    if b0 & 0x80 == 0 || b1 & 0x80 != 0 {
        return Err(io::Error::other(
            "fragmented or masked frame from the server",
        ));
    }
    let (len, header) = match b1 & 0x7f {
        126 => match buf.get(2..4) {
            Some(b) => (usize::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => return Err(io::Error::other("frame over 64 KiB")),
        n => (usize::from(n), 2),
    };
    if buf.len() < header + len {
        return Ok(None);
    }
    Ok(Some((b0 & 0x0f, header, header + len)))
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// CPU time used by a process (`utime + stime` of `/proc/PID/stat`, in ticks of 10 ms).
#[derive(Clone, Copy)]
struct Cpu(Duration);

impl Cpu {
    fn of(pid: &str) -> Cpu {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
        // The command name may hold spaces: fields count from the last ')'; utime and stime
        // are fields 14 and 15 (proc(5)), the 12th and 13th after it.
        let fields: Vec<&str> = stat[stat.rfind(')').expect("stat") + 1..]
            .split_whitespace()
            .collect();
        let ticks: u64 =
            fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        Cpu(Duration::from_millis(ticks * 10))
    }

    fn since(self, earlier: Cpu) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

/// A memory figure of `/proc/PID/status` (`VmRSS:`, `VmHWM:`), in KiB.
fn memory_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("/proc/PID/status")
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} for {pid}"))
}
