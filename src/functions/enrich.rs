//! `POST /api/enrich`: the playbook's call. Finds the incident in the trigger body, enriches it, and answers
//! 200 with the enrichment as JSON so the playbook can branch on it; a run that takes longer than
//! `ENRICH_SYNC_WAIT_SECS` answers 202 with the URL the playbook polls for it ([`crate::functions::enrich_runs`]).
//!
//! The caller must send `ENRICH_KEY` in `x-enrich-key` (checked in constant time, every configured key tried).
//!
//! Under a storm of incidents, [`Admission`] keeps the work bounded: a few enrichments at a time
//! (`ENRICH_MAX_CONCURRENT`), a bounded queue behind them (`ENRICH_MAX_QUEUED`, each waiting at most
//! [`MAX_WAIT`], half the Logic App HTTP action's 120 s), and one run per incident at once; the rest hear 429
//! with Retry-After, which the playbook's retry policy honours, so no incident is dropped.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::enrich::EnrichmentState;
use crate::enrich::{trigger, EnrichError};
use crate::functions::enrich_runs::{accepted, RunState};
use crate::functions::error::AppError;
use crate::functions::state::AppState;
use crate::mapping::auth::Verifier;
use crate::mapping::{AuthConfig, AuthMode};
use crate::settings::{EnrichCaller, ENRICH_KEY_HEADER};

/// Trigger bodies carry the incident, its alerts and up to 50 entities: generous, but bounded.
const MAX_TRIGGER_BYTES: usize = 8 * 1_048_576;

/// How long a request waits for its turn: half the Logic App HTTP action's 120 s, so the playbook hears an
/// answer (429, Retry-After) before it gives up on the call.
pub const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// What the playbook is told to wait before it asks again.
const RETRY_AFTER_SECS: u64 = 30;

/// Admission control for enrichments: how many run, how many wait, and which incidents are under way.
pub struct Admission {
    running: tokio::sync::Semaphore,
    waiting: std::sync::atomic::AtomicUsize,
    max_waiting: usize,
    incidents: std::sync::Mutex<std::collections::HashSet<String>>,
    wait: std::time::Duration,
}

/// A turn: its slot and its incident are given back when it drops.
pub struct Turn<'a> {
    _slot: tokio::sync::SemaphorePermit<'a>,
    incident: String,
    admission: &'a Admission,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.admission.incidents.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.incident);
    }
}

impl Admission {
    pub fn new(max_running: usize, max_waiting: usize, wait: std::time::Duration) -> Admission {
        Admission { running: tokio::sync::Semaphore::new(max_running.max(1)), waiting: Default::default(), max_waiting, incidents: Default::default(), wait }
    }

    /// A turn for `incident`, or the 429 that tells the playbook to come back.
    pub async fn admit(&self, incident: &str) -> Result<Turn<'_>, AppError> {
        use std::sync::atomic::Ordering::SeqCst;
        let key = incident.to_ascii_lowercase();
        if !self.incidents.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone()) {
            return Err(AppError::Busy {
                code: "EnrichmentInProgress",
                message: format!("incident '{}' is being enriched; retry after it", crate::model::text::printable(incident, 128)),
                retry_after_secs: RETRY_AFTER_SECS,
            });
        }
        // From here the incident is ours: a refusal gives it back.
        let release = |e: AppError| {
            self.incidents.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
            e
        };
        let slot = match self.running.try_acquire() {
            Ok(slot) => slot,
            Err(_) => {
                if self.waiting.fetch_add(1, SeqCst) >= self.max_waiting {
                    self.waiting.fetch_sub(1, SeqCst);
                    return Err(release(busy("the enrichment queue is full")));
                }
                let waited = tokio::time::timeout(self.wait, self.running.acquire()).await;
                self.waiting.fetch_sub(1, SeqCst);
                match waited {
                    Ok(Ok(slot)) => slot,
                    _ => return Err(release(busy("no enrichment slot came free in time"))),
                }
            }
        };
        Ok(Turn { _slot: slot, incident: key, admission: self })
    }
}

fn busy(why: &str) -> AppError {
    AppError::Busy { code: "EnrichmentBusy", message: format!("{why}; retry after {RETRY_AFTER_SECS} s"), retry_after_secs: RETRY_AFTER_SECS }
}

