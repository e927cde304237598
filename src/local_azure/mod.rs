//! The local workspace: an embedded stand-in for Azure Monitor that speaks Azure's wire protocol, so the bridge
//! runs offline with no Azure settings and every test drives the real clients over real HTTP.
//!
//! It serves the Logs Ingestion API (`ingestion_endpoint`), the Log Analytics Query API ([`query_endpoint`],
//! over the [`crate::kql`] engine), the managed identity and Entra token endpoints (`token_endpoint`), the
//! Sentinel REST API (`sentinel_endpoint`), Azure OpenAI chat completions ([`openai_endpoint`]), Sekoia's
//! intake (`sekoia_intake`) and fault injection ([`faults`]). Rows are kept durably by [`store`]; tables and
//! streams are described in [`tables`], Azure Monitor's documented tables (every one, with its columns and
//! whether the Logs Ingestion API may target it) in [`catalog`].
//! Inspection routes under `/_local/` let tests and people see what landed.

// Handlers answer Azure's error responses directly as `Err(Response)`; their size does not matter here.
#![allow(clippy::result_large_err)]

mod arm_dcr;
pub mod arm_resources;
pub mod catalog;
pub mod faults;
mod ingestion_endpoint;
pub mod openai_endpoint;
pub mod query_endpoint;
mod sekoia_intake;
mod sentinel_endpoint;
pub mod store;
pub mod tables;
mod token_endpoint;
mod watchlists;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

pub use faults::{Endpoint, FaultKind, FaultSpec, Faults};
pub use sekoia_intake::IntakeEvent;
use store::Store;
pub use token_endpoint::audience_of;

use crate::model::schema::TableSchema;
use tables::{StreamDecl, TableDef};

/// The workspace's ingestion endpoint for rows that stand for history: their TimeGenerated is kept, where
/// the real endpoint replaces one more than two days old (see `ingestion_endpoint`). Not an Azure API.
pub fn backfill_endpoint(url: &str) -> String {
    format!("{}/_local/backfill", url.trim_end_matches('/'))
}

/// Streams (and data flows) a data collection rule holds at most (azure-monitor
/// `essentials/data-collection-rule-overview.md`, "Limits": 10 data streams, 10 data flows).
pub const MAX_STREAMS_PER_RULE: usize = 10;

/// The workspace id the local workspace answers to by default (any GUID is accepted unless one is configured).
pub const LOCAL_WORKSPACE_ID: &str = "00000000-0000-4000-8000-00000000b71d";

/// Azure's error body, `{"error":{"code","message"}}`, with the `x-ms-error-code` header.
pub fn azure_error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut r = (status, Json(json!({"error": {"code": code, "message": message}}))).into_response();
    if let Ok(v) = HeaderValue::from_str(code) {
        r.headers_mut().insert("x-ms-error-code", v);
    }
    r
}

/// Why Azure would refuse a token that is otherwise good: its 403 `OperationFailed` names the cause in its
/// `PipelineAccessResult` (azure-sdk-for-net `Azure.Monitor.Ingestion/TROUBLESHOOTING.md`; contract §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestAccess {
    Granted,
    /// No Monitoring Metrics Publisher on the rule: `IsRbacPresent: False`.
    NoRole,
    /// The rule is not bound to the endpoint the call went to: `IsDcrDceBindingValid: False`.
    UnboundEndpoint,
}

