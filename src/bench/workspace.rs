//! `sentinel-bridge bench workspace`: how fast the local workspace takes rows over its Logs Ingestion API
//! (durably, fsync per call), and how fast the KQL engine scans, each against a plain baseline in the same run.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::azure::identity::{Credential, LoopbackClientCredential, TokenSource, MONITOR_SCOPE};
use crate::azure::logs_ingestion::{IngestionClient, IngestionOptions};
use crate::bench::WorkspaceBenchArgs;
use crate::kql::Value;
use crate::local_azure::{Workspace, WorkspaceConfig};
use crate::metrics::Metrics;
use crate::model::schema::{Column, ColumnType, Row, TableSchema};

fn perf_record(i: usize, start: i64) -> serde_json::Map<String, serde_json::Value> {
    let counters = ["% Processor Time", "Available MBytes", "Bytes Received/sec", "Disk Reads/sec"];
    let t = crate::model::time::format_ticks(start + (i as i64) * 36_000_000); // one row every 3.6 s
    json!({
        "TimeGenerated": t,
        "Computer": format!("vm-{:03}", i % 50),
        "ObjectName": "Processor",
        "CounterName": counters[i % counters.len()],
        "InstanceName": "_Total",
        "CounterValue": (i % 100) as f64,
    })
    .as_object()
    .cloned()
    .expect("object")
}

pub async fn run(args: WorkspaceBenchArgs) -> super::BenchResult {
    println!("bench workspace: ingest {} rows over HTTP (durable), scan {} rows with KQL", args.ingest_rows, args.rows);
    ingest(&args).await?;
    Ok(scan(&args)?)
}

