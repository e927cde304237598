//! Column types and table schemas as the Logs Ingestion API declares them, and [`Row`]: a record already checked
//! against its stream's declaration. Azure silently drops columns a stream does not declare (and answers 204), so
//! nothing is sent that has not been checked here first.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;

use crate::model::time::{format_datetime, normalize_datetime};
use time::OffsetDateTime;

/// Types a DCR stream declaration accepts (contract §7: `string,int,long,real,boolean,dynamic,datetime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    String,
    Int,
    Long,
    Real,
    Boolean,
    Datetime,
    Dynamic,
}

impl ColumnType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Int => "int",
            Self::Long => "long",
            Self::Real => "real",
            Self::Boolean => "boolean",
            Self::Datetime => "datetime",
            Self::Dynamic => "dynamic",
        }
    }

    /// The spelling the workspace table API uses (`dateTime`), which differs from the stream's (`datetime`).
    pub fn table_api_name(self) -> &'static str {
        match self {
            Self::Datetime => "dateTime",
            other => other.as_str(),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "string" => Self::String,
            "int" => Self::Int,
            "long" => Self::Long,
            "real" => Self::Real,
            "boolean" | "bool" => Self::Boolean,
            "datetime" => Self::Datetime,
            "dynamic" => Self::Dynamic,
            _ => return None,
        })
    }

    /// Whether `v` is a value Azure will store faithfully in a column of this type. Null is always accepted.
    pub fn accepts(self, v: &Value) -> bool {
        match (self, v) {
            (_, Value::Null) | (Self::Dynamic, _) => true,
            (Self::String, Value::String(_)) => true,
            (Self::Int, Value::Number(n)) => n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
            (Self::Long, Value::Number(n)) => n.as_i64().is_some(),
            (Self::Real, Value::Number(_)) => true,
            (Self::Boolean, Value::Bool(_)) => true,
            (Self::Datetime, Value::String(s)) => OffsetDateTime::parse(s, &Rfc3339).is_ok(),
            _ => false,
        }
    }

    /// Converts a vendor's value into this column's wire form, accepting the lenient spellings vendors use
    /// (numbers as strings, epoch timestamps). Returns a description of the expected type on failure.
    pub fn coerce(self, v: Value) -> Result<Value, &'static str> {
        let out = match (self, v) {
            (_, Value::Null) => Value::Null,
            (Self::Dynamic, v) => v,
            (Self::String, Value::String(s)) => Value::String(s),
            (Self::String, Value::Number(n)) => Value::String(n.to_string()),
            (Self::String, Value::Bool(b)) => Value::String(b.to_string()),
            (Self::Int | Self::Long, Value::String(s)) => match s.trim().parse::<i64>() {
                Ok(i) => Value::from(i),
                Err(_) => return Err(self.expected()),
            },
            (Self::Real, Value::String(s)) => match s.trim().parse::<f64>() {
                Ok(f) if f.is_finite() => Value::from(f),
                _ => return Err(self.expected()),
            },
            (Self::Boolean, Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err(self.expected()),
            },
            (Self::Datetime, Value::String(s)) => Value::String(normalize_datetime(&s).ok_or(self.expected())?),
            (Self::Datetime, Value::Number(n)) => {
                let secs = n.as_f64().ok_or(self.expected())?;
                // Vendors send epoch seconds or milliseconds; anything past year 5138 in seconds is milliseconds.
                let secs = if secs.abs() > 1e11 { secs / 1000.0 } else { secs };
                let nanos = (secs * 1e9) as i128;
                let t = OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| self.expected())?;
                Value::String(format_datetime(t))
            }
            (_, v) => v,
        };
        if self.accepts(&out) {
            Ok(out)
        } else {
            Err(self.expected())
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Self::String => "a string",
            Self::Int => "a 32-bit integer",
            Self::Long => "an integer",
            Self::Real => "a number",
            Self::Boolean => "true or false",
            Self::Datetime => "an RFC 3339 date-time or epoch seconds",
            Self::Dynamic => "any JSON value",
        }
    }
}

