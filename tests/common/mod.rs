//! Shared test harness: a local workspace (the contract-enforcing stand-in for Azure) and the real handler
//! serving on loopback, talking to each other over HTTP.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use sentinel_bridge::app::{app, Bridge};
use sentinel_bridge::azure::identity::LoopbackClientCredential;
use sentinel_bridge::local_azure::{RunningWorkspace, Workspace, WorkspaceConfig};
use sentinel_bridge::mapping::Catalog;
use sentinel_bridge::settings::Settings;
use serde_json::Value;

pub const NOXYS_TOKEN: &str = "noxys-webhook-token-0123456789";
pub const TRAPEYE_TOKEN: &str = "trapeye-webhook-token-0123456789";
pub const APONO_TOKEN: &str = "apono-webhook-token-0123456789";
pub const GENERIC_TOKEN: &str = "generic-webhook-token-0123456789";

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

pub async fn start_workspace(config: WorkspaceConfig) -> RunningWorkspace {
    let ws = Workspace::open(config).unwrap();
    ws.serve(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap()
}

/// An endpoint answering 503 for `secs`: an outage that lasts until the test clears the faults, however slow
/// the machine is.
pub fn outage(endpoint: sentinel_bridge::local_azure::Endpoint, secs: u64) -> sentinel_bridge::local_azure::FaultSpec {
    use sentinel_bridge::local_azure::{FaultKind, FaultSpec};
    FaultSpec { count: None, for_millis: Some(secs * 1000), ..FaultSpec::new(endpoint, FaultKind::Status { status: 503, retry_after_secs: None }, 0) }
}

pub fn builtin_workspace_config() -> WorkspaceConfig {
    WorkspaceConfig::new(sentinel_bridge::app::written_tables(&Catalog::builtin()))
}

/// The built-in tables, except that the deployed `Webhook_CL` declares `EventType` a long: the drift between a
/// deployed DCR and the mappings that makes Azure refuse some records and take others.
pub fn drifted_workspace() -> WorkspaceConfig {
    let mut cfg = builtin_workspace_config();
    cfg.tables = cfg
        .tables
        .into_iter()
        .map(|t| {
            if t.name != "Webhook_CL" {
                return t;
            }
            let mut t = (*t).clone();
            for c in &mut t.columns {
                if c.name == "EventType" {
                    c.kind = sentinel_bridge::model::schema::ColumnType::Long;
                }
            }
            std::sync::Arc::new(t)
        })
        .collect();
    cfg
}

pub struct TestBridge {
    pub ws: RunningWorkspace,
    pub bridge: Bridge,
    pub url: String,
    pub http: reqwest::Client,
}

impl TestBridge {
    /// The handler with the built-in sources' tokens, plus `extra` settings, in front of a fresh workspace.
    pub async fn start(extra: &[(&str, &str)]) -> TestBridge {
        Self::start_with(builtin_workspace_config(), extra).await
    }

    pub async fn start_with(config: WorkspaceConfig, extra: &[(&str, &str)]) -> TestBridge {
        let ws = start_workspace(config).await;
        let mut vars: Vec<(String, String)> = vec![
            ("LOGS_INGESTION_ENDPOINT".into(), ws.url()),
            ("DCR_IMMUTABLE_ID".into(), "dcr-test0001".into()),
            ("SOURCE_NOXYS_SECRETS".into(), format!("previous-token-abcdefghij,{NOXYS_TOKEN}")),
            ("SOURCE_TRAPEYE_SECRETS".into(), TRAPEYE_TOKEN.into()),
            ("SOURCE_APONO_SECRETS".into(), APONO_TOKEN.into()),
            ("SOURCE_GENERIC_SECRETS".into(), GENERIC_TOKEN.into()),
            ("BATCH_LINGER_MS".into(), "5".into()),
            // No spill unless a test asks for one (and then in its own directory).
            ("SPILL".into(), "off".into()),
            ("INGEST_DEADLINE_SECS".into(), "10".into()),
            // Replay markers and anything else kept on disk: this test's own.
            ("SENTINEL_BRIDGE_DATA_DIR".into(), std::env::temp_dir().join(format!("sb-test-{}", uuid::Uuid::new_v4())).display().to_string()),
            // Enrichment against the same workspace, as it would run against Azure.
            ("LOG_ANALYTICS_WORKSPACE_ID".into(), sentinel_bridge::local_azure::LOCAL_WORKSPACE_ID.into()),
            ("LOG_ANALYTICS_ENDPOINT".into(), ws.url()),
            ("SENTINEL_WORKSPACE_RESOURCE_ID".into(), sentinel_bridge::app::LOCAL_WORKSPACE_RESOURCE_ID.into()),
            ("ARM_ENDPOINT".into(), ws.url()),
            // The Sekoia intake stand-in, for sources routed there.
            ("SEKOIA_INTAKE_URL".into(), format!("{}/sekoia", ws.url())),
            ("SEKOIA_INTAKE_KEY".into(), "test-intake-key".into()),
        ];
        // `{ws}` in a value stands for the workspace's URL (its other endpoints: Azure OpenAI, …).
        for (k, v) in extra {
            vars.retain(|(key, _)| key != k);
            vars.push((k.to_string(), v.replace("{ws}", &ws.url())));
        }
        let settings = Settings::from_vars(vars).unwrap();
        let cred = Arc::new(LoopbackClientCredential::new(&ws.url(), "test-tenant", "test-client", "test-secret"));
        let bridge = Bridge::build_with_credential(&settings, cred).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let router = app(bridge.state.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        TestBridge { ws, bridge, url, http: reqwest::Client::new() }
    }

    pub async fn post(&self, source: &str, token: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}/api/webhook/{source}", self.url))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub fn rows(&self, table: &str) -> Vec<Value> {
        self.ws.workspace.rows(table)
    }

    /// Stages a demo scenario's history into the workspace (its backfill route keeps the rows' times); the
    /// incident's name.
    pub async fn stage_scenario(&self, s: sentinel_bridge::lab::scenarios::Scenario, cast: &sentinel_bridge::lab::scenarios::Cast) -> String {
        let staged = sentinel_bridge::lab::scenarios::build(s, cast);
        self.stage(&staged).await;
        staged.incident_name
    }

    /// Enriches an incident through the playbook's route by its name; the 200 answer's JSON.
    pub async fn enrich_incident(&self, name: &str) -> Value {
        let r = self.http.post(format!("{}/api/enrich", self.url)).json(&serde_json::json!({"incidentId": name})).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// Stages rows built (and perhaps altered) by the generator.
    pub async fn stage(&self, staged: &sentinel_bridge::lab::scenarios::Staged) {
        use sentinel_bridge::azure::identity::{TokenSource, MONITOR_SCOPE};
        use sentinel_bridge::azure::logs_ingestion::{IngestionClient, IngestionOptions};
        let tokens = Arc::new(TokenSource::new(Arc::new(LoopbackClientCredential::new(&self.ws.url(), "t", "c", "s")), MONITOR_SCOPE));
        let client = IngestionClient::new(
            &sentinel_bridge::local_azure::backfill_endpoint(&self.ws.url()),
            "dcr-demo",
            tokens,
            IngestionOptions::default(),
            Arc::new(sentinel_bridge::metrics::Metrics::default()),
        );
        sentinel_bridge::lab::scenarios::stage(&client, staged).await.unwrap();
    }
}
