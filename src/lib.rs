//! sentinel-bridge: an Azure Functions custom handler that takes security vendors' webhooks and lands them in
//! Microsoft Sentinel custom tables through the Azure Monitor Logs Ingestion API, with the function's identity;
//! and that enriches Sentinel incidents from the telemetry around them.
//!
//! # Layout
//! This is the one map of rooms and flows; the README and the rooms' own docs link here rather than redraw it.
//! Each flow is a path through rooms:
//!
//! ```text
//! webhook:  functions::webhook ─▶ mapping (sources, auth, rows) ─▶ delivery::fanout ─▶ delivery::batcher ─▶ azure::logs_ingestion
//!                                                                       │                └▶ sekoia (intake)
//!                                                                       └▶ delivery::spill ─▶ functions::redeliver (queue trigger)
//! enrich:   functions::enrich ─▶ enrich::trigger ─▶ enrich::gather ─▶ enrich::correlate ─▶ enrich::impact ─▶ enrich::infer ─▶ enrich::publish
//!             (Sentinel: incident, alerts, entities; the Window) │ (queries: one record each,  │ (watchlist,    │ (hypotheses,  │ (narrative, comment,
//!                                                                │  typed rows ─▶ signals)      │  tags, health) │  kill chain)  │  act, tables)
//!           over azure::sentinel, azure::logs_query, azure::resources, azure::logs_ingestion, azure::openai
//! ```
//!
//! Dependencies point down; `tests/layout.rs` holds the table of which room may name which:
//!
//! ```text
//! model, metrics                 leaves: schemas, rows, time, frames and values; the counters health reports
//! kql, mapping                   ─▶ model
//! azure                          ─▶ model, metrics
//! sekoia, delivery, enrich       ─▶ azure, mapping, model, metrics (delivery also ─▶ sekoia)
//! settings                       ─▶ azure, delivery, enrich, mapping, model, metrics
//! doctor                         ─▶ settings, sekoia, delivery, enrich and below
//! functions                      ─▶ doctor and below
//! app                            ─▶ functions, doctor, settings, … and local_azure (its local_backend alone)
//! local_azure                    ─▶ kql, model (reached by product code over HTTP only)
//! lab ─▶ bench ─▶ cli            may name anything below them; no product room names them
//! ```
//!
//! - [`model`]: one schema, row, time, frame and value model for every room.
//! - [`metrics`]: the counters `/api/health` reports, a leaf every room may name.
//! - [`kql`]: the KQL engine the local stand-in answers queries with (a documented subset).
//! - [`mapping`]: the source mappings (`sources/*.toml`), how a sender is verified ([`mapping::auth`]), and how
//!   an event becomes rows.
//! - [`azure`]: one typed client per Azure API, over one HTTP driver ([`azure::http`]: one retry loop, failures
//!   as data) and one token provider ([`azure::identity`], which also says which credential to use).
//! - [`sekoia`]: the client of Sekoia.io's intake, a destination beside Azure.
//! - [`delivery`]: batcher, fan-out, spill and replay guard: accepted events reach every destination or wait.
//! - [`enrich`]: incident enrichment, as its five stages.
//! - [`settings`]: every setting, declared once in a registry, read and checked before anything starts.
//! - [`doctor`]: does a deployment work: settings, tokens, the DCR, roles, tables, Sentinel, the spill,
//!   and a canary row per stream read back.
//! - [`functions`]: the functions the host routes to us, thin handlers over typed inputs (webhook, enrich,
//!   redeliver with the host's invocation envelope, health, doctor), what they share
//!   ([`functions::state`]), and [`functions::error`], every answer a caller can get.
//! - [`app`]: start-up and wiring: [`app::Bridge`] (the pieces built from the settings), the router, graceful
//!   shutdown; the only product module that starts the local stand-in of Azure ([`app::local_backend`]), when
//!   no Azure setting is given.
//! - [`local_azure`]: the local stand-in of Azure (Logs Ingestion, Query API, Sentinel, token endpoints, a
//!   Sekoia intake, fault injection), stating Azure's documented limits itself. Product code reaches it only
//!   over HTTP, through the same clients it uses for Azure.
//! - [`lab`]: what only simulates and measures the enrichment: the world generator, the labelled suite, the
//!   harness and the fit.
//! - [`mod@bench`]: benchmarks that print figures against a baseline run in the same process.
//! - [`cli`]: the commands of the binary; `main.rs` only dispatches to them.

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
