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
//!
//! Nothing blocks a queue for good: records the destination refuses for what they hold go to the dead-letter
//! store (`<path>/dead-letter/…`, with the reason) while the rest of their batch is delivered, and a batch
//! that still fails after `SPILL_MAX_ATTEMPTS` attempts is moved there too, so the batches behind it drain.
//! `sentinel-bridge spill replay` puts dead letters back once the cause is fixed. The directory holds at most
//! `SPILL_MAX_BYTES` (dead letters included); past that a put fails and the sender hears 503, rather than the
//! disk filling. Each source may hold at most its share of that (`SPILL_MAX_BYTES` / the number of sources) in
//! batches waiting for redelivery, so one source in a storm cannot fill the spill and turn every other
//! source's outage into 503s; a batch file's name carries its source, so the shares survive a restart.

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

use crate::azure::logs_ingestion::IngestError;
use crate::azure::logs_ingestion::IngestionClient;
use crate::azure::storage::{StorageClient, StorageError};
use crate::delivery::seal::{Forged, SealKey};
use crate::mapping::SekoiaEvent;
use crate::model::schema::Row;
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

/// A batch set aside: what was refused or kept failing, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeadLetter {
    pub reason: String,
    pub at: String,
    pub attempts: u32,
    pub batch: SpillBatch,
}

/// The bounds of a directory spill.
#[derive(Debug, Clone, Copy)]
pub struct SpillLimits {
    /// Failed attempts of one batch before it is moved to the dead-letter store.
    pub max_attempts: u32,
    /// Bytes of batch and dead-letter files the directory may hold.
    pub max_bytes: u64,
    /// Sources sharing the directory: each may hold `max_bytes / sources` of batches waiting.
    pub sources: u64,
    /// How long one redelivery attempt may take (the ingestion deadline): its rows are stamped when it starts.
    pub attempt: Duration,
}

impl Default for SpillLimits {
    fn default() -> Self {
        SpillLimits { max_attempts: 30, max_bytes: 1 << 30, sources: 1, attempt: Duration::from_secs(30) }
    }
}

impl SpillLimits {
    /// What one source may hold of batches waiting for redelivery.
    pub fn share(&self) -> u64 {
        self.max_bytes / self.sources.max(1)
    }
}

/// The source a batch file was written for: `<24-digit time>-<10-digit seq>-<source>.json`.
fn source_of(f: &Path) -> Option<String> {
    let stem = f.file_stem()?.to_str()?;
    (stem.len() > 36 && stem.as_bytes()[35] == b'-').then(|| stem[36..].to_string())
}

pub struct Spill {
    dir: PathBuf,
    limits: SpillLimits,
    /// Bytes of the files the directory holds now.
    bytes: AtomicU64,
    seq: AtomicU64,
    wake: Notify,
    queues: Mutex<BTreeMap<(String, String), QueueState>>,
    pub spooled: AtomicU64,
    pub redelivered: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub dead_lettered: AtomicU64,
    last_dead_letter: Mutex<Option<String>>,
    /// Bytes of batches waiting, per source (see [`SpillLimits::share`]).
    by_source: Mutex<BTreeMap<String, u64>>,
}

