//! Business impact end to end: the local workspace's Watchlists API and `Watchlist` table, Resource Graph
//! (paging, quota) and Resource Health, as Azure serves them, and the enrichment that reads all three to set
//! an incident's priority: a critical asset, a sandbox and an unknown one.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use sentinel_bridge::azure::identity::{LoopbackClientCredential, TokenSource, MONITOR_SCOPE};
use sentinel_bridge::azure::resources::{ResourceId, ResourcesClient, ResourcesError};
use sentinel_bridge::lab::scenarios::{Cast, Scenario};
use sentinel_bridge::local_azure::arm_resources::GraphQuota;
use sentinel_bridge::local_azure::RunningWorkspace;
use serde_json::{json, Value};

const ARM: &str = "https://management.azure.com/.default";
const WS: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers/Microsoft.OperationalInsights/workspaces/local/providers/Microsoft.SecurityInsights";
const HOST_RID: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/prod/providers/Microsoft.Compute/virtualMachines/acme-web-02";

fn tokens(ws: &RunningWorkspace, scope: &str) -> Arc<TokenSource> {
    Arc::new(TokenSource::new(Arc::new(LoopbackClientCredential::new(&ws.url(), "t", "c", "s")), scope))
}

async fn arm(ws: &RunningWorkspace, method: Method, path: &str, body: Option<Value>) -> (u16, Value, reqwest::header::HeaderMap) {
    let token = tokens(ws, ARM).token().await.unwrap();
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut req = reqwest::Client::new().request(method, format!("{}{path}{sep}api-version=2025-12-01", ws.url())).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null), headers)
}

fn high_value_assets(csv: &str) -> Value {
    json!({"properties": {"displayName": "High Value Assets", "provider": "Microsoft", "source": "HighValueAssets.csv", "sourceType": "Local",
        "itemsSearchKey": "Asset Id", "contentType": "text/csv", "rawContent": csv}})
}

async fn stage_resources(ws: &RunningWorkspace, resources: Value) {
    let r = reqwest::Client::new().put(format!("{}/_local/resources", ws.url())).json(&resources).send().await.unwrap();
    assert_eq!(r.status(), 204);
}

