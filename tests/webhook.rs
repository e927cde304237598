//! The webhook path end to end: real HTTP from a sender to the handler, and from the handler to the local
//! workspace enforcing the Logs Ingestion contract.

mod common;

use std::time::Duration;

use base64::Engine;
use common::*;
use sentinel_bridge::local_azure::{Endpoint, FaultKind, FaultSpec, WorkspaceConfig};
use sentinel_bridge::mapping::auth::{hmac_sha256_hex, standard_webhooks_signature};
use serde_json::{json, Value};

/// A row whose TimeGenerated is the time it arrived (within the last minute).
fn assert_arrived_now(row: &Value) {
    let t = sentinel_bridge::model::time::parse_datetime_ticks(row["TimeGenerated"].as_str().unwrap()).unwrap();
    let age = sentinel_bridge::model::time::now_ticks() - t;
    assert!((0..60 * sentinel_bridge::model::time::TICKS_PER_SEC).contains(&age), "{row}");
}

#[tokio::test]
async fn noxys_sample_lands_as_a_gzipped_row() {
    let t = TestBridge::start(&[]).await;
    let (status, body) = t.post("noxys", NOXYS_TOKEN, fixture("noxys-policy-violated.json")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body, json!({"accepted": 1, "table": "NoxysEvents_CL"}));
    let rows = t.rows("NoxysEvents_CL");
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    // The sample is from March: EventTime keeps the vendor's time, and TimeGenerated is when the bridge handed the
    // row to Azure, inside Azure's window, so a rule looking back over it sees the event however late it came.
    assert_eq!(r["EventTime"], "2026-03-20T14:32:00Z");
    assert_arrived_now(r);
    assert_eq!(t.ws.workspace.stats.time_generated_replaced.load(std::sync::atomic::Ordering::Relaxed), 0);
    let health: Value = t.http.get(format!("{}/api/health", t.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["counts"]["streams"]["Custom-NoxysEvents_CL"]["outsideTimeWindow"], 0, "{health}");
    assert_eq!(r["EventType"], "interaction.policy_violated");
    assert_eq!(r["NoxysTenantId"], "tenant-123");
    assert_eq!(r["InteractionId"], "int_abc123");
    assert_eq!(r["PlatformId"], "chatgpt");
    assert_eq!(r["RiskScore"], 0.95);
    assert_eq!(r["Classifications"], json!([{"type": "EMAIL", "value": "alice@acme.fr", "score": 0.98}]));
    assert_eq!(r["PolicyDecisions"], json!([{"policy_id": "pol_abc123", "policy_name": "Block PII on ChatGPT", "action": "block"}]));
    assert_eq!(r["EventId"], "evt_abc123");
    let calls = t.ws.workspace.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].stream, "Custom-NoxysEvents_CL");
    assert_eq!(calls[0].dcr, "dcr-test0001");
    assert_eq!(calls[0].content_encoding, "gzip");
    assert!(calls[0].request_id.as_deref().is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()));
    // The previous token of a rotation still works.
    let (status, _) = t.post("noxys", "previous-token-abcdefghij", fixture("noxys-policy-violated.json")).await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn trapeye_threats_and_interactions_go_to_their_tables() {
    let t = TestBridge::start(&[]).await;
    let threat: Value = serde_json::from_str(&fixture("trapeye-threat.json")).unwrap();
    let interaction: Value = serde_json::from_str(&fixture("trapeye-interaction.json")).unwrap();
    let (status, body) = t.post("trapeye", TRAPEYE_TOKEN, json!([threat, interaction, {"event_type": "heartbeat"}]).to_string()).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body, json!({"accepted": 2, "ignored": 1, "table": ["TrapEye_Threats_CL", "TrapEye_Interactions_CL"]}));
    let th = &t.rows("TrapEye_Threats_CL")[0];
    assert_eq!(th["EventTime"], "2026-03-20T14:30:12Z");
    assert_arrived_now(th);
    assert_eq!(th["source_ip"], "203.0.113.45");
    assert_eq!(th["reverse_lookup"], "scanner.example.net");
    assert_eq!(th["threat_uuid"], "7f3c2a1e-9b4d-4e6f-8a2b-1c5d7e9f0a3b");
    assert_eq!((th["Product"].as_str(), th["Vendor"].as_str()), (Some("TrapEye"), Some("TrapEye")));
    assert_eq!(th["AdditionalData"], json!({"interaction_count": 12, "decoy": {"name": "fin-db-01", "type": "mssql"}}));
    let it = &t.rows("TrapEye_Interactions_CL")[0];
    assert_eq!(it["EventTime"], "2026-03-20T14:31:02Z");
    assert_eq!(it["AdditionalData"], json!({"protocol": "tds", "destination_port": 1433}));
}

