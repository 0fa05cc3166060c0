//! `ferrio-bench`: Ferrio's load generator. It speaks Engine.IO v4 / Socket.IO v5 itself (its
//! own small WebSocket and HTTP/1.1 clients, no client library) so that it stays cheaper than
//! the server it measures, runs every connection on one tokio runtime, and reads the server's
//! CPU time and memory from `/proc/<pid>`. Each run prints one JSON line.
//!
//! ```text
//! ferrio-bench echo --addr 127.0.0.1:3000 --pid 1234 --clients 100 --payload 32
//! ferrio-bench broadcast --addr ... --pid ... --clients 1000 --payload 1024
//! ferrio-bench connections --addr ... --pid ... --clients 10000 --hold 30
//! ferrio-bench poll-echo --addr ... --pid ... --clients 50
//! ferrio-bench cluster --addr A --pid P --peer B --peer-pid Q --clients 1000
//! ```
//!
//! Every line carries the generator's own CPU use (`generator_cpu_util`: near 1.0 means the
//! generator, not the server, was the limit) and the CPU used by other processes and stolen
//! by the hypervisor during the window (`other_cpu_util`, `steal_util`), so a runner can drop
//! noisy runs. The servers must serve `echo` (ack with the same arguments) and `broadcast`
//! (emit `broadcast` to every socket of `/`) on `/socket.io/`.
#![forbid(unsafe_code)]

mod procfs;
mod scenario;
mod sio;
mod stats;
mod wire;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Command line.
#[derive(Parser, Debug, Clone)]
#[command(about = "Socket.IO load generator: echo, broadcast, connections, poll-echo")]
pub struct Cli {
    /// What to measure.
    pub scenario: Scenario,
    /// The server's address.
    #[arg(long)]
    pub addr: SocketAddr,
    /// The server's pid (its CPU and memory are read from /proc).
    #[arg(long)]
    pub pid: u32,
    /// A name for the server, copied into the output.
    #[arg(long, default_value = "server")]
    pub label: String,
    /// Connections (echo: clients; broadcast: receivers, the first one also sends).
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// Payload size in bytes (the string argument of the event).
    #[arg(long, default_value_t = 32)]
    pub payload: usize,
    /// Length of the measurement window, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Load before the window starts, in seconds.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// connections: how long the idle connections are held, in seconds (pings arrive every
    /// pingInterval, 25 s with Node's defaults).
    #[arg(long, default_value_t = 30.0)]
    pub hold: f64,
    /// broadcast: broadcasts in flight (sent, not yet received by everyone).
    #[arg(long, default_value_t = 4)]
    pub window: usize,
    /// Handshakes in flight while connecting.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// connections: the transport of the idle connections.
    #[arg(long, value_enum, default_value_t = Transport::Websocket)]
    pub transport: Transport,
    /// Worker threads of the generator (1: a current-thread runtime).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// cluster: another server of the cluster (repeat for each); connections are spread
    /// round-robin over `--addr` and these.
    #[arg(long = "peer", value_name = "ADDR")]
    pub peers: Vec<SocketAddr>,
    /// cluster: the pid of each `--peer`, in the same order (their CPU is added).
    #[arg(long = "peer-pid", value_name = "PID")]
    pub peer_pids: Vec<u32>,
}

/// The scenarios.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Scenario {
    /// Ack round trips over WebSocket: `42N["echo",P]` answered by `43N[P]`.
    Echo,
    /// One sender, every connection receives `broadcast`.
    Broadcast,
    /// Ramp up idle connections and hold them: memory, handshake and heartbeat CPU.
    Connections,
    /// Ack round trips over HTTP long-polling.
    PollEcho,
    /// `broadcast` over the servers of a cluster (`--addr` and `--peer`s): one sender on the
    /// first, receivers spread over all; CPU summed over every server.
    Cluster,
}

/// Transports for the connections scenario.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Transport {
    /// WebSocket only.
    Websocket,
    /// HTTP long-polling only.
    Polling,
}

impl Cli {
    /// The measurement window.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration.max(0.1))
    }

    /// The warm-up.
    pub fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.warmup.max(0.0))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.threads)
            .enable_all()
            .build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ferrio-bench: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(scenario::run(&cli)) {
        Ok(mut out) => {
            let mut line = serde_json::Map::new();
            let name = cli
                .scenario
                .to_possible_value()
                .map(|v| v.get_name().to_owned());
            line.insert("scenario".into(), name.unwrap_or_default().into());
            line.insert("server".into(), cli.label.clone().into());
            line.append(&mut out);
            println!("{}", serde_json::Value::Object(line));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ferrio-bench: {:?}: {e}", cli.scenario);
            ExitCode::FAILURE
        }
    }
}