#[tokio::test]
async fn watchlists_are_kept_in_the_watchlist_table_as_sentinel_keeps_them() {
    let ws = start_workspace(builtin_workspace_config()).await;
    let csv = "Asset Type,Asset Id,Asset Name,Asset FQDN,IP Address,Tags\nAzure resource,/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/pay-01,pay-01,pay-01.contoso.com,10.0.0.4,\"payments, pci\"\nDevice,dc-01,dc-01,dc-01.contoso.com,10.0.0.5,\n";
    let (status, body, _) = arm(&ws, Method::PUT, &format!("{WS}/watchlists/HighValueAssets"), Some(high_value_assets(csv))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["properties"]["itemsSearchKey"], "Asset Id");
    let (_, items, _) = arm(&ws, Method::GET, &format!("{WS}/watchlists/HighValueAssets/watchlistItems"), None).await;
    let items = items["value"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    assert!(items.iter().any(|i| i["properties"]["itemsKeyValue"]["Tags"] == "payments, pci"), "a quoted field keeps its comma");
    // What `_GetWatchlist` reads: each item's latest row, not deleted.
    let live = "Watchlist | where _DTItemType == 'watchlist-item' and WatchlistAlias == 'HighValueAssets' | summarize arg_max(_DTTimestamp, _DTItemStatus, SearchKey) by _DTItemId | where _DTItemStatus != 'Delete' | order by SearchKey asc";
    let f = ws.workspace.query(live).unwrap();
    assert_eq!(f.rows.len(), 2);
    assert_eq!(f.rows[1][3].to_text(), "dc-01", "the search key is the item's 'Asset Id'");
    // New content replaces the items: 200, the old ones deleted.
    let (status, _, _) =
        arm(&ws, Method::PUT, &format!("{WS}/watchlists/highvalueassets"), Some(high_value_assets("Asset Type,Asset Id\nDevice,dc-02\n"))).await;
    assert_eq!(status, 200);
    let f = ws.workspace.query(live).unwrap();
    assert_eq!(f.rows.len(), 1);
    assert_eq!(f.rows[0][3].to_text(), "dc-02");
    // One item by its GUID, then deleted.
    let (_, items, _) = arm(&ws, Method::GET, &format!("{WS}/watchlists/HighValueAssets/watchlistItems"), None).await;
    let id = items["value"][0]["name"].as_str().unwrap().to_string();
    let (status, _, _) = arm(&ws, Method::DELETE, &format!("{WS}/watchlists/HighValueAssets/watchlistItems/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(ws.workspace.query(live).unwrap().rows.len(), 0);
    // Mistakes are 400s that name them.
    for (body, says) in [
        (json!({"properties": {"provider": "p", "itemsSearchKey": "k", "rawContent": "k\n1"}}), "displayName"),
        (high_value_assets("Name,Id\nx,1\n"), "Asset Id"),
        (high_value_assets("Asset Id,Name\n1\n"), "line 2"),
        (high_value_assets("Asset Id,\"open\n"), "not closed"),
    ] {
        let (status, e, _) = arm(&ws, Method::PUT, &format!("{WS}/watchlists/Other"), Some(body)).await;
        assert_eq!(status, 400, "{e}");
        assert!(e["error"]["message"].as_str().unwrap().contains(says), "{e}");
    }
    // Delete: 202 with a status URL that is already final, then 204 when there is nothing left.
    let (status, _, headers) = arm(&ws, Method::DELETE, &format!("{WS}/watchlists/HighValueAssets"), None).await;
    assert_eq!(status, 202);
    let op = headers["azure-asyncoperation"].to_str().unwrap().to_string();
    assert!(op.contains("/watchlistStatuses/"), "{op}");
    let (status, _, _) = arm(&ws, Method::DELETE, &format!("{WS}/watchlists/HighValueAssets"), None).await;
    assert_eq!(status, 204);
    let (status, _, _) = arm(&ws, Method::GET, &format!("{WS}/watchlists/HighValueAssets"), None).await;
    assert_eq!(status, 404);
    // The Logs Ingestion API does not take the Watchlist table: only the service writes it.
    let token = tokens(&ws, MONITOR_SCOPE).token().await.unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/dataCollectionRules/dcr-test/streams/Microsoft-Watchlist?api-version=2023-01-01", ws.url()))
        .bearer_auth(token)
        .json(&json!([{"TimeGenerated": "2026-12-01T00:00:00Z", "SearchKey": "x"}]))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
}

#[tokio::test]
async fn resource_graph_pages_with_its_skip_token_and_answers_with_its_quota() {
    let mut config = builtin_workspace_config();
    config.resource_graph_quota = GraphQuota { queries: 2, window: Duration::from_secs(2) };
    let ws = start_workspace(config).await;
    let many: Vec<Value> = (0..250)
        .map(|i| json!({"id": format!("/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-{i:03}"), "tags": {"n": i.to_string()}}))
        .collect();
    stage_resources(&ws, Value::Array(many)).await;
    let token = tokens(&ws, ARM).token().await.unwrap();
    let post = |body: Value| {
        let (url, token) = (format!("{}/providers/Microsoft.ResourceGraph/resources?api-version=2024-04-01", ws.url()), token.clone());
        async move { reqwest::Client::new().post(url).bearer_auth(token).json(&body).send().await.unwrap() }
    };
    let query = "resources | where type == 'microsoft.compute/virtualmachines' | project id, tags | order by id asc";
    let first = post(json!({"query": query, "options": {"$top": 100}})).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["x-ms-user-quota-remaining"], "1");
    assert!(first.headers()["x-ms-user-quota-resets-after"].to_str().unwrap().starts_with("00:00:0"));
    let page: Value = first.json().await.unwrap();
    assert_eq!((page["totalRecords"].as_u64(), page["count"].as_u64(), page["resultTruncated"].as_str()), (Some(250), Some(100), Some("false")));
    let token_1 = page["$skipToken"].as_str().unwrap().to_string();
    // The token is good only with its own query.
    let wrong = post(json!({"query": "resources | project id", "options": {"$skipToken": token_1}})).await;
    assert_eq!(wrong.status(), 400);
    // The quota (2 per 2 s here) is spent: 429 with Retry-After and the quota headers.
    let throttled = post(json!({"query": query})).await;
    assert_eq!(throttled.status(), 429);
    assert_eq!(throttled.headers()["x-ms-user-quota-remaining"], "0");
    assert!(throttled.headers().contains_key("retry-after"));
    // The client waits its turn, and reads every id asked for (paging past the first answer when needed).
    let client = ResourcesClient::new(&ws.url(), tokens(&ws, ARM), Duration::from_secs(30));
    let ids: Vec<ResourceId> = (0..250)
        .map(|i| ResourceId::parse(&format!("/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/VM-{i:03}")).unwrap())
        .collect();
    let started = Instant::now();
    let tags = client.tags(&ids).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300), "the throttled call was waited out");
    assert_eq!(tags.len(), 250, "ids match without case");
    assert_eq!(tags["/subscriptions/s1/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm-007"]["n"], "7");
    // A query the engine cannot run is a 400 naming the problem.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let bad = post(json!({"query": "resources | where"})).await;
    assert_eq!(bad.status(), 400);
    let e: Value = bad.json().await.unwrap();
    assert_eq!(e["error"]["details"][0]["code"], "InvalidQuery");
}

