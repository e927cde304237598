//! Applying a source mapping to a webhook body: events in, checked table rows out.

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::{JsonPath, SourceMapping, TableMapping, TimeSource, Unmapped, ValueSource, ADDITIONAL_DATA, EVENT_TIME, TIME_GENERATED};
use crate::model::schema::{ColumnType, Row};
use crate::model::time::format_datetime;

/// What the request brings besides its body.
#[derive(Debug, Clone, Copy)]
pub struct MappingContext {
    pub received: OffsetDateTime,
}

/// The rows a body maps to, each with the index of its table in the source's `tables`, and the events that go
/// to Sekoia as they came.
#[derive(Debug, Default)]
pub struct MappedBatch {
    pub rows: Vec<(usize, Row)>,
    /// The position in the body of each row's event, parallel to `rows`.
    pub row_events: Vec<usize>,
    pub sekoia: Vec<SekoiaEvent>,
    pub events: usize,
    /// Events no destination takes (filtered out by event type).
    pub ignored: usize,
}

/// A vendor event for Sekoia: its JSON text (tagged with the source) and its time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SekoiaEvent {
    pub json: String,
    pub timestamp: String,
}

/// Why an event cannot be mapped; names the event's position and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{field}: {message}", event.map(|i| format!("event {i}: ")).unwrap_or_default())]
pub struct MapError {
    pub event: Option<usize>,
    pub field: String,
    pub message: String,
}

impl SourceMapping {
    /// Maps a webhook body (one event object or an array of them).
    pub fn map_body(&self, body: &Value, ctx: &MappingContext) -> Result<MappedBatch, MapError> {
        let events: Vec<&Value> = match body {
            Value::Object(_) => vec![body],
            Value::Array(items) => items.iter().collect(),
            _ => return Err(MapError { event: None, field: "body".into(), message: "must be a JSON object or an array of objects".into() }),
        };
        let mut out = MappedBatch { events: events.len(), ..Default::default() };
        for (i, ev) in events.into_iter().enumerate() {
            let index = (matches!(body, Value::Array(_))).then_some(i);
            if !ev.is_object() {
                return Err(MapError { event: index, field: "event".into(), message: "is not a JSON object".into() });
            }
            let event_type = self.event_type(ev).map_err(|m| MapError { event: index, ..m })?;
            let mut taken = false;
            if self.routes_to(super::Destination::Sentinel) {
                for (t, table) in self.tables.iter().enumerate() {
                    if table.takes(event_type.as_deref()) {
                        taken = true;
                        let row = self.map_event(table, ev, ctx).map_err(|m| MapError { event: index, ..m })?;
                        out.rows.push((t, row));
                        out.row_events.push(i);
                    }
                }
            }
            if self.sekoia_takes(event_type.as_deref()) {
                taken = true;
                out.sekoia.push(self.sekoia_event(ev, ctx));
            }
            if !taken {
                out.ignored += 1;
            }
        }
        Ok(out)
    }

    /// The original event, tagged `"source": "<name>"` when it has no `source` of its own (so Sekoia can find it
    /// as `source="noxys"`), with the time of the first table's time field.
    fn sekoia_event(&self, ev: &Value, ctx: &MappingContext) -> SekoiaEvent {
        let mut tagged = ev.clone();
        if let Value::Object(m) = &mut tagged {
            m.entry("source").or_insert_with(|| Value::String(self.name.clone()));
        }
        let timestamp = self
            .tables
            .iter()
            .find_map(|t| match &t.time {
                TimeSource::Path(p) => p.get(ev).cloned(),
                TimeSource::Received => None,
            })
            .and_then(|v| ColumnType::Datetime.coerce(v).ok())
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_else(|| format_datetime(ctx.received));
        SekoiaEvent { json: tagged.to_string(), timestamp }
    }

    fn event_type(&self, ev: &Value) -> Result<Option<String>, MapError> {
        let Some((path, v)) = first_present(&self.event_type, ev) else { return Ok(None) };
        match v {
            Value::String(s) => Ok(Some(s.clone())),
            Value::Number(n) => Ok(Some(n.to_string())),
            _ => Err(MapError { event: None, field: path.to_string(), message: "the event type must be a string".into() }),
        }
    }

