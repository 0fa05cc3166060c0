//! `cargo xtask bench [--quick] [--runs N] [--servers a,b] [--ferrio-bin PATH] [--max-other F]
//! [scenario...]`: builds the servers
//! and the load generator in release, runs every scenario against every server (a fresh,
//! pinned server per run; the generator pinned to the other core), drops noisy runs, prints
//! the medians side by side with Ferrio/peer ratios and appends them to `docs/BENCHMARKS.md`.
//!
//! `smoke()` is the short form `cargo xtask test` runs: Ferrio's server only, debug builds,
//! tiny loads; it checks that every scenario completes with sane numbers, never timings.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Step, cargo, root, run};

/// A run is noisy when other processes used more than this share of a core during it
/// (`--max-other`).
const MAX_OTHER_CPU: f64 = 0.15;
/// ... or the hypervisor stole more than this share.
const MAX_STEAL: f64 = 0.02;
/// The server's core and the generator's core.
const SERVER_CPU: &str = "0";
const GENERATOR_CPU: &str = "1";

/// A server under test.
struct Server {
    name: &'static str,
    /// Program and arguments before the port.
    cmd: Vec<String>,
}

fn servers(release: bool) -> Vec<Server> {
    let dir = if release { "release" } else { "debug" };
    let target = root().join("target").join(dir);
    let peers = root().join("bench/peers/target/release");
    let s = |p: PathBuf| p.to_string_lossy().into_owned();
    vec![
        Server {
            name: "ferrio",
            cmd: vec![s(target.join("bench-server"))],
        },
        Server {
            name: "socketioxide",
            cmd: vec![s(peers.join("bench-socketioxide"))],
        },
        Server {
            name: "node",
            cmd: vec!["node".into(), s(root().join("bench/peers/node/server.mjs"))],
        },
        Server {
            name: "rawws",
            cmd: vec![s(peers.join("bench-rawws"))],
        },
    ]
}

/// A scenario as the table shows it: generator arguments and the metrics to report.
struct Scenario {
    name: &'static str,
    args: Vec<String>,
    /// (metric, label, lower is better)
    metrics: &'static [(&'static str, &'static str)],
    /// Servers that cannot run it.
    skip: &'static [&'static str],
    /// A cluster of this many servers of a kind on a private `redis-server` (0: one server).
    nodes: usize,
}

