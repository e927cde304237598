//! Replay protection for Standard Webhooks: a message id already ingested within the tolerance window is
//! acknowledged without ingesting it again. A duplicate that arrives while the first copy is still in flight
//! waits for that copy's outcome instead of racing it, so exactly one of them lands the rows.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;

enum State {
    /// Being ingested; the sender is dropped when that attempt ends either way.
    InFlight(watch::Receiver<bool>),
    Done(Instant),
}

pub struct ReplayGuard {
    window: Duration,
    seen: Mutex<HashMap<String, State>>,
}

pub enum Claim<'a> {
    /// This request owns the id; call [`ClaimTicket::succeeded`] once its rows are in.
    Owner(ClaimTicket<'a>),
    /// The id was ingested already.
    Duplicate,
}

pub struct ClaimTicket<'a> {
    guard: &'a ReplayGuard,
    key: String,
    done: Option<watch::Sender<bool>>,
}

impl ClaimTicket<'_> {
    pub fn succeeded(mut self) {
        let mut seen = self.guard.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.insert(self.key.clone(), State::Done(Instant::now() + self.guard.window));
        if let Some(tx) = self.done.take() {
            let _ = tx.send(true);
        }
    }
}

impl Drop for ClaimTicket<'_> {
    fn drop(&mut self) {
        // Not marked as succeeded: forget the claim so a retry can try again.
        if self.done.is_some() {
            let mut seen = self.guard.seen.lock().unwrap_or_else(|e| e.into_inner());
            if matches!(seen.get(&self.key), Some(State::InFlight(_))) {
                seen.remove(&self.key);
            }
        }
    }
}

impl ReplayGuard {
    pub fn new(window: Duration) -> Self {
        ReplayGuard { window, seen: Mutex::new(HashMap::new()) }
    }

    /// Claims a message id for a source; waits while another request holds it.
    pub async fn claim(&self, source: &str, id: &str) -> Claim<'_> {
        let key = format!("{source}\u{0}{id}");
        loop {
            let mut wait = {
                let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                if seen.len() > 10_000 {
                    seen.retain(|_, s| !matches!(s, State::Done(t) if *t <= now));
                }
                match seen.get(&key) {
                    Some(State::Done(until)) if *until > now => return Claim::Duplicate,
                    Some(State::InFlight(rx)) => rx.clone(),
                    _ => {
                        let (tx, rx) = watch::channel(false);
                        seen.insert(key.clone(), State::InFlight(rx));
                        return Claim::Owner(ClaimTicket { guard: self, key, done: Some(tx) });
                    }
                }
            };
            // Wakes when the holder succeeds (value changes) or gives up (sender dropped); then look again.
            let _ = wait.changed().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_second_copy_is_a_duplicate_only_after_success() {
        let g = ReplayGuard::new(Duration::from_secs(300));
        let Claim::Owner(t) = g.claim("s", "m1").await else { panic!("first claim owns") };
        drop(t); // failed attempt
        let Claim::Owner(t) = g.claim("s", "m1").await else { panic!("a failed id can be retried") };
        t.succeeded();
        assert!(matches!(g.claim("s", "m1").await, Claim::Duplicate));
        assert!(matches!(g.claim("other", "m1").await, Claim::Owner(_)), "ids are per source");
    }

    #[tokio::test]
    async fn a_concurrent_copy_waits_for_the_first() {
        let g = Arc::new(ReplayGuard::new(Duration::from_secs(300)));
        let Claim::Owner(t) = g.claim("s", "m").await else { panic!() };
        let g2 = g.clone();
        let waiter = tokio::spawn(async move { matches!(g2.claim("s", "m").await, Claim::Duplicate) });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        t.succeeded();
        assert!(waiter.await.unwrap());
    }
}
