//! Stage two: resolve the entities' names against the telemetry, then run every correlation query with them
//! (concurrently, each with its own timeout) and read each answer into signals in its reader's phase.

use std::time::Instant;

use super::entities::{self, Subjects};
use super::queries::{preamble, CorrelationQuery, Phase, Reading, QUERIES, RESOLVE};
use super::signals::{self, Signal};
use super::{Enricher, QueryRun, RunStatus, Window};
use crate::azure::logs_query::QueryError;
use crate::model::frame::Frame;

/// What correlation read and found.
pub struct Correlation {
    pub signals: Vec<Signal>,
    /// The resolution query's run first, then each correlation query's.
    pub runs: Vec<QueryRun>,
    pub resolution: entities::Resolution,
    /// What limits the findings (entities whose history is too short to score).
    pub notes: Vec<String>,
    /// Accounts, hosts, resources and ids the incident named (IPs are not resolved).
    pub entity_count: usize,
    /// Every name the entities go by, as resolution widened them (business impact reads the assets by these).
    pub names: entities::Names,
}

/// `from_alerts`: what the incident's own alerts say, weighed with what the telemetry says.
pub async fn correlate(e: &Enricher, s: &Subjects, w: &Window, from_alerts: Vec<Signal>) -> Correlation {
    let mut names = entities::Names::of(s);
    // First, every name the entities go by; then everything else, with those names.
    let (mut resolve_run, frame) =
        run_query(e, &RESOLVE, format!("{}{}", preamble(&names, &s.own_alert_ids, w), RESOLVE.text), (RESOLVE.skip)(&names, s)).await;
    let resolution = match frame.as_ref().map(super::rows::read::<super::rows::ResolvedName>) {
        Some(Ok(found)) if resolve_run.status == RunStatus::Ok => entities::resolve(s, &mut names, Some(&found)),
        Some(Err(why)) => {
            resolve_run.status = RunStatus::Failed(format!("unreadable rows: {why}"));
            entities::Resolution::default()
        }
        _ => entities::Resolution::default(),
    };
    let bound = preamble(&names, &s.own_alert_ids, w);
    let mut results = futures::future::join_all(QUERIES.iter().map(|q| run_query(e, q, format!("{bound}{}", q.text), (q.skip)(&names, s)))).await;
    let mut reading = Reading { window_start: w.start, signals: from_alerts, ..Reading::default() };
    for phase in [Phase::Organisation, Phase::Identities, Phase::Rest] {
        for (q, (run, frame)) in QUERIES.iter().zip(results.iter_mut()) {
            if q.phase != phase {
                continue;
            }
            if let Some(f) = frame {
                if let Err(why) = (q.read)(f, &mut reading) {
                    tracing::error!(query = %q.name, error = %why, "a query's rows do not fit its reader");
                    run.status = RunStatus::Failed(format!("unreadable rows: {why}"));
                }
            }
        }
    }
    let mut runs = vec![resolve_run];
    runs.extend(results.into_iter().map(|(r, _)| r));
    let entity_count = s.accounts.len() + s.hosts.len() + s.resources.len() + s.account_ids.len();
    Correlation { signals: signals::merge(reading.signals), runs, resolution, notes: reading.notes, entity_count, names }
}

/// Runs one query, recording how it went.
pub(super) async fn run_query(e: &Enricher, q: &CorrelationQuery, full: String, skipped: Option<&str>) -> (QueryRun, Option<Frame>) {
    let t = Instant::now();
    let name = q.name.to_string();
    if let Some(why) = skipped {
        return (QueryRun { name, status: RunStatus::Skipped(why.to_string()), rows: 0, duration_ms: 0.0, text: full }, None);
    }
    match e.query.query(&full, None, e.settings.query_timeout).await {
        Ok(r) => {
            let f = r.primary();
            let status = match &r.partial_error {
                Some(p) => RunStatus::Failed(format!("partial results: {p}")),
                None => RunStatus::Ok,
            };
            (QueryRun { name, status, rows: f.rows.len(), duration_ms: super::ms(t), text: full }, Some(f))
        }
        Err(QueryError::Timeout(_)) => (QueryRun { name, status: RunStatus::TimedOut, rows: 0, duration_ms: super::ms(t), text: full }, None),
        Err(err) => (QueryRun { name, status: RunStatus::Failed(err.to_string()), rows: 0, duration_ms: super::ms(t), text: full }, None),
    }
}