#[derive(Debug, Clone)]
pub struct WorkspaceConfig {
    /// Tables whose `Custom-<Table>` streams the DCR declares.
    pub tables: Vec<Arc<TableSchema>>,
    /// Where rows are kept; `None` keeps them in memory only.
    pub data_dir: Option<PathBuf>,
    /// Accept only this DCR immutable id; `None` accepts any `dcr-…`.
    pub dcr_immutable_id: Option<String>,
    /// Data collection rules and the streams each declares, at most [`MAX_STREAMS_PER_RULE`] (a call to a
    /// rule for a stream it does not declare is 400 `InvalidStream`). Empty: one rule for every stream, the
    /// local default (the standard tables' streams are there to stage telemetry).
    pub rules: Vec<(String, Vec<String>)>,
    /// Require this `X-IDENTITY-HEADER`; `None` accepts any non-empty one.
    pub identity_header: Option<String>,
    /// Accept only this client id and secret; `None` accepts any.
    pub client_credentials: Option<(String, String)>,
    pub token_lifetime: Duration,
    /// Keep accepted rows (the default). Off, rows are checked and counted but not kept: for benchmarks that
    /// measure the bridge rather than the workspace's memory.
    pub keep_rows: bool,
    /// Accept only this workspace id on the Query API; `None` accepts any GUID.
    pub workspace_id: Option<String>,
    /// Serve Azure's standard tables (Perf, SigninLogs, …) with `Microsoft-<Table>` streams. On by default.
    pub standard_tables: bool,
    /// Extra DCR streams, such as ones with a `transformKql`.
    pub extra_streams: Vec<StreamDecl>,
    /// Open the data directory without ever writing to it (a second process reading a live workspace).
    pub read_only: bool,
    /// Longest incident comment accepted: 30,000 characters (Sentinel service limits, "Incident limits";
    /// the contract sheet's 3,000 is a 2020 figure, raised in 2022).
    pub comment_max_chars: usize,
    /// `PUT incident` and `PUT comments` requests each taken per 5 minutes before a 429
    /// (`sentinel_endpoint::WRITES_PER_WINDOW`).
    pub sentinel_writes_per_window: usize,
    /// The window those writes are counted over (`sentinel_endpoint::WRITE_WINDOW`, 5 minutes).
    pub sentinel_write_window: Duration,
    /// Accept only this Sekoia intake key; `None` accepts any.
    pub sekoia_intake_key: Option<String>,
    /// Azure OpenAI deployments and the request shape each takes (by default `gpt-4o`, a chat model, and
    /// `o4-mini`, a reasoning one).
    pub openai_deployments: Vec<(String, openai_endpoint::ModelFamily)>,
    /// The Query API's per-user throttling.
    pub query_limits: query_endpoint::QueryLimits,
    /// Tables the Query API does not know, though their streams are declared: a deployment whose tables were
    /// not created.
    pub absent_tables: Vec<String>,
    /// Whether the caller may ingest: granted (the default), or refused as Azure refuses it, for a missing
    /// role or a rule not bound to the endpoint called.
    pub ingest_access: IngestAccess,
    /// The ARM id of the rule, as DCRLogErrors' `_ResourceId` names it (lower-cased there); `None`: an id
    /// under the local subscription named by the rule's immutable id.
    pub dcr_resource_id: Option<String>,
    /// Rules deployed otherwise than `infra/` deploys them: a JSON merge patch (RFC 7386) on the `properties`
    /// ARM answers with for the rule of this immutable id (a data flow gone, another workspace, no endpoint).
    /// Only ARM's read reflects it.
    pub rule_patches: Vec<(String, serde_json::Value)>,
    /// Whether the caller holds Reader on the resources: Resource Graph and Resource Health answer 403
    /// `AuthorizationFailed` without it. On by default.
    pub arm_reader: bool,
    /// Resource Graph's per-principal quota (`arm_resources::GraphQuota`, 15 queries per 5 seconds).
    pub resource_graph_quota: arm_resources::GraphQuota,
}

impl WorkspaceConfig {
    pub fn new(tables: Vec<Arc<TableSchema>>) -> Self {
        WorkspaceConfig {
            tables,
            data_dir: None,
            dcr_immutable_id: None,
            rules: Vec::new(),
            identity_header: None,
            client_credentials: None,
            token_lifetime: Duration::from_secs(3599),
            keep_rows: true,
            workspace_id: None,
            standard_tables: true,
            extra_streams: Vec::new(),
            read_only: false,
            comment_max_chars: 30_000,
            sentinel_writes_per_window: sentinel_endpoint::WRITES_PER_WINDOW,
            sentinel_write_window: sentinel_endpoint::WRITE_WINDOW,
            sekoia_intake_key: None,
            query_limits: query_endpoint::QueryLimits::default(),
            absent_tables: Vec::new(),
            dcr_resource_id: None,
            rule_patches: Vec::new(),
            ingest_access: IngestAccess::Granted,
            arm_reader: true,
            resource_graph_quota: arm_resources::GraphQuota::default(),
            openai_deployments: vec![("gpt-4o".into(), openai_endpoint::ModelFamily::Chat), ("o4-mini".into(), openai_endpoint::ModelFamily::Reasoning)],
        }
    }
}

/// One ingestion call as the workspace received it, for tests to assert on.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecordedCall {
    pub stream: String,
    pub dcr: String,
    pub content_encoding: String,
    pub request_id: Option<String>,
    /// Bytes on the wire.
    pub sent_bytes: usize,
    /// Bytes of the JSON array once decompressed.
    pub json_bytes: usize,
    pub rows: usize,
}

