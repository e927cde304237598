//! ARM's read of a data collection rule (`GET /subscriptions/{s}/resourceGroups/{g}/providers/
//! Microsoft.Insights/dataCollectionRules/{name}?api-version=2024-03-11`, token for
//! `https://management.azure.com`): the rule's immutable id, its endpoint, its stream declarations as the
//! workspace's ingestion endpoint enforces them, its destination and data flows, as the 2024-03-11 resource
//! carries them, so `doctor` can compare what is deployed with what the mappings write.

use std::collections::HashSet;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::{azure_error, Workspace};

pub const DCR_API_VERSION: &str = "2024-03-11";

/// What an ARM path names: a data collection rule or a data collection endpoint, by name.
pub(super) enum ArmPath {
    Rule(String),
    Endpoint(String),
}

/// Whether an ARM path names a data collection rule or endpoint.
pub(super) fn parse(path: &str) -> Option<ArmPath> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let eq = |i: usize, s: &str| segs.get(i).is_some_and(|x| x.eq_ignore_ascii_case(s));
    if !(segs.len() == 8 && eq(0, "subscriptions") && eq(2, "resourceGroups") && eq(4, "providers") && eq(5, "Microsoft.Insights")) {
        return None;
    }
    let name = segs[7].to_string();
    if eq(6, "dataCollectionRules") {
        Some(ArmPath::Rule(name))
    } else if eq(6, "dataCollectionEndpoints") {
        Some(ArmPath::Endpoint(name))
    } else {
        None
    }
}

const LOCAL_PROVIDERS: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers";

/// The local workspace's one data collection endpoint, which every rule is bound to.
pub fn endpoint_id() -> String {
    format!("{LOCAL_PROVIDERS}/Microsoft.Insights/dataCollectionEndpoints/local")
}

/// A rule the workspace serves: its ARM id, its immutable id, and the streams it declares (`None`: all).
pub(super) struct ServedRule {
    pub arm_id: String,
    pub immutable_id: String,
    pub streams: Option<HashSet<String>>,
}

/// The rules the workspace serves: its configured rules (the first at `dcr_resource_id` when set, the others
/// under the local resource group named by their immutable ids), or its one rule.
pub(super) fn rules(ws: &Workspace) -> Vec<ServedRule> {
    let local = |id: &str| format!("{LOCAL_PROVIDERS}/Microsoft.Insights/dataCollectionRules/{id}");
    if ws.config.rules.is_empty() {
        let id = ws.config.dcr_immutable_id.clone().unwrap_or_else(|| "dcr-local".into());
        return vec![ServedRule { arm_id: ws.config.dcr_resource_id.clone().unwrap_or_else(|| local(&id)), immutable_id: id, streams: None }];
    }
    ws.config
        .rules
        .iter()
        .enumerate()
        .map(|(i, (id, streams))| ServedRule {
            arm_id: ws.config.dcr_resource_id.clone().filter(|_| i == 0).unwrap_or_else(|| local(id)),
            immutable_id: id.clone(),
            streams: Some(streams.iter().cloned().collect()),
        })
        .collect()
}

/// The ARM id of the rule with this immutable id, as DCRLogErrors' `_ResourceId` and Azure's 403 name it.
pub(super) fn arm_id_of(ws: &Workspace, immutable_id: &str) -> String {
    let served = rules(ws);
    served.iter().find(|r| r.immutable_id == immutable_id).or(served.first()).map(|r| r.arm_id.clone()).unwrap_or_default()
}

/// RFC 7386 JSON merge patch: objects merge key by key, `null` removes, anything else replaces.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else { return };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

fn check_version(api_version: Option<&str>) -> Result<(), Response> {
    if api_version != Some(DCR_API_VERSION) {
        return Err(azure_error(StatusCode::BAD_REQUEST, "InvalidApiVersionParameter", &format!("The api-version must be '{DCR_API_VERSION}' here.")));
    }
    Ok(())
}

/// ARM's read of a data collection endpoint: its logs ingestion endpoint is this workspace (`origin`, the URL
/// the request came to).
pub(super) fn get_endpoint(path: &str, api_version: Option<&str>, name: &str, origin: &str) -> Response {
    if let Err(r) = check_version(api_version) {
        return r;
    }
    if !path.trim_end_matches('/').eq_ignore_ascii_case(&endpoint_id()) {
        return azure_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            &format!("The Resource 'Microsoft.Insights/dataCollectionEndpoints/{name}' was not found."),
        );
    }
    Json(json!({
        "id": path,
        "name": name,
        "type": "Microsoft.Insights/dataCollectionEndpoints",
        "location": "local",
        "properties": {
            "logsIngestion": {"endpoint": origin},
            "configurationAccess": {"endpoint": origin},
            "provisioningState": "Succeeded",
        },
    }))
    .into_response()
}

pub(super) fn get(ws: &Arc<Workspace>, path: &str, api_version: Option<&str>, name: &str) -> Response {
    if let Err(r) = check_version(api_version) {
        return r;
    }
    // ARM answers 404 for a rule that does not exist: only the rules the workspace serves are found.
    let served = rules(ws);
    let Some(rule) = served.iter().find(|r| r.arm_id.trim_end_matches('/').eq_ignore_ascii_case(path.trim_end_matches('/'))) else {
        return azure_error(StatusCode::NOT_FOUND, "ResourceNotFound", &format!("The Resource 'Microsoft.Insights/dataCollectionRules/{name}' was not found."));
    };
    let mut declarations = Map::new();
    for (stream, decl) in &ws.streams {
        if rule.streams.as_ref().is_some_and(|s| !s.contains(stream)) {
            continue;
        }
        let columns: Vec<Value> = decl.columns.iter().map(|c| json!({"name": c.name, "type": c.ktype.dcr_name()})).collect();
        declarations.insert(stream.clone(), json!({"columns": columns}));
    }
    // One data flow per custom stream to the workspace, as `infra/modules/dcr.bicep` deploys them (a rule holds
    // at most ten; the standard tables' streams are the workspace's for staging history, and flow nowhere).
    let flows: Vec<Value> = declarations
        .keys()
        .filter(|s| s.starts_with("Custom-"))
        .map(|s| json!({"streams": [s], "destinations": ["sentinel"], "transformKql": "source", "outputStream": s}))
        .collect();
    let mut properties = json!({
        "immutableId": rule.immutable_id,
        "dataCollectionEndpointId": endpoint_id(),
        "streamDeclarations": declarations,
        "destinations": {"logAnalytics": [{
            "workspaceResourceId": format!("{LOCAL_PROVIDERS}/Microsoft.OperationalInsights/workspaces/local"),
            "workspaceId": ws.workspace_id(),
            "name": "sentinel",
        }]},
        "dataFlows": flows,
        "provisioningState": "Succeeded",
    });
    // A rule deployed otherwise than infra/ deploys it, as the test describes it.
    for (id, patch) in &ws.config.rule_patches {
        if *id == rule.immutable_id {
            merge_patch(&mut properties, patch);
        }
    }
    Json(json!({
        "id": path,
        "name": name,
        "type": "Microsoft.Insights/dataCollectionRules",
        "location": "local",
        "properties": properties,
    }))
    .into_response()
}
