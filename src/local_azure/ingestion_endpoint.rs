//! The workspace's Logs Ingestion API, enforcing Azure's contract (contract §1): the path and api-version, a
//! bearer token for `https://monitor.azure.com`, `Content-Type: application/json`, gzip or plain bodies of at
//! most 1,048,576 bytes as sent (413 `ContentLengthLimitExceeded`), a JSON array of
//! objects nested at most [`MAX_NESTING`] deep (a 400 for the whole call), declared streams only, and 204 on success. Columns a stream does not declare are dropped as
//! Azure drops them, but counted and logged. Values of the wrong type for their column are refused with a 400
//! (stricter than Azure, which quietly stores null): for our own writers that is always a bug worth failing on.
//! A stream's transformation (`transformKql`) runs on the records, with `source` bound to them.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use flate2::read::GzDecoder;
use serde_json::Value;

use super::store::Record;
use super::tables::{accepts, StreamDecl};
use super::{azure_error, RecordedCall, Workspace};
use crate::kql::{self, Frame};
use crate::model::time::format_datetime;

#[derive(serde::Deserialize)]
pub(super) struct IngestQuery {
    #[serde(rename = "api-version")]
    api_version: Option<String>,
}

pub(super) async fn ingest(
    State(ws): State<Arc<Workspace>>,
    Path((dcr, stream)): Path<(String, String)>,
    Query(q): Query<IngestQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    ingest_as(ws, dcr, stream, q, headers, body, Arrival::Now).await
}

/// `POST /_local/backfill/dataCollectionRules/{dcr}/streams/{stream}`: the local workspace only, the same
/// call for rows that stand for history (a scenario's two weeks of telemetry, which in Azure would have
/// arrived as it happened), so their TimeGenerated is kept.
pub(super) async fn backfill(
    State(ws): State<Arc<Workspace>>,
    Path((dcr, stream)): Path<(String, String)>,
    Query(q): Query<IngestQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    ingest_as(ws, dcr, stream, q, headers, body, Arrival::History).await
}

/// Whether rows arrive now (Azure's rules on TimeGenerated apply) or stand for rows that arrived long ago.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Arrival {
    Now,
    History,
}

async fn ingest_as(ws: Arc<Workspace>, dcr: String, stream: String, q: IngestQuery, headers: HeaderMap, body: Bytes, arrival: Arrival) -> Response {
    // Decompressing, checking and fsyncing a 1 MiB call is blocking work: keep it off the async workers.
    let result = tokio::task::spawn_blocking(move || ingest_inner(&ws, &dcr, &stream, q, &headers, &body, arrival)).await;
    match result {
        Ok(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(r)) => r,
        Err(_) => azure_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "The local workspace failed."),
    }
}

/// A call is at most 1 MB "both compressed and uncompressed" (Logs Ingestion API service limits, contract §1).
/// Microsoft's own Python SDK packs 1 MiB of items as `json.dumps` measures each one and then adds the array's
/// `", "` separators uncounted, and Azure takes those calls: so the uncompressed limit applies to the records,
/// not the separators between them. The records of a decompressed body may total [`MAX_CALL_BYTES`] (each
/// measured as compact JSON, which is never longer than the SDK's measure); the body itself may reach twice
/// that, the worst case of the SDK's separators (two bytes for each record of two), and inflation stops
/// there, which also stops gzip bombs.
pub const MAX_DECOMPRESSED_BYTES: usize = 2 * MAX_CALL_BYTES;

/// The Logs Ingestion API's version (contract §1: `api-version=2023-01-01`, the only one the API serves).
pub const API_VERSION: &str = "2023-01-01";

/// "Maximum size of API call: 1 MB (both compressed and uncompressed)" (Azure Monitor service limits, Logs
/// Ingestion API; contract §1); 1 MB is 1,048,576 bytes in Azure's own 413 message.
pub const MAX_CALL_BYTES: usize = 1024 * 1024;

/// The nesting Azure's .NET front end takes: System.Text.Json and Newtonsoft.Json (≥ 13) refuse documents
/// deeper than 64 by default, the call's array counting as one level. Azure documents no depth limit:
/// UNCONFIRMED, kept equal to what the product refuses up front so our writers never reach it.
pub const MAX_NESTING: usize = 64;

/// A field value is at most 64 KB; Azure truncates longer ones (Logs Ingestion API service limits, contract
/// §1). A dynamic value cut there is no longer JSON: it lands as the text it was cut to.
pub const MAX_FIELD_BYTES: usize = 64 * 1024;

