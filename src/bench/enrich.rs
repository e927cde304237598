//! `sentinel-bridge bench enrich`: one enrichment over a month of telemetry. The local workspace holds 30 days of
//! 5-minute `% Processor Time` for 50 hosts (432,000 Perf rows), an alert naming all 50 hosts and an incident;
//! the enrichment runs end to end over loopback HTTP (Sentinel reads, entity resolution, every correlation
//! query, the comment, the tables). In the same session, the baseline: the heaviest query alone (the hourly
//! Perf summary over the same rows) through the same Query API. Prints wall times and the ratio.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::azure::identity::{LoopbackClientCredential, TokenSource, MONITOR_SCOPE};
use crate::azure::logs_ingestion::{IngestionClient, IngestionOptions};
use crate::azure::logs_query::{LogsQueryClient, QueryOptions, QUERY_SCOPE};
use crate::enrich::{EnrichSettings, Mode};
use crate::local_azure::{Workspace, WorkspaceConfig, LOCAL_WORKSPACE_ID};
use crate::mapping::Catalog;
use crate::metrics::Metrics;
use crate::model::schema::Row;
use crate::model::time::{format_ticks, parse_datetime_ticks, TICKS_PER_SEC};

#[derive(clap::Args, Debug, Clone)]
pub struct EnrichBenchArgs {
    /// Hosts with Perf.
    #[arg(long, default_value_t = 50)]
    pub hosts: usize,
    /// Days of 5-minute samples.
    #[arg(long, default_value_t = 30)]
    pub days: i64,
    /// Enrichments to time (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

pub async fn run(args: EnrichBenchArgs) -> super::BenchResult {
    let ws = Workspace::open(WorkspaceConfig::new(crate::app::written_tables(&Catalog::builtin())))?;
    let running = ws.serve(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let url = running.url();
    let cred = Arc::new(LoopbackClientCredential::new(&url, "bench-tenant", "bench-client", "bench-secret"));
    let tokens = |scope: &str| Arc::new(TokenSource::new(cred.clone(), scope));
    let stager = IngestionClient::new(
        &crate::local_azure::backfill_endpoint(&url),
        "dcr-bench",
        tokens(MONITOR_SCOPE),
        IngestionOptions::default(),
        Arc::new(Metrics::default()),
    );
    let t0 = parse_datetime_ticks("2026-11-20T10:00:00Z").ok_or("T0")?;
    let step = 5 * 60 * TICKS_PER_SEC;
    let samples = args.days * 288;
    let started = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(600);
    let hosts: Vec<String> = (0..args.hosts).map(|h| format!("vm-bench-{h:02}")).collect();
    let mut staged = 0usize;
    for (h, host) in hosts.iter().enumerate() {
        let rows: Vec<Row> = (0..samples)
            .map(|i| {
                let t = t0 - (samples - i) * step + 2 * 3600 * TICKS_PER_SEC;
                let hour = (t / (3600 * TICKS_PER_SEC)) % 24;
                let mut cpu = if (8..18).contains(&hour) { 30.0 } else { 10.0 } + ((i as usize * 7919 + h * 31) % 100) as f64 / 20.0;
                if h == 0 && t >= t0 - 6 * 3600 * TICKS_PER_SEC {
                    cpu = 97.0;
                }
                Row::from_checked_json(
                    json!({"TimeGenerated": format_ticks(t), "Computer": host, "ObjectName": "Processor", "CounterName": "% Processor Time",
                    "InstanceName": "_Total", "CounterValue": cpu})
                    .to_string(),
                )
            })
            .collect();
        staged += rows.len();
        if let Some((_, e)) = stager.upload("Microsoft-Perf", &rows, deadline).await.failures.into_iter().next() {
            return Err(e.to_string().into());
        }
    }
    let entities: Vec<Value> = hosts.iter().enumerate().map(|(i, h)| json!({"$id": (i + 2).to_string(), "Type": "host", "HostName": h})).collect();
    let alert_id = "0b9e0000-0000-4000-8000-0000000000b1";
    let incident = "0b9e0000-0000-4000-8000-0000000000a1";
    let at = |m: i64| format_ticks(t0 + m * 60 * TICKS_PER_SEC);
    for (stream, row) in [
        (
            "Microsoft-SecurityAlert",
            json!({"TimeGenerated": at(5), "SystemAlertId": alert_id, "DisplayName": "High CPU", "AlertName": "High CPU", "AlertSeverity": "Medium",
            "ProductName": "Azure Sentinel", "Status": "New", "StartTime": at(0), "EndTime": at(30), "Entities": Value::Array(entities).to_string()}),
        ),
        (
            "Microsoft-SecurityIncident",
            json!({"TimeGenerated": at(35), "IncidentName": incident, "Title": "High CPU", "Severity": "Medium", "Status": "New", "IncidentNumber": 1,
            "CreatedTime": at(35), "LastModifiedTime": at(35), "FirstActivityTime": at(0), "LastActivityTime": at(30), "AlertIds": [alert_id]}),
        ),
    ] {
        if let Some((_, e)) = stager.upload(stream, &[Row::from_checked_json(row.to_string())], deadline).await.failures.into_iter().next() {
            return Err(e.to_string().into());
        }
    }
    println!("staged {staged} Perf rows ({} hosts × {} days of 5-minute samples) in {:.1} s", args.hosts, args.days, secs(started.elapsed()));
    let query = LogsQueryClient::new(&url, LOCAL_WORKSPACE_ID, tokens(QUERY_SCOPE), QueryOptions::default());
    let enricher = crate::lab::harness::local_enricher(&url, cred.clone(), EnrichSettings { mode: Mode::Comment, ..EnrichSettings::default() });
    let computers: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    let baseline_kql = format!(
        "let Computers = {};\nlet Resources = dynamic([]);\nlet BaselineStart = datetime({});\nlet WindowEnd = datetime({});\n{}",
        crate::enrich::kql_strings(&computers),
        format_ticks(t0 - (args.days + 3) * 86_400 * TICKS_PER_SEC),
        format_ticks(t0 + 90 * 60 * TICKS_PER_SEC),
        crate::enrich::QUERIES.iter().find(|q| q.name == crate::enrich::QueryName::ComputePerf).map(|q| q.text).unwrap_or_default()
    );
    let (mut enrich_times, mut query_times) = (Vec::new(), Vec::new());
    let mut lead = String::new();
    for _ in 0..args.runs.max(1) {
        let t = Instant::now();
        let r = query.query(&baseline_kql, None, Duration::from_secs(120)).await.map_err(|e| e.to_string())?;
        query_times.push(secs(t.elapsed()));
        let bins = r.primary().rows.len();
        let t = Instant::now();
        let e = enricher.enrich(&crate::enrich::trigger::IncidentRef { name: incident.into(), workspace_resource_id: None }).await?;
        enrich_times.push(secs(t.elapsed()));
        if e.degraded {
            return Err(format!("the enrichment was degraded: {:?}", e.queries.iter().map(|q| format!("{} {}", q.name, q.status)).collect::<Vec<_>>()).into());
        }
        lead = format!("{} ({:.2}), {} hourly bins from the Perf summary", e.leading.id, e.leading.confidence, bins);
    }
    running.stop().await;
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (e, q) = (median(&mut enrich_times), median(&mut query_times));
    println!("enrichment, end to end: median {e:.2} s over {} runs (leading: {lead})", enrich_times.len());
    println!("baseline, the hourly Perf summary alone through the Query API: median {q:.2} s");
    println!("ratio enrichment / heaviest query: {:.2}", e / q.max(1e-9));
    Ok(())
}
