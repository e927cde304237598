//! The labelled suite's harness (`sentinel-bridge evaluate`, the model tests): each case staged into its own
//! in-memory local workspace over the ingestion API and enriched end to end over loopback HTTP, as Azure would
//! serve it; [`super::evaluation`] scores the outcomes.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::StreamExt;

use super::evaluation::Outcome;
use super::world::CaseSpec;
use super::{scenarios, suite, world};
use crate::azure::identity::{LoopbackClientCredential, TokenSource, MONITOR_SCOPE};
use crate::azure::logs_ingestion::{IngestionClient, IngestionOptions};
use crate::azure::logs_query::{LogsQueryClient, QueryOptions, QUERY_SCOPE};
use crate::azure::sentinel::{SentinelClient, SentinelOptions, ARM_SCOPE};
use crate::enrich::{EnrichSettings, Enricher, Mode};
use crate::local_azure::{Workspace, WorkspaceConfig, LOCAL_WORKSPACE_ID};
use crate::mapping::Catalog;
use crate::metrics::Metrics;

/// An enricher whose Sentinel, Query and ingestion clients all talk to one local workspace at `url`, with its
/// loopback credential (the suite's and `bench enrich`'s; `serve` builds its own from the settings).
pub fn local_enricher(url: &str, cred: Arc<LoopbackClientCredential>, settings: EnrichSettings) -> Enricher {
    let tokens = |scope: &str| Arc::new(TokenSource::new(cred.clone(), scope));
    Enricher {
        sentinel: SentinelClient::new(url, crate::app::LOCAL_WORKSPACE_RESOURCE_ID, tokens(ARM_SCOPE), SentinelOptions::default()),
        resources: crate::azure::resources::ResourcesClient::new(url, tokens(ARM_SCOPE), std::time::Duration::from_secs(30)),
        workspace_resource_id: crate::app::LOCAL_WORKSPACE_RESOURCE_ID.to_string(),
        query: LogsQueryClient::new(url, LOCAL_WORKSPACE_ID, tokens(QUERY_SCOPE), QueryOptions::default()),
        ingest: Arc::new(IngestionClient::new(url, "dcr-local", tokens(MONITOR_SCOPE), IngestionOptions::default(), Arc::new(Metrics::default()))),
        narrator: None,
        settings,
    }
}

/// Stages one case into its own workspace and enriches it.
pub async fn run_case(spec: &CaseSpec, settings: &EnrichSettings) -> Result<Outcome, String> {
    let ws = Workspace::open(WorkspaceConfig::new(crate::app::written_tables(&Catalog::builtin()))).map_err(|e| e.to_string())?;
    let running = ws.serve(SocketAddr::from(([127, 0, 0, 1], 0))).await.map_err(|e| e.to_string())?;
    let url = running.url();
    let cred = Arc::new(LoopbackClientCredential::new(&url, "eval-tenant", "eval-client", "eval-secret"));
    let tokens = |scope: &str| Arc::new(TokenSource::new(cred.clone(), scope));
    let metrics = Arc::new(Metrics::default());
    let stager =
        IngestionClient::new(&crate::local_azure::backfill_endpoint(&url), "dcr-eval", tokens(MONITOR_SCOPE), IngestionOptions::default(), metrics.clone());
    let (incident, number) = suite::incident_of(spec.seed);
    let staged = world::build(spec, None, &incident, number);
    scenarios::stage(&stager, &staged).await.map_err(|e| format!("staging case {}: {e}", spec.seed))?;
    let enricher = local_enricher(&url, cred.clone(), EnrichSettings { mode: Mode::Act, ..settings.clone() });
    let result = enricher.enrich(&crate::enrich::trigger::IncidentRef { name: incident, workspace_resource_id: None }).await;
    running.stop().await;
    let e = result.map_err(|e| format!("case {}: {e}", spec.seed))?;
    Ok(Outcome {
        truth: spec.truth(),
        spec: spec.clone(),
        lead: e.leading.id,
        confidence: e.leading.confidence,
        entry_point: e.leading.entry_point,
        confidences: e.hypotheses.iter().map(|h| (h.id, h.confidence)).collect(),
        signals: e.signals,
        severity_raised: e.actions.iter().any(|a| matches!(a, crate::enrich::ActionOutcome::SeverityRaised { .. })),
        queries: e.queries.iter().map(|q| (q.name.clone(), q.status.clone(), q.rows)).collect(),
        comment_html: e.comment_html,
        recommendation: e.leading.recommendation,
        notes: e.notes,
    })
}

/// Runs the cases drawn by `seeds`, two at a time (the machine's cores), in seed order.
pub async fn run_suite(seeds: impl IntoIterator<Item = u64>, settings: &EnrichSettings) -> Result<Vec<Outcome>, String> {
    let specs: Vec<CaseSpec> = seeds.into_iter().map(suite::case).collect();
    let results: Vec<Result<Outcome, String>> = futures::stream::iter(specs.iter().map(|s| run_case(s, settings))).buffered(2).collect().await;
    results.into_iter().collect()
}