#[tokio::test]
async fn apono_sample_reads_the_templates_paths() {
    let t = TestBridge::start(&[]).await;
    let (status, body) = t.post("apono", APONO_TOKEN, fixture("apono-request-granted.json")).await;
    assert_eq!(status, 202, "{body}");
    let r = &t.rows("Apono_CL")[0];
    assert_eq!(r["EventTime"], "2026-03-20T15:04:05Z");
    assert_eq!(r["event_type"], "RequestGranted");
    assert_eq!(r["requester_id"], "usr-17");
    assert_eq!(r["requester_name"], "Alice Martin");
    assert_eq!(r["requester_email"], "alice@acme.fr");
    assert_eq!(r["justification"], "Investigating INC-2231");
    assert_eq!(r["resource_id"], "postgresql-database");
    assert_eq!(r["resource_name"], "prod-postgres");
    assert_eq!(r["permission"], "read-only");
    // What the template does not name is kept, not lost.
    assert_eq!(r["AdditionalData"]["data"]["id"], "req-4821");
    assert_eq!(r["AdditionalData"]["data"]["access_groups"][0]["access_units"][0]["resource"]["id"], "res-prod-db");
}

#[tokio::test]
async fn generic_keeps_each_event_whole() {
    let t = TestBridge::start(&[]).await;
    let (status, body) = t.post("generic", GENERIC_TOKEN, r#"[{"type":"x.y","n":1},{"other":[1,2]}]"#).await;
    assert_eq!(status, 202, "{body}");
    let rows = t.rows("Webhook_CL");
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0]["Source"].as_str(), rows[0]["EventType"].as_str()), (Some("generic"), Some("x.y")));
    assert_eq!(rows[0]["Payload"], json!({"type": "x.y", "n": 1}));
    assert_eq!(rows[1]["Payload"], json!({"other": [1, 2]}));
    assert!(rows[1].get("EventType").is_none());
}

async fn expect_error(resp: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    body
}

#[tokio::test]
async fn every_refusal_is_json_with_the_right_status() {
    let t = TestBridge::start(&[("WEBHOOK_MAX_BODY_BYTES", "4096")]).await;
    let url = |s: &str| format!("{}/api/webhook/{s}", t.url);
    let sample = fixture("noxys-policy-violated.json");

    let r = t.http.post(url("noxys")).bearer_auth("wrong-token").body(sample.clone()).send().await.unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    expect_error(r, 401, "Unauthorized").await;
    let r = t.http.post(url("noxys")).body(sample.clone()).send().await.unwrap();
    expect_error(r, 401, "Unauthorized").await;
    let r = t.http.post(url("nope")).bearer_auth(NOXYS_TOKEN).body(sample.clone()).send().await.unwrap();
    expect_error(r, 404, "UnknownSource").await;
    let r = t.http.post(url("noxys")).bearer_auth(NOXYS_TOKEN).header("content-type", "application/json").body("{\"id\": ").send().await.unwrap();
    let b = expect_error(r, 400, "InvalidJson").await;
    assert!(b["error"]["message"].as_str().unwrap().contains("line 1"));
    let r = t.http.post(url("noxys")).bearer_auth(NOXYS_TOKEN).header("content-type", "text/plain").body(sample.clone()).send().await.unwrap();
    expect_error(r, 415, "UnsupportedMediaType").await;
    let r = t.http.post(url("noxys")).bearer_auth(NOXYS_TOKEN).body("x".repeat(5000)).send().await.unwrap();
    expect_error(r, 413, "BodyTooLarge").await;
    // The same with no Content-Length (chunked): the limit holds while reading.
    let chunks = futures::stream::iter((0..10).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1000])));
    let r = t.http.post(url("noxys")).bearer_auth(NOXYS_TOKEN).body(reqwest::Body::wrap_stream(chunks)).send().await.unwrap();
    expect_error(r, 413, "BodyTooLarge").await;
    let mistyped = r#"{"event_type":"interaction.high_risk","timestamp":"2026-03-20T14:32:00Z","data":{"risk_score":"very"}}"#;
    let r = t.http.post(url("noxys")).bearer_auth(NOXYS_TOKEN).body(mistyped).send().await.unwrap();
    let b = expect_error(r, 400, "InvalidEvent").await;
    assert!(b["error"]["message"].as_str().unwrap().contains("data.risk_score"), "{b}");
    let r = t.http.post(url("noxys")).bearer_auth(NOXYS_TOKEN).body("[1, 2]").send().await.unwrap();
    expect_error(r, 400, "InvalidEvent").await;
    let r = t.http.get(format!("{}/api/nothing", t.url)).send().await.unwrap();
    expect_error(r, 404, "NotFound").await;
    assert!(t.rows("NoxysEvents_CL").is_empty());

    let health: Value = t.http.get(format!("{}/api/health", t.url)).send().await.unwrap().json().await.unwrap();
    let rejected = &health["counts"]["sources"]["noxys"]["rejected"];
    assert_eq!(rejected["Unauthorized"], 2, "{health}");
    assert_eq!(rejected["BodyTooLarge"], 2);
    assert!(!health.to_string().contains(NOXYS_TOKEN), "health must not leak secrets");
}

#[tokio::test]
async fn a_source_without_secrets_refuses_everything() {
    let t = TestBridge::start(&[("SOURCE_APONO_SECRETS", "")]).await;
    let (status, body) = t.post("apono", "anything-at-all-0123456", fixture("apono-request-granted.json")).await;
    assert_eq!(status, 401);
    assert!(body["error"]["message"].as_str().unwrap().contains("SOURCE_<NAME>_SECRETS"));
}

