//! Runs the Node.js scripts of `interop/` (packages pinned in `interop/package-lock.json`,
//! installed by `cargo xtask test`).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The `interop/` folder of the workspace.
pub fn interop_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .map(|p| p.join("interop"))
        .expect("workspace root")
}

/// Fails with a clear message when the JS packages are not installed.
pub fn require_node_modules() {
    let dir = interop_dir().join("node_modules");
    assert!(
        dir.is_dir(),
        "{} is missing: run `cargo xtask npm` (or `cargo xtask test`), which runs `npm ci` in interop/",
        dir.display()
    );
}

/// A running Node.js script; killed when dropped.
pub struct NodeProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl NodeProcess {
    /// Starts `node interop/<script> <args>` with stderr passed through.
    pub fn spawn(script: &str, args: &[&str]) -> Self {
        Self::start(script, args, false, &[])
    }

    /// As [`NodeProcess::spawn`], with extra environment variables.
    pub fn spawn_with_env(script: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start(script, args, false, env)
    }

    /// As [`NodeProcess::spawn`], with a pipe to the script's stdin ([`NodeProcess::send`]).
    pub fn spawn_interactive(script: &str, args: &[&str]) -> Self {
        Self::start(script, args, true, &[])
    }

    /// Writes one line to the script's stdin (started with [`NodeProcess::spawn_interactive`]).
    pub async fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("started with spawn_interactive");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write to node's stdin");
        stdin.flush().await.expect("flush node's stdin");
    }

    fn start(script: &str, args: &[&str], interactive: bool, env: &[(&str, &str)]) -> Self {
        require_node_modules();
        let dir = interop_dir();
        let mut child = Command::new("node")
            .arg(dir.join(script))
            .args(args)
            .envs(env.iter().copied())
            .current_dir(&dir)
            .stdin(if interactive {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start node");
        let stdout = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take();
        NodeProcess {
            child,
            stdin,
            stdout: BufReader::new(stdout).lines(),
        }
    }

    /// The next line the script printed, or `None` at the end of its output.
    pub async fn line(&mut self) -> Option<String> {
        self.stdout.next_line().await.ok().flatten()
    }

    /// Waits (at most `secs`) for a line that starts with `prefix` and returns the rest.
    pub async fn expect_line(&mut self, prefix: &str, secs: u64) -> String {
        let wait = async {
            while let Some(line) = self.line().await {
                if let Some(rest) = line.strip_prefix(prefix) {
                    return rest.to_owned();
                }
            }
            panic!("node script ended before printing {prefix:?}");
        };
        match tokio::time::timeout(Duration::from_secs(secs), wait).await {
            Ok(v) => v,
            Err(_) => panic!("timed out waiting for node to print {prefix:?}"),
        }
    }

    /// Waits (at most `secs`) for the script to exit and returns whether it succeeded,
    /// collecting its remaining output lines.
    pub async fn finish(mut self, secs: u64) -> (bool, Vec<String>) {
        let mut lines = Vec::new();
        let run = async {
            while let Some(line) = self.line().await {
                lines.push(line);
            }
            self.child
                .wait()
                .await
                .map(|s| s.success())
                .unwrap_or(false)
        };
        match tokio::time::timeout(Duration::from_secs(secs), run).await {
            Ok(ok) => (ok, lines),
            Err(_) => {
                let _ = self.child.start_kill();
                panic!("node script did not finish within {secs}s; output so far: {lines:?}");
            }
        }
    }
}