fn safe_name(s: &str) -> bool {
    crate::azure::logs_ingestion::is_stream_name(s)
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

/// Batches are `.json` once renamed into place; `.tmp` while being written.
fn has_extension(f: &Path, ext: &str) -> bool {
    f.extension().and_then(|e| e.to_str()) == Some(ext)
}

/// Writes `bytes` to `tmp` (owner-only), fsyncs it, renames it to `dest` and fsyncs the directory: `dest`
/// then holds all of `bytes` or, after a crash, what it held before.
fn write_durably(tmp: &Path, dest: &Path, bytes: &[u8]) -> std::io::Result<()> {
    {
        let mut f = owner_only(OpenOptions::new().write(true).create_new(true)).open(tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(tmp, dest)?;
    match dest.parent() {
        Some(dir) => fsync_dir(dir),
        None => Ok(()),
    }
}

impl Spill {
    /// Opens (or creates) a spill directory; removes temporary files of batches never acknowledged.
    pub fn open(dir: &Path, limits: SpillLimits) -> std::io::Result<Arc<Spill>> {
        fs::create_dir_all(dir)?;
        let spill = Spill {
            dir: dir.to_path_buf(),
            limits,
            bytes: AtomicU64::new(0),
            seq: AtomicU64::new(0),
            wake: Notify::new(),
            queues: Mutex::new(BTreeMap::new()),
            spooled: AtomicU64::new(0),
            redelivered: AtomicU64::new(0),
            failed_attempts: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            last_dead_letter: Mutex::new(None),
            by_source: Mutex::new(BTreeMap::new()),
        };
        let mut held = 0u64;
        let mut by_source: BTreeMap<String, u64> = BTreeMap::new();
        for (waiting, files) in spill.scan().into_values().map(|f| (true, f)).chain(spill.scan_dead().into_values().map(|f| (false, f))) {
            for f in files {
                if has_extension(&f, "tmp") {
                    let _ = fs::remove_file(&f);
                } else {
                    let len = fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
                    held += len;
                    if let Some(source) = source_of(&f).filter(|_| waiting) {
                        *by_source.entry(source).or_default() += len;
                    }
                }
            }
        }
        spill.bytes.store(held, Relaxed);
        *spill.by_source.lock().unwrap_or_else(|e| e.into_inner()) = by_source;
        Ok(Arc::new(spill))
    }

    fn queue_dir(&self, q: &(String, String)) -> PathBuf {
        self.dir.join(&q.0).join(&q.1)
    }

    fn dead_dir(&self, q: &(String, String)) -> PathBuf {
        self.dir.join("dead-letter").join(&q.0).join(&q.1)
    }

    /// Writes `bytes` as `<dir>/<name>.json` durably: temporary file, fsync, rename, directory fsync.
    /// `capped`: new data, refused past `max_bytes` (a dead letter moves what is already held, and is not).
    /// `source`: the source whose share new batches count against (its name goes in the file's).
    fn write_file(&self, dir: &Path, bytes: &[u8], capped: bool, source: Option<&str>) -> Result<PathBuf, SpillError> {
        let len = bytes.len() as u64;
        let held = self.bytes.load(Relaxed);
        if capped && held + len > self.limits.max_bytes {
            return Err(SpillError::Full { limit: self.limits.max_bytes });
        }
        if let Some(source) = source {
            // Reserved before the write, so concurrent puts of one source cannot overshoot its share together.
            let mut shares = self.by_source.lock().unwrap_or_else(|e| e.into_inner());
            let mine = shares.entry(source.to_string()).or_default();
            if capped && *mine + len > self.limits.share() {
                return Err(SpillError::SourceFull { name: source.to_string(), share: self.limits.share() });
            }
            *mine += len;
        }
        let written = self.write_new(dir, bytes, source);
        if written.is_err() {
            self.release(source, len);
        }
        written
    }

    fn write_new(&self, dir: &Path, bytes: &[u8], source: Option<&str>) -> Result<PathBuf, SpillError> {
        fs::create_dir_all(dir)?;
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_nanos();
        let mut name = format!("{nanos:024}-{:010}", self.seq.fetch_add(1, Relaxed));
        if let Some(source) = source {
            name = format!("{name}-{source}");
        }
        let done = dir.join(format!("{name}.json"));
        write_durably(&dir.join(format!("{name}.tmp")), &done, bytes)?;
        self.bytes.fetch_add(bytes.len() as u64, Relaxed);
        Ok(done)
    }

    /// Gives back bytes a source held.
    fn release(&self, source: Option<&str>, len: u64) {
        if let Some(source) = source {
            let mut shares = self.by_source.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(mine) = shares.get_mut(source) {
                *mine = mine.saturating_sub(len);
            }
        }
    }

    /// Keeps a file that is outside damage in `<dir>/unreadable`, never deleting it.
    fn move_aside(&self, f: &Path, what: &'static str) {
        let aside = self.dir.join("unreadable");
        let _ = fs::create_dir_all(&aside);
        let _ = fs::rename(f, aside.join(f.file_name().unwrap_or_default()));
        tracing::error!(file = %f.display(), "{what}");
    }

    /// Replaces a file's content in place (same name, so the queue's order holds), as durably as a put.
    fn rewrite_file(&self, f: &Path, bytes: &[u8]) -> Result<(), SpillError> {
        let old = fs::metadata(f).map(|m| m.len()).unwrap_or(0);
        write_durably(&f.with_extension("tmp"), f, bytes)?;
        self.bytes.fetch_add(bytes.len() as u64, Relaxed);
        self.bytes.fetch_sub(old.min(self.bytes.load(Relaxed)), Relaxed);
        // What redelivery took out of the batch is given back to its source (a rewrite only ever shrinks it).
        self.release(source_of(f).as_deref(), old.saturating_sub(bytes.len() as u64));
        Ok(())
    }

    fn remove_file(&self, f: &Path) {
        let len = fs::metadata(f).map(|m| m.len()).unwrap_or(0);
        if fs::remove_file(f).is_ok() {
            self.bytes.fetch_sub(len.min(self.bytes.load(Relaxed)), Relaxed);
            if !f.starts_with(self.dir.join("dead-letter")) {
                self.release(source_of(f).as_deref(), len);
            }
            if let Some(dir) = f.parent() {
                let _ = fsync_dir(dir);
            }
        }
    }

    /// Writes a batch of `source`'s events durably, within its share; returns once it will survive a crash.
    pub fn put(&self, batch: &SpillBatch, source: &str) -> Result<(), SpillError> {
        let q = batch.queue();
        if !safe_name(&q.1) {
            return Err(SpillError::UnsafeName(q.1));
        }
        if !safe_name(source) {
            return Err(SpillError::UnsafeName(source.to_string()));
        }
        // Serialising our own types cannot fail.
        self.write_file(&self.queue_dir(&q), &serde_json::to_vec(batch).unwrap_or_default(), true, Some(source))?;
        self.spooled.fetch_add(batch.len() as u64, Relaxed);
        self.wake.notify_one();
        Ok(())
    }

    /// Sets a batch aside with the reason; it stays there until `spill replay`.
    fn dead_letter(&self, batch: SpillBatch, reason: &str, attempts: u32) -> Result<(), SpillError> {
        let q = batch.queue();
        if !safe_name(&q.1) {
            return Err(SpillError::UnsafeName(q.1));
        }
        let n = batch.len() as u64;
        let at = crate::model::time::format_datetime(time::OffsetDateTime::now_utc());
        let letter = DeadLetter { reason: reason.to_string(), at, attempts, batch };
        self.write_file(&self.dead_dir(&q), &serde_json::to_vec(&letter).unwrap_or_default(), false, None)?;
        self.dead_lettered.fetch_add(n, Relaxed);
        *self.last_dead_letter.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{}:{}: {reason}", q.0, q.1));
        tracing::error!(queue = %format!("{}:{}", q.0, q.1), events = n, reason, "spilled events moved to the dead-letter store");
        Ok(())
    }

    /// Puts every dead letter back in its queue; the number of batches moved.
    pub fn replay_dead_letters(&self) -> Result<usize, SpillError> {
        let mut moved = 0;
        for files in self.scan_dead().into_values() {
            for f in files.into_iter().filter(|f| has_extension(f, "json")) {
                let letter: DeadLetter = serde_json::from_slice(&fs::read(&f)?).map_err(|e| SpillError::Unreadable(format!("{}: {e}", f.display())))?;
                let q = letter.batch.queue();
                // Replayed batches count against the directory, not a source's share: they were accepted long ago.
                self.write_file(&self.queue_dir(&q), &serde_json::to_vec(&letter.batch).unwrap_or_default(), false, None)?;
                self.remove_file(&f);
                self.wake.notify_one();
                moved += 1;
            }
        }
        Ok(moved)
    }

    /// Files per queue, oldest first.
    fn scan(&self) -> BTreeMap<(String, String), Vec<PathBuf>> {
        scan_queues(&self.dir)
    }

    /// Dead-letter files per queue, oldest first.
    fn scan_dead(&self) -> BTreeMap<(String, String), Vec<PathBuf>> {
        scan_queues(&self.dir.join("dead-letter"))
    }

    /// Depth and age per queue, for health.
    /// Where the spill keeps its files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn status(&self) -> Value {
        let now = SystemTime::now();
        let states = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        let mut queues = serde_json::Map::new();
        let mut total = 0usize;
        let mut oldest: Option<u64> = None;
        for (q, files) in self.scan() {
            let files: Vec<_> = files.into_iter().filter(|f| has_extension(f, "json")).collect();
            let age =
                files.first().and_then(|f| fs::metadata(f).ok()).and_then(|m| m.modified().ok()).and_then(|t| now.duration_since(t).ok()).map(|d| d.as_secs());
            total += files.len();
            oldest = oldest.max(age);
            let st = states.get(&q);
            queues.insert(
                format!("{}:{}", q.0, q.1),
                json!({"batches": files.len(), "oldestAgeSecs": age, "lastError": st.and_then(|s| s.last_error.clone()),
                    "failuresInARow": st.map(|s| s.failures_in_a_row).unwrap_or(0)}),
            );
        }
        let dead: usize = self.scan_dead().values().map(|f| f.iter().filter(|f| has_extension(f, "json")).count()).sum();
        json!({
            "dir": self.dir.display().to_string(),
            "bytes": self.bytes.load(Relaxed),
            "maxBytes": self.limits.max_bytes,
            "deadLetter": {
                "batches": dead,
                "rowsThisRun": self.dead_lettered.load(Relaxed),
                "last": *self.last_dead_letter.lock().unwrap_or_else(|e| e.into_inner()),
                "replay": "sentinel-bridge spill replay",
            },
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
            for f in files.into_iter().filter(|f| has_extension(f, "json")) {
                if *stop.borrow() {
                    return;
                }
                let batch: SpillBatch = match fs::read(&f).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
                    Some(b) => b,
                    None => {
                        // Renames are atomic, so this is outside damage.
                        self.move_aside(&f, "an unreadable spill file was moved aside");
                        continue;
                    }
                };
                // A batch in a queue it does not name was put there from outside: its stream or source name is
                // checked as if it were new, and it is not sent where its directory says.
                if batch.queue() != q {
                    self.move_aside(&f, "a spill file names another queue than the directory it was found in");
                    continue;
                }
                // A stop abandons the attempt at once: the batch stays in the spill for the next start, and
                // shutdown does not wait out a redelivery that is still retrying.
                let mut stopping = stop.clone();
                let result = tokio::select! {
                    r = deliver(&batch, sentinel, sekoia, Instant::now() + self.limits.attempt) => r,
                    _ = stopping.wait_for(|s| *s) => return,
                };
                self.redelivered.fetch_add(result.delivered as u64, Relaxed);
                if let Some((refused, why)) = result.refused {
                    if self.dead_letter(refused, &why, 1).is_err() {
                        // The records stay in their batch file: nothing acknowledged is dropped.
                        break;
                    }
                }
                let mut states = self.queues.lock().unwrap_or_else(|e| e.into_inner());
                let st = states.entry(q.clone()).or_default();
                let Some((pending, e)) = result.pending else {
                    self.remove_file(&f);
                    st.failures_in_a_row = 0;
                    st.backoff_until = None;
                    tracing::info!(queue = %format!("{}:{}", q.0, q.1), rows = result.delivered, "redelivered a spilled batch");
                    continue;
                };
                self.failed_attempts.fetch_add(1, Relaxed);
                st.failures_in_a_row += 1;
                st.last_error = Some(e.to_string());
                if st.failures_in_a_row >= self.limits.max_attempts {
                    // Bounded: the batches behind this one are not held up for ever.
                    let reason = format!("still failing after {} attempts: {e}", st.failures_in_a_row);
                    if self.dead_letter(pending, &reason, st.failures_in_a_row).is_ok() {
                        self.remove_file(&f);
                        st.failures_in_a_row = 0;
                        st.backoff_until = None;
                        continue;
                    }
                } else if pending.len() < batch.len() {
                    // Only what is still pending stays, so a retry does not send the delivered rows again.
                    if let Err(e) = self.rewrite_file(&f, &serde_json::to_vec(&pending).unwrap_or_default()) {
                        tracing::warn!(file = %f.display(), error = %e, "could not narrow a spilled batch to its pending rows");
                    }
                }
                let secs = (1u64 << st.failures_in_a_row.min(6)).min(60) as f64;
                st.backoff_until = Some(Instant::now() + Duration::from_secs_f64(secs * (0.75 + fastrand::f64() * 0.5)));
                tracing::warn!(queue = %format!("{}:{}", q.0, q.1), error = %e, attempts = st.failures_in_a_row, "redelivery failed; will retry");
                break; // keep the queue's order: nothing newer goes before this batch
            }
        }
    }
}

/// `<root>/<destination>/<queue>/<files>`, oldest first. Queue directories are only ever created from safe
/// names, so a directory with any other name is left alone.
fn scan_queues(root: &Path) -> BTreeMap<(String, String), Vec<PathBuf>> {
    let mut out = BTreeMap::new();
    for dest in ["sentinel", "sekoia"] {
        let Ok(entries) = fs::read_dir(root.join(dest)) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !safe_name(&name) {
                continue;
            }
            let mut files: Vec<PathBuf> = fs::read_dir(e.path()).into_iter().flatten().flatten().map(|f| f.path()).collect();
            files.sort();
            out.insert((dest.to_string(), name), files);
        }
    }
    out
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
    #[error("the spill directory is full (SPILL_MAX_BYTES={limit})")]
    Full { limit: u64 },
    #[error("source '{name}' holds its whole share of the spill ({share} bytes: SPILL_MAX_BYTES over the sources)")]
    SourceFull { name: String, share: u64 },
    #[error("unreadable dead letter {0}")]
    Unreadable(String),
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

/// What became of a spilled batch sent again.
#[derive(Debug, Default)]
pub struct Redelivered {
    pub delivered: usize,
    /// Records the destination refused for what they hold, with its reason: they go to the dead-letter store,
    /// since sending them again could only fail again.
    pub refused: Option<(SpillBatch, String)>,
    /// What is still to deliver, and why it was not (an outage, or a refusal of the call: the configuration's).
    pub pending: Option<(SpillBatch, RedeliveryError)>,
}

/// Sends a spilled batch to its destination; what it refuses for good is told apart from what is to retry.
pub async fn deliver(batch: &SpillBatch, sentinel: &IngestionClient, sekoia: &BTreeMap<String, Arc<SekoiaClient>>, deadline: Instant) -> Redelivered {
    match batch {
        SpillBatch::Sentinel { stream, rows } => {
            // TimeGenerated is when the row is handed to Azure, this time too (EventTime keeps the vendor's), so
            // a scheduled rule sees a batch redelivered after an outage longer than its period.
            let now = serde_json::Value::String(crate::model::time::format_datetime(time::OffsetDateTime::now_utc()));
            let as_rows: Vec<Row> = rows.iter().map(|r| Row::from_checked_json(restamp(r, &now))).collect();
            let out = sentinel.upload(stream, &as_rows, deadline).await;
            let mut refused = (Vec::new(), None::<String>);
            let mut pending = (Vec::new(), None::<IngestError>);
            for (range, e) in &out.failures {
                let part = rows[range.clone()].iter().cloned();
                if e.is_records_fault() {
                    refused.0.extend(part);
                    refused.1.get_or_insert_with(|| e.to_string());
                } else {
                    pending.0.extend(part);
                    pending.1.get_or_insert_with(|| e.clone());
                }
            }
            let failed = refused.0.len() + pending.0.len();
            Redelivered {
                delivered: rows.len() - failed,
                refused: refused.1.map(|why| (SpillBatch::Sentinel { stream: stream.clone(), rows: refused.0 }, why)),
                pending: pending.1.map(|e| (SpillBatch::Sentinel { stream: stream.clone(), rows: pending.0 }, e.into())),
            }
        }
        SpillBatch::Sekoia { source, events } => {
            let result = match sekoia.get(source) {
                Some(c) => c.send(source, events, deadline).await.map_err(RedeliveryError::from),
                None => Err(RedeliveryError::SekoiaNotConfigured(source.clone())),
            };
            match result {
                Ok(()) => Redelivered { delivered: events.len(), ..Default::default() },
                // Sekoia batches are one request's events, packed per call: no one else's rows share them.
                Err(RedeliveryError::Ingest(e)) if e.is_records_fault() => Redelivered { refused: Some((batch.clone(), e.to_string())), ..Default::default() },
                Err(e) => Redelivered { pending: Some((batch.clone(), e)), ..Default::default() },
            }
        }
    }
}

/// A stored row's JSON with `TimeGenerated` set to `now` (the row as it was when it does not parse, which our own
/// spill never writes).
fn restamp(row: &str, now: &serde_json::Value) -> String {
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(row) {
        Ok(mut m) => {
            m.insert(crate::mapping::TIME_GENERATED.into(), now.clone());
            serde_json::Value::Object(m).to_string()
        }
        Err(_) => row.to_string(),
    }
}

/// What a queue message carries: a batch, or (over the queue's 64 KiB) a pointer to the blob that holds it;
/// on the poison queue, also dead letters (a batch and why it was set aside), inline or in a blob.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged, rename_all = "camelCase")]
pub enum QueueEnvelope {
    /// A message put back after a failed redelivery: its text as it was, and how many times it was tried.
    Retry {
        retry: Retry,
    },
    Blob {
        blob: String,
    },
    DeadLetterBlob {
        #[serde(rename = "deadLetterBlob")]
        dead_letter_blob: String,
    },
    DeadLetter {
        #[serde(rename = "deadLetter")]
        dead_letter: DeadLetter,
    },
    Batch(SpillBatch),
}

/// A spill message whose seals held: the attempts so far, the sealed message it carries, and what that holds.
struct Unsealed {
    attempt: u32,
    message: String,
    envelope: Result<QueueEnvelope, String>,
}

/// A redelivery that failed, waiting to be tried again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Retry {
    pub attempt: u32,
    /// The message as it was first put (a batch or a blob pointer).
    pub message: String,
}

/// When a failed redelivery is tried again: after `base` × 2^(attempt − 1), at most `max`.
#[derive(Debug, Clone, Copy)]
pub struct RetrySchedule {
    pub base: Duration,
    pub max: Duration,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule { base: Duration::from_secs(30), max: Duration::from_secs(900) }
    }
}

