//! The lab: what only simulates and measures the enrichment, never shipped as part of it. Product rooms may
//! not name it (`tests/layout.rs`); the commands (`demo`, `evaluate`), the benchmarks and the tests do.
//!
//! - [`world`] builds one incident's telemetry as Azure would hold it (names that differ between tables, VPNs,
//!   service principals, metrics-only resources, thin history, …);
//! - [`suite`] draws labelled cases at random from a seed (story, entry point, confounders, the truth);
//! - [`scenarios`] are the demo's six fixed cases of the same generator, and how a case is staged through the
//!   ingestion API's wire protocol;
//! - [`harness`] stages each case into its own in-memory local workspace and enriches it end to end over
//!   loopback HTTP;
//! - [`evaluation`] scores the outcomes (precision, recall, Brier, reliability) and fits the model that
//!   `src/enrich/weights.rs` holds.

pub mod evaluation;
pub mod harness;
pub mod scenarios;
pub mod suite;
pub mod world;
