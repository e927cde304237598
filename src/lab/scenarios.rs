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
}

impl Scenario {
    pub const ALL: [Scenario; 11] = [
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
    world::build(&s.spec(), Some(cast), &s.incident_name(), number)
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
