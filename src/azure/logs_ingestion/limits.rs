//! What the Logs Ingestion API would refuse or damage in one record, known before anything is sent, so the
//! webhook can refuse it to the sender (who can still fix it) instead of Azure refusing it later, after the
//! sender heard 202.
//!
//! - **Field size**: "Maximum size for field values: 64 KB. Field values longer than 64 KB are truncated"
//!   (Azure Monitor service limits, Logs Ingestion API; contract §1). A truncated `dynamic` value is broken
//!   JSON, so we never send one: a value is measured as the JSON text we send (quotes and escapes included,
//!   which errs on the side of refusing).
//! - **Nesting**: Azure documents no depth limit; its ingestion front end is .NET, whose JSON readers
//!   (System.Text.Json, Newtonsoft.Json ≥ 13) refuse documents nested deeper than 64 by default. The call's
//!   array counts as one level, so a record may nest 63 levels. UNCONFIRMED against Azure; the stand-in
//!   refuses the same, so a deeper record never reaches it from our own writers.
//! - **Record size**: a record must fit in one call (1 MB, [`super::MAX_CALL_BYTES`]).

/// Azure's per-field limit, in bytes.
pub const MAX_FIELD_BYTES: usize = 64 * 1024;

/// Deepest nesting of a call's body, the array included.
pub const MAX_NESTING: usize = 64;

/// How a record breaks a limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordLimit {
    #[error("column '{column}' holds {bytes} bytes, over Azure's {MAX_FIELD_BYTES}-byte field limit (Azure would truncate it)")]
    FieldTooLarge { column: String, bytes: usize },
    #[error("the record nests {depth} levels deep; the Logs Ingestion API takes at most {} inside a call", MAX_NESTING - 1)]
    TooDeep { depth: usize },
    #[error("the record is {bytes} bytes, over the {limit}-byte limit of one Logs Ingestion call")]
    TooLarge { bytes: usize, limit: usize },
}

/// The shape of one record's JSON text: how deep it nests and its largest top-level field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordShape {
    /// Nesting depth: `{}` is 1, `{"a":[1]}` is 2.
    pub depth: usize,
    /// The largest top-level value's column and JSON byte length.
    pub largest_field: Option<(String, usize)>,
}

/// Measures a record's JSON text (an object, as [`crate::model::schema::Row`] holds it) in one pass, without
/// parsing it into values. Text that is not a JSON object gives a shape of what it saw; rows are always valid.
pub fn shape(json: &str) -> RecordShape {
    let b = json.as_bytes();
    let mut depth = 0usize;
    let mut out = RecordShape::default();
    let mut in_string = false;
    let mut escaped = false;
    // At depth 1: the key being read (its byte range), the key of the value being measured, and where it began.
    let mut key_start = None::<usize>;
    let mut last_key = (0usize, 0usize);
    let mut value_start = None::<usize>;
    let note = |key: (usize, usize), start: usize, end: usize, out: &mut RecordShape| {
        let len = end - start;
        if out.largest_field.as_ref().is_none_or(|(_, l)| len > *l) {
            out.largest_field = Some((json[key.0..key.1].to_string(), len));
        }
    };
    for (i, &c) in b.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
                if let Some(k) = key_start.take() {
                    last_key = (k, i);
                }
            }
            continue;
        }
        match c {
            b'"' => {
                in_string = true;
                if depth == 1 && value_start.is_none() {
                    key_start = Some(i + 1);
                }
            }
            b'{' | b'[' => {
                depth += 1;
                out.depth = out.depth.max(depth);
            }
            b'}' | b']' => {
                if depth == 1 {
                    if let Some(s) = value_start.take() {
                        note(last_key, s, i, &mut out);
                    }
                }
                depth = depth.saturating_sub(1);
            }
            b':' if depth == 1 => value_start = Some(i + 1),
            b',' if depth == 1 => {
                if let Some(s) = value_start.take() {
                    note(last_key, s, i, &mut out);
                }
            }
            _ => {}
        }
    }
    out
}

/// Checks one record against what Azure takes; `max_call_bytes` is the configured call limit.
pub fn check(json: &str, max_call_bytes: usize) -> Result<(), RecordLimit> {
    if json.len() + 2 > max_call_bytes {
        return Err(RecordLimit::TooLarge { bytes: json.len() + 2, limit: max_call_bytes });
    }
    let s = shape(json);
    // The call's array adds one level.
    if s.depth + 1 > MAX_NESTING {
        return Err(RecordLimit::TooDeep { depth: s.depth });
    }
    match s.largest_field {
        Some((column, bytes)) if bytes > MAX_FIELD_BYTES => Err(RecordLimit::FieldTooLarge { column, bytes }),
        _ => Ok(()),
    }
}

/// The nesting depth of a parsed JSON value: the fuzz target checks [`shape`]'s scan against it (the stand-in
/// counts depth itself).
pub fn depth(v: &serde_json::Value) -> usize {
    // Iterative: the value may come from outside.
    let mut deepest = 0;
    let mut stack = vec![(v, 1usize)];
    while let Some((v, d)) = stack.pop() {
        match v {
            serde_json::Value::Array(a) => {
                deepest = deepest.max(d);
                stack.extend(a.iter().map(|x| (x, d + 1)));
            }
            serde_json::Value::Object(o) => {
                deepest = deepest.max(d);
                stack.extend(o.values().map(|x| (x, d + 1)));
            }
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            // Quotes, backslashes, brackets and separators inside strings must not fool the scanner.
            "[a-z\"\\\\{}\\[\\],:é€ ]{0,12}".prop_map(Value::from),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(6, 48, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map("[a-z\"{},:]{1,6}", inner, 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn the_scanner_agrees_with_a_parser(fields in prop::collection::btree_map("[a-zA-Z_\"]{1,8}", value(), 0..6)) {
            let obj: serde_json::Map<String, Value> = fields.into_iter().collect();
            let text = serde_json::to_string(&obj).unwrap();
            let s = shape(&text);
            prop_assert_eq!(s.depth, depth(&Value::Object(obj.clone())));
            let largest = obj.values().map(|v| serde_json::to_string(v).unwrap().len()).max();
            prop_assert_eq!(s.largest_field.as_ref().map(|(_, n)| *n), largest);
            if let Some((k, n)) = &s.largest_field {
                let (_, v) = obj.iter().find(|(name, _)| serde_json::to_string(name).unwrap() == format!("\"{k}\"")).expect("the named column exists");
                prop_assert_eq!(serde_json::to_string(v).unwrap().len(), *n);
            }
        }
    }

    #[test]
    fn limits_are_named() {
        let mut deep = json!(1);
        for _ in 0..63 {
            deep = json!([deep]);
        }
        let ok = serde_json::to_string(&json!({"P": deep})).unwrap();
        assert_eq!(shape(&ok).depth, 64);
        assert_eq!(check(&ok, 1 << 20), Err(RecordLimit::TooDeep { depth: 64 }));
        let fits = serde_json::to_string(&json!({"P": [[1]]})).unwrap();
        assert_eq!(check(&fits, 1 << 20), Ok(()));
        let big = serde_json::to_string(&json!({"TimeGenerated": "2026-01-01T00:00:00Z", "Payload": "x".repeat(MAX_FIELD_BYTES)})).unwrap();
        assert_eq!(check(&big, 1 << 20), Err(RecordLimit::FieldTooLarge { column: "Payload".into(), bytes: MAX_FIELD_BYTES + 2 }));
        assert!(matches!(check(&big, 1024), Err(RecordLimit::TooLarge { limit: 1024, .. })));
    }
}
