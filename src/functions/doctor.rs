//! `GET /api/doctor` (function key): the last `doctor` report, made anew when it is older than
//! [`crate::doctor::CACHE_FOR`]; never a canary. `/api/health` shows its summary.

use std::sync::Arc;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;

use crate::functions::state::AppState;

pub async fn doctor(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let report = state.doctor.get_or_run(&state.deployment()).await;
    let mut v = serde_json::to_value(&report).unwrap_or_default();
    v["failed"] = serde_json::json!(report.failed());
    v["summary"] = serde_json::json!(report.summary());
    Json(v)
}
