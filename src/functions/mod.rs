//! The functions the Functions host routes to us (`functions/*/function.json`): thin handlers over typed
//! inputs. Each reads its request, hands the work to its room, and turns the outcome into an answer.
//!
//! - [`webhook`]: `POST /api/webhook/{source}`, vendor events in;
//! - [`enrich`]: `POST /api/enrich`, the playbook's call for an incident;
//! - [`redeliver`]: `POST /redeliver`, the spill queue's trigger, in the host's [`invocation`] envelope;
//! - [`health`]: `GET /api/health`, counters for operators;
//! - [`doctor`]: `GET /api/doctor`, the cached `doctor` report;
//! - [`error`]: every error a caller can get, as one type;
//! - [`state`]: what they all read, built at start-up.

pub mod doctor;
pub mod enrich;
pub mod enrich_runs;
pub mod error;
pub mod health;
pub mod invocation;
pub mod redeliver;
pub mod state;
pub mod webhook;

/// Reads a request's body, at most `limit` bytes and within `timeout`: a sender that stalls half way through
/// its body gets a 408 instead of holding a worker and a descriptor for as long as it likes.
pub async fn read_body(body: axum::body::Body, limit: usize, timeout: std::time::Duration) -> Result<axum::body::Bytes, error::AppError> {
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err(error::AppError::BodyTimeout { secs: timeout.as_secs() }),
        Ok(read) => read.map_err(|_| error::AppError::BodyTooLarge { limit }),
    }
}
