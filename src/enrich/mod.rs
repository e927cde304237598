//! Incident enrichment: when an incident fires, gather its alerts and entities from Sentinel, correlate the
//! surrounding Azure Monitor telemetry through the Log Analytics Query API, infer evidence-backed hypotheses,
//! comment on the incident, and write the findings and an audit trail to custom tables.
//!
//! The path, in order: [`trigger`] (find the incident in the playbook's body) → gather (incident, alerts,
//! entities; accounts, hosts, IPs, resources; the window) → correlate (the `.kql` files in `queries/`, run
//! concurrently, each with its own timeout; a failure degrades the result, never fails it) → [`signals`] →
//! [`hypotheses`] → outputs ([`comment`], the tables in [`tables`], and in `act` mode labels and severity).

pub mod comment;
pub mod evaluation;
pub mod hypotheses;
pub mod narrative;
pub mod scenarios;
pub mod signals;
pub mod tables;
pub mod trigger;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};

use crate::azure::logs_ingestion::IngestionClient;
use crate::model::time::{format_ticks, parse_datetime_ticks, TICKS_PER_SEC};
use crate::azure::logs_query::LogsQueryClient;
use crate::model::schema::Row;
use crate::azure::sentinel::{Incident, Label, SentinelClient, SentinelError};
use hypotheses::{Hypothesis, HypothesisId};
use signals::Signal;

/// Bumped when the comment or the model changes; part of the comment id, so a new version adds its own comment.
pub const ENRICH_VERSION: &str = "v1";

/// The queries the enrichment runs, shipped as files.
pub const QUERIES: &[(&str, &str)] = &[
    ("compute_perf", include_str!("../../queries/compute_perf.kql")),
    ("compute_metrics", include_str!("../../queries/compute_metrics.kql")),
    ("signins", include_str!("../../queries/signins.kql")),
    ("control_plane", include_str!("../../queries/control_plane.kql")),
    ("related_alerts", include_str!("../../queries/related_alerts.kql")),
    ("vendor_noxys", include_str!("../../queries/vendor_noxys.kql")),
    ("vendor_trapeye", include_str!("../../queries/vendor_trapeye.kql")),
    ("vendor_apono", include_str!("../../queries/vendor_apono.kql")),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Write the tables only.
    Observe,
    /// Also comment on the incident (the default).
    Comment,
    /// Also label the incident and raise its severity when confident (never lower it, never close it).
    Act,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "observe" => Mode::Observe,
            "comment" => Mode::Comment,
            "act" => Mode::Act,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct EnrichSettings {
    pub mode: Mode,
    pub lookaround: Duration,
    pub baseline_days: i64,
    pub query_timeout: Duration,
    pub comment_budget: usize,
    pub act_threshold: f64,
}

impl Default for EnrichSettings {
    fn default() -> Self {
        EnrichSettings {
            mode: Mode::Comment,
            lookaround: Duration::from_secs(72 * 3600),
            baseline_days: 14,
            query_timeout: Duration::from_secs(30),
            comment_budget: 10_000,
            act_threshold: 0.8,
        }
    }
}

/// How a query (or a Sentinel read) went; written as `ok`, `skipped: …`, `failed: …` or `timed out`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    Ok,
    /// Not run, and why (nothing to ask about).
    Skipped(String),
    Failed(String),
    TimedOut,
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunStatus::Ok => f.write_str("ok"),
            RunStatus::Skipped(why) => write!(f, "skipped: {why}"),
            RunStatus::Failed(e) => write!(f, "failed: {e}"),
            RunStatus::TimedOut => f.write_str("timed out"),
        }
    }
}

impl Serialize for RunStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The leading finding, as the result and the tables report it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Leading {
    pub id: HypothesisId,
    pub title: &'static str,
    pub confidence: f64,
    pub band: &'static str,
    pub recommendation: String,
    /// In a kill chain, the hypothesis that let the impact happen (credential compromise).
    #[serde(rename = "entryPoint", skip_serializing_if = "Option::is_none")]
    pub entry_point: Option<HypothesisId>,
}

