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

/// One row of IncidentEnrichment_CL: its fields are the table's columns (a test holds this).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnrichmentRow<'a> {
    pub time_generated: &'a str,
    pub run_id: &'a str,
    pub incident_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident_number: Option<i64>,
    pub leading_hypothesis: super::hypotheses::HypothesisId,
    pub confidence: f64,
    pub hypotheses: &'a [super::hypotheses::Hypothesis],
    pub signals: &'a [super::signals::Signal],
    pub queries: &'a [super::QueryRun],
    pub degraded: bool,
    pub mode: super::Mode,
    pub version: &'a str,
    pub comment_id: &'a str,
    pub actions: &'a [super::ActionOutcome],
}

/// One row of EnrichmentAudit_CL: a query, an inference, the narrative, the comment or an update.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AuditRow<'a> {
    pub time_generated: &'a str,
    pub run_id: &'a str,
    pub incident_name: &'a str,
    pub kind: AuditKind,
    pub name: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

/// What an audit row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditKind {
    Query,
    Inference,
    Narrative,
    Comment,
    Update,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: serde_json::Value) -> Vec<String> {
        v.as_object().unwrap().keys().cloned().collect()
    }

    /// Every field of a row struct is a column of its table (all but `Canary`, which only doctor's canary
    /// rows set), so a renamed field fails here, not at ingestion.
    #[test]
    fn row_structs_are_their_tables_columns() {
        let columns = |t: Arc<TableSchema>| t.columns.iter().map(|c| c.name.clone()).filter(|c| c != "Canary").collect::<Vec<_>>();
        let row = EnrichmentRow {
            time_generated: "t",
            run_id: "r",
            incident_name: "i",
            incident_number: Some(1),
            leading_hypothesis: super::super::hypotheses::HypothesisId::NoFinding,
            confidence: 0.5,
            hypotheses: &[],
            signals: &[],
            queries: &[],
            degraded: false,
            mode: super::super::Mode::Comment,
            version: "v",
            comment_id: "c",
            actions: &[],
        };
        assert_eq!(keys(serde_json::to_value(&row).unwrap()), columns(incident_enrichment()));
        let audit = AuditRow {
            time_generated: "t",
            run_id: "r",
            incident_name: "i",
            kind: AuditKind::Query,
            name: "q".into(),
            status: "ok".into(),
            rows: Some(1),
            duration_ms: Some(1.0),
            detail: Some(serde_json::json!({})),
        };
        assert_eq!(keys(serde_json::to_value(&audit).unwrap()), columns(enrichment_audit()));
    }
}
