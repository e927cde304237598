//! `POST /api/webhook/{source}`: authenticate, parse, map, deliver, answer.
//!
//! The order matters: the source is looked up and the body bounded before anything else, the signature is
//! checked on the raw bytes before they are parsed, and the sender hears 202 only after every row it sent is
//! in Azure (the batcher acknowledges after the 2xx of the call that carried them).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::error::AppError;
use crate::mapping::{AuthMode, MappingContext};
use crate::replay::Claim;
use crate::batcher::DeliveryError;
use crate::ingest::IngestError;
use crate::schema::Row;
use crate::spill::SpillBatch;

/// Writes a batch to the spill; the number of events kept, or `None` when there is no spill or it failed.
async fn spill_batch(state: &AppState, batch: SpillBatch) -> Option<usize> {
    let spill = state.spill.clone()?;
    match spill.put(batch).await {
        Ok(n) => {
            tracing::warn!(events = n, "destination unavailable: events spooled for redelivery");
            Some(n)
        }
        Err(e) => {
            tracing::error!(error = %e, "could not spill events");
            None
        }
    }
}

pub async fn receive(
    State(state): State<Arc<AppState>>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(mapping) = state.catalog.get(&source).cloned() else {
        tracing::info!(source = %source.chars().take(64).collect::<String>(), "webhook for an unknown source");
        return AppError::UnknownSource(source.chars().take(64).collect()).into_response();
    };
    let stats = state.metrics.source(&mapping.name);
    stats.received.fetch_add(1, Relaxed);
    match handle(&state, &mapping, &stats, &headers, body).await {
        Ok(resp) => resp,
        Err(e) => {
            stats.reject(e.code());
            if e.status().is_server_error() {
                tracing::error!(source = %mapping.name, code = e.code(), error = %e, "webhook not delivered");
            } else {
                tracing::info!(source = %mapping.name, code = e.code(), error = %e, "webhook refused");
            }
            e.into_response()
        }
    }
}

async fn handle(
    state: &AppState,
    mapping: &crate::mapping::SourceMapping,
    stats: &crate::metrics::SourceStats,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    let limit = state.max_body_bytes;
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(AppError::BodyTooLarge { limit });
    }
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| AppError::BodyTooLarge { limit })?;

    let verifier = &state.verifiers[&mapping.name];
    let now = time::OffsetDateTime::now_utc();
    let verified = verifier.verify(headers, &bytes, now.unix_timestamp()).map_err(AppError::Unauthorized)?;
    if verified.open {
        tracing::warn!(source = %mapping.name, "accepting an unauthenticated request: the source is open and has no secret");
    }

    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
        let essence = ct.split(';').next().unwrap_or_default().trim();
        let is_json = essence == "application/json" || essence == "text/json" || essence.ends_with("+json");
        if !is_json {
            return Err(AppError::UnsupportedMediaType(essence.chars().take(100).collect()));
        }
    }
    let body: Value = serde_json::from_slice(&bytes).map_err(|e| AppError::InvalidJson(e.to_string()))?;
    let mapped = mapping.map_body(&body, &MappingContext { received: now }).map_err(AppError::InvalidEvent)?;

    // Standard Webhooks: a message already ingested is acknowledged, not ingested twice.
    let claim = match (&verified.message_id, verifier.mode()) {
        (Some(id), AuthMode::StandardWebhooks { .. }) => match state.replay.claim(&mapping.name, id).await {
            Claim::Duplicate => {
                stats.duplicates.fetch_add(1, Relaxed);
                return Ok((StatusCode::ACCEPTED, Json(json!({"accepted": 0, "duplicate": true})) ).into_response());
            }
            Claim::Owner(ticket) => Some(ticket),
        },
        _ => None,
    };

    let mut per_table: BTreeMap<usize, Vec<Row>> = BTreeMap::new();
    for (t, row) in mapped.rows {
        per_table.entry(t).or_default().push(row);
    }
    let deadline = Instant::now() + state.deadline;
    // Every destination at once: one being slow or down neither delays nor blocks the other.
    let sentinel = per_table.iter().map(|(t, rows)| {
        let stream = mapping.tables[*t].schema.stream_name();
        async move {
            let r = state.batcher.deliver(&stream, rows.clone(), deadline).await;
            (stream, rows, r)
        }
    });
    let sekoia = async {
        match (mapped.sekoia.is_empty(), state.sekoia.get(&mapping.name)) {
            (false, Some(client)) => Some(client.send(&mapping.name, &mapped.sekoia, deadline).await),
            _ => None,
        }
    };
    let (sentinel_results, sekoia_result) = futures::future::join(futures::future::join_all(sentinel), sekoia).await;
    // What a destination could not take goes to the spill, if there is one; only if that fails too does the
    // sender hear an error. A record too large for any call is the sender's problem (413), never spilled.
    let mut spooled = 0usize;
    let mut failure: Option<AppError> = None;
    let mut note = |e: AppError| {
        if matches!(e, AppError::RecordTooLarge(_)) || failure.is_none() {
            failure = Some(e);
        }
    };
    for (stream, rows, r) in sentinel_results {
        let Err(e) = r else { continue };
        if matches!(e, DeliveryError::Ingest(IngestError::TooLarge { .. })) {
            note(AppError::from(e));
            continue;
        }
        let batch = SpillBatch::Sentinel { stream, rows: rows.iter().map(|r| r.as_json().to_string()).collect() };
        match spill_batch(state, batch).await {
            Some(n) => spooled += n,
            None => note(AppError::from(e)),
        }
    }
    if let Some(Err(e)) = sekoia_result {
        if matches!(e, IngestError::TooLarge { .. }) {
            note(AppError::from(DeliveryError::Ingest(e)));
        } else {
            let batch = SpillBatch::Sekoia { source: mapping.name.clone(), events: mapped.sekoia.clone() };
            match spill_batch(state, batch).await {
                Some(n) => spooled += n,
                None => note(AppError::from(DeliveryError::Ingest(e))),
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if let Some(ticket) = claim {
        ticket.succeeded();
    }

    let accepted = mapped.events - mapped.ignored;
    let rows: usize = per_table.values().map(Vec::len).sum();
    stats.accepted.fetch_add(accepted as u64, Relaxed);
    stats.ignored.fetch_add(mapped.ignored as u64, Relaxed);
    stats.rows_ingested.fetch_add(rows as u64, Relaxed);
    let tables: Vec<&str> = per_table.keys().map(|t| mapping.tables[*t].schema.name.as_str()).collect();
    let mut answer = json!({"accepted": accepted});
    match tables.as_slice() {
        [] => {}
        [one] => answer["table"] = json!(one),
        many => answer["table"] = json!(many),
    }
    if mapped.ignored > 0 {
        answer["ignored"] = json!(mapped.ignored);
    }
    if !mapped.sekoia.is_empty() && state.sekoia.contains_key(&mapping.name) {
        answer["sekoia"] = json!(mapped.sekoia.len());
    }
    if spooled > 0 {
        answer["spooled"] = json!(spooled);
    }
    tracing::info!(source = %mapping.name, accepted, ignored = mapped.ignored, rows, spooled, "webhook delivered");
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}