/// One query's run, for the result, the comment and the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryRun {
    pub name: String,
    pub status: RunStatus,
    pub rows: usize,
    #[serde(rename = "durationMs")]
    pub duration_ms: f64,
    #[serde(skip)]
    pub text: String,
}

impl QueryRun {
    pub fn failed(&self) -> bool {
        matches!(self.status, RunStatus::Failed(_) | RunStatus::TimedOut)
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrichment {
    pub run_id: String,
    pub incident: String,
    pub incident_number: Option<i64>,
    pub mode: Mode,
    pub version: &'static str,
    pub leading: Leading,
    pub hypotheses: Vec<Hypothesis>,
    pub signals: Vec<Signal>,
    pub queries: Vec<QueryRun>,
    pub degraded: bool,
    pub comment_id: String,
    /// `created`, `replaced`, `skipped (observe mode)` or `failed: …`.
    pub comment: String,
    pub comment_html: String,
    pub narrative: String,
    pub narrative_source: &'static str,
    /// Why the model's narrative is not used, when one was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub narrative_error: Option<String>,
    pub actions: Vec<String>,
    pub tables_written: bool,
    pub window: Value,
    pub subjects: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    #[error("incident '{0}' was not found in Sentinel")]
    NotFound(String),
    #[error("{0}")]
    WrongWorkspace(String),
    #[error("Sentinel is unavailable: {0}")]
    Sentinel(SentinelError),
}

/// The deterministic comment id for an incident and enrichment version: a re-run replaces its comment.
pub fn comment_id(incident: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, format!("sentinel-bridge:enrichment:{}:{ENRICH_VERSION}", incident.to_ascii_lowercase()).as_bytes()).to_string()
}

/// A KQL `dynamic([...])` literal of strings: values are JSON-escaped, never spliced as KQL.
pub fn kql_strings(values: &[String]) -> String {
    format!("dynamic({})", serde_json::to_string(values).expect("strings serialise"))
}

pub fn kql_datetime(ticks: i64) -> String {
    format!("datetime({})", format_ticks(ticks))
}

/// What the incident is about.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Subjects {
    pub accounts: Vec<String>,
    pub hosts: Vec<String>,
    pub ips: Vec<String>,
    pub resources: Vec<String>,
    #[serde(skip)]
    pub own_alert_ids: Vec<String>,
}

fn push_unique(v: &mut Vec<String>, s: Option<String>) {
    if let Some(s) = s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty() && s.len() <= 512) {
        if !v.iter().any(|x| x.eq_ignore_ascii_case(&s)) {
            v.push(s);
        }
    }
}

fn subjects_of(entities: &[crate::azure::sentinel::Entity], alerts: &[crate::azure::sentinel::Alert]) -> Subjects {
    let mut s = Subjects::default();
    let str_of = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    for e in entities {
        let p = &e.properties;
        match e.kind.as_str() {
            "Account" => {
                let upn = match (str_of(p, "accountName"), str_of(p, "upnSuffix")) {
                    (Some(n), Some(sfx)) => Some(format!("{n}@{sfx}")),
                    _ => str_of(p, "userPrincipalName").or_else(|| str_of(p, "name")).or_else(|| str_of(p, "friendlyName")),
                };
                push_unique(&mut s.accounts, upn);
            }
            "Host" => push_unique(&mut s.hosts, str_of(p, "hostName").or_else(|| str_of(p, "friendlyName"))),
            "Ip" => push_unique(&mut s.ips, str_of(p, "address")),
            "AzureResource" => push_unique(&mut s.resources, str_of(p, "resourceId")),
            _ => {}
        }
    }
    for a in alerts {
        push_unique(&mut s.own_alert_ids, a.properties.get("systemAlertId").and_then(Value::as_str).map(String::from).or(Some(a.name.clone())));
    }
    s
}

pub struct Enricher {
    pub sentinel: SentinelClient,
    pub workspace_resource_id: String,
    pub query: LogsQueryClient,
    pub ingest: Arc<IngestionClient>,
    pub narrator: Option<narrative::OpenAiNarrator>,
    pub settings: EnrichSettings,
}