fn scenarios(quick: bool) -> Vec<Scenario> {
    let q = |full: &str, short: &str| if quick { short } else { full }.to_owned();
    let a = |v: &[String]| v.to_vec();
    vec![
        Scenario {
            name: "echo",
            args: a(&[
                "echo".into(),
                "--clients".into(),
                "100".into(),
                "--payload".into(),
                "32".into(),
                "--duration".into(),
                q("5", "2"),
                "--warmup".into(),
                q("1", "0.5"),
            ]),
            metrics: &[
                ("server_us_per_op", "server CPU per round trip (us)"),
                ("ops_per_s", "round trips/s"),
                ("latency_p50_us", "latency p50 (us)"),
                ("latency_p99_us", "latency p99 (us)"),
                ("latency_p999_us", "latency p99.9 (us)"),
                ("generator_cpu_util", "generator CPU (cores)"),
            ],
            skip: &[],
            nodes: 0,
        },
        Scenario {
            name: "broadcast",
            args: a(&[
                "broadcast".into(),
                "--clients".into(),
                q("1000", "200"),
                "--payload".into(),
                "1024".into(),
                "--duration".into(),
                q("5", "2"),
                "--warmup".into(),
                q("1", "0.5"),
            ]),
            metrics: &[
                ("server_us_per_delivery", "server CPU per delivery (us)"),
                ("deliveries_per_s", "deliveries/s"),
                ("latency_p50_us", "delivery latency p50 (us)"),
                ("latency_p99_us", "delivery latency p99 (us)"),
                ("generator_cpu_util", "generator CPU (cores)"),
            ],
            skip: &[],
            nodes: 0,
        },
        Scenario {
            name: "connections",
            args: a(&[
                "connections".into(),
                "--clients".into(),
                q("10000", "1000"),
                "--hold".into(),
                q("30", "2"),
            ]),
            metrics: &[
                (
                    "rss_per_conn_b",
                    "memory per idle WebSocket connection (B, RSS)",
                ),
                ("anon_per_conn_b", "anonymous memory per connection (B)"),
                ("handshake_server_us", "server CPU per handshake (us)"),
                (
                    "heartbeat_server_us_per_ping",
                    "server CPU per heartbeat (us)",
                ),
                ("server_cpu_util", "idle server CPU (cores)"),
            ],
            skip: &[],
            nodes: 0,
        },
        Scenario {
            name: "connections-polling",
            args: a(&[
                "connections".into(),
                "--transport".into(),
                "polling".into(),
                "--clients".into(),
                q("2000", "200"),
                "--hold".into(),
                q("30", "2"),
            ]),
            metrics: &[
                ("rss_per_conn_b", "memory per idle polling session (B, RSS)"),
                ("handshake_server_us", "server CPU per handshake (us)"),
                (
                    "heartbeat_server_us_per_ping",
                    "server CPU per heartbeat (us)",
                ),
            ],
            skip: &["rawws"],
            nodes: 0,
        },
        Scenario {
            name: "poll-echo",
            args: a(&[
                "poll-echo".into(),
                "--clients".into(),
                "50".into(),
                "--payload".into(),
                "32".into(),
                "--duration".into(),
                q("5", "2"),
                "--warmup".into(),
                q("1", "0.5"),
            ]),
            metrics: &[
                ("server_us_per_op", "server CPU per round trip (us)"),
                ("ops_per_s", "round trips/s"),
                ("latency_p50_us", "latency p50 (us)"),
                ("latency_p99_us", "latency p99 (us)"),
            ],
            skip: &["rawws"],
            nodes: 0,
        },
        Scenario {
            name: "scale",
            args: a(&[
                "connections".into(),
                "--clients".into(),
                q("19000", "2000"),
                "--hold".into(),
                q("30", "2"),
            ]),
            metrics: &[
                (
                    "rss_per_conn_b",
                    "memory per idle WebSocket connection (B, RSS)",
                ),
                ("rss_total_b", "server RSS (B)"),
                (
                    "heartbeat_server_us_per_ping",
                    "server CPU per heartbeat (us)",
                ),
                ("server_cpu_util", "idle server CPU (cores)"),
            ],
            skip: &[],
            nodes: 0,
        },
        Scenario {
            name: "cluster",
            args: a(&[
                "cluster".into(),
                "--clients".into(),
                q("1000", "200"),
                "--payload".into(),
                "1024".into(),
                "--duration".into(),
                q("5", "2"),
                "--warmup".into(),
                q("1", "0.5"),
            ]),
            metrics: &[
                (
                    "server_us_per_delivery",
                    "CPU of all servers per delivery (us)",
                ),
                ("deliveries_per_s", "deliveries/s"),
                ("latency_p50_us", "delivery latency p50 (us)"),
                ("latency_p99_us", "delivery latency p99 (us)"),
                ("generator_cpu_util", "generator CPU (cores)"),
            ],
            // socketioxide's Redis adapter has its own format; the raw hub has no cluster.
            skip: &["socketioxide", "rawws"],
            nodes: 2,
        },
    ]
}

/// Scenarios run when none is named (`scale` only on request: it takes long).
const DEFAULT: &[&str] = &[
    "echo",
    "broadcast",
    "connections",
    "connections-polling",
    "poll-echo",
    "cluster",
];

