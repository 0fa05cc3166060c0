//! `cargo xtask chat [args]`: the README's run command. Installs the JavaScript client the app
//! serves (`npm ci` in apps/chat, when needed), builds the app in release mode and starts it;
//! the arguments go to the app (`cargo xtask chat --port 8080`).
//!
//! Also the browser the chat's end-to-end test drives: Debian's `chromium`, installed by
//! `cargo xtask test` when `/usr/bin/chromium` is missing.

use std::path::Path;
use std::process::Command;

use crate::util::{Step, cargo, root, run as run_step};

/// Where Debian's `chromium` package puts the browser.
const CHROMIUM: &str = "/usr/bin/chromium";

/// Installs, builds and runs the chat app with `args`.
pub fn run(args: &[String]) -> Result<(), String> {
    // `cargo xtask chat -- --port 8080` works as well as `cargo xtask chat --port 8080`.
    let args = match args.first().map(String::as_str) {
        Some("--") => &args[1..],
        _ => args,
    };
    crate::npm_ci_in(
        "apps/chat",
        "npm ci (apps/chat: the socket.io-client bundle)",
    )?;
    run_step(Step::new(
        "build ferrio-chat (release)",
        cargo(["build", "--release", "--package", "ferrio-chat"]),
    ))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let bin = target.join("release").join("ferrio-chat");
    let mut cmd = Command::new(&bin);
    cmd.args(args).current_dir(root());
    exec(cmd, &bin)
}

/// Replaces this process with the app, so Ctrl-C reaches the app alone and its graceful
/// shutdown is the last thing printed.
#[cfg(unix)]
fn exec(mut cmd: Command, bin: &Path) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let e = cmd.exec();
    Err(format!("cannot start {}: {e}", bin.display()))
}

#[cfg(not(unix))]
fn exec(mut cmd: Command, bin: &Path) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("ferrio-chat exited with {status}"))
    }
}

/// Installs Debian's `chromium` when `/usr/bin/chromium` is missing (CI runs as root; a
/// downloaded browser is never used).
pub fn install_chromium() -> Result<(), String> {
    if Path::new(CHROMIUM).exists() {
        return Ok(());
    }
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium",
    ]);
    run_step(Step::new("install chromium (apt-get)", cmd))?;
    if Path::new(CHROMIUM).exists() {
        Ok(())
    } else {
        Err(format!(
            "{CHROMIUM} is still missing after apt-get install chromium"
        ))
    }
}
