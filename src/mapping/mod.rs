//! Source mappings: how a vendor's webhook events become rows of Sentinel custom tables.
//!
//! A mapping file (TOML) declares one or more sources: how each authenticates, which tables its events go to,
//! which event types each table takes, and each column's name, type and JSON path. The built-in sources
//! (`sources/*.toml`) are loaded through exactly the same code as a user's `WEBHOOK_SOURCES_FILE`.
//! Mappings are the single source of truth for every table schema the bridge writes.

mod apply;
pub mod auth;
pub mod path;
mod spec;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

pub use apply::{MapError, MappedBatch, MappingContext, SekoiaEvent};
pub use path::JsonPath;
use spec::{MappingFileSpec, SourceSpec, TableSpec};

use crate::model::schema::{check_column_name, Column, ColumnType, TableSchema};

/// The mapping files that ship with the bridge, compiled in so the binary is self-contained.
pub const BUILTIN_FILES: &[(&str, &str)] = &[
    ("sources/noxys.toml", include_str!("../../sources/noxys.toml")),
    ("sources/trapeye.toml", include_str!("../../sources/trapeye.toml")),
    ("sources/apono.toml", include_str!("../../sources/apono.toml")),
    ("sources/generic.toml", include_str!("../../sources/generic.toml")),
];

