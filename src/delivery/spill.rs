//! The durable spill: when a destination cannot take accepted events within the request's deadline, they are
//! written here and the sender still gets 202; a background task redelivers them when the destination is back.
//!
//! `dir:<path>` keeps one file per spilled batch, `<path>/<destination>/<stream or source>/<time>-<seq>.json`.
//! A batch is written to a temporary file, fsynced, renamed into place and the directory fsynced before the
//! sender is answered, so a kill at any point loses nothing acknowledged and never leaves a half-written batch
//! where the drain reads (leftover temporary files belong to requests that were never acknowledged, and are
//! removed at start). Each queue drains oldest first, so batches arrive in order of acceptance per stream; a
//! batch is deleted only after its destination took it, so a crash in between redelivers it (at least once;
//! `EventId` lets KQL drop the duplicate).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};

use crate::azure::logs_ingestion::IngestionClient;
use crate::mapping::SekoiaEvent;
use crate::model::schema::Row;
use crate::azure::logs_ingestion::IngestError;
use crate::azure::storage::{StorageClient, StorageError};
use crate::sekoia::SekoiaClient;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "destination", rename_all = "lowercase")]
pub enum SpillBatch {
    Sentinel { stream: String, rows: Vec<String> },
    Sekoia { source: String, events: Vec<SekoiaEvent> },
}

