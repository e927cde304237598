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

/// Azure validates no record before its 204 (contract §1): a value its column cannot take is stored as null,
/// and a call it cannot read at all (not an array, not JSON, nested past its reader's depth) is dropped whole,
/// with a DCRLogErrors row naming the stream and the call's `x-ms-client-request-id`. Either way the client
/// hears 204 and reports no failure: only `doctor` and DCRLogErrors can tell, which is why the webhook refuses
/// what Azure would drop before anything is sent.
#[tokio::test]
async fn azure_takes_every_call_it_can_parse_and_logs_what_it_drops() {
    let ws = start_workspace(WorkspaceConfig::new(vec![Arc::new(schema())])).await;
    let client = client(&ws, "dcr-any");
    let mistyped = Row::from_checked_json(json!({"TimeGenerated": "2026-11-23T10:00:00Z", "N": "not-a-number", "Pad": "p"}).to_string());
    let out = client.upload("Custom-Probe_CL", &[row(1, 1), mistyped], Instant::now() + Duration::from_secs(5)).await;
    assert!(out.is_ok(), "{:?}", out.failures);
    assert_eq!(out.calls, 1);
    let rows = ws.workspace.rows("Probe_CL");
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().any(|r| r.get("N").is_none_or(serde_json::Value::is_null) && r["Pad"] == "p"), "{rows:?}");
    let mut deep = json!(0);
    for _ in 0..sentinel_bridge::azure::logs_ingestion::limits::MAX_NESTING {
        deep = json!([deep]);
    }
    let too_deep = Row::from_checked_json(json!({"TimeGenerated": "2026-11-23T10:00:00Z", "N": 9, "Pad": deep}).to_string());
    let out = client.upload("Custom-Probe_CL", &[row(3, 1), too_deep], Instant::now() + Duration::from_secs(5)).await;
    assert!(out.is_ok(), "Azure answers 204 and drops the call later: {:?}", out.failures);
    assert_eq!(ws.workspace.rows("Probe_CL").len(), 2, "the whole call was dropped, the innocent row with it");
    let errors = ws.workspace.query("DCRLogErrors | project OperationName, InputStreamId, Message, ClientRequestId, _ResourceId").unwrap();
    assert_eq!(errors.rows.len(), 1);
    let text: Vec<String> = errors.rows[0].iter().map(|v| v.to_text()).collect();
    assert_eq!((text[0].as_str(), text[1].as_str()), ("Ingestion", "Custom-Probe_CL"));
    assert!(text[2].contains("nests"), "{text:?}");
    assert!(uuid::Uuid::parse_str(&text[3]).is_ok(), "the call's request id: {text:?}");
    assert_eq!(text[4], text[4].to_lowercase());
}

/// Malformed bodies as Azure answers them: a zero-length body is a 500 with no code; a JSON object, text that
/// is not JSON, and an array of arrays are 204 with nothing stored and a DCRLogErrors row each.
#[tokio::test]
async fn malformed_bodies_are_answered_as_azure_answers_them() {
    let ws = start_workspace(WorkspaceConfig::new(vec![Arc::new(schema())])).await;
    let token = TokenSource::new(Arc::new(LoopbackClientCredential::new(&ws.url(), "t", "c", "s")), MONITOR_SCOPE).token().await.unwrap();
    let send = |body: &'static str| {
        reqwest::Client::new()
            .post(format!("{}/dataCollectionRules/dcr-x/streams/Custom-Probe_CL?api-version=2023-01-01", ws.url()))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = send("").await.unwrap();
    assert_eq!(r.status(), 500);
    for body in [r#"{"TimeGenerated":"2026-11-23T10:00:00Z","N":1}"#, "not json", "[[1,2],[3]]"] {
        assert_eq!(send(body).await.unwrap().status(), 204, "{body}");
    }
    assert!(ws.workspace.rows("Probe_CL").is_empty());
    assert_eq!(ws.workspace.query("DCRLogErrors | count").unwrap().rows[0][0].as_f64(), Some(3.0));
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
            let rows: Vec<Row> = pads.iter().enumerate().map(|(i, p)| row(i, *p)).collect();
            let out = client.upload("Custom-Probe_CL", &rows, Instant::now() + Duration::from_secs(20)).await;
            // Only single rows may fail, as TooLarge: rows over the limit or a row the service answered 413 for
            // when it was already alone. Everything else lands exactly once.
            for (range, e) in &out.failures {
                prop_assert_eq!(range.len(), 1);
                match e {
                    IngestError::TooLarge { .. } => prop_assert!(rows[range.start].len() + 2 > limit || injected_413),
                    other => prop_assert!(false, "{other}"),
                }
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
