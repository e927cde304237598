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
use crate::azure::logs_ingestion::{IngestError, IngestionClient};
use crate::model::schema::Row;

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
    pub fn new(client: Arc<IngestionClient>, streams: impl IntoIterator<Item = String>, settings: BatchSettings) -> Self {
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

async fn run_stream(
    stream: String,
    mut rx: mpsc::Receiver<Submission>,
    mut stop: watch::Receiver<bool>,
    client: Arc<IngestionClient>,
    s: BatchSettings,
) {
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

async fn dispatch(
    stream: &str,
    batch: Vec<Submission>,
    client: &Arc<IngestionClient>,
    permits: &Arc<Semaphore>,
    calls: &mut JoinSet<()>,
) {
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
