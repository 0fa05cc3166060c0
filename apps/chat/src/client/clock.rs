//! The timestamps of the terminal client: `HH:MM:SS`, local time.

use std::time::SystemTime;

/// Formats Unix timestamps in milliseconds (the chat's `ts`) as a wall-clock time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Clock {
    offset_secs: i64,
}

impl Clock {
    /// The local time zone's current offset, or UTC when it cannot be read.
    ///
    /// Call it before any thread is started: on Unix the offset is read only while the
    /// process has a single thread (`localtime_r` is not thread-safe with `setenv`). It is
    /// read once, so a change to or from daylight saving time shows after a restart.
    pub(super) fn local() -> Self {
        let offset = time::UtcOffset::current_local_offset().unwrap_or(time::UtcOffset::UTC);
        Clock {
            offset_secs: i64::from(offset.whole_seconds()),
        }
    }

    #[cfg(test)]
    fn with_offset(offset_secs: i64) -> Self {
        Clock { offset_secs }
    }

    /// `HH:MM:SS` of `ts_ms`.
    pub(super) fn format(&self, ts_ms: u64) -> String {
        let secs = i64::try_from(ts_ms / 1000).unwrap_or(i64::MAX - 86_400);
        let day = (secs + self.offset_secs).rem_euclid(86_400);
        format!("{:02}:{:02}:{:02}", day / 3600, day / 60 % 60, day % 60)
    }
}

/// Milliseconds since the Unix epoch.
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_clock_time_with_the_offset() {
        // 2024-05-01T13:04:05.678Z
        let ts = 1_714_568_645_678;
        assert_eq!(Clock::with_offset(0).format(ts), "13:04:05");
        assert_eq!(Clock::with_offset(2 * 3600).format(ts), "15:04:05");
        assert_eq!(Clock::with_offset(-14 * 3600).format(ts), "23:04:05");
        assert_eq!(Clock::with_offset(11 * 3600).format(ts), "00:04:05");
        assert_eq!(Clock::with_offset(0).format(0), "00:00:00");
    }
}
