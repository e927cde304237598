//! Start-up and wiring: [`Bridge::build`] turns checked [`Settings`] into the running pieces ([`AppState`]),
//! [`router`] serves them, and [`local_backend`] starts the local stand-in of Azure when no Azure setting is
//! given.

pub mod local_backend;
pub mod router;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;

use crate::azure::http::RetryPolicy;
use crate::azure::identity::{Credential, TokenSource, MONITOR_SCOPE};
use crate::azure::logs_ingestion::{IngestionClient, IngestionOptions};
use crate::azure::logs_query::{LogsQueryClient, QueryOptions, QUERY_SCOPE};
use crate::azure::openai::{OpenAiClient, OpenAiOptions, OPENAI_SCOPE};
use crate::azure::sentinel::{SentinelClient, SentinelOptions, ARM_SCOPE};
use crate::azure::storage::{StorageClient, StorageError, STORAGE_SCOPE};
use crate::delivery::batcher::{BatchSettings, Batcher};
use crate::delivery::replay::{ReplayGuard, ReplayStore};
use crate::delivery::spill::{QueueSpill, Spill, SpillBackend, SpillLimits};
use crate::enrich::narrative::OpenAiNarrator;
pub use crate::enrich::tables::written_tables;
use crate::enrich::Enricher;
pub use crate::enrich::EnrichmentState;
use crate::functions::enrich_runs::{RunStore, RUNS_CONTAINER};
pub use crate::functions::state::AppState;
use crate::mapping::auth::{Secrets, Verifier};
use crate::mapping::Catalog;
use crate::metrics::Metrics;
use crate::sekoia::{SekoiaClient, SekoiaOptions};
use crate::settings::{secrets_setting, source_setting, Backend, QueryBackend, SettingError, Settings, SpillSetting, StorageSetting};
pub use local_backend::{LocalBackend, LOCAL_DCR_RESOURCE_ID, LOCAL_WORKSPACE_RESOURCE_ID};
pub use router::{app, serve};

/// Everything that is wrong with the configuration or the environment, found before serving.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Setting(#[from] SettingError),
    #[error(transparent)]
    Mapping(#[from] crate::mapping::MappingError),
    #[error("no credential for Azure: {0}")]
    Credential(azure_core::Error),
    #[error(transparent)]
    LocalBackend(#[from] local_backend::LocalBackendError),
    #[error("SPILL=azure-queue: the storage queue is unreachable: {0}")]
    SpillQueue(StorageError),
    #[error("AzureWebJobsStorage: the replay container is unreachable: {0}")]
    ReplayStore(StorageError),
    #[error("AzureWebJobsStorage: the enrichment runs' container is unreachable: {0}")]
    RunStore(StorageError),
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Listen { port: u16, source: std::io::Error },
    #[error("the server stopped: {0}")]
    Serve(std::io::Error),
}

/// Reads the mapping files a setting names.
pub fn load_catalog(settings: &Settings) -> Result<Catalog, StartupError> {
    let mut files = Vec::new();
    for p in &settings.sources_files {
        let text = std::fs::read_to_string(p).map_err(|e| SettingError { setting: "WEBHOOK_SOURCES_FILE".into(), message: format!("{}: {e}", p.display()) })?;
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
            Some(v) => Secrets::parse(v, &s.auth.mode).map_err(|m| SettingError { setting: setting.clone(), message: m.to_string() })?,
            None => Secrets::default(),
        };
        if s.auth.open && settings.under_functions_host {
            return Err(SettingError {
                setting: "WEBHOOK_SOURCES_FILE".into(),
                message: format!(
                    "source '{}' is open (it accepts unauthenticated webhooks), which is for local trials, never under the Functions host",
                    s.name
                ),
            }
            .into());
        }
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
        return Err(SettingError { setting: unused.clone(), message: "names no configured source".into() }.into());
    }
    Ok(verifiers)
}

/// The pieces [`serve`] runs; separate so tests and the benchmark can build one around their own stand-ins.
pub struct Bridge {
    pub state: Arc<AppState>,
    /// The embedded workspace, when no Azure endpoint is configured.
    pub local: Option<LocalBackend>,
    drain: Option<(tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<()>)>,
}

impl Bridge {
    pub async fn build(settings: &Settings) -> Result<Bridge, StartupError> {
        Self::build_inner(settings, None).await
    }