fn too_large(len: usize) -> Response {
    azure_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "ContentLengthLimitExceeded",
        &format!("Maximum allowed content length: {MAX_CALL_BYTES} bytes (1 MB). Provided content length: {len} bytes."),
    )
}

fn ingest_inner(ws: &Workspace, dcr: &str, stream: &str, q: IngestQuery, headers: &HeaderMap, body: &[u8], arrival: Arrival) -> Result<(), Response> {
    match q.api_version.as_deref() {
        Some(API_VERSION) => {}
        Some(v) => {
            return Err(azure_error(StatusCode::BAD_REQUEST, "UnsupportedApiVersion", &format!("The api-version '{v}' is not supported; use {API_VERSION}.")))
        }
        None => return Err(azure_error(StatusCode::BAD_REQUEST, "MissingApiVersionParameter", "The api-version query parameter is required.")),
    }
    ws.authorize(headers, &HashSet::from(["https://monitor.azure.com"]))?;
    let (rbac, binding) = match ws.config.ingest_access {
        super::IngestAccess::Granted => (true, true),
        super::IngestAccess::NoRole => (false, true),
        super::IngestAccess::UnboundEndpoint => (true, false),
    };
    if !(rbac && binding) {
        let cap = |b: bool| if b { "True" } else { "False" };
        return Err(azure_error(
            StatusCode::FORBIDDEN,
            "OperationFailed",
            &format!(
                "The authentication token provided does not have access to ingest data for the data collection rule with immutable Id '{dcr}' PipelineAccessResult: AccessGranted: False, IsRbacPresent: {}, IsDcrDceBindingValid: {}, DcrArmId: {}.",
                cap(rbac),
                cap(binding),
                super::arm_dcr::arm_id_of(ws, dcr)
            ),
        ));
    }
    let rule = ws.config.rules.iter().find(|(id, _)| id == dcr);
    let dcr_ok = match (&ws.config.dcr_immutable_id, rule) {
        (_, Some(_)) => true,
        (Some(expected), None) => dcr == expected && ws.config.rules.is_empty(),
        (None, None) => dcr.starts_with("dcr-") && ws.config.rules.is_empty(),
    };
    if !dcr_ok {
        return Err(azure_error(StatusCode::NOT_FOUND, "NotFound", &format!("Data collection rule with immutable Id '{dcr}' not found.")));
    }
    let declared = rule.is_none_or(|(_, streams)| streams.iter().any(|s| s == stream));
    // Only history staging may fill a table Azure writes itself (Perf, SigninLogs, …): no rule can declare a
    // stream into one (`tables::ingestible`), so the API answers as for any stream the rule lacks.
    let Some(decl) = ws.streams.get(stream).filter(|d| declared && (arrival == Arrival::History || super::tables::ingestible(&d.table))) else {
        return Err(azure_error(StatusCode::BAD_REQUEST, "InvalidStream", &format!("Stream '{stream}' is not declared by data collection rule '{dcr}'.")));
    };
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.to_ascii_lowercase().starts_with("application/json") {
        return Err(azure_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType", "Content-Type must be application/json."));
    }
    if body.len() > MAX_CALL_BYTES {
        return Err(too_large(body.len()));
    }
    let encoding = headers.get("content-encoding").and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let raw: Vec<u8> = match encoding.as_str() {
        "" | "identity" => body.to_vec(),
        "gzip" => {
            let mut out = Vec::new();
            // Read one byte past the cap so an oversized body is detected without inflating all of it.
            let mut dec = GzDecoder::new(body).take(MAX_DECOMPRESSED_BYTES as u64 + 1);
            if dec.read_to_end(&mut out).is_err() {
                return Err(azure_error(StatusCode::BAD_REQUEST, "InvalidContentEncoding", "The body is not valid gzip."));
            }
            if out.len() > MAX_DECOMPRESSED_BYTES {
                return Err(too_large(out.len()));
            }
            out
        }
        other => return Err(azure_error(StatusCode::BAD_REQUEST, "InvalidContentEncoding", &format!("Content-Encoding '{other}' is not supported."))),
    };
    // A zero-length body is Azure's 500 with no error code (contract §1).
    if raw.is_empty() {
        return Err(StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    let request_id = headers.get("x-ms-client-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    // Azure validates nothing of the content before answering: what it cannot use is dropped after the 204,
    // with a DCRLogErrors row (contract §1, "Synchronous answers"; there is no synchronous per-record 400).
    // Every call taken is recorded, with the rows it stored.
    let record = |rows: usize| {
        ws.record(RecordedCall {
            stream: stream.to_string(),
            dcr: dcr.to_string(),
            content_encoding: encoding.clone(),
            request_id: Some(request_id.clone()).filter(|r| !r.is_empty()),
            sent_bytes: body.len(),
            json_bytes: raw.len(),
            rows,
        })
    };
    let dropped_call = |message: String| {
        ws.log_dcr_error(dcr, stream, &request_id, "Ingestion", &message);
        record(0);
    };
    let items = match serde_json::from_slice::<Value>(&raw) {
        Ok(Value::Array(items)) => items,
        Ok(_) => {
            dropped_call("The payload is not a JSON array of records; nothing was ingested.".into());
            return Ok(());
        }
        Err(e) => {
            dropped_call(format!("The payload is not valid JSON ({e}); nothing was ingested."));
            return Ok(());
        }
    };
    if raw.len() > MAX_CALL_BYTES {
        let records: usize = items.iter().map(|i| serde_json::to_vec(i).map(|v| v.len()).unwrap_or(0)).sum();
        if records > MAX_CALL_BYTES {
            return Err(azure_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "ContentLengthLimitExceeded",
                &format!("Maximum allowed content length: {MAX_CALL_BYTES} bytes (1 MB) uncompressed. Provided records: {records} bytes."),
            ));
        }
    }
    // A JSON reader with a depth limit refuses the whole document: every record of the call is dropped.
    if let Some((i, nesting)) = items.iter().map(|item| 1 + depth(item)).enumerate().find(|(_, n)| *n > MAX_NESTING) {
        dropped_call(format!("Record {i} nests {nesting} levels deep with the array; the maximum is {MAX_NESTING}. Nothing was ingested."));
        return Ok(());
    }
    let columns: HashMap<&str, kql::KType> = decl.columns.iter().map(|c| (c.name.as_str(), c.ktype)).collect();
    let mut records = Vec::with_capacity(items.len());
    let mut dropped = 0u64;
    let (mut not_records, mut nulled) = (0usize, 0u64);
    for item in items {
        let Value::Object(mut rec) = item else {
            not_records += 1;
            continue;
        };
        let before = rec.len();
        rec.retain(|k, _| columns.contains_key(k.as_str()));
        dropped += (before - rec.len()) as u64;
        // A value that does not convert to its column's type is stored as null, without a word (Azure's
        // behaviour; our own writers check types before they send).
        for (k, v) in rec.iter_mut() {
            if !accepts(columns[k.as_str()], v) {
                *v = Value::Null;
                nulled += 1;
            }
        }
        rec.retain(|_, v| !v.is_null());
        records.push(rec);
    }
    if not_records > 0 {
        ws.log_dcr_error(dcr, stream, &request_id, "Ingestion", &format!("{not_records} item(s) of the payload are not JSON objects and were dropped."));
    }
    if nulled > 0 {
        ws.stats.nulled_values.fetch_add(nulled, Relaxed);
        tracing::warn!(stream, nulled, "values that do not convert to their column's type were stored as null (as Azure does)");
    }
    let mut records = match &decl.transform {
        None => records,
        Some(kql_text) => match transform(ws, decl, kql_text, records, &mut dropped) {
            Ok(r) => r,
            Err(message) => {
                // A transformation error drops the call's records after the 204, into DCRLogErrors.
                ws.log_dcr_error(dcr, stream, &request_id, "Transformation", &message);
                Vec::new()
            }
        },
    };
    // Azure fills TimeGenerated with the time received when a record lacks it, or has one outside its window.
    let now = format_datetime(time::OffsetDateTime::now_utc());
    let now_ticks = crate::model::time::now_ticks();
    let mut replaced = 0u64;
    let mut truncated = 0u64;
    for rec in &mut records {
        let kept = match rec.get("TimeGenerated").and_then(Value::as_str).and_then(crate::model::time::parse_datetime_ticks) {
            None => false,
            Some(_) if arrival == Arrival::History => true,
            // Two days back to one ahead (`outside_time_window` cites the rule).
            Some(t) => {
                let outside = crate::model::schema::outside_time_window(t, now_ticks);
                replaced += u64::from(outside);
                !outside
            }
        };
        if !kept {
            rec.insert("TimeGenerated".into(), Value::String(now.clone()));
        }
        // What `ingestion_time()` returns for the row: now, or for history its own time.
        let ingested =
            if arrival == Arrival::History { rec.get("TimeGenerated").cloned().unwrap_or(Value::String(now.clone())) } else { Value::String(now.clone()) };
        rec.insert(super::store::INGESTED_AT.into(), ingested);
        for v in rec.values_mut() {
            truncated += u64::from(truncate_field(v));
        }
    }
    if replaced > 0 {
        ws.stats.time_generated_replaced.fetch_add(replaced, Relaxed);
        tracing::warn!(stream, replaced, "TimeGenerated outside two days before and one day after now was replaced with the time received (as Azure does)");
    }
    if truncated > 0 {
        ws.stats.truncated_fields.fetch_add(truncated, Relaxed);
        tracing::warn!(stream, truncated, "field values over 64 KB were truncated (as Azure does)");
    }
    if dropped > 0 {
        ws.stats.dropped_columns.fetch_add(dropped, Relaxed);
        tracing::warn!(stream, dropped, "dropped values of columns the stream or table does not declare (Azure drops them silently)");
    }
    let count = records.len();
    if ws.config.keep_rows {
        ws.store.append(&decl.table, &records).map_err(|e| {
            tracing::error!(error = %e, "local workspace could not write");
            azure_error(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "The local workspace could not store the records.")
        })?;
    }
    ws.stats.rows.fetch_add(count as u64, Relaxed);
    record(count);
    Ok(())
}

/// Cuts a value over [`MAX_FIELD_BYTES`] to that many bytes, as Azure does; a dynamic value becomes the text
/// it was cut to. Whether it was cut.
fn truncate_field(v: &mut Value) -> bool {
    let cut = |s: &str| -> String {
        let mut end = MAX_FIELD_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s[..end].to_string()
    };
    match v {
        Value::String(s) if s.len() > MAX_FIELD_BYTES => {
            *s = cut(s);
            true
        }
        Value::Array(_) | Value::Object(_) => {
            if json_len(v) <= MAX_FIELD_BYTES {
                return false;
            }
            *v = Value::String(cut(&v.to_string()));
            true
        }
        _ => false,
    }
}

/// The length of a value's compact JSON, counted as it is written rather than built.
fn json_len(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

struct SourceOnly(Frame);

impl kql::Tables for SourceOnly {
    fn table(&self, name: &str) -> Option<Frame> {
        (name == "source").then(|| self.0.clone())
    }
}

/// Runs the stream's transformation over the records and shapes its output to the table's columns.
/// Runs a stream's transformation; a failure is the transformation's message (its records are dropped).
fn transform(ws: &Workspace, decl: &StreamDecl, kql_text: &str, records: Vec<Record>, dropped: &mut u64) -> Result<Vec<Record>, String> {
    let rows = records
        .iter()
        .map(|r| {
            decl.columns.iter().map(|c| r.get(&c.name).and_then(|v| kql::Value::from_json(v, c.ktype)).unwrap_or(kql::Value::Null)).collect::<Vec<_>>().into()
        })
        .collect();
    let source = Frame { columns: decl.columns.clone(), rows };
    let out = kql::run(kql_text, &SourceOnly(source), crate::model::time::now_ticks())
        .map_err(|e| format!("The transformation of stream '{}' failed: {e}", decl.name))?;
    let table = ws.store.def(&decl.table).expect("streams point at declared tables");
    let mut result = Vec::with_capacity(out.rows.len());
    for row in &out.rows {
        let mut rec = Record::new();
        for (c, v) in out.columns.iter().zip(row.iter()) {
            match table.column(&c.name) {
                Some((_, tc)) => {
                    let v = kql::eval_convert(v, tc.ktype);
                    if !v.is_null() {
                        rec.insert(c.name.clone(), v.to_json());
                    }
                }
                None => *dropped += 1,
            }
        }
        result.push(rec);
    }
    Ok(result)
}

/// The nesting depth of a parsed JSON value, counted without recursion (the value comes from outside).
fn depth(v: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 1usize)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Array(a) => {
                deepest = deepest.max(d);
                stack.extend(a.iter().map(|x| (x, d + 1)));
            }
            Value::Object(o) => {
                deepest = deepest.max(d);
                stack.extend(o.values().map(|x| (x, d + 1)));
            }
            _ => {}
        }
    }
    deepest
}
