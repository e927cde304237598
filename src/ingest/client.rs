//! A small typed client for the Azure Monitor Logs Ingestion API (contract §1):
//! `POST {endpoint}/dataCollectionRules/{dcr}/streams/{stream}?api-version=2023-01-01`, gzip, bearer token.
//!
//! Failure policy: 413 splits the call in two and resends each half; 429, 5xx, 408, timeouts and dropped
//! connections are retried (honouring `Retry-After`, else jittered exponential backoff) until the caller's
//! deadline; 400/401/403 and other 4xx are permanent and keep Azure's error code. A 401 is retried once with a
//! fresh token first, since a cached token can be revoked early.

use std::io::Write;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use flate2::write::GzEncoder;
use flate2::Compression;
use reqwest::header::{HeaderMap, CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::StatusCode;

use super::pack::{array_len, encode_array, pack};
use crate::metrics::{Metrics, StreamStats};
use crate::schema::Row;
use crate::token::TokenSource;

pub const API_VERSION: &str = "2023-01-01";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// Azure refused the call for good (400, 401, 403, 404, …).
    #[error("the service refused the call ({status}): {code}: {message}")]
    Rejected { status: u16, code: String, message: String },
    /// Retryable failures lasted past the deadline.
    #[error("not delivered before the deadline; last error: {last}")]
    Deadline { last: String },
    /// One record is over the call limit by itself.
    #[error("a record of {bytes} bytes is over the {limit}-byte call limit")]
    TooLarge { bytes: usize, limit: usize },
}

