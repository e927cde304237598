//! The enrichment playbook's asynchronous pattern: a Logic App HTTP action gives up on a call after 120 s and
//! its retry policy sends it again, so an enrichment that takes longer (a throttled comment waits out
//! Sentinel's window) must not keep the call open. `/api/enrich` answers within [`SYNC_WAIT`] when it can;
//! otherwise `202 Accepted` with `Location: …/api/enrich/runs/{id}` and `Retry-After`, and the HTTP action
//! polls that URL (Logic Apps' asynchronous request-response pattern, on by default for the HTTP action) until
//! it answers something other than 202: the enrichment (200) or why there is none.
//!
//! Any instance may take the poll, so a run's state is kept where every instance reads it: a blob per run in
//! the function's storage account (`sentinel-bridge-enrich-runs`, removed after a day by the account's
//! lifecycle policy), or this process's memory when there is no account (local use, one instance). The run's
//! id is a random UUID: the poll URL is a capability, as the playbook holds it and nobody else learns it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::azure::storage::{StorageClient, StorageError};
use crate::functions::error::AppError;
use crate::functions::state::AppState;

/// The blob container of run states.
pub const RUNS_CONTAINER: &str = "sentinel-bridge-enrich-runs";

/// How long a poll is told to wait before asking again.
pub const POLL_AFTER_SECS: u64 = 10;

/// A run still "running" this long after it started was lost with its instance (the longest run is the
/// admission wait, the queries and a comment waiting out Sentinel's 5-minute throttling window).
pub const LOST_AFTER: Duration = Duration::from_secs(15 * 60);

/// A run as a poll finds it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum RunState {
    /// Under way since this Unix time.
    Running { started: i64 },
    /// Finished: the answer the call would have had.
    Done { status: u16, body: serde_json::Value, retry_after_secs: Option<u64> },
}

/// Where run states are kept.
pub enum RunStore {
    Memory(Mutex<HashMap<String, (i64, RunState)>>),
    Blob { client: Arc<StorageClient>, container: String },
}

impl RunStore {
    pub fn memory() -> RunStore {
        RunStore::Memory(Mutex::new(HashMap::new()))
    }

    pub async fn put(&self, id: &str, state: &RunState) -> Result<(), StorageError> {
        match self {
            RunStore::Memory(m) => {
                let now = now();
                let mut runs = m.lock().unwrap_or_else(|p| p.into_inner());
                // Bounded: runs older than a day are forgotten, as the blob policy forgets them.
                if runs.len() > 1000 {
                    runs.retain(|_, (at, _)| now - *at < 86_400);
                }
                runs.insert(id.to_string(), (now, state.clone()));
                Ok(())
            }
            RunStore::Blob { client, container } => {
                // Serialising our own type cannot fail.
                client.put_blob(container, &format!("{id}.json"), serde_json::to_vec(state).unwrap_or_default()).await
            }
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<RunState>, StorageError> {
        match self {
            RunStore::Memory(m) => Ok(m.lock().unwrap_or_else(|p| p.into_inner()).get(id).map(|(_, s)| s.clone())),
            RunStore::Blob { client, container } => match client.get_blob_tagged(container, &format!("{id}.json")).await? {
                None => Ok(None),
                Some((text, _)) => serde_json::from_str(&text).map(Some).map_err(|e| StorageError::Config(format!("run {id}: unreadable state: {e}"))),
            },
        }
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// How long `/api/enrich` waits for the enrichment before it answers 202 and lets the playbook poll: well
/// inside the HTTP action's 120 s.
pub const SYNC_WAIT: Duration = Duration::from_secs(45);

/// The answer that sends the playbook to poll `id`.
pub fn accepted(headers: &HeaderMap, under_host: bool, id: &str) -> Response {
    let location = poll_url(headers, under_host, id);
    let mut r = (StatusCode::ACCEPTED, axum::Json(serde_json::json!({"status": "running", "location": location}))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(POLL_AFTER_SECS));
    r
}

/// The absolute poll URL on the host the call came to (the Function App's own name; https under the host,
/// which serves HTTPS only). The host name is checked to be a host name, never spliced as it came.
fn poll_url(headers: &HeaderMap, under_host: bool, id: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.len() <= 255 && h.chars().all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c)))
        .unwrap_or("localhost");
    let scheme = if under_host { "https" } else { "http" };
    format!("{scheme}://{host}/api/enrich/runs/{id}")
}

/// `GET /api/enrich/runs/{id}`: the playbook's poll.
pub async fn poll(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    // Only ids we hand out (UUIDs) reach a blob name.
    let Ok(uuid) = uuid::Uuid::try_parse(&id) else {
        return AppError::NotFound("no enrichment run has that id".into()).into_response();
    };
    let id = uuid.hyphenated().to_string();
    match state.enrich_runs.get(&id).await {
        Ok(None) => AppError::NotFound("no enrichment run has that id (runs are kept for a day)".into()).into_response(),
        Ok(Some(RunState::Running { started })) if now() - started > LOST_AFTER.as_secs() as i64 => AppError::Unavailable {
            code: "EnrichmentLost",
            message: format!("the run started {} s ago and never finished (its instance stopped); send the incident again", now() - started),
            retry_after_secs: 0,
        }
        .into_response(),
        Ok(Some(RunState::Running { .. })) => accepted(&headers, state.settings.under_functions_host, &id),
        Ok(Some(RunState::Done { status, body, retry_after_secs })) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut r = (status, axum::Json(body)).into_response();
            if let Some(s) = retry_after_secs {
                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
            }
            r
        }
        Err(e) => {
            AppError::Unavailable { code: "RunStoreUnavailable", message: format!("the run's state could not be read: {e}"), retry_after_secs: POLL_AFTER_SECS }
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_poll_url_names_the_host_the_call_came_to_and_nothing_else() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("sbridge-fn-abc.azurewebsites.net"));
        assert_eq!(poll_url(&h, true, "x"), "https://sbridge-fn-abc.azurewebsites.net/api/enrich/runs/x");
        h.insert(header::HOST, HeaderValue::from_static("evil.example/steal?"));
        assert_eq!(poll_url(&h, false, "x"), "http://localhost/api/enrich/runs/x");
    }

    #[tokio::test]
    async fn a_run_is_kept_until_it_is_done() {
        let store = RunStore::memory();
        assert_eq!(store.get("a").await.unwrap(), None);
        store.put("a", &RunState::Running { started: 1 }).await.unwrap();
        assert_eq!(store.get("a").await.unwrap(), Some(RunState::Running { started: 1 }));
        let done = RunState::Done { status: 200, body: serde_json::json!({"ok": true}), retry_after_secs: None };
        store.put("a", &done).await.unwrap();
        assert_eq!(store.get("a").await.unwrap(), Some(done));
    }
}