impl Enricher {
    pub async fn enrich(&self, target: &trigger::IncidentRef) -> Result<Enrichment, EnrichError> {
        if let Some(ws) = &target.workspace_resource_id {
            if !ws.trim_end_matches('/').eq_ignore_ascii_case(self.workspace_resource_id.trim_end_matches('/')) {
                return Err(EnrichError::WrongWorkspace(format!(
                    "the incident belongs to workspace {ws}; this bridge enriches {}",
                    self.workspace_resource_id
                )));
            }
        }
        let run_id = uuid::Uuid::new_v4().to_string();
        let incident = match self.sentinel.get_incident(&target.name).await {
            Ok(i) => i,
            Err(SentinelError::NotFound(_)) => return Err(EnrichError::NotFound(target.name.clone())),
            Err(e) => return Err(EnrichError::Sentinel(e)),
        };
        // Alerts and entities are independent reads: fetch them together. A failure degrades, never fails.
        // (The trigger carries at most 50 entities; the API returns them all.)
        let started = Instant::now();
        let (alerts, entities) = futures::future::join(self.sentinel.alerts(&incident.name), self.sentinel.entities(&incident.name)).await;
        let (alerts, alerts_run) = sentinel_read("sentinel_alerts", alerts, started);
        let (entities, entities_run) = sentinel_read("sentinel_entities", entities, started);
        let mut runs: Vec<QueryRun> = vec![alerts_run, entities_run];
        let subjects = subjects_of(&entities, &alerts);
        let (window_start, window_end, baseline_start) = self.window(&incident);
        let (signals, query_runs) = self.correlate(&subjects, window_start, window_end, baseline_start).await;
        let mut hyps = hypotheses::infer(
            &signals,
            &hypotheses::Subjects { accounts: &subjects.accounts, hosts: &subjects.hosts, resources: &subjects.resources, ips: &subjects.ips },
        );
        // "No corroborated threat" is a finding about the data read: it is only as sure as the share of the
        // correlation queries that ran (none run, nothing known).
        let ran = query_runs.iter().filter(|r| r.status == RunStatus::Ok).count();
        if let Some(lead) = hyps.first_mut().filter(|h| h.id == hypotheses::HypothesisId::NoFinding) {
            lead.confidence = (lead.confidence * ran as f64 / query_runs.len().max(1) as f64 * 100.0).round() / 100.0;
        }
        let mut narrative_text = narrative::deterministic(&hyps, &signals, &query_runs);
        runs.extend(query_runs);
        let mut narrative_source = "deterministic";
        let mut narrative_error = None;
        let mut audit: Vec<Value> = Vec::new();
        if let Some(n) = &self.narrator {
            let t = Instant::now();
            match n.rephrase(&hyps, &signals).await {
                Ok(text) => {
                    narrative_text = text;
                    narrative_source = "azure-openai";
                    audit.push(json!({"Kind": "narrative", "Name": "azure-openai", "Status": "ok", "DurationMs": ms(t), "Detail": {"findings": narrative::OpenAiNarrator::findings(&hyps, &signals)}}));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Azure OpenAI narrative failed; using the deterministic one");
                    audit.push(json!({"Kind": "narrative", "Name": "azure-openai", "Status": format!("failed: {e}"), "DurationMs": ms(t)}));
                    narrative_error = Some(e.to_string());
                }
            }
        }
        let html = comment::render(
            &comment::CommentInput { version: ENRICH_VERSION, hypotheses: &hyps, signals: &signals, queries: &runs, narrative: &narrative_text },
            self.settings.comment_budget,
        );
        let cid = comment_id(&incident.name);
        let comment_status = if self.settings.mode == Mode::Observe {
            "skipped (observe mode)".to_string()
        } else {
            match self.sentinel.put_comment(&incident.name, &cid, &html).await {
                Ok(true) => "created".into(),
                Ok(false) => "replaced".into(),
                Err(e) => {
                    tracing::error!(error = %e, incident = %incident.name, "could not comment on the incident");
                    format!("failed: {e}")
                }
            }
        };
        audit.push(json!({"Kind": "comment", "Name": cid, "Status": comment_status, "Detail": {"characters": html.chars().count()}}));
        let mut actions = Vec::new();
        if self.settings.mode == Mode::Act {
            actions = self.act(&incident.name, &hyps[0]).await;
            for a in &actions {
                audit.push(json!({"Kind": "update", "Name": "incident", "Status": a}));
            }
        }
        let lead = &hyps[0];
        let degraded = runs.iter().any(QueryRun::failed);
        let enrichment = Enrichment {
            run_id: run_id.clone(),
            incident: incident.name.clone(),
            incident_number: incident.properties.incident_number,
            mode: self.settings.mode,
            version: ENRICH_VERSION,
            leading: Leading { id: lead.id, title: lead.title, confidence: lead.confidence, band: hypotheses::band(lead.confidence), recommendation: lead.recommendation.clone(), entry_point: None },
            hypotheses: hyps.clone(),
            signals: signals.clone(),
            queries: runs.clone(),
            degraded,
            comment_id: cid,
            comment: comment_status,
            comment_html: html,
            narrative: narrative_text,
            narrative_source,
            narrative_error,
            actions,
            tables_written: false,
            window: json!({"start": format_ticks(window_start), "end": format_ticks(window_end), "baselineStart": format_ticks(baseline_start)}),
            subjects: serde_json::to_value(&subjects).unwrap_or(Value::Null),
        };
        let written = self.write_tables(&enrichment, &runs, &audit).await;
        Ok(Enrichment { tables_written: written, ..enrichment })
    }

