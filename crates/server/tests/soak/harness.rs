//! What the scenarios share: the long/short switch, one-at-a-time execution, and readings of
//! this process (RSS, peak RSS, open fds, live tasks).

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Whether the long form runs (`SOAK_LONG=1`, set by `cargo xtask soak`).
pub fn long() -> bool {
    std::env::var("SOAK_LONG").is_ok_and(|v| v == "1")
}

/// `short` normally, `long` with `SOAK_LONG=1`.
pub fn pick<T>(short: T, long_value: T) -> T {
    if long() { long_value } else { short }
}

/// Scenarios read process-wide figures: only one runs at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A multi-threaded runtime for one scenario (two workers: the CI machine has two cores).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Resident memory of this process, in KiB.
pub fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

/// Peak resident memory since the last [`reset_peak_rss`], in KiB.
pub fn peak_rss_kib() -> u64 {
    status_kib("VmHWM:")
}

/// Resets the peak of [`peak_rss_kib`] to the current RSS (`/proc/self/clear_refs`, 5).
pub fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// Tasks alive on the current runtime.
pub fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Polls `cond` every 20 ms until it holds; fails the test after `secs` with `what` and the
/// last reading.
pub async fn settle<T: std::fmt::Debug>(
    secs: u64,
    what: &str,
    mut read: impl FnMut() -> T,
    mut cond: impl FnMut(&T) -> bool,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let v = read();
        if cond(&v) {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("after {secs}s, {what} is still not reached: {v:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `q`-th quantile of `samples` (sorted in place).
pub fn quantile(samples: &mut [u64], q: f64) -> u64 {
    assert!(!samples.is_empty(), "no samples");
    samples.sort_unstable();
    let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples[i]
}
