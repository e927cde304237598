//! The Logs Ingestion client on its own: the exact request it sends (against a capturing server), and a
//! property test that splits and retries never lose or duplicate a row.

mod common;

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use common::*;
use proptest::prelude::*;
use sentinel_bridge::azure::identity::{LoopbackClientCredential, TokenSource, MONITOR_SCOPE};
use sentinel_bridge::azure::logs_ingestion::{IngestError, IngestionClient, IngestionOptions, RetryPolicy};
use sentinel_bridge::local_azure::{Endpoint, FaultKind, FaultSpec, WorkspaceConfig};
use sentinel_bridge::metrics::Metrics;
use sentinel_bridge::model::schema::{Column, ColumnType, Row, TableSchema};
use serde_json::json;

fn schema() -> TableSchema {
    TableSchema {
        name: "Probe_CL".into(),
        columns: vec![
            Column { name: "TimeGenerated".into(), kind: ColumnType::Datetime },
            Column { name: "N".into(), kind: ColumnType::Long },
            Column { name: "Pad".into(), kind: ColumnType::String },
        ],
    }
}

fn row(n: usize, pad: usize) -> Row {
    let v = json!({"TimeGenerated": "2026-11-23T10:00:00Z", "N": n, "Pad": "p".repeat(pad)});
    Row::new(&schema(), v.as_object().unwrap()).unwrap()
}

/// A client with default options and the workspace's own token endpoint.
fn client(ws: &sentinel_bridge::local_azure::RunningWorkspace, dcr: &str) -> IngestionClient {
    let tokens = Arc::new(TokenSource::new(Arc::new(LoopbackClientCredential::new(&ws.url(), "t", "c", "s")), MONITOR_SCOPE));
    IngestionClient::new(&ws.url(), dcr, tokens, IngestionOptions::default(), Arc::new(Metrics::default()))
}

/// A row the stand-in refuses as Azure would: by its index, a mistyped value or nesting past the limit.
fn poison_row(n: usize, pad: usize) -> Row {
    let pad_value = if n.is_multiple_of(2) {
        json!("p".repeat(pad))
    } else {
        let mut deep = json!(0);
        for _ in 0..sentinel_bridge::azure::logs_ingestion::limits::MAX_NESTING {
            deep = json!([deep]);
        }
        deep
    };
    let n_value = if n.is_multiple_of(2) { json!(format!("not-a-number-{n}")) } else { json!(n) };
    let v = json!({"TimeGenerated": "2026-11-23T10:00:00Z", "N": n_value, "Pad": pad_value});
    Row::from_checked_json(v.to_string())
}

/// One captured call: path, api-version, headers, decompressed body.
type CapturedCall = (String, String, HeaderMap, Vec<u8>);

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<CapturedCall>>>);

async fn capture(
    State(c): State<Captured>,
    Path((dcr, stream)): Path<(String, String)>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut raw).unwrap();
    c.0.lock().unwrap().push((format!("{dcr}/{stream}"), q["api-version"].clone(), headers, raw));
    StatusCode::NO_CONTENT
}

#[tokio::test]
async fn sends_exactly_the_documented_request() {
    let ws = start_workspace(WorkspaceConfig::new(vec![])).await; // only its token endpoint is used
    let captured = Captured::default();
    let app = Router::new().route("/dataCollectionRules/{dcr}/streams/{stream}", post(capture)).with_state(captured.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let tokens = Arc::new(TokenSource::new(Arc::new(LoopbackClientCredential::new(&ws.url(), "t", "c", "s")), MONITOR_SCOPE));
    let client = IngestionClient::new(&format!("{url}/"), "dcr-abc123", tokens, IngestionOptions::default(), Arc::new(Metrics::default()));
    let rows = vec![row(1, 0), row(2, 3)];
    let out = client.upload("Custom-Probe_CL", &rows, Instant::now() + Duration::from_secs(5)).await;
    assert!(out.is_ok());

    let got = captured.0.lock().unwrap();
    assert_eq!(got.len(), 1);
    let (path, api, headers, body) = &got[0];
    assert_eq!(path, "dcr-abc123/Custom-Probe_CL");
    assert_eq!(api, "2023-01-01");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["content-encoding"], "gzip");
    let auth = headers["authorization"].to_str().unwrap();
    assert!(auth.starts_with("Bearer local."), "{auth}");
    assert!(uuid::Uuid::parse_str(headers["x-ms-client-request-id"].to_str().unwrap()).is_ok());
    assert_eq!(
        std::str::from_utf8(body).unwrap(),
        r#"[{"TimeGenerated":"2026-11-23T10:00:00Z","N":1,"Pad":""},{"TimeGenerated":"2026-11-23T10:00:00Z","N":2,"Pad":"ppp"}]"#
    );
}