/// `cargo xtask bench ...`.
pub fn bench(args: &[String]) -> Result<(), String> {
    let mut quick = false;
    let mut runs = 3usize;
    let mut only: Option<Vec<String>> = None;
    let mut wanted = Vec::new();
    let mut ferrio_bin: Option<String> = None;
    let mut max_other = MAX_OTHER_CPU;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--runs" => {
                runs = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--runs needs a number")?
            }
            "--servers" => {
                only = Some(
                    it.next()
                        .ok_or("--servers needs a list")?
                        .split(',')
                        .map(str::to_owned)
                        .collect(),
                )
            }
            "--ferrio-bin" => {
                ferrio_bin = Some(it.next().ok_or("--ferrio-bin needs a path")?.clone())
            }
            "--max-other" => {
                max_other = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--max-other needs a number")?
            }
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            s => wanted.push(s.to_owned()),
        }
    }
    let all = scenarios(quick);
    if wanted.is_empty() {
        wanted = DEFAULT.iter().map(|s| s.to_string()).collect();
    }
    for w in &wanted {
        if !all.iter().any(|s| s.name == w) {
            return Err(format!("unknown scenario {w}"));
        }
    }
    let mut servers: Vec<Server> = servers(true)
        .into_iter()
        .filter(|s| only.as_ref().is_none_or(|o| o.iter().any(|n| n == s.name)))
        .collect();
    if let Some(bin) = ferrio_bin {
        // Another build of bench-server (e.g. a baseline kept aside).
        for s in servers.iter_mut().filter(|s| s.name == "ferrio") {
            s.cmd = vec![bin.clone()];
        }
    }
    build(&servers)?;
    let command = format!("cargo xtask bench {}", args.join(" "));
    let mut tables = Vec::new();
    for sc in all.iter().filter(|s| wanted.iter().any(|w| w == s.name)) {
        let mut results: Vec<(&str, Vec<Run>)> = Vec::new();
        for server in servers.iter().filter(|s| !sc.skip.contains(&s.name)) {
            results.push((server.name, Vec::new()));
        }
        // Rounds: every server once per round, so slow drifts of the machine hit all alike.
        let mut attempts = 0;
        while results.iter().any(|(_, r)| clean(r) < runs) && attempts < runs * 3 {
            attempts += 1;
            for (name, done) in results.iter_mut() {
                if clean(done) >= runs {
                    continue;
                }
                let server = servers.iter().find(|s| s.name == *name).ok_or("server")?;
                eprintln!("--> {} on {} (attempt {attempts})", sc.name, server.name);
                let result = if sc.nodes > 0 {
                    run_cluster_once(server, sc.nodes, &sc.args, true, max_other)
                } else {
                    run_once(server, &sc.args, true, max_other)
                };
                match result {
                    Ok(r) => {
                        eprintln!("    {}", r.line);
                        done.push(r);
                    }
                    Err(e) => eprintln!("    failed: {e}"),
                }
            }
        }
        let table = table(sc, &results, runs);
        println!("{table}");
        tables.push(table);
    }
    append(&command, &tables, max_other)
}

/// Builds every server and the generator.
fn build(servers: &[Server]) -> Result<(), String> {
    run(Step::new(
        "build bench-server and ferrio-bench (release)",
        cargo([
            "build",
            "--release",
            "-p",
            "ferrio-test-servers",
            "--bin",
            "bench-server",
            "-p",
            "ferrio-bench",
            "--bin",
            "ferrio-bench",
        ]),
    ))?;
    if servers
        .iter()
        .any(|s| s.name == "socketioxide" || s.name == "rawws")
    {
        let manifest = root().join("bench/peers/Cargo.toml");
        let mut cmd = cargo(["build", "--release", "--locked", "--manifest-path"]);
        cmd.arg(manifest);
        run(Step::new("build the Rust peers (release)", cmd))?;
    }
    if servers.iter().any(|s| s.name == "node") {
        crate::npm_ci_in("bench/peers/node", "npm ci (bench/peers/node)")?;
    }
    Ok(())
}

/// One measurement.
struct Run {
    line: String,
    noisy: bool,
}

fn clean(runs: &[Run]) -> usize {
    runs.iter().filter(|r| !r.noisy).count()
}

