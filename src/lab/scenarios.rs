//! The demo's named [`Scenario`]s, fixed cases of the generator in [`super::world`], and how any case is
//! staged: through the ingestion API's wire protocol into `Microsoft-<Table>` and `Custom-<Table>` streams.

use super::world;
pub use super::world::{CaseSpec, Cast, Confounder, Entry, Staged, Story};
use crate::azure::logs_ingestion::{IngestError, IngestionClient};
use crate::model::schema::Row;
use crate::model::time::parse_datetime_ticks;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Cryptojacking,
    BenignScaling,
    CredentialCompromise,
    Exfiltration,
    ConfigDrift,
    /// The design's "sudden drop in database performance": a database encrypted in place, entered through the
    /// host's RDP or SSH.
    Ransomware,
    Nothing,
    /// A miner run straight on the host, entered through its SSH: seen on the network, its pool connections
    /// (VMConnection).
    MiningPool,
    /// An intruder lists a key vault and reads its secrets from a network the account never used (AuditEvent).
    VaultSecrets,
    /// The vault's "new IP address" rule firing on the release pipeline's run from a fresh address of its hosted
    /// agents, at its usual hour: nothing.
    PipelineSecrets,
    /// A storage account's blobs downloaded in bulk with its key, by an address it never served
    /// (StorageBlobLogs).
    BlobExfiltration,
    /// The drift scenario, where the stolen account also rewrote an App Service's settings and the app began
    /// failing: Application Insights' requests and exceptions, and the site's `Http5xx`.
    AppSettings,
}

impl Scenario {
    pub const ALL: [Scenario; 12] = [
        Scenario::Cryptojacking,
        Scenario::BenignScaling,
        Scenario::CredentialCompromise,
        Scenario::Exfiltration,
        Scenario::ConfigDrift,
        Scenario::Ransomware,
        Scenario::Nothing,
        Scenario::MiningPool,
        Scenario::VaultSecrets,
        Scenario::PipelineSecrets,
        Scenario::BlobExfiltration,
        Scenario::AppSettings,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Cryptojacking => "cryptojacking",
            Scenario::BenignScaling => "benign-scaling",
            Scenario::CredentialCompromise => "credential-compromise",
            Scenario::Exfiltration => "exfiltration",
            Scenario::ConfigDrift => "config-drift",
            Scenario::Ransomware => "ransomware",
            Scenario::Nothing => "nothing",
            Scenario::MiningPool => "mining-pool",
            Scenario::VaultSecrets => "vault-secrets",
            Scenario::PipelineSecrets => "pipeline-secrets",
            Scenario::BlobExfiltration => "blob-exfiltration",
            Scenario::AppSettings => "app-settings",
        }
    }

    pub fn parse(s: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|x| x.name() == s)
    }

    /// The incident's ARM name: stable per scenario.
    pub fn incident_name(self) -> String {
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, format!("sentinel-bridge:scenario:{}", self.name()).as_bytes()).to_string()
    }

    /// The case the scenario is: a story, its entry point, no confounders.
    pub fn spec(self) -> CaseSpec {
        let (story, entry) = match self {
            Scenario::Cryptojacking => (Story::Cryptojacking, Entry::StolenPassword),
            Scenario::BenignScaling => (Story::BenignLoad, Entry::None),
            Scenario::CredentialCompromise => (Story::CredentialCompromise, Entry::BruteForce),
            Scenario::Exfiltration => (Story::Exfiltration, Entry::None),
            Scenario::ConfigDrift => (Story::ConfigDrift, Entry::None),
            Scenario::Ransomware => (Story::Ransomware, Entry::HostBruteForce),
            Scenario::Nothing => (Story::Quiet, Entry::None),
            Scenario::MiningPool => (Story::Cryptojacking, Entry::HostBruteForce),
            Scenario::VaultSecrets => (Story::Exfiltration, Entry::StolenPassword),
            Scenario::PipelineSecrets => (Story::Quiet, Entry::None),
            Scenario::BlobExfiltration => (Story::Exfiltration, Entry::StolenPassword),
            Scenario::AppSettings => (Story::ConfigDrift, Entry::None),
        };
        let confounders = match self {
            Scenario::VaultSecrets => vec![Confounder::ViaVault],
            Scenario::PipelineSecrets => vec![Confounder::PipelineSecrets],
            Scenario::BlobExfiltration => vec![Confounder::ViaStorage],
            _ => Vec::new(),
        };
        CaseSpec { seed: 7, story, entry, confounders, t0: t0(), alert: None }
    }
}

