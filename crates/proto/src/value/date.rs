//! JavaScript's two date formats, for values that cross to Node: `toISOString()` (what
//! `JSON.stringify` writes for a `Date`) and `toString()` (the `time` of Node's handshake).
//! Both in UTC, from milliseconds since the Unix epoch.

/// `Date.prototype.toISOString()`: `2026-01-02T03:04:05.678Z`.
pub fn iso_string(ms: i64) -> String {
    let (y, mo, d, h, mi, s, milli, _) = parts(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// `Date.prototype.toString()` in the UTC time zone:
/// `Fri Jan 02 2026 03:04:05 GMT+0000 (Coordinated Universal Time)`.
pub fn date_string(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s, _, weekday) = parts(ms);
    let month = MONTHS.get(mo as usize - 1).copied().unwrap_or("Jan");
    let day = DAYS.get(weekday).copied().unwrap_or("Thu");
    format!(
        "{day} {month} {d:02} {y:04} {h:02}:{mi:02}:{s:02} GMT+0000 (Coordinated Universal Time)"
    )
}

/// (year, month 1-12, day, hour, minute, second, millisecond, weekday counted from Thursday).
#[allow(clippy::type_complexity)]
fn parts(ms: i64) -> (i64, u32, u32, i64, i64, i64, i64, usize) {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    (
        y,
        m,
        d,
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
        days.rem_euclid(7) as usize,
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn javascript_formats() {
        // new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678))
        assert_eq!(iso_string(1_767_323_045_678), "2026-01-02T03:04:05.678Z");
        assert_eq!(
            date_string(1_767_323_045_678),
            "Fri Jan 02 2026 03:04:05 GMT+0000 (Coordinated Universal Time)"
        );
        // The handshake captured from Node (interop.md 2.1): issued 1795313201366.
        assert_eq!(
            date_string(1_795_313_201_366),
            "Sun Nov 22 2026 02:06:41 GMT+0000 (Coordinated Universal Time)"
        );
        assert_eq!(iso_string(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_string(-1), "1969-12-31T23:59:59.999Z");
    }
}
