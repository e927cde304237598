//! Replay protection for Standard Webhooks: a message id already ingested is acknowledged without ingesting
//! it again, for as long as its signed timestamp would still be accepted (timestamp + `tolerance_secs`, which
//! the catalog bounds), on every instance and across restarts.
//!
//! The ids live where every instance sees them: a blob per source and id in the function's own storage account
//! in Azure (created with `If-None-Match: *`, so exactly one instance wins a race; Storage's conditional
//! headers), a file per id under the data directory locally (created with `O_EXCL`), or this process's memory
//! when neither is configured. A claim is a marker in flight, with a lease as long as the request's deadline;
//! success turns it into "done" until the message's acceptance ends, a failure removes it so the sender's
//! retry can claim it again, and a lease whose holder died expires, so a crash never turns a retry into a
//! duplicate that is dropped. Within one process, a second copy waits for the first copy's outcome.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::azure::storage::{StorageClient, StorageError};

/// Allowance for clock skew between the sender, instances and Storage.
const SKEW_SECS: i64 = 60;

/// Where seen ids are kept.
pub enum ReplayStore {
    /// This process only: nothing shared to keep them in.
    Memory(Mutex<HashMap<String, Marker>>),
    /// One file per id, shared by the local processes over one data directory.
    Dir(PathBuf),
    /// One blob per id in the function's storage account, shared by every instance.
    Blob { client: Arc<StorageClient>, container: String },
}

