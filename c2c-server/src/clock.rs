//! Timestamps as the store keeps them: UTC in RFC 3339 with microseconds and `+00:00`, the
//! format the original Python server wrote, so that old and new rows compare as text.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The current time, formatted for the store.
pub fn now() -> String {
    format_time(SystemTime::now())
}

/// The time `age` before now, formatted for the store (for cut-offs).
pub fn ago(age: Duration) -> String {
    format_time(SystemTime::now().checked_sub(age).unwrap_or(UNIX_EPOCH))
}

/// An age for people: `42s ago`, `5m ago`, `3h ago`, `2d ago`.
pub fn age(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s ago"),
        s if s < 3600 => format!("{}m ago", s / 60),
        s if s < 86_400 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86_400),
    }
}

/// Formats `t` as `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`.
pub fn format_time(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}+00:00",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_micros()
    )
}

/// Parses a stored timestamp (`YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00`); `None` if it is not one.
pub fn parse(text: &str) -> Option<SystemTime> {
    let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<u64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let micros = match text.get(19..20) {
        Some(".") => num(20..26)?,
        _ => 0,
    };
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year as i64, month as u32, day as u32);
    let secs = u64::try_from(days).ok()? * 86_400 + hour * 3600 + minute * 60 + second;
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros))
}

// The inverse of `civil_from_days`.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_time(UNIX_EPOCH), "1970-01-01T00:00:00.000000+00:00");
        let t = UNIX_EPOCH + Duration::new(1_709_210_096, 123_456_789);
        assert_eq!(format_time(t), "2024-02-29T12:34:56.123456+00:00");
        let t = UNIX_EPOCH + Duration::from_secs(4_102_444_799);
        assert_eq!(format_time(t), "2099-12-31T23:59:59.000000+00:00");
    }

    #[test]
    fn parses_what_it_formats_and_the_python_forms() {
        let t = UNIX_EPOCH + Duration::new(1_709_210_096, 123_456_000);
        assert_eq!(parse(&format_time(t)), Some(t));
        let whole = UNIX_EPOCH + Duration::from_secs(1_709_210_096);
        assert_eq!(parse("2024-02-29T12:34:56+00:00"), Some(whole));
        assert_eq!(parse("not a time"), None);
        assert_eq!(parse("2024-13-01T00:00:00+00:00"), None);
    }

    #[test]
    fn later_times_sort_later_as_text() {
        let a = format_time(UNIX_EPOCH + Duration::from_micros(1_700_000_000_000_001));
        let b = format_time(UNIX_EPOCH + Duration::from_micros(1_700_000_000_100_000));
        assert!(a < b);
        assert!(ago(Duration::from_secs(60)) < now());
    }
}