/// The incident's first activity in every named scenario.
pub const T0: &str = "2026-11-20T10:00:00Z";

fn t0() -> i64 {
    parse_datetime_ticks(T0).expect("T0 parses")
}

pub fn build(s: Scenario, cast: &Cast) -> Staged {
    let number = 100 + Scenario::ALL.iter().position(|x| *x == s).unwrap_or(0) as i64;
    let mut staged = world::build(&s.spec(), Some(cast), &s.incident_name(), number);
    if s == Scenario::AppSettings {
        app_settings_plane(&mut staged, cast);
    }
    staged
}

/// The App Service the app-settings scenario's account rewrote.
pub const APP_SITE: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/prod/providers/Microsoft.Web/sites/acme-shop";

/// Adds to a staged drift case what an App Service and its workspace-based Application Insights write: a
/// month of requests to `acme-shop` (twelve 5-minute slots an hour, ~110 ms, all succeeding), the hour before
/// the alert two in three failing with a 500 in 2.4 s with their SqlExceptions, the site's hourly `Http5xx`;
/// the account's `Microsoft.Web/sites/config/write` on the site's app settings, from the address it drifted
/// from; and the site among the alert's entities.
fn app_settings_plane(staged: &mut Staged, cast: &Cast) {
    use crate::model::time::{format_ticks, TICKS_PER_SEC};
    use serde_json::{json, Value};
    let at = |minutes: i64| format_ticks(t0() + minutes * 60 * TICKS_PER_SEC);
    let component = "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/prod/providers/microsoft.insights/components/acme-shop-ai";
    let (mut requests, mut exceptions, mut metrics) = (Vec::new(), Vec::new(), Vec::new());
    for hour in -36 * 24..1 {
        let broken = hour >= -1;
        for slot in 0..12 {
            let m = hour * 60 + slot * 5;
            let fails = broken && slot % 3 != 0;
            requests.push(json!({"TimeGenerated": at(m), "AppRoleName": "acme-shop", "Name": "GET /checkout", "Success": !fails,
                "ResultCode": if fails { "500" } else { "200" }, "DurationMs": if fails { 2400.0 } else { 110.0 + (slot * 7 % 30) as f64 },
                "_ResourceId": component}));
            if fails {
                exceptions.push(json!({"TimeGenerated": at(m), "AppRoleName": "acme-shop", "ExceptionType": "System.Data.SqlClient.SqlException",
                    "OuterMessage": "Login failed for user 'app'.", "_ResourceId": component}));
            }
        }
        metrics.push(json!({"TimeGenerated": at(hour * 60), "ResourceId": APP_SITE.to_ascii_uppercase(), "_ResourceId": APP_SITE.to_ascii_lowercase(),
            "ResourceProvider": "MICROSOFT.WEB", "MetricName": "Http5xx", "Total": if broken { 480.0 } else { hour.rem_euclid(3) as f64 }, "Count": 60.0,
            "Average": 0.0, "TimeGrain": "PT1M", "UnitName": "Count"}));
    }
    let upn = cast.upn();
    for (stream, rows) in staged.streams.iter_mut() {
        match stream.as_str() {
            "Microsoft-AzureActivity" => rows.push(json!({"TimeGenerated": at(-80), "Caller": upn, "CallerIpAddress": "203.0.113.10",
                "OperationNameValue": "MICROSOFT.WEB/SITES/CONFIG/WRITE", "ActivityStatusValue": "Success", "_ResourceId": format!("{APP_SITE}/config/appsettings"),
                "ResourceGroup": "prod", "CorrelationId": "c-appsettings", "Properties": "{}", "SubscriptionId": world::SUBSCRIPTION})),
            "Microsoft-SecurityAlert" => {
                for alert in rows.iter_mut() {
                    let mut entities: Vec<Value> = alert["Entities"].as_str().and_then(|e| serde_json::from_str(e).ok()).unwrap_or_default();
                    entities.push(json!({"$id": "20", "Type": "azure-resource", "ResourceId": APP_SITE}));
                    alert["Entities"] = json!(Value::Array(entities).to_string());
                }
            }
            _ => {}
        }
    }
    staged.streams.push(("Microsoft-AppRequests".into(), requests));
    staged.streams.push(("Microsoft-AppExceptions".into(), exceptions));
    staged.streams.push(("Microsoft-AzureMetrics".into(), metrics));
}