impl SpillBatch {
    fn queue(&self) -> (String, String) {
        match self {
            SpillBatch::Sentinel { stream, .. } => ("sentinel".into(), stream.clone()),
            SpillBatch::Sekoia { source, .. } => ("sekoia".into(), source.clone()),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            SpillBatch::Sentinel { rows, .. } => rows.len(),
            SpillBatch::Sekoia { events, .. } => events.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Default)]
struct QueueState {
    backoff_until: Option<Instant>,
    failures_in_a_row: u32,
    last_error: Option<String>,
}

pub struct Spill {
    dir: PathBuf,
    seq: AtomicU64,
    wake: Notify,
    queues: Mutex<BTreeMap<(String, String), QueueState>>,
    pub spooled: AtomicU64,
    pub redelivered: AtomicU64,
    pub failed_attempts: AtomicU64,
}

fn safe_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Spilled events are vendors' payloads: files readable by the owner only.
fn owner_only(o: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(o, 0o600);
    o
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Spill {
    /// Opens (or creates) a spill directory; removes temporary files of batches never acknowledged.
    pub fn open(dir: &Path) -> std::io::Result<Arc<Spill>> {
        fs::create_dir_all(dir)?;
        let spill = Spill {
            dir: dir.to_path_buf(),
            seq: AtomicU64::new(0),
            wake: Notify::new(),
            queues: Mutex::new(BTreeMap::new()),
            spooled: AtomicU64::new(0),
            redelivered: AtomicU64::new(0),
            failed_attempts: AtomicU64::new(0),
        };
        for (_, files) in spill.scan() {
            for f in files {
                if f.extension().and_then(|e| e.to_str()) == Some("tmp") {
                    let _ = fs::remove_file(&f);
                }
            }
        }
        Ok(Arc::new(spill))
    }

    fn queue_dir(&self, q: &(String, String)) -> PathBuf {
        self.dir.join(&q.0).join(&q.1)
    }

    /// Writes a batch durably; returns once it will survive a crash.
    pub fn put(&self, batch: &SpillBatch) -> Result<(), SpillError> {
        let q = batch.queue();
        if !safe_name(&q.1) {
            return Err(SpillError::UnsafeName(q.1));
        }
        let dir = self.queue_dir(&q);
        fs::create_dir_all(&dir)?;
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_nanos();
        let name = format!("{nanos:024}-{:010}", self.seq.fetch_add(1, Relaxed));
        let tmp = dir.join(format!("{name}.tmp"));
        let done = dir.join(format!("{name}.json"));
        {
            let mut f = owner_only(OpenOptions::new().write(true).create_new(true)).open(&tmp)?;
            f.write_all(&serde_json::to_vec(batch).map_err(std::io::Error::other)?)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &done)?;
        fsync_dir(&dir)?;
        self.spooled.fetch_add(batch.len() as u64, Relaxed);
        self.wake.notify_one();
        Ok(())
    }

    /// Files per queue, oldest first.
    fn scan(&self) -> BTreeMap<(String, String), Vec<PathBuf>> {
        let mut out = BTreeMap::new();
        for dest in ["sentinel", "sekoia"] {
            let Ok(entries) = fs::read_dir(self.dir.join(dest)) else { continue };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let mut files: Vec<PathBuf> = fs::read_dir(e.path()).into_iter().flatten().flatten().map(|f| f.path()).collect();
                files.sort();
                out.insert((dest.to_string(), name), files);
            }
        }
        out
    }

    /// Depth and age per queue, for health.
    pub fn status(&self) -> Value {
        let now = SystemTime::now();
        let states = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        let mut queues = serde_json::Map::new();
        let mut total = 0usize;
        let mut oldest: Option<u64> = None;
        for (q, files) in self.scan() {
            let files: Vec<_> = files.into_iter().filter(|f| f.extension().and_then(|e| e.to_str()) == Some("json")).collect();
            let age = files
                .first()
                .and_then(|f| fs::metadata(f).ok())
                .and_then(|m| m.modified().ok())
                .and_then(|t| now.duration_since(t).ok())
                .map(|d| d.as_secs());
            total += files.len();
            oldest = oldest.max(age);
            let st = states.get(&q);
            queues.insert(
                format!("{}:{}", q.0, q.1),
                json!({"batches": files.len(), "oldestAgeSecs": age, "lastError": st.and_then(|s| s.last_error.clone()),
                    "failuresInARow": st.map(|s| s.failures_in_a_row).unwrap_or(0)}),
            );
        }
        json!({
            "dir": self.dir.display().to_string(),
            "batches": total,
            "oldestAgeSecs": oldest,
            "spooledRows": self.spooled.load(Relaxed),
            "redeliveredRows": self.redelivered.load(Relaxed),
            "failedAttempts": self.failed_attempts.load(Relaxed),
            "queues": queues,
        })
    }

    /// Redelivers spilled batches until `stop` turns true.
    pub fn start_drain(
        self: &Arc<Self>,
        sentinel: Arc<IngestionClient>,
        sekoia: BTreeMap<String, Arc<SekoiaClient>>,
        mut stop: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let spill = self.clone();
        tokio::spawn(async move {
            loop {
                spill.drain_once(&sentinel, &sekoia, &stop).await;
                if *stop.borrow() {
                    return;
                }
                tokio::select! {
                    _ = spill.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = stop.changed() => return,
                }
            }
        })
    }

    async fn drain_once(&self, sentinel: &IngestionClient, sekoia: &BTreeMap<String, Arc<SekoiaClient>>, stop: &watch::Receiver<bool>) {
        for (q, files) in self.scan() {
            let waiting = self.queues.lock().unwrap_or_else(|e| e.into_inner()).get(&q).and_then(|s| s.backoff_until).is_some_and(|t| t > Instant::now());
            if waiting {
                continue;
            }
            for f in files.into_iter().filter(|f| f.extension().and_then(|e| e.to_str()) == Some("json")) {
                if *stop.borrow() {
                    return;
                }
                let batch: SpillBatch = match fs::read(&f).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
                    Some(b) => b,
                    None => {
                        // Renames are atomic, so this is outside damage: keep it aside, never delete it.
                        let aside = self.dir.join("unreadable");
                        let _ = fs::create_dir_all(&aside);
                        let _ = fs::rename(&f, aside.join(f.file_name().unwrap_or_default()));
                        tracing::error!(file = %f.display(), "an unreadable spill file was moved aside");
                        continue;
                    }
                };
                // A stop abandons the attempt at once: the batch stays in the spill for the next start, and
                // shutdown does not wait out a redelivery that is still retrying.
                let mut stopping = stop.clone();
                let result = tokio::select! {
                    r = deliver(&batch, sentinel, sekoia, Instant::now() + Duration::from_secs(30)) => r,
                    _ = stopping.wait_for(|s| *s) => return,
                };
                let mut states = self.queues.lock().unwrap_or_else(|e| e.into_inner());
                let st = states.entry(q.clone()).or_default();
                match result {
                    Ok(()) => {
                        let _ = fs::remove_file(&f);
                        if let Some(dir) = f.parent() {
                            let _ = fsync_dir(dir);
                        }
                        self.redelivered.fetch_add(batch.len() as u64, Relaxed);
                        st.failures_in_a_row = 0;
                        st.backoff_until = None;
                        tracing::info!(queue = %format!("{}:{}", q.0, q.1), rows = batch.len(), "redelivered a spilled batch");
                    }
                    Err(e) => {
                        self.failed_attempts.fetch_add(1, Relaxed);
                        st.failures_in_a_row += 1;
                        let secs = (1u64 << st.failures_in_a_row.min(6)).min(60) as f64;
                        st.backoff_until = Some(Instant::now() + Duration::from_secs_f64(secs * (0.75 + fastrand::f64() * 0.5)));
                        tracing::warn!(queue = %format!("{}:{}", q.0, q.1), error = %e, "redelivery failed; will retry");
                        st.last_error = Some(e.to_string());
                        break; // keep the queue's order: nothing newer goes before this batch
                    }
                }
            }
        }
    }
}

