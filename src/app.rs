//! The handler as a service: [`AppState`] (built and validated from [`Settings`]), [`app`] (the router tests
//! call), and [`serve`] (bind, serve, shut down gracefully: stop taking requests, finish those in flight, send
//! every buffered row, then exit).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use azure_core::credentials::TokenCredential;
use serde_json::json;
use tracing::Instrument;

use crate::auth::{Secrets, Verifier};
use crate::batcher::{BatchSettings, Batcher};
use crate::config::{secrets_setting, Backend, Settings};
use crate::error::AppError;
use crate::ingest::{IngestionClient, RetryPolicy};
use crate::mapping::Catalog;
use crate::metrics::Metrics;
use crate::replay::ReplayGuard;
use crate::token::{credential_from_env, LoopbackClientCredential, TokenSource, MONITOR_SCOPE};
use crate::workspace::{RunningWorkspace, Workspace, WorkspaceConfig};

pub struct AppState {
    pub catalog: Catalog,
    /// Sekoia intake clients of the sources that route there.
    pub sekoia: std::collections::BTreeMap<String, Arc<crate::sekoia::SekoiaClient>>,
    /// Where undeliverable accepted events wait, when configured.
    pub spill: Option<crate::spill::SpillBackend>,
    /// The ingestion client, for redelivering spilled rows.
    pub ingest: Arc<IngestionClient>,
    /// The enrichment, or why it is off.
    pub enricher: Result<Arc<crate::enrich::Enricher>, String>,
    pub verifiers: HashMap<String, Verifier>,
    pub batcher: Batcher,
    pub metrics: Arc<Metrics>,
    pub replay: ReplayGuard,
    pub max_body_bytes: usize,
    pub deadline: Duration,
    pub backend: String,
}

/// Everything that is wrong with the configuration, found before serving.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Setting(#[from] crate::config::SettingError),
    #[error(transparent)]
    Mapping(#[from] crate::mapping::MappingError),
    #[error("{0}")]
    Other(String),
}

/// Reads the mapping files a setting names.
pub fn load_catalog(settings: &Settings) -> Result<Catalog, StartupError> {
    let mut files = Vec::new();
    for p in &settings.sources_files {
        let text = std::fs::read_to_string(p).map_err(|e| {
            crate::config::SettingError { setting: "WEBHOOK_SOURCES_FILE".into(), message: format!("{}: {e}", p.display()) }
        })?;
        files.push((p.display().to_string(), text));
    }
    Ok(Catalog::load(&files)?)
}

/// One verifier per source, from its `SOURCE_<NAME>_SECRETS`; a secrets setting that names no source is an error.
pub fn build_verifiers(catalog: &Catalog, settings: &Settings) -> Result<HashMap<String, Verifier>, StartupError> {
    let mut verifiers = HashMap::new();
    let mut used = Vec::new();
    for s in catalog.sources() {
        let setting = secrets_setting(&s.name);
        let secrets = match settings.source_secrets.get(&setting) {
            Some(v) => Secrets::parse(v, &s.auth.mode)
                .map_err(|m| crate::config::SettingError { setting: setting.clone(), message: m })?,
            None => Secrets::default(),
        };
        if secrets.is_empty() {
            if s.auth.open {
                tracing::warn!(source = %s.name, "source is OPEN: it accepts unauthenticated webhooks (local trials only)");
            } else {
                tracing::info!(source = %s.name, setting = %setting, "source has no secret and refuses every request");
            }
        }
        used.push(setting);
        verifiers.insert(s.name.clone(), Verifier::new(s.auth.clone(), secrets));
    }
    if let Some(unused) = settings.source_secrets.keys().find(|k| !used.contains(k)) {
        return Err(crate::config::SettingError { setting: unused.clone(), message: "names no configured source".into() }.into());
    }
    Ok(verifiers)
}

/// The pieces [`serve`] runs; separate so tests and the benchmark can build one around their own stand-ins.
pub struct Bridge {
    pub state: Arc<AppState>,
    /// The embedded workspace, when no Azure endpoint is configured.
    pub local: Option<RunningWorkspace>,
    drain: Option<(tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<()>)>,
}

impl Bridge {
    pub async fn build(settings: &Settings) -> Result<Bridge, StartupError> {
        Self::build_inner(settings, None).await
    }

    /// As [`Bridge::build`], with the Azure backend's credential given rather than taken from the environment.
    pub async fn build_with_credential(settings: &Settings, credential: Arc<dyn TokenCredential>) -> Result<Bridge, StartupError> {
        Self::build_inner(settings, Some(credential)).await
    }

