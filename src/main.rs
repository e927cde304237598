//! The `sentinel-bridge` command: `serve` (the Functions custom handler), `workspace` (the local stand-in for
//! Azure over HTTP), `schema` (table and stream declarations from the mappings) and `bench`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sentinel_bridge::app::{load_catalog, serve};
use sentinel_bridge::config::{LogFormat, Settings};
use sentinel_bridge::workspace::{Workspace, WorkspaceConfig};

// The webhook path allocates many small JSON values per event; mimalloc handles that far better than glibc's
// malloc under two busy threads (see the benchmark figures in the README).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "sentinel-bridge", version, about = "Vendor security webhooks into Microsoft Sentinel")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum SpillCommand {
    /// Move the messages of the poison queue (`<queue>-poison`) back to the spill queue, to be redelivered.
    ReplayPoison,
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Run the analytics rules of infra/rules.json over the local workspace and report which would fire.
    Test {
        /// The rules file.
        #[arg(long, default_value = "infra/rules.json")]
        rules: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Run the handler (port from FUNCTIONS_CUSTOMHANDLER_PORT, else --port).
    Serve {
        #[arg(long, default_value_t = 7071)]
        port: u16,
    },
    /// Serve the local workspace over HTTP on loopback, as a stand-in for Azure.
    Workspace {
        #[arg(long, default_value_t = 7171)]
        port: u16,
        /// Where rows are kept (default: SENTINEL_BRIDGE_DATA_DIR, else .sentinel-bridge).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Run a KQL query against the local workspace (or Azure when LOG_ANALYTICS_WORKSPACE_ID is set).
    Query {
        /// The query.
        kql: String,
        /// Print the Query API's JSON instead of a table.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// Print CSV.
        #[arg(long)]
        csv: bool,
        /// ISO 8601 duration or start/end, applied to every table's TimeGenerated.
        #[arg(long)]
        timespan: Option<String>,
    },
    /// Enrich an incident by hand (its name, a GUID, or its ARM id) and print the result.
    Enrich {
        incident: String,
    },
    /// Stage a scenario in a fresh local workspace, enrich its incident, and print the comment. Offline.
    Demo {
        /// cryptojacking, benign-scaling, credential-compromise, exfiltration, config-drift or nothing.
        #[arg(long, default_value = "cryptojacking")]
        scenario: String,
        /// Keep the workspace here (default: a new temporary directory).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// The azure-queue spill.
    #[command(subcommand)]
    Spill(SpillCommand),
    /// Print (or write) the table and DCR stream declarations the mappings define: the schema infra/ deploys.
    Schema {
        /// Write to this file (infra/schema.json) instead of printing.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Analytics rules shipped in infra/.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Benchmarks that print figures against a baseline run in the same process.
    #[command(subcommand)]
    Bench(sentinel_bridge::bench::Bench),
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stdout);
    match format {
        LogFormat::Json => builder.json().with_current_span(true).init(),
        LogFormat::Pretty => builder.compact().init(),
    }
}

/// The local workspace with every table the bridge writes (the mappings' and the enrichment's).
fn open_local_workspace(settings: &Settings, dir: Option<PathBuf>, read_only: bool) -> Result<std::sync::Arc<Workspace>, String> {
    let catalog = load_catalog(settings).map_err(|e| e.to_string())?;
    let mut tables = catalog.tables();
    tables.extend(sentinel_bridge::enrich::tables::all());
    let mut config = WorkspaceConfig::new(tables);
    let dir = dir.unwrap_or_else(|| settings.data_dir.clone());
    config.data_dir = Some(dir.clone());
    config.read_only = read_only;
    Workspace::open(config).map_err(|e| format!("{}: {e}", dir.display()))
}

async fn run_query(settings: &Settings, kql: &str, json: bool, csv: bool, timespan: Option<&str>) -> Result<(), String> {
    use sentinel_bridge::config::QueryBackend;
    use sentinel_bridge::query::{render_csv, render_table, LogsQueryClient, QUERY_SCOPE};
    let frame = match &settings.query {
        QueryBackend::Azure { endpoint, workspace_id } => {
            let (cred, _) = sentinel_bridge::token::credential_from_env()?;
            let tokens = std::sync::Arc::new(sentinel_bridge::token::TokenSource::new(cred, QUERY_SCOPE));
            let client = LogsQueryClient::new(endpoint, workspace_id, tokens);
            let r = client.query(kql, timespan, std::time::Duration::from_secs(600)).await.map_err(|e| e.to_string())?;
            if let Some(p) = &r.partial_error {
                eprintln!("warning: partial results: {p}");
            }
            r.primary()
        }
        QueryBackend::Local => {
            let ws = open_local_workspace(settings, None, true)?;
            let now = sentinel_bridge::kql::now_ticks();
            let range = match timespan {
                None => None,
                Some(t) => Some(
                    sentinel_bridge::workspace::query_api::parse_timespan(t, now)
                        .ok_or_else(|| format!("--timespan '{t}' is not an ISO 8601 duration or start/end"))?,
                ),
            };
            sentinel_bridge::kql::run(kql, &sentinel_bridge::workspace::query_api::WorkspaceTables { ws: &ws, range }, now)
                .map_err(|e| e.to_string())?
        }
    };
    if json {
        println!("{}", serde_json::json!({"tables": [frame.to_wire("PrimaryResult")]}));
    } else if csv {
        print!("{}", render_csv(&frame));
    } else {
        print!("{}", render_table(&frame));
    }
    Ok(())
}

async fn replay_poison(settings: &Settings) -> Result<(), String> {
    use sentinel_bridge::config::{SpillSetting, StorageSetting};
    use sentinel_bridge::storage_queue::{StorageClient, STORAGE_SCOPE};
    let SpillSetting::AzureQueue { storage, queue, .. } = &settings.spill else {
        return Err("SPILL is not azure-queue (set SPILL=azure-queue and the AzureWebJobsStorage settings)".into());
    };
    let client = match storage {
        StorageSetting::ConnectionString(cs) => StorageClient::from_connection_string(cs)?,
        StorageSetting::Identity { queue_url, blob_url } => {
            let (cred, _) = sentinel_bridge::token::credential_from_env()?;
            StorageClient::with_identity(queue_url, blob_url, std::sync::Arc::new(sentinel_bridge::token::TokenSource::new(cred, STORAGE_SCOPE)))
        }
    };
    let poison = format!("{queue}-poison");
    let mut moved = 0;
    loop {
        let batch = client.get_messages(&poison, 32, 60).await?;
        if batch.is_empty() {
            break;
        }
        for m in batch {
            // The text is moved as stored (base64), so the trigger reads it exactly as before.
            client.put_message(queue, &m.text).await?;
            client.delete_message(&poison, &m).await?;
            moved += 1;
        }
    }
    println!("moved {moved} message(s) from {poison} back to {queue}");
    Ok(())
}

async fn run_enrich(settings: &Settings, incident: &str) -> Result<(), String> {
    let target = sentinel_bridge::enrich::trigger::incident_from_body(&serde_json::json!({ "incidentId": incident }))?;
    let bridge = sentinel_bridge::app::Bridge::build(settings).await.map_err(|e| e.to_string())?;
    let enricher = bridge.state.enricher.as_ref().map_err(|e| e.clone())?.clone();
    let result = enricher.enrich(&target).await.map_err(|e| e.to_string());
    bridge.shutdown().await;
    let e = result?;
    println!("{}", serde_json::to_string_pretty(&e).map_err(|e| e.to_string())?);
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

async fn run_demo(scenario: &str, data_dir: Option<PathBuf>) -> Result<(), String> {
    use sentinel_bridge::enrich::scenarios::{self, Cast, Scenario};
    let s = Scenario::parse(scenario).ok_or_else(|| {
        format!("--scenario '{scenario}' is not one of {}", Scenario::ALL.map(|x| x.name()).join(", "))
    })?;
    let dir = data_dir.unwrap_or_else(|| std::env::temp_dir().join(format!("sentinel-bridge-demo-{}", uuid::Uuid::new_v4())));
    // Offline by construction: no Azure setting is read, whatever the environment holds.
    let settings = Settings::from_vars([("SENTINEL_BRIDGE_DATA_DIR".to_string(), dir.display().to_string())]).map_err(|e| e.to_string())?;
    let bridge = sentinel_bridge::app::Bridge::build(&settings).await.map_err(|e| e.to_string())?;
    let url = bridge.local.as_ref().ok_or("no local workspace")?.url();
    let token = sentinel_bridge::token::TokenSource::new(
        std::sync::Arc::new(sentinel_bridge::token::LoopbackClientCredential::new(&url, "demo", "demo", "demo")),
        sentinel_bridge::token::MONITOR_SCOPE,
    )
    .token()
    .await
    .map_err(|e| e.to_string())?;
    let staged = scenarios::build(s, &Cast::default());
    let rows: usize = staged.streams.iter().map(|(_, r)| r.len()).sum();
    scenarios::stage(&url, &token, &staged).await?;
    println!("staged scenario '{}': {rows} rows of telemetry, an alert and incident {} (workspace in {})", s.name(), staged.incident_name, dir.display());
    let enricher = bridge.state.enricher.as_ref().map_err(|e| e.clone())?.clone();
    let target = sentinel_bridge::enrich::trigger::IncidentRef { name: staged.incident_name.clone(), workspace_resource_id: None };
    let result = enricher.enrich(&target).await.map_err(|e| e.to_string());
    bridge.shutdown().await;
    let e = result?;
    println!(
        "leading hypothesis: {} (confidence {}, {}); comment {} on the incident; {} queries, degraded: {}\n",
        e.leading["title"].as_str().unwrap_or_default(),
        e.leading["confidence"],
        e.leading["band"].as_str().unwrap_or_default(),
        e.comment,
        e.queries.len(),
        e.degraded
    );
    println!("--- comment (as text) ---\n{}", html_to_text(&e.comment_html).trim_end());
    println!("\n--- comment (HTML, {} characters) ---\n{}", e.comment_html.chars().count(), e.comment_html);
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sentinel-bridge: {e}");
            return ExitCode::from(2);
        }
    };
    if !matches!(cli.command, Command::Bench(_) | Command::Query { .. } | Command::Schema { .. } | Command::Rules(_) | Command::Spill(_) | Command::Demo { .. } | Command::Enrich { .. }) {
        init_logging(settings.log_format);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let result: Result<(), String> = rt.block_on(async move {
        match cli.command {
            Command::Serve { port } => {
                let port = settings.port.unwrap_or(port);
                serve(settings, port).await.map_err(|e| e.to_string())
            }
            Command::Workspace { port, data_dir } => {
                let dir = data_dir.unwrap_or(settings.data_dir.clone());
                let ws = open_local_workspace(&settings, Some(dir.clone()), false)?;
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
            Command::Query { kql, json, csv, timespan } => run_query(&settings, &kql, json, csv, timespan.as_deref()).await,
            Command::Enrich { incident } => run_enrich(&settings, &incident).await,
            Command::Demo { scenario, data_dir } => run_demo(&scenario, data_dir).await,
            Command::Schema { out } => {
                let catalog = load_catalog(&settings).map_err(|e| e.to_string())?;
                let text = sentinel_bridge::infra_schema::schema_text(&catalog);
                match out {
                    Some(path) => std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?,
                    None => print!("{text}"),
                }
                Ok(())
            }
            Command::Spill(SpillCommand::ReplayPoison) => replay_poison(&settings).await,
            Command::Rules(RulesCommand::Test { rules, json }) => {
                let ws = open_local_workspace(&settings, None, true)?;
                let text = std::fs::read_to_string(&rules).map_err(|e| format!("{}: {e}", rules.display()))?;
                let rules = sentinel_bridge::rules::parse_rules(&text).map_err(|e| format!("{}: {e}", rules.display()))?;
                let report = sentinel_bridge::rules::test_rules(&rules, &ws, sentinel_bridge::kql::now_ticks());
                if json {
                    println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
                } else {
                    print!("{}", sentinel_bridge::rules::render(&report));
                }
                Ok(())
            }
            Command::Bench(b) => sentinel_bridge::bench::run_bench(b).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sentinel-bridge: {e}");
            ExitCode::from(1)
        }
    }
}