/// Why the spill could not keep a batch.
#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    #[error("spill directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("spill queue: {0}")]
    Storage(#[from] StorageError),
    #[error("unsafe spill queue name '{0}'")]
    UnsafeName(String),
    #[error("the spill task stopped: {0}")]
    Task(String),
}

/// Why a spilled batch was not redelivered (it stays spilled).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedeliveryError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("Sekoia is not configured for source '{0}' any more")]
    SekoiaNotConfigured(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Sends a spilled batch to its destination.
pub async fn deliver(
    batch: &SpillBatch,
    sentinel: &IngestionClient,
    sekoia: &BTreeMap<String, Arc<SekoiaClient>>,
    deadline: Instant,
) -> Result<(), RedeliveryError> {
    match batch {
        SpillBatch::Sentinel { stream, rows } => {
            let rows: Vec<Row> = rows.iter().cloned().map(Row::from_checked_json).collect();
            let out = sentinel.upload(stream, &rows, deadline).await;
            match out.failures.into_iter().next() {
                None => Ok(()),
                Some((_, e)) => Err(e.into()),
            }
        }
        SpillBatch::Sekoia { source, events } => match sekoia.get(source) {
            Some(c) => Ok(c.send(source, events, deadline).await?),
            None => Err(RedeliveryError::SekoiaNotConfigured(source.clone())),
        },
    }
}

/// What a queue message carries: a batch, or (over the queue's 64 KiB) a pointer to the blob that holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum QueueEnvelope {
    Blob { blob: String },
    Batch(SpillBatch),
}

/// Batch text at most this long goes in the message itself: base64 makes it 4/3 larger, and a queue message
/// holds 64 KiB.
pub const MAX_INLINE_BYTES: usize = 48 * 1024;

