//! The fuzz smoke run: every cargo-fuzz target of `fuzz/` for a few seconds each.
//!
//! The targets are built once, then each runs for `FERRIO_FUZZ_SECONDS` (default 20) from
//! `fuzz/corpus/<target>` (kept between runs, git-ignored) plus the committed seeds of
//! `fuzz/seeds/<target>`. A crash fails the step; libFuzzer writes the input to
//! `fuzz/artifacts/<target>/`.
//!
//! cargo-fuzz needs nightly compiler flags; `RUSTC_BOOTSTRAP=1` lets the stable toolchain take
//! them. The sanitizer is off: the fuzzed code is safe Rust, and without AddressSanitizer the
//! targets run several times faster, so the short run explores more.

use std::process::{Command, Stdio};

use crate::util::{Step, cargo, root, run};

/// Each target with the name of its step and its dictionary (`fuzz/<dict>.dict`).
const TARGETS: [(&str, &str, &str); 7] = [
    ("engine_packet", "fuzz engine_packet", "engine"),
    ("engine_payload", "fuzz engine_payload", "engine"),
    ("engine_payload_v3", "fuzz engine_payload_v3", "engine"),
    ("engine_session", "fuzz engine_session", "engine"),
    ("client_session", "fuzz client_session", "engine"),
    ("socket_packet", "fuzz socket_packet", "socket"),
    ("binary_placeholders", "fuzz binary_placeholders", "socket"),
];

/// Seconds per target when `FERRIO_FUZZ_SECONDS` is not set.
const DEFAULT_SECONDS: u64 = 20;

/// Runs every fuzz target briefly.
pub fn smoke() -> Result<(), String> {
    install_cargo_fuzz()?;
    let seconds = match std::env::var("FERRIO_FUZZ_SECONDS") {
        Ok(s) => s
            .trim()
            .parse::<u64>()
            .map_err(|e| format!("FERRIO_FUZZ_SECONDS={s:?}: {e}"))?,
        Err(_) => DEFAULT_SECONDS,
    };
    run(Step::new(
        "fuzz build",
        nightly(cargo(["fuzz", "build", "--sanitizer", "none"])),
    ))?;

    let fuzz = root().join("fuzz");
    let max_time = format!("-max_total_time={seconds}");
    for (target, step, dict) in TARGETS {
        let corpus = fuzz.join("corpus").join(target);
        std::fs::create_dir_all(&corpus)
            .map_err(|e| format!("cannot create {}: {e}", corpus.display()))?;
        let mut cmd = nightly(cargo(["fuzz", "run", "--sanitizer", "none", target]));
        // New inputs go to the first directory; the seeds are only read.
        cmd.arg(&corpus);
        let seeds = fuzz.join("seeds").join(target);
        if seeds.is_dir() {
            cmd.arg(&seeds);
        }
        let dict = format!("-dict={}", fuzz.join(format!("{dict}.dict")).display());
        cmd.args(["--", &max_time, "-rss_limit_mb=2048", &dict]);
        run(Step::new(step, cmd)).map_err(|e| {
            format!(
                "{e}; the input is in fuzz/artifacts/{target}/, replay it with \
                 `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none {target} <file>`"
            )
        })?;
    }
    Ok(())
}

/// Installs cargo-fuzz unless `cargo fuzz` already works.
fn install_cargo_fuzz() -> Result<(), String> {
    let installed = cargo(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if installed {
        return Ok(());
    }
    run(Step::new(
        "install cargo-fuzz",
        cargo(["install", "cargo-fuzz", "--locked"]),
    ))
}

/// Lets the stable toolchain accept the nightly flags that cargo-fuzz passes.
fn nightly(mut cmd: Command) -> Command {
    cmd.env("RUSTC_BOOTSTRAP", "1");
    cmd
}
