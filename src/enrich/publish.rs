//! Stage four: say what was found. The narrative (deterministic, or rephrased by Azure OpenAI), the comment on
//! the incident, in `act` mode its label and severity, and the rows of the enrichment's own tables.

use std::time::{Duration, Instant};

use serde_json::json;

use super::correlate::Correlation;
use super::gather::Gathered;
use super::impact::{Criticality, Impact};
use super::infer::Inferred;
use super::outcome::{ActionOutcome, CommentOutcome, Severity};
use super::tables::{self, AuditKind, AuditRow, EnrichmentRow};
use super::{comment, comment_id, entities, hypotheses, narrative, weights, Enricher, Enrichment, Leading, Mode, QueryRun, ENRICH_VERSION};
use crate::azure::sentinel::{Label, SentinelError};
use crate::model::schema::{Row, TableSchema};
use crate::model::time::format_ticks;
use hypotheses::{Hypothesis, HypothesisId};

/// An audit row before the run's time, id and incident are stamped on it.
struct Audit {
    kind: AuditKind,
    name: String,
    status: String,
    duration_ms: Option<f64>,
    detail: Option<serde_json::Value>,
}

pub async fn publish(e: &Enricher, g: Gathered, c: Correlation, inferred: Inferred, impact: Impact) -> Enrichment {
    let Inferred { hypotheses: hyps, entry_point, mut notes } = inferred;
    notes.extend(impact.gaps.iter().map(|g| format!("business impact not read: {g}")));
    let signals = c.signals;
    // The Sentinel reads, the correlation queries (the narrative speaks of those alone), the business-impact
    // reads.
    let mut runs = g.runs.clone();
    runs.extend(c.runs.iter().cloned());
    runs.extend(impact.runs.iter().cloned());
    let findings = narrative::Findings {
        hypotheses: &hyps,
        signals: &signals,
        correlation: &c.runs,
        entry_point,
        unmatched: &c.resolution.unmatched,
        entity_count: c.entity_count,
    };
    let mut narrative_text = narrative::deterministic(&findings);
    let reason = narrative::reason(&findings);
    let entry = narrative::entry_point(&findings);
    let impact_line = impact.line();
    let mut narrative_source = "deterministic";
    let mut narrative_error = None;
    let mut audit: Vec<Audit> = Vec::new();
    if let Some(n) = &e.narrator {
        let t = Instant::now();
        match n.rephrase(&hyps, &signals).await {
            Ok(text) => {
                narrative_text = text;
                narrative_source = "azure-openai";
                let detail = json!({"findings": narrative::OpenAiNarrator::findings(&hyps, &signals)});
                audit.push(Audit {
                    kind: AuditKind::Narrative,
                    name: "azure-openai".into(),
                    status: "ok".into(),
                    duration_ms: Some(super::ms(t)),
                    detail: Some(detail),
                });
            }
            Err(err) => {
                tracing::warn!(error = %err, "Azure OpenAI narrative failed; using the deterministic one");
                let status = format!("failed: {err}");
                audit.push(Audit { kind: AuditKind::Narrative, name: "azure-openai".into(), status, duration_ms: Some(super::ms(t)), detail: None });
                narrative_error = Some(err.to_string());
            }
        }
    }
    let html = comment::render(
        &comment::CommentInput {
            version: ENRICH_VERSION,
            hypotheses: &hyps,
            signals: &signals,
            queries: &runs,
            reason: &reason,
            summary: (narrative_source != "deterministic").then_some(narrative_text.as_str()),
            entry_point: entry.as_ref().map(|(h, how)| (*h, how.as_str())),
            impact: Some(&impact_line),
            names: &entities::describe(&c.resolution, &g.subjects),
            unmatched: &c.resolution.unmatched,
            notes: &notes,
        },
        e.settings.comment_budget,
    );
    let incident = &g.incident;
    let cid = comment_id(&incident.name);
    let comment = if e.settings.mode == Mode::Observe {
        CommentOutcome::SkippedObserveMode
    } else {
        match e.sentinel.put_comment(&incident.name, &cid, &html).await {
            Ok(true) => CommentOutcome::Created,
            Ok(false) => CommentOutcome::Replaced,
            Err(err) => {
                tracing::error!(error = %err, incident = %incident.name, "could not comment on the incident");
                CommentOutcome::Failed(err.to_string())
            }
        }
    };
    let detail = json!({"characters": html.chars().count()});
    audit.push(Audit { kind: AuditKind::Comment, name: cid.clone(), status: comment.to_string(), duration_ms: None, detail: Some(detail) });
    let mut actions = Vec::new();
    if e.settings.mode == Mode::Act {
        actions = act(e, &incident.name, &hyps[0], &impact).await;
        for a in &actions {
            audit.push(Audit { kind: AuditKind::Update, name: "incident".into(), status: a.to_string(), duration_ms: None, detail: None });
        }
    }
    let lead = &hyps[0];
    let degraded = runs.iter().any(QueryRun::failed);
    let enrichment = Enrichment {
        run_id: g.run_id.clone(),
        incident: incident.name.clone(),
        incident_number: incident.properties.incident_number,
        mode: e.settings.mode,
        version: ENRICH_VERSION,
        leading: Leading {
            id: lead.id,
            title: lead.title,
            confidence: lead.confidence,
            band: hypotheses::band(lead.confidence),
            recommendation: lead.recommendation.clone(),
            entry_point,
        },
        hypotheses: hyps.clone(),
        signals,
        queries: runs,
        degraded,
        comment_id: cid,
        comment,
        comment_html: html,
        narrative: narrative_text,
        narrative_source,
        narrative_error,
        actions,
        tables_written: false,
        window: g.window,
        subjects: serde_json::to_value(&g.subjects).unwrap_or(serde_json::Value::Null),
        resolution: c.resolution,
        notes,
        business_impact: json!({"rating": impact.overall(), "assets": impact.assets, "gaps": impact.gaps}),
    };
    let written = write_tables(e, &enrichment, &audit).await;
    Enrichment { tables_written: written, ..enrichment }
}

