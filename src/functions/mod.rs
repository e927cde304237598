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
pub mod error;
pub mod health;
pub mod invocation;
pub mod redeliver;
pub mod state;
pub mod webhook;