/// `azure-queue`: spilled batches as messages on the function's own storage queue, drained by the queue-triggered
/// `redeliver` function (the Functions host retries a failed message and moves it to `<queue>-poison` after
/// `maxDequeueCount`).
pub struct QueueSpill {
    pub client: StorageClient,
    pub queue: String,
    pub container: String,
    pub spooled: AtomicU64,
    pub redelivered: AtomicU64,
    pub failed_attempts: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl QueueSpill {
    pub async fn open(client: StorageClient, queue: &str, container: &str) -> Result<Arc<QueueSpill>, StorageError> {
        client.create_queue(queue).await?;
        client.create_container(container).await?;
        Ok(Arc::new(QueueSpill {
            client,
            queue: queue.into(),
            container: container.into(),
            spooled: AtomicU64::new(0),
            redelivered: AtomicU64::new(0),
            failed_attempts: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }))
    }

    /// Enqueues a batch (base64 message text, as the queue trigger reads it by default); returns once stored.
    pub async fn put(&self, batch: &SpillBatch) -> Result<(), StorageError> {
        // Serialising our own types cannot fail; the envelope of a blob is one short string.
        let text = serde_json::to_string(batch).unwrap_or_default();
        let envelope = if text.len() <= MAX_INLINE_BYTES {
            text
        } else {
            let name = format!("{}.json", uuid::Uuid::new_v4());
            self.client.put_blob(&self.container, &name, text.into_bytes()).await?;
            serde_json::to_string(&QueueEnvelope::Blob { blob: name }).unwrap_or_default()
        };
        self.client.put_message(&self.queue, &base64::Engine::encode(&base64::engine::general_purpose::STANDARD, envelope)).await?;
        self.spooled.fetch_add(batch.len() as u64, Relaxed);
        Ok(())
    }

    /// Redelivers one message's batch (its text as the trigger hands it over); the blob, if any, is removed
    /// after success.
    pub async fn redeliver(
        &self,
        message: &str,
        sentinel: &IngestionClient,
        sekoia: &BTreeMap<String, Arc<SekoiaClient>>,
        deadline: Instant,
    ) -> Result<usize, RedeliverError> {
        let envelope: QueueEnvelope = serde_json::from_str(message).map_err(|e| RedeliverError::Unreadable(e.to_string()))?;
        let (batch, blob) = match envelope {
            QueueEnvelope::Batch(b) => (b, None),
            QueueEnvelope::Blob { blob } => {
                let text = self.client.get_blob(&self.container, &blob).await.map_err(|e| RedeliverError::Failed(e.into()))?;
                let b: SpillBatch = serde_json::from_str(&text).map_err(|e| RedeliverError::Unreadable(e.to_string()))?;
                (b, Some(blob))
            }
        };
        if let Err(e) = deliver(&batch, sentinel, sekoia, deadline).await {
            self.failed_attempts.fetch_add(1, Relaxed);
            *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
            return Err(RedeliverError::Failed(e));
        }
        if let Some(b) = blob {
            // Delivered already: a blob left behind costs storage, never data.
            if let Err(e) = self.client.delete_blob(&self.container, &b).await {
                tracing::warn!(blob = %b, error = %e, "could not delete a redelivered spill blob");
            }
        }
        self.redelivered.fetch_add(batch.len() as u64, Relaxed);
        Ok(batch.len())
    }

    /// Status with the queue's depth, the oldest message's age and the poison queue's depth.
    pub async fn status_with_depth(&self) -> Value {
        let mut v = self.status();
        let poison = format!("{}-poison", self.queue);
        let (main, bad) = tokio::join!(self.client.depth(&self.queue), self.client.depth(&poison));
        match main {
            Ok((n, age)) => {
                v["batches"] = json!(n);
                v["oldestAgeSecs"] = json!(age);
            }
            Err(e) => v["depthError"] = json!(e.to_string()),
        }
        v["poisonBatches"] = json!(bad.map(|(n, _)| n).unwrap_or(0));
        v
    }

    pub fn status(&self) -> Value {
        json!({
            "backend": "azure-queue",
            "queue": self.queue,
            "spooledRows": self.spooled.load(Relaxed),
            "redeliveredRows": self.redelivered.load(Relaxed),
            "failedAttempts": self.failed_attempts.load(Relaxed),
            "lastError": *self.last_error.lock().unwrap_or_else(|p| p.into_inner()),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RedeliverError {
    #[error("unreadable spill message: {0}")]
    Unreadable(String),
    #[error("redelivery failed: {0}")]
    Failed(RedeliveryError),
}

/// The spill in use.
#[derive(Clone)]
pub enum SpillBackend {
    Dir(Arc<Spill>),
    Queue(Arc<QueueSpill>),
}

impl SpillBackend {
    /// Stores a batch durably; the number of events kept.
    pub async fn put(&self, batch: SpillBatch) -> Result<usize, SpillError> {
        let n = batch.len();
        match self {
            SpillBackend::Dir(d) => {
                let d = d.clone();
                tokio::task::spawn_blocking(move || d.put(&batch)).await.map_err(|e| SpillError::Task(e.to_string()))??;
            }
            SpillBackend::Queue(q) => q.put(&batch).await?,
        }
        Ok(n)
    }

    pub async fn status(&self) -> Value {
        match self {
            SpillBackend::Dir(d) => d.status(),
            SpillBackend::Queue(q) => {
                let q = q.clone();
                tokio::time::timeout(std::time::Duration::from_secs(3), q.status_with_depth()).await.unwrap_or_else(|_| q.status())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(unix)]
    fn spill_files_are_the_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("sb-spill-mode-{}", uuid::Uuid::new_v4()));
        let spill = Spill::open(&dir).unwrap();
        spill.put(&SpillBatch::Sentinel { stream: "Custom-T_CL".into(), rows: vec!["{}".into()] }).unwrap();
        let file = fs::read_dir(dir.join("sentinel/Custom-T_CL")).unwrap().next().unwrap().unwrap().path();
        assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn batches_are_written_whole_and_leftover_temporaries_are_removed() {
        let dir = std::env::temp_dir().join(format!("sb-spill-{}", uuid::Uuid::new_v4()));
        let spill = Spill::open(&dir).unwrap();
        let b = SpillBatch::Sentinel { stream: "Custom-T_CL".into(), rows: vec!["{\"a\":1}".into()] };
        spill.put(&b).unwrap();
        spill.put(&b).unwrap();
        // A crash between create and rename leaves a temporary file behind.
        fs::write(dir.join("sentinel/Custom-T_CL/999.tmp"), b"{\"destinat").unwrap();
        let spill = Spill::open(&dir).unwrap();
        let files = &spill.scan()[&("sentinel".to_string(), "Custom-T_CL".to_string())];
        assert_eq!(files.len(), 2);
        for f in files {
            let back: SpillBatch = serde_json::from_slice(&fs::read(f).unwrap()).unwrap();
            assert_eq!(back, b);
        }
        assert_eq!(spill.status()["batches"], 2);
        assert!(spill.put(&SpillBatch::Sekoia { source: "../etc".into(), events: vec![] }).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
