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
use serde_json::Value;

use crate::azure::logs_ingestion::limits;
use crate::delivery::fanout::Fanout;
use crate::delivery::replay::Claim;
use crate::functions::error::AppError;
use crate::functions::state::AppState;
use crate::mapping::{AuthMode, MappingContext};
use crate::model::schema::Row;

/// Bodies larger than this are verified on a blocking thread when the check hashes them.
const OFF_WORKER_BYTES: usize = 64 * 1024;

/// Honours `Content-Encoding` (RFC 9110 §8.4): `gzip` is decompressed with the body limit applied to what it
/// decompresses to (a gzip bomb is a 413), a body labelled gzip that is not is a 400, and any other coding is
/// a 415 naming it. A gzip body is read whole: every member of a multi-member stream (RFC 1952 §2.2: "a gzip
/// file consists of a series of members"), and bytes after the last member that are not one are a 400, never
/// silently dropped with the events they carried.
fn decode_content(headers: &HeaderMap, body: axum::body::Bytes, limit: usize) -> Result<axum::body::Bytes, AppError> {
    use std::io::Read;
    let Some(coding) = headers.get(header::CONTENT_ENCODING) else { return Ok(body) };
    let coding = coding.to_str().unwrap_or_default().trim().to_ascii_lowercase();
    match coding.as_str() {
        "" | "identity" => Ok(body),
        "gzip" | "x-gzip" => {
            let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
            let read = flate2::read::MultiGzDecoder::new(&body[..]).take(limit as u64 + 1).read_to_end(&mut out);
            match read {
                Err(e) => Err(AppError::InvalidContentEncoding(format!("the body is labelled gzip but is not: {e}"))),
                Ok(n) if n > limit => Err(AppError::BodyTooLarge { limit }),
                Ok(_) => Ok(out.into()),
            }
        }
        other => Err(AppError::UnsupportedContentEncoding(sanitize(other, 40))),
    }
}

/// A value from outside made safe to name in an answer or a log (`model::text::printable`).
fn sanitize(s: &str, max: usize) -> String {
    crate::model::text::printable(s, max)
}

