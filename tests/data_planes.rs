//! The data planes beyond sign-ins and metrics, each read as Azure writes it, through the real clients and the
//! local workspace over HTTP: where the hosts connect (VMConnection), Key Vault's data plane (AuditEvent in
//! AzureDiagnostics), and a host found by its ARM id (`_ResourceId`, tied to its names by Heartbeat) when the
//! alert names it by nothing else.

mod common;

use common::*;
use sentinel_bridge::lab::scenarios::{build, Cast, Scenario};
use serde_json::{json, Value};

const HOST_RID: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/prod/providers/Microsoft.Compute/virtualMachines/acme-web-02";

fn signal<'a>(e: &'a Value, name: &str) -> Option<&'a Value> {
    e["signals"].as_array().unwrap().iter().find(|s| s["name"] == name)
}

fn query_status(e: &Value, name: &str) -> String {
    e["queries"].as_array().unwrap().iter().find(|q| q["name"] == name).map(|q| q["status"].as_str().unwrap().to_string()).unwrap_or_default()
}

#[tokio::test]
async fn a_miner_is_seen_on_the_network_by_its_pool_connections() {
    let t = TestBridge::start(&[]).await;
    let name = t.stage_scenario(Scenario::MiningPool, &Cast::default()).await;
    let e = t.enrich_incident(&name).await;
    assert_eq!(query_status(&e, "host_connections"), "ok");
    assert_eq!(e["leading"]["id"], "cryptojacking", "{}", e["hypotheses"]);
    let pool = signal(&e, "mining_pool").unwrap_or_else(|| panic!("no mining_pool: {}", e["signals"]));
    let ev = &pool["evidence"][0];
    assert_eq!(ev["table"], "VMConnection");
    assert!(ev["detail"].as_str().unwrap().contains("a destination new for the host"), "{ev}");
    // The host's own destinations (its database, the platform's agent endpoint) are not evidence.
    assert!(!pool.to_string().contains("10.0.2.4") && !pool.to_string().contains("168.63.129.16"), "{pool}");
    // The comment cites the table, the time and the host.
    let html = e["commentHtml"].as_str().unwrap();
    assert!(html.contains("VMConnection"), "{html}");
}

#[tokio::test]
async fn secrets_read_in_bulk_are_taken_data_and_a_pipeline_s_fresh_addresses_are_not_new() {
    let t = TestBridge::start(&[]).await;
    let name = t.stage_scenario(Scenario::VaultSecrets, &Cast::default()).await;
    let e = t.enrich_incident(&name).await;
    assert_eq!(query_status(&e, "vault_access"), "ok");
    assert_eq!(e["leading"]["id"], "data_exfiltration", "{}", e["hypotheses"]);
    let burst = signal(&e, "vault_secret_burst").unwrap_or_else(|| panic!("no burst: {}", e["signals"]));
    assert!(burst["evidence"][0]["detail"].as_str().unwrap().contains("from an address it never used for the vault"), "{burst}");
    assert_eq!((burst["evidence"][0]["table"].as_str(), burst["evidence"][0]["key"].as_str()), (Some("AzureDiagnostics"), Some("kv-prod")));

    let t = TestBridge::start(&[]).await;
    let name = t.stage_scenario(Scenario::PipelineSecrets, &Cast::default()).await;
    let e = t.enrich_incident(&name).await;
    assert_eq!(query_status(&e, "vault_access"), "ok");
    assert!(signal(&e, "vault_new_network").is_none() && signal(&e, "vault_secret_burst").is_none(), "{}", e["signals"]);
    assert_eq!(e["leading"]["id"], "no_finding", "{}", e["hypotheses"]);
}

/// The alert names the host only by its azureID (its computer name changed since, or the product writes
/// another): every table with `_ResourceId` still finds it, and Heartbeat gives back its name.
#[tokio::test]
async fn a_host_named_only_by_its_azure_id_is_found_in_every_table_that_has_it() {
    let t = TestBridge::start(&[]).await;
    let mut staged = build(Scenario::MiningPool, &Cast::default());
    let alerts = &mut staged.streams.iter_mut().find(|(s, _)| s == "Microsoft-SecurityAlert").unwrap().1;
    for a in alerts.iter_mut() {
        let entities: Vec<Value> = serde_json::from_str(a["Entities"].as_str().unwrap()).unwrap();
        let renamed: Vec<Value> = entities
            .into_iter()
            .map(|e| if e["Type"] == "host" { json!({"$id": e["$id"], "Type": "host", "HostName": "renamed-vm-01", "AzureID": HOST_RID}) } else { e })
            .collect();
        a["Entities"] = json!(Value::Array(renamed).to_string());
        a["CompromisedEntity"] = json!("renamed-vm-01");
    }
    t.stage(&staged).await;
    let e = t.enrich_incident(&staged.incident_name).await;
    let pool = signal(&e, "mining_pool").unwrap_or_else(|| panic!("VMConnection not found by _ResourceId: {}", e["signals"]));
    assert_eq!(pool["evidence"][0]["key"], "acme-web-02", "Heartbeat named the machine");
    assert!(signal(&e, "host_brute_force").is_some(), "SecurityEvent or Syslog found by _ResourceId: {}", e["signals"]);
    assert!(signal(&e, "cpu_spike").is_some(), "Perf found by _ResourceId: {}", e["signals"]);
    assert_eq!(e["leading"]["id"], "cryptojacking", "{}", e["hypotheses"]);
}

/// A stolen account rewrites an App Service's settings and the app starts failing: Application Insights'
/// requests (workspace-based AppRequests, AppExceptions) and the site's `Http5xx` metric say so against the
/// app's own hours, and the settings write is named, beside the change the model weighs.
#[tokio::test]
async fn an_app_failing_after_its_settings_changed_is_read_from_app_insights_and_its_metrics() {
    let t = TestBridge::start(&[]).await;
    let name = t.stage_scenario(Scenario::AppSettings, &Cast::default()).await;
    let e = t.enrich_incident(&name).await;
    assert_eq!(query_status(&e, "app_requests"), "ok");
    let degraded = signal(&e, "service_degraded").unwrap_or_else(|| panic!("no service_degraded: {}", e["signals"]));
    let tables: Vec<&str> = degraded["evidence"].as_array().unwrap().iter().map(|ev| ev["table"].as_str().unwrap()).collect();
    assert!(tables.contains(&"AppRequests, AppExceptions") && tables.contains(&"AzureMetrics"), "{degraded}");
    let text = degraded.to_string();
    assert!(text.contains("FailedRequests") && text.contains("Http5xx"), "{degraded}");
    let settings = signal(&e, "app_service_config").unwrap_or_else(|| panic!("no app_service_config: {}", e["signals"]));
    assert!(settings["evidence"][0]["detail"].as_str().unwrap().contains("MICROSOFT.WEB/SITES/CONFIG/WRITE"), "{settings}");
    // Context, not a verdict of its own: the drift the scenario stages still leads.
    assert_eq!(e["leading"]["id"], "config_drift", "{}", e["hypotheses"]);
    let html = e["commentHtml"].as_str().unwrap();
    assert!(html.contains("AppRequests, AppExceptions"), "{html}");
    // A month of requests with no exception is a month of zeros, not a missing history; and a first failure
    // after a month at zero is a finite surprise.
    assert!(!html.contains("under a day of AppRequests") && !html.contains("z = inf"), "{html}");
}