fn user_mapping(text: &str) -> String {
    let path = std::env::temp_dir().join(format!("sb-mapping-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A source signed the Standard Webhooks way, writing `Std_CL`.
const STDHOOKS_SOURCE: &str = r#"
[[source]]
name = "stdhooks"
auth = { mode = "standard-webhooks" }
[[source.table]]
name = "Std_CL"
time = "received"
columns = [{ name = "Kind", type = "string", path = "kind" }]
"#;

/// The built-in workspace with the tables the mapping file at `file` writes.
fn workspace_for_mapping(file: &str) -> WorkspaceConfig {
    let mut config = builtin_workspace_config();
    let catalog = sentinel_bridge::mapping::Catalog::load(&[("f".into(), std::fs::read_to_string(file).unwrap())]).unwrap();
    config.tables = catalog.tables();
    config
}

const HMAC_SECRET: &str = "hmac-shared-secret-0123456789";

#[tokio::test]
async fn hmac_header_and_standard_webhooks_sources() {
    let key = b"standard-webhooks-key-32-bytes!!";
    let whsec = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(key));
    let file = user_mapping(
        &[
            r#"
[[source]]
name = "signed"
auth = { mode = "hmac-sha256", header = "X-Hub-Signature-256", prefix = "sha256=" }
[[source.table]]
name = "Signed_CL"
time = "received"
columns = [{ name = "Kind", type = "string", path = "kind" }]

[[source]]
name = "keyed"
auth = { mode = "header", header = "X-Api-Key" }
[[source.table]]
name = "Keyed_CL"
time = "received"
columns = [{ name = "Kind", type = "string", path = "kind" }]

"#,
            STDHOOKS_SOURCE,
        ]
        .concat(),
    );
    let config = workspace_for_mapping(&file);
    let t = TestBridge::start_with(
        config,
        &[
            ("WEBHOOK_SOURCES_FILE", &file),
            ("SOURCE_SIGNED_SECRETS", HMAC_SECRET),
            ("SOURCE_KEYED_SECRETS", "api-key-value-0123456789"),
            ("SOURCE_STDHOOKS_SECRETS", &whsec),
        ],
    )
    .await;
    let url = |s: &str| format!("{}/api/webhook/{s}", t.url);
    let body = r#"{"kind":"a"}"#;

    // HMAC of the raw body.
    let sig = format!("sha256={}", hmac_sha256_hex(HMAC_SECRET.as_bytes(), body.as_bytes()));
    let r = t.http.post(url("signed")).header("X-Hub-Signature-256", &sig).body(body).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let r = t.http.post(url("signed")).header("X-Hub-Signature-256", &sig).body(r#"{"kind":"b"}"#).send().await.unwrap();
    assert_eq!(r.status(), 401, "a tampered body fails");
    let r = t.http.post(url("signed")).body(body).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // A secret in a named header.
    let r = t.http.post(url("keyed")).header("x-api-key", "api-key-value-0123456789").body(body).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let r = t.http.post(url("keyed")).header("x-api-key", "api-key-value-012345678").body(body).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // Standard Webhooks: valid, replayed, expired, tampered.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let send = |id: &'static str, ts: i64, payload: &'static str, signed_payload: &'static str| {
        let sig = standard_webhooks_signature(key, id, ts, signed_payload.as_bytes());
        t.http
            .post(url("stdhooks"))
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .header("content-type", "application/json")
            .body(payload)
            .send()
    };
    let r = send("msg_1", now, body, body).await.unwrap();
    assert_eq!(r.status(), 202);
    let r = send("msg_1", now, body, body).await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"accepted": 0, "duplicate": true}));
    assert_eq!(t.rows("Std_CL").len(), 1, "a replayed message is not ingested twice");
    let r = send("msg_2", now - 301, body, body).await.unwrap();
    assert_eq!(r.status(), 401);
    let r = send("msg_3", now, r#"{"kind":"evil"}"#, body).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(t.rows("Signed_CL").len(), 1);
    assert_eq!(t.rows("Keyed_CL").len(), 1);
}

#[tokio::test]
async fn concurrent_requests_share_calls() {
    let t = TestBridge::start(&[("BATCH_LINGER_MS", "100")]).await;
    let sample = fixture("noxys-policy-violated.json");
    let posts = (0..40).map(|_| t.post("noxys", NOXYS_TOKEN, sample.clone()));
    for (status, body) in futures::future::join_all(posts).await {
        assert_eq!(status, 202, "{body}");
    }
    assert_eq!(t.rows("NoxysEvents_CL").len(), 40);
    let calls = t.ws.workspace.calls();
    assert!(calls.len() < 10, "40 concurrent requests took {} calls", calls.len());
}