async fn ingest(args: &WorkspaceBenchArgs) -> Result<(), String> {
    let schema = Arc::new(TableSchema {
        name: "Bench_CL".into(),
        columns: vec![
            Column { name: "TimeGenerated".into(), kind: ColumnType::Datetime },
            Column { name: "Computer".into(), kind: ColumnType::String },
            Column { name: "CounterName".into(), kind: ColumnType::String },
            Column { name: "CounterValue".into(), kind: ColumnType::Real },
            Column { name: "Tags".into(), kind: ColumnType::Dynamic },
        ],
    });
    let dir = std::env::temp_dir().join(format!("sb-bench-{}", uuid::Uuid::new_v4()));
    let mut cfg = WorkspaceConfig::new(vec![schema.clone()]);
    cfg.data_dir = Some(dir.clone());
    let ws = Workspace::open(cfg).map_err(|e| e.to_string())?;
    let running = ws.serve(SocketAddr::from(([127, 0, 0, 1], 0))).await.map_err(|e| e.to_string())?;
    let tokens =
        Arc::new(TokenSource::new(Credential::fixed(Arc::new(LoopbackClientCredential::new(&running.url(), "b", "b", "b")), "loopback"), MONITOR_SCOPE));
    let client = Arc::new(IngestionClient::new(
        &crate::local_azure::backfill_endpoint(&running.url()),
        "dcr-bench",
        tokens,
        IngestionOptions::default(),
        Arc::new(Metrics::default()),
    ));
    let rows: Vec<Row> = (0..args.ingest_rows)
        .map(|i| {
            let v = json!({"TimeGenerated": "2026-11-23T00:00:00Z", "Computer": format!("vm-{:03}", i % 50), "CounterName": "% Processor Time",
                "CounterValue": (i % 100) as f64, "Tags": {"env": "prod", "i": i}});
            Row::new(&schema, v.as_object().expect("object")).expect("valid row")
        })
        .collect();
    // Baseline: serialising and gzipping the same rows, the client-side floor of any ingestion.
    let t = Instant::now();
    let mut gz_bytes = 0usize;
    let (calls, _) = crate::azure::logs_ingestion::pack::pack(&rows, 1_048_576);
    for c in &calls {
        let raw = crate::azure::logs_ingestion::pack::encode_array(&rows[c.clone()]);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, &raw).map_err(|e| e.to_string())?;
        gz_bytes += enc.finish().map_err(|e| e.to_string())?.len();
    }
    let baseline = t.elapsed();
    let t = Instant::now();
    let chunks: Vec<Vec<Row>> = rows.chunks(rows.len().div_ceil(4).max(1)).map(|c| c.to_vec()).collect();
    let mut tasks = Vec::new();
    for chunk in chunks {
        let client = client.clone();
        tasks.push(tokio::spawn(async move { client.upload("Custom-Bench_CL", &chunk, Instant::now() + Duration::from_secs(300)).await.is_ok() }));
    }
    for task in tasks {
        if !task.await.map_err(|e| e.to_string())? {
            return Err("an upload failed".into());
        }
    }
    let took = t.elapsed();
    let landed = ws.query("Bench_CL | count").map_err(|e| e.to_string())?.rows[0][0].to_text();
    println!(
        "ingestion: {:>10.0} rows/s  ({} rows, {} calls, in {:.2} s; fsync per call; {} rows in the table)",
        args.ingest_rows as f64 / took.as_secs_f64(),
        args.ingest_rows,
        calls.len(),
        took.as_secs_f64(),
        landed
    );
    println!(
        "  baseline, encode + gzip only: {:>10.0} rows/s ({:.0} KB gzipped); ratio {:.2}",
        args.ingest_rows as f64 / baseline.as_secs_f64(),
        gz_bytes as f64 / 1024.0,
        baseline.as_secs_f64() / took.as_secs_f64()
    );
    running.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn scan(args: &WorkspaceBenchArgs) -> Result<(), String> {
    let mut cfg = WorkspaceConfig::new(vec![]);
    cfg.keep_rows = true;
    let ws = Workspace::open(cfg).map_err(|e| e.to_string())?;
    let start = crate::model::time::parse_datetime_ticks("2026-11-01T00:00:00Z").expect("date");
    let t = Instant::now();
    for chunk in (0..args.rows).collect::<Vec<_>>().chunks(50_000) {
        let records: Vec<_> = chunk.iter().map(|i| perf_record(*i, start)).collect();
        ws.store_append("Perf", &records).map_err(|e| e.to_string())?;
    }
    println!("loaded {} Perf rows in {:.2} s", args.rows, t.elapsed().as_secs_f64());
    let query = "Perf | where CounterName == '% Processor Time' | summarize count() by bin(TimeGenerated, 1h)";
    // Baseline: the same filter and hourly count as a hand-written loop over the same typed rows.
    let frame = ws.tables_frame("Perf").ok_or("no Perf table")?;
    let (ci, ti) = (frame.column_index("CounterName").ok_or("CounterName")?, frame.column_index("TimeGenerated").ok_or("TimeGenerated")?);
    let hour = 3600 * crate::model::time::TICKS_PER_SEC;
    let t = Instant::now();
    let mut counts: HashMap<i64, i64> = HashMap::new();
    for r in &frame.rows {
        if matches!(&r[ci], Value::String(s) if &**s == "% Processor Time") {
            if let Value::DateTime(ts) = r[ti] {
                *counts.entry(ts.div_euclid(hour) * hour).or_default() += 1;
            }
        }
    }
    let baseline = t.elapsed();
    let t = Instant::now();
    let f = ws.query(query).map_err(|e| e.to_string())?;
    let took = t.elapsed();
    let total: i64 = f.rows.iter().map(|r| if let Value::Long(n) = r[1] { n } else { 0 }).sum();
    if f.rows.len() != counts.len() || total != counts.values().sum::<i64>() {
        return Err(format!("the KQL result ({} bins) differs from the baseline ({} bins)", f.rows.len(), counts.len()));
    }
    println!("scan: {query}");
    println!(
        "  kql:      {:>12.0} rows/s  ({} rows in {:.3} s, {} bins, one core)",
        args.rows as f64 / took.as_secs_f64(),
        args.rows,
        took.as_secs_f64(),
        f.rows.len()
    );
    println!(
        "  baseline: {:>12.0} rows/s  (hand-written loop); ratio {:.2}",
        args.rows as f64 / baseline.as_secs_f64(),
        baseline.as_secs_f64() / took.as_secs_f64()
    );
    Ok(())
}
