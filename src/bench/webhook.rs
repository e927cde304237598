//! `sentinel-bridge bench`: concurrent clients post events through the real handler (over loopback HTTP) into
//! an in-memory local workspace that enforces the ingestion contract; in the same run, the same load against a
//! no-op axum handler gives the ceiling. Prints events/s, latency percentiles, ingestion calls and their fill,
//! and the ratio to the ceiling. Figures, not assertions: this machine is shared and noisy.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use crate::app::{app, Bridge};
use crate::azure::identity::LoopbackClientCredential;
use crate::local_azure::{Workspace, WorkspaceConfig};
use crate::mapping::Catalog;
use crate::settings::Settings;

#[derive(clap::Subcommand, Debug, Clone)]
pub enum Bench {
    /// The webhook path through `serve`, against a no-op ceiling.
    Webhook(BenchArgs),
    /// Local workspace ingestion (rows/s) and a KQL scan over many rows (rows/s), against plain loops.
    Workspace(WorkspaceBenchArgs),
    /// One enrichment over 30 days of 5-minute Perf for 50 hosts, against its heaviest query alone.
    Enrich(crate::bench::enrich::EnrichBenchArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct WorkspaceBenchArgs {
    /// Rows to scan.
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: usize,
    /// Rows to ingest through the HTTP API.
    #[arg(long, default_value_t = 200_000)]
    pub ingest_rows: usize,
}

pub async fn run_bench(b: Bench) -> super::BenchResult {
    match b {
        Bench::Webhook(a) => run(a).await,
        Bench::Workspace(a) => crate::bench::workspace::run(a).await,
        Bench::Enrich(a) => crate::bench::enrich::run(a).await,
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Events to post in each run.
    #[arg(long, default_value_t = 200_000)]
    pub events: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Events per webhook request (vendors batch too).
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// Events for the outage run (stand-in down: spooled, then drained when it returns).
    #[arg(long, default_value_t = 50_000)]
    pub outage_events: usize,
}

const SECRET: &str = "bench-secret-0123456789abcdef";

struct RunResult {
    elapsed: Duration,
    latencies: Vec<Duration>,
    events: usize,
    failures: usize,
}

impl RunResult {
    fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
    fn pct(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i]
    }
}

fn body_for(request: usize, batch: usize) -> Vec<u8> {
    let events: Vec<_> = (0..batch)
        .map(|i| {
            json!({
                "id": format!("evt_{request}_{i}"),
                "timestamp": "2026-03-20T14:32:00Z",
                "event_type": "interaction.policy_violated",
                "tenant_id": "tenant-123",
                "data": {
                    "id": format!("int_{request}_{i}"),
                    "platform_id": "chatgpt",
                    "user_id": format!("user{}@acme.fr", i % 97),
                    "risk_score": 0.95,
                    "classifications": [{"type": "EMAIL", "value": "alice@acme.fr", "score": 0.98}],
                    "policy_decisions": [{"policy_id": "pol_abc123", "policy_name": "Block PII on ChatGPT", "action": "block"}]
                }
            })
        })
        .collect();
    serde_json::to_vec(&events).expect("json")
}

async fn drive(url: &str, args: &BenchArgs) -> RunResult {
    let requests = args.events.div_ceil(args.batch.max(1));
    let next = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).build().expect("client");
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new((0..64).map(|r| body_for(r, args.batch)).collect());
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (next, client, bodies, url) = (next.clone(), client.clone(), bodies.clone(), url.to_string());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut failures = 0;
            loop {
                let r = next.fetch_add(1, Ordering::Relaxed);
                if r >= requests {
                    break;
                }
                let t = Instant::now();
                let resp = client.post(&url).bearer_auth(SECRET).header("content-type", "application/json").body(bodies[r % bodies.len()].clone()).send().await;
                match resp {
                    Ok(r) if r.status().as_u16() == 202 => {
                        let _ = r.bytes().await;
                    }
                    _ => failures += 1,
                }
                lat.push(t.elapsed());
            }
            (lat, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for t in tasks {
        let (l, f) = t.await.expect("client task");
        latencies.extend(l);
        failures += f;
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    RunResult { elapsed, latencies, events: requests * args.batch, failures }
}

async fn serve_router(router: Router) -> Result<SocketAddr, String> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(addr)
}

fn report(name: &str, r: &RunResult) {
    println!(
        "{name:<22} {:>10.0} events/s  p50 {:>8.2} ms  p99 {:>8.2} ms  ({} events in {:.2} s, {} failed requests)",
        r.events_per_sec(),
        r.pct(0.50).as_secs_f64() * 1e3,
        r.pct(0.99).as_secs_f64() * 1e3,
        r.events,
        r.elapsed.as_secs_f64(),
        r.failures
    );
}

pub async fn run(args: BenchArgs) -> super::BenchResult {
    println!("bench: {} events per run, {} clients, {} events per request, loopback HTTP on this machine", args.events, args.concurrency, args.batch);
    // The ceiling: read the body, answer 202.
    let noop = Router::new()
        .route(
            "/api/webhook/{source}",
            post(|body: axum::body::Bytes| async move { (axum::http::StatusCode::ACCEPTED, Json(json!({"accepted": body.len()}))) }),
        )
        .layer(axum::extract::DefaultBodyLimit::disable());
    let noop_addr = serve_router(noop).await?;

    let catalog = Catalog::builtin();
    // The stand-in checks every call against the contract but keeps no rows: the figures are the bridge's.
    let mut ws_config = WorkspaceConfig::new(catalog.tables());
    ws_config.keep_rows = false;
    let ws = Workspace::open(ws_config).map_err(|e| e.to_string())?;
    let running = ws.serve(SocketAddr::from(([127, 0, 0, 1], 0))).await.map_err(|e| e.to_string())?;
    let settings = Settings::from_vars([
        ("LOGS_INGESTION_ENDPOINT".to_string(), running.url()),
        ("DCR_IMMUTABLE_ID".to_string(), "dcr-bench".to_string()),
        ("SOURCE_NOXYS_SECRETS".to_string(), SECRET.to_string()),
        ("WEBHOOK_MAX_BODY_BYTES".to_string(), (8 * 1_048_576).to_string()),
    ])
    .map_err(|e| e.to_string())?;
    let cred = Arc::new(LoopbackClientCredential::new(&running.url(), "bench", "bench", "bench-secret"));
    let bridge = Bridge::build_with_credential(&settings, cred).await.map_err(|e| e.to_string())?;
    let bridge_addr = serve_router(app(bridge.state.clone())).await?;

    // Warm both up (connections, allocators) before measuring.
    let warm = BenchArgs { events: args.batch * args.concurrency, ..args.clone() };
    drive(&format!("http://{noop_addr}/api/webhook/noxys"), &warm).await;
    drive(&format!("http://{bridge_addr}/api/webhook/noxys"), &warm).await;
    let calls_before = ws.calls().len();

    let ceiling = drive(&format!("http://{noop_addr}/api/webhook/noxys"), &args).await;
    let bridged = drive(&format!("http://{bridge_addr}/api/webhook/noxys"), &args).await;

    let calls: Vec<_> = ws.calls().into_iter().skip(calls_before).collect();
    let n = calls.len().max(1);
    let mean_json = calls.iter().map(|c| c.json_bytes).sum::<usize>() as f64 / n as f64;
    let mean_sent = calls.iter().map(|c| c.sent_bytes).sum::<usize>() as f64 / n as f64;
    let rows: usize = calls.iter().map(|c| c.rows).sum();
    report("no-op axum (ceiling)", &ceiling);
    report("sentinel-bridge", &bridged);
    println!(
        "ingestion calls: {}  rows: {}  mean fill {:.1}% of 1 MiB ({:.0} JSON bytes, {:.0} gzip bytes on the wire)",
        calls.len(),
        rows,
        100.0 * mean_json / crate::azure::logs_ingestion::MAX_CALL_BYTES as f64,
        mean_json,
        mean_sent
    );
    println!("ratio to ceiling: {:.2} (events/s)", bridged.events_per_sec() / ceiling.events_per_sec());
    bridge.shutdown().await;

    // The outage run: the stand-in refuses every call, so each request waits out its deadline and spills;
    // then the stand-in returns and the spill drains.
    if args.outage_events > 0 {
        let spill_dir = std::env::temp_dir().join(format!("sb-bench-spill-{}", uuid::Uuid::new_v4()));
        let settings = Settings::from_vars([
            ("LOGS_INGESTION_ENDPOINT".to_string(), running.url()),
            ("DCR_IMMUTABLE_ID".to_string(), "dcr-bench".to_string()),
            ("SOURCE_NOXYS_SECRETS".to_string(), SECRET.to_string()),
            ("WEBHOOK_MAX_BODY_BYTES".to_string(), (8 * 1_048_576).to_string()),
            ("INGEST_DEADLINE_SECS".to_string(), "1".to_string()),
            ("SPILL".to_string(), format!("dir:{}", spill_dir.display())),
        ])
        .map_err(|e| e.to_string())?;
        let cred = Arc::new(LoopbackClientCredential::new(&running.url(), "bench", "bench", "bench-secret"));
        let bridge = Bridge::build_with_credential(&settings, cred).await.map_err(|e| e.to_string())?;
        let addr = serve_router(app(bridge.state.clone())).await?;
        ws.faults.add(crate::local_azure::FaultSpec {
            count: None,
            for_millis: Some(3_600_000),
            ..crate::local_azure::FaultSpec::new(
                crate::local_azure::Endpoint::Ingestion,
                crate::local_azure::FaultKind::Status { status: 503, retry_after_secs: None },
                0,
            )
        });
        let rows_before = ws.stats.rows.load(std::sync::atomic::Ordering::Relaxed);
        let spooled = drive(&format!("http://{addr}/api/webhook/noxys"), &BenchArgs { events: args.outage_events, ..args.clone() }).await;
        report("spooled (stand-in down)", &spooled);
        ws.faults.clear();
        let t = Instant::now();
        let spill = bridge.state.spill.clone().ok_or("no spill")?;
        loop {
            if spill.status().await["batches"] == 0 {
                break;
            }
            if t.elapsed() > Duration::from_secs(600) {
                return Err("the spill did not drain in 10 minutes".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let drained = ws.stats.rows.load(std::sync::atomic::Ordering::Relaxed) - rows_before;
        println!(
            "drained when it returned: {drained} rows in {:.2} s = {:.0} rows/s ({} events spooled)",
            t.elapsed().as_secs_f64(),
            drained as f64 / t.elapsed().as_secs_f64(),
            spill.status().await["spooledRows"]
        );
        bridge.shutdown().await;
        let _ = std::fs::remove_dir_all(&spill_dir);
    }
    running.stop().await;
    Ok(())
}