/// What a store holds for an id.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Marker {
    done: bool,
    /// Unix seconds after which the marker means nothing.
    until: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Found {
    /// Ours, with the stored claim's version when the store has versions (a blob's ETag): finishing or
    /// releasing it touches that version only, never a claim another instance took over after our lease.
    Claimed(Option<String>),
    Done,
    InFlight,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("replay store: {0}")]
    Storage(#[from] StorageError),
    #[error("replay store: {0}")]
    Io(#[from] std::io::Error),
    #[error("the replay store changed under every attempt")]
    Contended,
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn encode(m: Marker) -> Vec<u8> {
    // Serialising our own type cannot fail.
    serde_json::to_vec(&m).unwrap_or_default()
}

/// A marker that does not parse (a torn write) is treated as expired: the worst case is one more delivery,
/// never a loss.
fn decode(bytes: &[u8]) -> Marker {
    serde_json::from_slice(bytes).unwrap_or(Marker { done: false, until: 0 })
}

fn classify(m: Marker, now: i64) -> Option<Found> {
    (m.until > now).then_some(if m.done { Found::Done } else { Found::InFlight })
}

impl ReplayStore {
    pub fn memory() -> Self {
        ReplayStore::Memory(Mutex::new(HashMap::new()))
    }

    /// Claims `name` unless a live marker holds it.
    async fn try_claim(&self, name: &str, lease_until: i64) -> Result<Found, ReplayError> {
        let now = now_unix();
        let claim = Marker { done: false, until: lease_until };
        match self {
            ReplayStore::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
                if map.len() > 10_000 {
                    map.retain(|_, m| m.until > now);
                }
                if let Some(found) = map.get(name).and_then(|m| classify(*m, now)) {
                    return Ok(found);
                }
                map.insert(name.to_string(), claim);
                Ok(Found::Claimed(None))
            }
            ReplayStore::Dir(dir) => {
                let (dir, name) = (dir.clone(), name.to_string());
                tokio::task::spawn_blocking(move || claim_file(&dir, &name, claim, now))
                    .await
                    .map_err(|e| ReplayError::Io(std::io::Error::other(e.to_string())))?
            }
            ReplayStore::Blob { client, container } => {
                for _ in 0..4 {
                    if let Some(etag) = client.create_blob_if_absent(container, name, encode(claim)).await? {
                        return Ok(Found::Claimed(Some(etag)));
                    }
                    let Some((text, etag)) = client.get_blob_tagged(container, name).await? else { continue };
                    if let Some(found) = classify(decode(text.as_bytes()), now) {
                        return Ok(found);
                    }
                    // Expired: take it over only if nobody else did since it was read.
                    if let Some(etag) = client.replace_blob_if_match(container, name, &etag, encode(claim)).await? {
                        return Ok(Found::Claimed(Some(etag)));
                    }
                }
                Err(ReplayError::Contended)
            }
        }
    }

    /// Marks the claim done. A blob is replaced only if it is still our claim (`If-Match` on its ETag): when
    /// our lease ran out and another instance took the id over, its claim is left alone.
    async fn mark_done(&self, name: &str, until: i64, etag: Option<&str>) -> Result<(), ReplayError> {
        let done = Marker { done: true, until };
        match self {
            ReplayStore::Memory(map) => {
                map.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), done);
                Ok(())
            }
            ReplayStore::Dir(dir) => {
                let path = dir.join(name);
                let tmp = dir.join(format!("{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
                tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                    std::fs::write(&tmp, encode(done))?;
                    std::fs::rename(&tmp, &path)
                })
                .await
                .map_err(|e| ReplayError::Io(std::io::Error::other(e.to_string())))??;
                Ok(())
            }
            ReplayStore::Blob { client, container } => {
                let ours = match etag {
                    Some(etag) => client.replace_blob_if_match(container, name, etag, encode(done)).await?.is_some(),
                    None => client.put_blob(container, name, encode(done)).await.map(|_| true)?,
                };
                if !ours {
                    tracing::warn!("a claim outlived its lease and was taken over; the other holder records the id");
                }
                Ok(())
            }
        }
    }

    /// Removes a claim that did not succeed. Synchronous for memory and files (one unlink), so a retry right
    /// after sees the id free; a blob is deleted in the background.
    fn release(&self, name: &str, etag: Option<String>) {
        let result = match self {
            ReplayStore::Memory(map) => {
                map.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
                Ok(())
            }
            ReplayStore::Dir(dir) => std::fs::remove_file(dir.join(name)).map_err(ReplayError::from),
            ReplayStore::Blob { client, container } => {
                let (client, container, name) = (client.clone(), container.clone(), name.to_string());
                // Deleted only if it is still our claim (`If-Match`): never another instance's claim or done marker.
                tokio::spawn(async move {
                    let deleted = match &etag {
                        Some(etag) => client.delete_blob_if_match(&container, &name, etag).await.map(drop),
                        None => client.delete_blob(&container, &name).await,
                    };
                    if let Err(e) = deleted {
                        warn_unreleased(&ReplayError::from(e));
                    }
                });
                Ok(())
            }
        };
        if let Err(e) = result {
            warn_unreleased(&e);
        }
    }

    /// Drops expired markers of a directory store, on a blocking thread (blobs are removed by the account's
    /// lifecycle policy).
    fn sweep(&self) {
        let ReplayStore::Dir(dir) = self else { return };
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            let now = now_unix();
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let p = e.path();
                if std::fs::read(&p).map(|b| decode(&b).until + SKEW_SECS < now).unwrap_or(false) {
                    let _ = std::fs::remove_file(&p);
                }
            }
        });
    }
}

fn warn_unreleased(e: &ReplayError) {
    // The lease runs out by itself: a retry after it claims the id again.
    tracing::warn!(error = %e, "could not release a replay claim; it expires with its lease");
}

/// `O_EXCL` create; an expired marker is first renamed away (atomic: of two racers, one rename succeeds).
fn claim_file(dir: &std::path::Path, name: &str, claim: Marker, now: i64) -> Result<Found, ReplayError> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let path = dir.join(name);
    for _ in 0..4 {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        match opts.open(&path) {
            Ok(mut f) => {
                f.write_all(&encode(claim))?;
                return Ok(Found::Claimed(None));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        }
        let Ok(bytes) = std::fs::read(&path) else { continue };
        if let Some(found) = classify(decode(&bytes), now) {
            return Ok(found);
        }
        let aside = dir.join(format!("{name}.{}.expired", uuid::Uuid::new_v4().simple()));
        if std::fs::rename(&path, &aside).is_ok() {
            let _ = std::fs::remove_file(&aside);
        }
    }
    Err(ReplayError::Contended)
}