impl ColumnType {
    /// The type a query sees a column of this type as.
    pub fn ktype(self) -> crate::model::value::KType {
        use crate::model::value::KType;
        match self {
            ColumnType::String => KType::String,
            ColumnType::Int => KType::Int,
            ColumnType::Long => KType::Long,
            ColumnType::Real => KType::Real,
            ColumnType::Boolean => KType::Bool,
            ColumnType::Datetime => KType::DateTime,
            ColumnType::Dynamic => KType::Dynamic,
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Column names Azure reserves on every table (contract §7).
pub const RESERVED_COLUMNS: &[&str] = &["_ResourceId", "id", "_SubscriptionId", "TenantId", "Type", "UniqueId", "Title"];

/// What is wrong with a column name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ColumnNameError {
    #[error("column name '{0}' must start with a letter and be at most 45 letters, digits or '_'")]
    Malformed(String),
    #[error("column name '{0}' is reserved by Azure Monitor")]
    Reserved(String),
}

/// Checks a column name against Azure's rules.
pub fn check_column_name(name: &str) -> Result<(), ColumnNameError> {
    let first_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if !first_ok || name.len() > 45 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(ColumnNameError::Malformed(name.to_string()));
    }
    if RESERVED_COLUMNS.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(ColumnNameError::Reserved(name.to_string()));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ColumnType,
}

/// A custom table and the DCR stream that feeds it (`Custom-<Table>`), with the columns both declare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    pub name: String,
    pub columns: Vec<Column>,
}

impl TableSchema {
    pub fn stream_name(&self) -> String {
        format!("Custom-{}", self.name)
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Why a record does not fit its stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    #[error("column '{column}' is not declared by stream {stream}")]
    UnknownColumn { stream: String, column: String },
    #[error("column '{column}' of stream {stream} must be {expected}")]
    WrongType { stream: String, column: String, expected: ColumnType },
    #[error("stream {stream} requires TimeGenerated")]
    MissingTime { stream: String },
}

/// One record for one stream, checked against the stream's declaration and serialised once, so packing can
/// count its exact size and the batcher never re-encodes it.
#[derive(Clone, PartialEq, Eq)]
pub struct Row {
    json: Arc<str>,
    /// Its TimeGenerated, in ticks, to tell when Azure would replace it (see [`outside_time_window`]).
    time: Option<i64>,
}

/// Azure keeps a TimeGenerated from two days before it receives the row to one day after, and replaces it
/// with the time received otherwise (azure-monitor `logs/log-standard-columns.md`, "TimeGenerated").
pub fn outside_time_window(time: i64, now: i64) -> bool {
    use crate::model::time::TICKS_PER_SEC;
    time < now - 2 * 86_400 * TICKS_PER_SEC || time > now + 86_400 * TICKS_PER_SEC
}

impl Row {
    pub fn new(schema: &TableSchema, fields: &Map<String, Value>) -> Result<Row, RowError> {
        for (name, value) in fields {
            let col = schema.column(name).ok_or_else(|| RowError::UnknownColumn { stream: schema.stream_name(), column: name.clone() })?;
            if !col.kind.accepts(value) {
                return Err(RowError::WrongType { stream: schema.stream_name(), column: name.clone(), expected: col.kind });
            }
        }
        let Some(time) = fields.get("TimeGenerated").filter(|v| !v.is_null()) else {
            return Err(RowError::MissingTime { stream: schema.stream_name() });
        };
        let time = time.as_str().and_then(crate::model::time::parse_datetime_ticks);
        let json = serde_json::to_string(fields).expect("a JSON map always serialises");
        Ok(Row { json: json.into(), time })
    }