/// A mapping that cannot be used, naming the file, the source and the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mapping file {file}: source '{source_name}': {field}: {message}")]
pub struct MappingError {
    pub file: String,
    pub source_name: String,
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureEncoding {
    Hex,
    Base64,
}

/// How a source proves a request is its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMode {
    /// `Authorization: Bearer <secret>`.
    Bearer,
    /// The secret itself in a named header.
    Header { name: String },
    /// HMAC-SHA256 of the raw body with the secret, in a named header.
    HmacSha256 { header: String, encoding: SignatureEncoding, prefix: String },
    /// Standard Webhooks v1: `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    StandardWebhooks { tolerance_secs: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub mode: AuthMode,
    pub open: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ValueSource {
    /// First present of these paths.
    Path(Vec<JsonPath>),
    Const(Value),
    SourceName,
    Received,
    /// A stable id derived from the event's content (SHA-256 of its JSON text), for dedupe on redelivery when
    /// the vendor sends no id of its own.
    EventHash,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnMapping {
    pub column: Column,
    pub source: ValueSource,
    pub required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmapped {
    /// Keep what no column names in a dynamic `AdditionalData` column.
    Keep,
    /// Refuse an event that carries anything no column names.
    Reject,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TimeSource {
    Received,
    Path(JsonPath),
}

/// One table a source writes to.
#[derive(Debug, Clone, PartialEq)]
pub struct TableMapping {
    pub schema: Arc<TableSchema>,
    pub event_types: Option<HashSet<String>>,
    pub time: TimeSource,
    pub unmapped: Unmapped,
    pub columns: Vec<ColumnMapping>,
    /// Every path the columns and the time read, as a tree, to tell cheaply whether an event has more.
    pub coverage: Coverage,
}

/// A tree of the paths a table reads. Checking an event against it allocates nothing, so the common case
/// (every field mapped) costs no copy of the event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Coverage {
    terminal: bool,
    keys: std::collections::HashMap<String, Coverage>,
    indices: std::collections::HashMap<usize, Coverage>,
}

impl Coverage {
    fn add(&mut self, path: &JsonPath) {
        let mut node = self;
        for seg in path.segments() {
            node = match seg {
                path::Segment::Key(k) => node.keys.entry(k.clone()).or_default(),
                path::Segment::Index(i) => node.indices.entry(*i).or_default(),
            };
        }
        node.terminal = true;
    }

    /// Whether `v` holds a non-null value that no path reads.
    pub fn leaves_something(&self, v: &Value) -> bool {
        if self.terminal {
            return false;
        }
        match v {
            Value::Null => false,
            Value::Object(m) => m.iter().any(|(k, c)| match self.keys.get(k) {
                Some(n) => n.leaves_something(c),
                None => !c.is_null(),
            }),
            Value::Array(a) => a.iter().enumerate().any(|(i, c)| match self.indices.get(&i) {
                Some(n) => n.leaves_something(c),
                None => !c.is_null(),
            }),
            _ => true,
        }
    }
}

impl TableMapping {
    pub fn takes(&self, event_type: Option<&str>) -> bool {
        match (&self.event_types, event_type) {
            (None, _) => true,
            (Some(set), Some(t)) => set.contains(t),
            (Some(_), None) => false,
        }
    }
}

/// Where a source's events are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Destination {
    /// The Logs Ingestion path: rows of the mapping's tables.
    Sentinel,
    /// Sekoia XDR's intake: the vendor's original events.
    Sekoia,
}

impl Destination {
    pub fn parse(s: &str) -> Option<Destination> {
        match s.trim() {
            "sentinel" => Some(Destination::Sentinel),
            "sekoia" => Some(Destination::Sekoia),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Destination::Sentinel => "sentinel",
            Destination::Sekoia => "sekoia",
        }
    }
}

/// A vendor source: its authentication, the tables its events land in, and its destinations.
/// What is wrong with a destinations list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    #[error("'{0}' is not sentinel or sekoia")]
    Unknown(String),
    #[error("at least one destination is needed")]
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceMapping {
    pub name: String,
    pub description: String,
    pub file: String,
    pub auth: AuthConfig,
    pub event_type: Vec<JsonPath>,
    pub tables: Vec<TableMapping>,
    pub destinations: Vec<Destination>,
    /// Event types sent to Sekoia (`None`: all).
    pub sekoia_event_types: Option<HashSet<String>>,
}

impl SourceMapping {
    pub fn routes_to(&self, d: Destination) -> bool {
        self.destinations.contains(&d)
    }

    /// Whether an event of this type goes to Sekoia.
    pub fn sekoia_takes(&self, event_type: Option<&str>) -> bool {
        self.routes_to(Destination::Sekoia)
            && match (&self.sekoia_event_types, event_type) {
                (None, _) => true,
                (Some(set), Some(t)) => set.contains(t),
                (Some(_), None) => false,
            }
    }

    /// Parses a destinations list (`sentinel`, `sekoia`, comma-separated).
    pub fn parse_destinations(list: &[String]) -> Result<Vec<Destination>, DestinationError> {
        let mut out = Vec::new();
        for d in list {
            let d = Destination::parse(d).ok_or_else(|| DestinationError::Unknown(d.chars().take(40).collect()))?;
            if !out.contains(&d) {
                out.push(d);
            }
        }
        if out.is_empty() {
            return Err(DestinationError::None);
        }
        out.sort();
        Ok(out)
    }
}

pub const ADDITIONAL_DATA: &str = "AdditionalData";
pub const TIME_GENERATED: &str = "TimeGenerated";
/// The event's own time, kept beside TimeGenerated in every mapped table. Azure replaces a TimeGenerated more
/// than two days before it receives the row, or more than a day after, with the time it received it
/// (azure-monitor `logs/log-standard-columns.md`, "TimeGenerated"): a batch redelivered after an outage, a
/// vendor's backfill or TrapEye's `first_interaction` would otherwise lose when the event happened.
pub const EVENT_TIME: &str = "EventTime";
/// Set only on the rows `sentinel-bridge doctor --canary` writes (its run id), so rules and workbooks exclude
/// them with `where isempty(Canary)`; every table the bridge writes has it.
pub const CANARY: &str = "Canary";

/// Parses and validates one mapping file.
pub fn parse_mapping_file(file: &str, text: &str) -> Result<Vec<SourceMapping>, MappingError> {
    let spec: MappingFileSpec = toml::from_str(text).map_err(|e| MappingError {
        file: file.into(),
        source_name: "?".into(),
        field: e.span().map(|s| format!("bytes {}..{}", s.start, s.end)).unwrap_or_else(|| "syntax".into()),
        message: e.message().to_string(),
    })?;
    if spec.sources.is_empty() {
        return Err(MappingError { file: file.into(), source_name: "?".into(), field: "source".into(), message: "the file declares no [[source]]".into() });
    }
    spec.sources.into_iter().map(|s| compile_source(file, s)).collect()
}

fn compile_source(file: &str, spec: SourceSpec) -> Result<SourceMapping, MappingError> {
    let name = spec.name.clone();
    let fail = |field: &str, message: String| MappingError { file: file.into(), source_name: name.clone(), field: field.into(), message };
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') {
        return Err(fail("name", "must be 1-64 lowercase letters, digits, '-' or '_'".into()));
    }
    let auth = compile_auth(&spec, &fail)?;
    let event_type = compile_paths(spec.event_type.map(|p| p.into_vec()).unwrap_or_default(), "event_type", &fail)?;
    if spec.tables.is_empty() {
        return Err(fail("table", "a source needs at least one [[source.table]]".into()));
    }
    let mut tables = Vec::new();
    for (i, t) in spec.tables.into_iter().enumerate() {
        let field = format!("table[{i}]");
        tables.push(compile_table(t, &field, &fail)?);
    }
    let destinations =
        SourceMapping::parse_destinations(&spec.destinations.unwrap_or_else(|| vec!["sentinel".into()])).map_err(|m| fail("destinations", m.to_string()))?;
    let sekoia_event_types = spec.sekoia.and_then(|s| if s.event_types.is_empty() { None } else { Some(s.event_types.into_iter().collect::<HashSet<_>>()) });
    let filtered = tables.iter().any(|t| t.event_types.is_some()) || sekoia_event_types.is_some();
    if filtered && event_type.is_empty() {
        return Err(fail("event_type", "tables filter on event types, so the source must say where the event type is".into()));
    }
    Ok(SourceMapping { name: spec.name, description: spec.description, file: file.into(), auth, event_type, tables, destinations, sekoia_event_types })
}

fn compile_auth(spec: &SourceSpec, fail: &dyn Fn(&str, String) -> MappingError) -> Result<AuthConfig, MappingError> {
    let a = &spec.auth;
    let header = |what: &str| -> Result<String, MappingError> {
        let h = a.header.clone().ok_or_else(|| fail("auth.header", format!("{what} needs a header name")))?;
        axum::http::HeaderName::from_bytes(h.as_bytes()).map_err(|_| fail("auth.header", format!("'{h}' is not a valid header name")))?;
        Ok(h.to_ascii_lowercase())
    };
    let mode = match a.mode.as_deref().unwrap_or("bearer") {
        "bearer" => AuthMode::Bearer,
        "header" => AuthMode::Header { name: header("mode 'header'")? },
        "hmac-sha256" => AuthMode::HmacSha256 {
            header: header("mode 'hmac-sha256'")?,
            encoding: match a.encoding.as_deref().unwrap_or("hex") {
                "hex" => SignatureEncoding::Hex,
                "base64" => SignatureEncoding::Base64,
                other => return Err(fail("auth.encoding", format!("'{other}' is not hex or base64"))),
            },
            prefix: a.prefix.clone().unwrap_or_default(),
        },
        "standard-webhooks" => match a.tolerance_secs.unwrap_or(300) {
            // The replay guard keeps an id for as long as its signed timestamp is accepted: the bound keeps
            // that store small (the specification recommends five minutes).
            t if (1..=auth::MAX_TOLERANCE_SECS).contains(&t) => AuthMode::StandardWebhooks { tolerance_secs: t },
            t => return Err(fail("auth.tolerance_secs", format!("{t} is not between 1 and {} seconds", auth::MAX_TOLERANCE_SECS))),
        },
        other => return Err(fail("auth.mode", format!("'{other}' is not one of bearer, header, hmac-sha256, standard-webhooks"))),
    };
    Ok(AuthConfig { mode, open: a.open })
}

fn compile_paths(paths: Vec<String>, field: &str, fail: &dyn Fn(&str, String) -> MappingError) -> Result<Vec<JsonPath>, MappingError> {
    paths.iter().map(|p| p.parse::<JsonPath>().map_err(|e| fail(field, e.to_string()))).collect()
}

fn compile_table(t: TableSpec, field: &str, fail: &dyn Fn(&str, String) -> MappingError) -> Result<TableMapping, MappingError> {
    let f = |sub: &str| format!("{field}.{sub}");
    if !t.name.ends_with("_CL")
        || t.name.len() > 63
        || !t.name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        || !t.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(fail(&f("name"), format!("'{}' must be letters, digits or '_' and end in _CL", t.name)));
    }
    let time = match t.time.as_str() {
        "received" => TimeSource::Received,
        p => TimeSource::Path(p.parse().map_err(|e: path::PathError| fail(&f("time"), e.to_string()))?),
    };
    let unmapped = match t.unmapped.as_deref().unwrap_or("keep") {
        "keep" => Unmapped::Keep,
        "reject" => Unmapped::Reject,
        other => return Err(fail(&f("unmapped"), format!("'{other}' is not keep or reject"))),
    };
    let mut columns = Vec::new();
    let mut names = HashSet::new();
    names.insert(TIME_GENERATED.to_string());
    for (i, c) in t.columns.into_iter().enumerate() {
        let cf = f(&format!("columns[{i}] ({})", c.name));
        if c.name == TIME_GENERATED || c.name == EVENT_TIME {
            return Err(fail(&cf, format!("{} is set by the table's `time`, not as a column", c.name)));
        }
        if c.name == CANARY {
            return Err(fail(&cf, "Canary is reserved for doctor's canary rows".into()));
        }
        if c.name == ADDITIONAL_DATA && unmapped == Unmapped::Keep {
            return Err(fail(&cf, "AdditionalData is added by `unmapped = \"keep\"`".into()));
        }
        check_column_name(&c.name).map_err(|m| fail(&cf, m.to_string()))?;
        if !names.insert(c.name.clone()) {
            return Err(fail(&cf, format!("column '{}' is declared twice", c.name)));
        }
        let kind = ColumnType::parse(&c.kind)
            .ok_or_else(|| fail(&format!("{cf}.type"), format!("'{}' is not string, int, long, real, boolean, datetime or dynamic", c.kind)))?;
        let given = [c.path.is_some(), c.value.is_some(), c.meta.is_some()].iter().filter(|b| **b).count();
        if given != 1 {
            return Err(fail(&cf, "a column needs exactly one of path, value or meta".into()));
        }
        let source = if let Some(p) = c.path {
            let paths = compile_paths(p.into_vec(), &format!("{cf}.path"), fail)?;
            if paths.is_empty() {
                return Err(fail(&format!("{cf}.path"), "an empty list of paths".into()));
            }
            ValueSource::Path(paths)
        } else if let Some(v) = c.value {
            let v = spec::toml_to_json(v);
            let v = kind.coerce(v).map_err(|e| fail(&format!("{cf}.value"), format!("must be {e}")))?;
            ValueSource::Const(v)
        } else {
            match c.meta.as_deref() {
                Some("source") => ValueSource::SourceName,
                Some("received") => ValueSource::Received,
                Some("event_hash") => ValueSource::EventHash,
                other => return Err(fail(&format!("{cf}.meta"), format!("{other:?} is not source, received or event_hash"))),
            }
        };
        columns.push(ColumnMapping { column: Column { name: c.name, kind }, source, required: c.required });
    }
    let mut schema_cols = vec![
        Column { name: TIME_GENERATED.into(), kind: ColumnType::Datetime },
        Column { name: EVENT_TIME.into(), kind: ColumnType::Datetime },
        Column { name: CANARY.into(), kind: ColumnType::String },
    ];
    schema_cols.extend(columns.iter().map(|c| c.column.clone()));
    if unmapped == Unmapped::Keep {
        schema_cols.push(Column { name: ADDITIONAL_DATA.into(), kind: ColumnType::Dynamic });
    }
    if schema_cols.len() > 500 {
        return Err(fail(&f("columns"), "Azure allows at most 500 columns per table".into()));
    }
    let event_types = if t.event_types.is_empty() { None } else { Some(t.event_types.into_iter().collect()) };
    let mut coverage = Coverage::default();
    if let TimeSource::Path(p) = &time {
        coverage.add(p);
    }
    for c in &columns {
        if let ValueSource::Path(paths) = &c.source {
            paths.iter().for_each(|p| coverage.add(p));
        }
    }
    Ok(TableMapping { schema: Arc::new(TableSchema { name: t.name, columns: schema_cols }), event_types, time, unmapped, columns, coverage })
}