#[derive(Debug, Default)]
pub struct WorkspaceStats {
    pub rows: AtomicU64,
    pub dropped_columns: AtomicU64,
    pub dropped_connections: AtomicU64,
    /// Tokens issued by the identity endpoints.
    pub tokens_issued: AtomicU64,
    /// TimeGenerated values outside Azure's window, replaced with the time received.
    pub time_generated_replaced: AtomicU64,
    /// Field values over 64 KB, truncated.
    pub truncated_fields: AtomicU64,
    /// Values that did not convert to their column's type, stored as null.
    pub nulled_values: AtomicU64,
    /// Rows written to DCRLogErrors.
    pub dcr_log_errors: AtomicU64,
    /// Queries answered 429 by the per-user limits, and the most any user had running at once.
    pub queries_throttled: AtomicU64,
    pub queries_peak_running: std::sync::atomic::AtomicUsize,
}

pub struct Workspace {
    config: WorkspaceConfig,
    streams: HashMap<String, StreamDecl>,
    store: Store,
    tokens: Mutex<HashMap<String, token_endpoint::Issued>>,
    calls: Mutex<Vec<RecordedCall>>,
    sentinel_lock: Mutex<()>,
    /// Recent Sentinel writes per resource, for its request limits.
    sentinel_writes: Mutex<HashMap<String, std::collections::VecDeque<std::time::Instant>>>,
    sekoia_events: Mutex<Vec<sekoia_intake::IntakeEvent>>,
    query_users: Mutex<HashMap<String, Arc<query_endpoint::UserQueries>>>,
    pub faults: Faults,
    pub stats: WorkspaceStats,
    /// Resources staged for Resource Graph and Resource Health.
    pub resources: arm_resources::Resources,
}

impl Workspace {
    pub fn open(config: WorkspaceConfig) -> std::io::Result<Arc<Workspace>> {
        let custom = tables::custom_tables(&config.tables);
        let standard = if config.standard_tables { tables::standard_tables() } else { Vec::new() };
        let mut defs: Vec<Arc<TableDef>> = custom.iter().cloned().map(Arc::new).collect();
        defs.extend(standard.iter().cloned());
        let mut streams: HashMap<String, StreamDecl> = tables::default_streams(&custom, &standard).into_iter().map(|s| (s.name.clone(), s)).collect();
        for s in &config.extra_streams {
            if !defs.iter().any(|d| d.name == s.table) {
                return Err(std::io::Error::other(format!("stream {} targets unknown table {}", s.name, s.table)));
            }
            if let Some(t) = &s.transform {
                crate::kql::parse(t).map_err(|e| std::io::Error::other(format!("transformKql of stream {}: {e}", s.name)))?;
            }
            streams.insert(s.name.clone(), s.clone());
        }
        for (rule, declared) in &config.rules {
            if declared.len() > MAX_STREAMS_PER_RULE {
                return Err(std::io::Error::other(format!(
                    "data collection rule {rule} declares {} streams; a rule holds at most {MAX_STREAMS_PER_RULE}",
                    declared.len()
                )));
            }
            if let Some(s) = declared.iter().find(|s| !streams.contains_key(s.as_str())) {
                return Err(std::io::Error::other(format!("data collection rule {rule} declares {s}, which no table has")));
            }
            // A rule cannot send to a table the Logs Ingestion API does not take (Azure refuses the rule).
            if let Some(s) = declared.iter().find(|s| streams.get(s.as_str()).is_some_and(|d| !tables::ingestible(&d.table))) {
                return Err(std::io::Error::other(format!("data collection rule {rule} declares {s}, whose table the Logs Ingestion API does not take")));
            }
        }
        let tenant = config.workspace_id.clone().unwrap_or_else(|| LOCAL_WORKSPACE_ID.to_string());
        let store = Store::open(config.data_dir.as_deref(), &defs, &tenant, config.read_only)?;
        Ok(Arc::new(Workspace {
            config,
            streams,
            store,
            tokens: Mutex::new(HashMap::new()),
            sentinel_writes: Mutex::new(HashMap::new()),
            calls: Mutex::new(Vec::new()),
            sentinel_lock: Mutex::new(()),
            sekoia_events: Mutex::new(Vec::new()),
            query_users: Mutex::new(HashMap::new()),
            faults: Faults::default(),
            stats: WorkspaceStats::default(),
            resources: arm_resources::Resources::default(),
        }))
    }