    fn map_event(&self, table: &TableMapping, ev: &Value, ctx: &MappingContext) -> Result<Row, MapError> {
        let mut row = Map::new();
        let time = match &table.time {
            TimeSource::Received => Value::String(format_datetime(ctx.received)),
            TimeSource::Path(p) => match p.get(ev) {
                None | Some(Value::Null) => Value::String(format_datetime(ctx.received)),
                Some(v) => ColumnType::Datetime.coerce(v.clone()).map_err(|e| MapError {
                    event: None,
                    field: p.to_string(),
                    message: format!("must be {e} (it sets EventTime)"),
                })?,
            },
        };
        // The vendor's time is EventTime; TimeGenerated is when the bridge hands the row to Azure (redelivery
        // restamps it), so a scheduled rule, which looks back over TimeGenerated, sees an event however late it
        // reached us: posted after the fact, backdated, or redelivered after an outage ("Handle ingestion delay
        // in scheduled analytics rules", Microsoft Sentinel).
        row.insert(EVENT_TIME.into(), time);
        row.insert(TIME_GENERATED.into(), Value::String(format_datetime(ctx.received)));
        for c in &table.columns {
            let value = match &c.source {
                ValueSource::Const(v) => v.clone(),
                ValueSource::SourceName => Value::String(self.name.clone()),
                ValueSource::EventHash => {
                    use sha2::Digest;
                    Value::String(hex::encode(&sha2::Sha256::digest(ev.to_string().as_bytes())[..16]))
                }
                ValueSource::Received => Value::String(format_datetime(ctx.received)),
                ValueSource::Path(paths) => match first_present(paths, ev) {
                    None => Value::Null,
                    Some((p, v)) => c.column.kind.coerce(v.clone()).map_err(|e| MapError {
                        event: None,
                        field: p.to_string(),
                        message: format!("must be {e} (column {})", c.column.name),
                    })?,
                },
            };
            if value.is_null() {
                if c.required {
                    let field = match &c.source {
                        ValueSource::Path(p) => p.iter().map(ToString::to_string).collect::<Vec<_>>().join(" or "),
                        _ => c.column.name.clone(),
                    };
                    return Err(MapError { event: None, field, message: format!("is required (column {})", c.column.name) });
                }
                continue; // absent columns are simply not sent; Azure stores null
            }
            row.insert(c.column.name.clone(), value);
        }
        let residual = unmapped_rest(table, ev);
        match (table.unmapped, residual) {
            (_, None) => {}
            (Unmapped::Keep, Some(rest)) => {
                row.insert(ADDITIONAL_DATA.into(), rest);
            }
            (Unmapped::Reject, Some(rest)) => {
                let mut fields = Vec::new();
                leaf_paths(&rest, &mut JsonPathBuf::default(), &mut fields);
                let shown: Vec<_> = fields.iter().take(5).cloned().collect();
                return Err(MapError {
                    event: None,
                    field: shown.join(", "),
                    message: format!("{} field(s) not named by the mapping of {}", fields.len(), table.schema.name),
                });
            }
        }
        Row::new(&table.schema, &row).map_err(|e| MapError { event: None, field: "row".into(), message: e.to_string() })
    }
}

fn first_present<'a, 'v>(paths: &'a [JsonPath], ev: &'v Value) -> Option<(&'a JsonPath, &'v Value)> {
    paths.iter().find_map(|p| p.get(ev).filter(|v| !v.is_null()).map(|v| (p, v)))
}

/// The event minus every field a column (or the time) reads; `None` when nothing is left.
fn unmapped_rest(table: &TableMapping, ev: &Value) -> Option<Value> {
    if !table.coverage.leaves_something(ev) {
        return None;
    }
    let mut rest = ev.clone();
    if let TimeSource::Path(p) = &table.time {
        p.remove(&mut rest);
    }
    for c in &table.columns {
        if let ValueSource::Path(paths) = &c.source {
            for p in paths {
                p.remove(&mut rest);
            }
        }
    }
    match &rest {
        Value::Null => None,
        Value::Object(m) if m.is_empty() => None,
        _ => Some(rest),
    }
}

#[derive(Default)]
struct JsonPathBuf(Vec<String>);