impl RetrySchedule {
    pub fn delay(&self, attempt: u32) -> Duration {
        self.base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20)).min(self.max)
    }
}

/// How a redelivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redelivery {
    /// This many events went through (the rest, if any, was put back as a smaller message).
    Done(usize),
    /// Nothing went through: the batch was put back, visible again after `after`, never expiring.
    Deferred { attempt: u32, after: Duration, why: String },
    /// The message (or a blob it names) does not carry the spill's seal: kept in the dead-letter blob `blob`.
    SetAside { blob: String, why: String },
}

/// How the reason of a dead letter set aside for a missing or wrong seal begins (`spill replay` leaves those).
pub const FORGED: &str = "not written by this spill";

/// Where dead letters are kept: blobs with no expiry under this prefix of the spill's container.
pub const DEAD_LETTER_PREFIX: &str = "dead-letter/";

/// Batch text at most this long goes in the message itself: base64 makes it 4/3 larger, and a queue message
/// holds 64 KiB.
pub const MAX_INLINE_BYTES: usize = 48 * 1024;

/// Our own blob names, `<uuid>.json`: a message naming any other blob (`../other-container/…`) was not put
/// by us and is not read with the identity's rights.
fn is_spill_blob_name(name: &str) -> bool {
    name.strip_suffix(".json").is_some_and(|stem| stem.len() == 36 && uuid::Uuid::try_parse(stem).is_ok())
}