/// Stages a scenario through a Logs Ingestion endpoint (the local workspace's backfill route, which keeps the
/// rows' times) with our own client, which packs the calls and retries as it does for vendor events.
pub async fn stage(client: &IngestionClient, staged: &Staged) -> Result<(), IngestError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    for (stream, rows) in &staged.streams {
        let rows: Vec<Row> = rows.iter().map(|r| Row::from_checked_json(r.to_string())).collect();
        if let Some((_, e)) = client.upload(stream, &rows, deadline).await.failures.into_iter().next() {
            return Err(e);
        }
    }
    Ok(())
}

/// What the demo's host is worth, recorded where an organisation records it (`demo --asset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssetWorth {
    /// Listed in the High Value Assets watchlist and tagged `criticality=high`.
    Critical,
    /// Tagged `environment=dev`.
    Sandbox,
}

impl AssetWorth {
    pub fn parse(s: &str) -> Option<AssetWorth> {
        match s {
            "critical" => Some(AssetWorth::Critical),
            "sandbox" => Some(AssetWorth::Sandbox),
            _ => None,
        }
    }
}

/// Records what `host` is worth in the local workspace at `url`, as an analyst and the platform would: the
/// High Value Assets watchlist through the Watchlists API (with an ARM token), the resource's tags through
/// the workspace's staging route (Resource Graph then serves them).
pub async fn stage_asset_worth(url: &str, tokens: &crate::azure::identity::TokenSource, host: &str, worth: AssetWorth) -> Result<(), String> {
    let http = crate::azure::http::shared_client();
    let rid = world::host_resource_id(host);
    let tags = match worth {
        AssetWorth::Critical => serde_json::json!({"criticality": "high", "workload": "payments"}),
        AssetWorth::Sandbox => serde_json::json!({"environment": "dev", "owner": "platform-team"}),
    };
    let staged = http.put(format!("{url}/_local/resources")).json(&serde_json::json!([{"id": rid, "tags": tags}])).send().await.map_err(|e| e.to_string())?;
    if !staged.status().is_success() {
        return Err(format!("staging the host's tags: {}", staged.status()));
    }
    if worth == AssetWorth::Critical {
        let token = tokens.token().await.map_err(|e| e.to_string())?;
        let ws = crate::app::LOCAL_WORKSPACE_RESOURCE_ID;
        let csv = format!("Asset Type,Asset Id,Asset Name,Asset FQDN,IP Address,Tags\nAzure resource,{rid},{host},{host}.contoso.com,,payments\n");
        let body = serde_json::json!({"properties": {"displayName": "High Value Assets", "provider": "Microsoft", "source": "HighValueAssets.csv",
            "sourceType": "Local", "itemsSearchKey": "Asset Id", "contentType": "text/csv", "rawContent": csv}});
        let r = http
            .put(format!("{url}{ws}/providers/Microsoft.SecurityInsights/watchlists/HighValueAssets?api-version=2025-12-01"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !r.status().is_success() {
            return Err(format!("creating the HighValueAssets watchlist: {}", r.status()));
        }
    }
    Ok(())
}
