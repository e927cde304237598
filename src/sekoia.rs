//! A small client for Sekoia.io's HTTPS intake (`../shared/sekoia-contract.md`): events as JSON text, posted to
//! `POST {base}/array` with each event's own time, authenticated with `X-SEKOIAIO-INTAKE-KEY`. Calls are packed
//! under a size cap (Sekoia's limit is not documented, so it is a setting); 413 splits a call; 429, 5xx,
//! timeouts and dropped connections are retried with Retry-After honoured until the deadline; other 4xx are
//! permanent. A 200 must carry one event id per event sent, or the call counts as failed.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::ingest::{IngestError, RetryPolicy};
use crate::mapping::SekoiaEvent;
use crate::metrics::Metrics;

pub const DEFAULT_INTAKE_URL: &str = "https://intake.sekoia.io";

pub struct SekoiaClient {
    http: reqwest::Client,
    url: String,
    key: String,
    max_call_bytes: usize,
    retry: RetryPolicy,
    metrics: Arc<Metrics>,
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
    pub fn new(base: &str, key: &str, max_call_bytes: usize, retry: RetryPolicy, metrics: Arc<Metrics>) -> Self {
        SekoiaClient {
            http: reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).build().expect("reqwest client"),
            url: format!("{}/array", base.trim_end_matches('/')),
            key: key.to_string(),
            max_call_bytes,
            retry,
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
        let mut pending = calls;
        pending.reverse();
        while let Some(range) = pending.pop() {
            match self.call(&events[range.clone()], deadline, &stats).await {
                Ok(()) => {}
                Err(CallError::TooLarge) if range.len() > 1 => {
                    stats.splits.fetch_add(1, Relaxed);
                    let mid = range.start + range.len() / 2;
                    pending.push(mid..range.end);
                    pending.push(range.start..mid);
                }
                Err(CallError::TooLarge) => {
                    return Err(IngestError::TooLarge { bytes: entry_len(&self.key, &events[range.start]), limit: self.max_call_bytes })
                }
                Err(CallError::Failed(e)) => {
                    stats.failures.fetch_add(1, Relaxed);
                    stats.set_last_error(&e.code());
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    async fn call(&self, events: &[SekoiaEvent], deadline: Instant, stats: &crate::metrics::StreamStats) -> Result<(), CallError> {
        let body: Vec<Value> = events.iter().map(|e| json!({"intake_key": self.key, "json": e.json, "timestamp": e.timestamp})).collect();
        let body = serde_json::to_vec(&body).expect("json");
        let mut attempt = 0u32;
        let mut last = String::from("no attempt made");
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(CallError::Failed(IngestError::Deadline { last }));
            }
            let remaining = deadline - now;
            let sent = self
                .http
                .post(&self.url)
                .header("X-SEKOIAIO-INTAKE-KEY", &self.key)
                .header("content-type", "application/json")
                .timeout(remaining.min(self.retry.attempt_timeout))
                .body(body.clone())
                .send()
                .await;
            let (retryable, retry_after) = match sent {
                Err(e) => {
                    last = if e.is_timeout() { "Timeout".into() } else { "ConnectionError".into() };
                    (true, None)
                }
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = crate::ingest::retry_after_of(resp.headers());
                    let text = resp.text().await.unwrap_or_default();
                    if status.is_success() {
                        let ids = serde_json::from_str::<Value>(&text).ok().and_then(|v| v["event_ids"].as_array().map(Vec::len));
                        if ids == Some(events.len()) {
                            stats.calls.fetch_add(1, Relaxed);
                            stats.rows.fetch_add(events.len() as u64, Relaxed);
                            stats.bytes.fetch_add(body.len() as u64, Relaxed);
                            return Ok(());
                        }
                        // Not one id per event: we cannot tell what landed; treat it as a failure to retry.
                        last = format!("EventIdMismatch: sent {}, got {:?}", events.len(), ids);
                        (true, retry_after)
                    } else if status.as_u16() == 413 {
                        return Err(CallError::TooLarge);
                    } else if status.as_u16() == 429 || status.as_u16() == 408 || status.is_server_error() {
                        last = format!("{}", status.as_u16());
                        (true, retry_after)
                    } else {
                        // Sekoia's error bodies are not documented: the status is the stable code, the text the detail.
                        let code = format!("HTTP{}", status.as_u16());
                        return Err(CallError::Failed(IngestError::Rejected { status: status.as_u16(), code, message: text.chars().take(300).collect() }));
                    }
                }
            };
            debug_assert!(retryable);
            let delay = self.retry.delay(attempt, retry_after);
            attempt += 1;
            if Instant::now() + delay >= deadline {
                return Err(CallError::Failed(IngestError::Deadline { last }));
            }
            stats.retries.fetch_add(1, Relaxed);
            tokio::time::sleep(delay).await;
        }
    }
}

enum CallError {
    TooLarge,
    Failed(IngestError),
}
