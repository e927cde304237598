//! The mapping file format as written by people (TOML), before validation. See the README's "Adding a source".

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingFileSpec {
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub auth: AuthSpec,
    /// Where each event's type is read (one path or several, first present wins).
    #[serde(default)]
    pub event_type: Option<OneOrMany>,
    #[serde(default, rename = "table")]
    pub tables: Vec<TableSpec>,
    /// Where events go: `sentinel` (default) and/or `sekoia`.
    #[serde(default)]
    pub destinations: Option<Vec<String>>,
    /// The Sekoia destination's own filter.
    #[serde(default)]
    pub sekoia: Option<SekoiaSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SekoiaSpec {
    /// Event types sent to Sekoia; absent or empty sends every event.
    #[serde(default)]
    pub event_types: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSpec {
    /// `bearer` (default), `header`, `hmac-sha256` or `standard-webhooks`.
    #[serde(default)]
    pub mode: Option<String>,
    /// The header that carries the secret (`header`) or the signature (`hmac-sha256`).
    #[serde(default)]
    pub header: Option<String>,
    /// `hex` (default) or `base64`, for `hmac-sha256`.
    #[serde(default)]
    pub encoding: Option<String>,
    /// A prefix before the signature, such as `sha256=`, for `hmac-sha256`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Seconds of clock skew tolerated for `standard-webhooks` (default 300).
    #[serde(default)]
    pub tolerance_secs: Option<u64>,
    /// Accept requests when no secret is configured. For local trials only.
    #[serde(default)]
    pub open: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    pub name: String,
    /// Event types this table takes; absent or empty takes every event.
    #[serde(default)]
    pub event_types: Vec<String>,
    /// `"received"` (the time we accepted the event) or a JSON path to the event's own time.
    pub time: String,
    /// What happens to fields no column names: `keep` (an `AdditionalData` dynamic column) or `reject`.
    #[serde(default)]
    pub unmapped: Option<String>,
    #[serde(default)]
    pub columns: Vec<ColumnSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub path: Option<OneOrMany>,
    #[serde(default)]
    pub value: Option<toml::Value>,
    /// `source` (the source's name) or `received` (the time we accepted the event).
    #[serde(default)]
    pub meta: Option<String>,
    #[serde(default)]
    pub required: bool,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

pub fn toml_to_json(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => Value::from(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect()),
    }
}
