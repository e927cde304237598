//! Incident enrichment: when an incident fires, gather its alerts and entities from Sentinel, correlate the
//! surrounding Azure Monitor telemetry through the Log Analytics Query API, infer evidence-backed hypotheses,
//! comment on the incident, and write the findings and an audit trail to custom tables.
//!
//! The path, in order: [`trigger`] (find the incident in the playbook's body) → gather (incident, alerts,
//! entities; the window) → [`entities`] (every name each entity goes by, resolved against the telemetry by
//! `queries/resolve_entities.kql`) → correlate (the other `.kql` files in `queries/`, run concurrently, each
//! with its own timeout; a failure degrades the result, never fails it) → [`signals`] → [`hypotheses`] (the
//! model fitted in [`weights`] on the labelled suite of [`scenarios`], measured by [`evaluation`]) → outputs
//! ([`comment`], the tables in [`tables`], and in `act` mode labels and severity).

pub mod comment;
pub mod entities;
pub mod hypotheses;
pub mod narrative;
pub mod signals;
pub mod tables;
pub mod trigger;
pub mod weights;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};

use crate::azure::logs_ingestion::IngestionClient;
use crate::azure::logs_query::LogsQueryClient;
use crate::azure::sentinel::{Incident, Label, SentinelClient, SentinelError};
use crate::model::schema::Row;
use crate::model::time::{format_ticks, parse_datetime_ticks, TICKS_PER_SEC};
use hypotheses::{Hypothesis, HypothesisId};
use signals::Signal;

/// Bumped when the comment or the model changes; part of the comment id, so a new version adds its own comment.
pub const ENRICH_VERSION: &str = "v2";

/// The query that resolves the entities' names, run first.
pub const RESOLVE_QUERY: (&str, &str) = ("resolve_entities", include_str!("../../queries/resolve_entities.kql"));

