//! `POST /api/enrich`: the playbook's call. Finds the incident in the trigger body, enriches it, and answers
//! 200 with the enrichment as JSON so the playbook can branch on it.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::enrich::EnrichmentState;
use crate::enrich::{trigger, EnrichError};
use crate::functions::error::AppError;
use crate::functions::state::AppState;

/// Trigger bodies carry the incident, its alerts and up to 50 entities: generous, but bounded.
const MAX_TRIGGER_BYTES: usize = 8 * 1_048_576;

pub async fn enrich(State(state): State<Arc<AppState>>, body: Body) -> Response {
    match run(&state, body).await {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(code = e.code(), error = %e, "enrichment refused");
            e.into_response()
        }
    }
}

async fn run(state: &AppState, body: Body) -> Result<Response, AppError> {
    let bytes = super::read_body(body, MAX_TRIGGER_BYTES, state.http_body_timeout).await?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| AppError::InvalidJson(e.to_string()))?;
    let target = trigger::incident_from_body(&value).map_err(|e| AppError::NoIncident(e.to_string()))?;
    let enricher = match &state.enricher {
        EnrichmentState::Ready(e) => e,
        EnrichmentState::Off(why) => return Err(AppError::Unavailable { code: "EnrichmentNotConfigured", message: why.to_string(), retry_after_secs: 3600 }),
    };
    match enricher.enrich(&target).await {
        Ok(e) => {
            tracing::info!(incident = %e.incident, leading = %e.leading.id, confidence = e.leading.confidence, degraded = e.degraded, "incident enriched");
            Ok((StatusCode::OK, Json(e)).into_response())
        }
        Err(EnrichError::NotFound(name)) => Err(AppError::IncidentNotFound(format!("incident '{name}' was not found in Sentinel"))),
        Err(EnrichError::WrongWorkspace(m)) => Err(AppError::NoIncident(m)),
        Err(EnrichError::Sentinel(e)) => Err(AppError::Unavailable { code: "SentinelUnavailable", message: e.to_string(), retry_after_secs: 60 }),
    }
}
