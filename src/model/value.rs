//! KQL's scalar types and values, with Kusto's null semantics: comparisons and arithmetic with a null give
//! null, and `where` keeps a row only when its predicate is `true`.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use serde_json::Value as Json;

/// 100-nanosecond ticks, Kusto's resolution for datetime and timespan.
pub use super::time::TICKS_PER_SEC;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KType {
    Bool,
    Int,
    Long,
    Real,
    String,
    DateTime,
    TimeSpan,
    Dynamic,
    Guid,
}

impl KType {
    /// The name the Query API reports in `columns[].type`.
    pub fn name(self) -> &'static str {
        match self {
            KType::Bool => "bool",
            KType::Int => "int",
            KType::Long => "long",
            KType::Real => "real",
            KType::String => "string",
            KType::DateTime => "datetime",
            KType::TimeSpan => "timespan",
            KType::Dynamic => "dynamic",
            KType::Guid => "guid",
        }
    }

    /// The name a DCR's stream declaration uses (`boolean` where the Query API says `bool`).
    pub fn dcr_name(self) -> &'static str {
        match self {
            KType::Bool => "boolean",
            other => other.name(),
        }
    }

    pub fn parse(s: &str) -> Option<KType> {
        Some(match s.to_ascii_lowercase().as_str() {
            "bool" | "boolean" => KType::Bool,
            "int" => KType::Int,
            "long" => KType::Long,
            "real" | "double" => KType::Real,
            "string" => KType::String,
            "datetime" | "date" => KType::DateTime,
            "timespan" | "time" => KType::TimeSpan,
            "dynamic" => KType::Dynamic,
            "guid" | "uniqueid" => KType::Guid,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Bool(bool),
    Long(i64),
    Real(f64),
    String(Arc<str>),
    DateTime(i64),
    TimeSpan(i64),
    Dynamic(Arc<Json>),
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::String(Arc::from(s))
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The type a value has when it appears in a computed column.
    pub fn ktype(&self) -> Option<KType> {
        Some(match self {
            Value::Null => return None,
            Value::Bool(_) => KType::Bool,
            Value::Long(_) => KType::Long,
            Value::Real(_) => KType::Real,
            Value::String(_) => KType::String,
            Value::DateTime(_) => KType::DateTime,
            Value::TimeSpan(_) => KType::TimeSpan,
            Value::Dynamic(_) => KType::Dynamic,
        })
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::Dynamic(d) => d.as_bool(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Long(i) => Some(*i as f64),
            Value::Real(f) => Some(*f),
            Value::Dynamic(d) => d.as_f64(),
            _ => None,
        }
    }

    /// The text `tostring()` gives.
    pub fn to_text(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Long(i) => i.to_string(),
            Value::Real(f) => format_real(*f),
            Value::String(s) => s.to_string(),
            Value::DateTime(t) => crate::model::time::format_ticks(*t),
            Value::TimeSpan(t) => format_timespan(*t),
            Value::Dynamic(d) => match &**d {
                Json::String(s) => s.clone(),
                Json::Null => String::new(),
                other => other.to_string(),
            },
        }
    }

    /// The JSON a Query API response carries for this value in a column of type `t`.
    pub fn to_wire(&self, t: KType) -> Json {
        match (self, t) {
            (Value::Null, _) => Json::Null,
            (Value::Bool(b), _) => Json::Bool(*b),
            (Value::Long(i), _) => Json::from(*i),
            (Value::Real(f), _) => serde_json::Number::from_f64(*f).map(Json::Number).unwrap_or(Json::String(format_real(*f))),
            // Log Analytics returns dynamic cells as JSON text.
            (Value::Dynamic(d), _) => Json::String(d.to_string()),
            (v, _) => Json::String(v.to_text()),
        }
    }

    /// Converts a stored JSON value into a value of column type `t`; `None` when it does not convert.
    pub fn from_json(v: &Json, t: KType) -> Option<Value> {
        Some(match (t, v) {
            (_, Json::Null) => Value::Null,
            (KType::Dynamic, v) => Value::Dynamic(Arc::new(v.clone())),
            (KType::Bool, Json::Bool(b)) => Value::Bool(*b),
            (KType::Bool, Json::String(s)) => Value::Bool(parse_bool(s)?),
            (KType::Int | KType::Long, Json::Number(n)) => Value::Long(n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))?),
            (KType::Int | KType::Long, Json::String(s)) => Value::Long(s.trim().parse().ok()?),
            (KType::Real, Json::Number(n)) => Value::Real(n.as_f64()?),
            (KType::Real, Json::String(s)) => Value::Real(s.trim().parse().ok()?),
            (KType::String | KType::Guid, Json::String(s)) => Value::String(Arc::from(s.as_str())),
            (KType::String, other) => Value::String(Arc::from(other.to_string().as_str())),
            (KType::DateTime, Json::String(s)) => Value::DateTime(crate::model::time::parse_datetime_ticks(s)?),
            (KType::TimeSpan, Json::String(s)) => Value::TimeSpan(parse_timespan_text(s)?),
            (KType::TimeSpan, Json::Number(n)) => Value::TimeSpan((n.as_f64()? * TICKS_PER_SEC as f64) as i64),
            _ => return None,
        })
    }

    /// The value as dynamic JSON (for make_list, pack, dynamic columns).
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Long(i) => Json::from(*i),
            Value::Real(f) => serde_json::Number::from_f64(*f).map(Json::Number).unwrap_or(Json::Null),
            Value::String(s) => Json::String(s.to_string()),
            Value::DateTime(_) | Value::TimeSpan(_) => Json::String(self.to_text()),
            Value::Dynamic(d) => (**d).clone(),
        }
    }

    /// A dynamic value's scalar seen as a KQL value, for comparisons and arithmetic.
    pub fn from_dynamic(d: &Json) -> Value {
        match d {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => n.as_i64().map(Value::Long).unwrap_or_else(|| Value::Real(n.as_f64().unwrap_or(f64::NAN))),
            Json::String(s) => Value::String(Arc::from(s.as_str())),
            other => Value::Dynamic(Arc::new(other.clone())),
        }
    }

    /// Equality as `==` sees it; `None` when either side is null.
    pub fn kql_eq(&self, other: &Value) -> Option<bool> {
        self.kql_cmp(other).map(|o| o == Ordering::Equal)
    }

    /// Ordering as `<` sees it: numbers with numbers, strings with strings, datetimes with datetimes;
    /// `None` for null or values that do not compare.
    pub fn kql_cmp(&self, other: &Value) -> Option<Ordering> {
        use Value::*;
        match (self, other) {
            (Null, _) | (_, Null) => None,
            (Long(a), Long(b)) => Some(a.cmp(b)),
            (Long(_) | Real(_), Long(_) | Real(_)) => self.as_f64()?.partial_cmp(&other.as_f64()?),
            (String(a), String(b)) => Some(a.as_ref().cmp(b.as_ref())),
            (Bool(a), Bool(b)) => Some(a.cmp(b)),
            (DateTime(a), DateTime(b)) | (TimeSpan(a), TimeSpan(b)) => Some(a.cmp(b)),
            (DateTime(a), String(s)) => crate::model::time::parse_datetime_ticks(s).map(|b| a.cmp(&b)),
            (String(s), DateTime(b)) => crate::model::time::parse_datetime_ticks(s).map(|a| a.cmp(b)),
            (Dynamic(d), o) => Value::from_dynamic(d).scalar_cmp(o),
            (s, Dynamic(d)) => s.scalar_cmp(&Value::from_dynamic(d)),
            (String(s), Long(_) | Real(_)) => Value::Real(s.parse().ok()?).kql_cmp(other),
            (Long(_) | Real(_), String(s)) => self.kql_cmp(&Value::Real(s.parse().ok()?)),
            _ => None,
        }
    }

    fn scalar_cmp(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Dynamic(a), Value::Dynamic(b)) => (a == b).then_some(Ordering::Equal),
            _ => self.kql_cmp(other),
        }
    }

    /// A total order for `order by`, `distinct` and grouping: nulls first, then by type, then by value.
    pub fn sort_cmp(&self, other: &Value) -> Ordering {
        fn rank(v: &Value) -> u8 {
            match v {
                Value::Null => 0,
                Value::Bool(_) => 1,
                Value::Long(_) | Value::Real(_) => 2,
                Value::DateTime(_) => 3,
                Value::TimeSpan(_) => 4,
                Value::String(_) => 5,
                Value::Dynamic(_) => 6,
            }
        }
        match rank(self).cmp(&rank(other)) {
            Ordering::Equal => match (self, other) {
                (Value::Dynamic(a), Value::Dynamic(b)) => a.to_string().cmp(&b.to_string()),
                (Value::Real(a), Value::Real(b)) => a.total_cmp(b),
                _ => self.kql_cmp(other).unwrap_or(Ordering::Equal),
            },
            o => o,
        }
    }
}

