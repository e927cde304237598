//! Incident enrichment: when an incident fires, gather its alerts and entities from Sentinel, correlate the
//! surrounding Azure Monitor telemetry through the Log Analytics Query API, infer evidence-backed hypotheses,
//! comment on the incident, and write the findings and an audit trail to custom tables.
//!
//! [`Enricher::enrich`] reads as its stages, each in its own file; the crate's map ([`crate`], "Layout")
//! draws where they sit in the flow:
//! - [`gather`]: the incident, its alerts and entities from Sentinel, and the [`Window`];
//! - [`correlate`]: the names the entities go by ([`entities`]), then the [`queries`] concurrently, each read
//!   into [`signals`] through its typed [`rows`]; a failure degrades the result, never fails it;
//! - [`impact`]: what the incident's assets are worth (the High Value Assets watchlist, their tags through
//!   Resource Graph, their health through Resource Health), which sets `act` mode's priority;
//! - [`infer`]: the [`hypotheses`] (the model in [`weights`]), the kill chain, and what limits them;
//! - [`publish`]: the [`narrative`], the [`comment`], `act` mode's [`outcome`]s, and the [`tables`].

pub mod comment;
pub mod correlate;
pub mod entities;
pub mod gather;
pub mod hypotheses;
pub mod impact;
pub mod infer;
pub mod narrative;
pub mod outcome;
pub mod publish;
pub mod queries;
pub mod rows;
pub mod signals;
pub mod tables;
pub mod trigger;
pub mod weights;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::azure::logs_ingestion::IngestionClient;
use crate::azure::logs_query::LogsQueryClient;
use crate::azure::resources::ResourcesClient;
use crate::azure::sentinel::{SentinelClient, SentinelError};
use crate::model::time::format_ticks;
use hypotheses::{Hypothesis, HypothesisId};
pub use outcome::{ActionOutcome, CommentOutcome, Severity};
pub use queries::{kql_datetime, kql_strings, preamble, QueryName, HIGH_VALUE_ASSETS, QUERIES, RESOLVE};
use signals::Signal;

/// Bumped when the comment or the model changes; part of the comment id, so a new version adds its own comment.
pub const ENRICH_VERSION: &str = "v2";

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
    pub comment: CommentOutcome,
    pub comment_html: String,
    pub narrative: String,
    pub narrative_source: &'static str,
    /// Why the model's narrative is not used, when one was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub narrative_error: Option<String>,
    pub actions: Vec<ActionOutcome>,
    pub tables_written: bool,
    pub window: Window,
    pub subjects: serde_json::Value,
    /// The names each entity matched in the telemetry, and the entities that matched nothing.
    pub resolution: entities::Resolution,
    /// What limits the findings: thin baselines, capped confidences, history too short to score.
    pub notes: Vec<String>,
    /// What the incident's assets are worth: `{"rating", "assets", "gaps"}` ([`impact`]).
    pub business_impact: serde_json::Value,
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

pub use entities::Subjects;

/// The time an enrichment reads: the window around the incident's activity, and the baseline before it, in
/// ticks. Serialised as the result has always shown it (`start`, `end`, `baselineStart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub end: i64,
    pub baseline_start: i64,
}

impl Serialize for Window {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut w = s.serialize_struct("Window", 3)?;
        w.serialize_field("start", &format_ticks(self.start))?;
        w.serialize_field("end", &format_ticks(self.end))?;
        w.serialize_field("baselineStart", &format_ticks(self.baseline_start))?;
        w.end()
    }
}

pub struct Enricher {
    pub sentinel: SentinelClient,
    /// Resource Graph and Resource Health, for business impact.
    pub resources: ResourcesClient,
    pub workspace_resource_id: String,
    pub query: LogsQueryClient,
    pub ingest: Arc<IngestionClient>,
    pub narrator: Option<narrative::OpenAiNarrator>,
    pub settings: EnrichSettings,
}

impl Enricher {
    /// Enriches one incident: its five stages in order.
    pub async fn enrich(&self, target: &trigger::IncidentRef) -> Result<Enrichment, EnrichError> {
        let mut gathered = gather::gather(self, target).await?;
        let from_alerts = std::mem::take(&mut gathered.alert_signals);
        let correlation = correlate::correlate(self, &gathered.subjects, &gathered.window, from_alerts).await;
        let impact = impact::assess(self, &correlation.names, &gathered.subjects, &gathered.window).await;
        let inferred = infer::infer(&self.settings, &gathered.subjects, &correlation);
        Ok(publish::publish(self, gathered, correlation, inferred, impact).await)
    }
}

fn ms(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}
