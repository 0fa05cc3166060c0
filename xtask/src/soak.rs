//! `cargo xtask soak [filter]`: the long forms of the fault and load scenarios
//! (`crates/server/tests/soak`, and the ones with a server process of their own in
//! `crates/test-servers/tests/soak_*.rs`), in release, one at a time, with their figures
//! printed (`docs/RELIABILITY.md`). Their short forms run in `cargo xtask test` with the
//! other tests.

use crate::util::{Step, cargo, run};

/// The test binaries of `ferrio-test-servers` that drive a `soak-server` process.
const PROCESS_SCENARIOS: [&str; 3] = ["soak_shutdown", "soak_storm", "soak_fan_out"];

/// Runs every long scenario, or those that `filter` selects: a part of the name of one of
/// [`PROCESS_SCENARIOS`] (`fan_out`, `storm`) runs that binary alone, anything else is a test
/// name filter (`churn`, `slow_consumer`).
pub fn run_all(filter: Option<&str>) -> Result<(), String> {
    let filter = filter.unwrap_or("");
    let binaries: Vec<&str> = PROCESS_SCENARIOS
        .into_iter()
        .filter(|b| !filter.is_empty() && b.contains(filter))
        .collect();
    if !binaries.is_empty() {
        return run(Step::new(
            "soak: scenarios with a server process (long form)",
            process_scenarios(&binaries, ""),
        ));
    }
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
        "soak: slow consumer, churn, half-open, upgrade (long form)",
        soak,
    ))?;
    run(Step::new(
        "soak: graceful shutdown, reconnection storm, large fan-out (long form)",
        process_scenarios(&PROCESS_SCENARIOS, filter),
    ))
}

/// `cargo test` of these `ferrio-test-servers` binaries, long form, tests matching `filter`.
fn process_scenarios(binaries: &[&str], filter: &str) -> std::process::Command {
    let mut cmd = cargo(["test", "--release", "-p", "ferrio-test-servers"]);
    for b in binaries {
        cmd.args(["--test", b]);
    }
    cmd.args(["--", "--nocapture", filter])
        .env("SOAK_LONG", "1");
    cmd
}
