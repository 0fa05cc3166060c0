//! `cargo xtask autobahn [--update]`: the Autobahn|Testsuite (every case, 1.* to 10.* and the
//! permessage-deflate cases 12.* and 13.*), run by `kosoku` (PyPI, installed into
//! `target/autobahn-venv` on first use), against
//!
//! - the server: `autobahn-echo --deflate`, a raw WebSocket echo on ferrio-engine's WebSocket
//!   path with permessage-deflate on (`fuzzingclient` mode);
//! - the client: `autobahn-client`, WebSocket connections opened as ferrio-client opens them,
//!   driving `kosoku`'s `fuzzingserver`.
//!
//! Every case must be OK (behaviour and closing handshake), or be listed with the same
//! verdict and a reason in `docs/autobahn/accepted.json`; anything else fails the step. The
//! results (without timings) are compared with the summaries checked in under
//! `docs/autobahn/`; `--update` rewrites them. The HTML and JSON reports of each case stay
//! in `target/autobahn/`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::util::{Step, cargo, root, run};

/// The pinned runner.
const KOSOKU: &str = "kosoku==0.1.0";
/// Longest one side of the suite may take (it takes seconds here).
const SIDE_TIMEOUT: Duration = Duration::from_secs(600);

/// Runs both sides and checks them; `update` rewrites the checked-in summaries.
pub fn run_all(update: bool) -> Result<(), String> {
    let kosoku = install_kosoku()?;
    run(Step::new(
        "build autobahn-echo and autobahn-client",
        cargo([
            "build",
            "--workspace",
            "--all-features",
            "--bin",
            "autobahn-echo",
            "--bin",
            "autobahn-client",
        ]),
    ))?;
    let bin = target_dir().join("debug");
    let out = target_dir().join("autobahn");
    let _ = std::fs::remove_dir_all(&out);

    let server = timed("autobahn: server (fuzzingclient)", || {
        server_side(&kosoku, &bin, &out.join("servers"))
    })?;
    let client = timed("autobahn: client (fuzzingserver)", || {
        client_side(&kosoku, &bin, &out.join("clients"))
    })?;

    let docs = root().join("docs").join("autobahn");
    let accepted = read_json(&docs.join("accepted.json"))?;
    let mut problems = Vec::new();
    for (side, results) in [("server", &server), ("client", &client)] {
        problems.extend(check(side, results, &accepted[side]));
        let file = docs.join(format!("{side}.json"));
        let summary = summary(results);
        if update {
            write_json(&file, &summary)?;
            eprintln!("autobahn: wrote {}", file.display());
        } else if read_json(&file).ok().as_ref() != Some(&summary) {
            eprintln!(
                "autobahn: the {side} results differ from {} (run `cargo xtask autobahn --update` \
                 and review the diff)",
                file.display()
            );
        }
    }
    if problems.is_empty() {
        eprintln!("autobahn: every case OK or an accepted deviation");
        Ok(())
    } else {
        Err(format!(
            "autobahn: {} case(s) neither OK nor accepted in docs/autobahn/accepted.json:\n  {}",
            problems.len(),
            problems.join("\n  ")
        ))
    }
}

/// One case's verdict: behaviour, closing behaviour, the close code the peer sent.
type Results = BTreeMap<CaseId, (String, String, Option<u64>)>;

/// A case id ordered numerically (`9.10.1` after `9.2.1`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct CaseId(Vec<u32>);

impl CaseId {
    fn parse(s: &str) -> Option<CaseId> {
        s.split('.')
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()
            .map(CaseId)
    }
}

impl std::fmt::Display for CaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

