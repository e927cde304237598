//! Any body, for every built-in source: mapping either yields rows that fit their stream or a clear error,
//! never a panic; the webhook's up-front limits measure every row as a parser would (depth and largest field).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use sentinel_bridge::azure::logs_ingestion::limits;
use sentinel_bridge::mapping::{Catalog, MappingContext};

static CATALOG: LazyLock<Catalog> = LazyLock::new(Catalog::builtin);

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let ctx = MappingContext { received: time::OffsetDateTime::UNIX_EPOCH };
    for source in CATALOG.sources() {
        if let Ok(batch) = source.map_body(&body, &ctx) {
            for (_, row) in batch.rows {
                // Every row is JSON an ingestion stream accepts.
                let parsed: serde_json::Value = serde_json::from_str(row.as_json()).expect("rows are JSON");
                let shape = limits::shape(row.as_json());
                assert_eq!(shape.depth, limits::depth(&parsed), "the scanner's depth differs from the parser's");
                // Measured on the row's own text: re-serialising a parsed float need not give back the same digits.
                let fields: std::collections::BTreeMap<String, Box<serde_json::value::RawValue>> =
                    serde_json::from_str(row.as_json()).expect("rows are objects");
                let largest = fields.values().map(|v| v.get().len()).max();
                assert_eq!(shape.largest_field.map(|(_, n)| n), largest);
                let _ = limits::check(row.as_json(), 1 << 20);
            }
        }
    }
});
