//! What the enrichment reads from outside before it queries anything: the playbook's trigger body, and
//! Sentinel's entities and alerts as JSON (read for names, and as evidence of what the alert says). Any of
//! them gives an answer, never a panic; the alert's evidence is bounded; every name the queries will bind is
//! lower-cased and bounded, and a frame of resolved names (as the Query API returns them) merges
//! without panicking either; command lines on a host and resource ids are read as data, and so are the
//! new planes' fields (VMConnection's resolved names, Key Vault callers and hours, blob readers' addresses).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentinel_bridge::azure::sentinel::{Alert, Entity};
use sentinel_bridge::enrich::entities::{self, Names};
use sentinel_bridge::enrich::rows::{self, ResolvedName};
use sentinel_bridge::kql::{Column, Frame, KType, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let _ = sentinel_bridge::enrich::trigger::incident_from_body(&json);
    let entities: Vec<Entity> = serde_json::from_value(json.get("entities").cloned().unwrap_or_default()).unwrap_or_default();
    let alerts: Vec<Alert> = serde_json::from_value(json.get("alerts").cloned().unwrap_or_default()).unwrap_or_default();
    let subjects = entities::subjects_of(&entities, &alerts);
    // The alert as evidence: whatever its fields hold, at most one signal per class, each bounded and cited.
    let from_alerts = sentinel_bridge::enrich::signals::triggering::own_alerts(&alerts, &entities);
    for s in &from_alerts {
        assert!((0.0..=1.0).contains(&s.strength) && !s.evidence.is_empty() && s.evidence.len() <= 5, "{s:?}");
        assert!(s.evidence.iter().all(|e| e.table == "SecurityAlert" && e.detail.chars().count() <= 800 && e.key.chars().count() <= 200), "{s:?}");
        assert_eq!(from_alerts.iter().filter(|o| o.name == s.name).count(), 1);
    }
    for name in subjects.accounts.iter().chain(&subjects.hosts).chain(&subjects.resources).chain(&subjects.ips) {
        assert!(name.len() <= 512 && !name.trim().is_empty(), "{name:?}");
    }
    let mut names = Names::of(&subjects);
    for set in [&names.accounts, &names.host_names, &names.host_shorts, &names.resources, &names.ips] {
        assert!(set.iter().all(|n| n.to_lowercase() == *n), "{set:?}");
    }
    // The same strings as a resolution frame.
    let text: Vec<String> = json.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    let frame = Frame {
        columns: ["Kind", "Name", "Id", "Source", "Rows"].iter().zip([KType::String, KType::String, KType::String, KType::String, KType::Long]).map(|(n, k)| Column { name: n.to_string(), ktype: k }).collect(),
        rows: text
            .chunks(2)
            .map(|c| vec![Value::str(["host", "resource", "account", "service principal"][c[0].len() % 4]), Value::str(&c[0]), Value::str(c.get(1).map_or("", |s| s.as_str())), Value::str("Perf"), Value::Long(1)].into())
            .collect(),
    };
    // Read through the resolution query's row type, as the enrichment reads it.
    let found: Vec<ResolvedName> = rows::read(&frame).expect("the resolution frame has its row type's columns");
    let r = entities::resolve(&subjects, &mut names, Some(&found));
    let _ = entities::describe(&r, &subjects);
    // The same strings as command lines on a host (SecurityEvent), and as resource ids business impact would
    // put in a Resource Graph query or a URL: only a well-formed ARM id passes, and it carries no quote, space
    // or query character.
    let processes: Vec<rows::HostProcess> =
        text.iter().map(|t| rows::HostProcess { time: Some(0), computer: t.clone(), account: t.clone(), command_line: t.clone() }).collect();
    for s in sentinel_bridge::enrich::signals::host::host_processes(&processes) {
        assert!(s.evidence.len() <= 5 && s.evidence.iter().all(|e| e.detail.chars().count() <= 3_200), "{s:?}");
    }
    // The same strings as a host's destinations, a vault's callers and a storage account's readers.
    let connections: Vec<rows::HostConnection> = text
        .iter()
        .enumerate()
        .map(|(i, t)| rows::HostConnection {
            host: t.clone(),
            remote_ip: t.clone(),
            port: Some((i * 1111) as f64),
            before: Some((i % 2) as f64),
            during: Some(1.0),
            sent: Some(1e8 * (i % 3) as f64),
            sent_before: Some(i as f64),
            links: Some(1.0),
            last: Some(0),
            names: t.clone(),
            threat: t.clone(),
            process: t.clone(),
        })
        .collect();
    for s in sentinel_bridge::enrich::signals::network::host_connections(&connections) {
        assert!((0.0..=1.0).contains(&s.strength) && s.evidence.len() <= 5, "{s:?}");
    }
    let vault: Vec<rows::VaultAccess> = text
        .iter()
        .enumerate()
        .map(|(i, t)| rows::VaultAccess {
            caller: t.clone(),
            vault: t.clone(),
            ip: t.clone(),
            during: i % 2 == 0,
            calls: Some(i as f64),
            items: Some((i * 7) as f64),
            hours: t.clone(),
            last: Some(0),
            table: t.clone(),
        })
        .collect();
    for s in sentinel_bridge::enrich::signals::vault::vault_access(&vault) {
        assert!((0.0..=1.0).contains(&s.strength) && s.evidence.len() <= 5, "{s:?}");
    }
    let reads: Vec<rows::StorageReads> = text
        .iter()
        .enumerate()
        .map(|(i, t)| rows::StorageReads {
            account: t.clone(),
            ip: t.clone(),
            during: i % 2 == 1,
            reads: Some((i * 100) as f64),
            bytes: Some((i as f64) * 1e8),
            days: Some(0.0),
            auth: t.clone(),
            last: Some(0),
        })
        .collect();
    for s in sentinel_bridge::enrich::signals::storage::storage_reads(&reads) {
        assert!((0.0..=1.0).contains(&s.strength) && s.evidence.len() <= 5, "{s:?}");
    }
    for t in &text {
        if let Some(id) = sentinel_bridge::azure::resources::ResourceId::parse(t) {
            assert!(id.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b"/._()-".contains(&b)), "{id}");
        }
    }
});
