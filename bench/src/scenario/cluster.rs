//! `cluster`: N servers in one cluster (e.g. `bench-server PORT --redis URL`), clients spread
//! over them, one sender; every client receives each broadcast through the adapter.
//!
//! Not written yet (it needs the Redis adapter). The plan, so that it fits the others: take
//! `--addr` once per server (and `--pid` likewise), connect `clients` spread round-robin, run
//! the sender loop of `broadcast` against the first server, and report deliveries/s,
//! delivery latency (p50/p99/p999) and the CPU per delivery of each server and of all of
//! them, with the same window fields (`Window::json`).

use std::io;

use serde_json::{Map, Value};

use crate::Cli;

/// Runs the scenario.
pub async fn run(_cli: &Cli) -> io::Result<Map<String, Value>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "the cluster scenario is not written yet",
    ))
}
