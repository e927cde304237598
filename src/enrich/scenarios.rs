//! Generated incident scenarios for the demo and the tests: two weeks of ordinary telemetry (hourly Perf with a
//! working-day rhythm, daily sign-ins from home, routine control-plane work), then one scenario's activity around
//! the incident, an alert with its entities, and the incident, all staged through the ingestion API's wire
//! protocol into `Microsoft-<Table>` and `Custom-<Table>` streams.

use serde_json::{json, Value};

use crate::azure::logs_ingestion::{IngestError, IngestionClient};
use crate::model::schema::Row;
use crate::model::time::{format_ticks, parse_datetime_ticks, TICKS_PER_SEC};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Cryptojacking,
    BenignScaling,
    CredentialCompromise,
    Exfiltration,
    ConfigDrift,
    Nothing,
}

impl Scenario {
    pub const ALL: [Scenario; 6] = [
        Scenario::Cryptojacking,
        Scenario::BenignScaling,
        Scenario::CredentialCompromise,
        Scenario::Exfiltration,
        Scenario::ConfigDrift,
        Scenario::Nothing,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Cryptojacking => "cryptojacking",
            Scenario::BenignScaling => "benign-scaling",
            Scenario::CredentialCompromise => "credential-compromise",
            Scenario::Exfiltration => "exfiltration",
            Scenario::ConfigDrift => "config-drift",
            Scenario::Nothing => "nothing",
        }
    }

    pub fn parse(s: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|x| x.name() == s)
    }

    /// The incident's ARM name: stable per scenario.
    pub fn incident_name(self) -> String {
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, format!("sentinel-bridge:scenario:{}", self.name()).as_bytes()).to_string()
    }
}

/// Who and what the scenario is about; tests override these to try hostile names.
#[derive(Debug, Clone)]
pub struct Cast {
    pub account: String,
    pub upn_suffix: String,
    pub host: String,
    pub attacker_ip: String,
    pub title: String,
}

impl Default for Cast {
    fn default() -> Self {
        Cast {
            account: "alice".into(),
            upn_suffix: "contoso.com".into(),
            host: "acme-web-02".into(),
            attacker_ip: "198.51.100.23".into(),
            title: String::new(),
        }
    }
}

impl Cast {
    pub fn upn(&self) -> String {
        format!("{}@{}", self.account, self.upn_suffix)
    }
}

/// The incident's first activity in every scenario.
pub const T0: &str = "2026-11-20T10:00:00Z";

fn t0() -> i64 {
    parse_datetime_ticks(T0).expect("T0 parses")
}

fn at(offset_minutes: i64) -> String {
    format_ticks(t0() + offset_minutes * 60 * TICKS_PER_SEC)
}

/// A small deterministic noise source, so the same scenario always yields the same rows.
fn noise(i: u64) -> f64 {
    let x = i.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((x >> 33) % 1000) as f64 / 1000.0 - 0.5
}

/// Rows to stage, by stream.
pub struct Staged {
    pub streams: Vec<(String, Vec<Value>)>,
    pub incident_name: String,
}