/// `azure-queue`: spilled batches as messages on the function's own storage queue, drained by the queue-triggered
/// `redeliver` function.
///
/// A failure to redeliver never spends the host's dequeues: the Functions host moves a message it retried
/// `maxDequeueCount` times to `<queue>-poison`, and re-sends its body there without `messagettl`, so it would
/// expire in 7 days (the WebJobs queue processor's copy; Storage's default TTL). Instead the batch is put back
/// as a new message with `messagettl=-1`, visible again after a growing delay ([`RetrySchedule`]), and the
/// trigger answers 2xx: an outage of any length costs no data. What still reaches the poison queue (a message
/// that cannot be read, or could not be put back) is moved at once by the `deadletter` function into a blob
/// under [`DEAD_LETTER_PREFIX`] with the reason, with no expiry, as are records too large for any call;
/// `doctor` and `/api/health` count them as failures, and `spill replay` puts them back.
pub struct QueueSpill {
    pub client: StorageClient,
    pub queue: String,
    pub container: String,
    pub spooled: AtomicU64,
    pub redelivered: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub dead_lettered: AtomicU64,
    last_error: Mutex<Option<String>>,
    last_dead_letter: Mutex<Option<String>>,
    pub retry: RetrySchedule,
    depth: Mutex<DepthCache>,
    /// Seals every message and blob this spill writes, and opens every one it reads.
    seal: SealKey,
}

