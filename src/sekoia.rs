//! A small client for Sekoia.io's HTTPS intake (`../shared/sekoia-contract.md`): events as JSON text, posted to
//! `POST {base}/array` with each event's own time, authenticated with `X-SEKOIAIO-INTAKE-KEY`. Calls are packed
//! under a size cap (Sekoia's limit is not documented, so it is a setting); 413 splits a call; 429, 5xx,
//! timeouts and dropped connections are retried with Retry-After honoured until the deadline; other 4xx are
//! permanent. A 200 must carry one event id per event sent, or the call counts as failed.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::azure::http::{send_halving, Call, CallError, Driver, NoAuth, RetryLogic, RetryPolicy, Verdict};
use crate::azure::logs_ingestion::IngestError;
use crate::mapping::SekoiaEvent;
use crate::metrics::{Metrics, StreamStats};

pub const DEFAULT_INTAKE_URL: &str = "https://intake.sekoia.io";

/// How a [`SekoiaClient`] sends.
#[derive(Debug, Clone)]
pub struct SekoiaOptions {
    pub retry: RetryPolicy,
    /// JSON bytes per call (Sekoia documents no limit: a setting, `SEKOIA_MAX_CALL_BYTES`).
    pub max_call_bytes: usize,
}

pub struct SekoiaClient {
    driver: Driver,
    url: String,
    key: String,
    max_call_bytes: usize,
    metrics: Arc<Metrics>,
}

/// The intake's reading of its responses: a 2xx counts only with one event id per event sent (otherwise we
/// cannot tell what landed, so the call is retried); 413 splits; 408, 429 and 5xx pass; the rest is refused.
/// The intake key travels in its own header, so there is no token to refresh.
struct IntakeRules {
    events: usize,
}

impl RetryLogic for IntakeRules {
    fn classify(&self, status: StatusCode, _: &HeaderMap, body: &[u8]) -> Verdict {
        match status {
            s if s.is_success() => {
                let ids = serde_json::from_slice::<Value>(body).ok().and_then(|v| v["event_ids"].as_array().map(Vec::len));
                if ids == Some(self.events) {
                    Verdict::Done
                } else {
                    Verdict::Retry
                }
            }
            StatusCode::PAYLOAD_TOO_LARGE => Verdict::Split,
            s if s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::REQUEST_TIMEOUT || s.is_server_error() => Verdict::Retry,
            _ => Verdict::Refuse,
        }
    }
}

impl std::fmt::Debug for SekoiaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SekoiaClient").field("url", &self.url).finish_non_exhaustive()
    }
}

fn entry_len(key: &str, e: &SekoiaEvent) -> usize {
    json!({"intake_key": key, "json": e.json, "timestamp": e.timestamp}).to_string().len()
}

impl SekoiaClient {
    pub fn new(base: &str, key: &str, options: SekoiaOptions, metrics: Arc<Metrics>) -> Self {
        SekoiaClient {
            driver: Driver::new(options.retry),
            url: format!("{}/array", base.trim_end_matches('/')),
            key: key.to_string(),
            max_call_bytes: options.max_call_bytes,
            metrics,
        }
    }

    /// Sends events (of one source) in as few calls as fit; every event is in Sekoia, or an error says why not.
    pub async fn send(&self, source: &str, events: &[SekoiaEvent], deadline: Instant) -> Result<(), IngestError> {
        let stats = self.metrics.stream(&format!("sekoia:{source}"));
        // Pack whole events under the cap; an event over it alone is refused.
        let mut calls: Vec<std::ops::Range<usize>> = Vec::new();
        let (mut start, mut size) = (0usize, 2usize);
        for (i, e) in events.iter().enumerate() {
            let len = entry_len(&self.key, e) + 1;
            if len + 2 > self.max_call_bytes {
                return Err(IngestError::TooLarge { bytes: len, limit: self.max_call_bytes });
            }
            if size + len > self.max_call_bytes && i > start {
                calls.push(start..i);
                start = i;
                size = 2;
            }
            size += len;
        }
        if start < events.len() {
            calls.push(start..events.len());
        }
        let too_large = |e: &CallError| {
            let split = matches!(e, CallError::Split);
            if split {
                stats.splits.fetch_add(1, Relaxed);
            }
            split
        };
        let failures = send_halving(calls, true, too_large, |range| self.call(&events[range], deadline, &stats)).await;
        let Some((range, e)) = failures.into_iter().next() else { return Ok(()) };
        let e = match e {
            CallError::Split => return Err(IngestError::TooLarge { bytes: entry_len(&self.key, &events[range.start]), limit: self.max_call_bytes }),
            // Sekoia's error bodies are not documented: the status is the stable code.
            CallError::Refused(a) => IngestError::Refused { status: a.status, code: format!("HTTP{}", a.status), message: a.message },
            other => IngestError::from(other),
        };
        stats.failures.fetch_add(1, Relaxed);
        stats.set_last_error(&e.code());
        Err(e)
    }

    /// An empty batch (`[]`): the intake answers it when it is reachable and the key is taken.
    pub async fn probe(&self, deadline: Instant) -> Result<(), IngestError> {
        self.call(&[], deadline, &StreamStats::default()).await.map_err(IngestError::from)
    }

    async fn call(&self, events: &[SekoiaEvent], deadline: Instant, stats: &StreamStats) -> Result<(), CallError> {
        let body: Vec<Value> = events.iter().map(|e| json!({"intake_key": self.key, "json": e.json, "timestamp": e.timestamp})).collect();
        let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        let build = |http: &reqwest::Client| {
            http.post(&self.url).header("X-SEKOIAIO-INTAKE-KEY", &self.key).header("content-type", "application/json").body(body.clone())
        };
        let logic = IntakeRules { events: events.len() };
        let call = Call { build: &build, auth: &NoAuth, logic: &logic, deadline, retries: Some(&stats.retries), what: "sekoia intake" };
        self.driver.send(call).await?;
        stats.calls.fetch_add(1, Relaxed);
        stats.rows.fetch_add(events.len() as u64, Relaxed);
        stats.bytes.fetch_add(body.len() as u64, Relaxed);
        Ok(())
    }
}