#[tokio::test]
async fn permanent_errors_keep_azures_code() {
    let mut cfg = WorkspaceConfig::new(vec![Arc::new(schema())]);
    cfg.dcr_immutable_id = Some("dcr-right".into());
    let ws = start_workspace(cfg).await;
    let client = client(&ws, "dcr-wrong");
    let out = client.upload("Custom-Probe_CL", &[row(1, 0)], Instant::now() + Duration::from_secs(5)).await;
    assert_eq!(out.failures.len(), 1);
    assert!(matches!(&out.failures[0].1, IngestError::Refused { status: 404, code, .. } if code == "NotFound"));
}

#[tokio::test]
async fn a_refusal_of_the_call_itself_is_not_bisected() {
    let ws = start_workspace(WorkspaceConfig::new(vec![Arc::new(schema())])).await;
    let client = client(&ws, "dcr-any");
    let rows: Vec<Row> = (0..16).map(|i| row(i, 10)).collect();
    let out = client.upload("Custom-Undeclared_CL", &rows, Instant::now() + Duration::from_secs(5)).await;
    assert_eq!(out.calls, 1, "an undeclared stream is the configuration's mistake: one call, not 31");
    assert_eq!(out.failures.len(), 1);
    assert_eq!(out.failures[0].0, 0..16);
    assert!(matches!(&out.failures[0].1, IngestError::Refused { status: 400, code, .. } if code == "InvalidStream"));
}

#[tokio::test]
async fn isolating_refused_records_is_bounded() {
    let ws = start_workspace(WorkspaceConfig::new(vec![Arc::new(schema())])).await;
    let client = client(&ws, "dcr-any");
    // Every row refused: isolation gives up after its budget instead of sending 2n-1 calls.
    let rows: Vec<Row> = (0..400).map(|i| poison_row(i * 2, 1)).collect();
    let out = client.upload("Custom-Probe_CL", &rows, Instant::now() + Duration::from_secs(20)).await;
    assert!(out.calls <= 1 + sentinel_bridge::azure::logs_ingestion::MAX_ISOLATION_CALLS, "{} calls", out.calls);
    let failed: usize = out.failures.iter().map(|(r, _)| r.len()).sum();
    assert_eq!(failed, 400, "nothing refused is reported delivered");
    assert!(out.failures.iter().all(|(_, e)| matches!(e, IngestError::RecordRefused { .. })));
    assert!(ws.workspace.rows("Probe_CL").is_empty());
}