    /// A user's share of the Query API's limits.
    fn query_user(&self, subject: &str) -> Arc<query_endpoint::UserQueries> {
        let mut users = self.query_users.lock().unwrap_or_else(|e| e.into_inner());
        users.entry(subject.to_string()).or_insert_with(|| Arc::new(query_endpoint::UserQueries::new(&self.config.query_limits))).clone()
    }

    /// Writes a DCRLogErrors row, as a rule with a `LogErrors` diagnostic setting does for what it drops
    /// after its 204 (contract §1: `OperationName` `Ingestion` or `Transformation`, the caller's
    /// `x-ms-client-request-id`, the rule's ARM id lower-cased).
    fn log_dcr_error(&self, dcr: &str, stream: &str, request_id: &str, operation: &str, message: &str) {
        if self.store.def("DCRLogErrors").is_none() {
            return;
        }
        let rule = arm_dcr::arm_id_of(self, dcr);
        let mut row = store::Record::new();
        row.insert("TimeGenerated".into(), json!(crate::model::time::format_datetime(time::OffsetDateTime::now_utc())));
        row.insert("ClientRequestId".into(), json!(request_id));
        row.insert("CorrelationId".into(), json!(uuid::Uuid::new_v4().to_string()));
        row.insert("InputStreamId".into(), json!(stream));
        row.insert("Message".into(), json!(message));
        row.insert("OperationName".into(), json!(operation));
        row.insert("_ResourceId".into(), json!(rule.to_ascii_lowercase()));
        row.insert("SourceSystem".into(), json!("Azure"));
        if let Err(e) = self.store.append("DCRLogErrors", &[row]) {
            tracing::error!(error = %e, "local workspace could not write DCRLogErrors");
        }
        self.stats.dcr_log_errors.fetch_add(1, Relaxed);
        tracing::warn!(stream, operation, "the rule dropped what it could not use after its 204 (see DCRLogErrors)");
    }

    fn record(&self, call: RecordedCall) {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: a long-running workspace keeps the most recent calls only.
        if calls.len() >= 10_000 {
            calls.drain(..5_000);
        }
        calls.push(call);
    }

    /// Ingestion calls received so far (the most recent 10,000 at most).
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Rows of a table, in ingestion order, as JSON objects without null columns.
    pub fn rows(&self, table: &str) -> Vec<serde_json::Value> {
        self.store.rows_json(table)
    }

    /// Runs a query against the workspace's tables, as the Query API does (no time range).
    pub fn query(&self, kql: &str) -> Result<crate::kql::Frame, crate::kql::KqlError> {
        crate::kql::run(kql, &query_endpoint::WorkspaceTables { ws: self, range: None }, crate::model::time::now_ticks())
    }

