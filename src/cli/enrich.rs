//! `sentinel-bridge enrich <incident>` (one incident by hand, against the configured backend) and
//! `sentinel-bridge demo` (a scenario staged in a fresh local workspace, enriched, and the comment printed).

use std::path::PathBuf;

use std::sync::Arc;

use super::CliResult;
use crate::app::{Bridge, EnrichmentState};
use crate::azure::identity::{TokenSource, MONITOR_SCOPE};
use crate::azure::logs_ingestion::{IngestionClient, IngestionOptions};
use crate::enrich::Enricher;
use crate::metrics::Metrics;
use crate::settings::Settings;

fn ready(bridge: &Bridge) -> Result<Arc<Enricher>, Box<dyn std::error::Error + Send + Sync>> {
    match &bridge.state.enricher {
        EnrichmentState::Ready(e) => Ok(e.clone()),
        EnrichmentState::Off(why) => Err((*why).into()),
    }
}

pub async fn run_enrich(settings: &Settings, incident: &str) -> CliResult {
    let target = crate::enrich::trigger::incident_from_body(&serde_json::json!({ "incidentId": incident }))?;
    let bridge = Bridge::build(settings).await?;
    let enricher = ready(&bridge)?;
    let result = enricher.enrich(&target).await;
    bridge.shutdown().await;
    println!("{}", serde_json::to_string_pretty(&result?)?);
    Ok(())
}

/// A readable rendering of the comment's HTML for a terminal.
fn html_to_text(html: &str) -> String {
    let spaced = html.replace("</p>", "\n\n").replace("</tr>", "\n").replace("</td>", " | ").replace("</th>", " | ").replace("<table>", "\n");
    let mut out = String::new();
    let mut in_tag = false;
    for c in spaced.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

pub async fn run_demo(scenario: &str, data_dir: Option<PathBuf>, asset: Option<&str>) -> CliResult {
    use crate::lab::scenarios::{self, AssetWorth, Cast, Scenario};
    let s = Scenario::parse(scenario).ok_or_else(|| format!("--scenario '{scenario}' is not one of {}", Scenario::ALL.map(|x| x.name()).join(", ")))?;
    let worth = match asset {
        None => None,
        Some(a) => Some(AssetWorth::parse(a).ok_or_else(|| format!("--asset '{a}' is not one of critical, sandbox"))?),
    };
    let dir = data_dir.unwrap_or_else(|| std::env::temp_dir().join(format!("sentinel-bridge-demo-{}", uuid::Uuid::new_v4())));
    // Offline by construction: no Azure setting is read, whatever the environment holds.
    let settings = Settings::from_vars([("SENTINEL_BRIDGE_DATA_DIR".to_string(), dir.display().to_string())])?;
    let bridge = Bridge::build(&settings).await?;
    let local = bridge.local.as_ref().ok_or("no local workspace")?;
    let url = local.url();
    let tokens = Arc::new(TokenSource::new(local.credential(), MONITOR_SCOPE));
    // Two weeks of history, staged at once: the workspace keeps their times, as rows that arrived over time.
    let client =
        IngestionClient::new(&crate::local_azure::backfill_endpoint(&url), "dcr-demo", tokens, IngestionOptions::default(), Arc::new(Metrics::default()));
    let staged = scenarios::build(s, &Cast::default());
    let rows: usize = staged.streams.iter().map(|(_, r)| r.len()).sum();
    scenarios::stage(&client, &staged).await?;
    println!("staged scenario '{}': {rows} rows of telemetry, an alert and incident {} (workspace in {})", s.name(), staged.incident_name, dir.display());
    if let Some(w) = worth {
        let arm = TokenSource::new(local.credential(), crate::azure::sentinel::ARM_SCOPE);
        scenarios::stage_asset_worth(&url, &arm, &Cast::default().host, w).await?;
        println!("recorded the host as {}", asset.unwrap_or_default());
    }
    let enricher = ready(&bridge)?;
    let target = crate::enrich::trigger::IncidentRef { name: staged.incident_name.clone(), workspace_resource_id: None };
    let result = enricher.enrich(&target).await;
    bridge.shutdown().await;
    let e = result?;
    println!(
        "leading hypothesis: {} (confidence {}, {}); comment {} on the incident; {} queries, degraded: {}\n",
        e.leading.title,
        e.leading.confidence,
        e.leading.band,
        e.comment,
        e.queries.len(),
        e.degraded
    );
    println!("--- comment (as text) ---\n{}", html_to_text(&e.comment_html).trim_end());
    println!("\n--- comment (HTML, {} characters) ---\n{}", e.comment_html.chars().count(), e.comment_html);
    Ok(())
}

/// `sentinel-bridge evaluate`: the labelled suite, offline, with the default enrichment settings; with
/// `--fit`, the model fitted on it and written out.
pub async fn run_evaluate(from: u64, cases: u64, json: bool, fit: Option<PathBuf>) -> CliResult {
    use crate::lab::evaluation;
    let started = std::time::Instant::now();
    let mut outcomes = crate::lab::harness::run_suite(from..from + cases, &crate::enrich::EnrichSettings::default()).await?;
    if let Some(path) = fit {
        let model = evaluation::fit(&outcomes);
        std::fs::write(&path, evaluation::weights_source(&model, (from, from + cases)))?;
        println!(
            "wrote the fitted model to {} (lead threshold {:.2}, chain threshold {:.2}); on its own training cases, re-inferred offline:",
            path.display(),
            model.lead_threshold,
            model.chain_threshold
        );
        evaluation::reinfer(&mut outcomes, &model);
    }
    let report = evaluation::measure(&outcomes);
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"report": report, "outcomes": outcomes}))?);
    } else {
        println!("seeds {from}..{}, {:.1} s\n{}", from + cases, started.elapsed().as_secs_f64(), evaluation::render(&report));
        for w in &report.wrong {
            println!("wrong: {w}");
        }
    }
    Ok(())
}
