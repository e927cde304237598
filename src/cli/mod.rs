//! The commands of the binary. `main.rs` parses nothing and decides nothing: it calls [`main`].
//!
//! - `serve`: the Functions custom handler ([`crate::app::serve`]);
//! - `workspace`: the local workspace alone, as a stand-in for Azure ([`workspace`]);
//! - `query`: KQL against the local workspace or the Query API ([`query`]);
//! - `enrich`, `demo` and `evaluate`: one incident by hand, a staged scenario offline, the model measured on
//!   the labelled suite ([`enrich`]);
//! - `rules test`: the shipped analytics rules over the local workspace ([`rules`]);
//! - `schema`: the tables and DCR streams infra/ deploys ([`schema`]);
//! - `settings`: the settings registry as the README's table ([`crate::settings`]);
//! - `doctor`: does the deployment work, end to end ([`doctor`], over [`crate::doctor`]);
//! - `spill replay` ([`spill`]); `bench` ([`crate::bench`]).
//!
//! Commands report failures as boxed errors: this is the edge where an error becomes a line on stderr.

pub mod doctor;
pub mod enrich;
pub mod query;
pub mod rules;
pub mod schema;
pub mod spill;
pub mod workspace;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::settings::{LogFormat, Settings};

/// What a command returns: nothing, or the error to print.
pub type CliResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

#[derive(Parser)]
#[command(name = "sentinel-bridge", version, about = "Vendor security webhooks into Microsoft Sentinel")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum SpillCommand {
    /// Put what was set aside back in the spill, to be redelivered: a `dir:` spill's dead-letter store, or the
    /// poison queue (`<queue>-poison`) of `azure-queue`.
    #[command(alias = "replay-poison")]
    Replay,
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
    Enrich { incident: String },
    /// Stage a scenario in a fresh local workspace, enrich its incident, and print the comment. Offline.
    Demo {
        /// cryptojacking, benign-scaling, credential-compromise, exfiltration, config-drift, ransomware or nothing.
        #[arg(long, default_value = "cryptojacking")]
        scenario: String,
        /// Keep the workspace here (default: a new temporary directory).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// What the host is worth: `critical` (in the High Value Assets watchlist, tagged criticality=high) or
        /// `sandbox` (tagged environment=dev); unset, nothing says.
        #[arg(long)]
        asset: Option<String>,
    },
    /// The spill: what waits for redelivery, and what was set aside.
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
    /// Check that the deployment works: settings, tokens, the DCR, roles, tables, Sentinel, the spill.
    Doctor {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Also write one marked row per stream and read it back.
        #[arg(long)]
        canary: bool,
        /// How long the canary may take to come back, seconds (Azure's ingestion latency is minutes).
        #[arg(long, default_value_t = 300)]
        wait: u64,
    },
    /// Measure the enrichment model on the labelled, randomised suite: each case staged in its own local
    /// workspace and enriched end to end; prints precision, recall, Brier score and a reliability table.
    Evaluate {
        /// The first seed.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// How many cases (seeds from, from+1, …).
        #[arg(long, default_value_t = 200)]
        cases: u64,
        /// Print JSON (the report and every case's outcome).
        #[arg(long)]
        json: bool,
        /// Fit the model's weights and thresholds on these cases and write them to this file
        /// (src/enrich/weights.rs), then report the fitted model on the same cases.
        #[arg(long)]
        fit: Option<PathBuf>,
    },
    /// Print the settings registry as the README's settings table.
    Settings,
    /// Benchmarks that print figures against a baseline run in the same process.
    #[command(subcommand)]
    Bench(crate::bench::Bench),
}

fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stdout);
    match format {
        LogFormat::Json => builder.json().with_current_span(true).init(),
        LogFormat::Pretty => builder.compact().init(),
    }
}

/// Parses the command line and the settings, runs the command, and turns its outcome into an exit status:
/// 2 for a bad setting (nothing started), 1 for a command that failed.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = || tokio::runtime::Builder::new_multi_thread().enable_all().build();
    // doctor reports a bad setting as its failing line (exit 1), where other commands stop with 2.
    if let Command::Doctor { json, canary, wait } = cli.command {
        return match rt() {
            Ok(rt) => rt.block_on(doctor::run(Settings::from_env(), json, canary, wait)),
            Err(e) => {
                eprintln!("sentinel-bridge: cannot start the async runtime: {e}");
                ExitCode::from(1)
            }
        };
    }
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sentinel-bridge: {e}");
            return ExitCode::from(2);
        }
    };
    // The long-running commands log; the others print their result and nothing else.
    if matches!(cli.command, Command::Serve { .. } | Command::Workspace { .. }) {
        init_logging(settings.log_format, &settings.log_filter);
    }
    let rt = match rt() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sentinel-bridge: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli.command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sentinel-bridge: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(command: Command, settings: Settings) -> CliResult {
    match command {
        Command::Serve { port } => {
            let port = settings.port.unwrap_or(port);
            Ok(crate::app::serve(settings, port).await?)
        }
        Command::Workspace { port, data_dir } => workspace::run(&settings, port, data_dir).await,
        Command::Query { kql, json, csv, timespan } => query::run(&settings, &kql, json, csv, timespan.as_deref()).await,
        Command::Enrich { incident } => enrich::run_enrich(&settings, &incident).await,
        Command::Demo { scenario, data_dir, asset } => enrich::run_demo(&scenario, data_dir, asset.as_deref()).await,
        Command::Evaluate { from, cases, json, fit } => enrich::run_evaluate(from, cases, json, fit).await,
        Command::Schema { out } => schema::run(&settings, out),
        Command::Spill(SpillCommand::Replay) => spill::replay(&settings).await,
        Command::Rules(RulesCommand::Test { rules, json }) => rules::run(&settings, &rules, json),
        // main() runs doctor before the settings are read, so that a bad one is a line of its report.
        Command::Doctor { .. } => Err("doctor is dispatched by main".into()),
        Command::Settings => {
            print!("{}", crate::settings::markdown_table());
            Ok(())
        }
        Command::Bench(b) => Ok(crate::bench::run_bench(b).await?),
    }
}
