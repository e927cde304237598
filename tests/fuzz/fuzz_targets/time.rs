//! Any text where a time is expected (vendor timestamps, KQL datetime literals, Query API timespans): an
//! answer or `None`, never a panic; what parses formats and parses back to the same instant.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentinel_bridge::model::time;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(ticks) = time::parse_datetime_ticks(text) {
        let written = time::format_ticks(ticks);
        // RFC 3339 writes years 0000 to 9999; an offset can carry an instant just outside them.
        let writable = time::from_ticks(ticks).is_some_and(|t| (1..=9999).contains(&t.year()));
        if writable {
            assert_eq!(time::parse_datetime_ticks(&written), Some(ticks), "{text:?} -> {written}");
        }
    }
    let _ = time::normalize_datetime(text);
    let _ = time::parse_iso_duration(text);
    let _ = time::parse_query_timespan(text, 0);
});