/// What `act` mode sets on the incident: the label (at the threshold), the severity to raise to, and why a
/// severity is deliberately left as it is. `None`: nothing to do.
#[derive(Debug, PartialEq)]
struct Plan {
    label: Option<String>,
    target: Option<Severity>,
    kept: Option<ActionOutcome>,
}

fn plan(lead: &Hypothesis, threshold: f64, impact: &Impact) -> Option<Plan> {
    let threat = !matches!(lead.id, HypothesisId::NoFinding | HypothesisId::BenignLoad);
    let confident = threat && lead.confidence >= threshold;
    let rating = impact.overall();
    // A finding leads above 0.5: on a critical asset, that is enough to make it urgent.
    let escalate = threat && rating == Criticality::Critical && lead.confidence > 0.5;
    if !confident && !escalate {
        return None;
    }
    let mut kept = None;
    let target = match (rating, lead.id) {
        (Criticality::Critical, _) => Some(Severity::High),
        (Criticality::Sandbox, _) => {
            kept = Some(ActionOutcome::SeverityKept(format!("a sandbox: {}", impact.which())));
            None
        }
        (_, HypothesisId::Cryptojacking | HypothesisId::CredentialCompromise | HypothesisId::DataExfiltration | HypothesisId::DestructiveImpact) => {
            Some(Severity::High)
        }
        (_, HypothesisId::ConfigDrift) => Some(Severity::Medium),
        (_, HypothesisId::BenignLoad | HypothesisId::NoFinding) => None,
    };
    Some(Plan { label: confident.then(|| format!("sentinel-bridge:{}", lead.id)), target, kept })
}

/// `act` mode: label the incident and raise its severity, reading it with its etag and retrying on 409.
///
/// Business impact sets the priority: a threat that leads (over 0.5) on a business-critical asset raises the
/// severity to High even under the act threshold (it is a matter of priority, not of verdict: the label still
/// waits for the threshold); on a sandbox the severity is never raised. Nothing is ever lowered.
async fn act(e: &Enricher, name: &str, lead: &Hypothesis, impact: &Impact) -> Vec<ActionOutcome> {
    let Some(Plan { label, target, kept }) = plan(lead, e.settings.act_threshold, impact) else {
        return vec![ActionOutcome::UnderThreshold { confidence: lead.confidence, threshold: e.settings.act_threshold }];
    };
    for attempt in 1..=4 {
        let mut incident = match e.sentinel.get_incident(name).await {
            Ok(i) => i,
            Err(err) => return vec![ActionOutcome::Failed(err.to_string())],
        };
        let mut changes = Vec::new();
        if let Some(label) = label.as_ref().filter(|l| !incident.properties.labels.iter().any(|x| x.label_name == **l)) {
            incident.properties.labels.push(Label { label_name: label.clone(), label_type: None });
            changes.push(ActionOutcome::Labelled(label.clone()));
        }
        // A severity Sentinel does not define ranks below every one it does: it is raised, never lowered.
        if let Some(to) = target.filter(|to| Severity::parse(&incident.properties.severity).is_none_or(|now| *to > now)) {
            changes.push(ActionOutcome::SeverityRaised { from: incident.properties.severity.clone(), to });
            incident.properties.severity = to.as_str().to_string();
        }
        if changes.is_empty() {
            return kept.into_iter().chain([ActionOutcome::NoChange]).collect();
        }
        match e.sentinel.put_incident(&incident).await {
            Ok(_) => return changes.into_iter().chain(kept).collect(),
            Err(SentinelError::Conflict(_)) if attempt < 4 => {
                tracing::info!(incident = name, attempt, "incident changed meanwhile (409); re-reading");
                continue;
            }
            Err(err) => return vec![ActionOutcome::Failed(err.to_string())],
        }
    }
    vec![ActionOutcome::Failed("the incident kept changing".into())]
}