    /// As [`Bridge::build`], with the Azure backend's credential given rather than taken from the settings.
    pub async fn build_with_credential(settings: &Settings, credential: Arc<dyn TokenCredential>) -> Result<Bridge, StartupError> {
        Self::build_inner(settings, Some(credential)).await
    }

    async fn build_inner(settings: &Settings, credential: Option<Arc<dyn TokenCredential>>) -> Result<Bridge, StartupError> {
        let mut catalog = load_catalog(settings)?;
        apply_destinations(&mut catalog, settings)?;
        let verifiers = build_verifiers(&catalog, settings)?;
        let metrics = Arc::new(Metrics::default());
        let mut stream_rules = std::collections::HashMap::new();
        let dcr_resource_ids;
        let (endpoint, dcr, scope, local, backend, cred) = match &settings.backend {
            Backend::Azure { endpoint, dcr_immutable_id, scope, stream_rules: rules, dcr_resource_ids: rule_ids } => {
                dcr_resource_ids = rule_ids.clone();
                let streams: Vec<String> = written_tables(&catalog).iter().map(|t| t.stream_name()).collect();
                for (stream, rule) in rules {
                    if !streams.contains(stream) {
                        return Err(SettingError {
                            setting: "DCR_STREAM_RULES".into(),
                            message: format!("names {stream}, which no mapping or enrichment table writes"),
                        }
                        .into());
                    }
                    stream_rules.insert(stream.clone(), rule.clone());
                }
                let cred = match credential {
                    Some(c) => Credential::fixed(c, "given credential"),
                    None => Credential::for_setting(&settings.identity).map_err(StartupError::Credential)?,
                };
                tracing::info!(endpoint = %endpoint, credential = cred.kind, "ingesting into Azure Monitor");
                (endpoint.clone(), dcr_immutable_id.clone(), scope.clone(), None, "azure".to_string(), cred)
            }
            Backend::Local => {
                let local = LocalBackend::start(settings, &catalog).await?;
                let url = local.url();
                tracing::info!(data_dir = %settings.data_dir.display(), url = %url, "no LOGS_INGESTION_ENDPOINT: using the local workspace");
                let cred = Credential::fixed(local.credential(), "local workspace");
                dcr_resource_ids = vec![LOCAL_DCR_RESOURCE_ID.to_string()];
                (url, "dcr-local".to_string(), MONITOR_SCOPE.to_string(), Some(local), format!("local:{}", settings.data_dir.display()), cred)
            }
        };
        let tokens = Arc::new(TokenSource::new(cred.clone(), scope));
        let options = IngestionOptions { retry: RetryPolicy::default(), max_call_bytes: settings.max_call_bytes, stream_rules };
        let client = Arc::new(IngestionClient::new(&endpoint, &dcr, tokens, options, metrics.clone()));
        let enricher = build_enricher(settings, local.as_ref(), cred.clone(), client.clone())?;
        let sekoia = build_sekoia(&catalog, settings, local.as_ref(), metrics.clone())?;
        let spill = build_spill(settings, &cred, catalog.sources().count() as u64).await?;
        // One client for the function's own storage account: the replay markers and the enrichment runs.
        let host_storage = settings.storage.as_ref().map(|s| storage_client(s, cred.clone())).transpose()?.map(Arc::new);
        let replay = ReplayGuard::new(build_replay_store(settings, host_storage.clone()).await?);
        let enrich_runs = build_run_store(host_storage).await?;
        let drain = match &spill {
            Some(SpillBackend::Dir(s)) => {
                let (tx, rx) = tokio::sync::watch::channel(false);
                Some((tx.clone(), s.start_drain(client.clone(), sekoia.clone(), rx)))
            }
            _ => None,
        };
        let streams = catalog.tables().iter().map(|t| t.stream_name()).collect::<Vec<_>>();
        let batcher = Batcher::new(client.clone(), streams, BatchSettings { linger: settings.linger, max_in_flight: settings.max_in_flight });
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
            replay,
            max_body_bytes: settings.max_body_bytes,
            max_events: settings.max_events,
            admission: crate::functions::enrich::Admission::new(settings.enrich.max_concurrent, settings.enrich.max_queued, crate::functions::enrich::MAX_WAIT),
            enrich_runs,
            enrich_sync_wait: settings.enrich.sync_wait,
            http_body_timeout: settings.http_body_timeout,
            deadline: settings.deadline,
            backend,
            settings: settings.clone(),
            credential: cred,
            dcr_resource_ids,
            arm_endpoint: local.as_ref().map_or_else(|| settings.enrich.arm_endpoint.clone(), |l| l.url()),
            doctor: crate::doctor::Cache::default(),
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

/// Where Standard Webhooks message ids are kept: the function's storage account when there is one (every
/// instance sees it), else the data directory (every local process and restart sees it).
async fn build_replay_store(settings: &Settings, storage: Option<Arc<StorageClient>>) -> Result<ReplayStore, StartupError> {
    match storage {
        Some(client) => {
            client.create_container(REPLAY_CONTAINER).await.map_err(StartupError::ReplayStore)?;
            Ok(ReplayStore::Blob { client, container: REPLAY_CONTAINER.into() })
        }
        None => {
            if settings.under_functions_host {
                tracing::warn!("no AzureWebJobsStorage: Standard Webhooks message ids are kept on this instance's disk only");
            }
            Ok(ReplayStore::Dir(settings.data_dir.join("replay")))
        }
    }
}

/// Where enrichment runs are kept for the playbook's poll: the function's storage account, which every instance
/// reads, or this process's memory without one.
async fn build_run_store(storage: Option<Arc<StorageClient>>) -> Result<RunStore, StartupError> {
    match storage {
        Some(client) => {
            client.create_container(RUNS_CONTAINER).await.map_err(StartupError::RunStore)?;
            Ok(RunStore::Blob { client, container: RUNS_CONTAINER.into() })
        }
        None => Ok(RunStore::memory()),
    }
}

/// The container of replay markers (`infra/modules/storage.bicep` deletes its blobs after a day).
pub const REPLAY_CONTAINER: &str = "sentinel-bridge-replay";

/// The spill the settings ask for: a directory, or the function's storage queue (reachable before we serve).
async fn build_spill(settings: &Settings, cred: &Credential, sources: u64) -> Result<Option<SpillBackend>, StartupError> {
    match &settings.spill {
        SpillSetting::Off => Ok(None),
        SpillSetting::Dir(dir) => {
            let spill = Spill::open(dir, SpillLimits { sources: sources.max(1), ..settings.spill_limits })
                .map_err(|e| SettingError { setting: "SPILL".into(), message: format!("{}: {e}", dir.display()) })?;
            Ok(Some(SpillBackend::Dir(spill)))
        }
        SpillSetting::AzureQueue { storage, queue, container, seal } => {
            let client = storage_client(storage, cred.clone())?;
            let q = QueueSpill::open(client, queue, container, settings.spill_retry, seal.clone()).await.map_err(StartupError::SpillQueue)?;
            tracing::info!(queue = %queue, "spill: the function's storage queue");
            Ok(Some(SpillBackend::Queue(q)))
        }
    }
}

/// The function's storage account as a setting describes it.
pub fn storage_client(storage: &StorageSetting, cred: Credential) -> Result<StorageClient, SettingError> {
    match storage {
        StorageSetting::ConnectionString(cs) => {
            StorageClient::from_connection_string(cs).map_err(|e| SettingError { setting: "AzureWebJobsStorage".into(), message: e.to_string() })
        }
        StorageSetting::Identity { queue_url, blob_url } => {
            Ok(StorageClient::with_identity(queue_url, blob_url, Arc::new(TokenSource::new(cred, STORAGE_SCOPE))))
        }
    }
}

/// `SOURCE_<NAME>_DESTINATIONS` overrides a mapping's destinations; a setting for no known source is an error.
fn apply_destinations(catalog: &mut Catalog, settings: &Settings) -> Result<(), StartupError> {
    let names: Vec<String> = catalog.sources().map(|s| s.name.clone()).collect();
    for (setting, value) in &settings.source_settings {
        let Some(name) = names.iter().find(|n| *setting == source_setting(n, "DESTINATIONS") || *setting == source_setting(n, "SEKOIA_KEY")) else {
            return Err(SettingError { setting: setting.clone(), message: "names no configured source".into() }.into());
        };
        if setting.ends_with("_DESTINATIONS") {
            let list: Vec<String> = value.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
            let d = crate::mapping::SourceMapping::parse_destinations(&list).map_err(|m| SettingError { setting: setting.clone(), message: m.to_string() })?;
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
    local: Option<&LocalBackend>,
    metrics: Arc<Metrics>,
) -> Result<BTreeMap<String, Arc<SekoiaClient>>, StartupError> {
    let mut out = BTreeMap::new();
    for s in catalog.sources().filter(|s| s.routes_to(crate::mapping::Destination::Sekoia)) {
        let base = match (&settings.sekoia_url, local) {
            (Some(u), _) => u.clone(),
            (None, Some(l)) => format!("{}/sekoia", l.url()),
            (None, None) => crate::sekoia::DEFAULT_INTAKE_URL.to_string(),
        };
        let key = settings
            .source_settings
            .get(&source_setting(&s.name, "SEKOIA_KEY"))
            .cloned()
            .or_else(|| settings.sekoia_key.clone())
            .or_else(|| local.map(|_| "local-intake-key".to_string()));
        let Some(key) = key else {
            return Err(SettingError {
                setting: "SEKOIA_INTAKE_KEY".into(),
                message: format!("source '{}' routes to sekoia but no intake key is set", s.name),
            }
            .into());
        };
        let options = SekoiaOptions { retry: RetryPolicy::default(), max_call_bytes: settings.sekoia_max_call_bytes };
        let client = SekoiaClient::new(&base, &key, options, metrics.clone());
        out.insert(s.name.clone(), Arc::new(client));
    }
    Ok(out)
}

/// The enrichment: against the embedded workspace locally; in Azure, when both the Query API workspace and
/// the Sentinel workspace are configured (one without the other is a start-up error).
fn build_enricher(settings: &Settings, local: Option<&LocalBackend>, cred: Credential, ingest: Arc<IngestionClient>) -> Result<EnrichmentState, StartupError> {
    let e = &settings.enrich;
    let (arm, ws_resource, query_endpoint, query_ws) = match (local, &settings.query, &e.workspace_resource_id) {
        (Some(l), _, _) => (l.url(), LOCAL_WORKSPACE_RESOURCE_ID.to_string(), l.url(), l.workspace_id()),
        (None, QueryBackend::Azure { endpoint, workspace_id }, Some(ws)) => (e.arm_endpoint.clone(), ws.clone(), endpoint.clone(), workspace_id.clone()),
        (None, QueryBackend::Local, None) => {
            return Ok(EnrichmentState::Off("enrichment needs SENTINEL_WORKSPACE_RESOURCE_ID and LOG_ANALYTICS_WORKSPACE_ID"));
        }
        (None, QueryBackend::Local, Some(_)) => {
            return Err(SettingError { setting: "LOG_ANALYTICS_WORKSPACE_ID".into(), message: "required with SENTINEL_WORKSPACE_RESOURCE_ID".into() }.into())
        }
        (None, QueryBackend::Azure { .. }, None) => {
            return Err(SettingError { setting: "SENTINEL_WORKSPACE_RESOURCE_ID".into(), message: "required with LOG_ANALYTICS_WORKSPACE_ID".into() }.into())
        }
    };
    let tokens = |scope: &str| Arc::new(TokenSource::new(cred.clone(), scope));
    let narrator = e.openai.as_ref().map(|o| OpenAiNarrator {
        client: OpenAiClient::new(
            OpenAiOptions {
                endpoint: o.endpoint.clone(),
                deployment: o.deployment.clone(),
                api_version: o.api_version.clone(),
                kind: o.kind,
                max_output_tokens: o.max_output_tokens,
                reasoning_effort: o.reasoning_effort.clone(),
                retry: RetryPolicy::default(),
                timeout: Duration::from_secs(30),
            },
            tokens(OPENAI_SCOPE),
        ),
    });
    Ok(EnrichmentState::Ready(Arc::new(Enricher {
        sentinel: SentinelClient::new(&arm, &ws_resource, tokens(ARM_SCOPE), SentinelOptions::default()),
        resources: crate::azure::resources::ResourcesClient::new(&arm, tokens(ARM_SCOPE), e.settings.query_timeout),
        workspace_resource_id: ws_resource,
        query: LogsQueryClient::new(&query_endpoint, &query_ws, tokens(QUERY_SCOPE), QueryOptions::default()),
        ingest,
        narrator,
        settings: e.settings.clone(),
    })))
}