    /// The workspace's tables as a query source (for in-process callers).
    pub fn tables(&self) -> query_endpoint::WorkspaceTables<'_> {
        query_endpoint::WorkspaceTables { ws: self, range: None }
    }

    /// Appends records to a table directly, as an ingestion call would after its checks (seeding, benchmarks).
    pub fn store_append(&self, table: &str, records: &[store::Record]) -> std::io::Result<()> {
        self.store.append(table, records)
    }

    /// A table's frame as queries see it.
    pub fn tables_frame(&self, table: &str) -> Option<crate::kql::Frame> {
        self.store.frame(table)
    }

    pub fn workspace_id(&self) -> String {
        self.config.workspace_id.clone().unwrap_or_else(|| LOCAL_WORKSPACE_ID.to_string())
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/", get(info))
            .route("/dataCollectionRules/{dcr}/streams/{stream}", post(ingestion_endpoint::ingest))
            .route("/_local/backfill/dataCollectionRules/{dcr}/streams/{stream}", post(ingestion_endpoint::backfill))
            .route("/msi/token", get(token_endpoint::msi_token))
            .route("/{tenant}/oauth2/v2.0/token", post(token_endpoint::oauth_token))
            .route("/v1/workspaces/{id}/query", post(query_endpoint::query_post).get(query_endpoint::query_get))
            .route("/subscriptions/{*rest}", axum::routing::any(sentinel_endpoint::handle))
            .route("/providers/Microsoft.ResourceGraph/resources", post(arm_resources::resource_graph))
            .route("/_local/resources", axum::routing::put(arm_resources::stage))
            .route("/openai/deployments/{deployment}/chat/completions", post(openai_endpoint::chat_completions))
            .route("/sekoia/array", post(sekoia_intake::array))
            .route("/sekoia/jsons", post(sekoia_intake::jsons))
            .route("/_local/tables/{table}", get(table_rows))
            .route("/_local/calls", get(recorded_calls))
            .route("/_faults", post(add_fault).delete(clear_faults))
            // Bodies past the limit are answered by the handler with Azure's 413, so let them reach it.
            .layer(axum::extract::DefaultBodyLimit::max(8 * ingestion_endpoint::MAX_CALL_BYTES))
            .with_state(self.clone())
    }

    /// Serves the workspace on `addr` until the returned handle is stopped or dropped.
    pub async fn serve(self: &Arc<Self>, addr: SocketAddr) -> std::io::Result<RunningWorkspace> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let router = self.router();
        let ws = self.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = stop_rx.changed() => break,
                };
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let router = router.clone();
                let ws = ws.clone();
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let router = router.clone();
                        let ws = ws.clone();
                        async move { ws.handle_with_faults(router, req).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), svc).await;
                });
                while conns.try_join_next().is_some() {}
            }
            conns.abort_all();
        });
        Ok(RunningWorkspace { addr: local, stop: stop_tx, task: Some(task), workspace: self.clone() })
    }

    async fn handle_with_faults(&self, router: Router, req: hyper::Request<hyper::body::Incoming>) -> Result<Response, std::io::Error> {
        let path = req.uri().path();
        let endpoint = if path.starts_with("/dataCollectionRules/") || path.starts_with("/_local/backfill/") {
            Some(Endpoint::Ingestion)
        } else if path == "/msi/token" || path.ends_with("/oauth2/v2.0/token") {
            Some(Endpoint::Token)
        } else if path.starts_with("/v1/workspaces/") {
            Some(Endpoint::Query)
        } else if path.starts_with("/subscriptions/") {
            Some(Endpoint::Sentinel)
        } else if path.starts_with("/sekoia/") {
            Some(Endpoint::Sekoia)
        } else if path.starts_with("/openai/") {
            Some(Endpoint::OpenAi)
        } else {
            None
        };
        let method = req.method().as_str().to_string();
        if let Some(fault) = endpoint.and_then(|e| self.faults.next_for(e, &method, path)) {
            match fault {
                FaultKind::Drop => {
                    self.stats.dropped_connections.fetch_add(1, Relaxed);
                    // An error from the service makes hyper close the connection without an answer.
                    return Err(std::io::Error::other("injected connection drop"));
                }
                FaultKind::Slow { millis } => tokio::time::sleep(Duration::from_millis(millis)).await,
                FaultKind::Refuse { status, code } => {
                    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
                    return Ok(azure_error(status, &code, "Injected refusal."));
                }
                FaultKind::Status { status, retry_after_secs } => {
                    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    let code = match status.as_u16() {
                        413 => "ContentLengthLimitExceeded",
                        // ARM's code for a caller without the role (Sentinel's and ARM's 403s).
                        403 => "AuthorizationFailed",
                        409 => "Conflict",
                        429 => "TooManyRequests",
                        503 => "ServiceUnavailable",
                        _ => "InternalServerError",
                    };
                    let mut r = azure_error(status, code, "Injected fault.");
                    if let Some(s) = retry_after_secs {
                        r.headers_mut().insert("retry-after", HeaderValue::from(s));
                    }
                    return Ok(r);
                }
            }
        }
        Ok(router.oneshot(req.map(axum::body::Body::new)).await.unwrap_or_else(|e| match e {}))
    }
}

/// A workspace being served; stops when [`RunningWorkspace::stop`] is called or it is dropped.
pub struct RunningWorkspace {
    pub addr: SocketAddr,
    pub workspace: Arc<Workspace>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningWorkspace {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for RunningWorkspace {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn info(State(ws): State<Arc<Workspace>>) -> Json<serde_json::Value> {
    let streams: Vec<_> = ws.streams.keys().cloned().collect();
    Json(json!({"service": "sentinel-bridge local workspace", "streams": streams, "tables": ws.store.table_names()}))
}

async fn table_rows(State(ws): State<Arc<Workspace>>, Path(table): Path<String>) -> Json<Vec<serde_json::Value>> {
    Json(ws.rows(&table))
}

async fn recorded_calls(State(ws): State<Arc<Workspace>>) -> Json<Vec<RecordedCall>> {
    Json(ws.calls())
}

async fn add_fault(State(ws): State<Arc<Workspace>>, Json(spec): Json<FaultSpec>) -> StatusCode {
    ws.faults.add(spec);
    StatusCode::NO_CONTENT
}

async fn clear_faults(State(ws): State<Arc<Workspace>>) -> StatusCode {
    ws.faults.clear();
    StatusCode::NO_CONTENT
}