/// A hashable key for grouping and distinct.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Null,
    Bool(bool),
    Long(i64),
    Real(u64),
    Str(Arc<str>),
    Time(i64),
    Span(i64),
    Dyn(String),
}

impl From<&Value> for Key {
    fn from(v: &Value) -> Key {
        match v {
            Value::Null => Key::Null,
            Value::Bool(b) => Key::Bool(*b),
            Value::Long(i) => Key::Long(*i),
            Value::Real(f) if f.fract() == 0.0 && f.abs() < 9e15 => Key::Long(*f as i64),
            Value::Real(f) => Key::Real(f.to_bits()),
            Value::String(s) => Key::Str(s.clone()),
            Value::DateTime(t) => Key::Time(*t),
            Value::TimeSpan(t) => Key::Span(*t),
            Value::Dynamic(d) => Key::Dyn(d.to_string()),
        }
    }
}

pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// Kusto's timespan text: `[-][d.]hh:mm:ss[.fffffff]`.
pub fn format_timespan(ticks: i64) -> String {
    let neg = ticks < 0;
    let t = ticks.unsigned_abs();
    let secs = t / TICKS_PER_SEC as u64;
    let frac = t % TICKS_PER_SEC as u64;
    let (d, h, m, s) = (secs / 86_400, (secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if d > 0 {
        out.push_str(&format!("{d}."));
    }
    out.push_str(&format!("{h:02}:{m:02}:{s:02}"));
    if frac > 0 {
        out.push_str(&format!(".{frac:07}"));
    }
    out
}

/// `1.02:03:04.5`, `02:03:04`, or a literal like `5m`.
pub fn parse_timespan_text(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Some(t) = parse_timespan_literal(s) {
        return Some(t);
    }
    let (neg, s) = s.strip_prefix('-').map(|r| (true, r)).unwrap_or((false, s));
    let (days, rest) = match s.split_once('.') {
        Some((d, r)) if r.contains(':') && !d.contains(':') => (d.parse::<i64>().ok()?, r),
        _ => (0, s),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    if parts.len() != 3 {
        return None;
    }
    let h: i64 = parts[0].parse().ok()?;
    let m: i64 = parts[1].parse().ok()?;
    let sec: f64 = parts[2].parse().ok()?;
    let ticks = ((days * 86_400 + h * 3600 + m * 60) as f64 + sec) * TICKS_PER_SEC as f64;
    Some(if neg { -(ticks as i64) } else { ticks as i64 })
}

/// `1d`, `2h`, `30m`, `10s`, `100ms`, `5microsecond`, `1.5h`, `7tick`.
pub fn parse_timespan_literal(s: &str) -> Option<i64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let per: f64 = match unit {
        "d" | "day" | "days" => 86_400.0 * TICKS_PER_SEC as f64,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0 * TICKS_PER_SEC as f64,
        "m" | "min" | "minute" | "minutes" => 60.0 * TICKS_PER_SEC as f64,
        "s" | "sec" | "second" | "seconds" => TICKS_PER_SEC as f64,
        "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 10_000.0,
        "microsecond" | "microseconds" => 10.0,
        "tick" | "ticks" => 1.0,
        _ => return None,
    };
    Some((n * per).round() as i64)
}

pub fn format_real(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    } else {
        f.to_string()
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_round_trip() {
        for s in ["2026-03-20T14:32:00Z", "2026-03-20T14:32:00.1234567Z", "1999-01-01T00:00:00.5Z"] {
            assert_eq!(crate::model::time::format_ticks(crate::model::time::parse_datetime_ticks(s).unwrap()), s);
        }
        assert_eq!(crate::model::time::parse_datetime_ticks("2026-03-20 14:32"), crate::model::time::parse_datetime_ticks("2026-03-20T14:32:00Z"));
        assert_eq!(crate::model::time::parse_datetime_ticks("2026-03-20 14"), None);
        assert_eq!(crate::model::time::parse_datetime_ticks("2026-03-20 14:32:00"), crate::model::time::parse_datetime_ticks("2026-03-20T14:32:00Z"));
        assert_eq!(crate::model::time::parse_datetime_ticks("2026-03-20"), crate::model::time::parse_datetime_ticks("2026-03-20T00:00:00Z"));
        assert_eq!(crate::model::time::parse_datetime_ticks("2026-03-20T16:32:00+02:00"), crate::model::time::parse_datetime_ticks("2026-03-20T14:32:00Z"));
    }

    #[test]
    fn timespans() {
        assert_eq!(parse_timespan_literal("1h"), Some(3600 * TICKS_PER_SEC));
        assert_eq!(parse_timespan_literal("1.5d"), Some(129_600 * TICKS_PER_SEC));
        assert_eq!(parse_timespan_literal("100ms"), Some(1_000_000));
        assert_eq!(format_timespan(90_061 * TICKS_PER_SEC + 5_000_000), "1.01:01:01.5000000");
        assert_eq!(parse_timespan_text("1.01:01:01.5"), Some(90_061 * TICKS_PER_SEC + 5_000_000));
        assert_eq!(parse_timespan_text("00:05:00"), Some(300 * TICKS_PER_SEC));
    }
}