/// Every source the bridge knows, by name, and every table schema they write.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    sources: BTreeMap<String, Arc<SourceMapping>>,
}

impl Catalog {
    /// The built-in sources, then each user file in order; a user source replaces a built-in one of the same name.
    pub fn load(user_files: &[(String, String)]) -> Result<Catalog, MappingError> {
        let mut catalog = Catalog::default();
        for (file, text) in BUILTIN_FILES {
            for s in parse_mapping_file(file, text)? {
                catalog.insert(s, false)?;
            }
        }
        for (file, text) in user_files {
            for s in parse_mapping_file(file, text)? {
                catalog.insert(s, true)?;
            }
        }
        catalog.check_tables()?;
        catalog.check_setting_names()?;
        Ok(catalog)
    }

    /// Each source's settings are `SOURCE_<NAME>_…` with `-` as `_` and upper-cased: two names that fold to the
    /// same setting (`my-v`, `my_v`) would share one secret, so the catalog refuses them.
    fn check_setting_names(&self) -> Result<(), MappingError> {
        let mut seen: BTreeMap<String, &SourceMapping> = BTreeMap::new();
        for s in self.sources.values() {
            let folded = s.name.to_ascii_uppercase().replace('-', "_");
            if let Some(other) = seen.insert(folded.clone(), s) {
                return Err(MappingError {
                    file: s.file.clone(),
                    source_name: s.name.clone(),
                    field: "name".into(),
                    message: format!("'{}' and '{}' would both read SOURCE_{folded}_SECRETS; rename one", other.name, s.name),
                });
            }
        }
        Ok(())
    }