#[tokio::test]
async fn resource_health_and_resource_graph_need_reader() {
    let ws = start_workspace(builtin_workspace_config()).await;
    stage_resources(
        &ws,
        json!([{"id": HOST_RID, "health": {"availabilityState": "Degraded", "summary": "High disk latency"}}, {"id": format!("{HOST_RID}-b")}]),
    )
    .await;
    let client = ResourcesClient::new(&ws.url(), tokens(&ws, ARM), Duration::from_secs(10));
    let a = client.availability(&ResourceId::parse(HOST_RID).unwrap()).await.unwrap().unwrap();
    assert_eq!(a.availability_state.as_deref(), Some("Degraded"));
    let b = client.availability(&ResourceId::parse(&format!("{HOST_RID}-b")).unwrap()).await.unwrap().unwrap();
    assert_eq!(b.availability_state.as_deref(), Some("Available"), "nothing staged: available");
    assert_eq!(client.availability(&ResourceId::parse(&format!("{HOST_RID}-gone")).unwrap()).await.unwrap(), None, "404: unknown");
    let (status, _, _) =
        arm(&ws, Method::GET, &format!("{HOST_RID}/providers/Microsoft.ResourceHealth/availabilityStatuses/current?api-version=2015-01-01"), None).await;
    assert_eq!(status, 400, "an unknown api-version");

    let mut config = builtin_workspace_config();
    config.arm_reader = false;
    let ws = start_workspace(config).await;
    stage_resources(&ws, json!([{"id": HOST_RID}])).await;
    let client = ResourcesClient::new(&ws.url(), tokens(&ws, ARM), Duration::from_secs(10));
    let id = ResourceId::parse(HOST_RID).unwrap();
    assert!(matches!(client.availability(&id).await, Err(ResourcesError::Forbidden { code, .. }) if code == "AuthorizationFailed"));
    let e = client.tags(&[id]).await.unwrap_err();
    assert!(e.to_string().contains("Reader"), "{e}");
}

fn severity(t: &TestBridge, name: &str) -> String {
    let f = t.ws.workspace.query(&format!("SecurityIncident | where IncidentName == '{name}' | summarize arg_max(TimeGenerated, Severity)")).unwrap();
    f.rows[0][1].to_text()
}

