//! `sentinel-bridge workspace`: the local workspace alone, served on loopback, with the settings that point
//! a bridge (or Microsoft's SDKs) at it. Also the helper the other commands open it with.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use super::CliResult;
use crate::app::load_catalog;
use crate::local_azure::{Workspace, WorkspaceConfig};
use crate::settings::Settings;

/// The local workspace with every table the bridge writes (the mappings' and the enrichment's).
pub fn open_local_workspace(settings: &Settings, dir: Option<PathBuf>, read_only: bool) -> Result<Arc<Workspace>, Box<dyn std::error::Error + Send + Sync>> {
    let catalog = load_catalog(settings)?;
    let mut config = WorkspaceConfig::new(crate::app::written_tables(&catalog));
    let dir = dir.unwrap_or_else(|| settings.data_dir.clone());
    config.data_dir = Some(dir.clone());
    config.read_only = read_only;
    Workspace::open(config).map_err(|e| format!("{}: {e}", dir.display()).into())
}

pub async fn run(settings: &Settings, port: u16, data_dir: Option<PathBuf>) -> CliResult {
    let dir = data_dir.unwrap_or(settings.data_dir.clone());
    let ws = open_local_workspace(settings, Some(dir.clone()), false)?;
    let running = ws.serve(SocketAddr::from(([127, 0, 0, 1], port))).await.map_err(|e| format!("--port {port}: {e}"))?;
    let url = running.url();
    println!("local workspace serving {} (data in {})", url, dir.display());
    println!("  LOGS_INGESTION_ENDPOINT={url}");
    println!("  DCR_IMMUTABLE_ID=dcr-local          (any dcr-… is accepted)");
    println!("  IDENTITY_ENDPOINT={url}/msi/token   IDENTITY_HEADER=<anything>");
    println!("  token endpoint (client credentials): {url}/<tenant>/oauth2/v2.0/token");
    println!("  LOG_ANALYTICS_ENDPOINT={url}   LOG_ANALYTICS_WORKSPACE_ID={}", ws.workspace_id());
    println!("  ARM_ENDPOINT={url}   (Sentinel incidents under /subscriptions/…)");
    println!("  rows: {url}/_local/tables/<Table>   faults: POST {url}/_faults");
    let _ = tokio::signal::ctrl_c().await;
    running.stop().await;
    Ok(())
}