    pub fn builtin() -> Catalog {
        Self::load(&[]).expect("built-in mappings are valid")
    }

    fn insert(&mut self, s: SourceMapping, user: bool) -> Result<(), MappingError> {
        if let Some(prev) = self.sources.get(&s.name) {
            let builtin = BUILTIN_FILES.iter().any(|(f, _)| *f == prev.file);
            if !(user && builtin) {
                return Err(MappingError {
                    file: s.file.clone(),
                    source_name: s.name.clone(),
                    field: "name".into(),
                    message: format!("already declared in {}", prev.file),
                });
            }
            tracing::info!(source = %s.name, file = %s.file, "user mapping replaces the built-in source");
        }
        self.sources.insert(s.name.clone(), Arc::new(s));
        Ok(())
    }

    /// One stream has one declaration: sources that share a table must agree on its columns.
    fn check_tables(&self) -> Result<(), MappingError> {
        let mut seen: BTreeMap<&str, (&SourceMapping, &TableSchema)> = BTreeMap::new();
        for s in self.sources.values() {
            for t in &s.tables {
                if let Some((other, schema)) = seen.get(t.schema.name.as_str()) {
                    if **schema != *t.schema {
                        return Err(MappingError {
                            file: s.file.clone(),
                            source_name: s.name.clone(),
                            field: format!("table {}", t.schema.name),
                            message: format!("declares other columns than source '{}' does for the same table", other.name),
                        });
                    }
                } else {
                    seen.insert(&t.schema.name, (s, &t.schema));
                }
            }
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&Arc<SourceMapping>> {
        self.sources.get(name)
    }

    /// Replaces a source's destinations (the `SOURCE_<NAME>_DESTINATIONS` setting).
    pub fn set_destinations(&mut self, name: &str, destinations: Vec<Destination>) -> bool {
        match self.sources.get_mut(name) {
            Some(s) => {
                Arc::make_mut(s).destinations = destinations;
                true
            }
            None => false,
        }
    }

    pub fn sources(&self) -> impl Iterator<Item = &Arc<SourceMapping>> {
        self.sources.values()
    }

    /// Each distinct table schema the sources write, in name order.
    pub fn tables(&self) -> Vec<Arc<TableSchema>> {
        let mut out: BTreeMap<String, Arc<TableSchema>> = BTreeMap::new();
        for s in self.sources.values() {
            for t in &s.tables {
                out.entry(t.schema.name.clone()).or_insert_with(|| t.schema.clone());
            }
        }
        out.into_values().collect()
    }
}

impl fmt::Display for AuthMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthMode::Bearer => "bearer",
            AuthMode::Header { .. } => "header",
            AuthMode::HmacSha256 { .. } => "hmac-sha256",
            AuthMode::StandardWebhooks { .. } => "standard-webhooks",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_sources_load() {
        let c = Catalog::builtin();
        let names: Vec<_> = c.sources().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["apono", "generic", "noxys", "trapeye"]);
        let tables: Vec<_> = c.tables().iter().map(|t| t.name.clone()).collect();
        assert_eq!(tables, ["Apono_CL", "NoxysEvents_CL", "TrapEye_Interactions_CL", "TrapEye_Threats_CL", "Webhook_CL"]);
    }