fn actions(e: &Value) -> Vec<String> {
    e["actions"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn business_impact_escalates_a_critical_asset_and_never_a_sandbox() {
    // Critical: listed in High Value Assets, and unwell. Configuration drift, Medium on an unknown asset, is
    // High on this one (under the threshold too, without the label: `publish`'s unit tests).
    let t = TestBridge::start(&[("ENRICH_MODE", "act"), ("ENRICH_ACT_THRESHOLD", "0.7")]).await;
    let name = t.stage_scenario(Scenario::ConfigDrift, &Cast::default()).await;
    let csv = format!("Asset Type,Asset Id,Asset Name,Asset FQDN,IP Address,Tags\nAzure resource,{HOST_RID},acme-web-02,acme-web-02.contoso.com,,payments\n");
    let (status, _, _) = arm(&t.ws, Method::PUT, &format!("{WS}/watchlists/HighValueAssets"), Some(high_value_assets(&csv))).await;
    assert_eq!(status, 201);
    stage_resources(&t.ws, json!([{"id": HOST_RID, "tags": {"Environment": "dev"}, "health": {"availabilityState": "Degraded", "summary": "CPU saturated"}}]))
        .await;
    let e = t.enrich_incident(&name).await;
    assert_eq!(e["leading"]["id"], "config_drift");
    assert_eq!(e["businessImpact"]["rating"], "critical", "a watchlist entry outweighs a dev tag: {}", e["businessImpact"]);
    assert_eq!(actions(&e), ["applied: label sentinel-bridge:config_drift", "applied: severity Medium → High"], "{e}");
    assert_eq!(severity(&t, &name), "High");
    let html = e["commentHtml"].as_str().unwrap();
    assert!(
        html.contains("<b>Business impact:</b> business-critical: acme-web-02 (listed in the HighValueAssets watchlist as Azure resource). A threat"),
        "{html}"
    );
    assert!(html.contains("Resource Health: acme-web-02 is Degraded (CPU saturated)"), "{html}");
    let lead_at = html.find("Entry point").or(html.find("Business impact")).unwrap();
    assert!(lead_at < html.find("Recommendation").unwrap(), "impact comes before the recommendation");
    for run in ["high_value_assets", "resource_graph", "resource_health"] {
        assert!(e["queries"].as_array().unwrap().iter().any(|q| q["name"] == run && q["status"] == "ok"), "{run}: {}", e["queries"]);
    }

    // Sandbox: tagged dev, not listed. Labelled when confident, never raised.
    let t = TestBridge::start(&[("ENRICH_MODE", "act"), ("ENRICH_ACT_THRESHOLD", "0.7")]).await;
    let name = t.stage_scenario(Scenario::Cryptojacking, &Cast::default()).await;
    stage_resources(&t.ws, json!([{"id": HOST_RID, "tags": {"env": "Dev", "owner": "alice"}}])).await;
    let e = t.enrich_incident(&name).await;
    assert_eq!(e["businessImpact"]["rating"], "sandbox");
    assert_eq!(actions(&e), ["applied: label sentinel-bridge:cryptojacking", "severity not raised: a sandbox: acme-web-02 (tag env=Dev)"], "{e}");
    assert_eq!(severity(&t, &name), "Medium");
    assert!(e["commentHtml"].as_str().unwrap().contains("<b>Business impact:</b> a sandbox: acme-web-02 (tag env=Dev). Not escalated"));

    // A workspace that never had a watchlist has no Watchlist table: nothing is listed, and that is no failure.
    let mut config = builtin_workspace_config();
    config.absent_tables = vec!["Watchlist".into()];
    let t = TestBridge::start_with(config, &[]).await;
    let name = t.stage_scenario(Scenario::Cryptojacking, &Cast::default()).await;
    let e = t.enrich_incident(&name).await;
    let run = e["queries"].as_array().unwrap().iter().find(|q| q["name"] == "high_value_assets").unwrap().clone();
    assert!(run["status"].as_str().unwrap().starts_with("skipped: the workspace has no Watchlist table"), "{run}");
    assert_eq!((e["degraded"].as_bool(), e["businessImpact"]["gaps"].as_array().map(Vec::len)), (Some(false), Some(0)), "{}", e["businessImpact"]);

    // Unknown: nothing says; acting as before (confident threat: High). Without Reader, the comment says what
    // was not read, and the asset is not taken for critical or sandbox.
    let mut config = builtin_workspace_config();
    config.arm_reader = false;
    let t = TestBridge::start_with(config, &[("ENRICH_MODE", "act"), ("ENRICH_ACT_THRESHOLD", "0.7")]).await;
    let name = t.stage_scenario(Scenario::Cryptojacking, &Cast::default()).await;
    let e = t.enrich_incident(&name).await;
    assert_eq!(e["businessImpact"]["rating"], "unknown");
    assert_eq!(actions(&e), ["applied: label sentinel-bridge:cryptojacking", "applied: severity Medium → High"], "{e}");
    let html = e["commentHtml"].as_str().unwrap();
    assert!(html.contains("unknown: no High Value Assets entry, criticality or environment tag for acme-web-02"), "{html}");
    assert!(html.contains("Reader on the resources is needed"), "{html}");
    assert!(e["degraded"].as_bool().unwrap());
}
