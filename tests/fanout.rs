//! Fan-out to Sekoia XDR beside Sentinel (seed 001), and the durable spill that keeps one destination's outage
//! from costing the other anything: each destination filters, delivers, fails and recovers on its own.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sentinel_bridge::local_azure::{Endpoint, FaultKind, FaultSpec};
use serde_json::{json, Value};

const FANOUT: (&str, &str) = ("SOURCE_NOXYS_DESTINATIONS", "sentinel,sekoia");

fn spill_dir() -> String {
    format!("dir:{}", std::env::temp_dir().join(format!("sb-spill-{}", uuid::Uuid::new_v4())).display())
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn event(kind: &str, id: &str) -> String {
    let mut v: Value = serde_json::from_str(&fixture("noxys-policy-violated.json")).unwrap();
    v["event_type"] = json!(kind);
    v["id"] = json!(id);
    v.to_string()
}

#[tokio::test]
async fn one_post_reaches_both_and_filters_differ_per_destination() {
    let t = TestBridge::start(&[FANOUT]).await;
    let (status, body) = t.post("noxys", NOXYS_TOKEN, fixture("noxys-policy-violated.json")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body, json!({"accepted": 1, "table": "NoxysEvents_CL", "sekoia": 1}));
    assert_eq!(t.rows("NoxysEvents_CL").len(), 1);
    let sent = t.ws.workspace.sekoia_events();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].intake_key, "test-intake-key");
    assert_eq!(sent[0].timestamp.as_deref(), Some("2026-03-20T14:32:00Z"), "the event's own time is passed on");
    let original: Value = serde_json::from_str(&fixture("noxys-policy-violated.json")).unwrap();
    let got: Value = serde_json::from_str(&sent[0].json).unwrap();
    assert_eq!(got["source"], "noxys", "tagged so Sekoia finds it as source=\"noxys\"");
    for (k, v) in original.as_object().unwrap() {
        assert_eq!(&got[k], v, "the original event is sent as it came ({k})");
    }
    // interaction.created is not in seed 001's list: Sentinel only.
    let (status, body) = t.post("noxys", NOXYS_TOKEN, event("interaction.created", "evt_created")).await;
    assert_eq!(status, 202);
    assert_eq!(body, json!({"accepted": 1, "table": "NoxysEvents_CL"}));
    assert_eq!(t.ws.workspace.sekoia_events().len(), 1);
    assert_eq!(t.rows("NoxysEvents_CL").len(), 2);
    let health: Value = t.http.get(format!("{}/api/health", t.url)).send().await.unwrap().json().await.unwrap();
    let noxys = health["sources"].as_array().unwrap().iter().find(|s| s["name"] == "noxys").unwrap().clone();
    assert_eq!(noxys["destinations"], json!(["sentinel", "sekoia"]));
    assert_eq!(health["counts"]["streams"]["sekoia:noxys"]["rows"], 1);
}

