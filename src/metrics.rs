//! Counters an operator reads at `GET /api/health`: per source (received, accepted, ignored, rejected by
//! reason, ingested, retried) and per stream (calls, rows, bytes, retries, failures, last Azure error).
//! Nothing here ever holds a secret or a payload.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

#[derive(Debug, Default)]
pub struct SourceStats {
    pub received: AtomicU64,
    /// Events answered 202 and landed.
    pub accepted: AtomicU64,
    pub ignored: AtomicU64,
    pub duplicates: AtomicU64,
    pub rows_ingested: AtomicU64,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
}

impl SourceStats {
    pub fn reject(&self, reason: &'static str) {
        *self.rejected.lock().unwrap_or_else(|e| e.into_inner()).entry(reason).or_default() += 1;
    }

    fn snapshot(&self) -> Value {
        let rejected = self.rejected.lock().unwrap_or_else(|e| e.into_inner()).clone();
        json!({
            "received": self.received.load(Relaxed),
            "accepted": self.accepted.load(Relaxed),
            "ignored": self.ignored.load(Relaxed),
            "duplicates": self.duplicates.load(Relaxed),
            "rowsIngested": self.rows_ingested.load(Relaxed),
            "rejected": rejected,
        })
    }
}

#[derive(Debug, Default)]
pub struct StreamStats {
    pub calls: AtomicU64,
    pub rows: AtomicU64,
    /// Uncompressed JSON bytes of the calls that succeeded, for the mean fill.
    pub bytes: AtomicU64,
    pub gzip_bytes: AtomicU64,
    pub retries: AtomicU64,
    pub splits: AtomicU64,
    pub failures: AtomicU64,
    /// Rows sent with a TimeGenerated Azure replaces with the time received (more than two days old or a day
    /// ahead); their own time is in EventTime.
    pub outside_time_window: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl StreamStats {
    pub fn set_last_error(&self, code: &str) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(code.to_string());
    }

    fn snapshot(&self) -> Value {
        json!({
            "calls": self.calls.load(Relaxed),
            "rows": self.rows.load(Relaxed),
            "bytes": self.bytes.load(Relaxed),
            "gzipBytes": self.gzip_bytes.load(Relaxed),
            "retries": self.retries.load(Relaxed),
            "splits": self.splits.load(Relaxed),
            "failures": self.failures.load(Relaxed),
            "outsideTimeWindow": self.outside_time_window.load(Relaxed),
            "lastError": *self.last_error.lock().unwrap_or_else(|e| e.into_inner()),
        })
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    sources: Mutex<BTreeMap<String, Arc<SourceStats>>>,
    streams: Mutex<BTreeMap<String, Arc<StreamStats>>>,
}

impl Metrics {
    pub fn source(&self, name: &str) -> Arc<SourceStats> {
        let mut m = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(name.to_string()).or_default().clone()
    }

    pub fn stream(&self, name: &str) -> Arc<StreamStats> {
        let mut m = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(name.to_string()).or_default().clone()
    }

    pub fn snapshot(&self) -> Value {
        let sources: BTreeMap<String, Value> = self.sources.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(k, v)| (k.clone(), v.snapshot())).collect();
        let streams: BTreeMap<String, Value> = self.streams.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(k, v)| (k.clone(), v.snapshot())).collect();
        json!({ "sources": sources, "streams": streams })
    }
}