    /// The window: from the first activity minus the look-around to the last activity plus an hour (never past
    /// now); the baseline: the configured days before the window.
    fn window(&self, incident: &Incident) -> (i64, i64, i64) {
        let now = crate::model::time::now_ticks();
        let p = &incident.properties;
        let parse = |s: &Option<String>| s.as_deref().and_then(parse_datetime_ticks);
        let first = parse(&p.first_activity_time_utc).or_else(|| parse(&p.created_time_utc)).unwrap_or(now);
        let last = parse(&p.last_activity_time_utc).unwrap_or(first).max(first);
        let look = self.settings.lookaround.as_secs() as i64 * TICKS_PER_SEC;
        let start = first - look;
        let end = (last + 3600 * TICKS_PER_SEC).min(now.max(last));
        let baseline = start - self.settings.baseline_days * 86_400 * TICKS_PER_SEC;
        (start, end, baseline)
    }

    /// The `let` statements that bind a query's parameters (public for the query checks in the tests).
    pub fn preamble(s: &Subjects, ws: i64, we: i64, bs: i64) -> String {
        let mut values: Vec<String> = Vec::new();
        values.extend(s.accounts.iter().cloned());
        values.extend(s.hosts.iter().cloned());
        values.extend(s.ips.iter().cloned());
        values.extend(s.resources.iter().cloned());
        format!(
            "let Accounts = {};\nlet Hosts = {};\nlet Ips = {};\nlet Resources = {};\nlet EntityValues = {};\nlet OwnAlertIds = {};\nlet WindowStart = {};\nlet WindowEnd = {};\nlet BaselineStart = {};\n",
            kql_strings(&s.accounts),
            kql_strings(&s.hosts),
            kql_strings(&s.ips),
            kql_strings(&s.resources),
            kql_strings(&values),
            kql_strings(&s.own_alert_ids),
            kql_datetime(ws),
            kql_datetime(we),
            kql_datetime(bs),
        )
    }

