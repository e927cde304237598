//! sentinel-bridge: an Azure Functions custom handler that takes security vendors' webhooks and lands them in
//! Microsoft Sentinel custom tables through the Azure Monitor Logs Ingestion API, with the function's identity;
//! and that enriches Sentinel incidents from the telemetry around them.
//!
//! # Layout
//! Each flow is a path through rooms:
//!
//! ```text
//! webhook:  functions::webhook ─▶ mapping (sources, auth, rows) ─▶ delivery::fanout ─▶ delivery::batcher ─▶ azure::logs_ingestion
//!                                                                       │                └▶ sekoia (intake)
//!                                                                       └▶ delivery::spill ─▶ functions::redeliver (queue trigger)
//! enrich:   functions::enrich ─▶ enrich (trigger ─▶ gather ─▶ signals ─▶ hypotheses ─▶ comment)
//!                                  over azure::sentinel, azure::logs_query, azure::logs_ingestion, azure::openai
//! ```
//!
//! - [`app`]: start-up and wiring. [`settings`] (every setting, declared once in a registry, read and
//!   checked before anything starts), [`app::Bridge`] (the pieces built from the settings), the router, graceful
//!   shutdown, [`metrics`] (the counters health reports). The only product module that starts the local
//!   stand-in of Azure ([`app::local_backend`]), when no Azure setting is given.
//! - [`functions`]: the functions the host routes to us, thin handlers over typed inputs (webhook, enrich,
//!   redeliver with the host's invocation envelope, health), and [`functions::error`], every answer a caller
//!   can get.
//! - [`mapping`]: the source mappings (`sources/*.toml`), how a sender is verified ([`mapping::auth`]), and how
//!   an event becomes rows.
//! - [`delivery`]: batcher, fan-out, spill and replay guard: accepted events reach every destination or wait.
//! - [`model`]: one schema, row and time model for every room.
//! - [`azure`]: one typed client per Azure API, over one HTTP driver ([`azure::http`]) and one token
//!   provider ([`azure::identity`]).
//! - [`sekoia`]: the client of Sekoia.io's intake, a destination beside Azure.
//! - [`enrich`]: incident enrichment.
//! - [`kql`]: the KQL engine the local stand-in answers queries with (a documented subset).
//! - [`local_azure`]: the local stand-in of Azure (Logs Ingestion, Query API, Sentinel, token endpoints, a
//!   Sekoia intake, fault injection). Product code reaches it only over HTTP, through the same clients it uses
//!   for Azure: only [`app::local_backend`], [`cli`] and [`bench`] may name it (a test holds this).
//! - [`doctor`]: does a deployment work: settings, tokens, the DCR, roles, tables, Sentinel, the spill,
//!   and a canary row per stream read back.
//! - [`cli`]: the commands of the binary; `main.rs` only dispatches to them.
//! - [`bench`]: benchmarks that print figures against a baseline run in the same process.

pub mod app;
pub mod azure;
pub mod bench;
pub mod cli;
pub mod delivery;
pub mod doctor;
pub mod enrich;
pub mod functions;
pub mod kql;
pub mod lab;
pub mod local_azure;
pub mod mapping;
pub mod metrics;
pub mod model;
pub mod sekoia;
pub mod settings;
