//! The Logs Ingestion API, from our side: packing rows into calls ([`pack`]) and sending them with retries
//! ([`IngestionClient`]).

mod client;
pub mod pack;

pub use client::{retry_after as retry_after_of, IngestError, IngestionClient, RetryPolicy, UploadOutcome, API_VERSION};
pub use pack::MAX_CALL_BYTES;