/// Installs kosoku into `target/autobahn-venv` unless it is there; returns its path.
fn install_kosoku() -> Result<PathBuf, String> {
    let venv = target_dir().join("autobahn-venv");
    let kosoku = venv.join("bin").join("kosoku");
    if kosoku.exists() {
        return Ok(kosoku);
    }
    let mut venv_cmd = Command::new("python3");
    venv_cmd.arg("-m").arg("venv").arg(&venv);
    if run(Step::new("python3 -m venv (autobahn)", venv_cmd)).is_err() {
        // Debian keeps the venv module apart.
        let mut apt = Command::new("sh");
        apt.args([
            "-c",
            "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv",
        ]);
        run(Step::new("install python3-venv (apt-get)", apt))?;
        let mut venv_cmd = Command::new("python3");
        venv_cmd.arg("-m").arg("venv").arg(&venv);
        run(Step::new("python3 -m venv (autobahn)", venv_cmd))?;
    }
    let mut pip = Command::new(venv.join("bin").join("pip"));
    pip.args(["install", "--quiet", "--disable-pip-version-check", KOSOKU]);
    run(Step::new("pip install kosoku", pip))?;
    Ok(kosoku)
}

/// The echo server under `fuzzingclient`.
fn server_side(kosoku: &Path, bin: &Path, out: &Path) -> Result<Results, String> {
    let mut echo = Command::new(bin.join("autobahn-echo"));
    // permessage-deflate on: the 12.* and 13.* cases run against the codec's deflate.
    echo.args(["--port", "0", "--deflate"])
        .stdout(Stdio::piped());
    let mut echo = Running::spawn(echo, "autobahn-echo")?;
    let line = echo.stdout_line(|l| l.strip_prefix("listening on ").map(str::to_owned))?;
    let log = log_file(out)?;
    let mut cmd = Command::new(kosoku);
    cmd.args(["-p", "2", "-o"]).arg(out).arg(&line);
    cmd.stdout(Stdio::null()).stderr(log);
    // kosoku exits non-zero when any case is not OK (the informational ones included): the
    // verdicts are read from its report instead.
    let mut runner = Running::spawn(cmd, "kosoku fuzzingclient")?;
    runner.wait(SIDE_TIMEOUT)?;
    drop(echo);
    read_results(out)
}

/// `fuzzingserver` driven by the client.
fn client_side(kosoku: &Path, bin: &Path, out: &Path) -> Result<Results, String> {
    let mut cmd = Command::new(kosoku);
    cmd.args(["-m", "fuzzingserver", "-o"])
        .arg(out)
        .arg("127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut server = Running::spawn(cmd, "kosoku fuzzingserver")?;
    let addr = server.stderr_line(|l| {
        l.strip_prefix("fuzzingserver listening on ")
            .map(str::to_owned)
    })?;
    let mut client = Command::new(bin.join("autobahn-client"));
    client.arg(&addr).arg("ferrio-client").stderr(Stdio::null());
    let mut client = Running::spawn(client, "autobahn-client")?;
    client.wait(SIDE_TIMEOUT)?;
    // The fuzzing server writes its report and exits once the client asked for it.
    server.wait(Duration::from_secs(60))?;
    read_results(out)
}

/// `<out>.log`, for kosoku's own listing of the cases that are not OK.
fn log_file(out: &Path) -> Result<std::fs::File, String> {
    let path = out.with_extension("log");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_results(out: &Path) -> Result<Results, String> {
    let index = read_json(&out.join("index.json"))?;
    let agents = index
        .as_object()
        .ok_or("autobahn: index.json is not an object")?;
    let mut results = Results::new();
    for cases in agents.values() {
        for (id, v) in cases.as_object().into_iter().flatten() {
            let case = CaseId::parse(id).ok_or_else(|| format!("autobahn: bad case id {id}"))?;
            let text = |k: &str| v[k].as_str().unwrap_or("?").to_owned();
            results.insert(
                case,
                (
                    text("behavior"),
                    text("behaviorClose"),
                    v["remoteCloseCode"].as_u64(),
                ),
            );
        }
    }
    if results.is_empty() {
        return Err(format!("autobahn: no results in {}", out.display()));
    }
    Ok(results)
}

/// The cases that are neither OK nor accepted with that verdict.
fn check(side: &str, results: &Results, accepted: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (case, (behavior, close, _)) in results {
        *counts.entry(format!("{behavior}/{close}")).or_default() += 1;
        if behavior == "OK" && close == "OK" {
            continue;
        }
        let entry = accepted
            .as_object()
            .and_then(|m| lookup(m, &case.to_string()));
        let ok = entry.is_some_and(|e| {
            e["behavior"].as_str() == Some(behavior)
                && e["behaviorClose"].as_str() == Some(close)
                && e["reason"].as_str().is_some_and(|r| !r.is_empty())
        });
        if !ok {
            problems.push(format!(
                "{side} {case}: behavior {behavior}, behaviorClose {close}"
            ));
        }
    }
    eprintln!("autobahn {side}: {} cases: {counts:?}", results.len());
    problems
}

/// The accepted entry for `case`: its exact id, or the longest `prefix.*` pattern.
fn lookup<'a>(accepted: &'a Map<String, Value>, case: &str) -> Option<&'a Value> {
    if let Some(v) = accepted.get(case) {
        return Some(v);
    }
    accepted
        .iter()
        .filter_map(|(pattern, v)| {
            let prefix = pattern.strip_suffix('*')?;
            case.starts_with(prefix).then_some((prefix.len(), v))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, v)| v)
}