/// The correlation queries, run concurrently once the names are resolved, shipped as files.
pub const QUERIES: &[(&str, &str)] = &[
    ("compute_perf", include_str!("../../queries/compute_perf.kql")),
    ("compute_metrics", include_str!("../../queries/compute_metrics.kql")),
    ("signins", include_str!("../../queries/signins.kql")),
    ("signin_sources", include_str!("../../queries/signin_sources.kql")),
    ("sp_signins", include_str!("../../queries/sp_signins.kql")),
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
            baseline_days: 30,
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
    /// The names each entity matched in the telemetry, and the entities that matched nothing.
    pub resolution: entities::Resolution,
    /// What limits the findings: thin baselines, capped confidences, history too short to score.
    pub notes: Vec<String>,
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

/// Whether enrichment runs here, and if not, why.
#[derive(Clone)]
pub enum EnrichmentState {
    Ready(Arc<Enricher>),
    /// Not configured: what is missing, in a sentence for the caller.
    Off(&'static str),
}

impl EnrichmentState {
    pub fn ready(&self) -> Option<&Arc<Enricher>> {
        match self {
            EnrichmentState::Ready(e) => Some(e),
            EnrichmentState::Off(_) => None,
        }
    }
}

/// The deterministic comment id for an incident and enrichment version: a re-run replaces its comment.
pub fn comment_id(incident: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, format!("sentinel-bridge:enrichment:{}:{ENRICH_VERSION}", incident.to_ascii_lowercase()).as_bytes())
        .to_string()
}

/// A KQL `dynamic([...])` literal of strings: values are JSON-escaped, never spliced as KQL.
pub fn kql_strings(values: &[String]) -> String {
    format!("dynamic({})", serde_json::to_string(values).expect("strings serialise"))
}

pub fn kql_datetime(ticks: i64) -> String {
    format!("datetime({})", format_ticks(ticks))
}

pub use entities::Subjects;

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
        let subjects = entities::subjects_of(&entities, &alerts);
        let (window_start, window_end, baseline_start) = self.window(&incident);
        let c = self.correlate(&subjects, window_start, window_end, baseline_start).await;
        let (signals, query_runs) = (c.signals, c.runs);
        let inference = hypotheses::infer(
            &signals,
            &hypotheses::Subjects { accounts: &subjects.accounts, hosts: &subjects.hosts, resources: &subjects.resources, ips: &subjects.ips },
            hypotheses::Model::fitted(),
            // A thin baseline never reaches the act threshold.
            (self.settings.act_threshold - 0.05).max(0.0),
        );
        let mut hyps = inference.hypotheses;
        // "No corroborated threat" is a finding about the data read: it is only as sure as the share of the
        // correlation queries that ran, and of the entities that matched anything (none, nothing known).
        let ran = query_runs.iter().filter(|r| r.status == RunStatus::Ok).count();
        let given = c.entity_count.max(1);
        let matched_share = if c.entity_count == 0 { 1.0 } else { (given - c.resolution.unmatched.len().min(given)) as f64 / given as f64 };
        if let Some(lead) = hyps.first_mut().filter(|h| h.id == hypotheses::HypothesisId::NoFinding) {
            lead.confidence = (lead.confidence * ran as f64 / query_runs.len().max(1) as f64 * matched_share * 100.0).round() / 100.0;
        }
        let entry_point = inference.entry_point.filter(|_| hyps[0].id.is_impact());
        let mut notes: Vec<String> = c.notes;
        notes.extend(hyps.iter().filter_map(|h| h.capped.as_ref().map(|why| format!("{}: {why}", h.title))));
        // A thin baseline is said even when the confidence stayed under the cap on its own.
        let cap = (self.settings.act_threshold - 0.05).max(0.0);
        for s in signals.iter().filter(|s| s.thin_baseline_days.is_some()) {
            let days = s.thin_baseline_days.unwrap_or(0.0);
            notes.push(format!("{}: only {days:.1} day(s) of history, under a week; what rests on it is capped at {cap:.2}", s.name));
        }
        let mut narrative_text = narrative::deterministic(&narrative::Findings {
            hypotheses: &hyps,
            signals: &signals,
            correlation: &query_runs,
            entry_point,
            unmatched: &c.resolution.unmatched,
            entity_count: c.entity_count,
        });
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
            &comment::CommentInput {
                version: ENRICH_VERSION,
                hypotheses: &hyps,
                signals: &signals,
                queries: &runs,
                narrative: &narrative_text,
                entry_point,
                names: &entities::describe(&c.resolution, &subjects),
                unmatched: &c.resolution.unmatched,
                notes: &notes,
            },
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
            leading: Leading {
                id: lead.id,
                title: lead.title,
                confidence: lead.confidence,
                band: hypotheses::band(lead.confidence),
                recommendation: lead.recommendation.clone(),
                entry_point,
            },
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
            resolution: c.resolution.clone(),
            notes,
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

    /// The `let` statements that bind a query's parameters (public for the query checks in the tests). Every
    /// value is lower-cased, JSON-escaped and bound as data: never spliced into the query's text.
    pub fn preamble(n: &entities::Names, own_alert_ids: &[String], ws: i64, we: i64, bs: i64) -> String {
        let v = |set: &std::collections::BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>();
        let mut values: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        for set in [&n.accounts, &n.account_ids, &n.host_names, &n.host_shorts, &n.computers, &n.resources, &n.ips] {
            values.extend(set.iter().cloned());
        }
        format!(
            "let Accounts = {};\nlet GuestKeys = {};\nlet AccountIds = {};\nlet HostNames = {};\nlet HostShorts = {};\nlet Computers = {};\nlet Resources = {};\nlet Ips = {};\nlet EntityValues = {};\nlet OwnAlertIds = {};\nlet WindowStart = {};\nlet WindowEnd = {};\nlet BaselineStart = {};\n",
            kql_strings(&v(&n.accounts)),
            kql_strings(&v(&n.guest_keys)),
            kql_strings(&v(&n.account_ids)),
            kql_strings(&v(&n.host_names)),
            kql_strings(&v(&n.host_shorts)),
            kql_strings(&v(&n.computers)),
            kql_strings(&v(&n.resources)),
            kql_strings(&v(&n.ips)),
            kql_strings(&v(&values)),
            kql_strings(own_alert_ids),
            kql_datetime(ws),
            kql_datetime(we),
            kql_datetime(bs),
        )
    }

    /// Runs one query, recording how it went.
    async fn run_query(&self, name: &str, full: String, skipped: Option<&str>) -> (QueryRun, Option<crate::model::frame::Frame>) {
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

    async fn correlate(&self, s: &Subjects, ws: i64, we: i64, bs: i64) -> Correlation {
        let mut names = entities::Names::of(s);
        // First, every name the entities go by; then everything else, with those names.
        let (resolve_name, resolve_text) = RESOLVE_QUERY;
        let resolve_skip = s.is_empty().then_some("no entities");
        let (resolve_run, frame) =
            self.run_query(resolve_name, format!("{}{resolve_text}", Self::preamble(&names, &s.own_alert_ids, ws, we, bs)), resolve_skip).await;
        let resolution = if resolve_run.status == RunStatus::Ok { entities::resolve(s, &mut names, frame.as_ref()) } else { entities::Resolution::default() };
        let preamble = Self::preamble(&names, &s.own_alert_ids, ws, we, bs);
        let no_accounts = names.accounts.is_empty() && names.account_ids.is_empty();
        let skip = |name: &str| -> Option<&'static str> {
            match name {
                "compute_perf" if names.computers.is_empty() && names.resources.is_empty() => Some("no hosts"),
                "compute_metrics" if names.resources.is_empty() => Some("no resources"),
                "signins" | "signin_sources" | "vendor_noxys" | "vendor_apono" if no_accounts => Some("no accounts"),
                "sp_signins" if names.account_ids.is_empty() => Some("no object or app ids"),
                "control_plane" if no_accounts && names.resources.is_empty() => Some("no accounts or resources"),
                "vendor_trapeye" if names.ips.is_empty() => Some("no IP addresses"),
                "related_alerts" if s.is_empty() => Some("no entities"),
                _ => None,
            }
        };
        let results = futures::future::join_all(QUERIES.iter().map(|(name, text)| self.run_query(name, format!("{preamble}{text}"), skip(name)))).await;
        let frame_of = |n: &str| results.iter().find(|(r, _)| r.name == n).and_then(|(_, f)| f.as_ref());
        let mut out: Vec<Signal> = Vec::new();
        let mut notes: Vec<String> = Vec::new();
        for (name, table, metric) in [("compute_perf", "Perf", "CounterName"), ("compute_metrics", "AzureMetrics", "MetricName")] {
            if let Some(f) = frame_of(name) {
                let scored = signals::compute::compute(f, table, metric, ws);
                out.extend(scored.signals);
                notes.extend(scored.notes);
            }
        }
        // Identities first: what they used in their baseline tells the control plane what is new.
        let mut known = signals::identity::KnownIps::default();
        let org = frame_of("signin_sources").map(signals::identity::org_sources).unwrap_or_default();
        if let Some(f) = frame_of("signins") {
            out.extend(signals::identity::signins(f, ws, &org, &mut known));
        }
        if let Some(f) = frame_of("sp_signins") {
            out.extend(signals::identity::service_principals(f, ws, &mut known));
        }
        if let Some(f) = frame_of("control_plane") {
            out.extend(signals::control_plane::control_plane(f, ws, &known));
        }
        for (name, parse) in [
            ("related_alerts", signals::related_alerts as fn(&crate::model::frame::Frame) -> Vec<Signal>),
            ("vendor_noxys", signals::vendor_noxys),
            ("vendor_trapeye", signals::vendor_trapeye),
            ("vendor_apono", signals::vendor_apono),
        ] {
            if let Some(f) = frame_of(name) {
                out.extend(parse(f));
            }
        }
        let mut runs = vec![resolve_run];
        runs.extend(results.into_iter().map(|(r, _)| r));
        let entity_count = s.accounts.len() + s.hosts.len() + s.resources.len() + s.account_ids.len();
        Correlation { signals: signals::merge(out), runs, resolution, notes, entity_count }
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
                "Detail": {"confidence": h.confidence, "evidence": h.evidence, "capped": h.capped, "model": format!("logistic, fitted on suite seeds {}..{}", weights::FIT_SEEDS.0, weights::FIT_SEEDS.1)}}));
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

/// What correlation read and found.
struct Correlation {
    signals: Vec<Signal>,
    runs: Vec<QueryRun>,
    resolution: entities::Resolution,
    /// What limits the findings (entities whose history is too short to score).
    notes: Vec<String>,
    /// Accounts, hosts, resources and ids the incident named (IPs are not resolved).
    entity_count: usize,
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