pub struct ReplayGuard {
    store: ReplayStore,
    /// Ids claimed by this process and still in flight, for copies arriving meanwhile to wait on.
    in_flight: Mutex<HashMap<String, watch::Receiver<bool>>>,
    claims: AtomicU64,
}

pub enum Claim<'a> {
    /// This request owns the id; call [`ClaimTicket::succeeded`] once its rows are in.
    Owner(ClaimTicket<'a>),
    /// The id was ingested already.
    Duplicate,
    /// Another instance is ingesting it right now: the sender should retry shortly.
    Busy,
}

pub struct ClaimTicket<'a> {
    guard: &'a ReplayGuard,
    name: String,
    until: i64,
    done: Option<watch::Sender<bool>>,
    /// The stored claim's version, when the store has versions.
    etag: Option<String>,
}

impl ClaimTicket<'_> {
    /// Records the id as ingested. A store failure here is logged, not returned: the rows are in, and the
    /// worst it costs is one duplicate if the same message is replayed.
    pub async fn succeeded(mut self) {
        if let Err(e) = self.guard.store.mark_done(&self.name, self.until, self.etag.as_deref()).await {
            tracing::warn!(error = %e, "could not record a delivered message id; a replay of it would be ingested again");
        }
        self.guard.in_flight.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.name);
        if let Some(tx) = self.done.take() {
            let _ = tx.send(true);
        }
    }
}

impl Drop for ClaimTicket<'_> {
    fn drop(&mut self) {
        // Not marked as succeeded: release the claim so a retry can try again.
        let Some(tx) = self.done.take() else { return };
        self.guard.in_flight.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.name);
        self.guard.store.release(&self.name, self.etag.take());
        drop(tx);
    }
}

impl ReplayGuard {
    pub fn new(store: ReplayStore) -> Self {
        ReplayGuard { store, in_flight: Mutex::new(HashMap::new()), claims: AtomicU64::new(0) }
    }

