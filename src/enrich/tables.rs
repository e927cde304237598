//! The enrichment's own tables: one row per enrichment in IncidentEnrichment_CL, one row per query and
//! inference in EnrichmentAudit_CL.

use std::sync::Arc;

use crate::mapping::Catalog;
use crate::model::schema::{Column, ColumnType, TableSchema};

fn schema(name: &str, cols: &[(&str, ColumnType)]) -> Arc<TableSchema> {
    Arc::new(TableSchema { name: name.into(), columns: cols.iter().map(|(n, t)| Column { name: n.to_string(), kind: *t }).collect() })
}

pub fn incident_enrichment() -> Arc<TableSchema> {
    use ColumnType::*;
    schema(
        "IncidentEnrichment_CL",
        &[
            ("TimeGenerated", Datetime),
            ("RunId", String),
            ("IncidentName", String),
            ("IncidentNumber", Long),
            ("LeadingHypothesis", String),
            ("Confidence", Real),
            ("Hypotheses", Dynamic),
            ("Signals", Dynamic),
            ("Queries", Dynamic),
            ("Degraded", Boolean),
            ("Mode", String),
            ("Version", String),
            ("CommentId", String),
            ("Actions", Dynamic),
            ("Canary", String),
        ],
    )
}

pub fn enrichment_audit() -> Arc<TableSchema> {
    use ColumnType::*;
    schema(
        "EnrichmentAudit_CL",
        &[
            ("TimeGenerated", Datetime),
            ("RunId", String),
            ("IncidentName", String),
            ("Kind", String),
            ("Name", String),
            ("Status", String),
            ("Rows", Long),
            ("DurationMs", Real),
            ("Detail", Dynamic),
            ("Canary", String),
        ],
    )
}

pub fn all() -> Vec<Arc<TableSchema>> {
    vec![incident_enrichment(), enrichment_audit()]
}

/// Every table the bridge writes: the mappings' and the enrichment's own.
pub fn written_tables(catalog: &Catalog) -> Vec<Arc<TableSchema>> {
    let mut tables = catalog.tables();
    tables.extend(all());
    tables
}
