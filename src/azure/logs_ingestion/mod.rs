//! A small typed client for the Azure Monitor Logs Ingestion API (contract §1):
//! `POST {endpoint}/dataCollectionRules/{dcr}/streams/{stream}?api-version=2023-01-01`, gzip, bearer token.
//!
//! Failure policy: 413 splits the call in two and resends each half; 429, 5xx, 408, timeouts and dropped
//! connections are retried (honouring `Retry-After`, else jittered exponential backoff) until the caller's
//! deadline; 400/401/403 and other 4xx are permanent and keep Azure's error code. A 401 is retried once with a
//! fresh token first, since a cached token can be revoked early.
//!
//! Azure answers 204 to a call whatever its records hold and drops what it cannot use afterwards (into
//! DCRLogErrors); it refuses a call only for the call's or the configuration's faults (contract §1, "Synchronous
//! answers"). So a 400 is never bisected: the rows are reported failed as a whole and the caller keeps them for
//! redelivery. The only per-record refusal is ours, before sending ([`limits`]).

use std::collections::HashMap;
use std::io::Write;
use std::ops::Range;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use reqwest::header::{HeaderMap, CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::StatusCode;

pub mod limits;
pub mod pack;

pub use pack::MAX_CALL_BYTES;
use pack::{array_len, encode_array, pack};

pub use crate::azure::http::RetryPolicy;
use crate::azure::http::{azure_verdict, path_segment, send_halving, Attempt, AzureError, Call, CallError, Driver, RetryLogic, Verdict};
use crate::azure::identity::TokenSource;
use crate::metrics::{Metrics, StreamStats};
use crate::model::schema::Row;

pub const API_VERSION: &str = "2023-01-01";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// Azure refused the call for good (400, 401, 403, 404, …).
    #[error("the service refused the call ({status}): {code}: {message}")]
    Refused { status: u16, code: String, message: String },
    /// Retryable failures lasted past the deadline.
    #[error("not delivered before the deadline; last error: {last}")]
    Unavailable { last: Attempt },
    /// One record is over the call limit by itself.
    #[error("a record of {bytes} bytes is over the {limit}-byte call limit")]
    TooLarge { bytes: usize, limit: usize },
}

impl IngestError {
    /// Azure's error code, or ours, for health and logs.
    pub fn code(&self) -> String {
        match self {
            IngestError::Refused { code, .. } => code.clone(),
            IngestError::Unavailable { last } => format!("Deadline({})", last.kind()),
            IngestError::TooLarge { .. } => "RecordTooLarge".into(),
        }
    }

    /// The records themselves are at fault: the sender can be told, and no redelivery will change it. Only
    /// a record too large for any call is: Azure refuses no record for its content (contract §1).
    pub fn is_records_fault(&self) -> bool {
        matches!(self, IngestError::TooLarge { .. })
    }
}

/// Which rows did not make it, and why. Rows outside every failure range are in the table.
#[derive(Debug, Default)]
pub struct UploadOutcome {
    pub failures: Vec<(Range<usize>, IngestError)>,
    pub calls: usize,
}

impl UploadOutcome {
    pub fn is_ok(&self) -> bool {
        self.failures.is_empty()
    }

    /// The failure, if any, that covers part of `range`.
    pub fn failure_in(&self, range: &Range<usize>) -> Option<&IngestError> {
        self.failures.iter().find(|(r, _)| r.start < range.end && range.start < r.end).map(|(_, e)| e)
    }
}

/// Logs Ingestion's reading of its responses (contract §1): 413 means split the call; otherwise Azure's
/// common rules.
struct IngestionRules;

impl RetryLogic for IngestionRules {
    fn classify(&self, status: StatusCode, _: &HeaderMap, _: &[u8]) -> Verdict {
        match status {
            StatusCode::PAYLOAD_TOO_LARGE => Verdict::Split,
            s => azure_verdict(s),
        }
    }
}

/// How an [`IngestionClient`] sends.
#[derive(Debug, Clone)]
pub struct IngestionOptions {
    pub retry: RetryPolicy,
    /// Uncompressed bytes per call, at most [`MAX_CALL_BYTES`].
    pub max_call_bytes: usize,
    /// Streams that another rule of the same endpoint carries (a rule holds 10 streams), by stream.
    pub stream_rules: HashMap<String, String>,
}

impl Default for IngestionOptions {
    fn default() -> Self {
        IngestionOptions { retry: RetryPolicy::default(), max_call_bytes: MAX_CALL_BYTES, stream_rules: HashMap::new() }
    }
}

/// A stream name as a DCR declares one: `Custom-`/`Microsoft-` and letters, digits, `-` and `_`.
pub fn is_stream_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub struct IngestionClient {
    driver: Driver,
    endpoint: String,
    dcr: String,
    stream_rules: HashMap<String, String>,
    tokens: Arc<TokenSource>,
    max_call_bytes: usize,
    metrics: Arc<Metrics>,
}

