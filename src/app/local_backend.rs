//! The local backend: with no Azure setting, start-up serves the embedded local workspace (the stand-in of
//! Azure) on loopback and points the very same clients at it. The one product module that may start the
//! stand-in; everything else reaches it over HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use azure_core::credentials::TokenCredential;

use crate::azure::identity::LoopbackClientCredential;
use crate::local_azure::{RunningWorkspace, Workspace, WorkspaceConfig};
use crate::mapping::Catalog;
use crate::settings::Settings;

/// The local workspace's ARM path for Sentinel, used when no Azure settings are given.
pub const LOCAL_WORKSPACE_RESOURCE_ID: &str =
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/Microsoft.OperationalInsights/workspaces/local";

/// The local workspace's data collection rule, as ARM names it.
pub const LOCAL_DCR_RESOURCE_ID: &str =
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/Microsoft.Insights/dataCollectionRules/local";

/// Why the local workspace could not start.
#[derive(Debug, thiserror::Error)]
pub enum LocalBackendError {
    #[error("the local workspace cannot open {dir}: {message}")]
    Open { dir: String, message: String },
    #[error("the local workspace cannot listen on loopback: {0}")]
    Listen(std::io::Error),
}

/// The embedded workspace, served on a loopback port.
pub struct LocalBackend {
    running: RunningWorkspace,
}

impl LocalBackend {
    /// Opens the data directory with every table the bridge writes (the mappings' and the enrichment's) and serves it.
    pub async fn start(settings: &Settings, catalog: &Catalog) -> Result<LocalBackend, LocalBackendError> {
        let mut config = WorkspaceConfig::new(super::written_tables(catalog));
        config.data_dir = Some(settings.data_dir.clone());
        config.dcr_resource_id = Some(LOCAL_DCR_RESOURCE_ID.to_string());
        let ws = Workspace::open(config).map_err(|e| LocalBackendError::Open { dir: settings.data_dir.display().to_string(), message: e.to_string() })?;
        let running = ws.serve(SocketAddr::from(([127, 0, 0, 1], 0))).await.map_err(LocalBackendError::Listen)?;
        Ok(LocalBackend { running })
    }

    /// Where every client points: ingestion, query, ARM and the token endpoint share one loopback origin.
    pub fn url(&self) -> String {
        self.running.url()
    }

    pub fn workspace_id(&self) -> String {
        self.running.workspace.workspace_id()
    }

    /// The client-credentials grant against the workspace's own token endpoint.
    pub fn credential(&self) -> Arc<dyn TokenCredential> {
        Arc::new(LoopbackClientCredential::new(&self.url(), "local", "sentinel-bridge", "local-workspace"))
    }

    pub async fn stop(self) {
        self.running.stop().await;
    }
}