/// The last depth read from Storage and when, and whether a refresh is under way.
#[derive(Default)]
struct DepthCache {
    read: Option<(Instant, serde_json::Map<String, Value>)>,
    refreshing: bool,
}

/// How old the queue depth health shows may be before a read of health refreshes it (in the background).
pub const DEPTH_REFRESH: Duration = Duration::from_secs(10);

impl QueueSpill {
    pub async fn open(client: StorageClient, queue: &str, container: &str, retry: RetrySchedule, seal: SealKey) -> Result<Arc<QueueSpill>, StorageError> {
        client.create_queue(queue).await?;
        client.create_queue(&format!("{queue}-poison")).await?;
        client.create_container(container).await?;
        Ok(Arc::new(QueueSpill {
            client,
            queue: queue.into(),
            container: container.into(),
            spooled: AtomicU64::new(0),
            redelivered: AtomicU64::new(0),
            failed_attempts: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            last_error: Mutex::new(None),
            last_dead_letter: Mutex::new(None),
            retry,
            depth: Mutex::new(DepthCache::default()),
            seal,
        }))
    }

    /// Puts a message on the queue (sealed, then base64, as the queue trigger reads it by default): `inline`
    /// itself when it fits a message, else `inline` as a sealed blob and a message pointing at it.
    async fn put_inline_or_blob(&self, inline: String) -> Result<(), StorageError> {
        let sealed = self.seal.seal(&inline);
        let text = if sealed.len() <= MAX_INLINE_BYTES {
            sealed
        } else {
            let name = format!("{}.json", uuid::Uuid::new_v4());
            self.client.put_blob(&self.container, &name, sealed.into_bytes()).await?;
            // Serialising our own types cannot fail; a pointer is one short string.
            self.seal.seal(&serde_json::to_string(&QueueEnvelope::Blob { blob: name }).unwrap_or_default())
        };
        self.client.put_message(&self.queue, &base64::Engine::encode(&base64::engine::general_purpose::STANDARD, text)).await
    }