    async fn correlate(&self, s: &Subjects, ws: i64, we: i64, bs: i64) -> (Vec<Signal>, Vec<QueryRun>) {
        let preamble = Self::preamble(s, ws, we, bs);
        let skip = |name: &str| -> Option<&'static str> {
            match name {
                "compute_perf" if s.hosts.is_empty() => Some("no hosts"),
                "compute_metrics" if s.hosts.is_empty() && s.resources.is_empty() => Some("no hosts or resources"),
                "signins" | "vendor_noxys" | "vendor_apono" if s.accounts.is_empty() => Some("no accounts"),
                "control_plane" if s.accounts.is_empty() && s.resources.is_empty() => Some("no accounts or resources"),
                "vendor_trapeye" if s.ips.is_empty() => Some("no IP addresses"),
                "related_alerts" if s.accounts.is_empty() && s.hosts.is_empty() && s.ips.is_empty() && s.resources.is_empty() => Some("no entities"),
                _ => None,
            }
        };
        let runs = QUERIES.iter().map(|(name, text)| {
            let full = format!("{preamble}{text}");
            let skipped = skip(name);
            async move {
                let t = Instant::now();
                if let Some(why) = skipped {
                    return (QueryRun { name: name.to_string(), status: RunStatus::Skipped(why.to_string()), rows: 0, duration_ms: 0.0, text: full }, None);
                }
                match self.query.query(&full, None, self.settings.query_timeout).await {
                    Ok(r) => {
                        let f = r.primary();
                        let status = match &r.partial_error {
                            Some(p) => RunStatus::Failed(format!("partial results: {p}")),
                            None => RunStatus::Ok,
                        };
                        (QueryRun { name: name.to_string(), status, rows: f.rows.len(), duration_ms: ms(t), text: full }, Some(f))
                    }
                    Err(crate::azure::logs_query::QueryError::Timeout(_)) => {
                        (QueryRun { name: name.to_string(), status: RunStatus::TimedOut, rows: 0, duration_ms: ms(t), text: full }, None)
                    }
                    Err(e) => (QueryRun { name: name.to_string(), status: RunStatus::Failed(e.to_string()), rows: 0, duration_ms: ms(t), text: full }, None),
                }
            }
        });
        let results = futures::future::join_all(runs).await;
        let mut out = Vec::new();
        let mut query_runs = Vec::new();
        for (run, frame) in results {
            if let Some(f) = frame {
                out.extend(match run.name.as_str() {
                    "compute_perf" => signals::compute(&f, "Perf", "Computer", "CounterName", ws),
                    "compute_metrics" => signals::compute(&f, "AzureMetrics", "Key", "MetricName", ws),
                    "signins" => signals::signins(&f, ws),
                    "control_plane" => signals::control_plane(&f, ws),
                    "related_alerts" => signals::related_alerts(&f),
                    "vendor_noxys" => signals::vendor_noxys(&f),
                    "vendor_trapeye" => signals::vendor_trapeye(&f),
                    "vendor_apono" => signals::vendor_apono(&f),
                    _ => Vec::new(),
                });
            }
            query_runs.push(run);
        }
        // Perf and AzureMetrics can both report a CPU spike: keep the stronger, with both sets of evidence.
        let mut merged: Vec<Signal> = Vec::new();
        for s in out {
            match merged.iter_mut().find(|m| m.name == s.name) {
                Some(m) => {
                    if s.strength > m.strength {
                        m.strength = s.strength;
                        m.summary = s.summary.clone();
                    }
                    m.evidence.extend(s.evidence);
                    m.evidence.truncate(6);
                }
                None => merged.push(s),
            }
        }
        merged.sort_by(|a, b| b.strength.total_cmp(&a.strength).then_with(|| a.name.cmp(&b.name)));
        (merged, query_runs)
    }

    /// `act` mode: label the incident and raise its severity, reading it with its etag and retrying on 409.
    async fn act(&self, name: &str, lead: &Hypothesis) -> Vec<String> {
        if lead.id == HypothesisId::NoFinding || lead.confidence < self.settings.act_threshold {
            return vec![format!("no action: leading confidence {:.2} is under the threshold {:.2}", lead.confidence, self.settings.act_threshold)];
        }
        let target = match lead.id {
            HypothesisId::Cryptojacking | HypothesisId::CredentialCompromise | HypothesisId::DataExfiltration => "High",
            HypothesisId::ConfigDrift => "Medium",
            HypothesisId::BenignLoad | HypothesisId::NoFinding => "",
        };
        let rank = |s: &str| match s {
            "Informational" => 0,
            "Low" => 1,
            "Medium" => 2,
            "High" => 3,
            _ => -1,
        };
        let label = format!("sentinel-bridge:{}", lead.id);
        for attempt in 1..=4 {
            let mut incident = match self.sentinel.get_incident(name).await {
                Ok(i) => i,
                Err(e) => return vec![format!("failed: {e}")],
            };
            let mut changes = Vec::new();
            if !incident.properties.labels.iter().any(|l| l.label_name == label) {
                incident.properties.labels.push(Label { label_name: label.clone(), label_type: None });
                changes.push(format!("label {label}"));
            }
            if !target.is_empty() && rank(target) > rank(&incident.properties.severity) {
                changes.push(format!("severity {} → {target}", incident.properties.severity));
                incident.properties.severity = target.to_string();
            }
            if changes.is_empty() {
                return vec!["no change needed".into()];
            }
            match self.sentinel.put_incident(&incident).await {
                Ok(_) => return changes.into_iter().map(|c| format!("applied: {c}")).collect(),
                Err(SentinelError::Conflict(_)) if attempt < 4 => {
                    tracing::info!(incident = name, attempt, "incident changed meanwhile (409); re-reading");
                    continue;
                }
                Err(e) => return vec![format!("failed: {e}")],
            }
        }
        vec!["failed: the incident kept changing".into()]
    }

    async fn write_tables(&self, e: &Enrichment, runs: &[QueryRun], extra: &[Value]) -> bool {
        let now = format_ticks(crate::model::time::now_ticks());
        let summary = json!({
            "TimeGenerated": now, "RunId": e.run_id, "IncidentName": e.incident, "IncidentNumber": e.incident_number,
            "LeadingHypothesis": e.leading.id, "Confidence": e.leading.confidence, "Hypotheses": e.hypotheses, "Signals": e.signals,
            "Queries": e.queries, "Degraded": e.degraded, "Mode": e.mode, "Version": e.version, "CommentId": e.comment_id, "Actions": e.actions,
        });
        let mut audit = Vec::new();
        for r in runs {
            audit.push(json!({"TimeGenerated": now, "RunId": e.run_id, "IncidentName": e.incident, "Kind": "query", "Name": r.name, "Status": r.status,
                "Rows": r.rows, "DurationMs": r.duration_ms, "Detail": {"query": r.text}}));
        }
        for h in &e.hypotheses {
            audit.push(json!({"TimeGenerated": now, "RunId": e.run_id, "IncidentName": e.incident, "Kind": "inference", "Name": h.id, "Status": "ok",
                "Detail": {"confidence": h.confidence, "evidence": h.evidence, "model": "noisy-or v1"}}));
        }
        for x in extra {
            let mut row = x.clone();
            row["TimeGenerated"] = json!(now);
            row["RunId"] = json!(e.run_id);
            row["IncidentName"] = json!(e.incident);
            audit.push(row);
        }
        let build = |schema: &crate::model::schema::TableSchema, rows: Vec<Value>| -> Result<Vec<Row>, String> {
            rows.into_iter()
                .map(|mut v| {
                    if let Some(m) = v.as_object_mut() {
                        m.retain(|_, x| !x.is_null());
                    }
                    Row::new(schema, v.as_object().expect("object")).map_err(|e| e.to_string())
                })
                .collect()
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut ok = true;
        for (schema, rows) in [(tables::incident_enrichment(), vec![summary]), (tables::enrichment_audit(), audit)] {
            match build(&schema, rows) {
                Ok(rows) => {
                    let out = self.ingest.upload(&schema.stream_name(), &rows, deadline).await;
                    if !out.is_ok() {
                        ok = false;
                        tracing::error!(table = %schema.name, failures = out.failures.len(), "could not write enrichment rows");
                    }
                }
                Err(e) => {
                    ok = false;
                    tracing::error!(table = %schema.name, error = %e, "enrichment row does not fit its table");
                }
            }
        }
        ok
    }
}

/// A Sentinel read's result, recorded as a run like the queries' (empty on failure).
fn sentinel_read<T>(name: &str, result: Result<Vec<T>, SentinelError>, started: Instant) -> (Vec<T>, QueryRun) {
    let (items, status) = match result {
        Ok(items) => (items, RunStatus::Ok),
        Err(e) => (Vec::new(), RunStatus::Failed(e.to_string())),
    };
    let run = QueryRun { name: name.into(), status, rows: items.len(), duration_ms: ms(started), text: String::new() };
    (items, run)
}

fn ms(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}