    /// A row from JSON text that was checked when it was first built (a spilled row coming back).
    pub fn from_checked_json(json: String) -> Row {
        #[derive(serde::Deserialize)]
        struct Time {
            #[serde(rename = "TimeGenerated")]
            time: Option<String>,
        }
        let time = serde_json::from_str::<Time>(&json).ok().and_then(|t| t.time).and_then(|t| crate::model::time::parse_datetime_ticks(&t));
        Row { json: json.into(), time }
    }

    /// Its TimeGenerated, when it has a readable one.
    pub fn time(&self) -> Option<i64> {
        self.time
    }

    /// The record's JSON text exactly as it will be sent.
    pub fn as_json(&self) -> &str {
        &self.json
    }

    pub fn len(&self) -> usize {
        self.json.len()
    }

    pub fn is_empty(&self) -> bool {
        self.json.is_empty()
    }
}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Rows carry vendor payloads: show only their size in debug output and logs.
        write!(f, "Row({} bytes)", self.json.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> TableSchema {
        TableSchema {
            name: "T_CL".into(),
            columns: vec![
                Column { name: "TimeGenerated".into(), kind: ColumnType::Datetime },
                Column { name: "Score".into(), kind: ColumnType::Real },
                Column { name: "Count".into(), kind: ColumnType::Int },
            ],
        }
    }

    #[test]
    fn rows_are_checked_against_the_declaration() {
        let s = schema();
        let ok = json!({"TimeGenerated": "2026-03-20T14:32:00Z", "Score": 0.5, "Count": 3});
        assert!(Row::new(&s, ok.as_object().unwrap()).is_ok());
        let unknown = json!({"TimeGenerated": "2026-03-20T14:32:00Z", "Extra": 1});
        assert!(matches!(Row::new(&s, unknown.as_object().unwrap()), Err(RowError::UnknownColumn { .. })));
        let wrong = json!({"TimeGenerated": "2026-03-20T14:32:00Z", "Count": 1.5});
        assert!(matches!(Row::new(&s, wrong.as_object().unwrap()), Err(RowError::WrongType { .. })));
        let big = json!({"TimeGenerated": "2026-03-20T14:32:00Z", "Count": 1i64 << 40});
        assert!(Row::new(&s, big.as_object().unwrap()).is_err());
        let no_time = json!({"Score": 1});
        assert!(matches!(Row::new(&s, no_time.as_object().unwrap()), Err(RowError::MissingTime { .. })));
    }

    #[test]
    fn coercion_accepts_vendor_spellings() {
        assert_eq!(ColumnType::Real.coerce(json!("0.95")), Ok(json!(0.95)));
        assert_eq!(ColumnType::Boolean.coerce(json!("TRUE")), Ok(json!(true)));
        assert_eq!(ColumnType::Datetime.coerce(json!(1_774_017_120)), Ok(json!("2026-03-20T14:32:00Z")));
        assert_eq!(ColumnType::Datetime.coerce(json!(1_774_017_120_000u64)), Ok(json!("2026-03-20T14:32:00Z")));
        assert_eq!(ColumnType::Datetime.coerce(json!("2026-03-20 14:32:00")), Ok(json!("2026-03-20T14:32:00Z")));
        assert_eq!(ColumnType::Datetime.coerce(json!("2026-03-20T16:32:00+02:00")), Ok(json!("2026-03-20T14:32:00Z")));
        assert!(ColumnType::Real.coerce(json!({"a": 1})).is_err());
        assert!(ColumnType::Datetime.coerce(json!("yesterday")).is_err());
        assert!(ColumnType::String.coerce(json!([1])).is_err());
        assert!(ColumnType::Real.coerce(json!("NaN")).is_err());
    }

    #[test]
    fn column_names_follow_azure_rules() {
        assert!(check_column_name("RiskScore").is_ok());
        assert!(check_column_name("TenantId").is_err());
        assert!(check_column_name("1abc").is_err());
        assert!(check_column_name("a-b").is_err());
        assert!(check_column_name(&"a".repeat(46)).is_err());
    }
}