/// Starts `server` on a free port (pinned when `pin`), runs the generator once, stops the
/// server.
fn run_once(server: &Server, args: &[String], pin: bool, max_other: f64) -> Result<Run, String> {
    let mut cmd = if pin {
        let mut c = Command::new("taskset");
        c.args(["-c", SERVER_CPU]).arg(&server.cmd[0]);
        c
    } else {
        Command::new(&server.cmd[0])
    };
    cmd.args(&server.cmd[1..])
        .arg("0")
        .env_remove("WORKERS")
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = Guard(
        cmd.spawn()
            .map_err(|e| format!("{}: cannot start: {e}", server.name))?,
    );
    let (addr, pid) = listening_line(&mut child.0)?;
    let bench = root()
        .join("target")
        .join(if pin { "release" } else { "debug" })
        .join("ferrio-bench");
    let mut gen_cmd = if pin {
        let mut c = Command::new("taskset");
        c.args(["-c", GENERATOR_CPU]).arg(bench);
        c
    } else {
        Command::new(bench)
    };
    gen_cmd
        .args(args)
        .args(["--addr", &addr, "--pid", &pid, "--label", server.name])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    let out = gen_cmd
        .output()
        .map_err(|e| format!("ferrio-bench: cannot start: {e}"))?;
    child.stop();
    if !out.status.success() {
        return Err(format!("ferrio-bench failed ({})", out.status));
    }
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let noisy = field(&line, "other_cpu_util").unwrap_or(0.0) > max_other
        || field(&line, "steal_util").unwrap_or(0.0) > MAX_STEAL;
    Ok(Run { line, noisy })
}

/// Starts a private `redis-server` and `nodes` servers of `server`'s kind joined through it
/// (`--redis URL`), runs the generator once against all of them, stops everything.
fn run_cluster_once(
    server: &Server,
    nodes: usize,
    args: &[String],
    pin: bool,
    max_other: f64,
) -> Result<Run, String> {
    let redis = Redis::start(pin)?;
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let mut children = Vec::new();
    let mut endpoints = Vec::new();
    for _ in 0..nodes.max(2) {
        let mut cmd = pinned(pin, &server.cmd[0]);
        cmd.args(&server.cmd[1..])
            .args(["0", "--redis", &url])
            .env_remove("WORKERS")
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = Guard(
            cmd.spawn()
                .map_err(|e| format!("{}: cannot start: {e}", server.name))?,
        );
        endpoints.push(listening_line(&mut child.0)?);
        children.push(child);
    }
    let mut gen_cmd = pinned(pin, &generator(pin));
    gen_cmd.args(args).args([
        "--addr",
        &endpoints[0].0,
        "--pid",
        &endpoints[0].1,
        "--label",
        server.name,
    ]);
    for (addr, pid) in &endpoints[1..] {
        gen_cmd.args(["--peer", addr, "--peer-pid", pid]);
    }
    gen_cmd.stdin(Stdio::null()).stderr(Stdio::inherit());
    let out = gen_cmd
        .output()
        .map_err(|e| format!("ferrio-bench: cannot start: {e}"))?;
    for c in &mut children {
        c.stop();
    }
    drop(redis);
    if !out.status.success() {
        return Err(format!("ferrio-bench failed ({})", out.status));
    }
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let noisy = field(&line, "other_cpu_util").unwrap_or(0.0) > max_other
        || field(&line, "steal_util").unwrap_or(0.0) > MAX_STEAL;
    Ok(Run { line, noisy })
}

