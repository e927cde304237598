//! The `azure-queue` spill against Azurite (the Azure Storage emulator, from npm) as the real queue and blob
//! service: accepted events that Azure Monitor cannot take go to the function's storage queue (a large batch
//! to a blob the message points at), and the queue-triggered `redeliver` function, invoked as the Functions host
//! invokes it (`{"Data":{"item":…},"Metadata":…}`, the message text double-encoded), lands them once the
//! destination is back; a failure answers non-2xx so the host retries.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use sentinel_bridge::azure::storage::StorageClient;
use sentinel_bridge::local_azure::Endpoint;
use serde_json::{json, Value};

/// The function's spill key (`SPILL_SIGNING_KEY`): what the spill writes carries its seal.
const SIGNING_KEY: &str = "spill-signing-key-of-the-test-function-0123456789";

/// The settings of an `azure-queue` spill on the Azurite account `cs`, then `more`.
fn queue_settings<'a>(cs: &'a str, more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    [&[("SPILL", "azure-queue"), ("SPILL_SIGNING_KEY", SIGNING_KEY), ("AzureWebJobsStorage", cs)][..], more].concat()
}

struct Azurite(Vec<Child>);

impl Drop for Azurite {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_azurite() -> (Azurite, String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/azurite");
    // The tests of this file run in parallel threads; `npm ci` empties node_modules first, so two installs at once
    // break each other on a fresh machine. One install at a time, and only while none is there.
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _installing = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    if !dir.join("node_modules/.bin/azurite-queue").exists() {
        let ok = Command::new("npm").args(["ci", "--silent", "--no-audit", "--no-fund"]).current_dir(&dir).status().expect("npm is needed for Azurite");
        assert!(ok.success(), "npm ci (azurite) failed");
    }
    let (qp, bp) = (free_port(), free_port());
    // Strict, as Azure is: no `--loose` (which lets unsupported headers and parameters through) and no
    // `--skipApiVersionCheck` (our clients' x-ms-version must be one Azurite 3.37 knows, as Storage checks it).
    let spawn = |bin: &str, flag: &str, host_flag: &str, port: u16| {
        Command::new(dir.join("node_modules/.bin").join(bin))
            .args([flag, &port.to_string(), host_flag, "127.0.0.1", "--inMemoryPersistence", "--silent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("azurite starts")
    };
    let procs = Azurite(vec![spawn("azurite-queue", "--queuePort", "--queueHost", qp), spawn("azurite-blob", "--blobPort", "--blobHost", bp)]);
    let deadline = Instant::now() + Duration::from_secs(30);
    for p in [qp, bp] {
        while std::net::TcpStream::connect(("127.0.0.1", p)).is_err() {
            assert!(Instant::now() < deadline, "Azurite did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    let cs = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={key};QueueEndpoint=http://127.0.0.1:{qp}/devstoreaccount1;BlobEndpoint=http://127.0.0.1:{bp}/devstoreaccount1;"
    );
    (procs, cs)
}

/// Plays the Functions host's queue trigger once: takes the visible messages, invokes `/redeliver` with each,
/// deletes those answered 2xx. Returns the statuses.
/// `/api/health` once it shows what `ready` waits for (its Storage depth is read in the background), or after
/// 15 s as it is.
async fn health_until(t: &TestBridge, ready: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let h: Value = t.http.get(format!("{}/api/health", t.url)).send().await.unwrap().json().await.unwrap();
        if ready(&h) || started.elapsed() > Duration::from_secs(15) {
            return h;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `sentinel-bridge spill <command>` against the Azurite account `cs`, as an operator runs it.
fn spill_command(command: &str, cs: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sentinel-bridge"))
        .args(["spill", command])
        .env_clear()
        .env("SPILL", "azure-queue")
        .env("SPILL_SIGNING_KEY", SIGNING_KEY)
        .env("AzureWebJobsStorage", cs)
        .output()
        .unwrap()
}

async fn trigger_once(t: &TestBridge, storage: &StorageClient) -> Vec<u16> {
    let mut statuses = Vec::new();
    for m in storage.get_messages("sentinel-bridge-spill", 32, 2).await.unwrap() {
        // messageEncoding base64: the host decodes the text, then hands a string input over double-encoded.
        let text = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(&m.text).unwrap()).unwrap();
        let invocation = json!({
            "Data": {"item": serde_json::to_string(&text).unwrap()},
            "Metadata": {"DequeueCount": m.dequeue_count.to_string(), "Id": m.id, "sys": {"MethodName": "redeliver"}},
        });
        let r = t.http.post(format!("{}/redeliver", t.url)).json(&invocation).send().await.unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert!(body["Logs"].as_array().is_some_and(|l| !l.is_empty()), "{body}");
        if (200..300).contains(&status) {
            storage.delete_message("sentinel-bridge-spill", &m).await.unwrap();
        }
        statuses.push(status);
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spilled_events_wait_in_the_storage_queue_and_redeliver_lands_them() {
    let (_azurite, cs) = start_azurite();
    let t = TestBridge::start(&queue_settings(&cs, &[("INGEST_DEADLINE_SECS", "1"), ("SPILL_RETRY_BASE_SECS", "1")])).await;
    let storage = StorageClient::from_connection_string(&cs).unwrap();
    t.ws.workspace.faults.add(outage(Endpoint::Ingestion, 60));

    // A small batch goes in the message; one over the message size goes to a blob the message points at.
    let (status, body) = t.post("noxys", NOXYS_TOKEN, fixture("noxys-policy-violated.json")).await;
    assert_eq!((status, body["spooled"].clone()), (202, json!(1)), "{body}");
    let big = json!({"id": "evt_big", "timestamp": "2026-03-20T14:32:00Z", "event_type": "interaction.created", "tenant_id": "t", "data": {"note": "x".repeat(55_000)}});
    let (status, body) = t.post("noxys", NOXYS_TOKEN, big.to_string()).await;
    assert_eq!((status, body["spooled"].clone()), (202, json!(1)), "{body}");
    assert!(t.rows("NoxysEvents_CL").is_empty());
    // Health shows the depth it last read (refreshed in the background, never waited on).
    let health = health_until(&t, |h| h["spill"]["batches"] == 2).await;
    assert_eq!(health["spill"]["batches"], 2, "{}", health["spill"]);
    assert!(health["spill"]["oldestAgeSecs"].as_u64().is_some());
    // Spilled batches never expire (without messagettl=-1 Storage drops a message after 7 days).
    let peeked = storage.get_messages("sentinel-bridge-spill", 32, 1).await.unwrap();
    assert_eq!(peeked.len(), 2);
    assert!(peeked.iter().all(|m| m.expires.contains("9999")), "{:?}", peeked.iter().map(|m| &m.expires).collect::<Vec<_>>());
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    // While Azure Monitor is still down, redelivery fails: each batch is put back (never expiring, visible again
    // a second later) and the host is told the message is done, so its dequeues are never spent.
    let statuses = trigger_once(&t, &storage).await;
    assert_eq!(statuses, [200, 200]);
    tokio::time::sleep(Duration::from_millis(2_200)).await;

    // Back up: the next trigger lands both, and the messages are gone.
    t.ws.workspace.faults.clear();
    let statuses = trigger_once(&t, &storage).await;
    assert_eq!(statuses, [200, 200]);
    let mut ids: Vec<String> = t.rows("NoxysEvents_CL").iter().map(|r| r["EventId"].as_str().unwrap().to_string()).collect();
    ids.sort();
    assert_eq!(ids, ["evt_abc123", "evt_big"]);
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert!(storage.get_messages("sentinel-bridge-spill", 32, 1).await.unwrap().is_empty());
    let health: Value = t.http.get(format!("{}/api/health", t.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["spill"]["backend"], "azure-queue");
    assert_eq!(health["spill"]["redeliveredRows"], 2);
    assert_eq!(health["spill"]["failedAttempts"], 2);

    // A sealed message that is still unreadable is refused (non-2xx: the host retries it, then moves it to the
    // poison queue).
    let unreadable = serde_json::to_string(&seal().seal("not a batch")).unwrap();
    let r = t.http.post(format!("{}/redeliver", t.url)).json(&json!({"Data": {"item": unreadable}, "Metadata": {}})).send().await.unwrap();
    assert_eq!(r.status(), 400);

    // Poison messages go back to the spill queue with one command.
    storage.create_queue("sentinel-bridge-spill-poison").await.unwrap();
    storage.put_message("sentinel-bridge-spill-poison", "eyJibG9iIjoieCJ9").await.unwrap();
    let out = spill_command("replay-poison", &cs);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("moved 1 message"));
    let back = storage.get_messages("sentinel-bridge-spill", 32, 1).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].text, "eyJibG9iIjoieCJ9", "moved as stored");
}

/// In Azure the spill reaches the queue with the managed identity: a bearer token for storage, no key.
#[tokio::test]
async fn with_the_identity_the_queue_gets_a_bearer_token() {
    use axum::http::HeaderMap;
    use std::sync::{Arc, Mutex};
    let ws = start_workspace(builtin_workspace_config()).await;
    let seen: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let s2 = seen.clone();
    let app = axum::Router::new().fallback(move |method: axum::http::Method, uri: axum::http::Uri, headers: HeaderMap| {
        let s2 = s2.clone();
        async move {
            let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
            s2.lock().unwrap().push((format!("{method} {}", uri.path()), h("authorization"), h("x-ms-version")));
            axum::http::StatusCode::CREATED
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let tokens = Arc::new(sentinel_bridge::azure::identity::TokenSource::new(
        Arc::new(sentinel_bridge::azure::identity::LoopbackClientCredential::new(&ws.url(), "t", "c", "s")),
        sentinel_bridge::azure::storage::STORAGE_SCOPE,
    ));
    let client = StorageClient::with_identity(&format!("{url}/queue"), &format!("{url}/blob"), tokens);
    client.put_message("sentinel-bridge-spill", "e30=").await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].0, "POST /queue/sentinel-bridge-spill/messages");
    assert!(seen[0].1.starts_with("Bearer local."), "{:?}", seen[0]);
    assert_eq!(seen[0].2, "2023-11-03");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spilled_batch_lands_whole_and_forged_messages_are_refused() {
    let (_azurite, cs) = start_azurite();
    let t = TestBridge::start_with(drifted_workspace(), &queue_settings(&cs, &[("INGEST_DEADLINE_SECS", "1")])).await;
    let storage = StorageClient::from_connection_string(&cs).unwrap();
    t.ws.workspace.faults.add(outage(Endpoint::Ingestion, 60));
    let (status, body) = t.post("generic", GENERIC_TOKEN, json!([{"type": "drifted"}, {"n": 1}]).to_string()).await;
    assert_eq!((status, body["spooled"].clone()), (202, json!(2)), "{body}");
    t.ws.workspace.faults.clear();

    // Azure refuses no record for its content: the whole batch lands (the drifted value as null), the message
    // is done, and nothing reaches the poison queue.
    assert_eq!(trigger_once(&t, &storage).await, [200]);
    assert_eq!(t.rows("Webhook_CL").len(), 2);
    assert!(storage.get_messages("sentinel-bridge-spill-poison", 32, 1).await.unwrap_or_default().is_empty());
    let health: Value = t.http.get(format!("{}/api/health", t.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["spill"]["deadLetter"]["rowsThisRun"], 0, "{}", health["spill"]);

    // Even under the spill's own seal, names it would never have written are not followed: a blob outside our
    // naming, a stream name that would reach a URL.
    let invoke = |text: String| {
        let invocation = json!({"Data": {"item": serde_json::to_string(&text).unwrap()}, "Metadata": {}});
        let http = t.http.clone();
        let url = format!("{}/redeliver", t.url);
        async move { http.post(url).json(&invocation).send().await.unwrap() }
    };
    for forged in [json!({"blob": "../other-container/secret.json"}), json!({"destination": "sentinel", "stream": "Custom-X/../../admin", "rows": ["{}"]})] {
        assert_eq!(invoke(seal().seal(&forged.to_string())).await.status(), 400, "{forged}");
    }

    // A well-formed batch someone else put on the queue (anyone with a role on the storage account can) is not
    // ingested with the function's identity: without the seal, or sealed with another key, or altered after
    // sealing, it is set aside at once as a dead letter (the host deletes it: no retries to spend).
    let batch = json!({"destination": "sentinel", "stream": "Custom-Webhook_CL", "rows": [r#"{"TimeGenerated":"2026-03-20T14:32:00Z","Source":"forged"}"#]});
    let other = sentinel_bridge::delivery::seal::SealKey::parse("another-key-that-is-not-the-functions-0123").unwrap();
    let altered = seal().seal(&batch.to_string()).replace("forged", "altered");
    for text in [batch.to_string(), other.seal(&batch.to_string()), altered] {
        let r = invoke(text).await;
        assert_eq!(r.status(), 200);
        let logs = r.json::<Value>().await.unwrap()["Logs"].to_string();
        assert!(logs.contains("set aside"), "{logs}");
    }
    assert_eq!(t.rows("Webhook_CL").len(), 2, "nothing forged was ingested");
    let letters = storage.list_blobs("sentinel-bridge-spill", "dead-letter/").await.unwrap();
    assert_eq!(letters.len(), 3);
    // The dead letters are sealed too, and `spill replay` leaves the forged ones where they are.
    let letter = storage.get_blob("sentinel-bridge-spill", &letters[0]).await.unwrap();
    let letter: Value = serde_json::from_str(seal().open(&letter).unwrap()).unwrap();
    assert!(letter["reason"].as_str().unwrap().starts_with(sentinel_bridge::delivery::spill::FORGED), "{letter}");
    let out = spill_command("replay", &cs);
    assert!(String::from_utf8_lossy(&out.stdout).contains("left 3"), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(storage.list_blobs("sentinel-bridge-spill", "dead-letter/").await.unwrap().len(), 3);
    // The same batch under the function's seal lands.
    assert_eq!(invoke(seal().seal(&batch.to_string())).await.status(), 200);
    assert_eq!(t.rows("Webhook_CL").len(), 3);
}

fn seal() -> sentinel_bridge::delivery::seal::SealKey {
    sentinel_bridge::delivery::seal::SealKey::parse(SIGNING_KEY).unwrap()
}

/// `serve` as a child process on `port`, its replay markers in the storage account of `cs`.
fn spawn_serve(port: u16, ws: &str, cs: &str, mapping: &str, whsec: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sentinel-bridge"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("IDENTITY_ENDPOINT", format!("{ws}/msi/token"))
        .env("IDENTITY_HEADER", "any")
        .env("LOGS_INGESTION_ENDPOINT", ws)
        .env("DCR_IMMUTABLE_ID", "dcr-replay")
        .env("AzureWebJobsStorage", cs)
        .env("SPILL", "off")
        .env("WEBHOOK_SOURCES_FILE", mapping)
        .env("SOURCE_STDHOOKS_SECRETS", whsec)
        .env("BATCH_LINGER_MS", "300")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !reqwest::get(format!("http://127.0.0.1:{port}/")).await.is_ok_and(|r| r.status() == 200) {
        assert!(Instant::now() < deadline, "serve did not start");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_message_is_ingested_once_across_instances_and_restarts() {
    use sentinel_bridge::mapping::auth::standard_webhooks_signature;
    let (_azurite, cs) = start_azurite();
    let mapping_text = "[[source]]\nname = \"stdhooks\"\nauth = { mode = \"standard-webhooks\" }\n[[source.table]]\nname = \"Std_CL\"\ntime = \"received\"\ncolumns = [{ name = \"Kind\", type = \"string\", path = \"kind\" }]\n";
    let mapping = std::env::temp_dir().join(format!("sb-std-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&mapping, mapping_text).unwrap();
    let mut cfg = builtin_workspace_config();
    cfg.tables = sentinel_bridge::mapping::Catalog::load(&[("f".into(), mapping_text.into())]).unwrap().tables();
    let ws = start_workspace(cfg).await;
    let key = b"standard-webhooks-key-32-bytes!!";
    let whsec = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(key));
    let (pa, pb) = (free_port(), free_port());
    let mut a = spawn_serve(pa, &ws.url(), &cs, &mapping.display().to_string(), &whsec);
    let mut b = spawn_serve(pb, &ws.url(), &cs, &mapping.display().to_string(), &whsec);
    wait_ready(pa).await;
    wait_ready(pb).await;
    let http = reqwest::Client::new();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let send = |port: u16, id: &'static str| {
        let body = r#"{"kind":"a"}"#;
        http.post(format!("http://127.0.0.1:{port}/api/webhook/stdhooks"))
            .header("webhook-id", id)
            .header("webhook-timestamp", now.to_string())
            .header("webhook-signature", standard_webhooks_signature(key, id, now, body.as_bytes()))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    // Delivered by one instance, replayed to the other.
    assert_eq!(send(pa, "msg_once").await.unwrap().status(), 202);
    let r = send(pb, "msg_once").await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["duplicate"], true);
    // Two copies at once, one per instance: one ingests, the other hears "duplicate" or "retry shortly".
    let (x, y) = tokio::join!(send(pa, "msg_race"), send(pb, "msg_race"));
    let mut statuses = [x.unwrap().status().as_u16(), y.unwrap().status().as_u16()];
    statuses.sort();
    assert!(statuses == [202, 202] || statuses == [202, 503], "{statuses:?}");
    // After a restart, the id is still known.
    let _ = a.kill();
    let _ = a.wait();
    let pc = free_port();
    let mut c = spawn_serve(pc, &ws.url(), &cs, &mapping.display().to_string(), &whsec);
    wait_ready(pc).await;
    let r = send(pc, "msg_once").await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["duplicate"], true);
    let rows: Vec<String> = ws.workspace.rows("Std_CL").iter().map(|r| r["Kind"].as_str().unwrap_or_default().to_string()).collect();
    assert_eq!(rows.len(), 2, "each message id once: {rows:?}");
    for p in [&mut b, &mut c] {
        let _ = p.kill();
        let _ = p.wait();
    }
}

/// A long outage (compressed: with the default schedule, 30 s doubling to 15 min, two hours is about a dozen
/// attempts; here a dozen attempts a second apart) never spends the host's dequeues and never puts a batch on
/// a clock: every attempt meets a fresh message (dequeue count 1) that never expires, nothing reaches the
/// poison queue, and every row arrives once Azure Monitor is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_outage_never_spends_dequeues_or_expires_a_batch() {
    let (_azurite, cs) = start_azurite();
    let t = TestBridge::start(&queue_settings(&cs, &[("INGEST_DEADLINE_SECS", "1"), ("SPILL_RETRY_BASE_SECS", "1"), ("SPILL_RETRY_MAX_SECS", "1")])).await;
    let storage = StorageClient::from_connection_string(&cs).unwrap();
    t.ws.workspace.faults.add(outage(Endpoint::Ingestion, 3_600));
    for i in 0..3 {
        let (status, body) = t.post("generic", GENERIC_TOKEN, json!({"n": i}).to_string()).await;
        assert_eq!((status, body["spooled"].clone()), (202, json!(1)), "{body}");
    }
    let mut attempts = 0;
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let visible = storage.get_messages("sentinel-bridge-spill", 32, 1).await.unwrap();
        for m in &visible {
            assert_eq!(m.dequeue_count, 1, "a retry is a new message, not a dequeue spent");
            assert!(m.expires.contains("9999"), "a retried batch never expires: {}", m.expires);
        }
        // Let them become visible again for the trigger.
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let statuses = trigger_once(&t, &storage).await;
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
        attempts += statuses.len();
        assert!(storage.get_messages("sentinel-bridge-spill-poison", 32, 1).await.unwrap_or_default().is_empty());
    }
    assert!(attempts >= 12, "the batches were tried again and again: {attempts}");
    assert!(t.rows("Webhook_CL").is_empty());
    t.ws.workspace.faults.clear();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        trigger_once(&t, &storage).await;
        if t.rows("Webhook_CL").len() == 3 {
            break;
        }
    }
    assert_eq!(t.rows("Webhook_CL").len(), 3, "every row arrives");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert!(storage.get_messages("sentinel-bridge-spill", 32, 1).await.unwrap().is_empty());
}

/// What still reaches the poison queue (here, a message the spill cannot read) is kept at once in a
/// dead-letter blob with no expiry and its reason; doctor and health count it as a failure, and `spill replay`
/// puts it back on the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_is_kept_as_a_dead_letter_at_once_and_replayed() {
    let (azurite, cs) = start_azurite();
    let t = TestBridge::start(&queue_settings(&cs, &[])).await;
    let storage = StorageClient::from_connection_string(&cs).unwrap();
    // The host moved a message it could not get through to the poison queue, then triggers `deadletter`.
    let poison = seal().seal("not a batch");
    let invocation = json!({"Data": {"item": serde_json::to_string(&poison).unwrap()}, "Metadata": {"DequeueCount": "5"}});
    let r = t.http.post(format!("{}/deadletter", t.url)).json(&invocation).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let blobs = storage.list_blobs("sentinel-bridge-spill", "dead-letter/").await.unwrap();
    assert_eq!(blobs.len(), 1);
    let letter: Value = serde_json::from_str(seal().open(&storage.get_blob("sentinel-bridge-spill", &blobs[0]).await.unwrap()).unwrap()).unwrap();
    assert_eq!(letter["message"], poison, "kept as it came");
    assert!(letter["reason"].as_str().unwrap().contains("sentinel-bridge-spill-poison after 5"), "{letter}");
    let health = health_until(&t, |h| h["spill"]["deadLetter"]["blobs"] == 1).await;
    assert_eq!(health["spill"]["deadLetter"]["blobs"], 1, "{}", health["spill"]);
    let report = sentinel_bridge::doctor::checks::run(&t.bridge.state.deployment(), Default::default()).await;
    let dead = report.checks.iter().find(|c| c.check == "spill-dead-letters").unwrap();
    assert_eq!(dead.level, sentinel_bridge::doctor::Level::Fail, "{}", report.text());
    let out = spill_command("replay", &cs);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("moved 1 dead letter"), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(storage.list_blobs("sentinel-bridge-spill", "dead-letter/").await.unwrap().is_empty());
    let back = storage.get_messages("sentinel-bridge-spill", 32, 1).await.unwrap();
    assert_eq!(back.len(), 1);

    // Health never waits on Storage: with the account gone, it still answers at once, from its counters.
    drop(azurite);
    tokio::time::sleep(Duration::from_millis(11_000)).await;
    let asked = Instant::now();
    let r = t.http.get(format!("{}/api/health", t.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(asked.elapsed() < Duration::from_millis(500), "health waited {:?}", asked.elapsed());
}

/// A claim is finished and released only while it is still ours (`If-Match` on the claim's own ETag): once
/// another instance has taken the id over (after our lease ran out), our release leaves its claim in place
/// and our late "done" does not overwrite it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_taken_over_is_neither_released_nor_overwritten_by_its_first_holder() {
    use sentinel_bridge::delivery::replay::{Claim, ReplayGuard, ReplayStore};
    use sha2::Digest;
    let (_azurite, cs) = start_azurite();
    let client = std::sync::Arc::new(StorageClient::from_connection_string(&cs).unwrap());
    client.create_container("replay").await.unwrap();
    let guard = ReplayGuard::new(ReplayStore::Blob { client: client.clone(), container: "replay".into() });
    let name = hex::encode(sha2::Sha256::digest("src\u{0}msg_1".as_bytes()));
    let until = time::OffsetDateTime::now_utc().unix_timestamp() + 300;
    let takeover = br#"{"done":false,"until":9999999999}"#.to_vec();

    // Released after a takeover: the other instance's claim stays.
    let Claim::Owner(ticket) = guard.claim("src", "msg_1", until, Duration::from_secs(5)).await.unwrap() else { panic!("not claimed") };
    client.put_blob("replay", &name, takeover.clone()).await.unwrap();
    drop(ticket);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(client.get_blob("replay", &name).await.unwrap().as_bytes(), &takeover[..], "another instance's claim was deleted");

    // Finished after a takeover: not overwritten either.
    let _ = client.delete_blob("replay", &name).await;
    let Claim::Owner(ticket) = guard.claim("src", "msg_1", until, Duration::from_secs(5)).await.unwrap() else { panic!("not claimed") };
    client.put_blob("replay", &name, takeover.clone()).await.unwrap();
    ticket.succeeded().await;
    assert_eq!(client.get_blob("replay", &name).await.unwrap().as_bytes(), &takeover[..], "another instance's claim was overwritten");

    // Still ours: finished as done.
    let _ = client.delete_blob("replay", &name).await;
    let Claim::Owner(ticket) = guard.claim("src", "msg_1", until, Duration::from_secs(5)).await.unwrap() else { panic!("not claimed") };
    ticket.succeeded().await;
    assert!(client.get_blob("replay", &name).await.unwrap().contains("\"done\":true"));
}