impl IngestError {
    /// Azure's error code, or ours, for health and logs.
    pub fn code(&self) -> String {
        match self {
            IngestError::Rejected { code, .. } => code.clone(),
            IngestError::Deadline { last } => format!("Deadline({})", last.split(':').next().unwrap_or_default()),
            IngestError::TooLarge { .. } => "RecordTooLarge".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// First backoff step; doubles each retry, with full jitter.
    pub base: Duration,
    pub max_backoff: Duration,
    /// Cap on one attempt, inside the deadline.
    pub attempt_timeout: Duration,
}

impl RetryPolicy {
    /// How long to wait before retry number `attempt` (from 0): the service's `Retry-After` with up to 10% jitter
    /// (so throttled callers do not return in lockstep), else full-jitter exponential backoff.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(d) => d + d.mul_f64(fastrand::f64() * 0.1),
            None => {
                let cap = self.base.saturating_mul(1u32 << attempt.min(16)).min(self.max_backoff);
                self.base / 2 + cap.mul_f64(fastrand::f64())
            }
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { base: Duration::from_millis(200), max_backoff: Duration::from_secs(10), attempt_timeout: Duration::from_secs(30) }
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

enum CallError {
    TooLarge,
    Failed(IngestError),
}

pub struct IngestionClient {
    http: reqwest::Client,
    base: String,
    tokens: Arc<TokenSource>,
    retry: RetryPolicy,
    max_call_bytes: usize,
    metrics: Arc<Metrics>,
}

impl IngestionClient {
    /// `endpoint` is the DCR's or DCE's logs-ingestion URL; `max_call_bytes` at most [`super::MAX_CALL_BYTES`].
    pub fn new(
        endpoint: &str,
        dcr_immutable_id: &str,
        tokens: Arc<TokenSource>,
        retry: RetryPolicy,
        max_call_bytes: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .expect("reqwest client");
        IngestionClient {
            http,
            base: format!("{}/dataCollectionRules/{}/streams", endpoint.trim_end_matches('/'), dcr_immutable_id),
            tokens,
            retry,
            max_call_bytes: max_call_bytes.min(super::MAX_CALL_BYTES),
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
        for range in calls {
            self.send_range(stream, rows, range, deadline, &stats, &mut out).await;
        }
        out.failures.sort_by_key(|(r, _)| r.start);
        out
    }

    async fn send_range(
        &self,
        stream: &str,
        rows: &[Row],
        range: Range<usize>,
        deadline: Instant,
        stats: &StreamStats,
        out: &mut UploadOutcome,
    ) {
        // An explicit stack instead of recursion: a 413 pushes both halves.
        let mut pending = vec![range];
        while let Some(range) = pending.pop() {
            out.calls += 1;
            match self.send_call(stream, &rows[range.clone()], deadline, stats).await {
                Ok(()) => {}
                Err(CallError::TooLarge) if range.len() > 1 => {
                    stats.splits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let mid = range.start + range.len() / 2;
                    pending.push(mid..range.end);
                    pending.push(range.start..mid);
                }
                Err(CallError::TooLarge) => {
                    let bytes = array_len(&rows[range.clone()]);
                    out.failures.push((range, IngestError::TooLarge { bytes, limit: self.max_call_bytes }));
                }
                Err(CallError::Failed(e)) => {
                    stats.failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    stats.set_last_error(&e.code());
                    out.failures.push((range, e));
                }
            }
        }
    }

    /// One call: retried in place until it succeeds, fails for good, or the deadline passes.
    async fn send_call(&self, stream: &str, rows: &[Row], deadline: Instant, stats: &StreamStats) -> Result<(), CallError> {
        use std::sync::atomic::Ordering::Relaxed;
        let raw = encode_array(rows);
        let body = gzip(&raw);
        let url = format!("{}/{}?api-version={API_VERSION}", self.base, stream);
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut attempt: u32 = 0;
        let mut refreshed_after_401 = false;
        let mut last = String::from("no attempt made");
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(CallError::Failed(IngestError::Deadline { last }));
            }
            let remaining = deadline - now;
            let result = tokio::time::timeout(remaining, self.tokens.token()).await;
            let token = match result {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    last = format!("TokenUnavailable: {e}");
                    tracing::warn!(stream, attempt, error = %e, "token request failed");
                    self.wait_before_retry(&mut attempt, None, deadline, &last, stats).await?;
                    continue;
                }
                Err(_) => return Err(CallError::Failed(IngestError::Deadline { last: "TokenTimeout".into() })),
            };
            let sent = self
                .http
                .post(&url)
                .bearer_auth(&token)
                .header(CONTENT_TYPE, "application/json")
                .header(CONTENT_ENCODING, "gzip")
                .header("x-ms-client-request-id", &request_id)
                .timeout(remaining.min(self.retry.attempt_timeout))
                .body(body.clone())
                .send()
                .await;
            let resp = match sent {
                Ok(r) => r,
                Err(e) => {
                    let kind = if e.is_timeout() { "Timeout" } else if e.is_connect() { "ConnectFailed" } else { "ConnectionError" };
                    last = format!("{kind}: {e}");
                    tracing::warn!(stream, attempt, error = kind, "ingestion call failed");
                    self.wait_before_retry(&mut attempt, None, deadline, &last, stats).await?;
                    continue;
                }
            };
            let status = resp.status();
            if status.is_success() {
                stats.calls.fetch_add(1, Relaxed);
                stats.rows.fetch_add(rows.len() as u64, Relaxed);
                stats.bytes.fetch_add(raw.len() as u64, Relaxed);
                stats.gzip_bytes.fetch_add(body.len() as u64, Relaxed);
                return Ok(());
            }
            let retry_after = retry_after(resp.headers());
            let (code, message) = error_of(resp).await;
            last = format!("{}: {code}", status.as_u16());
            match status {
                StatusCode::PAYLOAD_TOO_LARGE => {
                    tracing::warn!(stream, rows = rows.len(), bytes = raw.len(), code = %code, "call too large, splitting");
                    return Err(CallError::TooLarge);
                }
                StatusCode::UNAUTHORIZED if !refreshed_after_401 => {
                    refreshed_after_401 = true;
                    self.tokens.invalidate().await;
                    tracing::warn!(stream, code = %code, "401 from ingestion; retrying once with a fresh token");
                    continue;
                }
                s if s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::REQUEST_TIMEOUT || s.is_server_error() => {
                    tracing::warn!(stream, attempt, status = s.as_u16(), code = %code, "retryable ingestion error");
                    self.wait_before_retry(&mut attempt, retry_after, deadline, &last, stats).await?;
                }
                s => {
                    tracing::error!(stream, status = s.as_u16(), code = %code, "ingestion call refused");
                    return Err(CallError::Failed(IngestError::Rejected { status: s.as_u16(), code, message }));
                }
            }
        }
    }

    async fn wait_before_retry(
        &self,
        attempt: &mut u32,
        retry_after: Option<Duration>,
        deadline: Instant,
        last: &str,
        stats: &StreamStats,
    ) -> Result<(), CallError> {
        let delay = self.retry.delay(*attempt, retry_after);
        *attempt += 1;
        if Instant::now() + delay >= deadline {
            return Err(CallError::Failed(IngestError::Deadline { last: last.to_string() }));
        }
        stats.retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(delay).await;
        Ok(())
    }
}

fn gzip(raw: &[u8]) -> Vec<u8> {
    // Level 1: JSON still shrinks several-fold and the CPU stays on the request path's budget.
    let mut enc = GzEncoder::new(Vec::with_capacity(raw.len() / 4 + 64), Compression::fast());
    enc.write_all(raw).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}

/// `Retry-After` (seconds or HTTP date), or Azure's `retry-after-ms` / `x-ms-retry-after-ms`.
pub fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let get = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).map(str::trim);
    for k in ["retry-after-ms", "x-ms-retry-after-ms"] {
        if let Some(ms) = get(k).and_then(|v| v.parse::<u64>().ok()) {
            return Some(Duration::from_millis(ms));
        }
    }
    let v = get("retry-after")?;
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// Azure's `{"error":{"code","message"}}`, else the `x-ms-error-code` header, else the status.
async fn error_of(resp: reqwest::Response) -> (String, String) {
    let header_code = resp.headers().get("x-ms-error-code").and_then(|v| v.to_str().ok()).map(String::from);
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let parsed: Option<serde_json::Value> = serde_json::from_str(&text).ok();
    let err = parsed.as_ref().and_then(|v| v.get("error"));
    let code = err
        .and_then(|e| e.get("code"))
        .and_then(|c| c.as_str())
        .map(String::from)
        .or(header_code)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("Error").replace(' ', ""));
    let message = err
        .and_then(|e| e.get("message"))
        .and_then(|m| m.as_str())
        .map(String::from)
        .unwrap_or_else(|| text.chars().take(500).collect());
    (code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut h = HeaderMap::new();
        h.insert("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