/// The checked-in form: case id → verdicts and close code, in case order.
fn summary(results: &Results) -> Value {
    let mut cases = Vec::new();
    for (case, (behavior, close, code)) in results {
        cases.push(json!({
            "case": case.to_string(),
            "behavior": behavior,
            "behaviorClose": close,
            "remoteCloseCode": code,
        }));
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (behavior, _, _) in results.values() {
        *counts.entry(behavior.clone()).or_default() += 1;
    }
    json!({ "kosoku": KOSOKU, "counts": counts, "cases": cases })
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn write_json(path: &Path, value: &Value) -> Result<(), String> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    text.push('\n');
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

fn timed<T>(name: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    eprintln!("==> {name}");
    let start = Instant::now();
    let r = f();
    eprintln!("<== {name} ({:.1}s)", start.elapsed().as_secs_f64());
    r
}

/// A child process, killed when dropped.
struct Running {
    child: Child,
    name: &'static str,
}

impl Running {
    fn spawn(mut cmd: Command, name: &'static str) -> Result<Running, String> {
        cmd.current_dir(root()).stdin(Stdio::null());
        let child = cmd
            .spawn()
            .map_err(|e| format!("{name}: cannot start: {e}"))?;
        Ok(Running { child, name })
    }

    /// The first stdout line for which `f` gives a value (within 30 s).
    fn stdout_line(&mut self, f: impl Fn(&str) -> Option<String>) -> Result<String, String> {
        let out = self.child.stdout.take().ok_or("stdout not piped")?;
        first_line(out, f, self.name)
    }

    /// The first stderr line for which `f` gives a value (within 30 s).
    fn stderr_line(&mut self, f: impl Fn(&str) -> Option<String>) -> Result<String, String> {
        let err = self.child.stderr.take().ok_or("stderr not piped")?;
        first_line(err, f, self.name)
    }

    /// Waits for the exit (any status), at most `timeout`.
    fn wait(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(None) => return Err(format!("{}: still running after {timeout:?}", self.name)),
                Err(e) => return Err(format!("{}: {e}", self.name)),
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Reads lines on a thread (which then keeps draining the pipe) until `f` matches one.
fn first_line<R: std::io::Read + Send + 'static>(
    pipe: R,
    f: impl Fn(&str) -> Option<String>,
    name: &str,
) -> Result<String, String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                // Nobody listens any more: keep draining so the child never blocks.
                continue;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(v) = f(&line) {
                    return Ok(v);
                }
            }
            Err(_) => return Err(format!("{name}: no address printed within 30 s")),
        }
    }
}
