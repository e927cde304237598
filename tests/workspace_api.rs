//! The local workspace as a stand-in for Azure: the Query API (through our own client), standard tables,
//! stream transformations, the Sentinel incidents API, and the official examples in tests/fixtures/azure.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use sentinel_bridge::azure::identity::{LoopbackClientCredential, TokenSource, MONITOR_SCOPE};
use sentinel_bridge::azure::logs_ingestion::{IngestionClient, IngestionOptions};
use sentinel_bridge::azure::logs_query::{parse_response, LogsQueryClient, QueryError, QueryOptions, QUERY_SCOPE};
use sentinel_bridge::kql::Value as KValue;
use sentinel_bridge::local_azure::tables::StreamDecl;
use sentinel_bridge::local_azure::{RunningWorkspace, WorkspaceConfig};
use sentinel_bridge::metrics::Metrics;
use sentinel_bridge::model::schema::{Column, ColumnType, Row, TableSchema};
use serde_json::{json, Value};

fn tokens(ws: &RunningWorkspace, scope: &str) -> Arc<TokenSource> {
    Arc::new(TokenSource::new(Arc::new(LoopbackClientCredential::new(&ws.url(), "t", "c", "s")), scope))
}

fn query_client(ws: &RunningWorkspace) -> LogsQueryClient {
    LogsQueryClient::new(&ws.url(), &ws.workspace.workspace_id(), tokens(ws, QUERY_SCOPE), QueryOptions::default())
}

async fn ingest_json(ws: &RunningWorkspace, stream: &str, rows: Value) -> reqwest::Response {
    post_rows(ws, "", stream, rows).await
}

/// The local workspace's history route: the same call, for rows Azure itself would have written.
async fn backfill_json(ws: &RunningWorkspace, stream: &str, rows: Value) -> reqwest::Response {
    post_rows(ws, "/_local/backfill", stream, rows).await
}

async fn post_rows(ws: &RunningWorkspace, route: &str, stream: &str, rows: Value) -> reqwest::Response {
    let token = tokens(ws, MONITOR_SCOPE).token().await.unwrap();
    reqwest::Client::new()
        .post(format!("{}{route}/dataCollectionRules/dcr-test/streams/{stream}?api-version=2023-01-01", ws.url()))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(rows.to_string())
        .send()
        .await
        .unwrap()
}

const T: Duration = Duration::from_secs(10);

