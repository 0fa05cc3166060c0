//! Ferrio's task runner. `cargo xtask test` runs every check and test, installing what it needs
//! first; `cargo xtask ci` is the same (what `.ci/run` calls); `cargo xtask chat [args]` starts
//! the chat app; `cargo xtask autobahn [--update]` runs the Autobahn|Testsuite alone;
//! `cargo xtask bench [--quick] [scenario...]` runs the benchmarks (`docs/BENCHMARKS.md`);
//! `cargo xtask soak [filter]` runs the long forms of the fault and load scenarios
//! (`docs/RELIABILITY.md`; their short forms are part of `test`).

mod autobahn;
mod bench;
mod chat;
mod fuzz;
mod soak;
mod util;

use std::process::ExitCode;

use util::{Step, cargo, root, run};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") | Some("ci") => test(),
        Some("fuzz-smoke") => fuzz::smoke(),
        Some("autobahn") => autobahn::run_all(args.get(1).is_some_and(|a| a == "--update")),
        Some("npm") => npm_ci(),
        Some("chat") => chat::run(&args[1..]),
        Some("bench") => bench::bench(&args[1..]),
        Some("bench-smoke") => bench::smoke(),
        Some("soak") => soak::run_all(args.get(1).map(String::as_str)),
        _ => {
            eprintln!(
                "usage: cargo xtask <test|ci|chat [args]|bench [--quick] [--runs N] [--servers a,b] [scenario...]|bench-smoke|soak [filter]|fuzz-smoke|autobahn [--update]|npm>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Every check and every test, in the order that fails fastest.
fn test() -> Result<(), String> {
    run(Step::new("format", cargo(["fmt", "--all", "--check"])))?;
    run(Step::new(
        "clippy",
        cargo([
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]),
    ))?;
    npm_ci()?;
    chat::install_chromium()?;
    install_redis()?;
    run(Step::new(
        "tests",
        cargo(["test", "--workspace", "--all-features", "--no-fail-fast"]),
    ))?;
    autobahn::run_all(false)?;
    fuzz::smoke()?;
    bench::smoke()?;
    Ok(())
}

/// Installs Debian's `redis-server` when it is missing: the cluster tests start their own
/// servers on free ports (never the system one).
fn install_redis() -> Result<(), String> {
    let present = std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    let mut cmd = std::process::Command::new("sh");
    cmd.args([
        "-c",
        "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server",
    ]);
    run(Step::new("install redis-server (apt-get)", cmd))
}

/// Installs the pinned JS packages of `interop/` when they are missing or stale.
fn npm_ci() -> Result<(), String> {
    npm_ci_in("interop", "npm ci (interop)")
}

/// `npm ci` in `dir` (relative to the workspace root) when its `node_modules` is missing or
/// older than its lockfile.
fn npm_ci_in(dir: &str, step: &'static str) -> Result<(), String> {
    let dir = root().join(dir);
    let lock = dir.join("package-lock.json");
    let stamp = dir.join("node_modules/.package-lock.json");
    let fresh = match (std::fs::metadata(&lock), std::fs::metadata(&stamp)) {
        (Ok(l), Ok(s)) => match (l.modified(), s.modified()) {
            (Ok(l), Ok(s)) => s >= l,
            _ => false,
        },
        _ => false,
    };
    if fresh {
        return Ok(());
    }
    let mut cmd = std::process::Command::new("npm");
    cmd.args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir);
    run(Step::new(step, cmd))
}
