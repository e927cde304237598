//! Time, once for everyone: the lenient date-time parser (vendor payloads, KQL literals, Query API timespans),
//! the one formatter (Azure's form of TimeGenerated: RFC 3339, UTC, the fraction only when there is one),
//! ISO 8601 durations, and ticks (100 ns, Kusto's unit).
//!
//! Every parser here takes arbitrary UTF-8 and answers `None` for what it cannot read: no input panics.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Kusto counts time in 100-nanosecond ticks.
pub const TICKS_PER_SEC: i64 = 10_000_000;

pub fn now_utc() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// The current time in ticks since the Unix epoch.
pub fn now_ticks() -> i64 {
    ticks_of(OffsetDateTime::now_utc())
}

/// A time in ticks since the Unix epoch (sub-tick nanoseconds dropped).
pub fn ticks_of(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos().div_euclid(100)).unwrap_or(i64::MAX)
}

/// The time a tick count stands for, when it is one `time` can represent.
pub fn from_ticks(ticks: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ticks) * 100).ok()
}

/// Parses the date-time forms vendors and Kusto use: RFC 3339, a space for the `T`, no zone (read as UTC, as
/// vendors that omit it mean), no seconds (`2026-01-01T10:35`), or a date alone.
pub fn parse_datetime(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    // Everything below is ASCII by grammar: anything else cannot be a date-time, and refusing it here keeps
    // the byte offsets below on character boundaries.
    if !s.is_ascii() || s.len() < 10 {
        return None;
    }
    let mut fixed = s.replacen(' ', "T", 1);
    if fixed.len() == 10 {
        fixed.push_str("T00:00:00");
    }
    if let Some(clock) = fixed.get(11..) {
        if clock.len() == 5 && clock.as_bytes()[2] == b':' {
            fixed.push_str(":00");
        }
    }
    let tail = &fixed[fixed.len().saturating_sub(6)..];
    let has_zone = fixed.ends_with('Z') || fixed.ends_with('z') || tail.contains('+') || (tail.starts_with('-') && tail.contains(':'));
    if !has_zone {
        fixed.push('Z');
    }
    OffsetDateTime::parse(&fixed, &Rfc3339).ok()
}

/// [`parse_datetime`], in ticks.
pub fn parse_datetime_ticks(s: &str) -> Option<i64> {
    parse_datetime(s).map(ticks_of)
}

/// Azure's form: `2026-03-20T14:32:00Z`, `2026-03-20T14:32:00.5Z` (up to 7 fraction digits, trailing zeros
/// dropped), always UTC.
pub fn format_datetime(t: OffsetDateTime) -> String {
    format_ticks(ticks_of(t))
}

/// [`format_datetime`] of a tick count; empty for one outside the representable years.
pub fn format_ticks(ticks: i64) -> String {
    let Some(t) = from_ticks(ticks) else { return String::new() };
    let base = format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second());
    match ticks.rem_euclid(TICKS_PER_SEC) {
        0 => format!("{base}Z"),
        frac => format!("{base}.{}Z", format!("{frac:07}").trim_end_matches('0')),
    }
}

/// Parses a date-time and writes it back in Azure's form.
pub fn normalize_datetime(s: &str) -> Option<String> {
    parse_datetime(s).map(format_datetime)
}

/// ISO 8601 durations as Azure uses them (`PT12H`, `P1D`, `P1DT2H30M`, `P2W`, `PT0.5S`), in ticks.
pub fn parse_iso_duration(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_uppercase();
    let rest = s.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut total = 0f64;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
            } else {
                let (_, secs) = units.iter().find(|(u, _)| *u == c)?;
                total += num.parse::<f64>().ok()? * secs;
                num.clear();
                any = true;
            }
        }
        num.is_empty().then_some(())
    };
    take(date, &[('W', 604_800.0), ('D', 86_400.0)])?;
    if let Some(t) = time {
        if t.is_empty() {
            return None;
        }
        take(t, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    let ticks = total * TICKS_PER_SEC as f64;
    (any && ticks.is_finite() && ticks < i64::MAX as f64).then_some(ticks as i64)
}

/// The Query API's `timespan` (contract §2): a duration ending now, `start/end`, or `start/duration`, as a
/// `[start, end]` range in ticks.
pub fn parse_query_timespan(s: &str, now: i64) -> Option<(i64, i64)> {
    match s.split_once('/') {
        None => parse_iso_duration(s).map(|d| (now.saturating_sub(d), now)),
        Some((a, b)) => {
            let start = parse_datetime_ticks(a).or_else(|| parse_iso_duration(a).and_then(|d| parse_datetime_ticks(b).map(|e| e.saturating_sub(d))))?;
            let end = parse_datetime_ticks(b).or_else(|| parse_iso_duration(b).map(|d| start.saturating_add(d)))?;
            (start <= end).then_some((start, end))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_forms_parse_to_the_same_instant() {
        let t = parse_datetime_ticks("2026-03-20T14:32:00Z").unwrap();
        for s in ["2026-03-20 14:32:00Z", "2026-03-20T14:32:00", "2026-03-20T14:32", "2026-03-20T15:32:00+01:00"] {
            assert_eq!(parse_datetime_ticks(s), Some(t), "{s}");
        }
        assert_eq!(parse_datetime_ticks("2026-03-20"), parse_datetime_ticks("2026-03-20T00:00:00Z"));
        assert_eq!(format_ticks(t), "2026-03-20T14:32:00Z");
        assert_eq!(normalize_datetime("2026-03-20T14:32:00.1200000Z").as_deref(), Some("2026-03-20T14:32:00.12Z"));
    }

    #[test]
    fn any_utf8_is_an_answer_not_a_panic() {
        for s in ["€€a", "€€€€€€€€€€€€", "2026-03-20T14:3€", "2026-03-20 €€", "", "Z", "------+"] {
            assert_eq!(parse_datetime(s), None, "{s}");
        }
        assert_eq!(parse_iso_duration("P€"), None);
        assert_eq!(parse_query_timespan("€/€", 0), None);
    }

    #[test]
    fn durations_and_timespans() {
        assert_eq!(parse_iso_duration("PT1H"), Some(3600 * TICKS_PER_SEC));
        assert_eq!(parse_iso_duration("P1DT2H30M"), Some((86_400 + 9_000) * TICKS_PER_SEC));
        assert_eq!(parse_iso_duration("P2W"), Some(2 * 604_800 * TICKS_PER_SEC));
        assert_eq!(parse_iso_duration("PT"), None);
        assert_eq!(parse_iso_duration("P1Y"), None);
        assert_eq!(parse_iso_duration("12H"), None);
        assert_eq!(parse_iso_duration("PT5X"), None);
        let start = parse_datetime_ticks("2026-01-01T00:00:00Z").unwrap();
        assert_eq!(parse_query_timespan("2026-01-01T00:00:00Z/PT1H", 0), Some((start, start + 3600 * TICKS_PER_SEC)));
        let end = parse_datetime_ticks("2026-01-02T00:00:00Z").unwrap();
        assert_eq!(parse_query_timespan("P1D", end), Some((end - 86_400 * TICKS_PER_SEC, end)));
        assert_eq!(parse_query_timespan("2026-01-01T00:00:00Z/P1D", 0), Some((end - 86_400 * TICKS_PER_SEC, end)));
        assert_eq!(parse_query_timespan("2026-01-02T00:00:00Z/2026-01-01T00:00:00Z", 0), None);
    }
}
