//! Stage one: the incident, its alerts and entities from Sentinel, and the window to read around it.

use std::time::Instant;

use super::{entities, trigger, EnrichError, Enricher, QueryRun, RunStatus, Window};
use crate::azure::sentinel::{Incident, SentinelError};
use crate::model::time::{parse_datetime_ticks, TICKS_PER_SEC};

/// What Sentinel told us about the incident.
pub struct Gathered {
    pub run_id: String,
    pub incident: Incident,
    pub subjects: entities::Subjects,
    pub window: Window,
    /// What the incident's own alerts and entities say ([`super::signals::triggering`]).
    pub alert_signals: Vec<super::signals::Signal>,
    /// The Sentinel reads (alerts, entities), recorded as runs like the queries'.
    pub runs: Vec<QueryRun>,
}

pub async fn gather(e: &Enricher, target: &trigger::IncidentRef) -> Result<Gathered, EnrichError> {
    if let Some(ws) = &target.workspace_resource_id {
        if !ws.trim_end_matches('/').eq_ignore_ascii_case(e.workspace_resource_id.trim_end_matches('/')) {
            return Err(EnrichError::WrongWorkspace(format!("the incident belongs to workspace {ws}; this bridge enriches {}", e.workspace_resource_id)));
        }
    }
    let run_id = uuid::Uuid::new_v4().to_string();
    let incident = match e.sentinel.get_incident(&target.name).await {
        Ok(i) => i,
        Err(SentinelError::NotFound(_)) => return Err(EnrichError::NotFound(target.name.clone())),
        Err(err) => return Err(EnrichError::Sentinel(err)),
    };
    // Alerts and entities are independent reads: fetch them together. A failure degrades, never fails.
    // (The trigger carries at most 50 entities; the API returns them all.)
    let started = Instant::now();
    let (alerts, found) = futures::future::join(e.sentinel.alerts(&incident.name), e.sentinel.entities(&incident.name)).await;
    let (alerts, alerts_run) = sentinel_read("sentinel_alerts", alerts, started);
    let (found, entities_run) = sentinel_read("sentinel_entities", found, started);
    let subjects = entities::subjects_of(&found, &alerts);
    let alert_signals = super::signals::triggering::own_alerts(&alerts, &found);
    let window = window(e, &incident);
    Ok(Gathered { run_id, incident, subjects, window, alert_signals, runs: vec![alerts_run, entities_run] })
}

/// The window: from the first activity minus the look-around to the last activity plus an hour (never past
/// now); the baseline: the configured days before the window.
fn window(e: &Enricher, incident: &Incident) -> Window {
    let now = crate::model::time::now_ticks();
    let p = &incident.properties;
    let parse = |s: &Option<String>| s.as_deref().and_then(parse_datetime_ticks);
    let first = parse(&p.first_activity_time_utc).or_else(|| parse(&p.created_time_utc)).unwrap_or(now);
    let last = parse(&p.last_activity_time_utc).unwrap_or(first).max(first);
    let look = e.settings.lookaround.as_secs() as i64 * TICKS_PER_SEC;
    let start = first - look;
    let end = (last + 3600 * TICKS_PER_SEC).min(now.max(last));
    let baseline_start = start - e.settings.baseline_days * 86_400 * TICKS_PER_SEC;
    Window { start, end, baseline_start }
}

/// A Sentinel read's result, recorded as a run like the queries' (empty on failure).
fn sentinel_read<T>(name: &str, result: Result<Vec<T>, SentinelError>, started: Instant) -> (Vec<T>, QueryRun) {
    let (items, status) = match result {
        Ok(items) => (items, RunStatus::Ok),
        Err(e) => (Vec::new(), RunStatus::Failed(e.to_string())),
    };
    let run = QueryRun { name: name.into(), status, rows: items.len(), duration_ms: super::ms(started), text: String::new() };
    (items, run)
}
