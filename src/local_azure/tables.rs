//! What the local workspace holds: tables with typed columns, the DCR streams that feed them (custom tables as
//! `Custom-<Table>`, Azure's standard tables as `Microsoft-<Table>`, as DCRs name them), optional stream
//! transformations (`transformKql`), and the system columns every Log Analytics table has.

use std::sync::Arc;

use crate::kql::{Column, KType};
use crate::model::schema::TableSchema;

/// Columns Log Analytics adds to every table; not ingestible.
pub const SYSTEM_COLUMNS: &[(&str, KType)] = &[("TenantId", KType::String), ("Type", KType::String)];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDef {
    pub name: String,
    /// Ingestible columns, in order; the system columns follow them in every row.
    pub columns: Vec<Column>,
}

impl TableDef {
    pub fn column(&self, name: &str) -> Option<(usize, &Column)> {
        self.columns.iter().enumerate().find(|(_, c)| c.name == name)
    }

    /// Columns as queries see them: ingestible ones, then the system columns.
    pub fn query_columns(&self) -> Vec<Column> {
        let mut cols = self.columns.clone();
        cols.extend(SYSTEM_COLUMNS.iter().map(|(n, t)| Column { name: n.to_string(), ktype: *t }));
        cols
    }
}

/// A DCR stream: its declared input columns, the table it lands in, and its transformation.
#[derive(Debug, Clone)]
pub struct StreamDecl {
    pub name: String,
    pub columns: Vec<Column>,
    pub table: String,
    pub transform: Option<String>,
}

impl From<&TableSchema> for TableDef {
    fn from(t: &TableSchema) -> Self {
        TableDef { name: t.name.clone(), columns: t.columns.iter().map(|c| Column { name: c.name.clone(), ktype: c.kind.ktype() }).collect() }
    }
}

pub fn custom_tables(schemas: &[Arc<TableSchema>]) -> Vec<TableDef> {
    schemas.iter().map(|s| TableDef::from(&**s)).collect()
}

/// Azure's standard tables: every documented Log Analytics table ([`super::catalog`]), shared, not copied.
pub fn standard_tables() -> Vec<Arc<TableDef>> {
    super::catalog::tables().iter().map(|t| t.def.clone()).collect()
}

/// Whether a data collection rule may send rows to this table through the Logs Ingestion API: every custom
/// table may; a standard one only where Microsoft's feature matrix says so ("Tables that support the Logs
/// ingestion API", `logsIngestionApi`). Perf, SigninLogs, AzureActivity, Watchlist and most others are written
/// by Azure itself and no rule can target them.
pub fn ingestible(table: &str) -> bool {
    super::catalog::table(table).is_none_or(|t| t.ingestible)
}

/// The default streams: one per table, with no transformation.
pub fn default_streams(custom: &[TableDef], standard: &[Arc<TableDef>]) -> Vec<StreamDecl> {
    let mut out = Vec::new();
    for t in custom {
        out.push(StreamDecl { name: format!("Custom-{}", t.name), columns: t.columns.clone(), table: t.name.clone(), transform: None });
    }
    for t in standard {
        out.push(StreamDecl { name: format!("Microsoft-{}", t.name), columns: t.columns.clone(), table: t.name.clone(), transform: None });
    }
    out
}

/// Whether a JSON value is one Azure stores faithfully in a column of this type (null always is). Stricter
/// than Azure, which quietly stores null for a value that does not convert: here that is refused.
pub fn accepts(t: KType, v: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (t, v) {
        (_, J::Null) | (KType::Dynamic, _) => true,
        (KType::String | KType::Guid, J::String(_)) => true,
        (KType::Int, J::Number(n)) => n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
        (KType::Long, J::Number(n)) => n.as_i64().is_some(),
        (KType::Real, J::Number(_)) => true,
        (KType::Bool, J::Bool(_)) => true,
        (KType::DateTime, J::String(s)) => crate::model::time::parse_datetime_ticks(s).is_some(),
        (KType::TimeSpan, J::String(s)) => crate::kql::value::parse_timespan_text(s).is_some(),
        _ => false,
    }
}
