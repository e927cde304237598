//! Benchmarks that print figures against a baseline run in the same process: [`webhook`] (the webhook path
//! against a no-op server) and [`workspace`] (the local workspace's ingestion and KQL engine against a hand loop).

pub mod webhook;
pub mod workspace;

pub use webhook::{run_bench, Bench, BenchArgs, WorkspaceBenchArgs};

/// What a benchmark returns: nothing, or the error the command prints.
pub type BenchResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;