pub fn build(s: Scenario, cast: &Cast) -> Staged {
    let upn = cast.upn();
    let mut perf = Vec::new();
    let hour = 60;
    // 17 days before T0 to 6 hours after, hourly.
    for h in -(17 * 24)..6 {
        let t = at(h * hour);
        let hod = ((h % 24) + 24 + 10) % 24; // T0 is 10:00
        let busy = (8..18).contains(&hod);
        let i = (h + 10_000) as u64;
        let mut cpu = if busy { 22.0 } else { 9.0 } + 3.0 * noise(i);
        let mut sent = if busy { 52_000.0 } else { 21_000.0 } + 4_000.0 * noise(i + 7);
        let mut recv = if busy { 81_000.0 } else { 30_000.0 } + 6_000.0 * noise(i + 13);
        let in_incident = (0..6).contains(&h);
        match s {
            Scenario::Cryptojacking if in_incident => cpu = 97.0 + noise(i),
            Scenario::BenignScaling if (0..3).contains(&h) => cpu = 84.0 + 2.0 * noise(i),
            Scenario::Exfiltration if (0..2).contains(&h) => sent = 48_000_000.0 + 1e6 * noise(i),
            Scenario::ConfigDrift if (0..2).contains(&h) => recv = 9_500_000.0 + 1e5 * noise(i),
            _ => {}
        }
        for (counter, value) in [("% Processor Time", cpu), ("Bytes Sent/sec", sent), ("Bytes Received/sec", recv)] {
            perf.push(json!({"TimeGenerated": t, "Computer": cast.host, "ObjectName": if counter.starts_with('%') { "Processor" } else { "Network Adapter" },
                "CounterName": counter, "InstanceName": "_Total", "CounterValue": value.max(0.0)}));
        }
    }
    let home = |t: String, ok: bool, ip: &str| {
        json!({"TimeGenerated": t, "UserPrincipalName": upn, "IPAddress": ip, "AutonomousSystemNumber": 3215, "ResultType": if ok { "0" } else { "50126" },
            "LocationDetails": {"countryOrRegion": "FR", "city": "Paris", "geoCoordinates": {"latitude": 48.8566, "longitude": 2.3522}},
            "AppDisplayName": "Azure Portal", "IsInteractive": true})
    };
    let mut signins = Vec::new();
    for d in 4..17 {
        signins.push(home(at(-(d * 24 * 60) - 60), true, "203.0.113.10"));
    }
    signins.push(home(at(-150), true, "203.0.113.10"));
    let abroad = |t: String, ok: bool, country: &str, city: &str, lat: f64, lon: f64, asn: i64, risk: &str| {
        json!({"TimeGenerated": t, "UserPrincipalName": upn, "IPAddress": cast.attacker_ip, "AutonomousSystemNumber": asn,
            "ResultType": if ok { "0" } else { "50126" }, "RiskLevelDuringSignIn": risk, "RiskState": if risk == "high" { "atRisk" } else { "none" },
            "LocationDetails": {"countryOrRegion": country, "city": city, "geoCoordinates": {"latitude": lat, "longitude": lon}},
            "AppDisplayName": "Azure Portal", "IsInteractive": true})
    };
    match s {
        Scenario::Cryptojacking => signins.push(abroad(at(-20), true, "NL", "Amsterdam", 52.37, 4.90, 14061, "none")),
        Scenario::CredentialCompromise => {
            for k in 0..6 {
                signins.push(abroad(at(-100 + k), false, "BR", "São Paulo", -23.55, -46.63, 28573, "none"));
            }
            signins.push(abroad(at(-90), true, "BR", "São Paulo", -23.55, -46.63, 28573, "high"));
        }
        _ => {}
    }
    let activity = |t: String, caller: &str, op: &str, resource: &str| {
        json!({"TimeGenerated": t, "Caller": caller, "CallerIpAddress": "203.0.113.10", "OperationNameValue": op, "ActivityStatusValue": "Success",
            "_ResourceId": format!("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/prod/providers/{resource}"),
            "ResourceGroup": "prod", "CategoryValue": "Administrative"})
    };
    let mut activities = vec![
        // Routine work in the baseline: alice scales the web tier every few days.
        activity(at(-10 * 24 * 60), &upn, "MICROSOFT.COMPUTE/VIRTUALMACHINESCALESETS/WRITE", "Microsoft.Compute/virtualMachineScaleSets/web-vmss"),
        activity(at(-6 * 24 * 60), &upn, "MICROSOFT.COMPUTE/VIRTUALMACHINESCALESETS/WRITE", "Microsoft.Compute/virtualMachineScaleSets/web-vmss"),
    ];
    let mut attacker_activity = |t: String, op: &str, res: &str| {
        let mut a = activity(t, &upn, op, res);
        a["CallerIpAddress"] = json!(cast.attacker_ip);
        activities.push(a);
    };
    match s {
        Scenario::Cryptojacking => attacker_activity(at(-10), "MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE", "Microsoft.Compute/virtualMachines/gpu-miner-01"),
        Scenario::BenignScaling => activities.push(activity(at(-5), &upn, "MICROSOFT.COMPUTE/VIRTUALMACHINESCALESETS/WRITE", "Microsoft.Compute/virtualMachineScaleSets/web-vmss")),
        Scenario::CredentialCompromise => attacker_activity(at(10), "MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE", "Microsoft.Authorization/roleAssignments/3f1e"),
        Scenario::Exfiltration => attacker_activity(at(-15), "MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION", "Microsoft.Storage/storageAccounts/finance-data"),
        Scenario::ConfigDrift => {
            attacker_activity(at(-30), "MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/SECURITYRULES/WRITE", "Microsoft.Network/networkSecurityGroups/web-nsg/securityRules/allow-any-3389");
            attacker_activity(at(-25), "MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE", "Microsoft.Authorization/roleAssignments/9a2c");
        }
        Scenario::Nothing => {}
    }
    let mut noxys = Vec::new();
    if s == Scenario::Exfiltration {
        for k in 0..3 {
            noxys.push(json!({"TimeGenerated": at(-40 + k * 5), "EventTime": at(-40 + k * 5), "EventType": "interaction.policy_violated", "UserId": upn, "PlatformId": "deepseek",
                "RiskScore": 0.97, "Classifications": [{"type": "IBAN", "score": 0.99}], "PolicyDecisions": [{"action": "block"}], "EventId": format!("evt_exfil_{k}")}));
        }
    }
    let alert_id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, format!("sentinel-bridge:scenario-alert:{}", s.name()).as_bytes()).to_string();
    let mut entities = vec![
        json!({"$id": "2", "Type": "account", "Name": cast.account, "UPNSuffix": cast.upn_suffix}),
        json!({"$id": "3", "Type": "host", "HostName": cast.host}),
    ];
    if s != Scenario::Nothing && s != Scenario::BenignScaling {
        entities.push(json!({"$id": "4", "Type": "ip", "Address": cast.attacker_ip}));
    }
    let (alert_name, severity) = match s {
        Scenario::Cryptojacking => ("High CPU on a production VM after a new sign-in", "Medium"),
        Scenario::BenignScaling => ("High CPU on a production VM", "Low"),
        Scenario::CredentialCompromise => ("Suspicious sign-in properties", "High"),
        Scenario::Exfiltration => ("Unusual outbound data volume", "Medium"),
        Scenario::ConfigDrift => ("Network security group opened to the internet", "Medium"),
        Scenario::Nothing => ("Rare process on a web server", "Low"),
    };
    let title = if cast.title.is_empty() { alert_name.to_string() } else { cast.title.clone() };
    let alert = json!({"TimeGenerated": at(5), "SystemAlertId": alert_id, "DisplayName": alert_name, "AlertName": alert_name, "AlertSeverity": severity,
        "ProductName": "Azure Sentinel", "ProviderName": "ASI Scheduled Alerts", "Status": "New", "StartTime": T0, "EndTime": at(30),
        "Tactics": "Impact", "Entities": Value::Array(entities).to_string(), "CompromisedEntity": cast.host});
    let name = s.incident_name();
    let incident = json!({"TimeGenerated": at(35), "IncidentName": name, "Title": title, "Severity": severity, "Status": "New",
        "IncidentNumber": 100 + Scenario::ALL.iter().position(|x| *x == s).unwrap_or(0) as i64, "CreatedTime": at(35), "LastModifiedTime": at(35),
        "FirstActivityTime": T0, "LastActivityTime": at(30), "AlertIds": [alert_id], "ProviderName": "Azure Sentinel", "Description": "Staged by sentinel-bridge"});
    let mut streams = vec![
        ("Microsoft-Perf".to_string(), perf),
        ("Microsoft-SigninLogs".to_string(), signins),
        ("Microsoft-AzureActivity".to_string(), activities),
        ("Microsoft-SecurityAlert".to_string(), vec![alert]),
        ("Microsoft-SecurityIncident".to_string(), vec![incident]),
    ];
    if !noxys.is_empty() {
        streams.push(("Custom-NoxysEvents_CL".to_string(), noxys));
    }
    Staged { streams, incident_name: name }
}

/// Stages a scenario through a Logs Ingestion endpoint (the local workspace) with our own client, which packs
/// the calls and retries as it does for vendor events.
pub async fn stage(client: &IngestionClient, staged: &Staged) -> Result<(), IngestError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    for (stream, rows) in &staged.streams {
        let rows: Vec<Row> = rows.iter().map(|r| Row::from_checked_json(r.to_string())).collect();
        if let Some((_, e)) = client.upload(stream, &rows, deadline).await.failures.into_iter().next() {
            return Err(e);
        }
    }
    Ok(())
}
