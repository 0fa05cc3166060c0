//! A `redis-server` of the test's own, on a free loopback port, that keeps nothing on disk;
//! killed when dropped. Never the system's Redis.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// A running `redis-server` (Redis 7 on this machine kind).
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    extra: Vec<String>,
}

/// A free loopback port (bound, then released for the server to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn spawn(port: u16, extra: &[String]) -> Child {
    Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
            "--loglevel",
            "warning",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start redis-server (is it installed?)")
}

/// Sends one inline command and returns the reply's first line.
pub async fn command(port: u16, cmd: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(format!("{cmd}\r\n").as_bytes()).await?;
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

async fn wait_ready(port: u16) -> bool {
    for _ in 0..500 {
        if command(port, "PING")
            .await
            .is_ok_and(|r| r.starts_with("+PONG"))
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers `PING` (at most 5 s).
    pub async fn start() -> RedisServer {
        Self::start_with(&[]).await
    }

    /// [`RedisServer::start`] with extra `redis-server` arguments.
    pub async fn start_with(extra: &[&str]) -> RedisServer {
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        for _ in 0..5 {
            let port = free_port();
            let mut child = spawn(port, &extra);
            if wait_ready(port).await {
                return RedisServer {
                    port,
                    child: Some(child),
                    extra,
                };
            }
            let _ = child.kill().await;
        }
        panic!("redis-server did not start");
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to its clients).
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
            let _ = c.wait().await;
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self
            .child
            .as_ref()
            .and_then(Child::id)
            .expect("a running redis-server");
        let ok = std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid}");
    }

    /// Starts it again on the same port (after [`RedisServer::kill`]); the port may be held a
    /// moment by closing connections, so this retries for at most 10 s.
    pub async fn restart(&mut self) {
        self.kill().await;
        for _ in 0..100 {
            let mut child = spawn(self.port, &self.extra);
            if wait_ready(self.port).await {
                self.child = Some(child);
                return;
            }
            let _ = child.kill().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("redis-server did not restart on port {}", self.port);
    }

    /// Publishes raw bytes on a channel (for malformed-message tests).
    pub async fn publish(&self, channel: &str, payload: &[u8]) -> std::io::Result<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).await?;
        let mut cmd = Vec::new();
        for part in [b"PUBLISH".as_slice(), channel.as_bytes(), payload] {
            cmd.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
            cmd.extend_from_slice(part);
            cmd.extend_from_slice(b"\r\n");
        }
        let mut all = b"*3\r\n".to_vec();
        all.extend(cmd);
        s.write_all(&all).await?;
        let mut buf = vec![0u8; 256];
        let n = s.read(&mut buf).await?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    }
}

/// A Redis Cluster of `n` primaries (no replicas) on free ports, files in a temporary folder.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    dir: PathBuf,
}

impl RedisCluster {
    /// Starts `n` (at least 3) nodes and joins them with `redis-cli --cluster create`, then
    /// waits until every node reports `cluster_state:ok` (at most 20 s).
    pub async fn start(n: usize) -> RedisCluster {
        let dir = std::env::temp_dir().join(format!(
            "ferrio-redis-cluster-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("temporary folder");
        let mut nodes = Vec::new();
        for i in 0..n {
            let conf = dir.join(format!("nodes-{i}.conf"));
            let node = RedisServer::start_with(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                conf.to_str().expect("utf-8 path"),
                "--dir",
                dir.to_str().expect("utf-8 path"),
            ])
            .await;
            nodes.push(node);
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port()))
            .collect();
        let status = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .await
            .expect("redis-cli");
        assert!(status.success(), "redis-cli --cluster create failed");
        for _ in 0..200 {
            let mut ok = true;
            for node in &nodes {
                let info = command(node.port(), "CLUSTER INFO")
                    .await
                    .unwrap_or_default();
                ok &= info.contains("cluster_state:ok");
            }
            if ok {
                return RedisCluster { nodes, dir };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the Redis Cluster did not become ready");
    }

    /// `redis-cluster://127.0.0.1:<p1>?node=127.0.0.1:<p2>&...` (fred's form).
    pub fn url(&self) -> String {
        let mut url = format!("redis-cluster://127.0.0.1:{}", self.nodes[0].port());
        for (i, n) in self.nodes.iter().enumerate().skip(1) {
            url.push(if i == 1 { '?' } else { '&' });
            url.push_str(&format!("node=127.0.0.1:{}", n.port()));
        }
        url
    }

    /// `host:port` of every node (for Node's `createCluster`).
    pub fn addrs(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port()))
            .collect()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        self.nodes.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
