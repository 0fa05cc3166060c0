//! Running commands with a visible step name.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// One named command.
pub struct Step {
    name: &'static str,
    cmd: Command,
}

impl Step {
    /// A step that runs `cmd`.
    pub fn new(name: &'static str, cmd: Command) -> Self {
        Step { name, cmd }
    }
}

/// Runs a step from the workspace root, failing when it fails.
pub fn run(mut step: Step) -> Result<(), String> {
    eprintln!("==> {}", step.name);
    let start = Instant::now();
    let status = step
        .cmd
        .status()
        .map_err(|e| format!("{}: cannot start: {e}", step.name))?;
    eprintln!("<== {} ({:.1}s)", step.name, start.elapsed().as_secs_f64());
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed ({status})", step.name))
    }
}

/// `cargo <args>` in the workspace root.
pub fn cargo<const N: usize>(args: [&str; N]) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(args).current_dir(root());
    cmd
}

/// The workspace root.
pub fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}
