//! Our clients of Azure's APIs, one file per service, over one HTTP driver:
//!
//! - [`http`]: the shared connection pool, the one retry-and-deadline loop, each service's classification of
//!   responses, and the one parser of Azure error bodies;
//! - [`identity`]: Entra tokens (managed identity, client secret, developer tools) behind a cache we own;
//! - [`logs_ingestion`]: the Logs Ingestion API (packing rows into calls, gzip, 413 splits);
//! - [`logs_query`]: the Log Analytics Query API;
//! - [`sentinel`]: Sentinel incidents, alerts, entities and comments over ARM;
//! - [`storage`]: the function's storage account (queue and blobs), for the spill;
//! - [`openai`]: Azure OpenAI chat completions, for the enrichment's narrative;
//! - [`resources`]: Azure Resource Graph (tags) and Resource Health, for the enrichment's business impact.
//!
//! Clients never read the environment: they take their endpoint, a token source and an options struct.

pub mod http;
pub mod identity;
pub mod logs_ingestion;
pub mod logs_query;
pub mod openai;
pub mod resources;
pub mod sentinel;
pub mod storage;