#[tokio::test]
async fn transient_faults_are_retried_and_the_sender_still_gets_202() {
    let t = TestBridge::start(&[]).await;
    let faults = &t.ws.workspace.faults;
    faults.add(FaultSpec::new(Endpoint::Ingestion, FaultKind::Status { status: 429, retry_after_secs: Some(1) }, 1));
    faults.add(FaultSpec::new(Endpoint::Ingestion, FaultKind::Status { status: 500, retry_after_secs: None }, 2));
    faults.add(FaultSpec::new(Endpoint::Ingestion, FaultKind::Drop, 2));
    faults.add(FaultSpec::new(Endpoint::Ingestion, FaultKind::Slow { millis: 300 }, 1));
    let started = std::time::Instant::now();
    let (status, body) = t.post("noxys", NOXYS_TOKEN, fixture("noxys-policy-violated.json")).await;
    assert_eq!(status, 202, "{body}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(1), "Retry-After was honoured");
    assert_eq!(t.rows("NoxysEvents_CL").len(), 1, "retries never duplicate");
    let health: Value = t.http.get(format!("{}/api/health", t.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["counts"]["streams"]["Custom-NoxysEvents_CL"]["retries"], 5, "{health}");
}

#[tokio::test]
async fn a_token_endpoint_outage_is_retried() {
    let t = TestBridge::start(&[]).await;
    t.ws.workspace.faults.add(FaultSpec::new(Endpoint::Token, FaultKind::Status { status: 503, retry_after_secs: None }, 2));
    let (status, body) = t.post("noxys", NOXYS_TOKEN, fixture("noxys-policy-violated.json")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(t.rows("NoxysEvents_CL").len(), 1);
}

#[tokio::test]
async fn an_outage_past_the_deadline_is_a_503_with_retry_after() {
    let t = TestBridge::start(&[("INGEST_DEADLINE_SECS", "1")]).await;
    t.ws.workspace.faults.add(FaultSpec {
        count: None,
        for_millis: Some(5_000),
        ..FaultSpec::new(Endpoint::Ingestion, FaultKind::Status { status: 503, retry_after_secs: None }, 0)
    });
    let r = t.http.post(format!("{}/api/webhook/noxys", t.url)).bearer_auth(NOXYS_TOKEN).body(fixture("noxys-policy-violated.json")).send().await.unwrap();
    assert_eq!(r.headers()["retry-after"], "30");
    let b = expect_error(r, 503, "IngestionUnavailable").await;
    assert!(b["error"]["message"].as_str().unwrap().contains("503"), "{b}");
    let health: Value = t.http.get(format!("{}/api/health", t.url)).send().await.unwrap().json().await.unwrap();
    assert!(health["counts"]["streams"]["Custom-NoxysEvents_CL"]["lastError"].as_str().unwrap().starts_with("Deadline"));
}

#[tokio::test]
async fn a_413_splits_the_call_and_every_row_lands_once() {
    let t = TestBridge::start(&[]).await;
    t.ws.workspace.faults.add(FaultSpec::new(Endpoint::Ingestion, FaultKind::Status { status: 413, retry_after_secs: None }, 1));
    let events: Vec<Value> = (0..9).map(|i| json!({"id": format!("e{i}"), "event_type": "interaction.created", "timestamp": "2026-03-20T14:32:00Z"})).collect();
    let (status, body) = t.post("noxys", NOXYS_TOKEN, Value::Array(events).to_string()).await;
    assert_eq!(status, 202, "{body}");
    let mut ids: Vec<String> = t.rows("NoxysEvents_CL").iter().map(|r| r["EventId"].as_str().unwrap().to_string()).collect();
    ids.sort();
    assert_eq!(ids, (0..9).map(|i| format!("e{i}")).collect::<Vec<_>>());
    assert_eq!(t.ws.workspace.calls().len(), 2, "one refused call became two halves");
}

#[tokio::test]
async fn a_record_too_large_for_any_call_is_refused_with_413() {
    let t = TestBridge::start(&[("WEBHOOK_MAX_BODY_BYTES", "4194304")]).await;
    let big = json!({"id": "big", "event_type": "interaction.created", "timestamp": "2026-03-20T14:32:00Z", "blob": "x".repeat(1_100_000)});
    let r = t.http.post(format!("{}/api/webhook/noxys", t.url)).bearer_auth(NOXYS_TOKEN).body(big.to_string()).send().await.unwrap();
    expect_error(r, 413, "RecordTooLarge").await;
    assert!(t.ws.workspace.calls().is_empty());
}

#[tokio::test]
async fn azure_refusing_our_identity_is_surfaced_with_its_code() {
    // A token for the wrong audience: the workspace answers 403 InvalidAuthenticationTokenAudience, as Azure does.
    let t = TestBridge::start(&[("LOGS_INGESTION_SCOPE", "https://management.azure.com/.default")]).await;
    let r = t.http.post(format!("{}/api/webhook/noxys", t.url)).bearer_auth(NOXYS_TOKEN).body(fixture("noxys-policy-violated.json")).send().await.unwrap();
    let b = expect_error(r, 503, "IngestionRejected").await;
    assert!(b["error"]["message"].as_str().unwrap().contains("InvalidAuthenticationTokenAudience"), "{b}");
    let health: Value = t.http.get(format!("{}/api/health", t.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["counts"]["streams"]["Custom-NoxysEvents_CL"]["lastError"], "InvalidAuthenticationTokenAudience");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[tokio::test]
async fn content_encoding_is_honoured() {
    let t = TestBridge::start(&[("WEBHOOK_MAX_BODY_BYTES", "65536")]).await;
    let url = format!("{}/api/webhook/noxys", t.url);
    let sample = fixture("noxys-policy-violated.json");
    let send = |coding: &'static str, body: Vec<u8>| {
        t.http.post(&url).bearer_auth(NOXYS_TOKEN).header("content-type", "application/json").header("content-encoding", coding).body(body).send()
    };
    let r = send("gzip", gzip(sample.as_bytes())).await.unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    assert_eq!(t.rows("NoxysEvents_CL").len(), 1);
    // Labelled gzip, sent plain: the label is wrong, and nothing is guessed.
    expect_error(send("gzip", sample.clone().into_bytes()).await.unwrap(), 400, "InvalidContentEncoding").await;
    let b = expect_error(send("br", sample.clone().into_bytes()).await.unwrap(), 415, "UnsupportedContentEncoding").await;
    assert!(b["error"]["message"].as_str().unwrap().contains("'br'"), "{b}");
    // A gzip bomb: 64 KiB on the wire would be 50 MB decompressed; the limit applies to what it decompresses to.
    let bomb = gzip(&vec![b' '; 50 * 1024 * 1024]);
    assert!(bomb.len() < 65536);
    expect_error(send("gzip", bomb).await.unwrap(), 413, "BodyTooLarge").await;
    assert_eq!(t.rows("NoxysEvents_CL").len(), 1);
}

#[tokio::test]
async fn any_text_in_a_time_field_is_a_400_not_a_dropped_connection() {
    let t = TestBridge::start(&[]).await;
    for ts in ["€€a", "2026-03-20T14:3€", "€€€€€€€€€€€", "\u{0}"] {
        let body = serde_json::json!({"event_type": "interaction.high_risk", "timestamp": ts, "id": "e-1", "data": {}}).to_string();
        let (status, b) = t.post("noxys", NOXYS_TOKEN, body).await;
        assert_eq!(status, 400, "{ts}: {b}");
        assert_eq!(b["error"]["code"], "InvalidEvent", "{ts}: {b}");
    }
    // A percent-encoded terminal escape in the source name comes back harmless.
    let r = t.http.post(format!("{}/api/webhook/%1B%5B31mx", t.url)).bearer_auth(NOXYS_TOKEN).body("{}").send().await.unwrap();
    let b = expect_error(r, 404, "UnknownSource").await;
    assert!(!b["error"]["message"].as_str().unwrap().contains('\u{1b}'), "{b}");
}

/// Every row of the README's answers table, produced through the router itself (`app().oneshot()`): the
/// table is a promise, and this keeps it.
#[tokio::test]
async fn the_readme_answers_table_holds() {
    use sentinel_bridge::app::app;
    use tower::ServiceExt;
    let readme = std::fs::read_to_string(format!("{}/README.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let section = &readme[readme.find("### Answers").unwrap()..];
    let section = &section[..section.find("\n## ").unwrap()];
    let rows: Vec<(u16, String)> = section
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let status: u16 = cells.get(1)?.parse().ok()?;
            Some(cells[2].split(" / ").map(|c| (status, c.trim_matches('`').to_string())).collect::<Vec<_>>())
        })
        .flatten()
        .collect();
    assert!(rows.len() >= 12, "{rows:?}");

    let t = TestBridge::start(&[("WEBHOOK_MAX_BODY_BYTES", "2097152"), ("INGEST_DEADLINE_SECS", "1"), ("HTTP_BODY_TIMEOUT_SECS", "1")]).await;
    let sample = fixture("noxys-policy-violated.json");
    let post = |path: &str, token: Option<&str>, headers: &[(&str, &str)], body: Vec<u8>| {
        let mut b = axum::http::Request::post(path);
        if let Some(tok) = token {
            b = b.header("authorization", format!("Bearer {tok}"));
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(axum::body::Body::from(body)).unwrap()
    };
    for (status, code) in rows {
        let noxys = "/api/webhook/noxys";
        let req = match code.as_str() {
            "InvalidJson" => post(noxys, Some(NOXYS_TOKEN), &[], b"{\"id\": ".to_vec()),
            "InvalidEvent" => post(noxys, Some(NOXYS_TOKEN), &[], b"[1, 2]".to_vec()),
            "InvalidContentEncoding" => post(noxys, Some(NOXYS_TOKEN), &[("content-encoding", "gzip")], sample.clone().into_bytes()),
            "Unauthorized" => post(noxys, Some("wrong-token"), &[], sample.clone().into_bytes()),
            "UnknownSource" => post("/api/webhook/nope", Some(NOXYS_TOKEN), &[], sample.clone().into_bytes()),
            "NotFound" => post("/api/nothing", None, &[], Vec::new()),
            "BodyTooLarge" => post(noxys, Some(NOXYS_TOKEN), &[], vec![b' '; 3 * 1024 * 1024]),
            "TooManyEvents" => post(noxys, Some(NOXYS_TOKEN), &[], format!("[{}]", vec!["{}"; 5_001].join(",")).into_bytes()),
            "BodyTimeout" => {
                // A body that sends its first bytes and then nothing more.
                let stalled = futures::StreamExt::chain(
                    futures::stream::iter([Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"[{"))]),
                    futures::stream::pending(),
                );
                axum::http::Request::post(noxys).header("authorization", format!("Bearer {NOXYS_TOKEN}")).body(axum::body::Body::from_stream(stalled)).unwrap()
            }
            "RecordTooLarge" => {
                let big = json!({"id": "big", "event_type": "interaction.created", "timestamp": "2026-03-20T14:32:00Z", "blob": "x".repeat(1_100_000)});
                post(noxys, Some(NOXYS_TOKEN), &[], big.to_string().into_bytes())
            }
            "UnsupportedMediaType" => post(noxys, Some(NOXYS_TOKEN), &[("content-type", "text/plain")], sample.clone().into_bytes()),
            "UnsupportedContentEncoding" => post(noxys, Some(NOXYS_TOKEN), &[("content-encoding", "br")], sample.clone().into_bytes()),
            "IngestionUnavailable" | "IngestionRejected" => {
                let status = if code == "IngestionUnavailable" { 503 } else { 403 };
                t.ws.workspace.faults.add(FaultSpec::new(Endpoint::Ingestion, FaultKind::Status { status, retry_after_secs: None }, 1000));
                post(noxys, Some(NOXYS_TOKEN), &[], sample.clone().into_bytes())
            }
            other => panic!("the README names a code this test does not know how to produce: {other}"),
        };
        let resp = app(t.bridge.state.clone()).oneshot(req).await.unwrap();
        t.ws.workspace.faults.clear();
        assert_eq!(resp.status().as_u16(), status, "{code}");
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], code.as_str(), "{v}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty(), "{v}");
    }
    assert!(t.rows("NoxysEvents_CL").is_empty());
}

#[tokio::test]
async fn open_sources_are_refused_under_the_functions_host() {
    let path = std::env::temp_dir().join(format!("sb-open-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(
        &path,
        "[[source]]\nname = \"trial\"\nauth = { mode = \"bearer\", open = true }\n[[source.table]]\nname = \"Trial_CL\"\ntime = \"received\"\n",
    )
    .unwrap();
    let vars = |hosted: bool| {
        let mut v = vec![
            ("WEBHOOK_SOURCES_FILE".to_string(), path.display().to_string()),
            ("LOGS_INGESTION_ENDPOINT".to_string(), "local".to_string()),
            ("SPILL".to_string(), "off".to_string()),
            ("SENTINEL_BRIDGE_DATA_DIR".to_string(), std::env::temp_dir().join(format!("sb-open-{}", uuid::Uuid::new_v4())).display().to_string()),
        ];
        if hosted {
            v.push(("FUNCTIONS_CUSTOMHANDLER_PORT".to_string(), "7071".to_string()));
        }
        sentinel_bridge::settings::Settings::from_vars(v).unwrap()
    };
    let err = sentinel_bridge::app::Bridge::build(&vars(true)).await.err().expect("refused under the host");
    assert!(err.to_string().contains("'trial' is open"), "{err}");
    let local = sentinel_bridge::app::Bridge::build(&vars(false)).await.expect("allowed for local trials");
    local.shutdown().await;
}

#[tokio::test]
async fn what_azure_would_refuse_or_truncate_is_refused_up_front_naming_the_limit() {
    let t = TestBridge::start(&[("WEBHOOK_MAX_BODY_BYTES", "4194304")]).await;
    let url = format!("{}/api/webhook/generic", t.url);
    let mut deep = json!("bottom");
    for _ in 0..70 {
        deep = json!({"d": deep});
    }
    let body = json!([{"type": "fine"}, {"type": "deep", "x": deep}]);
    let r = t.http.post(&url).bearer_auth(GENERIC_TOKEN).body(body.to_string()).send().await.unwrap();
    let b = expect_error(r, 400, "NestingTooDeep").await;
    let m = b["error"]["message"].as_str().unwrap();
    assert!(m.contains("event 1") && m.contains("Webhook_CL") && m.contains("at most 63"), "{m}");
    // Over Azure's 64 KB per field: Azure would truncate the dynamic Payload into broken JSON.
    let body = json!({"type": "long", "text": "y".repeat(70_000)});
    let r = t.http.post(&url).bearer_auth(GENERIC_TOKEN).body(body.to_string()).send().await.unwrap();
    let b = expect_error(r, 413, "FieldTooLarge").await;
    assert!(b["error"]["message"].as_str().unwrap().contains("'Payload'"), "{b}");
    // Nothing of a refused request was sent, not even its acceptable events.
    assert!(t.ws.workspace.calls().is_empty());
    let (status, body) = t.post("generic", GENERIC_TOKEN, json!({"type": "ok", "text": "y".repeat(60_000)}).to_string()).await;
    assert_eq!(status, 202, "{body}");
}

/// Azure answers 204 to a call whatever its records hold and refuses none of them for their content
/// (contract §1): an event whose value the deployed table cannot type lands with that value null, beside the
/// innocent event of the same call; the sender hears 202, and nothing is bisected or spilled.
#[tokio::test]
async fn an_event_the_deployed_table_cannot_type_lands_with_that_value_null() {
    let spill = std::env::temp_dir().join(format!("sb-drifted-{}", uuid::Uuid::new_v4()));
    let spill_setting = format!("dir:{}", spill.display());
    // A long linger so that both requests share one ingestion call.
    let t = TestBridge::start_with(drifted_workspace(), &[("BATCH_LINGER_MS", "300"), ("SPILL", &spill_setting)]).await;
    let drifted = t.post("generic", GENERIC_TOKEN, json!({"type": "typed-as-a-number-by-the-drifted-column", "n": 1}).to_string());
    let good = t.post("generic", GENERIC_TOKEN, json!({"n": 2}).to_string());
    let ((drifted_status, drifted_body), (good_status, good_body)) = futures::future::join(drifted, good).await;
    assert_eq!((good_status, drifted_status), (202, 202), "{good_body} {drifted_body}");
    let rows = t.rows("Webhook_CL");
    assert_eq!(rows.len(), 2);
    let landed = rows.iter().find(|r| r["Payload"]["n"] == 1).unwrap();
    assert!(landed.get("EventType").is_none_or(Value::is_null), "{landed}");
    // One call took both: nothing was bisected.
    assert_eq!(t.ws.workspace.calls().iter().map(|c| c.rows).collect::<Vec<_>>(), [2]);
    let health: Value = t.http.get(format!("{}/api/health", t.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["spill"]["batches"], 0, "{health}");
    let _ = std::fs::remove_dir_all(&spill);
}

/// A data collection rule holds ten streams: past them, tables go to another rule on the same endpoint and
/// `DCR_STREAM_RULES` names them. The workspace refuses a stream its rule does not declare, as Azure does.
#[tokio::test]
async fn streams_of_a_second_rule_are_sent_to_it() {
    let split = || {
        let mut cfg = builtin_workspace_config();
        let streams: Vec<String> = cfg.tables.iter().map(|t| t.stream_name()).collect();
        let (second, first): (Vec<String>, Vec<String>) = streams.into_iter().partition(|s| s == "Custom-Apono_CL");
        cfg.rules = vec![("dcr-test0001".into(), first), ("dcr-second".into(), second)];
        cfg
    };
    let t = TestBridge::start_with(split(), &[("DCR_STREAM_RULES", "Custom-Apono_CL=dcr-second")]).await;
    let (status, body) = t.post("apono", APONO_TOKEN, fixture("apono-request-granted.json")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(t.rows("Apono_CL").len(), 1);
    assert_eq!(t.ws.workspace.calls()[0].dcr, "dcr-second");
    assert_eq!(t.post("noxys", NOXYS_TOKEN, fixture("noxys-policy-violated.json")).await.0, 202, "the other streams stay on the first rule");

    // Without the setting the first rule is asked for a stream it does not carry: refused, not landed.
    let t = TestBridge::start_with(split(), &[]).await;
    let (status, body) = t.post("apono", APONO_TOKEN, fixture("apono-request-granted.json")).await;
    assert_ne!(status, 202, "{body}");
    assert!(body.to_string().contains("InvalidStream"), "{body}");
    assert!(t.rows("Apono_CL").is_empty());
}

#[test]
fn a_rule_holds_at_most_ten_streams() {
    let mut cfg = builtin_workspace_config();
    let mut streams: Vec<String> = cfg.tables.iter().map(|t| t.stream_name()).collect();
    streams.extend(["Microsoft-Perf", "Microsoft-SigninLogs", "Microsoft-AzureActivity", "Microsoft-AzureMetrics"].map(String::from));
    assert!(streams.len() > 10);
    cfg.rules = vec![("dcr-big".into(), streams)];
    let err = sentinel_bridge::local_azure::Workspace::open(cfg).err().unwrap();
    assert!(err.to_string().contains("at most 10"), "{err}");
}

/// A gzip body is read whole: a sender's multi-member stream (one member per chunk it compressed) lands every
/// event, and bytes after the last member that are not gzip are refused rather than silently dropped.
#[tokio::test]
async fn a_multi_member_gzip_body_is_read_whole_and_trailing_garbage_is_refused() {
    let t = TestBridge::start(&[]).await;
    let url = format!("{}/api/webhook/noxys", t.url);
    let sample = fixture("noxys-policy-violated.json");
    let mut second: Value = serde_json::from_str(&sample).unwrap();
    second["id"] = json!("evt_second_member");
    let (head, tail) = (format!("[{sample}"), format!(",{second}]"));
    let body = [gzip(head.as_bytes()), gzip(tail.as_bytes())].concat();
    let send = |body: Vec<u8>| {
        t.http.post(&url).bearer_auth(NOXYS_TOKEN).header("content-type", "application/json").header("content-encoding", "gzip").body(body).send()
    };
    let r = send(body).await.unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    assert_eq!(t.rows("NoxysEvents_CL").len(), 2, "both members' events landed");
    let mut garbage = gzip(sample.as_bytes());
    garbage.extend_from_slice(b"not gzip at all");
    expect_error(send(garbage).await.unwrap(), 400, "InvalidContentEncoding").await;
    assert_eq!(t.rows("NoxysEvents_CL").len(), 2);
}

/// The work one request causes is bounded by its events, not only its bytes: a mebibyte of `{}` is 340,000
/// events; past `WEBHOOK_MAX_EVENTS` the request is a 413 naming the bound, and nothing of it is ingested.
#[tokio::test]
async fn a_body_of_more_events_than_the_bound_is_a_413_and_nothing_lands() {
    let t = TestBridge::start(&[]).await;
    let empties = format!("[{}]", vec!["{}"; 340_000].join(","));
    let (status, body) = t.post("generic", GENERIC_TOKEN, empties).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "TooManyEvents");
    assert!(body["error"]["message"].as_str().unwrap().contains("WEBHOOK_MAX_EVENTS"), "{body}");
    let t = TestBridge::start(&[("WEBHOOK_MAX_EVENTS", "2")]).await;
    let sample: Value = serde_json::from_str(&fixture("noxys-policy-violated.json")).unwrap();
    let (status, body) = t.post("noxys", NOXYS_TOKEN, json!([sample, sample, sample]).to_string()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (413, Some("TooManyEvents")), "{body}");
    assert!(t.rows("NoxysEvents_CL").is_empty());
    let (status, body) = t.post("noxys", NOXYS_TOKEN, json!([sample, sample]).to_string()).await;
    assert_eq!(status, 202, "{body}");
}

/// Every shipped analytics rule sees an event that reaches us late (posted hours after the vendor's time, as
/// TrapEye posts threats after `first_interaction` or a sender backdates): TimeGenerated is when the bridge
/// handed the row to Azure, EventTime keeps the vendor's time, and each rule reads `ingestion_time()` within
/// its frequency over a period that covers Azure's ingestion delay, as `rules test` models Sentinel's run.
#[tokio::test]
async fn every_shipped_rule_sees_an_event_accepted_late() {
    let t = TestBridge::start(&[]).await;
    let hours_ago = sentinel_bridge::model::time::format_datetime(time::OffsetDateTime::now_utc() - time::Duration::hours(6));
    let noxys = |n: usize, kind: &str, platform: &str| -> Value {
        let events: Vec<Value> = (0..n)
            .map(|i| {
                json!({"id": format!("evt_{kind}_{i}"), "timestamp": hours_ago, "event_type": kind, "tenant_id": "t",
                    "data": {"id": format!("int_{i}"), "user_id": "carol@contoso.com", "platform_id": platform, "risk_score": 0.95,
                        "classifications": [{"type": "IBAN", "value": "FR76…", "score": 0.99}], "policy_decisions": [{"action": "block"}]}})
            })
            .collect();
        Value::Array(events)
    };
    let (status, body) = t.post("noxys", NOXYS_TOKEN, noxys(11, "interaction.policy_violated", "deepseek").to_string()).await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = t.post("noxys", NOXYS_TOKEN, noxys(6, "interaction.high_risk", "grok").to_string()).await;
    assert_eq!(status, 202, "{body}");
    let mut threat: Value = serde_json::from_str(&fixture("trapeye-threat.json")).unwrap();
    threat["first_interaction"] = json!(hours_ago);
    let (status, body) = t.post("trapeye", TRAPEYE_TOKEN, threat.to_string()).await;
    assert_eq!(status, 202, "{body}");
    let mut grant: Value = serde_json::from_str(&fixture("apono-request-granted.json")).unwrap();
    grant["event_time"] = json!(hours_ago);
    let (status, body) = t.post("apono", APONO_TOKEN, grant.to_string()).await;
    assert_eq!(status, 202, "{body}");
    let rules =
        sentinel_bridge::cli::rules::parse_rules(&std::fs::read_to_string(format!("{}/infra/rules.json", env!("CARGO_MANIFEST_DIR"))).unwrap()).unwrap();
    for r in sentinel_bridge::cli::rules::test_rules(&rules, &t.ws.workspace, sentinel_bridge::model::time::now_ticks()) {
        assert!(r.error.is_none() && r.fires, "{} does not see events accepted late: {r:?}", r.name);
    }
    // The vendor's own time is kept.
    assert!(t.rows("TrapEye_Threats_CL").iter().all(|r| r["EventTime"] == json!(hours_ago)));
}

/// A sender's name for a source is echoed and logged with its hidden characters made visible: a right-to-left
/// override or a zero-width space cannot disguise what an operator reads.
#[tokio::test]
async fn outside_names_are_echoed_with_hidden_characters_made_visible() {
    let t = TestBridge::start(&[]).await;
    let r = t.http.post(format!("{}/api/webhook/nox%E2%80%AEys%E2%80%8B", t.url)).bearer_auth(NOXYS_TOKEN).body("{}").send().await.unwrap();
    let b = expect_error(r, 404, "UnknownSource").await;
    let m = b["error"]["message"].as_str().unwrap();
    assert!(m.contains("nox\\u{202e}ys\\u{200b}") && !m.contains('\u{202E}'), "{m}");
}

/// A Standard Webhooks sender that hangs up before its answer does not cancel the delivery half way: the
/// request finishes in a task that owns its claim, the rows land once, and the sender's retry of the same
/// message is a duplicate, not a second ingestion.
#[tokio::test]
async fn a_sender_that_hangs_up_leaves_its_delivery_finished_and_its_retry_a_duplicate() {
    let key = b"standard-webhooks-key-32-bytes!!";
    let whsec = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(key));
    let file = user_mapping(STDHOOKS_SOURCE);
    let config = workspace_for_mapping(&file);
    // A long linger: the delivery is still waiting for its call when the sender gives up.
    let t = TestBridge::start_with(config, &[("WEBHOOK_SOURCES_FILE", &file), ("SOURCE_STDHOOKS_SECRETS", &whsec), ("BATCH_LINGER_MS", "800")]).await;
    let body = r#"{"kind":"a"}"#;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let send = |timeout: Duration| {
        t.http
            .post(format!("{}/api/webhook/stdhooks", t.url))
            .timeout(timeout)
            .header("webhook-id", "msg_hangup")
            .header("webhook-timestamp", now.to_string())
            .header("webhook-signature", standard_webhooks_signature(key, "msg_hangup", now, body.as_bytes()))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert!(send(Duration::from_millis(150)).await.is_err(), "the sender hung up before the answer");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(t.rows("Std_CL").len(), 1, "the delivery finished without its sender");
    let r = send(Duration::from_secs(10)).await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.json::<Value>().await.unwrap()["duplicate"], true);
    assert_eq!(t.rows("Std_CL").len(), 1);
}
