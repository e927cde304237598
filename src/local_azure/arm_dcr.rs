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

/// Whether an ARM path names a data collection rule: `(resource group, name)`.
pub(super) fn parse(path: &str) -> Option<(String, String)> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let eq = |i: usize, s: &str| segs.get(i).is_some_and(|x| x.eq_ignore_ascii_case(s));
    (segs.len() == 8 && eq(0, "subscriptions") && eq(2, "resourceGroups") && eq(4, "providers") && eq(5, "Microsoft.Insights") && eq(6, "dataCollectionRules"))
        .then(|| (segs[3].to_string(), segs[7].to_string()))
}

pub(super) fn get(ws: &Arc<Workspace>, path: &str, api_version: Option<&str>, name: &str) -> Response {
    if api_version != Some(DCR_API_VERSION) {
        return azure_error(StatusCode::BAD_REQUEST, "InvalidApiVersionParameter", &format!("The api-version must be '{DCR_API_VERSION}' here."));
    }
    // The rule the workspace serves: its configured immutable id (or the first of its rules), with the streams
    // that rule declares.
    let (immutable_id, streams): (String, Option<HashSet<&str>>) = match ws.config.rules.first() {
        Some((id, s)) => (id.clone(), Some(s.iter().map(String::as_str).collect())),
        None => (ws.config.dcr_immutable_id.clone().unwrap_or_else(|| "dcr-local".into()), None),
    };
    let mut declarations = Map::new();
    for (stream, decl) in &ws.streams {
        if streams.as_ref().is_some_and(|s| !s.contains(stream.as_str())) {
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
    let subscription = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers";
    Json(json!({
        "id": path,
        "name": name,
        "type": "Microsoft.Insights/dataCollectionRules",
        "location": "local",
        "properties": {
            "immutableId": immutable_id,
            "dataCollectionEndpointId": format!("{subscription}/Microsoft.Insights/dataCollectionEndpoints/local"),
            "streamDeclarations": declarations,
            "destinations": {"logAnalytics": [{
                "workspaceResourceId": format!("{subscription}/Microsoft.OperationalInsights/workspaces/local"),
                "workspaceId": ws.workspace_id(),
                "name": "sentinel",
            }]},
            "dataFlows": flows,
            "provisioningState": "Succeeded",
        },
    }))
    .into_response()
}