    pub fn store_name(&self) -> &'static str {
        match self.store {
            ReplayStore::Memory(_) => "memory",
            ReplayStore::Dir(_) => "dir",
            ReplayStore::Blob { .. } => "blob",
        }
    }

    /// Claims a message id for a source. `acceptable_until` is when its signed timestamp stops being accepted;
    /// `lease` bounds how long the claim holds if this process dies with it.
    pub async fn claim(&self, source: &str, id: &str, acceptable_until: i64, lease: Duration) -> Result<Claim<'_>, ReplayError> {
        // Ids and source names come from outside: a digest names the marker, so nothing of theirs reaches a
        // path or a URL.
        let name = hex::encode(Sha256::digest(format!("{source}\u{0}{id}").as_bytes()));
        if self.claims.fetch_add(1, Relaxed) % 1024 == 1023 {
            self.store.sweep();
        }
        let give_up = Instant::now() + lease;
        loop {
            // Decided under the lock, acted on after it: no guard is held across an await.
            let local = {
                let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
                match in_flight.get(&name) {
                    Some(rx) => Err(rx.clone()),
                    None => {
                        let (tx, rx) = watch::channel(false);
                        in_flight.insert(name.clone(), rx);
                        Ok(tx)
                    }
                }
            };
            let tx = match local {
                Ok(tx) => tx,
                Err(mut rx) => {
                    // Wakes when the holder succeeds (value changes) or gives up (sender dropped); look again.
                    let _ = rx.changed().await;
                    continue;
                }
            };
            let lease_until = now_unix() + lease.as_secs() as i64 + SKEW_SECS;
            let found = self.store.try_claim(&name, lease_until).await;
            if let Ok(Found::Claimed(etag)) = found {
                return Ok(Claim::Owner(ClaimTicket { guard: self, name, until: acceptable_until + SKEW_SECS, done: Some(tx), etag }));
            }
            // Not ours: forget the local entry (waking local copies) without touching the stored marker.
            self.in_flight.lock().unwrap_or_else(|e| e.into_inner()).remove(&name);
            drop(tx);
            match found? {
                Found::Done => return Ok(Claim::Duplicate),
                _ if Instant::now() >= give_up => return Ok(Claim::Busy),
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn later() -> i64 {
        now_unix() + 300
    }

    async fn owner(g: &ReplayGuard, s: &str, id: &str) -> bool {
        matches!(g.claim(s, id, later(), Duration::from_secs(5)).await.unwrap(), Claim::Owner(_))
    }

    #[tokio::test]
    async fn a_second_copy_is_a_duplicate_only_after_success() {
        for g in [
            ReplayGuard::new(ReplayStore::memory()),
            ReplayGuard::new(ReplayStore::Dir(std::env::temp_dir().join(format!("sb-replay-{}", uuid::Uuid::new_v4())))),
        ] {
            let Claim::Owner(t) = g.claim("s", "m1", later(), Duration::from_secs(5)).await.unwrap() else { panic!("first claim owns") };
            drop(t); // failed attempt
            let Claim::Owner(t) = g.claim("s", "m1", later(), Duration::from_secs(5)).await.unwrap() else { panic!("a failed id can be retried") };
            t.succeeded().await;
            assert!(matches!(g.claim("s", "m1", later(), Duration::from_secs(5)).await.unwrap(), Claim::Duplicate));
            assert!(owner(&g, "other", "m1").await, "ids are per source");
        }
    }

    #[tokio::test]
    async fn a_concurrent_copy_waits_for_the_first() {
        let g = Arc::new(ReplayGuard::new(ReplayStore::memory()));
        let Claim::Owner(t) = g.claim("s", "m", later(), Duration::from_secs(5)).await.unwrap() else { panic!() };
        let g2 = g.clone();
        let waiter = tokio::spawn(async move { matches!(g2.claim("s", "m", later(), Duration::from_secs(5)).await.unwrap(), Claim::Duplicate) });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        t.succeeded().await;
        assert!(waiter.await.unwrap());
    }

    #[tokio::test]
    async fn a_directory_store_is_shared_and_outlives_the_process_and_leases_expire() {
        let dir = std::env::temp_dir().join(format!("sb-replay-{}", uuid::Uuid::new_v4()));
        let first = ReplayGuard::new(ReplayStore::Dir(dir.clone()));
        let Claim::Owner(t) = first.claim("s", "m", later(), Duration::from_secs(5)).await.unwrap() else { panic!() };
        t.succeeded().await;
        drop(first);
        // Another process (a restart) over the same directory.
        let second = ReplayGuard::new(ReplayStore::Dir(dir.clone()));
        assert!(matches!(second.claim("s", "m", later(), Duration::from_secs(5)).await.unwrap(), Claim::Duplicate));
        // A claim left by a process that died: busy while its lease runs, claimable after.
        let Claim::Owner(t) = second.claim("s", "crashed", later(), Duration::from_secs(5)).await.unwrap() else { panic!() };
        std::mem::forget(t);
        let third = ReplayGuard::new(ReplayStore::Dir(dir.clone()));
        assert!(matches!(third.claim("s", "crashed", later(), Duration::ZERO).await.unwrap(), Claim::Busy));
        let name = hex::encode(Sha256::digest("s\u{0}crashed".as_bytes()));
        std::fs::write(dir.join(&name), encode(Marker { done: false, until: now_unix() - 1 })).unwrap();
        assert!(owner(&third, "s", "crashed").await, "an expired lease is taken over");
        // A message past its acceptance is forgotten (the timestamp check refuses it anyway).
        let Claim::Owner(t) = third.claim("s", "old", now_unix() - 2 * SKEW_SECS, Duration::from_secs(5)).await.unwrap() else { panic!() };
        t.succeeded().await;
        assert!(owner(&third, "s", "old").await);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
