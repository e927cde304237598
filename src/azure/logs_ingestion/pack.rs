//! Packing rows into Logs Ingestion calls: each call's JSON array, as sent, stays within the byte limit
//! (Azure counts 1 MiB "both compressed and uncompressed", so the uncompressed array is what we bound).

use std::ops::Range;

use crate::model::schema::Row;

/// The Logs Ingestion API's per-call limit (contract §1).
pub const MAX_CALL_BYTES: usize = 1_048_576;

/// Size of `[` + rows joined by `,` + `]`.
pub fn array_len(rows: &[Row]) -> usize {
    2 + rows.iter().map(Row::len).sum::<usize>() + rows.len().saturating_sub(1)
}

/// The JSON array text of some rows.
pub fn encode_array(rows: &[Row]) -> Vec<u8> {
    let mut out = Vec::with_capacity(array_len(rows));
    out.push(b'[');
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(r.as_json().as_bytes());
    }
    out.push(b']');
    out
}

/// A row that cannot be sent even alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oversized {
    pub index: usize,
    pub bytes: usize,
}

/// Splits rows, in order, into contiguous calls that each fit `limit`; greedy, so each call is as full as the
/// next row allows. Rows that cannot fit even alone are reported and left out of every call.
pub fn pack(rows: &[Row], limit: usize) -> (Vec<Range<usize>>, Vec<Oversized>) {
    let mut calls = Vec::new();
    let mut oversized = Vec::new();
    let mut start = None::<usize>;
    let mut size = 2usize; // the brackets
    for (i, r) in rows.iter().enumerate() {
        if r.len() + 2 > limit {
            if let Some(s) = start.take() {
                calls.push(s..i);
            }
            size = 2;
            oversized.push(Oversized { index: i, bytes: r.len() + 2 });
            continue;
        }
        match start {
            None => {
                start = Some(i);
                size = 2 + r.len();
            }
            Some(s) => {
                if size + 1 + r.len() > limit {
                    calls.push(s..i);
                    start = Some(i);
                    size = 2 + r.len();
                } else {
                    size += 1 + r.len();
                }
            }
        }
    }
    if let Some(s) = start {
        calls.push(s..rows.len());
    }
    (calls, oversized)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::schema::{Column, ColumnType, TableSchema};
    use proptest::prelude::*;

    fn row(i: usize, pad: usize) -> Row {
        let schema = TableSchema {
            name: "T_CL".into(),
            columns: vec![
                Column { name: "TimeGenerated".into(), kind: ColumnType::Datetime },
                Column { name: "N".into(), kind: ColumnType::Long },
                Column { name: "P".into(), kind: ColumnType::String },
            ],
        };
        let v = serde_json::json!({"TimeGenerated": "2026-01-01T00:00:00Z", "N": i, "P": "x".repeat(pad)});
        Row::new(&schema, v.as_object().unwrap()).unwrap()
    }

    proptest! {
        #[test]
        fn every_row_lands_once_in_order_and_no_call_exceeds_the_limit(
            pads in prop::collection::vec(0usize..600, 0..200),
            limit in 64usize..4000,
        ) {
            let rows: Vec<Row> = pads.iter().enumerate().map(|(i, p)| row(i, *p)).collect();
            let (calls, oversized) = pack(&rows, limit);
            let mut seen = Vec::new();
            for c in &calls {
                prop_assert!(!c.is_empty());
                let body = encode_array(&rows[c.clone()]);
                prop_assert!(body.len() <= limit, "call of {} bytes over {}", body.len(), limit);
                prop_assert_eq!(body.len(), array_len(&rows[c.clone()]));
                let parsed: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
                prop_assert_eq!(parsed.len(), c.len());
                seen.extend(c.clone());
            }
            for o in &oversized {
                prop_assert!(rows[o.index].len() + 2 > limit);
            }
            seen.extend(oversized.iter().map(|o| o.index));
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..rows.len()).collect::<Vec<_>>());
            // Greedy: the first row of the next call would not have fit in the previous one.
            for w in calls.windows(2) {
                if w[0].end == w[1].start {
                    prop_assert!(array_len(&rows[w[0].start..=w[1].start]) > limit);
                }
            }
        }
    }
}
