//! What every function reads: the pieces start-up built from the settings, shared behind one `Arc` by
//! the router.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use crate::azure::identity::Credential;
use crate::azure::logs_ingestion::IngestionClient;
use crate::delivery::batcher::Batcher;
use crate::delivery::replay::ReplayGuard;
use crate::delivery::spill::SpillBackend;
use crate::doctor::Deployment;
use crate::enrich::EnrichmentState;
use crate::mapping::auth::Verifier;
use crate::mapping::Catalog;
use crate::metrics::Metrics;
use crate::sekoia::SekoiaClient;
use crate::settings::Settings;

pub struct AppState {
    pub catalog: Catalog,
    /// Sekoia intake clients of the sources that route there.
    pub sekoia: BTreeMap<String, Arc<SekoiaClient>>,
    /// Where undeliverable accepted events wait, when configured.
    pub spill: Option<SpillBackend>,
    /// The ingestion client, for redelivering spilled rows.
    pub ingest: Arc<IngestionClient>,
    pub enricher: EnrichmentState,
    pub verifiers: HashMap<String, Verifier>,
    pub batcher: Batcher,
    pub metrics: Arc<Metrics>,
    pub replay: ReplayGuard,
    pub max_body_bytes: usize,
    pub max_events: usize,
    /// How many enrichments run and wait at once (`/api/enrich`).
    pub admission: crate::functions::enrich::Admission,
    /// Where enrichment runs are kept for the playbook's poll, and how long a call waits for its run.
    pub enrich_runs: crate::functions::enrich_runs::RunStore,
    pub enrich_sync_wait: Duration,
    pub http_body_timeout: Duration,
    pub deadline: Duration,
    pub backend: String,
    /// The settings it was built from, and the credential of every Azure call: what `doctor` checks.
    pub settings: Settings,
    pub credential: Credential,
    /// The rules' ARM ids (`DCR_RESOURCE_ID`, or the local workspace's), and where ARM is, for `doctor`.
    pub dcr_resource_ids: Vec<String>,
    pub arm_endpoint: String,
    /// The last `doctor` report, for `/api/doctor` and `/api/health`.
    pub doctor: crate::doctor::Cache,
}

impl AppState {
    /// What `doctor` checks: the deployment as these pieces hold it.
    pub fn deployment(&self) -> Deployment<'_> {
        Deployment {
            catalog: &self.catalog,
            sekoia: &self.sekoia,
            spill: &self.spill,
            ingest: &self.ingest,
            enricher: &self.enricher,
            verifiers: &self.verifiers,
            replay: &self.replay,
            backend: &self.backend,
            settings: &self.settings,
            credential: &self.credential,
            dcr_resource_ids: &self.dcr_resource_ids,
            arm_endpoint: &self.arm_endpoint,
        }
    }
}
