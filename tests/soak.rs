//! A bounded fault soak of the webhook path with the disk spill: concurrent senders post thousands of events
//! while the ingestion stand-in goes through a schedule of faults (a 429 storm with Retry-After, 500s, a full
//! outage, slow answers, dropped connections, a token endpoint outage) and `serve` is restarted mid-run.
//! Senders retry what was not answered 202, as vendors do. Afterwards every event answered 202 must be in the
//! table; the report prints delivered, duplicated and lost counts. Loopback only; about a minute.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use sentinel_bridge::app::{app, Bridge};
use sentinel_bridge::azure::identity::LoopbackClientCredential;
use sentinel_bridge::local_azure::{Endpoint, FaultKind, FaultSpec, RunningWorkspace};
use sentinel_bridge::settings::Settings;
use serde_json::json;

struct Server {
    bridge: Bridge,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(ws: &RunningWorkspace, port: u16, spill: &str) -> Server {
    let settings = Settings::from_vars([
        ("LOGS_INGESTION_ENDPOINT".to_string(), ws.url()),
        ("DCR_IMMUTABLE_ID".to_string(), "dcr-soak".to_string()),
        ("SOURCE_NOXYS_SECRETS".to_string(), NOXYS_TOKEN.to_string()),
        ("SPILL".to_string(), spill.to_string()),
        ("INGEST_DEADLINE_SECS".to_string(), "2".to_string()),
        ("BATCH_LINGER_MS".to_string(), "20".to_string()),
    ])
    .unwrap();
    let cred = Arc::new(LoopbackClientCredential::new(&ws.url(), "t", "c", "s"));
    let bridge = Bridge::build_with_credential(&settings, cred).await.unwrap();
    let listener = loop {
        match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => break l,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = app(bridge.state.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    Server { bridge, stop, task }
}

impl Server {
    /// As SIGTERM does: stop taking requests, finish those in flight, send what is buffered.
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
        self.bridge.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_answered_202_is_lost_through_a_fault_schedule_and_a_restart() {
    let ws = start_workspace(builtin_workspace_config()).await;
    let spill = format!("dir:{}", std::env::temp_dir().join(format!("sb-soak-{}", uuid::Uuid::new_v4())).display());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = Arc::new(tokio::sync::Mutex::new(Some(start(&ws, port, &spill).await)));

    const SENDERS: usize = 8;
    const POSTS: usize = 60;
    const PER_POST: usize = 8;
    let accepted: Arc<Mutex<HashSet<String>>> = Arc::default();
    let started = Instant::now();
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let accepted = accepted.clone();
        senders.push(tokio::spawn(async move {
            let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
            let mut unanswered = 0;
            for p in 0..POSTS {
                let ids: Vec<String> = (0..PER_POST).map(|i| format!("s{s}-p{p}-e{i}")).collect();
                let body = json!(ids
                    .iter()
                    .map(|id| json!({"id": id, "timestamp": "2026-03-20T14:32:00Z", "event_type": "interaction.created", "tenant_id": "t"}))
                    .collect::<Vec<_>>())
                .to_string();
                // Like a vendor: retry what was not answered 202, a few times, then give up on it.
                for attempt in 0..6 {
                    let r = http
                        .post(format!("http://127.0.0.1:{port}/api/webhook/noxys"))
                        .bearer_auth(NOXYS_TOKEN)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    if matches!(&r, Ok(resp) if resp.status().as_u16() == 202) {
                        accepted.lock().unwrap().extend(ids.iter().cloned());
                        break;
                    }
                    if attempt == 5 {
                        unanswered += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(300 * (attempt + 1))).await;
                }
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            unanswered
        }));
    }

    // The fault schedule, from the start of the run.
    let faults = &ws.workspace.faults;
    let at = |secs: f64| started + Duration::from_secs_f64(secs);
    tokio::time::sleep_until(at(1.0).into()).await;
    faults.add(FaultSpec {
        count: None,
        for_millis: Some(2_000),
        ..FaultSpec::new(Endpoint::Ingestion, FaultKind::Status { status: 429, retry_after_secs: Some(1) }, 0)
    });
    tokio::time::sleep_until(at(3.5).into()).await;
    faults.add(FaultSpec::new(Endpoint::Ingestion, FaultKind::Status { status: 500, retry_after_secs: None }, 15));
    tokio::time::sleep_until(at(5.0).into()).await;
    faults.add(FaultSpec {
        count: None,
        for_millis: Some(10_000),
        ..FaultSpec::new(Endpoint::Ingestion, FaultKind::Status { status: 503, retry_after_secs: None }, 0)
    });
    tokio::time::sleep_until(at(15.5).into()).await;
    faults.add(FaultSpec::new(Endpoint::Ingestion, FaultKind::Slow { millis: 1_500 }, 8));
    faults.add(FaultSpec::new(Endpoint::Ingestion, FaultKind::Drop, 8));
    tokio::time::sleep_until(at(17.5).into()).await;
    // A token endpoint outage: the cached token keeps working until it is dropped, so drop it with a restart.
    faults.add(FaultSpec {
        count: None,
        for_millis: Some(3_000),
        ..FaultSpec::new(Endpoint::Token, FaultKind::Status { status: 503, retry_after_secs: None }, 0)
    });
    let old = server.lock().await.take().unwrap();
    old.stop().await;
    *server.lock().await = Some(start(&ws, port, &spill).await);

    let mut unanswered = 0;
    for s in senders {
        unanswered += s.await.unwrap();
    }
    // Let the spill drain.
    let deadline = Instant::now() + Duration::from_secs(40);
    let health_url = format!("http://127.0.0.1:{port}/api/health");
    loop {
        let h: serde_json::Value = reqwest::get(&health_url).await.unwrap().json().await.unwrap();
        if h["spill"]["batches"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the spill did not drain: {}", h["spill"]);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let accepted = accepted.lock().unwrap().clone();
    let mut landed: HashMap<String, usize> = HashMap::new();
    for r in ws.workspace.rows("NoxysEvents_CL") {
        *landed.entry(r["EventId"].as_str().unwrap().to_string()).or_default() += 1;
    }
    let lost: Vec<&String> = accepted.iter().filter(|id| !landed.contains_key(*id)).collect();
    let duplicated: usize = landed.values().filter(|n| **n > 1).map(|n| n - 1).sum();
    let total = SENDERS * POSTS * PER_POST;
    println!(
        "soak: {total} events sent, {} answered 202, {} given up by senders, {} rows delivered ({} distinct), {duplicated} duplicated, {} lost, in {:.1} s",
        accepted.len(),
        unanswered * PER_POST,
        landed.values().sum::<usize>(),
        landed.len(),
        lost.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(lost.is_empty(), "events answered 202 but not in the table: {:?}", &lost[..lost.len().min(10)]);
    assert!(accepted.len() * 10 >= total * 9, "the spill should let almost everything through: {} of {total}", accepted.len());
    server.lock().await.take().unwrap().stop().await;
}
