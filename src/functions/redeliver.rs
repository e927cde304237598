//! `POST /redeliver`: the queue-triggered `redeliver` function (contract §5). The host's envelope is read into a
//! [`QueueInvocation`]; its message is a spilled batch, sent again. A 2xx tells the host the message is done;
//! anything else makes it retry the message later and, after `maxDequeueCount`, move it to `<queue>-poison`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::delivery::spill::{QueueSpill, RedeliverError, Redelivery, SpillBackend};
use crate::functions::invocation::{answer, QueueInvocation};
use crate::functions::state::AppState;

/// The spill queue and the host's invocation of one of its triggers (`function` names it in the log), or the
/// status and log line of the answer that says why there is none.
fn queue_invocation(state: &AppState, body: &[u8], function: &str) -> Result<(Arc<QueueSpill>, QueueInvocation), (StatusCode, String)> {
    let Some(SpillBackend::Queue(queue)) = state.spill.clone() else {
        return Err((StatusCode::SERVICE_UNAVAILABLE, format!("{function}: SPILL is not azure-queue on this instance")));
    };
    let invocation = QueueInvocation::parse(body, "item").map_err(|e| (StatusCode::BAD_REQUEST, format!("{function}: {e}")))?;
    Ok((queue, invocation))
}

pub async fn redeliver(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let (queue, invocation) = match queue_invocation(&state, &body, "redeliver") {
        Ok(x) => x,
        Err((status, log)) => return answer(status, log),
    };
    // As long as a sender would wait: a destination still down hands the message back to the host promptly.
    let deadline = std::time::Instant::now() + state.deadline;
    match queue.redeliver(&invocation.message, &state.ingest, &state.sekoia, deadline).await {
        Ok(Redelivery::Done(n)) => answer(StatusCode::OK, format!("redelivered {n} spilled events")),
        // Done with this message: the batch is back on the queue as a new message that never expires, so the
        // host's dequeues (and its poison queue) are never spent on an outage.
        Ok(Redelivery::Deferred { attempt, after, why }) => {
            tracing::warn!(attempt, after_secs = after.as_secs(), error = %why, "redelivery failed; the batch is back on the queue");
            answer(StatusCode::OK, format!("redelivery attempt {attempt} failed ({why}); the batch is back on the queue, visible in {} s", after.as_secs()))
        }
        // Refused and kept aside at once (a dead letter, a `fail` in doctor and health); the host deletes it.
        Ok(Redelivery::SetAside { blob, why }) => {
            tracing::error!(blob = %blob, reason = %why, "a spill message without the spill's seal was set aside, not ingested");
            answer(StatusCode::OK, format!("set aside as the dead letter {blob}: {why}"))
        }
        Err(e @ (RedeliverError::Unreadable(_) | RedeliverError::Forged(_))) => {
            tracing::error!(error = %e, "unreadable spill message; the host will retry it and then move it to the poison queue");
            answer(StatusCode::BAD_REQUEST, format!("redeliver: {e}"))
        }
        Err(RedeliverError::Failed(e)) => {
            tracing::warn!(error = %e, dequeue_count = ?invocation.dequeue_count, "redelivery failed; the host will retry the message");
            answer(StatusCode::SERVICE_UNAVAILABLE, format!("redeliver: {e}"))
        }
    }
}

/// `POST /deadletter`: the queue-triggered `deadletter` function on `<queue>-poison`. A message the host moved
/// there would expire with the host's 7-day TTL: it is kept at once in a dead-letter blob with no expiry, and
/// the host deletes it from the poison queue on the 2xx.
pub async fn deadletter(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let (queue, invocation) = match queue_invocation(&state, &body, "deadletter") {
        Ok(x) => x,
        Err((status, log)) => return answer(status, log),
    };
    match queue.bury(&invocation.message, invocation.dequeue_count).await {
        Ok(blob) => answer(StatusCode::OK, format!("kept as the dead letter {blob}")),
        // Not kept: the host retries the poison message (it stays until it is).
        Err(e) => answer(StatusCode::SERVICE_UNAVAILABLE, format!("deadletter: {e}")),
    }
}