pub async fn receive(State(state): State<Arc<AppState>>, Path(source): Path<String>, headers: HeaderMap, body: Body) -> Response {
    let Some(mapping) = state.catalog.get(&source).cloned() else {
        // The name is the sender's (percent-decoded): never logged or echoed raw.
        let shown = sanitize(&source, 64);
        tracing::info!(source = %shown, "webhook for an unknown source");
        return AppError::UnknownSource(shown).into_response();
    };
    let stats = state.metrics.source(&mapping.name);
    stats.received.fetch_add(1, Relaxed);
    // The request is handled in a task of its own: a sender that hangs up does not cancel a delivery half
    // way, so a message id it claimed is finished (marked done once its rows are in) and the sender's retry is
    // a duplicate, never a second ingestion.
    let (task_state, task_mapping, task_stats) = (state.clone(), mapping.clone(), stats.clone());
    let handled = tokio::spawn(async move { handle(&task_state, &task_mapping, &task_stats, &headers, body).await }).await.unwrap_or_else(|_| {
        Err(AppError::Unavailable { code: "ShuttingDown", message: "the bridge is restarting, retry shortly".into(), retry_after_secs: 5 })
    });
    match handled {
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
    let bytes = super::read_body(body, limit, state.http_body_timeout).await?;
    // Signatures cover the content, so the body is decoded before it is verified.
    let bytes = decode_content(headers, bytes, limit)?;

    let verifier = &state.verifiers[&mapping.name];
    let now = time::OffsetDateTime::now_utc();
    let verified = if bytes.len() > OFF_WORKER_BYTES && verifier.hashes_body() {
        // HMAC over a large body is milliseconds of CPU: on a blocking thread, the async workers keep serving.
        let (v, h, b) = (verifier.clone(), headers.clone(), bytes.clone());
        tokio::task::spawn_blocking(move || v.verify(&h, &b, now.unix_timestamp())).await.map_err(|_| AppError::Unavailable {
            code: "ShuttingDown",
            message: "the bridge is restarting, retry shortly".into(),
            retry_after_secs: 5,
        })?
    } else {
        verifier.verify(headers, &bytes, now.unix_timestamp())
    }
    .map_err(AppError::Unauthorized)?;
    if verified.open {
        tracing::warn!(source = %mapping.name, "accepting an unauthenticated request: the source is open and has no secret");
    }

    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
        let essence = ct.split(';').next().unwrap_or_default().trim();
        let is_json = essence == "application/json" || essence == "text/json" || essence.ends_with("+json");
        if !is_json {
            return Err(AppError::UnsupportedMediaType(sanitize(essence, 100)));
        }
    }
    let body: Value = serde_json::from_slice(&bytes).map_err(|e| AppError::InvalidJson(e.to_string()))?;
    // The work a request causes is bounded by its events, not only its bytes: `[{},{},…]` is 340,000 events in
    // a mebibyte.
    if let Value::Array(events) = &body {
        if events.len() > state.max_events {
            return Err(AppError::TooManyEvents { count: events.len(), limit: state.max_events });
        }
    }
    let mapped = mapping.map_body(&body, &MappingContext { received: now }).map_err(AppError::InvalidEvent)?;

    // Standard Webhooks: a message already ingested is acknowledged, not ingested twice.
    // What Azure would refuse or truncate later is refused now, while the sender can still fix it.
    let max_record = state.ingest.max_call_bytes();
    for ((t, row), event) in mapped.rows.iter().zip(&mapped.row_events) {
        if let Err(limit) = limits::check(row.as_json(), max_record) {
            return Err(AppError::EventOverLimit { event: *event, table: mapping.tables[*t].schema.name.clone(), limit });
        }
    }

    let claim = match (&verified.message_id, verifier.mode()) {
        (Some(id), AuthMode::StandardWebhooks { .. }) => {
            let until = verified.replay_until.unwrap_or_else(|| now.unix_timestamp());
            // The lease outlasts the request's deadline, so a live claim is never taken over.
            let lease = state.deadline + std::time::Duration::from_secs(5);
            match state.replay.claim(&mapping.name, id, until, lease).await {
                Ok(Claim::Duplicate) => {
                    stats.duplicates.fetch_add(1, Relaxed);
                    return Ok((StatusCode::ACCEPTED, Json(Accepted::duplicate())).into_response());
                }
                Ok(Claim::Busy) => {
                    return Err(AppError::Unavailable {
                        code: "MessageInFlight",
                        message: "this message id is being ingested by another instance; retry shortly".into(),
                        retry_after_secs: 5,
                    })
                }
                Ok(Claim::Owner(ticket)) => Some(ticket),
                // Unable to tell a replay from a first delivery: refuse, the sender retries, nothing is lost.
                Err(e) => {
                    tracing::error!(error = %e, "replay store unavailable");
                    return Err(AppError::Unavailable {
                        code: "ReplayStoreUnavailable",
                        message: "the replay store is unavailable; retry shortly".into(),
                        retry_after_secs: 30,
                    });
                }
            }
        }
        _ => None,
    };

    let mut per_table: BTreeMap<usize, Vec<Row>> = BTreeMap::new();
    for (t, row) in mapped.rows {
        per_table.entry(t).or_default().push(row);
    }
    let deadline = Instant::now() + state.deadline;
    let sekoia = state.sekoia.get(&mapping.name).map(|c| c.as_ref());
    let fanout = Fanout { batcher: &state.batcher, sekoia, spill: state.spill.as_ref() };
    let spooled = fanout.deliver(mapping, &per_table, &mapped.sekoia, deadline).await?.spooled;
    if let Some(ticket) = claim {
        ticket.succeeded().await;
    }

    let accepted = mapped.events - mapped.ignored;
    let rows: usize = per_table.values().map(Vec::len).sum();
    stats.accepted.fetch_add(accepted as u64, Relaxed);
    stats.ignored.fetch_add(mapped.ignored as u64, Relaxed);
    stats.rows_ingested.fetch_add(rows as u64, Relaxed);
    let tables: Vec<&str> = per_table.keys().map(|t| mapping.tables[*t].schema.name.as_str()).collect();
    let answer = Accepted {
        accepted,
        table: match tables.as_slice() {
            [] => None,
            [one] => Some(Tables::One(one.to_string())),
            many => Some(Tables::Many(many.iter().map(|t| t.to_string()).collect())),
        },
        ignored: (mapped.ignored > 0).then_some(mapped.ignored),
        sekoia: (!mapped.sekoia.is_empty() && state.sekoia.contains_key(&mapping.name)).then_some(mapped.sekoia.len()),
        spooled: (spooled > 0).then_some(spooled),
        duplicate: None,
    };
    tracing::info!(source = %mapping.name, accepted, ignored = mapped.ignored, rows, spooled, "webhook delivered");
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

/// The `202` a sender gets: how many events were accepted and where they went.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Accepted {
    pub accepted: usize,
    /// The table the events landed in, or the tables when a body spans several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<Tables>,
    /// Events the mapping's event-type filter skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored: Option<usize>,
    /// Events also sent to Sekoia.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sekoia: Option<usize>,
    /// Events kept in the spill, to be delivered when their destination takes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spooled: Option<usize>,
    /// A replayed Standard Webhooks message, already taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
}

impl Accepted {
    fn duplicate() -> Accepted {
        Accepted { accepted: 0, table: None, ignored: None, sekoia: None, spooled: None, duplicate: Some(true) }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Tables {
    One(String),
    Many(Vec<String>),
}

#[cfg(test)]
mod answer_tests {
    use super::*;

    #[test]
    fn the_202_answer_reads_as_documented_and_round_trips() {
        let a = Accepted { accepted: 2, table: Some(Tables::One("NoxysEvents_CL".into())), ignored: None, sekoia: None, spooled: Some(1), duplicate: None };
        let text = serde_json::to_string(&a).unwrap();
        assert_eq!(text, r#"{"accepted":2,"table":"NoxysEvents_CL","spooled":1}"#);
        assert_eq!(serde_json::from_str::<Accepted>(&text).unwrap(), a);
        assert_eq!(serde_json::to_value(Accepted::duplicate()).unwrap(), serde_json::json!({"accepted": 0, "duplicate": true}));
        let many = Accepted { table: Some(Tables::Many(vec!["A_CL".into(), "B_CL".into()])), ..a };
        assert_eq!(serde_json::from_str::<Accepted>(&serde_json::to_string(&many).unwrap()).unwrap(), many);
    }
}
