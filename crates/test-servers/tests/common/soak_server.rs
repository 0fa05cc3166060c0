//! The `soak-server` process as the soak tests drive it (`soak_shutdown.rs`, `soak_storm.rs`,
//! `soak_fan_out.rs`): started with its arguments (or under a wrapper such as `ip netns exec`),
//! its `listening on <addr> pid <pid>` line read, commands written to its stdin, its stdout
//! lines awaited. Killed when dropped.
#![allow(dead_code)] // each test binary uses its own part

use std::net::SocketAddr;
use std::process::Stdio;

use ferrio_testkit::within;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// The path of the `soak-server` binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_soak-server");

/// A running `soak-server`; killed when dropped.
pub struct SoakServer {
    pub child: Child,
    /// Its output, until [`SoakServer::discard_output`].
    stdout: Option<Lines<BufReader<ChildStdout>>>,
    /// Every line read so far.
    pub seen: Vec<String>,
    pub addr: SocketAddr,
    pub pid: u32,
}

impl SoakServer {
    /// `soak-server <args>`.
    pub async fn start(args: &[&str]) -> SoakServer {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        SoakServer::spawn(cmd).await
    }

    /// Runs `cmd` (which must run `soak-server` in a process of its own: `ip netns exec`
    /// execs it) and waits for its `listening on` line.
    pub async fn spawn(mut cmd: Command) -> SoakServer {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start soak-server");
        let stdout = Some(BufReader::new(child.stdout.take().expect("stdout")).lines());
        let mut s = SoakServer {
            child,
            stdout,
            seen: Vec::new(),
            addr: "127.0.0.1:1".parse().unwrap(),
            pid: 0,
        };
        let line = s.expect("listening on ", 10).await;
        let (addr, pid) = line.split_once(" pid ").expect("addr and pid");
        s.addr = addr.parse().expect("addr");
        s.pid = pid.parse().expect("pid");
        s
    }

    /// Waits (`secs` at most) for a line starting with `prefix`; returns the rest. A line
    /// saying that a command failed (`fan failed`, `bad command`) fails the test.
    pub async fn expect(&mut self, prefix: &str, secs: u64) -> String {
        let wait = async {
            let stdout = self.stdout.as_mut().expect("output discarded");
            while let Some(line) = stdout.next_line().await.expect("read stdout") {
                self.seen.push(line.clone());
                if let Some(rest) = line.strip_prefix(prefix) {
                    return rest.to_owned();
                }
                assert!(
                    !line.starts_with("fan failed") && !line.starts_with("bad command"),
                    "soak-server: {line}"
                );
            }
            panic!("soak-server ended before printing {prefix:?}");
        };
        within(secs, &format!("soak-server to print {prefix:?}"), wait).await
    }

    /// How many lines read so far start with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.seen.iter().filter(|l| l.starts_with(prefix)).count()
    }

    /// Writes one command line to its stdin.
    pub async fn command(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write stdin");
        stdin.flush().await.expect("flush stdin");
    }

    /// Reads (and drops) the rest of its output in the background, for it never to block on
    /// a full pipe; the process stays owned (and killed on drop) here.
    pub fn discard_output(&mut self) {
        if let Some(mut lines) = self.stdout.take() {
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        }
    }

    /// Sends it SIGTERM.
    pub fn sigterm(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM");
    }
}