/// Writes one IncidentEnrichment_CL row and the audit trail; false when either could not be written.
async fn write_tables(e: &Enricher, x: &Enrichment, extra: &[Audit]) -> bool {
    let now = format_ticks(crate::model::time::now_ticks());
    let summary = EnrichmentRow {
        time_generated: &now,
        run_id: &x.run_id,
        incident_name: &x.incident,
        incident_number: x.incident_number,
        leading_hypothesis: x.leading.id,
        confidence: x.leading.confidence,
        hypotheses: &x.hypotheses,
        signals: &x.signals,
        queries: &x.queries,
        degraded: x.degraded,
        mode: x.mode,
        version: x.version,
        comment_id: &x.comment_id,
        actions: &x.actions,
    };
    let stamp = |kind, name: String, status: String, rows, duration_ms, detail| AuditRow {
        time_generated: &now,
        run_id: &x.run_id,
        incident_name: &x.incident,
        kind,
        name,
        status,
        rows,
        duration_ms,
        detail,
    };
    let mut audit = Vec::new();
    for r in &x.queries {
        audit.push(stamp(AuditKind::Query, r.name.clone(), r.status.to_string(), Some(r.rows), Some(r.duration_ms), Some(json!({"query": r.text}))));
    }
    for h in &x.hypotheses {
        let model = format!("logistic, fitted on suite seeds {}..{}", weights::FIT_SEEDS.0, weights::FIT_SEEDS.1);
        let detail = json!({"confidence": h.confidence, "evidence": h.evidence, "capped": h.capped, "model": model});
        audit.push(stamp(AuditKind::Inference, h.id.to_string(), "ok".into(), None, None, Some(detail)));
    }
    for a in extra {
        audit.push(stamp(a.kind, a.name.clone(), a.status.clone(), None, a.duration_ms, a.detail.clone()));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ok = true;
    let summary = vec![serde_json::to_value(&summary)];
    let audit: Vec<_> = audit.iter().map(serde_json::to_value).collect();
    for (schema, rows) in [(tables::incident_enrichment(), summary), (tables::enrichment_audit(), audit)] {
        match build(&schema, rows) {
            Ok(rows) => {
                let out = e.ingest.upload(&schema.stream_name(), &rows, deadline).await;
                if !out.is_ok() {
                    ok = false;
                    tracing::error!(table = %schema.name, failures = out.failures.len(), "could not write enrichment rows");
                }
            }
            Err(err) => {
                ok = false;
                tracing::error!(table = %schema.name, error = %err, "enrichment row does not fit its table");
            }
        }
    }
    ok
}

/// Checked rows of `schema` from serialised row structs (nulls left out, as absent columns).
fn build(schema: &TableSchema, rows: Vec<Result<serde_json::Value, serde_json::Error>>) -> Result<Vec<Row>, String> {
    rows.into_iter()
        .map(|v| {
            let mut v = v.map_err(|e| e.to_string())?;
            let m = v.as_object_mut().ok_or("a row is not an object")?;
            m.retain(|_, x| !x.is_null());
            fit_fields(m);
            Row::new(schema, m).map_err(|e| e.to_string())
        })
        .collect()
}

/// Keeps every field of an enrichment row within Azure's 64 KB per field, which Azure would otherwise cut
/// into broken JSON (Logs Ingestion service limits; `limits::MAX_FIELD_BYTES`): a long text is shortened and
/// says by how much, a long list keeps its first items and says how many it dropped, anything else becomes a
/// marked preview. Nothing is cut silently.
fn fit_fields(row: &mut serde_json::Map<String, serde_json::Value>) {
    use crate::azure::logs_ingestion::limits::MAX_FIELD_BYTES;
    use serde_json::Value;
    // Headroom for the marker and the escapes a cut can add.
    let budget = MAX_FIELD_BYTES - 1024;
    let size = |v: &Value| serde_json::to_string(v).map_or(0, |t| t.len());
    for v in row.values_mut() {
        let bytes = size(v);
        if bytes <= MAX_FIELD_BYTES {
            continue;
        }
        *v = match std::mem::take(v) {
            Value::String(t) => {
                let mut end = budget.min(t.len());
                while !t.is_char_boundary(end) {
                    end -= 1;
                }
                Value::String(format!("{}… [cut: {} of {} bytes kept]", &t[..end], end, t.len()))
            }
            Value::Array(mut items) => {
                let total = items.len();
                while items.len() > 1 && size(&Value::Array(items.clone())) > budget {
                    items.truncate(items.len() / 2);
                }
                let kept = items.len();
                items.push(Value::String(format!("… {} more not kept: the field would pass Azure's 64 KB", total - kept)));
                if size(&Value::Array(items.clone())) > MAX_FIELD_BYTES {
                    Value::String(format!("{total} items not kept: the field would pass Azure's 64 KB"))
                } else {
                    Value::Array(items)
                }
            }
            other => {
                let text = other.to_string();
                let mut end = budget.min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                serde_json::json!({"cut": true, "bytes": text.len(), "preview": &text[..end]})
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::impact::Asset;

    fn impact(c: Criticality) -> Impact {
        let asset = Asset { name: "vm-1".into(), resource_id: None, criticality: c, reasons: vec!["tag env=dev".into()], health: None };
        Impact { assets: vec![asset], ..Impact::default() }
    }

    fn lead(id: HypothesisId, confidence: f64) -> Hypothesis {
        Hypothesis { id, title: id.title(), confidence, evidence: Vec::new(), recommendation: String::new(), capped: None }
    }

    /// Business impact sets the priority: a critical asset's leading threat is High even under the threshold
    /// (without a label: that is a verdict); a sandbox's is never raised; unknown acts as the finding says.
    #[test]
    fn the_asset_s_worth_sets_the_severity_never_the_verdict() {
        let p = |id, c, rating| plan(&lead(id, c), 0.8, &impact(rating));
        let critical = p(HypothesisId::ConfigDrift, 0.6, Criticality::Critical).unwrap();
        assert_eq!((critical.label, critical.target), (None, Some(Severity::High)));
        assert_eq!(p(HypothesisId::ConfigDrift, 0.6, Criticality::Unknown), None, "under the threshold, unknown: nothing");
        assert_eq!(p(HypothesisId::ConfigDrift, 0.45, Criticality::Critical), None, "a finding that does not lead is not escalated");
        assert_eq!(p(HypothesisId::BenignLoad, 0.95, Criticality::Critical), None, "benign is never escalated");
        assert_eq!(p(HypothesisId::ConfigDrift, 0.9, Criticality::Unknown).unwrap().target, Some(Severity::Medium));
        let sandbox = p(HypothesisId::Cryptojacking, 0.95, Criticality::Sandbox).unwrap();
        assert_eq!(sandbox.label.as_deref(), Some("sentinel-bridge:cryptojacking"));
        assert_eq!(sandbox.target, None);
        assert_eq!(sandbox.kept.unwrap().to_string(), "severity not raised: a sandbox: vm-1 (tag env=dev)");
    }

    #[test]
    fn no_field_of_an_enrichment_row_passes_azure_s_64_kb() {
        let limit = crate::azure::logs_ingestion::limits::MAX_FIELD_BYTES;
        let mut row = serde_json::Map::new();
        row.insert("Name".into(), json!("q"));
        row.insert("Detail".into(), json!({"query": "x".repeat(200_000)}));
        row.insert(
            "Signals".into(),
            json!((0..5_000).map(|i| json!({"name": "cpu_spike", "summary": format!("signal {i} {}", "y".repeat(40))})).collect::<Vec<_>>()),
        );
        row.insert("Status".into(), json!("é".repeat(70_000)));
        fit_fields(&mut row);
        for (k, v) in &row {
            assert!(serde_json::to_string(v).unwrap().len() <= limit, "{k} is over the limit");
        }
        assert_eq!(row["Detail"]["cut"], true);
        assert!(row["Signals"].as_array().unwrap().last().unwrap().as_str().unwrap().contains("more not kept"));
        assert!(row["Status"].as_str().unwrap().contains("[cut:"));
        assert_eq!(row["Name"], "q");
    }
}