fn fault() -> impl Strategy<Value = FaultKind> {
    prop_oneof![
        Just(FaultKind::Status { status: 413, retry_after_secs: None }),
        Just(FaultKind::Status { status: 500, retry_after_secs: None }),
        Just(FaultKind::Status { status: 429, retry_after_secs: Some(0) }),
        Just(FaultKind::Status { status: 503, retry_after_secs: None }),
        Just(FaultKind::Drop),
        Just(FaultKind::Slow { millis: 5 }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn splits_and_retries_never_lose_or_duplicate_a_row(
        pads in prop::collection::vec(0usize..3000, 1..60),
        limit in 4096usize..20_000,
        faults in prop::collection::vec(fault(), 0..8),
        poison in prop::collection::btree_set(0usize..60, 0..4),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let ws = start_workspace(WorkspaceConfig::new(vec![Arc::new(schema())])).await;
            let injected_413 = faults.iter().any(|f| matches!(f, FaultKind::Status { status: 413, .. }));
            for f in faults {
                ws.workspace.faults.add(FaultSpec::new(Endpoint::Ingestion, f, 1));
            }
            let tokens = Arc::new(TokenSource::new(Arc::new(LoopbackClientCredential::new(&ws.url(), "t", "c", "s")), MONITOR_SCOPE));
            let policy = RetryPolicy { base: Duration::from_millis(2), max_backoff: Duration::from_millis(20), attempt_timeout: Duration::from_secs(5) };
            let client = IngestionClient::new(&ws.url(), "dcr-prop", tokens, IngestionOptions { retry: policy, max_call_bytes: limit, ..Default::default() }, Arc::new(Metrics::default()));
            // Poison rows are ones Azure refuses for their content (the stand-in: a value that does not convert
            // to its column's type, or nesting past the limit), whichever call they share.
            let rows: Vec<Row> = pads.iter().enumerate().map(|(i, p)| if poison.contains(&i) { poison_row(i, *p) } else { row(i, *p) }).collect();
            let out = client.upload("Custom-Probe_CL", &rows, Instant::now() + Duration::from_secs(20)).await;
            // Only single rows may fail: as TooLarge, rows over the limit or a row the service answered 413 for
            // when it was already alone; as RecordRefused, exactly the poison rows, isolated from the innocent
            // rows they shared a call with. Everything else lands exactly once.
            for (range, e) in &out.failures {
                prop_assert_eq!(range.len(), 1);
                match e {
                    IngestError::TooLarge { .. } => prop_assert!(rows[range.start].len() + 2 > limit || injected_413),
                    IngestError::RecordRefused { .. } => prop_assert!(poison.contains(&range.start), "an innocent row was refused: {e}"),
                    other => prop_assert!(false, "{other}"),
                }
            }
            for p in poison.iter().filter(|p| **p < rows.len()) {
                prop_assert!(out.failures.iter().any(|(r, _)| r.contains(p)), "poison row {p} landed");
            }
            let mut landed: Vec<i64> = ws.workspace.rows("Probe_CL").iter().map(|r| r["N"].as_i64().unwrap()).collect();
            prop_assert!(out.calls <= rows.len() * 2 + 16, "{} calls for {} rows", out.calls, rows.len());
            landed.sort_unstable();
            let expected: Vec<i64> = (0..rows.len())
                .filter(|i| out.failures.iter().all(|(r, _)| !r.contains(i)))
                .map(|i| i as i64)
                .collect();
            prop_assert_eq!(landed, expected);
            for c in ws.workspace.calls() {
                prop_assert!(c.json_bytes <= limit);
            }
            Ok(())
        })?;
    }
}

/// What the last try got is data, not a sentence: an outage that outlasts the deadline says it was Azure's
/// 503 (status and code), and health's code names it the same way it always did.
#[tokio::test]
async fn an_outage_past_the_deadline_says_what_the_last_try_got() {
    use sentinel_bridge::azure::http::Attempt;
    let ws = start_workspace(WorkspaceConfig::new(vec![Arc::new(schema())])).await;
    ws.workspace.faults.add(FaultSpec::new(Endpoint::Ingestion, FaultKind::Status { status: 503, retry_after_secs: None }, 1000));
    let client = client(&ws, "dcr-local");
    let out = client.upload("Custom-Probe_CL", &[row(1, 0)], Instant::now() + Duration::from_millis(1500)).await;
    assert_eq!(out.failures.len(), 1);
    match &out.failures[0].1 {
        e @ IngestError::Unavailable { last: Attempt::Answered { status: 503, code } } => {
            assert!(!code.is_empty());
            assert_eq!(e.code(), "Deadline(503)");
        }
        other => panic!("{other:?}"),
    }
}
