//! `cargo xtask soak [filter]`: the long forms of the fault and load scenarios
//! (`crates/server/tests/soak`, `crates/test-servers/tests/soak_shutdown.rs` and
//! `soak_storm.rs`), in release, one at a time, with their figures printed
//! (`docs/RELIABILITY.md`). Their short forms run in
//! `cargo xtask test` with the other tests.

use crate::util::{Step, cargo, run};

/// Runs every long scenario (or those whose test name contains `filter`).
pub fn run_all(filter: Option<&str>) -> Result<(), String> {
    let filter = filter.unwrap_or("");
    let mut soak = cargo([
        "test",
        "--release",
        "-p",
        "ferrio",
        "--test",
        "soak",
        "--",
        "--nocapture",
        "--test-threads=1",
    ]);
    soak.arg(filter).env("SOAK_LONG", "1");
    run(Step::new(
        "soak: slow consumer, churn, half-open, fan-out, upgrade (long form)",
        soak,
    ))?;
    let mut shutdown = cargo([
        "test",
        "--release",
        "-p",
        "ferrio-test-servers",
        "--test",
        "soak_shutdown",
        "--test",
        "soak_storm",
        "--",
        "--nocapture",
    ]);
    shutdown.arg(filter).env("SOAK_LONG", "1");
    run(Step::new(
        "soak: graceful shutdown, reconnection storm (long form)",
        shutdown,
    ))
}
