//! sentinel-bridge: an Azure Functions custom handler that takes security vendors' webhooks and lands them in
//! Microsoft Sentinel custom tables through the Azure Monitor Logs Ingestion API, with the function's identity.
//!
//! # Layout
//! A webhook flows through these modules in order:
//!
//! - [`app`]: the router ([`app::app`]), start-up ([`app::Bridge`]) and graceful shutdown ([`app::serve`]);
//! - [`webhook`]: the `POST /api/webhook/{source}` handler;
//! - [`auth`]: bearer, header secret, HMAC-SHA256 and Standard Webhooks checks, constant-time; [`replay`]
//!   keeps a Standard Webhooks message from being ingested twice;
//! - [`mapping`]: source mapping files (TOML) and how an event becomes rows;
//! - [`schema`]: column types, table schemas and [`schema::Row`], a record checked against its stream;
//! - [`batcher`]: concurrent requests share ingestion calls; senders are answered after Azure's 2xx;
//! - [`ingest`]: packing rows into ≤1 MiB calls and the Logs Ingestion client (gzip, retries, 413 splits);
//! - [`token`]: Entra tokens (managed identity, client secret, developer tools) behind a small cache.
//!
//! Around them: [`config`] (settings, checked at start-up), [`error`] (every answer a sender can get),
//! [`metrics`] (what `GET /api/health` reports), [`workspace`] (the embedded local stand-in for Azure that the
//! bridge uses when no Azure endpoint is set, and that the tests run against) and [`bench`].

pub mod app;
pub mod auth;
pub mod batcher;
pub mod bench;
pub mod bench_workspace;
pub mod config;
pub mod enrich;
pub mod enrich_api;
pub mod error;
pub mod infra_schema;
pub mod ingest;
pub mod kql;
pub mod mapping;
pub mod metrics;
pub mod query;
pub mod redeliver;
pub mod replay;
pub mod rules;
pub mod schema;
pub mod sekoia;
pub mod sentinel;
pub mod spill;
pub mod storage_queue;
pub mod token;
pub mod webhook;
pub mod workspace;
