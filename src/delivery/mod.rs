//! Getting accepted events to their destinations without losing any: the [`batcher`] shares Logs Ingestion
//! calls between concurrent requests and acknowledges after Azure's 2xx; [`fanout`] sends one request's rows
//! and Sekoia events to every destination at once and spills what a destination cannot take; the [`spill`]
//! keeps those batches (a directory, or the function's storage queue) until they are redelivered; the
//! [`replay`] guard keeps a Standard Webhooks message from being ingested twice.

pub mod batcher;
pub mod fanout;
pub mod replay;
pub mod seal;
pub mod spill;
