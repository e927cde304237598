//! `POST /redeliver`: the queue-triggered `redeliver` function, as the Functions host invokes a custom handler
//! for a non-HTTP trigger (contract §5): `{"Data": {"item": …}, "Metadata": {…}}`, where a string message arrives
//! JSON-encoded once more (`"\"…\""`). A 2xx tells the host the message is done; anything else makes it retry
//! the message later and, after `maxDequeueCount`, move it to `<queue>-poison`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::spill::{RedeliverError, SpillBackend};

fn answer(status: StatusCode, log: String) -> Response {
    (status, Json(json!({"Outputs": {}, "Logs": [log], "ReturnValue": null}))).into_response()
}

/// The message text from the trigger's `item`: a double-encoded string, a plain string, or already JSON.
pub fn message_text(item: &Value) -> Option<String> {
    match item {
        Value::String(s) => Some(serde_json::from_str::<String>(s).unwrap_or_else(|_| s.clone())),
        Value::Object(_) => Some(item.to_string()),
        _ => None,
    }
}

pub async fn redeliver(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let Some(SpillBackend::Queue(queue)) = state.spill.clone() else {
        return answer(StatusCode::SERVICE_UNAVAILABLE, "redeliver: SPILL is not azure-queue on this instance".into());
    };
    let invocation: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return answer(StatusCode::BAD_REQUEST, format!("redeliver: the invocation is not JSON: {e}")),
    };
    let Some(text) = invocation.get("Data").and_then(|d| d.get("item")).and_then(message_text) else {
        return answer(StatusCode::BAD_REQUEST, "redeliver: no Data.item in the invocation".into());
    };
    let dequeue = invocation["Metadata"]["DequeueCount"].as_str().map(String::from).or_else(|| invocation["Metadata"]["DequeueCount"].as_u64().map(|n| n.to_string())).unwrap_or_default();
    // As long as a sender would wait: a destination still down hands the message back to the host promptly.
    let deadline = std::time::Instant::now() + state.deadline;
    match queue.redeliver(&text, &state.ingest, &state.sekoia, deadline).await {
        Ok(n) => answer(StatusCode::OK, format!("redelivered {n} spilled events")),
        Err(RedeliverError::Unreadable(e)) => {
            tracing::error!(error = %e, "unreadable spill message; the host will retry it and then move it to the poison queue");
            answer(StatusCode::BAD_REQUEST, format!("redeliver: {e}"))
        }
        Err(RedeliverError::Failed(e)) => {
            tracing::warn!(error = %e, dequeue_count = %dequeue, "redelivery failed; the host will retry the message");
            answer(StatusCode::SERVICE_UNAVAILABLE, format!("redeliver: {e}"))
        }
    }
}
