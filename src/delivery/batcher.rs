//! Sharing ingestion calls between concurrent webhook requests.
//!
//! Each stream has one task that gathers submissions (the rows of one request for that stream) for a short
//! linger window or until a call is full, then sends them as one call. A submission is acknowledged only after
//! the call carrying all of its rows got a 2xx, so a sender never hears 202 for rows that are not in Azure.
//! Submissions are never split across calls unless one alone exceeds a call, which keeps a failed call's
//! blast radius to the submissions in it.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinSet;

use crate::azure::logs_ingestion::pack::array_len;
use crate::azure::logs_ingestion::{IngestError, IngestionClient, UploadOutcome};
use crate::model::schema::Row;

/// What the batcher sends through: the Logs Ingestion client, or a fake in unit tests. (The one seam in
/// process: everything else meets Azure, or its stand-in, over HTTP.)
#[async_trait::async_trait]
pub trait Upload: Send + Sync + 'static {
    /// The largest call, in JSON bytes, that a batch may fill.
    fn max_call_bytes(&self) -> usize;
    async fn upload(&self, stream: &str, rows: &[Row], deadline: Instant) -> UploadOutcome;
}

#[async_trait::async_trait]
impl Upload for IngestionClient {
    fn max_call_bytes(&self) -> usize {
        IngestionClient::max_call_bytes(self)
    }

    async fn upload(&self, stream: &str, rows: &[Row], deadline: Instant) -> UploadOutcome {
        IngestionClient::upload(self, stream, rows, deadline).await
    }
}

#[derive(Debug, Clone)]
pub struct BatchSettings {
    /// How long the first submission of a call waits for company.
    pub linger: Duration,
    /// Calls in flight at once per stream.
    pub max_in_flight: usize,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings { linger: Duration::from_millis(50), max_in_flight: 4 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("the bridge is shutting down")]
    ShuttingDown,
    #[error("no stream {0} is configured")]
    UnknownStream(String),
}

struct Submission {
    rows: Vec<Row>,
    bytes: usize,
    deadline: Instant,
    done: oneshot::Sender<Result<(), DeliveryError>>,
}

/// Handles to every stream's batching task.
pub struct Batcher {
    streams: HashMap<String, mpsc::Sender<Submission>>,
    tasks: std::sync::Mutex<Option<JoinSet<()>>>,
    stop: watch::Sender<bool>,
}

impl Batcher {
    pub fn new(client: Arc<dyn Upload>, streams: impl IntoIterator<Item = String>, settings: BatchSettings) -> Self {
        let mut tasks = JoinSet::new();
        let mut senders = HashMap::new();
        let (stop, stopped) = watch::channel(false);
        for stream in streams {
            let (tx, rx) = mpsc::channel(4096);
            tasks.spawn(run_stream(stream.clone(), rx, stopped.clone(), client.clone(), settings.clone()));
            senders.insert(stream, tx);
        }
        Batcher { streams: senders, tasks: std::sync::Mutex::new(Some(tasks)), stop }
    }

    /// Delivers rows to a stream; resolves once they are in Azure or cannot be delivered by `deadline`.
    pub async fn deliver(&self, stream: &str, rows: Vec<Row>, deadline: Instant) -> Result<(), DeliveryError> {
        let tx = self.streams.get(stream).ok_or_else(|| DeliveryError::UnknownStream(stream.into()))?;
        let (done, wait) = oneshot::channel();
        let bytes = array_len(&rows);
        tx.send(Submission { rows, bytes, deadline, done }).await.map_err(|_| DeliveryError::ShuttingDown)?;
        wait.await.unwrap_or(Err(DeliveryError::ShuttingDown))
    }

    /// Stops taking submissions, sends what is buffered and waits for every call in flight.
    /// Submissions already queued are still sent; later ones are answered [`DeliveryError::ShuttingDown`].
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut tasks) = tasks {
            while tasks.join_next().await.is_some() {}
        }
    }
}