    /// Enqueues a batch; returns once stored.
    pub async fn put(&self, batch: &SpillBatch) -> Result<(), StorageError> {
        let text = serde_json::to_string(batch).unwrap_or_default();
        self.put_inline_or_blob(text).await?;
        self.spooled.fetch_add(batch.len() as u64, Relaxed);
        Ok(())
    }

    /// Keeps records in a dead-letter blob with the reason they were set aside (no expiry).
    async fn dead_letter(&self, batch: SpillBatch, reason: &str) -> Result<(), StorageError> {
        let n = batch.len() as u64;
        let at = crate::model::time::format_datetime(time::OffsetDateTime::now_utc());
        let letter = DeadLetter { reason: reason.to_string(), at, attempts: 1, batch };
        let name = format!("{DEAD_LETTER_PREFIX}{}.json", uuid::Uuid::new_v4());
        let sealed = self.seal.seal(&serde_json::to_string(&letter).unwrap_or_default());
        self.client.put_blob(&self.container, &name, sealed.into_bytes()).await?;
        self.dead_lettered.fetch_add(n, Relaxed);
        *self.last_dead_letter.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.to_string());
        tracing::error!(blob = %name, events = n, reason, "spilled events kept as a dead letter");
        Ok(())
    }

    /// Moves a message the host put on `<queue>-poison` into a dead-letter blob at once, before the host's 7-day
    /// TTL can expire it; `text` is the message as the trigger hands it over.
    pub async fn bury(&self, text: &str, dequeue_count: Option<u32>) -> Result<String, StorageError> {
        let reason = format!(
            "reached {}-poison after {} deliveries: the message could not be read or put back (see the redeliver function's log)",
            self.queue,
            dequeue_count.map_or_else(|| "the host's maximum".to_string(), |n| n.to_string())
        );
        self.set_aside(text, &reason).await
    }

    /// Keeps a message as it came in a sealed dead-letter blob with `reason` (the message itself is checked
    /// again if it is ever replayed).
    async fn set_aside(&self, text: &str, reason: &str) -> Result<String, StorageError> {
        let at = crate::model::time::format_datetime(time::OffsetDateTime::now_utc());
        let name = format!("{DEAD_LETTER_PREFIX}{}.json", uuid::Uuid::new_v4());
        let body = serde_json::json!({"reason": reason, "at": at, "message": text});
        self.client.put_blob(&self.container, &name, self.seal.seal(&body.to_string()).into_bytes()).await?;
        *self.last_dead_letter.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.to_string());
        tracing::error!(blob = %name, "a spill message was kept as a dead letter");
        Ok(name)
    }

    /// Checks a message's seal (and, for a retry, the seal of the message it carries) and parses what it holds,
    /// each once: the attempts so far, the sealed message to put back or set aside, and its envelope (or why it
    /// is unreadable). A seal that does not hold gives back the sealed text it failed on, and why.
    fn unseal(&self, message: &str) -> Result<Unsealed, (String, Forged)> {
        let outer = self.seal.open(message).map_err(|e| (message.to_string(), e))?;
        match serde_json::from_str::<QueueEnvelope>(outer) {
            Ok(QueueEnvelope::Retry { retry }) => match self.seal.open(&retry.message).map(|t| serde_json::from_str(t).map_err(|e| e.to_string())) {
                Ok(envelope) => Ok(Unsealed { attempt: retry.attempt, message: retry.message, envelope }),
                Err(e) => Err((retry.message, e)),
            },
            envelope => Ok(Unsealed { attempt: 0, message: message.to_string(), envelope: envelope.map_err(|e| e.to_string()) }),
        }
    }

    /// Keeps a message without the spill's seal aside at once (no retries to spend), never ingested.
    async fn set_aside_forged(&self, sealed: &str, why: &str) -> Result<Redelivery, RedeliverError> {
        let reason = format!("{FORGED}: {why}");
        let blob = self.set_aside(sealed, &reason).await.map_err(|e| RedeliverError::Failed(e.into()))?;
        Ok(Redelivery::SetAside { blob, why: reason })
    }

    /// The batch an envelope carries (the seal of any blob it names checked), and the blob it was read from.
    async fn read(&self, envelope: QueueEnvelope) -> Result<(SpillBatch, Option<String>), RedeliverError> {
        let blob_text = |name: String| async move {
            if !is_spill_blob_name(&name) {
                return Err(RedeliverError::Unreadable("the message names a blob the spill did not write".into()));
            }
            let text = self.client.get_blob(&self.container, &name).await.map_err(|e| RedeliverError::Failed(e.into()))?;
            let text = self.seal.open(&text).map_err(|e| RedeliverError::Forged(format!("blob {name}: {e}")))?.to_string();
            Ok((text, name))
        };
        let (batch, blob) = match envelope {
            QueueEnvelope::Retry { .. } => return Err(RedeliverError::Unreadable("a retry inside a retry".into())),
            QueueEnvelope::Batch(b) => (b, None),
            QueueEnvelope::DeadLetter { dead_letter } => (dead_letter.batch, None),
            QueueEnvelope::Blob { blob } => {
                let (text, name) = blob_text(blob).await?;
                (serde_json::from_str(&text).map_err(|e| RedeliverError::Unreadable(e.to_string()))?, Some(name))
            }
            QueueEnvelope::DeadLetterBlob { dead_letter_blob } => {
                let (text, name) = blob_text(dead_letter_blob).await?;
                let letter: DeadLetter = serde_json::from_str(&text).map_err(|e| RedeliverError::Unreadable(e.to_string()))?;
                (letter.batch, Some(name))
            }
        };
        // Stream and source names reach URLs: only the names we would have written are read back.
        let (_, name) = batch.queue();
        if !safe_name(&name) {
            return Err(RedeliverError::Unreadable(format!(
                "the batch's stream or source name is not one the spill writes ({} characters)",
                name.chars().count()
            )));
        }
        Ok((batch, blob))
    }

    /// Redelivers one message's batch (its text as the trigger hands it over). What Azure refuses for what it
    /// holds becomes a dead letter; when some rows went through, what is still pending is put back as a new,
    /// smaller message, so a retry never resends delivered rows (and each such step shrinks the batch, which
    /// bounds them); otherwise the failure is the host's to retry. The blob, if any, is removed once the
    /// message is done.
    pub async fn redeliver(
        &self,
        message: &str,
        sentinel: &IngestionClient,
        sekoia: &BTreeMap<String, Arc<SekoiaClient>>,
        deadline: Instant,
    ) -> Result<Redelivery, RedeliverError> {
        // A message put back after a failure carries the original (sealed) text and its attempts.
        let Unsealed { attempt, message, envelope } = match self.unseal(message) {
            Ok(x) => x,
            Err((sealed, why)) => return self.set_aside_forged(&sealed, &why.to_string()).await,
        };
        let envelope = envelope.map_err(RedeliverError::Unreadable)?;
        let (batch, blob) = match self.read(envelope).await {
            Err(RedeliverError::Forged(why)) => return self.set_aside_forged(&message, &why).await,
            other => other?,
        };
        let result = deliver(&batch, sentinel, sekoia, deadline).await;
        self.redelivered.fetch_add(result.delivered as u64, Relaxed);
        let progressed = result.delivered > 0 || result.refused.is_some();
        if let Some((refused, why)) = result.refused {
            self.dead_letter(refused, &why).await.map_err(|e| RedeliverError::Failed(e.into()))?;
        }
        if let Some((pending, e)) = result.pending {
            self.failed_attempts.fetch_add(1, Relaxed);
            *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
            if !progressed {
                // Put back as it was, to be tried again later, without spending the host's dequeues (whose last
                // one moves the message to the poison queue and its 7-day TTL). The blob stays: the new message
                // points at it.
                let attempt = attempt.saturating_add(1);
                let after = self.retry.delay(attempt);
                let retry = QueueEnvelope::Retry { retry: Retry { attempt, message } };
                let sealed = self.seal.seal(&serde_json::to_string(&retry).unwrap_or_default());
                let text = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sealed);
                self.client.put_message_delayed(&self.queue, &text, after.as_secs()).await.map_err(|err| RedeliverError::Failed(err.into()))?;
                return Ok(Redelivery::Deferred { attempt, after, why: e.to_string() });
            }
            self.put(&pending).await.map_err(|e| RedeliverError::Failed(e.into()))?;
        }
        if let Some(b) = blob {
            // Done with: a blob left behind costs storage, never data.
            if let Err(e) = self.client.delete_blob(&self.container, &b).await {
                tracing::warn!(blob = %b, error = %e, "could not delete a redelivered spill blob");
            }
        }
        Ok(Redelivery::Done(result.delivered))
    }

    /// What Storage says now: the queue's depth and its oldest message's age, the poison queue's depth, and the
    /// dead-letter blobs. Storage calls, so never on a health call's path ([`Self::status_cached`]).
    async fn read_depth(&self) -> serde_json::Map<String, Value> {
        let mut d = serde_json::Map::new();
        let poison = format!("{}-poison", self.queue);
        let (main, bad) = tokio::join!(self.client.depth(&self.queue), self.client.depth(&poison));
        match main {
            Ok((n, age)) => {
                d.insert("batches".into(), json!(n));
                d.insert("oldestAgeSecs".into(), json!(age));
            }
            Err(e) => {
                d.insert("depthError".into(), json!(e.to_string()));
            }
        }
        d.insert("poisonBatches".into(), json!(bad.map(|(n, _)| n).unwrap_or(0)));
        match self.client.list_blobs(&self.container, DEAD_LETTER_PREFIX).await {
            Ok(names) => d.insert("blobs".into(), json!(names.len())),
            Err(e) => d.insert("blobsError".into(), json!(e.to_string())),
        };
        d
    }

    /// The counters, with the last depth read (its age in `depthAgeSecs`); a read older than [`DEPTH_REFRESH`]
    /// starts one refresh in the background, never more than one at a time.
    pub fn status_cached(self: &Arc<Self>) -> Value {
        let mut v = self.status();
        let mut held = self.depth.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = held.read.as_ref().is_some_and(|(at, _)| at.elapsed() < DEPTH_REFRESH);
        if let Some((at, d)) = &held.read {
            for (k, x) in d {
                // The dead-letter blobs go beside the dead-letter counters.
                match k.as_str() {
                    "blobs" | "blobsError" => v["deadLetter"][k] = x.clone(),
                    _ => v[k] = x.clone(),
                }
            }
            v["depthAgeSecs"] = json!(at.elapsed().as_secs());
        }
        if !fresh && !held.refreshing {
            held.refreshing = true;
            let me = self.clone();
            tokio::spawn(async move {
                let read = match tokio::time::timeout(Duration::from_secs(10), me.read_depth()).await {
                    Ok(d) => d,
                    Err(_) => serde_json::Map::from_iter([("depthError".to_string(), json!("Storage did not answer in 10 s"))]),
                };
                *me.depth.lock().unwrap_or_else(|p| p.into_inner()) = DepthCache { read: Some((Instant::now(), read)), refreshing: false };
            });
        }
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
            "deadLetter": {
                "rowsThisRun": self.dead_lettered.load(Relaxed),
                "last": *self.last_dead_letter.lock().unwrap_or_else(|p| p.into_inner()),
                "replay": "sentinel-bridge spill replay",
            },
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RedeliverError {
    #[error("unreadable spill message: {0}")]
    Unreadable(String),
    /// A message or blob without the spill's seal.
    #[error("forged spill message: {0}")]
    Forged(String),
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
    /// Stores a batch of `source`'s events durably; the number of events kept.
    pub async fn put(&self, batch: SpillBatch, source: &str) -> Result<usize, SpillError> {
        let n = batch.len();
        match self {
            SpillBackend::Dir(d) => {
                let (d, source) = (d.clone(), source.to_string());
                tokio::task::spawn_blocking(move || d.put(&batch, &source)).await.map_err(|e| SpillError::Task(e.to_string()))??;
            }
            SpillBackend::Queue(q) => q.put(&batch).await?,
        }
        Ok(n)
    }

    /// What health shows. For `azure-queue`, the counters and the last depth read from Storage (at most
    /// [`DEPTH_REFRESH`] old, refreshed in the background): a health call never waits on Storage, and a flood
    /// of them costs Storage nothing more.
    pub async fn status(&self) -> Value {
        match self {
            SpillBackend::Dir(d) => d.status(),
            SpillBackend::Queue(q) => q.status_cached(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each source holds at most its share; what it gives back (a delivered batch) it may use again; the
    /// shares are read back from the file names after a restart; dead letters count only against the whole.
    #[test]
    fn each_source_holds_at_most_its_share_across_restarts() {
        let dir = std::env::temp_dir().join(format!("sb-share-{}", uuid::Uuid::new_v4()));
        let limits = SpillLimits { max_attempts: 3, max_bytes: 6_000, sources: 2, ..SpillLimits::default() };
        let batch = |n: usize| SpillBatch::Sentinel { stream: "Custom-T_CL".into(), rows: vec!["x".repeat(n)] };
        let spill = Spill::open(&dir, limits).unwrap();
        spill.put(&batch(1_500), "noxys").unwrap();
        assert!(matches!(spill.put(&batch(1_500), "noxys"), Err(SpillError::SourceFull { ref name, share: 3_000 }) if name == "noxys"));
        spill.put(&batch(1_500), "apono").unwrap();
        drop(spill);
        let spill = Spill::open(&dir, limits).unwrap();
        assert!(matches!(spill.put(&batch(1_500), "noxys"), Err(SpillError::SourceFull { .. })), "the share survives a restart");
        let noxys: Vec<PathBuf> = spill.scan().into_values().flatten().filter(|f| source_of(f).as_deref() == Some("noxys")).collect();
        assert_eq!(noxys.len(), 1);
        spill.remove_file(&noxys[0]);
        spill.put(&batch(1_500), "noxys").unwrap();
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    #[cfg(unix)]
    fn spill_files_are_the_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("sb-spill-mode-{}", uuid::Uuid::new_v4()));
        let spill = Spill::open(&dir, SpillLimits::default()).unwrap();
        spill.put(&SpillBatch::Sentinel { stream: "Custom-T_CL".into(), rows: vec!["{}".into()] }, "noxys").unwrap();
        let file = fs::read_dir(dir.join("sentinel/Custom-T_CL")).unwrap().next().unwrap().unwrap().path();
        assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn batches_are_written_whole_and_leftover_temporaries_are_removed() {
        let dir = std::env::temp_dir().join(format!("sb-spill-{}", uuid::Uuid::new_v4()));
        let spill = Spill::open(&dir, SpillLimits::default()).unwrap();
        let b = SpillBatch::Sentinel { stream: "Custom-T_CL".into(), rows: vec!["{\"a\":1}".into()] };
        spill.put(&b, "noxys").unwrap();
        spill.put(&b, "noxys").unwrap();
        // A crash between create and rename leaves a temporary file behind.
        fs::write(dir.join("sentinel/Custom-T_CL/999.tmp"), b"{\"destinat").unwrap();
        let spill = Spill::open(&dir, SpillLimits::default()).unwrap();
        let files = &spill.scan()[&("sentinel".to_string(), "Custom-T_CL".to_string())];
        assert_eq!(files.len(), 2);
        for f in files {
            let back: SpillBatch = serde_json::from_slice(&fs::read(f).unwrap()).unwrap();
            assert_eq!(back, b);
        }
        assert_eq!(spill.status()["batches"], 2);
        assert!(spill.put(&SpillBatch::Sekoia { source: "../etc".into(), events: vec![] }, "noxys").is_err());
        assert!(spill.put(&SpillBatch::Sekoia { source: "noxys".into(), events: vec![] }, "../etc").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
