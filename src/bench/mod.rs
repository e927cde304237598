//! Benchmarks that print figures against a baseline run in the same process: [`webhook`] (the webhook path
//! against a no-op server), [`workspace`] (the local workspace's ingestion and KQL engine against a hand loop)
//! and [`enrich`] (one enrichment over a month of Perf against its heaviest query alone). The model's labelled
//! suite and its harness are the lab's ([`crate::lab`]).

pub mod enrich;
pub mod webhook;
pub mod workspace;

pub use webhook::{run_bench, Bench, BenchArgs, WorkspaceBenchArgs};

/// What a benchmark returns: nothing, or the error the command prints.
pub type BenchResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;
