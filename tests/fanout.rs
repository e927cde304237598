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
    t.ws.workspace.faults.add(FaultSpec { count: None, for_millis: Some(120_000), ..FaultSpec::new(Endpoint::Sekoia, FaultKind::Status { status: 503, retry_after_secs: None }, 0) });
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
    t.ws.workspace.faults.add(FaultSpec { count: None, for_millis: Some(120_000), ..FaultSpec::new(Endpoint::Ingestion, FaultKind::Status { status: 503, retry_after_secs: None }, 0) });
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
    t.ws.workspace.faults.add(FaultSpec { count: None, for_millis: Some(3_000), ..FaultSpec::new(Endpoint::Sekoia, FaultKind::Status { status: 503, retry_after_secs: None }, 0) });
    let (status, body) = t.post("noxys", NOXYS_TOKEN, fixture("noxys-policy-violated.json")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "IngestionUnavailable");
}

#[tokio::test]
async fn spooled_rows_survive_a_restart_and_arrive_once() {
    let dir = spill_dir();
    let t = TestBridge::start(&[("SPILL", &dir), ("INGEST_DEADLINE_SECS", "1")]).await;
    // Down until the test says otherwise, however slow the machine is.
    t.ws.workspace.faults.add(FaultSpec { count: None, for_millis: Some(120_000), ..FaultSpec::new(Endpoint::Ingestion, FaultKind::Status { status: 503, retry_after_secs: None }, 0) });
    for i in 0..5 {
        let (status, body) = t.post("noxys", NOXYS_TOKEN, event("interaction.created", &format!("evt_{i}"))).await;
        assert_eq!((status, body["spooled"].clone()), (202, json!(1)), "{body}");
    }
    // The bridge stops with the rows still spooled; a new one over the same spill delivers them.
    let TestBridge { ws, bridge, .. } = t;
    bridge.shutdown().await;
    ws.workspace.faults.clear();
    let settings = sentinel_bridge::app::settings::Settings::from_vars([
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