    async fn build_inner(settings: &Settings, credential: Option<Arc<dyn TokenCredential>>) -> Result<Bridge, StartupError> {
        let mut catalog = load_catalog(settings)?;
        apply_destinations(&mut catalog, settings)?;
        let verifiers = build_verifiers(&catalog, settings)?;
        let metrics = Arc::new(Metrics::default());
        let (endpoint, dcr, tokens, local, backend, cred) = match &settings.backend {
            Backend::Azure { endpoint, dcr_immutable_id, scope } => {
                let (cred, kind) = match credential {
                    Some(c) => (c, "given"),
                    None => credential_from_env().map_err(StartupError::Other)?,
                };
                tracing::info!(endpoint = %endpoint, credential = kind, "ingesting into Azure Monitor");
                (endpoint.clone(), dcr_immutable_id.clone(), TokenSource::new(cred.clone(), scope.clone()), None, "azure".to_string(), cred)
            }
            Backend::Local => {
                let mut tables = catalog.tables();
                tables.extend(crate::enrich::tables::all());
                let mut config = WorkspaceConfig::new(tables);
                config.data_dir = Some(settings.data_dir.clone());
                let ws = Workspace::open(config).map_err(|e| {
                    StartupError::Setting(crate::config::SettingError {
                        setting: "SENTINEL_BRIDGE_DATA_DIR".into(),
                        message: format!("{}: {e}", settings.data_dir.display()),
                    })
                })?;
                let running = ws
                    .serve(SocketAddr::from(([127, 0, 0, 1], 0)))
                    .await
                    .map_err(|e| StartupError::Other(format!("local workspace: {e}")))?;
                let url = running.url();
                tracing::info!(data_dir = %settings.data_dir.display(), url = %url,
                    "no LOGS_INGESTION_ENDPOINT: using the local workspace");
                let cred: Arc<dyn TokenCredential> = Arc::new(LoopbackClientCredential::new(&url, "local", "sentinel-bridge", "local-workspace"));
                (url, "dcr-local".to_string(), TokenSource::new(cred.clone(), MONITOR_SCOPE), Some(running), format!("local:{}", settings.data_dir.display()), cred)
            }
        };
        let client = Arc::new(IngestionClient::new(&endpoint, &dcr, Arc::new(tokens), RetryPolicy::default(), settings.max_call_bytes, metrics.clone()));
        let enricher = build_enricher(settings, local.as_ref(), cred.clone(), client.clone())?;
        let sekoia = build_sekoia(&catalog, settings, local.as_ref(), metrics.clone())?;
        let spill = match &settings.spill {
            crate::config::SpillSetting::Off => None,
            crate::config::SpillSetting::Dir(dir) => Some(crate::spill::SpillBackend::Dir(crate::spill::Spill::open(dir).map_err(|e| {
                crate::config::SettingError { setting: "SPILL".into(), message: format!("{}: {e}", dir.display()) }
            })?)),
            crate::config::SpillSetting::AzureQueue { storage, queue, container } => {
                let client = match storage {
                    crate::config::StorageSetting::ConnectionString(cs) => crate::storage_queue::StorageClient::from_connection_string(cs)
                        .map_err(|m| crate::config::SettingError { setting: "AzureWebJobsStorage".into(), message: m })?,
                    crate::config::StorageSetting::Identity { queue_url, blob_url } => crate::storage_queue::StorageClient::with_identity(
                        queue_url,
                        blob_url,
                        Arc::new(TokenSource::new(cred.clone(), crate::storage_queue::STORAGE_SCOPE)),
                    ),
                };
                let q = crate::spill::QueueSpill::open(client, queue, container)
                    .await
                    .map_err(|m| StartupError::Other(format!("SPILL=azure-queue: the storage queue is unreachable: {m}")))?;
                tracing::info!(queue = %queue, "spill: the function's storage queue");
                Some(crate::spill::SpillBackend::Queue(q))
            }
        };
        let drain = match &spill {
            Some(crate::spill::SpillBackend::Dir(s)) => {
                let (tx, rx) = tokio::sync::watch::channel(false);
                Some((tx.clone(), s.start_drain(client.clone(), sekoia.clone(), rx)))
            }
            _ => None,
        };
        let streams = catalog.tables().iter().map(|t| t.stream_name()).collect::<Vec<_>>();
        let batcher = Batcher::new(
            client.clone(),
            streams,
            BatchSettings { linger: settings.linger, max_in_flight: settings.max_in_flight },
        );
        for s in catalog.sources() {
            metrics.source(&s.name);
        }
        let state = Arc::new(AppState {
            catalog,
            sekoia,
            spill,
            ingest: client,
            enricher,
            verifiers,
            batcher,
            metrics,
            replay: ReplayGuard::new(Duration::from_secs(600)),
            max_body_bytes: settings.max_body_bytes,
            deadline: settings.deadline,
            backend,
        });
        Ok(Bridge { state, local, drain })
    }

