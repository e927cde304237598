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
    /// Print the table and DCR stream declarations the source mappings define (JSON).
    Schema,
    /// Benchmark the webhook path against a no-op ceiling in the same run.
    Bench(sentinel_bridge::bench::BenchArgs),
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stdout);
    match format {
        LogFormat::Json => builder.json().with_current_span(true).init(),
        LogFormat::Pretty => builder.compact().init(),
    }
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
    if !matches!(cli.command, Command::Bench(_)) {
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
                let catalog = load_catalog(&settings).map_err(|e| e.to_string())?;
                let mut config = WorkspaceConfig::new(catalog.tables());
                let dir = data_dir.unwrap_or(settings.data_dir.clone());
                config.data_dir = Some(dir.clone());
                let ws = Workspace::open(config).map_err(|e| format!("--data-dir {}: {e}", dir.display()))?;
                let running = ws.serve(SocketAddr::from(([127, 0, 0, 1], port))).await.map_err(|e| format!("--port {port}: {e}"))?;
                let url = running.url();
                println!("local workspace serving {} (data in {})", url, dir.display());
                println!("  LOGS_INGESTION_ENDPOINT={url}");
                println!("  DCR_IMMUTABLE_ID=dcr-local          (any dcr-… is accepted)");
                println!("  IDENTITY_ENDPOINT={url}/msi/token   IDENTITY_HEADER=<anything>");
                println!("  token endpoint (client credentials): {url}/<tenant>/oauth2/v2.0/token");
                println!("  rows: {url}/_local/tables/<Table>   faults: POST {url}/_faults");
                let _ = tokio::signal::ctrl_c().await;
                running.stop().await;
                Ok(())
            }
            Command::Schema => {
                let catalog = load_catalog(&settings).map_err(|e| e.to_string())?;
                let tables: Vec<_> = catalog
                    .tables()
                    .iter()
                    .map(|t| {
                        serde_json::json!({
                            "table": t.name,
                            "stream": t.stream_name(),
                            "columns": t.columns.iter().map(|c| serde_json::json!({"name": c.name, "type": c.kind.as_str()})).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&tables).expect("json"));
                Ok(())
            }
            Command::Bench(args) => sentinel_bridge::bench::run(args).await,
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