    fn err(text: &str) -> MappingError {
        parse_mapping_file("bad.toml", text).unwrap_err()
    }

    const HEAD: &str = "[[source]]\nname = \"x\"\nauth = { mode = \"bearer\" }\n";

    #[test]
    fn bad_mappings_name_file_source_and_field() {
        let e = err(&format!("{HEAD}[[source.table]]\nname = \"T_CL\"\ntime = \"received\"\ncolumns = [{{ name = \"A\", type = \"float\", path = \"a\" }}]\n"));
        assert_eq!((e.file.as_str(), e.source_name.as_str()), ("bad.toml", "x"));
        assert!(e.field.contains("columns[0] (A).type"), "{e}");
        let e = err(&format!("{HEAD}[[source.table]]\nname = \"T\"\ntime = \"received\"\n"));
        assert_eq!(e.field, "table[0].name");
        let e = err(&format!("{HEAD}[[source.table]]\nname = \"T_CL\"\ntime = \"a..b\"\n"));
        assert_eq!(e.field, "table[0].time");
        let e = err(&format!(
            "{HEAD}[[source.table]]\nname = \"T_CL\"\ntime = \"received\"\ncolumns = [{{ name = \"TenantId\", type = \"string\", path = \"t\" }}]\n"
        ));
        assert!(e.message.contains("reserved"), "{e}");
        let e = err(&format!("{HEAD}[[source.table]]\nname = \"T_CL\"\nevent_types = [\"a\"]\ntime = \"received\"\n"));
        assert_eq!(e.field, "event_type");
        let e = err("[[source]]\nname = \"x\"\nauth = { mode = \"magic\" }\n[[source.table]]\nname = \"T_CL\"\ntime = \"received\"\n");
        assert_eq!(e.field, "auth.mode");
        let e = err("[[source]]\nname = \"x\"\nauth = { mode = \"hmac-sha256\" }\n[[source.table]]\nname = \"T_CL\"\ntime = \"received\"\n");
        assert_eq!(e.field, "auth.header");
        let e = err("[[source]]\nname = \"x\"\nauth = {}\nbogus = 1\n");
        assert!(e.message.contains("bogus"), "{e}");
        let e = err(&format!("{HEAD}[[source.table]]\nname = \"T_CL\"\ntime = \"received\"\ncolumns = [{{ name = \"A\", type = \"string\" }}]\n"));
        assert!(e.message.contains("exactly one"), "{e}");
    }