#[tokio::test]
async fn sekoia_down_does_not_hold_sentinel_and_catches_up_later() {
    let t = TestBridge::start(&[FANOUT, ("SPILL", &spill_dir()), ("INGEST_DEADLINE_SECS", "1")]).await;
    t.ws.workspace.faults.add(outage(Endpoint::Sekoia, 120));
    let started = Instant::now();
    let (status, body) = t.post("noxys", NOXYS_TOKEN, fixture("noxys-policy-violated.json")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["spooled"], 1, "{body}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(t.rows("NoxysEvents_CL").len(), 1, "Sentinel got its row promptly");
    assert!(t.ws.workspace.sekoia_events().is_empty());
    t.ws.workspace.faults.clear();
    eventually("Sekoia to get the event once it is back", || t.ws.workspace.sekoia_events().len() == 1).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(t.ws.workspace.sekoia_events().len(), 1, "delivered once");
    assert_eq!(t.rows("NoxysEvents_CL").len(), 1, "and never duplicated to Sentinel");
    let health: Value = t.http.get(format!("{}/api/health", t.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["spill"]["redeliveredRows"], 1);
    assert_eq!(health["spill"]["batches"], 0);
}

#[tokio::test]
async fn sentinel_down_does_not_hold_sekoia() {
    let t = TestBridge::start(&[FANOUT, ("SPILL", &spill_dir()), ("INGEST_DEADLINE_SECS", "1")]).await;
    t.ws.workspace.faults.add(outage(Endpoint::Ingestion, 120));
    let (status, body) = t.post("noxys", NOXYS_TOKEN, fixture("noxys-policy-violated.json")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["spooled"], 1);
    assert_eq!(t.ws.workspace.sekoia_events().len(), 1, "Sekoia got it at once");
    t.ws.workspace.faults.clear();
    eventually("the spooled row to reach Sentinel", || t.rows("NoxysEvents_CL").len() == 1).await;
    assert_eq!(t.ws.workspace.sekoia_events().len(), 1);
}

#[tokio::test]
async fn a_throttled_sekoia_is_retried_in_time() {
    let t = TestBridge::start(&[FANOUT]).await;
    t.ws.workspace.faults.add(FaultSpec::new(Endpoint::Sekoia, FaultKind::Status { status: 429, retry_after_secs: Some(1) }, 1));
    let (status, body) = t.post("noxys", NOXYS_TOKEN, fixture("noxys-policy-violated.json")).await;
    assert_eq!(status, 202, "{body}");
    assert!(body.get("spooled").is_none());
    assert_eq!(t.ws.workspace.sekoia_events().len(), 1);
    let health: Value = t.http.get(format!("{}/api/health", t.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["counts"]["streams"]["sekoia:noxys"]["retries"], 1);
}

#[tokio::test]
async fn a_permanent_refusal_is_reported_and_the_event_kept_for_replay() {
    let mut cfg = builtin_workspace_config();
    cfg.sekoia_intake_key = Some("the-right-key".into());
    let t = TestBridge::start_with(cfg, &[FANOUT, ("SPILL", &spill_dir())]).await;
    let (status, body) = t.post("noxys", NOXYS_TOKEN, fixture("noxys-policy-violated.json")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["spooled"], 1);
    assert_eq!(t.rows("NoxysEvents_CL").len(), 1);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let health: Value = t.http.get(format!("{}/api/health", t.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["counts"]["streams"]["sekoia:noxys"]["lastError"], "HTTP401", "{health}");
    assert_eq!(health["spill"]["queues"]["sekoia:noxys"]["batches"], 1, "kept for replay: {health}");
    assert!(health["spill"]["queues"]["sekoia:noxys"]["lastError"].as_str().unwrap().contains("401"));
}

#[tokio::test]
async fn without_a_spill_an_outage_is_a_503_and_nothing_is_claimed() {
    let t = TestBridge::start(&[FANOUT, ("INGEST_DEADLINE_SECS", "1")]).await;
    t.ws.workspace.faults.add(FaultSpec {
        count: None,
        for_millis: Some(3_000),
        ..FaultSpec::new(Endpoint::Sekoia, FaultKind::Status { status: 503, retry_after_secs: None }, 0)
    });
    let (status, body) = t.post("noxys", NOXYS_TOKEN, fixture("noxys-policy-violated.json")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "IngestionUnavailable");
}

#[tokio::test]
async fn spooled_rows_survive_a_restart_and_arrive_once() {
    let dir = spill_dir();
    let t = TestBridge::start(&[("SPILL", &dir), ("INGEST_DEADLINE_SECS", "1")]).await;
    // Down until the test says otherwise, however slow the machine is.
    t.ws.workspace.faults.add(outage(Endpoint::Ingestion, 120));
    for i in 0..5 {
        let (status, body) = t.post("noxys", NOXYS_TOKEN, event("interaction.created", &format!("evt_{i}"))).await;
        assert_eq!((status, body["spooled"].clone()), (202, json!(1)), "{body}");
    }
    // The bridge stops with the rows still spooled; a new one over the same spill delivers them.
    let TestBridge { ws, bridge, .. } = t;
    bridge.shutdown().await;
    ws.workspace.faults.clear();
    let settings = sentinel_bridge::settings::Settings::from_vars([
        ("LOGS_INGESTION_ENDPOINT".to_string(), ws.url()),
        ("DCR_IMMUTABLE_ID".to_string(), "dcr-test0001".to_string()),
        ("SPILL".to_string(), dir.clone()),
    ])
    .unwrap();
    let cred = std::sync::Arc::new(sentinel_bridge::azure::identity::LoopbackClientCredential::new(&ws.url(), "t", "c", "s"));
    let again = sentinel_bridge::app::Bridge::build_with_credential(&settings, cred).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(25);
    while ws.workspace.rows("NoxysEvents_CL").len() < 5 {
        assert!(Instant::now() < deadline, "spooled rows did not arrive");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut ids: Vec<String> = ws.workspace.rows("NoxysEvents_CL").iter().map(|r| r["EventId"].as_str().unwrap().to_string()).collect();
    ids.sort();
    assert_eq!(ids, (0..5).map(|i| format!("evt_{i}")).collect::<Vec<_>>(), "each exactly once, in order of acceptance");
    again.shutdown().await;
}

fn dir_of(setting: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(setting.trim_start_matches("dir:"))
}

async fn health(t: &TestBridge) -> Value {
    t.http.get(format!("{}/api/health", t.url)).send().await.unwrap().json().await.unwrap()
}

/// Azure refuses no record for its content (contract §1): a spilled batch holding a value the deployed table
/// cannot type is taken whole on redelivery, that value stored as null as Azure stores it, and nothing is
/// dead-lettered or left behind.
#[tokio::test]
async fn a_spilled_batch_with_a_drifted_column_lands_whole_and_nothing_blocks_the_queue() {
    let spill = spill_dir();
    let t = TestBridge::start_with(drifted_workspace(), &[("SPILL", &spill), ("INGEST_DEADLINE_SECS", "1")]).await;
    t.ws.workspace.faults.add(outage(Endpoint::Ingestion, 120));
    // Accepted while Azure is down: one batch holding a value the deployed table's column cannot take beside
    // an innocent record, then a batch behind it.
    let (status, body) = t.post("generic", GENERIC_TOKEN, json!([{"type": "drifted"}, {"n": 1}]).to_string()).await;
    assert_eq!((status, body["spooled"].clone()), (202, json!(2)), "{body}");
    let (status, body) = t.post("generic", GENERIC_TOKEN, json!({"n": 2}).to_string()).await;
    assert_eq!((status, body["spooled"].clone()), (202, json!(1)), "{body}");
    t.ws.workspace.faults.clear();
    eventually("every row", || t.rows("Webhook_CL").len() == 3).await;
    let mut h = health(&t).await;
    for _ in 0..50 {
        if h["spill"]["batches"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        h = health(&t).await;
    }
    assert_eq!(h["spill"]["batches"], 0, "nothing blocks the queue: {h}");
    assert_eq!(h["spill"]["deadLetter"]["batches"], 0, "{h}");
    let rows = t.rows("Webhook_CL");
    let drifted = rows.iter().find(|r| r["Payload"]["type"] == "drifted").expect("the drifted record landed");
    assert!(drifted.get("EventType").is_none_or(Value::is_null), "the value its column cannot take is null: {drifted}");
    assert!(t.ws.workspace.stats.nulled_values.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    let _ = std::fs::remove_dir_all(dir_of(&spill));
}

#[tokio::test]
async fn a_batch_that_keeps_failing_is_moved_aside_and_replayed_after_the_fix() {
    let spill = spill_dir();
    let t = TestBridge::start(&[("SPILL", &spill), ("INGEST_DEADLINE_SECS", "1"), ("SPILL_MAX_ATTEMPTS", "2")]).await;
    t.ws.workspace.faults.add(outage(Endpoint::Ingestion, 120));
    for i in 0..2 {
        let (status, body) = t.post("noxys", NOXYS_TOKEN, event("interaction.created", &format!("evt_{i}"))).await;
        assert_eq!((status, body["spooled"].clone()), (202, json!(1)), "{body}");
    }
    // Now the first batch is refused twice (a permission that is not there yet), then all is well.
    t.ws.workspace.faults.clear();
    t.ws.workspace.faults.add(FaultSpec::new(Endpoint::Ingestion, FaultKind::Status { status: 403, retry_after_secs: None }, 2));
    eventually("the batch behind the failing one", || t.rows("NoxysEvents_CL").len() == 1).await;
    assert_eq!(t.rows("NoxysEvents_CL")[0]["EventId"], "evt_1");
    let h = health(&t).await;
    assert_eq!(h["spill"]["deadLetter"]["batches"], 1, "{h}");
    assert!(h["spill"]["deadLetter"]["last"].as_str().unwrap().contains("after 2 attempts"), "{h}");
    // After the fix, the operator replays the dead letters; they arrive.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sentinel-bridge"))
        .args(["spill", "replay"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SPILL", &spill)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("moved 1 dead-letter batch"), "{}", String::from_utf8_lossy(&out.stdout));
    eventually("the replayed batch", || t.rows("NoxysEvents_CL").len() == 2).await;
    let _ = std::fs::remove_dir_all(dir_of(&spill));
}

/// The spill directory is bounded, and each source holds at most its share of it: a source in a storm hears
/// 503 once its share is full, the disk never fills, and every other source's events are still spooled.
#[tokio::test]
async fn a_full_spill_share_is_a_503_for_that_source_alone_not_a_full_disk() {
    let spill = spill_dir();
    // Four built-in sources share 4 MiB: 1 MiB each.
    let t = TestBridge::start(&[("SPILL", &spill), ("INGEST_DEADLINE_SECS", "1"), ("SPILL_MAX_BYTES", "4194304")]).await;
    t.ws.workspace.faults.add(outage(Endpoint::Ingestion, 120));
    let big = |i: usize| json!({"type": "bulk", "i": i, "text": "z".repeat(60_000)}).to_string();
    let mut answers = Vec::new();
    for i in 0..40 {
        let (status, body) = t.post("generic", GENERIC_TOKEN, big(i)).await;
        answers.push(status);
        if status != 202 {
            assert_eq!(status, 503, "{body}");
            break;
        }
    }
    assert_eq!(answers.last(), Some(&503), "past its share the sender hears 503: {answers:?}");
    assert!((15..=19).contains(&answers.len()), "the source's share (1 MiB of 60 KB batches) is what stops it: {answers:?}");
    // Another source in the same outage is still kept, not refused.
    let (status, body) = t.post("noxys", NOXYS_TOKEN, fixture("noxys-policy-violated.json")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["spooled"], 1, "{body}");
    let h = health(&t).await;
    assert!(h["spill"]["bytes"].as_u64().unwrap() <= 4_194_304, "{h}");
    let _ = std::fs::remove_dir_all(dir_of(&spill));
}

/// A redelivered row's TimeGenerated is when it was handed to Azure the second time, not when it was first
/// accepted: a scheduled rule sees a batch that waited out an outage longer than its period.
#[tokio::test]
async fn a_redelivered_row_is_stamped_when_it_is_handed_over_again() {
    let spill = spill_dir();
    let t = TestBridge::start(&[("SPILL", &spill), ("INGEST_DEADLINE_SECS", "1")]).await;
    t.ws.workspace.faults.add(outage(Endpoint::Ingestion, 120));
    let (status, body) = t.post("noxys", NOXYS_TOKEN, fixture("noxys-policy-violated.json")).await;
    assert_eq!((status, body["spooled"].clone()), (202, json!(1)), "{body}");
    let accepted = sentinel_bridge::model::time::now_ticks();
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    t.ws.workspace.faults.clear();
    eventually("the redelivered row", || t.rows("NoxysEvents_CL").len() == 1).await;
    let row = &t.rows("NoxysEvents_CL")[0];
    let stamped = sentinel_bridge::model::time::parse_datetime_ticks(row["TimeGenerated"].as_str().unwrap()).unwrap();
    assert!(stamped - accepted >= 2 * sentinel_bridge::model::time::TICKS_PER_SEC, "stamped at redelivery, not acceptance: {row}");
    assert_eq!(row["EventTime"], "2026-03-20T14:32:00Z");
    let _ = std::fs::remove_dir_all(dir_of(&spill));
}
