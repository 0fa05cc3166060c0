//! `cluster`: `broadcast` over the servers of a cluster (e.g. `bench-server PORT --redis URL`
//! several times, or Node servers with `@socket.io/redis-adapter`): connections spread
//! round-robin over `--addr` and the `--peer`s, one sender on the first server; every
//! receiver gets each broadcast, through the adapter for those on other servers. Reports
//! deliveries/s, delivery latency and the CPU per delivery of all servers together.

use std::io;

use serde_json::{Map, Value};

use super::broadcast;
use crate::Cli;

/// Runs the scenario.
pub async fn run(cli: &Cli) -> io::Result<Map<String, Value>> {
    if cli.peers.is_empty() || cli.peers.len() != cli.peer_pids.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cluster needs at least one --peer ADDR, and one --peer-pid PID for each",
        ));
    }
    broadcast::run(cli).await
}