    /// Sends what is buffered and stops the embedded workspace.
    pub async fn shutdown(self) {
        self.state.batcher.shutdown().await;
        if let Some((stop, task)) = self.drain {
            let _ = stop.send(true);
            let _ = task.await;
        }
        if let Some(l) = self.local {
            l.stop().await;
        }
    }
}

/// `SOURCE_<NAME>_DESTINATIONS` overrides a mapping's destinations; a setting for no known source is an error.
fn apply_destinations(catalog: &mut Catalog, settings: &Settings) -> Result<(), StartupError> {
    let names: Vec<String> = catalog.sources().map(|s| s.name.clone()).collect();
    for (setting, value) in &settings.source_settings {
        let Some(name) = names.iter().find(|n| {
            *setting == crate::config::source_setting(n, "DESTINATIONS") || *setting == crate::config::source_setting(n, "SEKOIA_KEY")
        }) else {
            return Err(crate::config::SettingError { setting: setting.clone(), message: "names no configured source".into() }.into());
        };
        if setting.ends_with("_DESTINATIONS") {
            let list: Vec<String> = value.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
            let d = crate::mapping::SourceMapping::parse_destinations(&list)
                .map_err(|m| crate::config::SettingError { setting: setting.clone(), message: m })?;
            catalog.set_destinations(name, d);
        }
    }
    Ok(())
}

/// A Sekoia client per source that routes there: its own key (`SOURCE_<NAME>_SEKOIA_KEY`) or
/// `SEKOIA_INTAKE_KEY`; the intake is `SEKOIA_INTAKE_URL`, else the EU intake, or locally the workspace's stand-in.
fn build_sekoia(
    catalog: &Catalog,
    settings: &Settings,
    local: Option<&RunningWorkspace>,
    metrics: Arc<Metrics>,
) -> Result<std::collections::BTreeMap<String, Arc<crate::sekoia::SekoiaClient>>, StartupError> {
    let mut out = std::collections::BTreeMap::new();
    for s in catalog.sources().filter(|s| s.routes_to(crate::mapping::Destination::Sekoia)) {
        let base = match (&settings.sekoia_url, local) {
            (Some(u), _) => u.clone(),
            (None, Some(l)) => format!("{}/sekoia", l.url()),
            (None, None) => crate::sekoia::DEFAULT_INTAKE_URL.to_string(),
        };
        let key = settings
            .source_settings
            .get(&crate::config::source_setting(&s.name, "SEKOIA_KEY"))
            .cloned()
            .or_else(|| settings.sekoia_key.clone())
            .or_else(|| local.map(|_| "local-intake-key".to_string()));
        let Some(key) = key else {
            return Err(crate::config::SettingError {
                setting: "SEKOIA_INTAKE_KEY".into(),
                message: format!("source '{}' routes to sekoia but no intake key is set", s.name),
            }
            .into());
        };
        let client = crate::sekoia::SekoiaClient::new(&base, &key, settings.sekoia_max_call_bytes, RetryPolicy::default(), metrics.clone());
        out.insert(s.name.clone(), Arc::new(client));
    }
    Ok(out)
}

/// The local workspace's ARM path for Sentinel, used when no Azure settings are given.
pub const LOCAL_WORKSPACE_RESOURCE_ID: &str =
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/Microsoft.OperationalInsights/workspaces/local";

