//! `GET /api/health`: what an operator needs to see at a glance: the backend, each source (its auth mode,
//! whether it accepts requests, its tables and destinations), the counters, and the spill. Never a secret or
//! a payload.

use std::sync::Arc;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::functions::state::AppState;

pub async fn health(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let sources: Vec<_> = state
        .catalog
        .sources()
        .map(|s| {
            let v = &state.verifiers[&s.name];
            json!({
                "name": s.name,
                "auth": s.auth.mode.to_string(),
                "accepting": v.accepts_requests(),
                "tables": s.tables.iter().map(|t| t.schema.name.clone()).collect::<Vec<_>>(),
                "destinations": s.destinations.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let spill = match &state.spill {
        Some(s) => s.status().await,
        None => json!("off"),
    };
    Json(
        json!({"status": "ok", "backend": state.backend, "sources": sources, "counts": state.metrics.snapshot(), "spill": spill, "replayGuard": state.replay.store_name(), "doctor": state.doctor.summary()}),
    )
}
