//! What `/proc` says about the server, the generator and the machine.

use std::time::Duration;

/// Clock ticks per second of `/proc/*/stat` and `/proc/stat` (`USER_HZ`, 100 on Linux).
const USER_HZ: f64 = 100.0;

/// CPU time a process has used so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    /// Sum of `sum_exec_runtime` over the process's threads (`/proc/PID/task/*/schedstat`),
    /// nanosecond precision.
    pub sched: Duration,
    /// `utime + stime` of `/proc/PID/stat` (ticks of 10 ms, includes exited threads).
    pub ticks: Duration,
}

impl Cpu {
    /// The CPU time of `pid` (`"self"` for this process).
    pub fn of(pid: &str) -> Cpu {
        let mut sched = 0u64;
        if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for task in dir.flatten() {
                let path = task.path().join("schedstat");
                if let Ok(s) = std::fs::read_to_string(path) {
                    sched += s
                        .split_whitespace()
                        .next()
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0);
                }
            }
        }
        let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                // The command name may hold spaces: fields count from the last ')'.
                let rest = &s[s.rfind(')')? + 1..];
                let f: Vec<&str> = rest.split_whitespace().collect();
                // After ')': state is field 3, utime 14, stime 15 (1-based in proc(5)).
                let utime: u64 = f.get(11)?.parse().ok()?;
                let stime: u64 = f.get(12)?.parse().ok()?;
                Some(utime + stime)
            })
            .unwrap_or(0);
        Cpu {
            sched: Duration::from_nanos(sched),
            ticks: Duration::from_secs_f64(ticks as f64 / USER_HZ),
        }
    }

    /// CPU used between `earlier` and `self`: the precise figure unless threads exited in
    /// between (then the tick count is larger and is used).
    pub fn since(&self, earlier: &Cpu) -> Duration {
        let sched = self.sched.saturating_sub(earlier.sched);
        let ticks = self.ticks.saturating_sub(earlier.ticks);
        if ticks > sched + Duration::from_millis(20) {
            ticks
        } else {
            sched
        }
    }
}

/// Memory of a process, in bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mem {
    /// `VmRSS` of `/proc/PID/status`.
    pub rss: u64,
    /// `RssAnon` (heap and stacks).
    pub anon: u64,
    /// `Private_Dirty` of `/proc/PID/smaps_rollup` (0 when not readable).
    pub private_dirty: u64,
}

impl Mem {
    /// The memory of `pid`.
    pub fn of(pid: &str) -> Mem {
        let kb = |text: &str, key: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .map_or(0, |v| v * 1024)
        };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let smaps =
            std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        Mem {
            rss: kb(&status, "VmRSS:"),
            anon: kb(&status, "RssAnon:"),
            private_dirty: kb(&smaps, "Private_Dirty:"),
        }
    }
}

/// The machine's CPU counters (`/proc/stat`, first line).
#[derive(Debug, Clone, Copy, Default)]
pub struct Machine {
    /// Time all CPUs spent busy (user, nice, system, irq, softirq, steal).
    pub busy: Duration,
    /// Time stolen by the hypervisor.
    pub steal: Duration,
}

impl Machine {
    /// The counters now.
    pub fn now() -> Machine {
        let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
            return Machine::default();
        };
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal
        let busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
        let secs = |t: u64| Duration::from_secs_f64(t as f64 / USER_HZ);
        Machine {
            busy: secs(busy),
            steal: secs(at(7)),
        }
    }
}

/// Everything sampled at one instant of a measurement.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When.
    pub at: std::time::Instant,
    /// The server's CPU.
    pub server: Cpu,
    /// The generator's own CPU.
    pub generator: Cpu,
    /// The machine's counters.
    pub machine: Machine,
}

impl Sample {
    /// Samples the server `pid`, this process and the machine.
    pub fn take(pid: u32) -> Sample {
        Self::take_all(&[pid])
    }

    /// Samples several server processes (a cluster: their CPU is added), this process and
    /// the machine.
    pub fn take_all(pids: &[u32]) -> Sample {
        let mut server = Cpu::default();
        for pid in pids {
            let c = Cpu::of(&pid.to_string());
            server.sched += c.sched;
            server.ticks += c.ticks;
        }
        Sample {
            at: std::time::Instant::now(),
            server,
            generator: Cpu::of("self"),
            machine: Machine::now(),
        }
    }
}

/// The CPU figures of one measurement window.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Wall time.
    pub wall: Duration,
    /// CPU used by the server.
    pub server: Duration,
    /// CPU used by the generator.
    pub generator: Duration,
    /// CPU used by everything else on the machine (noise).
    pub other: Duration,
    /// CPU stolen by the hypervisor.
    pub steal: Duration,
}

impl Window {
    /// The window between two samples.
    pub fn between(a: &Sample, b: &Sample) -> Window {
        let server = b.server.since(&a.server);
        let generator = b.generator.since(&a.generator);
        let busy = b.machine.busy.saturating_sub(a.machine.busy);
        Window {
            wall: b.at - a.at,
            server,
            generator,
            other: busy.saturating_sub(server + generator),
            steal: b.machine.steal.saturating_sub(a.machine.steal),
        }
    }

    /// The JSON fields every scenario reports.
    pub fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        let wall = self.wall.as_secs_f64().max(1e-9);
        let mut m = serde_json::Map::new();
        m.insert("window_s".into(), round(wall, 3).into());
        m.insert(
            "server_cpu_s".into(),
            round(self.server.as_secs_f64(), 4).into(),
        );
        m.insert(
            "server_cpu_util".into(),
            round(self.server.as_secs_f64() / wall, 3).into(),
        );
        m.insert(
            "generator_cpu_util".into(),
            round(self.generator.as_secs_f64() / wall, 3).into(),
        );
        m.insert(
            "other_cpu_util".into(),
            round(self.other.as_secs_f64() / wall, 3).into(),
        );
        m.insert(
            "steal_util".into(),
            round(self.steal.as_secs_f64() / wall, 3).into(),
        );
        m
    }
}

/// `v` rounded to `digits` decimals.
pub fn round(v: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (v * p).round() / p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_and_memory_are_read() {
        let start = Cpu::of("self");
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let end = Cpu::of("self");
        assert!(end.since(&start) > Duration::ZERO);
        let mem = Mem::of("self");
        assert!(mem.rss > 0 && mem.anon > 0);
        assert!(Machine::now().busy > Duration::ZERO);
    }
}