/// The enrichment: against the embedded workspace locally; in Azure, when both the Query API workspace and
/// the Sentinel workspace are configured (one without the other is a start-up error).
fn build_enricher(
    settings: &Settings,
    local: Option<&RunningWorkspace>,
    cred: Arc<dyn TokenCredential>,
    ingest: Arc<IngestionClient>,
) -> Result<Result<Arc<crate::enrich::Enricher>, String>, StartupError> {
    use crate::config::QueryBackend;
    let e = &settings.enrich;
    let (arm, ws_resource, query_endpoint, query_ws) = match (local, &settings.query, &e.workspace_resource_id) {
        (Some(l), _, _) => (l.url(), LOCAL_WORKSPACE_RESOURCE_ID.to_string(), l.url(), l.workspace.workspace_id()),
        (None, QueryBackend::Azure { endpoint, workspace_id }, Some(ws)) => (e.arm_endpoint.clone(), ws.clone(), endpoint.clone(), workspace_id.clone()),
        (None, QueryBackend::Local, None) => {
            return Ok(Err("enrichment needs SENTINEL_WORKSPACE_RESOURCE_ID and LOG_ANALYTICS_WORKSPACE_ID".into()));
        }
        (None, QueryBackend::Local, Some(_)) => {
            return Err(crate::config::SettingError { setting: "LOG_ANALYTICS_WORKSPACE_ID".into(), message: "required with SENTINEL_WORKSPACE_RESOURCE_ID".into() }.into())
        }
        (None, QueryBackend::Azure { .. }, None) => {
            return Err(crate::config::SettingError { setting: "SENTINEL_WORKSPACE_RESOURCE_ID".into(), message: "required with LOG_ANALYTICS_WORKSPACE_ID".into() }.into())
        }
    };
    let narrator = e.openai.as_ref().map(|(endpoint, deployment, version)| {
        crate::enrich::narrative::OpenAiNarrator::new(endpoint, deployment, version, Arc::new(TokenSource::new(cred.clone(), crate::enrich::narrative::OPENAI_SCOPE)))
    });
    Ok(Ok(Arc::new(crate::enrich::Enricher {
        sentinel: crate::sentinel::SentinelClient::new(&arm, &ws_resource, Arc::new(TokenSource::new(cred.clone(), crate::sentinel::ARM_SCOPE))),
        workspace_resource_id: ws_resource,
        query: crate::query::LogsQueryClient::new(&query_endpoint, &query_ws, Arc::new(TokenSource::new(cred, crate::query::QUERY_SCOPE))),
        ingest,
        narrator,
        settings: e.settings.clone(),
    })))
}

/// The whole HTTP surface of the handler.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        // The Functions host polls `/` until it answers: answer at once, whatever the state.
        .route("/", get(|| async { "ok" }))
        .route("/api/health", get(health))
        .route("/api/webhook/{source}", post(crate::webhook::receive))
        .route("/api/enrich", post(crate::enrich_api::enrich))
        // The queue-triggered `redeliver` function: the host's default invocation, at the function's name.
        .route("/redeliver", post(crate::redeliver::redeliver))
        .fallback(|req: Request| async move { AppError::NotFound(req.uri().path().chars().take(200).collect()) })
        .layer(middleware::from_fn(invocation_span))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

/// One span per invocation, carrying the host's invocation id so logs join up with the Functions host's.
async fn invocation_span(req: Request, next: Next) -> Response {
    let invocation = req
        .headers()
        .get("x-azure-functions-invocationid")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(64).collect::<String>())
        .unwrap_or_default();
    let span = tracing::info_span!("invocation", invocation_id = %invocation, method = %req.method(), path = %req.uri().path());
    next.run(req).instrument(span).await
}

async fn health(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let sources: Vec<_> = state
        .catalog
        .sources()
        .map(|s| {
            let v = &state.verifiers[&s.name];
            json!({
                "name": s.name,
                "auth": s.auth.mode.to_string(),
                "accepting": v.accepts_requests(),
                "tables": s.tables.iter().map(|t| t.schema.name.clone()).collect::<Vec<_>>(),
                "destinations": s.destinations.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let spill = match &state.spill {
        Some(s) => s.status().await,
        None => json!("off"),
    };
    Json(json!({"status": "ok", "backend": state.backend, "sources": sources, "counts": state.metrics.snapshot(), "spill": spill}))
}

/// Binds `127.0.0.1:port` and serves until SIGTERM/SIGINT, then drains.
pub async fn serve(settings: Settings, port: u16) -> Result<(), StartupError> {
    let bridge = Bridge::build(&settings).await?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .map_err(|e| StartupError::Other(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
    let addr = listener.local_addr().map_err(|e| StartupError::Other(e.to_string()))?;
    tracing::info!(%addr, "sentinel-bridge listening");
    axum::serve(listener, app(bridge.state.clone()))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| StartupError::Other(e.to_string()))?;
    tracing::info!("stopped taking requests; sending buffered rows");
    bridge.shutdown().await;
    tracing::info!("shut down cleanly");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