pub async fn enrich(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    if let Err(e) = check_caller(&state.settings.enrich.caller, &headers) {
        tracing::warn!(error = %e, "an enrichment call without the enrichment key was refused");
        return e.into_response();
    }
    let target = match prepare(&state, body).await {
        Ok(t) => t,
        Err(e) => return refused(e),
    };
    // The run goes on in its own task, whatever becomes of this call: its answer is kept for the playbook's
    // poll, and this call answers it only if it comes within the wait.
    let id = uuid::Uuid::new_v4().hyphenated().to_string();
    let started = time::OffsetDateTime::now_utc().unix_timestamp();
    if let Err(e) = state.enrich_runs.put(&id, &RunState::Running { started }).await {
        return refused(AppError::Unavailable { code: "RunStoreUnavailable", message: format!("the run could not be recorded: {e}"), retry_after_secs: 30 });
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task_state = state.clone();
    let run_id = id.clone();
    tokio::spawn(async move {
        let answer = run(&task_state, &target).await;
        let done = match &answer {
            Ok(e) => RunState::Done { status: 200, body: serde_json::to_value(e).unwrap_or_default(), retry_after_secs: None },
            Err(e) => RunState::Done {
                status: e.status().as_u16(),
                body: serde_json::json!({"error": {"code": e.code(), "message": e.to_string()}}),
                retry_after_secs: e.retry_after_secs(),
            },
        };
        if let Err(e) = task_state.enrich_runs.put(&run_id, &done).await {
            tracing::error!(run = %run_id, error = %e, "the enrichment's answer could not be kept for the playbook's poll");
        }
        let _ = tx.send(answer);
    });
    match tokio::time::timeout(state.enrich_sync_wait, rx).await {
        Ok(Ok(Ok(e))) => (StatusCode::OK, Json(e)).into_response(),
        Ok(Ok(Err(e))) => refused(e),
        // Still running (or its task ended without a word): the playbook polls for it.
        _ => {
            tracing::info!(run = %id, "the enrichment goes on; the playbook polls for it");
            accepted(&headers, state.settings.under_functions_host, &id)
        }
    }
}

fn refused(e: AppError) -> Response {
    tracing::info!(code = e.code(), error = %e, "enrichment refused");
    e.into_response()
}

/// The caller holds `ENRICH_KEY` (constant-time, every configured key tried); the function is anonymous to the
/// host, so the playbook's key is ours, set by the deployment, and never read from the host at deployment time.
fn check_caller(caller: &EnrichCaller, headers: &HeaderMap) -> Result<(), AppError> {
    match caller {
        EnrichCaller::Anyone => Ok(()),
        EnrichCaller::Nobody => Err(AppError::CallerRefused("ENRICH_KEY is not set on this function app: every enrichment call is refused".into())),
        EnrichCaller::Key(secrets) => {
            let config = AuthConfig { mode: AuthMode::Header { name: ENRICH_KEY_HEADER.into() }, open: false };
            Verifier::new(config, secrets.clone()).verify(headers, &[], 0).map(drop).map_err(|e| AppError::CallerRefused(format!("{ENRICH_KEY_HEADER}: {e}")))
        }
    }
}

/// What can be told at once: the body names an incident, and enrichment is on.
async fn prepare(state: &AppState, body: Body) -> Result<trigger::IncidentRef, AppError> {
    let bytes = super::read_body(body, MAX_TRIGGER_BYTES, state.http_body_timeout).await?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| AppError::InvalidJson(e.to_string()))?;
    let target = trigger::incident_from_body(&value).map_err(|e| AppError::NoIncident(e.to_string()))?;
    enricher(state)?;
    Ok(target)
}

/// The enricher, or why enrichment is off on this instance.
fn enricher(state: &AppState) -> Result<&crate::enrich::Enricher, AppError> {
    match &state.enricher {
        EnrichmentState::Ready(e) => Ok(e),
        EnrichmentState::Off(why) => Err(AppError::Unavailable { code: "EnrichmentNotConfigured", message: why.to_string(), retry_after_secs: 3600 }),
    }
}

async fn run(state: &AppState, target: &trigger::IncidentRef) -> Result<crate::enrich::Enrichment, AppError> {
    let enricher = enricher(state)?;
    let _turn = state.admission.admit(&target.name).await?;
    match enricher.enrich(target).await {
        Ok(e) => {
            tracing::info!(incident = %e.incident, leading = %e.leading.id, confidence = e.leading.confidence, degraded = e.degraded, "incident enriched");
            Ok(e)
        }
        Err(EnrichError::NotFound(name)) => Err(AppError::IncidentNotFound(format!("incident '{name}' was not found in Sentinel"))),
        Err(EnrichError::WrongWorkspace(m)) => Err(AppError::NoIncident(m)),
        Err(EnrichError::Sentinel(e)) => Err(AppError::Unavailable { code: "SentinelUnavailable", message: e.to_string(), retry_after_secs: 60 }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<Turn<'_>, AppError>) -> &'static str {
        match r {
            Ok(_) => "admitted",
            Err(e) => e.code(),
        }
    }

    /// A few at a time, a bounded queue behind them that waits a bounded time, and one run per incident: the
    /// rest are told to come back (429), and every slot and incident is given back when its turn ends.
    #[tokio::test]
    async fn enrichments_are_admitted_a_few_at_a_time_and_once_per_incident() {
        let a = Admission::new(1, 1, std::time::Duration::from_millis(300));
        let first = a.admit("inc-A").await.unwrap();
        assert_eq!(code(a.admit("INC-a").await), "EnrichmentInProgress");
        // One waits (the queue holds one); the next finds the queue full at once.
        let (waiting, full) = tokio::join!(a.admit("inc-B"), async {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            code(a.admit("inc-C").await)
        });
        assert_eq!(full, "EnrichmentBusy");
        assert_eq!(code(waiting), "EnrichmentBusy", "no slot came free within the wait");
        drop(first);
        let b = a.admit("inc-B").await.unwrap();
        drop(b);
        assert_eq!(code(a.admit("inc-A").await), "admitted", "the incident was given back");
        let err = a.admit("x").await.err();
        assert!(err.is_none());
    }
}
