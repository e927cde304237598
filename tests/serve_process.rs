//! `sentinel-bridge serve` as the Functions host runs it: a child process on FUNCTIONS_CUSTOMHANDLER_PORT,
//! taking its token from the App Service managed identity endpoint (the workspace's stand-in), stopping
//! cleanly on SIGTERM with buffered rows sent, and refusing to start on a bad setting or mapping.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn spawn_serve(envs: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sentinel-bridge"));
    cmd.arg("serve").env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("SPILL", "off").stdout(Stdio::null()).stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

async fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/")).await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "serve did not answer GET / in time");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(ok.success());
}

fn wait_exit(mut child: Child) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            return (status, err);
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("process did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `serve` under the host, ingesting into `ws` with the App Service managed identity it serves, plus `extra`.
fn spawn_serve_with_identity(ws: &sentinel_bridge::local_azure::RunningWorkspace, port: u16, identity_header: &str, extra: &[(&str, String)]) -> Child {
    let mut envs = vec![
        ("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string()),
        ("IDENTITY_ENDPOINT", format!("{}/msi/token", ws.url())),
        ("IDENTITY_HEADER", identity_header.to_string()),
        ("LOGS_INGESTION_ENDPOINT", ws.url()),
        ("DCR_IMMUTABLE_ID", "dcr-0a1b2c".into()),
        ("SOURCE_NOXYS_SECRETS", NOXYS_TOKEN.into()),
    ];
    envs.extend(extra.iter().cloned());
    spawn_serve(&envs)
}

#[tokio::test]
async fn serve_uses_the_managed_identity_and_drains_on_sigterm() {
    let mut cfg = builtin_workspace_config();
    cfg.identity_header = Some("identity-header-secret".into());
    cfg.dcr_immutable_id = Some("dcr-0a1b2c".into());
    let ws = start_workspace(cfg).await;
    let port = free_port();
    // A long linger: the request below is still waiting for its call when SIGTERM arrives.
    let child = spawn_serve_with_identity(&ws, port, "identity-header-secret", &[("BATCH_LINGER_MS", "1500".into())]);
    wait_ready(port).await;
    let http = reqwest::Client::new();
    let inflight = tokio::spawn({
        let http = http.clone();
        async move {
            http.post(format!("http://127.0.0.1:{port}/api/webhook/noxys"))
                .bearer_auth(NOXYS_TOKEN)
                .header("x-azure-functions-invocationid", "3f2a0c1e-0000-0000-0000-000000000001")
                .header("content-type", "application/json")
                .body(fixture("noxys-policy-violated.json"))
                .send()
                .await
                .unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    sigterm(&child);
    let resp = inflight.await.unwrap();
    assert_eq!(resp.status(), 202, "the in-flight request finishes: {:?}", resp.text().await);
    let (status, stderr) = tokio::task::spawn_blocking(move || wait_exit(child)).await.unwrap();
    assert!(status.success(), "exit {status}: {stderr}");
    let rows = ws.workspace.rows("NoxysEvents_CL");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["RiskScore"], 0.95);
}

#[tokio::test]
async fn a_bad_mapping_file_stops_start_up_naming_file_source_and_field() {
    let path = std::env::temp_dir().join(format!("sb-bad-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&path, "[[source]]\nname = \"acme\"\nauth = {}\n[[source.table]]\nname = \"Acme_CL\"\ntime = \"received\"\ncolumns = [{ name = \"Score\", type = \"decimal\", path = \"score\" }]\n").unwrap();
    let child = spawn_serve(&[
        ("WEBHOOK_SOURCES_FILE", path.display().to_string()),
        ("FUNCTIONS_CUSTOMHANDLER_PORT", free_port().to_string()),
        ("LOGS_INGESTION_ENDPOINT", "local".into()),
    ]);
    let (status, stderr) = tokio::task::spawn_blocking(move || wait_exit(child)).await.unwrap();
    assert!(!status.success());
    assert!(stderr.contains(&path.display().to_string()) && stderr.contains("'acme'") && stderr.contains("columns[0] (Score).type"), "{stderr}");
}

#[tokio::test]
async fn a_bad_setting_stops_start_up_naming_it() {
    let child = spawn_serve(&[("LOGS_INGESTION_ENDPOINT", "https://dce.example.ingest.monitor.azure.com".into())]);
    let (status, stderr) = tokio::task::spawn_blocking(move || wait_exit(child)).await.unwrap();
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("DCR_IMMUTABLE_ID"), "{stderr}");
    let child = spawn_serve(&[
        ("SOURCE_NOBODY_SECRETS", "whatever-0123456789abc".into()),
        ("SENTINEL_BRIDGE_DATA_DIR", std::env::temp_dir().join("sb-unused").display().to_string()),
    ]);
    let (status, stderr) = tokio::task::spawn_blocking(move || wait_exit(child)).await.unwrap();
    assert!(!status.success());
    assert!(stderr.contains("SOURCE_NOBODY_SECRETS"), "{stderr}");
}

#[tokio::test]
async fn with_no_azure_settings_rows_land_in_the_local_workspace_and_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("sb-local-{}", uuid::Uuid::new_v4()));
    for round in 1..=2 {
        let port = free_port();
        let child = spawn_serve(&[
            ("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string()),
            // Under the host the local workspace is used only when asked for by name.
            ("LOGS_INGESTION_ENDPOINT", "local".into()),
            ("SENTINEL_BRIDGE_DATA_DIR", dir.display().to_string()),
            ("SOURCE_NOXYS_SECRETS", NOXYS_TOKEN.into()),
        ]);
        wait_ready(port).await;
        let r = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/api/webhook/noxys"))
            .bearer_auth(NOXYS_TOKEN)
            .body(fixture("noxys-policy-violated.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        sigterm(&child);
        let (status, stderr) = tokio::task::spawn_blocking(move || wait_exit(child)).await.unwrap();
        assert!(status.success(), "{stderr}");
        let text = std::fs::read_to_string(dir.join("tables/NoxysEvents_CL.jsonl")).unwrap();
        assert_eq!(text.lines().count(), round, "rows from earlier runs are still there");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// azure_identity's managed identity credential caches tokens for as long as they live, so a refused token is
/// only replaced if the credential is: after the workspace revokes every token, the next event still lands,
/// with a token fetched anew from the identity endpoint.
#[tokio::test]
async fn a_revoked_token_is_replaced_by_a_new_one_from_the_identity_endpoint() {
    let mut cfg = builtin_workspace_config();
    cfg.dcr_immutable_id = Some("dcr-0a1b2c".into());
    let ws = start_workspace(cfg).await;
    let port = free_port();
    let child = spawn_serve_with_identity(&ws, port, "h", &[("BATCH_LINGER_MS", "0".into())]);
    wait_ready(port).await;
    let post = || async {
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/api/webhook/noxys"))
            .bearer_auth(NOXYS_TOKEN)
            .body(fixture("noxys-policy-violated.json"))
            .send()
            .await
            .unwrap()
    };
    assert_eq!(post().await.status(), 202);
    let issued = || ws.workspace.stats.tokens_issued.load(std::sync::atomic::Ordering::Relaxed);
    let tokens_before = issued();
    ws.workspace.revoke_tokens();
    let r = post().await;
    let status = r.status();
    assert_eq!(status, 202, "{:?}", r.text().await);
    assert_eq!(issued(), tokens_before + 1, "one new token, fetched once");
    assert_eq!(ws.workspace.rows("NoxysEvents_CL").len(), 2);
    sigterm(&child);
    let (status, stderr) = tokio::task::spawn_blocking(move || wait_exit(child)).await.unwrap();
    assert!(status.success(), "{stderr}");
}

/// Reads what the server sends until it closes the connection (or `within` passes): the bytes, and when.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, within: Duration) -> (String, Option<Duration>) {
    use tokio::io::AsyncReadExt;
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(within.saturating_sub(started.elapsed()), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), Some(started.elapsed())),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), None),
        }
    }
}

/// Stalled peers hold nothing for long: headers that never finish, a keep-alive connection left idle and a
/// body that stops half way are each cut at their timeout (the body with a 408), and SIGTERM's drain is not
/// held up by a connection still sending its headers.
#[tokio::test]
async fn stalled_connections_are_closed_at_their_timeouts_and_never_block_the_drain() {
    use tokio::io::AsyncWriteExt;
    let mut cfg = builtin_workspace_config();
    cfg.identity_header = Some("identity-header-secret".into());
    cfg.dcr_immutable_id = Some("dcr-0a1b2c".into());
    let ws = start_workspace(cfg).await;
    let port = free_port();
    let timeouts = [("HTTP_HEADER_TIMEOUT_SECS", "1".to_string()), ("HTTP_BODY_TIMEOUT_SECS", "1".to_string())];
    let child = spawn_serve_with_identity(&ws, port, "identity-header-secret", &timeouts);
    wait_ready(port).await;
    let connect = || tokio::net::TcpStream::connect(("127.0.0.1", port));

    // Headers that never finish: closed after the header timeout, not held.
    let mut s = connect().await.unwrap();
    s.write_all(b"POST /api/webhook/noxys HTTP/1.1\r\nHost: x\r\nContent-Type: app").await.unwrap();
    let (_, closed) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    let closed = closed.expect("a connection that never finished its headers stayed open");
    assert!(closed >= Duration::from_millis(800), "{closed:?}");

    // An idle keep-alive connection: one answer, then closed when the next request does not come.
    let mut s = connect().await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let (got, closed) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(closed.is_some(), "an idle keep-alive connection stayed open");

    // A body that stops half way: a 408 naming the setting.
    let mut s = connect().await.unwrap();
    let head = format!("POST /api/webhook/noxys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {NOXYS_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n[{{\"id\":");
    s.write_all(head.as_bytes()).await.unwrap();
    let (got, _) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("BodyTimeout") && got.contains("HTTP_BODY_TIMEOUT_SECS"), "{got}");

    sigterm(&child);
    let (status, err) = wait_exit(child);
    assert!(status.success(), "{err}");

    // SIGTERM while a peer is still sending its headers, with a header timeout far longer than the test: the
    // process drains and exits anyway.
    let port = free_port();
    let child = spawn_serve_with_identity(&ws, port, "identity-header-secret", &[("HTTP_HEADER_TIMEOUT_SECS", "120".to_string())]);
    wait_ready(port).await;
    let mut stalled = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stalled.write_all(b"POST /api/webhook/noxys HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let asked = Instant::now();
    sigterm(&child);
    let (status, err) = wait_exit(child);
    assert!(status.success(), "{err}");
    assert!(asked.elapsed() < Duration::from_secs(10), "the drain waited {:?}", asked.elapsed());
}

/// The playbook's key is the function's own setting, not a host key read at deployment time: under the host,
/// `/api/enrich` refuses every call until `ENRICH_KEY` is set, and then every call without it.
#[tokio::test]
async fn under_the_host_enrich_needs_the_enrichment_key() {
    let ws = start_workspace(builtin_workspace_config()).await;
    let http = reqwest::Client::new();
    for (key, sent, status) in
        [(None, None, 401), (Some("enrichment-key-0123456789"), None, 401), (Some("enrichment-key-0123456789"), Some("wrong-key-0123456789"), 401)]
            .into_iter()
            .chain([(Some("enrichment-key-0123456789"), Some("enrichment-key-0123456789"), 400)])
    {
        let port = free_port();
        let extra: Vec<(&str, String)> = key.map(|k| ("ENRICH_KEY", k.to_string())).into_iter().collect();
        let mut child = spawn_serve_with_identity(&ws, port, "any", &extra);
        wait_ready(port).await;
        let mut req = http.post(format!("http://127.0.0.1:{port}/api/enrich")).header("content-type", "application/json").body("{}");
        if let Some(s) = sent {
            req = req.header("x-enrich-key", s);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "key {key:?}, sent {sent:?}");
        let body: serde_json::Value = r.json().await.unwrap();
        // A refusal is JSON naming the problem, never the key.
        assert!(body["error"]["message"].is_string(), "{body}");
        assert!(!body.to_string().contains("enrichment-key-0123456789"), "{body}");
        if status == 401 && key.is_none() {
            assert!(body["error"]["message"].as_str().unwrap().contains("ENRICH_KEY"), "{body}");
        }
        child.kill().unwrap();
        let _ = child.wait();
    }
}