    #[test]
    fn shared_tables_must_agree() {
        let user = "[[source]]\nname = \"other\"\nauth = {}\n[[source.table]]\nname = \"NoxysEvents_CL\"\ntime = \"received\"\n";
        let e = Catalog::load(&[("user.toml".into(), user.into())]).unwrap_err();
        assert_eq!(e.source_name, "other");
    }

    #[test]
    fn a_user_file_may_replace_a_builtin_source() {
        let user = "[[source]]\nname = \"noxys\"\nauth = { mode = \"header\", header = \"X-Noxys-Key\" }\n[[source.table]]\nname = \"Noxys2_CL\"\ntime = \"received\"\n";
        let c = Catalog::load(&[("user.toml".into(), user.into())]).unwrap();
        assert_eq!(c.get("noxys").unwrap().auth.mode, AuthMode::Header { name: "x-noxys-key".into() });
    }

    #[test]
    fn names_that_share_a_secrets_setting_are_refused() {
        let table = |t: &str| format!("[[source.table]]\nname = \"{t}\"\ntime = \"received\"\n");
        let user = format!("[[source]]\nname = \"my-v\"\nauth = {{}}\n{}[[source]]\nname = \"my_v\"\nauth = {{}}\n{}", table("MyV1_CL"), table("MyV2_CL"));
        let e = Catalog::load(&[("user.toml".into(), user)]).unwrap_err();
        assert!(e.message.contains("SOURCE_MY_V_SECRETS"), "{e}");
    }
}