async fn run_stream(stream: String, mut rx: mpsc::Receiver<Submission>, mut stop: watch::Receiver<bool>, client: Arc<dyn Upload>, s: BatchSettings) {
    let limit = client.max_call_bytes();
    let permits = Arc::new(Semaphore::new(s.max_in_flight.max(1)));
    let mut calls = JoinSet::new();
    let mut batch: Vec<Submission> = Vec::new();
    let mut size = 2usize;
    let mut flush_at = Instant::now();
    let mut stopping = false;
    loop {
        let next = tokio::select! {
            sub = rx.recv() => sub,
            _ = tokio::time::sleep_until(flush_at.into()), if !batch.is_empty() => {
                dispatch(&stream, std::mem::take(&mut batch), &client, &permits, &mut calls).await;
                size = 2;
                continue;
            }
            _ = stop.changed(), if !stopping => {
                // Take nothing new; what is queued still drains through recv() below.
                stopping = true;
                rx.close();
                continue;
            }
        };
        let Some(sub) = next else { break };
        // `size` counts the array as sent: brackets once, a comma between submissions.
        let added = sub.bytes - 2 + usize::from(!batch.is_empty());
        if !batch.is_empty() && size + added > limit {
            dispatch(&stream, std::mem::take(&mut batch), &client, &permits, &mut calls).await;
            size = 2;
        }
        if batch.is_empty() {
            flush_at = Instant::now() + s.linger;
            size = sub.bytes;
        } else {
            size += added;
        }
        batch.push(sub);
        // Full enough that no typical row would fit: send now rather than wait out the linger.
        if size + 256 > limit {
            dispatch(&stream, std::mem::take(&mut batch), &client, &permits, &mut calls).await;
            size = 2;
        }
        while calls.try_join_next().is_some() {}
    }
    if !batch.is_empty() {
        dispatch(&stream, batch, &client, &permits, &mut calls).await;
    }
    while calls.join_next().await.is_some() {}
}

async fn dispatch(stream: &str, batch: Vec<Submission>, client: &Arc<dyn Upload>, permits: &Arc<Semaphore>, calls: &mut JoinSet<()>) {
    // Waiting for a permit here is the backpressure: meanwhile the channel fills and the next call is fuller.
    let permit = permits.clone().acquire_owned().await.expect("semaphore is never closed");
    let stream = stream.to_string();
    let client = client.clone();
    calls.spawn(async move {
        let _permit = permit;
        let deadline = batch.iter().map(|s| s.deadline).min().unwrap_or_else(Instant::now);
        let mut rows = Vec::with_capacity(batch.iter().map(|s| s.rows.len()).sum());
        let mut ranges: Vec<Range<usize>> = Vec::with_capacity(batch.len());
        for s in &batch {
            let start = rows.len();
            rows.extend(s.rows.iter().cloned());
            ranges.push(start..rows.len());
        }
        let outcome = client.upload(&stream, &rows, deadline).await;
        for (sub, range) in batch.into_iter().zip(ranges) {
            let result = match outcome.failure_in(&range) {
                None => Ok(()),
                Some(e) => Err(DeliveryError::Ingest(e.clone())),
            };
            let _ = sub.done.send(result);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Refuses every call that carries a row with "poison" in it; records the calls it was given.
    #[derive(Default)]
    struct FakeUpload {
        calls: Mutex<Vec<usize>>,
    }

    #[async_trait::async_trait]
    impl Upload for FakeUpload {
        fn max_call_bytes(&self) -> usize {
            // Two of the test's 400-byte submissions fit in a call with room for no third (the batcher sends a
            // batch early once fewer than 256 bytes are left).
            1100
        }

        async fn upload(&self, _: &str, rows: &[Row], _: Instant) -> UploadOutcome {
            self.calls.lock().unwrap().push(rows.len());
            let mut out = UploadOutcome { calls: 1, ..Default::default() };
            if rows.iter().any(|r| r.as_json().contains("poison")) {
                let e = IngestError::Refused { status: 400, code: "InvalidContent".into(), message: "refused".into() };
                out.failures.push((0..rows.len(), e));
            }
            out
        }
    }

    fn row(tag: &str) -> Row {
        // 400 JSON bytes, whatever the tag.
        Row::from_checked_json(format!("{{\"k\":\"{tag:<392}\"}}"))
    }

    #[tokio::test]
    async fn a_failed_call_fails_only_its_own_submissions() {
        let fake = Arc::new(FakeUpload::default());
        let batcher = Arc::new(Batcher::new(fake.clone(), ["S".to_string()], BatchSettings { linger: Duration::from_millis(50), max_in_flight: 1 }));
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut waits = Vec::new();
        for tag in ["poison", "innocent-in-the-same-call", "innocent-in-the-next-call"] {
            let b = batcher.clone();
            // A current-thread runtime runs these in the order spawned: the first two share a call.
            waits.push(tokio::spawn(async move { b.deliver("S", vec![row(tag)], deadline).await }));
        }
        let results: Vec<Result<(), DeliveryError>> = futures::future::join_all(waits).await.into_iter().map(|r| r.unwrap()).collect();
        assert!(matches!(results[0], Err(DeliveryError::Ingest(IngestError::Refused { status: 400, .. }))), "{results:?}");
        assert!(results[1].is_err(), "it shared the refused call: {results:?}");
        assert_eq!(results[2], Ok(()), "a submission in another call is not touched by the refusal");
        assert_eq!(*fake.calls.lock().unwrap(), vec![2, 1]);
        assert_eq!(batcher.deliver("nope", vec![row("x")], deadline).await, Err(DeliveryError::UnknownStream("nope".into())));
        batcher.shutdown().await;
        assert_eq!(batcher.deliver("S", vec![row("late")], deadline).await, Err(DeliveryError::ShuttingDown));
    }
}