fn leaf_paths(v: &Value, at: &mut JsonPathBuf, out: &mut Vec<String>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                at.0.push(if at.0.is_empty() { k.clone() } else { format!(".{k}") });
                leaf_paths(child, at, out);
                at.0.pop();
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, child) in a.iter().enumerate().filter(|(_, c)| !c.is_null()) {
                at.0.push(format!("[{i}]"));
                leaf_paths(child, at, out);
                at.0.pop();
            }
        }
        _ => out.push(at.0.concat()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_mapping_file, Catalog};
    use super::*;
    use serde_json::json;

    fn ctx() -> MappingContext {
        MappingContext { received: time::macros::datetime!(2026-11-23 10:00:00 UTC) }
    }

    fn row_json(r: &Row) -> Value {
        serde_json::from_str(r.as_json()).unwrap()
    }

    #[test]
    fn maps_the_noxys_sample() {
        let c = Catalog::builtin();
        let body: Value = serde_json::from_str(include_str!("../../tests/fixtures/noxys-policy-violated.json")).unwrap();
        let out = c.get("noxys").unwrap().map_body(&body, &ctx()).unwrap();
        assert_eq!(out.rows.len(), 1);
        let row = row_json(&out.rows[0].1);
        // The vendor's time is EventTime; TimeGenerated is when the bridge took it (the context's receipt time).
        assert_eq!(row["EventTime"], "2026-03-20T14:32:00Z");
        assert_eq!(row["TimeGenerated"], "2026-11-23T10:00:00Z");
        assert_eq!(row["EventType"], "interaction.policy_violated");
        assert_eq!(row["RiskScore"], 0.95);
        assert_eq!(row["Classifications"][0]["type"], "EMAIL");
        assert_eq!(row["PolicyDecisions"][0]["action"], "block");
        assert_eq!(row["EventId"], "evt_abc123");
        assert!(row.get("AdditionalData").is_none(), "every sample field is mapped: {row}");
    }

    #[test]
    fn unmapped_fields_are_kept_or_refused() {
        let keep = parse_mapping_file(
            "t.toml",
            "[[source]]\nname = \"k\"\nauth = {}\n[[source.table]]\nname = \"K_CL\"\ntime = \"ts\"\ncolumns = [{ name = \"A\", type = \"long\", path = \"a.b\" }]\n",
        )
        .unwrap()
        .remove(0);
        let ev = json!({"ts": 1774017120, "a": {"b": "7", "c": [1, 2]}, "z": true});
        let out = keep.map_body(&ev, &ctx()).unwrap();
        let row = row_json(&out.rows[0].1);
        assert_eq!(row["A"], 7);
        assert_eq!(row["AdditionalData"], json!({"a": {"c": [1, 2]}, "z": true}));

        let reject = parse_mapping_file(
            "t.toml",
            "[[source]]\nname = \"r\"\nauth = {}\n[[source.table]]\nname = \"R_CL\"\ntime = \"ts\"\nunmapped = \"reject\"\ncolumns = [{ name = \"A\", type = \"long\", path = \"a.b\" }]\n",
        )
        .unwrap()
        .remove(0);
        let e = reject.map_body(&json!([{"ts": 1, "a": {"b": 1}}, ev]), &ctx()).unwrap_err();
        assert_eq!(e.event, Some(1));
        assert_eq!(e.field, "a.c[0], a.c[1], z");
    }

    #[test]
    fn mistyped_and_missing_fields_are_named() {
        let c = Catalog::builtin();
        let noxys = c.get("noxys").unwrap();
        let e = noxys
            .map_body(&json!({"event_type": "interaction.high_risk", "timestamp": "2026-03-20T14:32:00Z", "data": {"risk_score": "high"}}), &ctx())
            .unwrap_err();
        assert_eq!(e.field, "data.risk_score");
        assert!(e.message.contains("RiskScore"));
        let e = noxys.map_body(&json!({"event_type": "interaction.high_risk", "timestamp": "soon"}), &ctx()).unwrap_err();
        assert_eq!(e.field, "timestamp");
        let e = noxys.map_body(&json!([1]), &ctx()).unwrap_err();
        assert_eq!(e.event, Some(0));
        assert!(noxys.map_body(&json!("x"), &ctx()).is_err());
    }

    #[test]
    fn event_types_outside_the_filter_are_ignored() {
        let c = Catalog::builtin();
        let trapeye = c.get("trapeye").unwrap();
        let out = trapeye
            .map_body(
                &json!([{"event_type": "new_threat", "threat_uuid": "t1", "first_interaction": "2026-03-20T14:32:00Z"}, {"event_type": "heartbeat"}]),
                &ctx(),
            )
            .unwrap();
        assert_eq!((out.rows.len(), out.ignored, out.rows[0].0), (1, 1, 0));
    }
}