impl IngestionClient {
    /// `endpoint` is the DCR's or DCE's logs-ingestion URL.
    /// The endpoint calls go to (`LOGS_INGESTION_ENDPOINT`, or the local workspace's).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn new(endpoint: &str, dcr_immutable_id: &str, tokens: Arc<TokenSource>, options: IngestionOptions, metrics: Arc<Metrics>) -> Self {
        IngestionClient {
            driver: Driver::new(options.retry),
            endpoint: endpoint.trim_end_matches('/').to_string(),
            dcr: dcr_immutable_id.to_string(),
            stream_rules: options.stream_rules,
            tokens,
            max_call_bytes: options.max_call_bytes.min(MAX_CALL_BYTES),
            metrics,
        }
    }

    pub fn max_call_bytes(&self) -> usize {
        self.max_call_bytes
    }

    /// Sends rows to a stream in as few calls as fit, in order, each retried until `deadline`.
    pub async fn upload(&self, stream: &str, rows: &[Row], deadline: Instant) -> UploadOutcome {
        let stats = self.metrics.stream(stream);
        let (calls, oversized) = pack(rows, self.max_call_bytes);
        let mut out = UploadOutcome::default();
        for o in oversized {
            out.failures.push((o.index..o.index + 1, IngestError::TooLarge { bytes: o.bytes, limit: self.max_call_bytes }));
        }
        let mut calls_made = 0usize;
        // Only a 413 halves a call (until each part fits). Azure has no per-record refusal: a 400 is about the
        // call or the configuration (contract §1), so bisecting one would only multiply it; the rows are kept
        // by the caller and redelivered once the operator fixes what `doctor` names.
        let halve = |e: &CallError| {
            let split = matches!(e, CallError::Split);
            if split {
                stats.splits.fetch_add(1, Relaxed);
            }
            split
        };
        let failures = send_halving(calls, false, halve, |range| {
            calls_made += 1;
            let part = &rows[range];
            let stats = &stats;
            async move { self.send_call(stream, part, deadline, stats).await }
        })
        .await;
        out.calls += calls_made;
        for (range, e) in failures {
            let e = match e {
                CallError::Split => IngestError::TooLarge { bytes: array_len(&rows[range.clone()]), limit: self.max_call_bytes },
                other => {
                    let e = IngestError::from(other);
                    stats.failures.fetch_add(1, Relaxed);
                    stats.set_last_error(&e.code());
                    e
                }
            };
            out.failures.push((range, e));
        }
        out.failures.sort_by_key(|(r, _)| r.start);
        out
    }

    /// A call with no records (`[]`) to a stream: a 204 proves the identity may write there (Monitoring
    /// Metrics Publisher on the rule) and the rule declares the stream, without writing a row.
    /// Also the call's `x-ms-client-request-id`, which DCRLogErrors records, so a check can tell its own
    /// calls from the product's there.
    pub async fn probe(&self, stream: &str, deadline: Instant) -> (String, Result<(), IngestError>) {
        let request_id = uuid::Uuid::new_v4().to_string();
        let sent = self.send_call_as(&request_id, stream, &[], deadline, &StreamStats::default()).await.map_err(IngestError::from);
        (request_id, sent)
    }

    /// One row in one call, with its `x-ms-client-request-id` (as [`Self::probe`]): `doctor`'s canary.
    pub async fn send_one(&self, stream: &str, row: &Row, deadline: Instant) -> (String, Result<(), IngestError>) {
        let request_id = uuid::Uuid::new_v4().to_string();
        let stats = self.metrics.stream(stream);
        let sent = self.send_call_as(&request_id, stream, std::slice::from_ref(row), deadline, &stats).await.map_err(IngestError::from);
        (request_id, sent)
    }

    /// One call: retried in place until it succeeds, fails for good, or the deadline passes.
    async fn send_call(&self, stream: &str, rows: &[Row], deadline: Instant, stats: &StreamStats) -> Result<(), CallError> {
        self.send_call_as(&uuid::Uuid::new_v4().to_string(), stream, rows, deadline, stats).await
    }

    async fn send_call_as(&self, request_id: &str, stream: &str, rows: &[Row], deadline: Instant, stats: &StreamStats) -> Result<(), CallError> {
        let raw = encode_array(rows);
        let body = Bytes::from(gzip(&raw));
        let dcr = self.stream_rules.get(stream).unwrap_or(&self.dcr);
        let url = format!("{}/dataCollectionRules/{}/streams/{}?api-version={API_VERSION}", self.endpoint, path_segment(dcr), path_segment(stream));
        let build = |http: &reqwest::Client| {
            http.post(&url)
                .header(CONTENT_TYPE, "application/json")
                .header(CONTENT_ENCODING, "gzip")
                .header("x-ms-client-request-id", request_id)
                .body(body.clone())
        };
        let call = Call { build: &build, auth: self.tokens.as_ref(), logic: &IngestionRules, deadline, retries: Some(&stats.retries), what: "logs ingestion" };
        self.driver.send(call).await?;
        stats.calls.fetch_add(1, Relaxed);
        stats.rows.fetch_add(rows.len() as u64, Relaxed);
        let now = crate::model::time::now_ticks();
        let late = rows.iter().filter(|r| r.time().is_some_and(|t| crate::model::schema::outside_time_window(t, now))).count();
        if late > 0 {
            stats.outside_time_window.fetch_add(late as u64, Relaxed);
            tracing::warn!(rows = late, "rows sent with a TimeGenerated outside Azure's window: it becomes the time received (EventTime keeps theirs)");
        }
        stats.bytes.fetch_add(raw.len() as u64, Relaxed);
        stats.gzip_bytes.fetch_add(body.len() as u64, Relaxed);
        Ok(())
    }
}

impl From<CallError> for IngestError {
    fn from(e: CallError) -> Self {
        match e {
            // Only reached for a single record the service still finds too large.
            CallError::Split => {
                IngestError::Refused { status: 413, code: "RequestEntityTooLarge".into(), message: "the service refused the call as too large".into() }
            }
            CallError::Refused(AzureError { status, code, message }) => IngestError::Refused { status, code, message },
            CallError::Unavailable { last } => IngestError::Unavailable { last },
        }
    }
}

fn gzip(raw: &[u8]) -> Vec<u8> {
    // Level 1: JSON still shrinks several-fold and the CPU stays on the request path's budget.
    let mut enc = GzEncoder::new(Vec::with_capacity(raw.len() / 4 + 64), Compression::fast());
    enc.write_all(raw).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}