#[tokio::test]
async fn the_query_api_answers_with_typed_tables() {
    let t = TestBridge::start(&[]).await;
    for _ in 0..3 {
        assert_eq!(t.post("noxys", NOXYS_TOKEN, fixture("noxys-policy-violated.json")).await.0, 202);
    }
    let q = query_client(&t.ws);
    let r = q.query("NoxysEvents_CL | summarize n = count(), avg(RiskScore) by PlatformId", None, T).await.unwrap();
    let f = r.primary();
    assert_eq!(
        f.columns.iter().map(|c| (c.name.as_str(), c.ktype.name())).collect::<Vec<_>>(),
        [("PlatformId", "string"), ("n", "long"), ("avg_RiskScore", "real")]
    );
    assert_eq!(f.rows[0].iter().map(|v| v.to_text()).collect::<Vec<_>>(), ["chatgpt", "3", "0.95"]);
    let r = q.query("NoxysEvents_CL | take 1 | project Classifications, EventTime", None, T).await.unwrap();
    let row = &r.primary().rows[0];
    assert!(matches!(&row[0], KValue::Dynamic(d) if d[0]["type"] == "EMAIL"), "dynamic cells come back as JSON");
    assert_eq!(row[1].to_text(), "2026-03-20T14:32:00Z");

    // timespan filters TimeGenerated, which for a sample from March is the time it arrived.
    let r = q.query("NoxysEvents_CL | count", Some("PT1H"), T).await.unwrap();
    assert_eq!(r.primary().rows[0][0].to_text(), "3");
    let r = q.query("NoxysEvents_CL | count", Some("2026-03-20T00:00:00Z/2026-03-21T00:00:00Z"), T).await.unwrap();
    assert_eq!(r.primary().rows[0][0].to_text(), "0");

    // An unsupported operator is a 400 BadArgumentError that names it.
    match q.query("NoxysEvents_CL | parse EventType with * '.' Kind", None, T).await {
        Err(QueryError::Refused { status: 400, code, message }) => {
            assert_eq!(code, "BadArgumentError");
            assert!(message.contains("operator 'parse'"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    match q.query("NoxysEvents_CL | where", None, T).await {
        Err(QueryError::Refused { status: 400, message, .. }) => assert!(message.contains("syntax error"), "{message}"),
        other => panic!("{other:?}"),
    }
    let r = q.query("print x = 1", Some("PT5Z"), T).await;
    assert!(matches!(r, Err(QueryError::Refused { status: 400, .. })), "{r:?}");
}

#[tokio::test]
async fn the_query_api_enforces_auth_and_documented_quirks() {
    let mut cfg = builtin_workspace_config();
    cfg.workspace_id = Some("63613592-b6f7-4c3d-a390-22ba13102111".into());
    let ws = start_workspace(cfg).await;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/workspaces/63613592-b6f7-4c3d-a390-22ba13102111/query", ws.url());
    let r = http.post(&url).json(&json!({"query": "print 1"})).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let monitor = tokens(&ws, MONITOR_SCOPE).token().await.unwrap();
    let r = http.post(&url).bearer_auth(&monitor).json(&json!({"query": "print 1"})).send().await.unwrap();
    assert_eq!(r.status(), 403, "a token for another audience is refused");
    let good = tokens(&ws, QUERY_SCOPE).token().await.unwrap();
    let r = http.post(&url).bearer_auth(&good).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.text().await.unwrap()), (200, String::new()), "no body: an empty 200, as documented");
    let r = http
        .post(format!("{}/v1/workspaces/00000000-0000-0000-0000-000000000000/query", ws.url()))
        .bearer_auth(&good)
        .json(&json!({"query": "print 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http.get(format!("{url}?query=print%20x%3D1")).bearer_auth(&good).send().await.unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["tables"][0]["rows"], json!([[1]]));
}

#[tokio::test]
async fn a_revoked_token_is_a_403_on_the_query_api_and_the_client_refreshes_it() {
    let ws = start_workspace(builtin_workspace_config()).await;
    let good = tokens(&ws, QUERY_SCOPE).token().await.unwrap();
    ws.workspace.revoke_tokens();
    let url = format!("{}/v1/workspaces/63613592-b6f7-4c3d-a390-22ba13102111/query", ws.url());
    let r = reqwest::Client::new().post(&url).bearer_auth(&good).json(&json!({"query": "print 1"})).send().await.unwrap();
    assert_eq!(r.status(), 403, "the Query API's answer to a token it cannot use");
    assert_eq!(r.headers()["x-ms-error-code"], "InvalidAuthenticationToken");
    // The client holds a token the service has since revoked: one retry with a fresh one succeeds.
    let client = sentinel_bridge::azure::logs_query::LogsQueryClient::new(
        &ws.url(),
        "63613592-b6f7-4c3d-a390-22ba13102111",
        tokens(&ws, QUERY_SCOPE),
        Default::default(),
    );
    client.query("print 1", None, std::time::Duration::from_secs(5)).await.unwrap();
    ws.workspace.revoke_tokens();
    let out = client.query("print x = 2", None, std::time::Duration::from_secs(5)).await.unwrap();
    assert_eq!(out.primary().rows.len(), 1);
}

/// Log Analytics runs five queries per user and queues the rest (at most 200, each at most 3 minutes, then
/// 429), and takes at most 200 per 30 s: the workspace does the same, here with a small queue and short waits.
#[tokio::test]
async fn the_query_api_throttles_per_user_as_documented() {
    let mut cfg = builtin_workspace_config();
    cfg.query_limits.min_latency = Duration::from_millis(600);
    cfg.query_limits.queue_timeout = Duration::from_millis(200);
    cfg.query_limits.queue_max = 1;
    let ws = start_workspace(cfg).await;
    let token = tokens(&ws, QUERY_SCOPE).token().await.unwrap();
    let raw = |token: String| {
        let url = format!("{}/v1/workspaces/{}/query", ws.url(), ws.workspace.workspace_id());
        async move {
            let r = reqwest::Client::new().post(url).bearer_auth(token).json(&json!({"query": "print 1"})).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let answers = futures::future::join_all((0..7).map(|_| raw(token.clone()))).await;
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    let throttled: Vec<&String> = answers.iter().filter(|(s, _)| *s == 429).map(|(_, b)| b).collect();
    assert_eq!((ok, throttled.len()), (5, 2), "five run, one waits past the queue timeout, one finds the queue full: {answers:?}");
    assert!(throttled.iter().any(|b| b.contains("queued")) && throttled.iter().any(|b| b.contains("waited")), "{throttled:?}");
    assert_eq!(ws.workspace.stats.queries_peak_running.load(std::sync::atomic::Ordering::Relaxed), 5);
    // Another user has slots of its own.
    let other = TokenSource::new(Arc::new(LoopbackClientCredential::new(&ws.url(), "t", "other-client", "s")), QUERY_SCOPE).token().await.unwrap();
    let both = futures::future::join_all((0..10).map(|i| raw(if i % 2 == 0 { token.clone() } else { other.clone() }))).await;
    assert!(both.iter().all(|(s, _)| *s == 200), "{both:?}");

    // The rate limit.
    let mut cfg = builtin_workspace_config();
    cfg.query_limits.rate = 3;
    let ws = start_workspace(cfg).await;
    let token = tokens(&ws, QUERY_SCOPE).token().await.unwrap();
    let statuses: Vec<u16> = futures::future::join_all((0..4).map(|_| {
        let url = format!("{}/v1/workspaces/{}/query", ws.url(), ws.workspace.workspace_id());
        let token = token.clone();
        async move { reqwest::Client::new().post(url).bearer_auth(token).json(&json!({"query": "print 1"})).send().await.unwrap().status().as_u16() }
    }))
    .await;
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 1, "{statuses:?}");
}

/// The client keeps its own queries within the five a user may run, however many are asked of it at once,
/// so none waits in Azure's queue on its own timeout.
#[tokio::test]
async fn the_query_client_runs_at_most_five_at_once() {
    let mut cfg = builtin_workspace_config();
    cfg.query_limits.min_latency = Duration::from_millis(150);
    cfg.query_limits.queue_timeout = Duration::from_millis(50);
    let ws = start_workspace(cfg).await;
    let q = query_client(&ws);
    let results = futures::future::join_all((0..12).map(|_| q.query("print 1", None, T))).await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let stats = &ws.workspace.stats;
    assert_eq!(stats.queries_throttled.load(std::sync::atomic::Ordering::Relaxed), 0, "nothing waited in the service's queue");
    assert_eq!(stats.queries_peak_running.load(std::sync::atomic::Ordering::Relaxed), 5);
}

#[tokio::test]
async fn sentinel_request_limits_are_enforced() {
    use reqwest::Method;
    let mut cfg = builtin_workspace_config();
    cfg.sentinel_writes_per_window = 1000;
    let ws = start_workspace(cfg).await;
    let id = "7a1b2c3d-0000-4000-8000-000000000001";
    let (status, _) = arm(&ws, Method::PUT, &format!("/{id}"), Some(json!({"properties": {"title": "t", "severity": "Low", "status": "New"}}))).await;
    assert_eq!(status, 201);
    // 100 comments per incident; replacing one is still allowed.
    for i in 1..=100 {
        let (status, body) = arm(&ws, Method::PUT, &format!("/{id}/comments/c{i}"), Some(json!({"properties": {"message": "m"}}))).await;
        assert_eq!(status, 201, "comment {i}: {body}");
    }
    let (status, body) = arm(&ws, Method::PUT, &format!("/{id}/comments/c101"), Some(json!({"properties": {"message": "m"}}))).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = arm(&ws, Method::PUT, &format!("/{id}/comments/c1"), Some(json!({"properties": {"message": "edited"}}))).await;
    assert_eq!(status, 200, "replacing one of the 100 is allowed");
    assert!(body["error"]["message"].as_str().unwrap().contains("100 comments"));
    // 75 comment PUTs per 5 minutes (the documented minimum): the 76th is throttled, with Retry-After.
    let ws = start_workspace(builtin_workspace_config()).await;
    let (status, _) = arm(&ws, Method::PUT, &format!("/{id}"), Some(json!({"properties": {"title": "t", "severity": "Low", "status": "New"}}))).await;
    assert_eq!(status, 201);
    for i in 0..75 {
        let (status, body) = arm(&ws, Method::PUT, &format!("/{id}/comments/c{i}"), Some(json!({"properties": {"message": "m"}}))).await;
        assert_eq!(status, 201, "comment {i}: {body}");
    }
    let token = tokens(&ws, "https://management.azure.com/.default").token().await.unwrap();
    let r = reqwest::Client::new()
        .put(format!("{}/{id}/comments/c1?api-version=2025-12-01", arm_base(&ws)))
        .bearer_auth(token)
        .json(&json!({"properties": {"message": "again"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=300).contains(&wait), "{wait}");
}

/// The workspace knows every documented Azure Monitor table (the generated catalog): an empty one answers
/// with its documented columns and types, history staging fills any of them, and the Logs Ingestion API takes
/// only the standard tables Microsoft's feature matrix lets it target, answering the rest as a stream the
/// rule cannot declare (400 `InvalidStream`).
#[tokio::test]
async fn the_workspace_knows_azure_monitor_s_tables_and_what_ingestion_may_target() {
    let ws = start_workspace(builtin_workspace_config()).await;
    let client = query_client(&ws);
    let empty = client.query("VMConnection | take 5", None, T).await.unwrap().primary();
    assert!(empty.rows.is_empty());
    let col = |name: &str| empty.columns.iter().find(|c| c.name == name).map(|c| c.ktype.name());
    assert_eq!((col("RemoteIp"), col("DestinationPort"), col("BytesSent"), col("_ResourceId")), (Some("string"), Some("int"), Some("long"), Some("string")));
    let vault = client.query("AZKVAuditLogs | take 1", None, T).await.unwrap().primary();
    assert_eq!(vault.columns.len(), 51, "every documented column, TenantId and Type last");

    let signin = json!([{"TimeGenerated": "2026-11-20T10:00:00Z", "UserPrincipalName": "alice@contoso.com", "IPAddress": "203.0.113.9",
        "LocationDetails": {"countryOrRegion": "FR", "geoCoordinates": {"latitude": 48.85, "longitude": 2.35}}, "AutonomousSystemNumber": "3215",
        "ResultType": "0", "IsInteractive": true, "Unknown": 1}]);
    for stream in ["Microsoft-SigninLogs", "Microsoft-Perf", "Microsoft-VMConnection", "Microsoft-Watchlist", "Microsoft-AzureActivity"] {
        let r = ingest_json(&ws, stream, json!([{"TimeGenerated": "2026-11-20T10:00:00Z"}])).await;
        assert_eq!(r.status(), 400, "{stream}");
        assert_eq!(r.headers()["x-ms-error-code"], "InvalidStream", "{stream}");
    }
    assert_eq!(backfill_json(&ws, "Microsoft-SigninLogs", signin).await.status(), 204);
    assert_eq!(ws.workspace.stats.dropped_columns.load(std::sync::atomic::Ordering::Relaxed), 1, "undeclared columns are dropped and counted");
    let f = ws.workspace.query("SigninLogs | extend Country = tostring(LocationDetails.countryOrRegion) | project UserPrincipalName, Country, AutonomousSystemNumber, IsInteractive, Type").unwrap();
    assert_eq!(f.rows[0].iter().map(|v| v.to_text()).collect::<Vec<_>>(), ["alice@contoso.com", "FR", "3215", "true", "SigninLogs"]);
    let vmc = json!([{"TimeGenerated": "2026-11-20T10:00:00Z", "Computer": "web-01", "RemoteIp": "198.51.100.7", "DestinationPort": 3333, "BytesSent": 5000000000i64}]);
    assert_eq!(backfill_json(&ws, "Microsoft-VMConnection", vmc).await.status(), 204);
    assert_eq!(ws.workspace.query("VMConnection | project DestinationPort").unwrap().rows[0][0].to_text(), "3333");
    // SecurityEvent and Syslog are ones the API may target: a rule declares them as any custom table.
    let event = json!([{"TimeGenerated": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap(), "Computer": "web-01", "EventID": 4625}]);
    assert_eq!(ingest_json(&ws, "Microsoft-SecurityEvent", event).await.status(), 204);
    let r = ingest_json(&ws, "Custom-Nope_CL", json!([{}])).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["x-ms-error-code"], "InvalidStream");
    // A rule declaring a stream into a table the API does not take is refused, as Azure refuses the rule.
    let mut cfg = builtin_workspace_config();
    cfg.rules = vec![("dcr-perf".into(), vec!["Microsoft-Perf".into()])];
    let err = sentinel_bridge::local_azure::Workspace::open(cfg).err().unwrap();
    assert!(err.to_string().contains("does not take"), "{err}");
}

#[tokio::test]
async fn a_streams_transform_shapes_rows_as_the_dcr_says() {
    // Seed 002's DCR transformation for TrapEye threats, run by the workspace on raw vendor events.
    let mut cfg = builtin_workspace_config();
    cfg.extra_streams.push(StreamDecl {
        name: "Custom-TrapEyeRaw".into(),
        columns: vec![
            sentinel_bridge::kql::Column { name: "event_type".into(), ktype: sentinel_bridge::kql::KType::String },
            sentinel_bridge::kql::Column { name: "first_interaction".into(), ktype: sentinel_bridge::kql::KType::String },
            sentinel_bridge::kql::Column { name: "threat_uuid".into(), ktype: sentinel_bridge::kql::KType::String },
            sentinel_bridge::kql::Column { name: "source_ip".into(), ktype: sentinel_bridge::kql::KType::String },
            sentinel_bridge::kql::Column { name: "@meta".into(), ktype: sentinel_bridge::kql::KType::Dynamic },
        ],
        table: "TrapEye_Threats_CL".into(),
        transform: Some("source\n| where event_type == \"new_threat\"\n| extend\nTimeGenerated = todatetime(first_interaction),\nProduct = tostring(['@meta'].product),\nVendor = tostring(['@meta'].vendor)\n| project-away ['@meta']".into()),
    });
    let ws = start_workspace(cfg).await;
    let threat: Value = serde_json::from_str(&fixture("trapeye-threat.json")).unwrap();
    let interaction: Value = serde_json::from_str(&fixture("trapeye-interaction.json")).unwrap();
    assert_eq!(ingest_json(&ws, "Custom-TrapEyeRaw", json!([threat, interaction])).await.status(), 204);
    let rows = ws.workspace.rows("TrapEye_Threats_CL");
    assert_eq!(rows.len(), 1, "the transform's where keeps threats only");
    // The seed sets TimeGenerated to first_interaction, which can be older than Azure keeps: it became the
    // time received, as it would in Azure (and why the mappings keep EventTime).
    assert_ne!(rows[0]["TimeGenerated"], "2026-03-20T14:30:12Z");
    assert_eq!(ws.workspace.stats.time_generated_replaced.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!((rows[0]["Product"].as_str(), rows[0]["Vendor"].as_str()), (Some("TrapEye"), Some("TrapEye")));
    assert_eq!(rows[0]["source_ip"], "203.0.113.45");
}

#[tokio::test]
async fn the_official_ingestion_example_is_accepted() {
    let example: Value = serde_json::from_str(&fixture("azure/ingestion-2023-01-01-post_IngestUsingDataCollectionRule.json")).unwrap();
    let p = &example["parameters"];
    let mut cfg = WorkspaceConfig::new(vec![Arc::new(TableSchema {
        name: "MyTable_CL".into(),
        columns: vec![
            Column { name: "TimeGenerated".into(), kind: ColumnType::Datetime },
            Column { name: "Computer".into(), kind: ColumnType::String },
            Column { name: "AdditionalContext".into(), kind: ColumnType::Dynamic },
        ],
    })]);
    cfg.dcr_immutable_id = Some(p["ruleId"].as_str().unwrap().into());
    cfg.extra_streams.push(StreamDecl {
        name: p["stream"].as_str().unwrap().into(),
        columns: vec![
            sentinel_bridge::kql::Column { name: "Time".into(), ktype: sentinel_bridge::kql::KType::DateTime },
            sentinel_bridge::kql::Column { name: "Computer".into(), ktype: sentinel_bridge::kql::KType::String },
            sentinel_bridge::kql::Column { name: "AdditionalContext".into(), ktype: sentinel_bridge::kql::KType::Dynamic },
        ],
        table: "MyTable_CL".into(),
        transform: Some("source | extend TimeGenerated = Time | project-away Time".into()),
    });
    let ws = start_workspace(cfg).await;
    let token = tokens(&ws, MONITOR_SCOPE).token().await.unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(p["body"].to_string().as_bytes()).unwrap();
    let r = reqwest::Client::new()
        .post(format!(
            "{}/dataCollectionRules/{}/streams/{}?api-version={}",
            ws.url(),
            p["ruleId"].as_str().unwrap(),
            p["stream"].as_str().unwrap(),
            p["api-version"].as_str().unwrap()
        ))
        .bearer_auth(token)
        .header("content-type", p["Content-Type"].as_str().unwrap())
        .header("content-encoding", p["Content-Encoding"].as_str().unwrap())
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), example["responses"].as_object().unwrap().keys().next().unwrap().parse::<u16>().unwrap());
    let rows = ws.workspace.rows("MyTable_CL");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["AdditionalContext"]["CounterValue"], 23.5);
    // The example's 2021 time is far outside Azure's window: replaced with the time received.
    assert!(rows[0]["TimeGenerated"]
        .as_str()
        .unwrap()
        .starts_with(&sentinel_bridge::model::time::format_ticks(sentinel_bridge::model::time::now_ticks())[..10]));
}

/// Azure keeps a TimeGenerated from two days before it receives a row to one day after; the workspace
/// replaces the others with the time received, keeps the edges, and keeps history staged as such.
#[tokio::test]
async fn time_generated_outside_azure_s_window_becomes_the_time_received() {
    use sentinel_bridge::model::time::{format_ticks, now_ticks, TICKS_PER_SEC};
    let ws = start_workspace(builtin_workspace_config()).await;
    let hour = 3600 * TICKS_PER_SEC;
    let now = now_ticks();
    let times = [now - 47 * hour, now - 49 * hour, now + 23 * hour, now + 25 * hour];
    let rows: Vec<Value> = times.iter().enumerate().map(|(i, t)| json!({"TimeGenerated": format_ticks(*t), "EventType": format!("e{i}")})).collect();
    assert_eq!(ingest_json(&ws, "Custom-Webhook_CL", json!(rows)).await.status(), 204);
    let landed = ws.workspace.rows("Webhook_CL");
    let kept: Vec<bool> = landed.iter().zip(times).map(|(r, t)| r["TimeGenerated"] == format_ticks(t)).collect();
    assert_eq!(kept, [true, false, true, false]);
    assert_eq!(ws.workspace.stats.time_generated_replaced.load(std::sync::atomic::Ordering::Relaxed), 2);
    // The backfill route (local only) stands for rows that arrived long ago: their time stays.
    let token = tokens(&ws, MONITOR_SCOPE).token().await.unwrap();
    let r = reqwest::Client::new()
        .post(format!(
            "{}/dataCollectionRules/dcr-test/streams/Custom-Webhook_CL?api-version=2023-01-01",
            sentinel_bridge::local_azure::backfill_endpoint(&ws.url())
        ))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(json!([{"TimeGenerated": "2026-01-01T00:00:00Z", "EventType": "old"}]).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(ws.workspace.rows("Webhook_CL").iter().any(|r| r["TimeGenerated"] == "2026-01-01T00:00:00Z"));
}

/// Azure truncates a field over 64 KB, and a dynamic value cut there is no longer JSON; a call is 1 MB
/// uncompressed as well, counting its records (the official SDK's separators come on top).
#[tokio::test]
async fn fields_over_64_kb_are_truncated_and_calls_are_1_mb_uncompressed() {
    let ws = start_workspace(builtin_workspace_config()).await;
    let long = "x".repeat(70_000);
    let rows = json!([{"TimeGenerated": "2026-12-01T00:00:00Z", "EventType": long, "Payload": {"text": long}}]);
    assert_eq!(ingest_json(&ws, "Custom-Webhook_CL", rows).await.status(), 204);
    let r = &ws.workspace.rows("Webhook_CL")[0];
    assert_eq!(r["EventType"].as_str().unwrap().len(), 65_536);
    let payload = r["Payload"].as_str().expect("a cut dynamic value lands as text");
    assert_eq!(payload.len(), 65_536);
    assert!(serde_json::from_str::<Value>(payload).is_err());
    assert_eq!(ws.workspace.stats.truncated_fields.load(std::sync::atomic::Ordering::Relaxed), 2);

    let token = tokens(&ws, MONITOR_SCOPE).token().await.unwrap();
    let send_gzip = |records: Vec<Value>, separator: &str| {
        let text = format!("[{}]", records.iter().map(Value::to_string).collect::<Vec<_>>().join(separator));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text.as_bytes()).unwrap();
        let body = gz.finish().unwrap();
        let url = format!("{}/dataCollectionRules/dcr-test/streams/Custom-Webhook_CL?api-version=2023-01-01", ws.url());
        let token = token.clone();
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), text.len())
        }
    };
    let record = |n: usize| json!({"TimeGenerated": "2026-12-01T00:00:00Z", "EventType": "y".repeat(n)});
    // 1 MiB of records plus the SDK's ", " separators: taken.
    let size = record(1000).to_string().len();
    let n = 1_048_576 / size;
    let (status, sent) = send_gzip((0..n).map(|_| record(1000)).collect(), ", ").await;
    assert!(sent > 1_048_576, "{sent}");
    assert_eq!(status, 204);
    // Records over 1 MiB uncompressed: refused, however well they compress.
    let (status, _) = send_gzip((0..n + 2).map(|_| record(1000)).collect(), ",").await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn the_official_query_example_round_trips() {
    let example: Value = serde_json::from_str(&fixture("azure/loganalytics-query-v1-oms-post-example.json")).unwrap();
    let expected = parse_response(&example["responses"]["200"]["body"].to_string()).unwrap().primary();
    let mut cfg = builtin_workspace_config();
    cfg.workspace_id = Some(example["parameters"]["workspaceId"].as_str().unwrap().into());
    let ws = start_workspace(cfg).await;
    // Stage the example's rows as Usage records, an hour old so the request's PT12H window holds them.
    let recent = sentinel_bridge::model::time::format_datetime(time::OffsetDateTime::now_utc() - time::Duration::hours(1));
    let records: Vec<Value> = expected
        .rows
        .iter()
        .map(|r| {
            let mut m = serde_json::Map::new();
            for (c, v) in expected.columns.iter().zip(r.iter()) {
                if !v.is_null() && c.name != "TenantId" && c.name != "Type" {
                    m.insert(c.name.clone(), if c.name == "TimeGenerated" { json!(recent) } else { v.to_json() });
                }
            }
            Value::Object(m)
        })
        .collect();
    assert_eq!(backfill_json(&ws, "Microsoft-Usage", Value::Array(records)).await.status(), 204);
    let token = tokens(&ws, QUERY_SCOPE).token().await.unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/v1/workspaces/{}/query", ws.url(), example["parameters"]["workspaceId"].as_str().unwrap()))
        .bearer_auth(token)
        .json(&example["parameters"]["body"])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["tables"][0]["name"], "PrimaryResult");
    let got = parse_response(&body.to_string()).unwrap().primary();
    // Same columns with the same types (order aside), and the same values but for the times we moved.
    for c in &expected.columns {
        let i = got.column_index(&c.name).unwrap_or_else(|| panic!("column {} missing", c.name));
        assert_eq!(got.columns[i].ktype, c.ktype, "{}", c.name);
    }
    assert_eq!(got.rows.len(), expected.rows.len());
    for (g, e) in got.rows.iter().zip(&expected.rows) {
        for (j, c) in expected.columns.iter().enumerate() {
            if ["TimeGenerated", "TenantId"].contains(&c.name.as_str()) {
                continue;
            }
            let i = got.column_index(&c.name).unwrap();
            assert_eq!(g[i].to_text(), e[j].to_text(), "{}", c.name);
        }
    }
}

fn arm_base(ws: &RunningWorkspace) -> String {
    format!("{}/subscriptions/d0cfe6b2-9ac0-4464-9919-dccaee2e48c0/resourceGroups/myRg/providers/Microsoft.OperationalInsights/workspaces/myWorkspace/providers/Microsoft.SecurityInsights/incidents", ws.url())
}

async fn arm(ws: &RunningWorkspace, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let token = tokens(ws, "https://management.azure.com/.default").token().await.unwrap();
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut req = reqwest::Client::new().request(method, format!("{}{path}{sep}api-version=2025-12-01", arm_base(ws))).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn same_keys(got: &Value, want: &Value, path: &str) {
    if let (Some(g), Some(w)) = (got.as_object(), want.as_object()) {
        for k in w.keys() {
            // Properties the fixture's service filled from other data (owner details, analytic rules).
            if ["relatedAnalyticRuleIds", "email", "userPrincipalName", "assignedTo", "name"].contains(&k.as_str()) && path.contains("owner")
                || k == "relatedAnalyticRuleIds"
            {
                continue;
            }
            assert!(g.contains_key(k), "{path}.{k} is missing from {got}");
            same_keys(&g[k], &w[k], &format!("{path}.{k}"));
        }
    }
}

#[tokio::test]
async fn sentinel_incidents_follow_the_official_examples() {
    use reqwest::Method;
    let ws = start_workspace(builtin_workspace_config()).await;
    let create: Value = serde_json::from_str(&fixture("azure/sentinel-2025-12-01-CreateIncident.json")).unwrap();
    let id = create["parameters"]["incidentId"].as_str().unwrap();
    let mut body = create["parameters"]["incident"].clone();
    body.as_object_mut().unwrap().remove("etag"); // a new incident has no etag yet
    let (status, created) = arm(&ws, Method::PUT, &format!("/{id}"), Some(body.clone())).await;
    assert_eq!(status, 201, "{created}");
    same_keys(&created, &create["responses"]["201"]["body"], "incident");
    assert_eq!(created["properties"]["incidentNumber"], 1);
    assert_eq!(created["properties"]["title"], "My incident");
    let etag = created["etag"].as_str().unwrap().to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "etags carry their quotes");

    // GET matches the example's shape; a second incident gets the next number.
    let get: Value = serde_json::from_str(&fixture("azure/sentinel-2025-12-01-GetIncidentById.json")).unwrap();
    let (status, got) = arm(&ws, Method::GET, &format!("/{id}"), None).await;
    assert_eq!(status, 200);
    same_keys(&got, &get["responses"]["200"]["body"], "incident");
    let (_, second) =
        arm(&ws, Method::PUT, "/11111111-2222-3333-4444-555555555555", Some(json!({"properties": {"title": "Second", "severity": "Low", "status": "New"}})))
            .await;
    assert_eq!(second["properties"]["incidentNumber"], 2);

    // Updating with the current etag works (200, new etag); the old etag is then stale (409).
    let mut update = body.clone();
    update["etag"] = json!(etag);
    update["properties"]["severity"] = json!("Medium");
    let (status, updated) = arm(&ws, Method::PUT, &format!("/{id}"), Some(update.clone())).await;
    assert_eq!(status, 200, "{updated}");
    assert_ne!(updated["etag"], json!(etag));
    let (status, conflict) = arm(&ws, Method::PUT, &format!("/{id}"), Some(update)).await;
    assert_eq!(status, 409);
    assert_eq!(conflict["error"]["code"], "Conflict");
    assert!(conflict["error"]["message"].as_str().unwrap().starts_with("Newer version of resource"));

    // Bad bodies name the problem.
    let (status, e) = arm(&ws, Method::PUT, "/bad", Some(json!({"properties": {"title": "x", "severity": "Urgent", "status": "New"}}))).await;
    assert_eq!(status, 400, "{e}");
    let (status, _) = arm(&ws, Method::PUT, "/bad", Some(json!({"properties": {"title": "x", "severity": "Low", "status": "Closed"}}))).await;
    assert_eq!(status, 400, "closing needs a classification");

    // Comments: created (201), replaced (200), listed; over the length limit refused.
    let comment: Value = serde_json::from_str(&fixture("azure/sentinel-2025-12-01-CreateIncidentComment.json")).unwrap();
    let cid = comment["parameters"]["incidentCommentId"].as_str().unwrap();
    let (status, c) = arm(&ws, Method::PUT, &format!("/{id}/comments/{cid}"), Some(comment["parameters"]["incidentComment"].clone())).await;
    assert_eq!(status, 201);
    same_keys(&c, &comment["responses"]["201"]["body"], "comment");
    let (status, _) = arm(&ws, Method::PUT, &format!("/{id}/comments/{cid}"), Some(json!({"properties": {"message": "Edited"}}))).await;
    assert_eq!(status, 200);
    let (_, list) = arm(&ws, Method::GET, &format!("/{id}/comments"), None).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    assert_eq!(list["value"][0]["properties"]["message"], "Edited");
    // Sentinel's limit is 30,000 characters (service limits; the contract sheet's 3,000 is outdated).
    let (status, _) = arm(&ws, Method::PUT, &format!("/{id}/comments/long"), Some(json!({"properties": {"message": "é".repeat(30_000)}}))).await;
    assert_eq!(status, 201);
    let (status, _) = arm(&ws, Method::PUT, &format!("/{id}/comments/longer"), Some(json!({"properties": {"message": "x".repeat(30_001)}}))).await;
    assert_eq!(status, 400);

    // Tasks and relations, as in their examples.
    let task: Value = serde_json::from_str(&fixture("azure/sentinel-2025-12-01-IncidentTasks_CreateOrUpdate.json")).unwrap();
    let (status, t) = arm(
        &ws,
        Method::PUT,
        &format!("/{id}/tasks/{}", task["parameters"]["incidentTaskId"].as_str().unwrap()),
        Some(task["parameters"]["incidentTask"].clone()),
    )
    .await;
    assert_eq!(status, 201);
    same_keys(&t["properties"], &json!({"title": 1, "description": 1, "status": 1, "createdTimeUtc": 1, "lastModifiedTimeUtc": 1}), "task");
    let rel: Value = serde_json::from_str(&fixture("azure/sentinel-2025-12-01-CreateIncidentRelation.json")).unwrap();
    let (status, r) =
        arm(&ws, Method::PUT, &format!("/{id}/relations/{}", rel["parameters"]["relationName"].as_str().unwrap()), Some(rel["parameters"]["relation"].clone()))
            .await;
    assert_eq!(status, 201);
    same_keys(&r, &rel["responses"]["201"]["body"], "relation");

    // The incident made through ARM is in SecurityIncident, one row per version.
    let f = ws
        .workspace
        .query(&format!("SecurityIncident | where IncidentName == '{id}' | summarize versions = count(), arg_max(TimeGenerated, Severity)"))
        .unwrap();
    assert_eq!(f.rows[0][0].to_text(), "7", "created, updated, comment, comment edit, long comment, task, relation");
    assert_eq!(f.rows[0][2].to_text(), "Medium");

    // Lists, 404s, api-versions.
    let (_, all) = arm(&ws, Method::GET, "?$top=1&$orderby=properties/incidentNumber asc", None).await;
    assert_eq!(all["value"][0]["properties"]["incidentNumber"], 1);
    assert!(all["nextLink"].as_str().unwrap().contains("$skipToken=1"));
    let (status, _) = arm(&ws, Method::GET, "/00000000-0000-0000-0000-000000000000", None).await;
    assert_eq!(status, 404);
    let token = tokens(&ws, "https://management.azure.com/.default").token().await.unwrap();
    for (version, want) in [("2024-09-01", 200), ("2019-01-01", 400)] {
        let r = reqwest::Client::new().get(format!("{}/{id}?api-version={version}", arm_base(&ws))).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), want, "{version}");
    }
    let r = reqwest::Client::new()
        .get(format!("{}/{id}?api-version=2025-12-01", arm_base(&ws).replace("/incidents", "/Incidents")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "paths are case-insensitive, as ARM's are");
    let (status, _) = arm(&ws, Method::DELETE, &format!("/{id}"), None).await;
    assert_eq!(status, 200);
    let (status, _) = arm(&ws, Method::GET, &format!("/{id}"), None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_incident_staged_by_ingestion_has_its_alerts_and_entities() {
    use reqwest::Method;
    let ws = start_workspace(builtin_workspace_config()).await;
    let entities = json!([
        {"$id": "2", "Type": "account", "Name": "alice", "UPNSuffix": "contoso.com"},
        {"$id": "3", "Type": "ip", "Address": "203.0.113.9"},
        {"$id": "4", "Type": "host", "HostName": "acme-web-02"}
    ]);
    let alerts = json!([
        {"TimeGenerated": "2026-11-20T10:05:00Z", "SystemAlertId": "aaaaaaaa-0000-0000-0000-000000000001", "DisplayName": "Suspicious sign-in", "AlertName": "Suspicious sign-in",
         "AlertSeverity": "High", "ProductName": "Azure Active Directory Identity Protection", "Tactics": "InitialAccess", "Status": "New", "Entities": entities.to_string()},
        {"TimeGenerated": "2026-11-20T10:20:00Z", "SystemAlertId": "aaaaaaaa-0000-0000-0000-000000000002", "DisplayName": "CPU spike", "AlertSeverity": "Medium",
         "ProductName": "Azure Monitor", "Entities": json!([{"$id": "2", "Type": "host", "HostName": "acme-web-02"}]).to_string()},
        {"TimeGenerated": "2026-11-20T10:20:00Z", "SystemAlertId": "aaaaaaaa-0000-0000-0000-00000000ffff", "DisplayName": "Unrelated", "AlertSeverity": "Low"}
    ]);
    assert_eq!(backfill_json(&ws, "Microsoft-SecurityAlert", alerts).await.status(), 204);
    let incident = json!([{"TimeGenerated": "2026-11-20T10:30:00Z", "IncidentName": "9f0c6a1e-1111-4222-8333-444455556666", "Title": "Credential compromise on acme-web-02",
        "Severity": "High", "Status": "New", "IncidentNumber": 42, "CreatedTime": "2026-11-20T10:30:00Z", "LastModifiedTime": "2026-11-20T10:30:00Z",
        "FirstActivityTime": "2026-11-20T10:05:00Z", "LastActivityTime": "2026-11-20T10:20:00Z",
        "AlertIds": ["aaaaaaaa-0000-0000-0000-000000000001", "aaaaaaaa-0000-0000-0000-000000000002"]}]);
    assert_eq!(backfill_json(&ws, "Microsoft-SecurityIncident", incident).await.status(), 204);
    let id = "9f0c6a1e-1111-4222-8333-444455556666";
    let (status, inc) = arm(&ws, Method::GET, &format!("/{id}"), None).await;
    assert_eq!(status, 200, "{inc}");
    assert_eq!(inc["properties"]["incidentNumber"], 42);
    assert_eq!(inc["properties"]["additionalData"]["alertsCount"], 2);
    let (status, alerts) = arm(&ws, Method::POST, &format!("/{id}/alerts"), None).await;
    assert_eq!(status, 200);
    let shape: Value = serde_json::from_str(&fixture("azure/sentinel-2025-12-01-GetAllIncidentAlerts.json")).unwrap();
    assert_eq!(alerts["value"].as_array().unwrap().len(), 2);
    assert_eq!(alerts["value"][0]["kind"], "SecurityAlert");
    for k in ["systemAlertId", "alertDisplayName", "severity", "productName", "timeGenerated", "tactics"] {
        assert!(shape["responses"]["200"]["body"]["value"][0]["properties"].get(k).is_some());
        assert!(alerts["value"][0]["properties"].get(k).is_some(), "{k}");
    }
    let (status, ents) = arm(&ws, Method::POST, &format!("/{id}/entities"), None).await;
    assert_eq!(status, 200);
    let kinds: Vec<&str> = ents["entities"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Account", "Ip", "Host"], "the host shared by both alerts appears once");
    assert_eq!(ents["entities"][0]["properties"]["friendlyName"], "alice");
    assert_eq!(ents["entities"][2]["properties"]["hostName"], "acme-web-02");
    assert!(ents["metaData"].as_array().unwrap().contains(&json!({"entityKind": "Host", "count": 1})));
    // The next ARM-created incident numbers after the staged one.
    let (_, next) =
        arm(&ws, Method::PUT, "/22222222-2222-3333-4444-555555555555", Some(json!({"properties": {"title": "n", "severity": "Low", "status": "New"}}))).await;
    assert_eq!(next["properties"]["incidentNumber"], 43);
}

#[tokio::test]
async fn ingestion_into_the_workspace_is_durable_across_reopen() {
    let dir = std::env::temp_dir().join(format!("sb-ws-{}", uuid::Uuid::new_v4()));
    let schema = Arc::new(TableSchema {
        name: "D_CL".into(),
        columns: vec![Column { name: "TimeGenerated".into(), kind: ColumnType::Datetime }, Column { name: "N".into(), kind: ColumnType::Long }],
    });
    for round in 0..2 {
        let mut cfg = WorkspaceConfig::new(vec![schema.clone()]);
        cfg.data_dir = Some(dir.clone());
        let ws = start_workspace(cfg).await;
        let client = IngestionClient::new(&ws.url(), "dcr-x", tokens(&ws, MONITOR_SCOPE), IngestionOptions::default(), Arc::new(Metrics::default()));
        let row = Row::new(&schema, json!({"TimeGenerated": "2026-11-23T00:00:00Z", "N": round}).as_object().unwrap()).unwrap();
        assert!(client.upload("Custom-D_CL", &[row], Instant::now() + T).await.is_ok());
        let f = ws.workspace.query("D_CL | summarize count(), sum(N)").unwrap();
        assert_eq!(f.rows[0].iter().map(|v| v.to_text()).collect::<Vec<_>>(), [(round + 1).to_string(), round.to_string()]);
        ws.stop().await;
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every correlation query, run over HTTP on an empty local workspace that knows the tables, answers with the
/// columns its reader's row type names: a column a query stops projecting (or a field renamed in its row
/// type) fails here, not in an incident.
#[tokio::test]
async fn every_correlation_query_answers_with_its_readers_columns() {
    use sentinel_bridge::enrich::entities::{Names, Subjects};
    use sentinel_bridge::enrich::{preamble, Window, HIGH_VALUE_ASSETS, QUERIES, RESOLVE};
    let ws = start_workspace(builtin_workspace_config()).await;
    let client = query_client(&ws);
    let mut names = Names::of(&Subjects::default());
    names.accounts.insert("someone@contoso.com".into());
    names.computers.insert("web-01".into());
    let now = sentinel_bridge::model::time::now_ticks();
    let day = 86_400 * sentinel_bridge::model::time::TICKS_PER_SEC;
    let bound = preamble(&names, &[], &Window { start: now - day, end: now, baseline_start: now - 30 * day });
    for q in QUERIES.iter().chain([&RESOLVE, &HIGH_VALUE_ASSETS]) {
        let r = client.query(&format!("{bound}{}", q.text), None, Duration::from_secs(30)).await.unwrap_or_else(|e| panic!("{}: {e}", q.name));
        let f = r.primary();
        let have: Vec<&str> = f.columns.iter().map(|c| c.name.as_str()).collect();
        for column in (q.columns)() {
            assert!(have.contains(&column), "{} answers {have:?}, without the column {column} its reader reads", q.name);
        }
    }
}

/// ARM's read of the rule carries what a deployment must get right beyond the streams: the endpoint it is
/// bound to, the workspace it sends to, and one data flow per custom stream to that destination.
#[tokio::test]
async fn the_rule_read_over_arm_carries_its_endpoint_destination_and_data_flows() {
    let path = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Insights/dataCollectionRules/sbridge-dcr";
    let mut cfg = builtin_workspace_config();
    cfg.dcr_resource_id = Some(path.into());
    let ws = start_workspace(cfg).await;
    let token = tokens(&ws, "https://management.azure.com/.default").token().await.unwrap();
    let http = reqwest::Client::new();
    let get = |path: String| http.get(format!("{}{path}?api-version=2024-03-11", ws.url())).bearer_auth(&token).send();
    // A rule that does not exist is ARM's 404, not whichever rule the workspace has.
    assert_eq!(get(path.replace("sbridge-dcr", "other")).await.unwrap().status(), 404);
    let r = get(path.to_string()).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let p = &v["properties"];
    assert!(p["dataCollectionEndpointId"].as_str().unwrap().contains("/dataCollectionEndpoints/"), "{p}");
    let la = &p["destinations"]["logAnalytics"][0];
    assert_eq!(la["name"], "sentinel");
    assert!(la["workspaceResourceId"].as_str().unwrap().contains("/workspaces/"), "{la}");
    let flows = p["dataFlows"].as_array().unwrap();
    assert!(
        flows.iter().any(|f| f["streams"] == json!(["Custom-NoxysEvents_CL"])
            && f["outputStream"] == "Custom-NoxysEvents_CL"
            && f["destinations"] == json!(["sentinel"])),
        "{flows:?}"
    );
    assert!(flows.iter().all(|f| f["streams"][0].as_str().unwrap().starts_with("Custom-")));
    // The endpoint it is bound to is this workspace's logs ingestion endpoint.
    let dce: Value = get(p["dataCollectionEndpointId"].as_str().unwrap().to_string()).await.unwrap().json().await.unwrap();
    assert_eq!(dce["properties"]["logsIngestion"]["endpoint"], ws.url());
}
