//! One request's rows and Sekoia events, sent to every destination at once: one destination being slow or
//! down neither delays nor blocks the other. What a destination cannot take in time goes to the spill, when
//! there is one; only when that fails too does the sender hear an error. A record too large for any call is
//! the sender's problem (413), never spilled: redelivering it could only fail again. Azure refuses no record
//! for its content (contract §1): every refusal (a 400, 401, 403, an undeclared stream) is about the call or
//! the configuration, so those events are kept and redelivered once the operator fixes what `doctor` names.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::delivery::batcher::{Batcher, DeliveryError};
use crate::delivery::spill::{SpillBackend, SpillBatch};
use crate::mapping::{SekoiaEvent, SourceMapping};
use crate::model::schema::Row;
use crate::sekoia::SekoiaClient;

/// The destinations of one source.
pub struct Fanout<'a> {
    pub batcher: &'a Batcher,
    /// The source's Sekoia client, when it routes there.
    pub sekoia: Option<&'a SekoiaClient>,
    pub spill: Option<&'a SpillBackend>,
}

/// What became of a request's events: all delivered, some of them kept in the spill for redelivery.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub spooled: usize,
}

impl Fanout<'_> {
    /// Sends `rows` (by table index of `source`) and `sekoia` events; resolves when every one is delivered or
    /// spilled, or with the failure the sender should hear.
    pub async fn deliver(
        &self,
        source: &SourceMapping,
        rows: &BTreeMap<usize, Vec<Row>>,
        sekoia: &[SekoiaEvent],
        deadline: Instant,
    ) -> Result<Delivered, DeliveryError> {
        let sentinel = rows.iter().map(|(t, rows)| {
            let stream = source.tables[*t].schema.stream_name();
            async move {
                let r = self.batcher.deliver(&stream, rows.clone(), deadline).await;
                (stream, rows, r)
            }
        });
        let to_sekoia = async {
            match (sekoia.is_empty(), self.sekoia) {
                (false, Some(client)) => Some(client.send(&source.name, sekoia, deadline).await),
                _ => None,
            }
        };
        let (sentinel_results, sekoia_result) = futures::future::join(futures::future::join_all(sentinel), to_sekoia).await;
        let mut delivered = Delivered::default();
        let mut failure: Option<DeliveryError> = None;
        let mut note = |e: DeliveryError| {
            if is_records_fault(&e) || failure.is_none() {
                failure = Some(e);
            }
        };
        for (stream, rows, r) in sentinel_results {
            let Err(e) = r else { continue };
            if is_records_fault(&e) {
                note(e);
                continue;
            }
            let batch = SpillBatch::Sentinel { stream, rows: rows.iter().map(|r| r.as_json().to_string()).collect() };
            match self.spill(batch, &source.name).await {
                Some(n) => delivered.spooled += n,
                None => note(e),
            }
        }
        if let Some(Err(e)) = sekoia_result {
            let e = DeliveryError::Ingest(e);
            if is_records_fault(&e) {
                note(e);
            } else {
                let batch = SpillBatch::Sekoia { source: source.name.clone(), events: sekoia.to_vec() };
                match self.spill(batch, &source.name).await {
                    Some(n) => delivered.spooled += n,
                    None => note(e),
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(delivered),
        }
    }

    /// Writes a batch to the spill; the number of events kept, or `None` when there is no spill or it failed.
    async fn spill(&self, batch: SpillBatch, source: &str) -> Option<usize> {
        match self.spill?.put(batch, source).await {
            Ok(n) => {
                tracing::warn!(events = n, "destination unavailable: events spooled for redelivery");
                Some(n)
            }
            Err(e) => {
                tracing::error!(error = %e, "could not spill events");
                None
            }
        }
    }
}

fn is_records_fault(e: &DeliveryError) -> bool {
    matches!(e, DeliveryError::Ingest(e) if e.is_records_fault())
}
