//! A table of typed values: what a query answers, what the local workspace stores and what the enrichment
//! reads. Rows share their values by reference, so filters and projections over large tables copy pointers.

use std::sync::Arc;

use super::value::{KType, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub ktype: KType,
}

pub type Row = Arc<[Value]>;

/// A table: its columns, and rows whose values line up with them.
#[derive(Debug, Clone, Default)]
pub struct Frame {
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
}

impl Frame {
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The frame as the Query API's `{"name","columns","rows"}` table.
    pub fn to_wire(&self, name: &str) -> serde_json::Value {
        let columns: Vec<_> = self.columns.iter().map(|c| serde_json::json!({"name": c.name, "type": c.ktype.name()})).collect();
        let rows: Vec<serde_json::Value> =
            self.rows.iter().map(|r| serde_json::Value::Array(r.iter().zip(&self.columns).map(|(v, c)| v.to_wire(c.ktype)).collect())).collect();
        serde_json::json!({"name": name, "columns": columns, "rows": rows})
    }
}