/// `program`, pinned to the servers' core when `pin`.
fn pinned(pin: bool, program: &str) -> Command {
    if pin {
        let mut c = Command::new("taskset");
        c.args(["-c", SERVER_CPU]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn generator(release: bool) -> String {
    root()
        .join("target")
        .join(if release { "release" } else { "debug" })
        .join("ferrio-bench")
        .to_string_lossy()
        .into_owned()
}

/// A `redis-server` of the benchmark's own on a free port, keeping nothing on disk; killed on
/// drop.
struct Redis {
    port: u16,
    _child: Guard,
}

impl Redis {
    fn start(pin: bool) -> Result<Redis, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| format!("a free port: {e}"))?;
        let mut cmd = pinned(pin, "redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = Guard(
            cmd.spawn()
                .map_err(|e| format!("redis-server: cannot start: {e}"))?,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                use std::io::Write;
                let mut buf = [0u8; 16];
                if s.write_all(b"PING\r\n").is_ok() && s.read(&mut buf).is_ok_and(|n| n > 0) {
                    return Ok(Redis {
                        port,
                        _child: child,
                    });
                }
            }
            if Instant::now() > deadline {
                return Err("redis-server did not answer within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Reads `listening on ADDR pid PID` from the server's stdout.
fn listening_line(child: &mut Child) -> Result<(String, String), String> {
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout);
        let mut line = String::new();
        let _ = lines.read_line(&mut line);
        let _ = tx.send(line);
        // Keep draining so the server never blocks on a full pipe.
        let _ = std::io::copy(&mut lines.take(u64::MAX), &mut std::io::sink());
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| "the server printed no address in 30 s".to_owned())?;
    let mut words = line.split_whitespace();
    let addr = words.nth(2).ok_or_else(|| format!("bad line {line:?}"))?;
    let pid = words.nth(1).ok_or_else(|| format!("bad line {line:?}"))?;
    Ok((addr.to_owned(), pid.to_owned()))
}

/// Stops the child on drop (SIGTERM, then SIGKILL after 5 s).
struct Guard(Child);

impl Guard {
    fn stop(&mut self) {
        if let Ok(Some(_)) = self.0.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A number field of a flat JSON line.
fn field(line: &str, key: &str) -> Option<f64> {
    let pat = format!("\"{key}\":");
    let start = line.find(&pat)? + pat.len();
    let rest = &line[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    })
}

/// The runs a table uses: the clean ones, or when too few, the least noisy.
fn chosen(runs: &[Run], want: usize) -> (Vec<&Run>, bool) {
    let clean: Vec<&Run> = runs.iter().filter(|r| !r.noisy).collect();
    if clean.len() >= want.min(runs.len()).max(1) {
        return (clean, false);
    }
    let mut all: Vec<&Run> = runs.iter().collect();
    all.sort_by(|a, b| {
        let o = |r: &Run| field(&r.line, "other_cpu_util").unwrap_or(0.0);
        o(a).total_cmp(&o(b))
    });
    all.truncate(want.max(1));
    (all, true)
}

fn fmt(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The markdown table of one scenario: medians (all runs in brackets), then Ferrio/peer.
fn table(sc: &Scenario, results: &[(&str, Vec<Run>)], runs: usize) -> String {
    let mut out = format!(
        "#### {} (`ferrio-bench {}`)\n\n",
        sc.name,
        sc.args.join(" ")
    );
    let names: Vec<&str> = results.iter().map(|(n, _)| *n).collect();
    out += &format!("| metric | {} |", names.join(" | "));
    let peers: Vec<&str> = names.iter().copied().filter(|n| *n != "ferrio").collect();
    for p in &peers {
        out += &format!(" ferrio/{p} |");
    }
    out += "\n|---|";
    out += &"---|".repeat(names.len() + peers.len());
    out += "\n";
    let mut notes = Vec::new();
    for (metric, label) in sc.metrics {
        let mut medians = Vec::new();
        out += &format!("| {label} |");
        for (name, rs) in results {
            let (used, noisy) = chosen(rs, runs);
            if noisy && metric == &sc.metrics[0].0 {
                notes.push(format!(
                    "{name}: fewer than {runs} quiet runs, least noisy used"
                ));
            }
            let vals: Vec<f64> = used.iter().filter_map(|r| field(&r.line, metric)).collect();
            let m = median(vals.clone());
            medians.push((*name, m));
            match m {
                Some(m) => {
                    let all: Vec<String> = vals.iter().map(|v| fmt(*v)).collect();
                    out += &format!(" {} ({}) |", fmt(m), all.join(", "));
                }
                None => out += " - |",
            }
        }
        let ferrio = medians
            .iter()
            .find(|(n, _)| *n == "ferrio")
            .and_then(|(_, m)| *m);
        for p in &peers {
            let peer = medians.iter().find(|(n, _)| n == p).and_then(|(_, m)| *m);
            match (ferrio, peer) {
                (Some(f), Some(p)) if p != 0.0 => out += &format!(" {:.2}x |", f / p),
                _ => out += " - |",
            }
        }
        out += "\n";
    }
    for n in notes {
        out += &format!("\n_{n}._\n");
    }
    out
}

/// Appends the tables to `docs/BENCHMARKS.md`.
fn append(command: &str, tables: &[String], max_other: f64) -> Result<(), String> {
    let path = root().join("docs/BENCHMARKS.md");
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        "# Benchmarks\n\nResults of `cargo xtask bench`, newest last.\n".to_owned()
    });
    text += &format!(
        "\n### {date}, commit {commit}\n\n`{}` (server pinned to CPU {SERVER_CPU}, generator to \
         CPU {GENERATOR_CPU}, fresh server per run; medians, all runs in brackets; runs where \
         other processes used more than {max_other} of a core or steal passed \
         {MAX_STEAL} are dropped)\n\n",
        command.trim()
    );
    for t in tables {
        text += t;
        text += "\n";
    }
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("appended to {}", path.display());
    Ok(())
}

/// The short form for `cargo xtask test`: Ferrio's server only, debug builds, small loads.
/// Checks that each scenario completes and reports sane numbers; no timing thresholds.
pub fn smoke() -> Result<(), String> {
    run(Step::new(
        "build bench-server and ferrio-bench",
        cargo([
            "build",
            "-p",
            "ferrio-test-servers",
            "--bin",
            "bench-server",
            "-p",
            "ferrio-bench",
            "--bin",
            "ferrio-bench",
        ]),
    ))?;
    eprintln!("==> bench smoke");
    let ferrio = servers(false).into_iter().next().ok_or("no server")?;
    let cases: &[(&[&str], &[&str])] = &[
        (
            &[
                "echo",
                "--clients",
                "10",
                "--duration",
                "1",
                "--warmup",
                "0.2",
            ],
            &["ops", "server_us_per_op", "latency_p50_us"],
        ),
        (
            &[
                "broadcast",
                "--clients",
                "20",
                "--payload",
                "1024",
                "--duration",
                "1",
                "--warmup",
                "0.2",
            ],
            &["deliveries", "server_us_per_delivery", "latency_p50_us"],
        ),
        (
            &["connections", "--clients", "100", "--hold", "0.2"],
            &["rss_total_b", "handshake_server_us"],
        ),
        (
            &[
                "connections",
                "--transport",
                "polling",
                "--clients",
                "20",
                "--hold",
                "0.2",
            ],
            &["rss_total_b", "handshake_server_us"],
        ),
        (
            &[
                "poll-echo",
                "--clients",
                "5",
                "--duration",
                "1",
                "--warmup",
                "0.2",
            ],
            &["ops", "server_us_per_op", "latency_p50_us"],
        ),
        (
            &[
                "cluster",
                "--clients",
                "20",
                "--payload",
                "1024",
                "--duration",
                "1",
                "--warmup",
                "0.2",
            ],
            &["deliveries", "server_us_per_delivery", "latency_p50_us"],
        ),
    ];
    let mut passed = 0;
    let mut failed = Vec::new();
    for (args, positive) in cases {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let once = if args[0] == "cluster" {
            run_cluster_once(&ferrio, 2, &args, false, f64::INFINITY)
        } else {
            run_once(&ferrio, &args, false, f64::INFINITY)
        };
        let result = once.and_then(|r| {
            let errors = field(&r.line, "errors").unwrap_or(0.0);
            if errors != 0.0 {
                return Err(format!("{errors} errors: {}", r.line));
            }
            if let (Some(alive), Some(clients)) =
                (field(&r.line, "alive"), field(&r.line, "clients"))
                && alive != clients
            {
                return Err(format!(
                    "{alive} of {clients} connections alive: {}",
                    r.line
                ));
            }
            for key in *positive {
                match field(&r.line, key) {
                    Some(v) if v > 0.0 && v.is_finite() => {}
                    _ => return Err(format!("{key} missing or not positive: {}", r.line)),
                }
            }
            Ok(r)
        });
        match result {
            Ok(r) => {
                passed += 1;
                eprintln!("    ok: {}", r.line);
            }
            Err(e) => failed.push(format!("{}: {e}", args[0])),
        }
    }
    eprintln!("bench smoke: {passed} passed, {} failed", failed.len());
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_medians() {
        let line = r#"{"a":1.5,"b":null,"scenario":"echo","c":3}"#;
        assert_eq!(field(line, "a"), Some(1.5));
        assert_eq!(field(line, "b"), None);
        assert_eq!(field(line, "c"), Some(3.0));
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }
}
