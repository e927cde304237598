//! The workspace's Microsoft Sentinel incidents API (contract §3), at Azure's ARM paths:
//! `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.OperationalInsights/workspaces/{ws}/providers/
//! Microsoft.SecurityInsights/incidents/…` with api-version 2025-12-01 (other stable versions accepted).
//!
//! Incidents live where Sentinel keeps them: in the `SecurityIncident` table, one row per version. The API
//! reads the latest row of an incident; every change (PUT, comment, task, relation, delete) appends a new
//! version, so an incident staged by ingesting a `SecurityIncident` row appears here, and one created here
//! appears in KQL. An incident's alerts are the `SecurityAlert` rows whose `SystemAlertId` is in its
//! `AlertIds`; its entities come from those alerts' `Entities` column. Etags change with every version, and a
//! stale etag is a 409 as Azure answers.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::{azure_error, Workspace};

pub const API_VERSIONS: &[&str] = &["2025-12-01", "2025-09-01", "2025-06-01", "2024-09-01", "2021-04-01", "2025-07-01-preview"];
pub const ARM_AUDIENCES: [&str; 2] = ["https://management.azure.com", "https://management.core.windows.net"];
const SEVERITIES: &[&str] = &["High", "Medium", "Low", "Informational"];
const STATUSES: &[&str] = &["New", "Active", "Closed"];
const CLASSIFICATIONS: &[&str] = &["Undetermined", "TruePositive", "BenignPositive", "FalsePositive"];

fn now() -> String {
    crate::model::time::format_datetime(time::OffsetDateTime::now_utc())
}

pub(super) fn now_text() -> String {
    now()
}

fn bad(message: &str) -> Response {
    azure_error(StatusCode::BAD_REQUEST, "BadRequest", message)
}

fn not_found(what: &str) -> Response {
    azure_error(StatusCode::NOT_FOUND, "NotFound", &format!("{what} not found"))
}

/// The parts of an incidents path, matched case-insensitively as ARM does.
struct Target {
    base: String,
    incident: Option<String>,
    child: Option<(String, Option<String>)>,
}

/// A path under the workspace's `Microsoft.SecurityInsights` provider and one of its collections
/// (`incidents`, `watchlists`), matched case-insensitively as ARM does, with a valid workspace name: the
/// collection's path as served, and the segments after it.
pub(super) fn workspace_collection<'a>(path: &'a str, collection: &str) -> Option<(String, Vec<&'a str>)> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let eq = |i: usize, s: &str| segs.get(i).is_some_and(|x| x.eq_ignore_ascii_case(s));
    if !(eq(0, "subscriptions")
        && eq(2, "resourceGroups")
        && eq(4, "providers")
        && eq(5, "Microsoft.OperationalInsights")
        && eq(6, "workspaces")
        && eq(8, "providers")
        && eq(9, "Microsoft.SecurityInsights")
        && eq(10, collection))
    {
        return None;
    }
    let ws = segs.get(7)?;
    let ws_ok = ws.len() >= 3 && ws.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') && !ws.starts_with('-') && !ws.ends_with('-');
    if !ws_ok {
        return None;
    }
    let base = format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.OperationalInsights/workspaces/{}/providers/Microsoft.SecurityInsights/{}",
        segs[1], segs[3], ws, segs[10]
    );
    Some((base, segs[11..].to_vec()))
}

fn parse_path(path: &str) -> Option<Target> {
    let (base, rest) = workspace_collection(path, "incidents")?;
    if rest.len() > 3 {
        return None;
    }
    let incident = rest.first().map(|s| s.to_string());
    let child = rest.get(1).map(|c| (c.to_ascii_lowercase(), rest.get(2).map(|s| s.to_string())));
    Some(Target { base, incident, child })
}

fn etag_of(name: &str, version: usize) -> String {
    let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, format!("{}:{version}", name.to_ascii_lowercase()).as_bytes());
    format!("\"{id}\"")
}

/// An incident's latest row and how many versions it has.
struct Current {
    row: Map<String, Value>,
    versions: usize,
}

impl Current {
    fn etag(&self) -> String {
        etag_of(self.row.get("IncidentName").and_then(Value::as_str).unwrap_or_default(), self.versions)
    }
    fn deleted(&self) -> bool {
        self.row.get("AdditionalData").and_then(|a| a.get("deleted")).and_then(Value::as_bool) == Some(true)
    }
    fn list(&self, column: &str) -> Vec<Value> {
        self.row.get(column).and_then(Value::as_array).cloned().unwrap_or_default()
    }
}

fn incidents(ws: &Workspace) -> BTreeMap<String, Current> {
    let mut out: BTreeMap<String, Current> = BTreeMap::new();
    for r in ws.store.rows_json("SecurityIncident") {
        let Value::Object(row) = r else { continue };
        let Some(name) = row.get("IncidentName").and_then(Value::as_str).map(str::to_ascii_lowercase) else { continue };
        let versions = out.get(&name).map(|c| c.versions + 1).unwrap_or(1);
        out.insert(name, Current { row, versions });
    }
    out
}

fn current(ws: &Workspace, name: &str) -> Option<Current> {
    incidents(ws).remove(&name.to_ascii_lowercase()).filter(|c| !c.deleted())
}

fn ts(row: &Map<String, Value>, k: &str) -> Value {
    row.get(k).cloned().unwrap_or(Value::Null)
}

fn incident_json(base: &str, c: &Current, ws: &Workspace) -> Value {
    let r = &c.row;
    let name = r.get("IncidentName").and_then(Value::as_str).unwrap_or_default();
    let alerts = alerts_of(ws, c);
    let products: HashSet<String> = alerts.iter().filter_map(|a| a.get("ProductName").and_then(Value::as_str).map(String::from)).collect();
    let tactics: HashSet<String> = alerts
        .iter()
        .filter_map(|a| a.get("Tactics").and_then(Value::as_str))
        .flat_map(|t| t.split(',').map(|s| s.trim().to_string()))
        .filter(|s| !s.is_empty())
        .collect();
    let mut props = json!({
        "title": ts(r, "Title"),
        "description": ts(r, "Description"),
        "severity": ts(r, "Severity"),
        "status": ts(r, "Status"),
        "classification": ts(r, "Classification"),
        "classificationReason": ts(r, "ClassificationReason"),
        "classificationComment": ts(r, "ClassificationComment"),
        "owner": r.get("Owner").cloned().unwrap_or_else(|| json!({})),
        "labels": r.get("Labels").cloned().unwrap_or_else(|| json!([])),
        "firstActivityTimeUtc": ts(r, "FirstActivityTime"),
        "lastActivityTimeUtc": ts(r, "LastActivityTime"),
        "createdTimeUtc": ts(r, "CreatedTime"),
        "lastModifiedTimeUtc": ts(r, "LastModifiedTime"),
        "incidentNumber": ts(r, "IncidentNumber"),
        "incidentUrl": ts(r, "IncidentUrl"),
        "providerName": r.get("ProviderName").cloned().unwrap_or_else(|| json!("Azure Sentinel")),
        "providerIncidentId": r.get("ProviderIncidentId").cloned().unwrap_or_else(|| ts(r, "IncidentNumber").to_string().into()),
        "relatedAnalyticRuleIds": r.get("RelatedAnalyticRuleIds").cloned().unwrap_or_else(|| json!([])),
        "additionalData": {
            "alertsCount": alerts.len(),
            "bookmarksCount": c.list("BookmarkIds").len(),
            "commentsCount": c.list("Comments").len(),
            "alertProductNames": products.into_iter().collect::<Vec<_>>(),
            "tactics": tactics.into_iter().collect::<Vec<_>>(),
        },
    });
    if let Some(m) = props.as_object_mut() {
        m.retain(|_, v| !v.is_null());
    }
    json!({
        "id": format!("{base}/{name}"),
        "name": name,
        "type": "Microsoft.SecurityInsights/incidents",
        "etag": c.etag(),
        "properties": props,
    })
}

fn alerts_of(ws: &Workspace, c: &Current) -> Vec<Map<String, Value>> {
    let ids: HashSet<String> = c.list("AlertIds").iter().filter_map(|v| v.as_str().map(str::to_ascii_lowercase)).collect();
    if ids.is_empty() {
        return Vec::new();
    }
    // The latest row of each alert.
    let mut by_id: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for r in ws.store.rows_json("SecurityAlert") {
        let Value::Object(row) = r else { continue };
        if let Some(id) = row.get("SystemAlertId").and_then(Value::as_str).map(str::to_ascii_lowercase) {
            if ids.contains(&id) {
                by_id.insert(id, row);
            }
        }
    }
    by_id.into_values().collect()
}

fn alert_json(base: &str, a: &Map<String, Value>) -> Value {
    let id = a.get("SystemAlertId").and_then(Value::as_str).unwrap_or_default();
    let entities_base = base.trim_end_matches("/incidents").to_string() + "/Entities";
    let list = |column: &str| -> Vec<String> {
        a.get(column).and_then(Value::as_str).map(|t| t.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()).unwrap_or_default()
    };
    let (tactics, techniques) = (list("Tactics"), list("Techniques"));
    let mut props = json!({
        "systemAlertId": id,
        "alertDisplayName": ts(a, "DisplayName"),
        "friendlyName": ts(a, "DisplayName"),
        "alertType": ts(a, "AlertType"),
        "severity": ts(a, "AlertSeverity"),
        "status": ts(a, "Status"),
        "description": ts(a, "Description"),
        "vendorName": ts(a, "VendorName"),
        "productName": ts(a, "ProductName"),
        "providerAlertId": ts(a, "VendorOriginalId"),
        "confidenceLevel": a.get("ConfidenceLevel").cloned().unwrap_or_else(|| json!("Unknown")),
        "compromisedEntity": ts(a, "CompromisedEntity"),
        "startTimeUtc": ts(a, "StartTime"),
        "endTimeUtc": ts(a, "EndTime"),
        "processingEndTime": ts(a, "ProcessingEndTime"),
        "timeGenerated": ts(a, "TimeGenerated"),
        "tactics": tactics,
        "techniques": techniques,
        "remediationSteps": ts(a, "RemediationSteps"),
        "additionalData": a.get("ExtendedProperties").and_then(Value::as_str).and_then(|s| serde_json::from_str::<Value>(s).ok()).unwrap_or_else(|| json!({})),
    });
    if let Some(m) = props.as_object_mut() {
        m.retain(|_, v| !v.is_null());
    }
    json!({"id": format!("{entities_base}/{id}"), "name": id, "type": "Microsoft.SecurityInsights/Entities", "kind": "SecurityAlert", "properties": props})
}

/// Maps a SecurityAlert `Entities` item (`{"Type":"ip","Address":…}`) to the ARM entity kind and properties.
fn entity_json(base: &str, e: &Map<String, Value>) -> Option<(String, Value)> {
    let t = e.get("Type").and_then(Value::as_str)?.to_ascii_lowercase();
    let kind = match t.as_str() {
        "account" => "Account",
        "host" => "Host",
        "ip" => "Ip",
        "url" => "Url",
        "azure-resource" => "AzureResource",
        "dns" => "DnsResolution",
        "file" => "File",
        "filehash" => "FileHash",
        "process" => "Process",
        "mailbox" => "Mailbox",
        "cloud-application" => "CloudApplication",
        "malware" => "Malware",
        "registry-key" => "RegistryKey",
        "security-group" => "SecurityGroup",
        _ => return None,
    };
    let mut props = Map::new();
    for (k, v) in e {
        if k.starts_with('$') || k == "Type" {
            continue;
        }
        // The alert's `Name` of an account is the entity's `accountName`; other keys are camel-cased.
        let key = if kind == "Account" && k == "Name" { "accountName".to_string() } else { camel(k) };
        props.insert(key, v.clone());
    }
    let friendly = ["Name", "HostName", "Address", "Url", "ResourceId", "DomainName", "Upn", "MailboxPrimaryAddress"]
        .iter()
        .find_map(|k| e.get(*k).and_then(Value::as_str).map(String::from))
        .unwrap_or_else(|| kind.to_string());
    props.insert("friendlyName".into(), Value::String(friendly));
    let mut canonical = e.clone();
    canonical.retain(|k, _| !k.starts_with('$'));
    let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, Value::Object(canonical).to_string().as_bytes()).to_string();
    let entities_base = base.trim_end_matches("/incidents").to_string() + "/Entities";
    Some((
        id.clone(),
        json!({"id": format!("{entities_base}/{id}"), "name": id, "type": "Microsoft.SecurityInsights/Entities", "kind": kind, "properties": props}),
    ))
}

/// `UPNSuffix` → `upnSuffix`, `NTDomain` → `ntDomain`, `HostName` → `hostName`, `AadUserId` → `aadUserId`.
fn camel(k: &str) -> String {
    let chars: Vec<char> = k.chars().collect();
    let upper_run = chars.iter().take_while(|c| c.is_ascii_uppercase()).count();
    let lower_to = match upper_run {
        0 => 0,
        n if n == chars.len() => n,
        1 => 1,
        n => n - 1,
    };
    chars.iter().enumerate().map(|(i, c)| if i < lower_to { c.to_ascii_lowercase() } else { *c }).collect()
}

fn entities_of(ws: &Workspace, c: &Current, base: &str) -> Value {
    let mut seen = HashSet::new();
    let mut entities = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for a in alerts_of(ws, c) {
        let items: Vec<Value> = match a.get("Entities") {
            Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_default(),
            Some(Value::Array(v)) => v.clone(),
            _ => Vec::new(),
        };
        for item in items {
            let Value::Object(e) = item else { continue };
            if let Some((id, ent)) = entity_json(base, &e) {
                if seen.insert(id) {
                    *counts.entry(ent["kind"].as_str().unwrap_or_default().to_string()).or_default() += 1;
                    entities.push(ent);
                }
            }
        }
    }
    let meta: Vec<Value> = counts.into_iter().map(|(k, n)| json!({"entityKind": k, "count": n})).collect();
    json!({"entities": entities, "metaData": meta})
}

fn append(ws: &Workspace, row: Map<String, Value>) -> Result<(), Response> {
    ws.store
        .append("SecurityIncident", &[row])
        .map_err(|_| azure_error(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "The local workspace could not store the incident."))
}

fn new_version(c: &Current) -> Map<String, Value> {
    let mut row = c.row.clone();
    let t = now();
    row.insert("TimeGenerated".into(), Value::String(t.clone()));
    row.insert("LastModifiedTime".into(), Value::String(t));
    row
}

/// Who the local workspace says made a change (Azure fills this from the caller's token).
pub(super) fn local_identity() -> Value {
    json!({"objectId": "00000000-0000-0000-0000-000000000000", "email": "sentinel-bridge@local", "name": "sentinel-bridge", "userPrincipalName": "sentinel-bridge@local"})
}

fn child_json(base: &str, incident: &str, kind: &str, item: &Value) -> Value {
    let name = item.get("name").and_then(Value::as_str).unwrap_or_default();
    let mut props = item.clone();
    if let Some(m) = props.as_object_mut() {
        m.remove("name");
        m.remove("etag");
    }
    json!({
        "id": format!("{base}/{incident}/{kind}/{name}"),
        "name": name,
        "type": format!("Microsoft.SecurityInsights/incidents/{kind}"),
        "etag": item.get("etag").cloned().unwrap_or_else(|| json!(etag_of(name, 0))),
        "properties": props,
    })
}

/// Sentinel's request limits ("Request limits and throttling", Sentinel REST API docs): at least 75 `PUT
/// incident` and 75 `PUT comments` per 5 minutes per subscription and endpoint (ARM instance), answered 429
/// with `Retry-After`; the stand-in is one instance, so it counts per operation, and its limit is
/// `WorkspaceConfig::sentinel_writes_per_window` (75). 100 comments per incident and 30,000 characters per
/// comment come from the service limits page ("Incident limits").
pub const WRITES_PER_WINDOW: usize = 75;
pub const WRITE_WINDOW: std::time::Duration = std::time::Duration::from_secs(300);
pub const MAX_COMMENTS: usize = 100;

impl Workspace {
    /// Counts a write to `resource`; how long to wait when it is over the limit.
    fn sentinel_throttle(&self, resource: &str) -> Option<std::time::Duration> {
        let now = std::time::Instant::now();
        let window = self.config.sentinel_write_window;
        let mut writes = self.sentinel_writes.lock().unwrap_or_else(|e| e.into_inner());
        if writes.len() > 10_000 {
            writes.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        let q = writes.entry(resource.to_string()).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
            q.pop_front();
        }
        if q.len() >= self.config.sentinel_writes_per_window {
            return q.front().map(|t| window.saturating_sub(now.duration_since(*t)));
        }
        q.push_back(now);
        None
    }
}

pub(super) async fn handle(
    State(ws): State<Arc<Workspace>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Err(r) = ws.authorize(&headers, &HashSet::from(ARM_AUDIENCES)) {
        return r;
    }
    if let Some(target) = super::arm_dcr::parse(uri.path()) {
        if method != Method::GET {
            return azure_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "The local workspace serves reads of its data collection rules and endpoint only.",
            );
        }
        let api_version = q.get("api-version").map(String::as_str);
        return match target {
            super::arm_dcr::ArmPath::Rule(name) => super::arm_dcr::get(&ws, uri.path(), api_version, &name),
            super::arm_dcr::ArmPath::Endpoint(name) => {
                let host = headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
                super::arm_dcr::get_endpoint(uri.path(), api_version, &name, &format!("http://{host}"))
            }
        };
    }
    // Resource Health answers under any resource's path, with its own api-versions.
    if let Some(resource) = super::arm_resources::health_target(uri.path()) {
        if method != Method::GET {
            return azure_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "Resource Health is read-only.");
        }
        return super::arm_resources::resource_health(&ws, resource, &q);
    }
    match q.get("api-version").map(String::as_str) {
        None => {
            return azure_error(
                StatusCode::BAD_REQUEST,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        }
        Some(v) if !API_VERSIONS.contains(&v) => {
            return azure_error(
                StatusCode::BAD_REQUEST,
                "InvalidApiVersionParameter",
                &format!("The api-version '{v}' is invalid. The supported versions are '{}'.", API_VERSIONS.join(",")),
            )
        }
        _ => {}
    }
    let parsed_body = || -> Result<Value, Response> {
        if body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&body).map_err(|e| bad(&format!("The request content was invalid and could not be deserialized: {e}")))
    };
    if let Some(w) = super::watchlists::parse(uri.path()) {
        return match parsed_body() {
            Ok(b) => super::watchlists::handle(&ws, w, &method, &b),
            Err(r) => r,
        };
    }
    let Some(t) = parse_path(uri.path()) else {
        return azure_error(StatusCode::NOT_FOUND, "InvalidResourceType", &format!("The resource path '{}' is not served here.", uri.path()));
    };
    let body = match parsed_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let throttled = match (&method, t.incident.is_some(), t.child.as_ref()) {
        (&Method::PUT, true, None) => Some("PUT incident"),
        (&Method::PUT, true, Some((child, Some(_)))) if child == "comments" => Some("PUT comments"),
        _ => None,
    };
    if let Some((resource, wait)) = throttled.and_then(|r| ws.sentinel_throttle(r).map(|w| (r, w))) {
        let limit = ws.config.sentinel_writes_per_window;
        let mut r = azure_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            &format!("More than {limit} '{resource}' requests in {} seconds.", ws.config.sentinel_write_window.as_secs()),
        );
        r.headers_mut().insert("retry-after", axum::http::HeaderValue::from(wait.as_secs().max(1)));
        return r;
    }
    // Read-modify-append under one lock, so etag checks and incident numbers are race-free.
    let _guard = ws.sentinel_lock.lock().unwrap_or_else(|e| e.into_inner());
    let base = &t.base;
    match (&method, t.incident.as_deref(), t.child.as_ref()) {
        (&Method::GET, None, None) => list(&ws, base, &q),
        (&Method::GET, Some(id), None) => match current(&ws, id) {
            Some(c) => Json(incident_json(base, &c, &ws)).into_response(),
            None => not_found(&format!("Incident '{id}'")),
        },
        (&Method::PUT, Some(id), None) => put_incident(&ws, base, id, &body, &headers),
        (&Method::DELETE, Some(id), None) => match current(&ws, id) {
            Some(c) => {
                let mut row = new_version(&c);
                let mut extra = row.get("AdditionalData").cloned().unwrap_or_else(|| json!({}));
                extra["deleted"] = json!(true);
                row.insert("AdditionalData".into(), extra);
                match append(&ws, row) {
                    Ok(()) => StatusCode::OK.into_response(),
                    Err(r) => r,
                }
            }
            None => StatusCode::NO_CONTENT.into_response(),
        },
        (&Method::POST, Some(id), Some((child, None))) if child == "alerts" || child == "entities" => match current(&ws, id) {
            None => not_found(&format!("Incident '{id}'")),
            Some(c) if child == "alerts" => {
                let value: Vec<Value> = alerts_of(&ws, &c).iter().map(|a| alert_json(base, a)).collect();
                Json(json!({"value": value})).into_response()
            }
            Some(c) => Json(entities_of(&ws, &c, base)).into_response(),
        },
        (_, Some(id), Some((child, item))) if matches!(child.as_str(), "comments" | "relations" | "tasks") => {
            child_op(&ws, base, id, child, item.as_deref(), &method, &body)
        }
        _ => azure_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", &format!("{method} is not supported on {}", uri.path())),
    }
}

fn list(ws: &Workspace, base: &str, q: &std::collections::HashMap<String, String>) -> Response {
    let mut all: Vec<Current> = incidents(ws).into_values().filter(|c| !c.deleted()).collect();
    if let Some(filter) = q.get("$filter") {
        // `properties/<field> eq '<value>'`, joined by `and`.
        for clause in filter.split(" and ") {
            let parts: Vec<&str> = clause.trim().splitn(3, ' ').collect();
            let [field, "eq", value] = parts.as_slice() else { return bad(&format!("Unsupported $filter clause '{clause}'")) };
            let Some(prop) = field.strip_prefix("properties/") else { return bad(&format!("Unsupported $filter field '{field}'")) };
            let column = match prop {
                "status" => "Status",
                "severity" => "Severity",
                "title" => "Title",
                "classification" => "Classification",
                "incidentNumber" => "IncidentNumber",
                other => return bad(&format!("Unsupported $filter field 'properties/{other}'")),
            };
            let want = value.trim_matches('\'');
            all.retain(|c| c.row.get(column).map(|v| v.as_str().map(String::from).unwrap_or_else(|| v.to_string())).as_deref() == Some(want));
        }
    }
    let order = q.get("$orderby").map(String::as_str).unwrap_or("properties/createdTimeUtc desc");
    let (field, desc) = match order.split_once(' ') {
        Some((f, dir)) => (f, dir.eq_ignore_ascii_case("desc")),
        None => (order, false),
    };
    let column = match field {
        "properties/createdTimeUtc" => "CreatedTime",
        "properties/lastModifiedTimeUtc" => "LastModifiedTime",
        "properties/incidentNumber" => "IncidentNumber",
        "properties/severity" => "Severity",
        other => return bad(&format!("Unsupported $orderby field '{other}'")),
    };
    all.sort_by(|a, b| {
        let key = |c: &Current| c.row.get(column).cloned().unwrap_or(Value::Null);
        let o = match (key(a), key(b)) {
            (Value::Number(x), Value::Number(y)) => x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(std::cmp::Ordering::Equal),
            (x, y) => x.to_string().cmp(&y.to_string()),
        };
        if desc {
            o.reverse()
        } else {
            o
        }
    });
    let top = match q.get("$top").map(|t| t.parse::<usize>()) {
        None => 50,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        Some(_) => return bad("$top must be between 1 and 1000"),
    };
    let skip = q.get("$skipToken").and_then(|s| s.parse::<usize>().ok()).unwrap_or(0);
    let page: Vec<Value> = all.iter().skip(skip).take(top).map(|c| incident_json(base, c, ws)).collect();
    let mut out = json!({"value": page});
    if skip + top < all.len() {
        out["nextLink"] = json!(format!("{base}?api-version=2025-12-01&$top={top}&$skipToken={}", skip + top));
    }
    Json(out).into_response()
}

fn put_incident(ws: &Workspace, base: &str, id: &str, body: &Value, headers: &HeaderMap) -> Response {
    let Some(props) = body.get("properties").and_then(Value::as_object) else {
        return bad("The request body needs 'properties'.");
    };
    let get = |k: &str| props.get(k).and_then(Value::as_str).map(String::from);
    let Some(title) = get("title").filter(|t| !t.trim().is_empty()) else { return bad("'properties.title' is required.") };
    let Some(severity) = get("severity") else { return bad("'properties.severity' is required.") };
    if !SEVERITIES.contains(&severity.as_str()) {
        return bad(&format!("'properties.severity' must be one of {}.", SEVERITIES.join(", ")));
    }
    let Some(status) = get("status") else { return bad("'properties.status' is required.") };
    if !STATUSES.contains(&status.as_str()) {
        return bad(&format!("'properties.status' must be one of {}.", STATUSES.join(", ")));
    }
    if let Some(c) = get("classification") {
        if !CLASSIFICATIONS.contains(&c.as_str()) {
            return bad(&format!("'properties.classification' must be one of {}.", CLASSIFICATIONS.join(", ")));
        }
    }
    if status == "Closed" && get("classification").is_none() {
        return bad("Closing an incident requires 'properties.classification'.");
    }
    // One read of the incidents serves the etag check, the next number and the answer.
    let mut all = incidents(ws);
    let number = all.values().filter_map(|c| c.row.get("IncidentNumber").and_then(Value::as_i64)).max().unwrap_or(0) + 1;
    let prior = all.remove(&id.to_ascii_lowercase());
    // The etag counts every version, deleted ones too, as a later GET does.
    let versions = prior.as_ref().map(|c| c.versions).unwrap_or(0) + 1;
    let existing = prior.filter(|c| !c.deleted());
    let presented =
        body.get("etag").and_then(Value::as_str).map(String::from).or_else(|| headers.get("if-match").and_then(|v| v.to_str().ok()).map(String::from));
    if let (Some(c), Some(etag)) = (&existing, &presented) {
        if *etag != c.etag() && etag != "*" {
            return azure_error(StatusCode::CONFLICT, "Conflict", &format!("Newer version of resource '{base}/{id}' exists. Data was not saved"));
        }
    }
    let t = now();
    let mut row = match &existing {
        Some(c) => new_version(c),
        None => {
            let mut row = Map::new();
            row.insert("TimeGenerated".into(), json!(t));
            row.insert("IncidentName".into(), json!(id));
            row.insert("IncidentNumber".into(), json!(number));
            row.insert("CreatedTime".into(), json!(t));
            row.insert("LastModifiedTime".into(), json!(t));
            row.insert("ProviderName".into(), json!("Azure Sentinel"));
            row.insert("ProviderIncidentId".into(), json!(number.to_string()));
            row.insert("IncidentUrl".into(), json!(format!("https://portal.azure.com/#asset/Microsoft_Azure_Security_Insights/Incident{base}/{id}")));
            row
        }
    };
    row.insert("Title".into(), json!(title));
    row.insert("Severity".into(), json!(severity));
    row.insert("Status".into(), json!(status));
    for (prop, column) in [
        ("description", "Description"),
        ("classification", "Classification"),
        ("classificationReason", "ClassificationReason"),
        ("classificationComment", "ClassificationComment"),
        ("firstActivityTimeUtc", "FirstActivityTime"),
        ("lastActivityTimeUtc", "LastActivityTime"),
    ] {
        match props.get(prop) {
            Some(v) if !v.is_null() => {
                row.insert(column.into(), v.clone());
            }
            _ => {
                row.remove(column);
            }
        }
    }
    if let Some(owner) = props.get("owner") {
        row.insert("Owner".into(), owner.clone());
    }
    if let Some(labels) = props.get("labels").and_then(Value::as_array) {
        let labels: Vec<Value> =
            labels.iter().filter_map(|l| l.get("labelName").and_then(Value::as_str)).map(|n| json!({"labelName": n, "labelType": "User"})).collect();
        row.insert("Labels".into(), Value::Array(labels));
    }
    if status == "Closed" && !row.contains_key("ClosedTime") {
        row.insert("ClosedTime".into(), json!(t));
    }
    if let Err(r) = append(ws, row.clone()) {
        return r;
    }
    let c = Current { row, versions };
    let status = if existing.is_some() { StatusCode::OK } else { StatusCode::CREATED };
    (status, Json(incident_json(base, &c, ws))).into_response()
}

fn child_op(ws: &Workspace, base: &str, id: &str, kind: &str, item: Option<&str>, method: &Method, body: &Value) -> Response {
    let Some(c) = current(ws, id) else { return not_found(&format!("Incident '{id}'")) };
    let (column, in_additional) = match kind {
        "comments" => ("Comments", false),
        "tasks" => ("Tasks", false),
        _ => ("relations", true),
    };
    let items: Vec<Value> = if in_additional {
        c.row.get("AdditionalData").and_then(|a| a.get(column)).and_then(Value::as_array).cloned().unwrap_or_default()
    } else {
        c.list(column)
    };
    let incident_name = c.row.get("IncidentName").and_then(Value::as_str).unwrap_or(id).to_string();
    let find = |name: &str| items.iter().position(|x| x.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(name)));
    match (method, item) {
        (&Method::GET, None) => {
            let value: Vec<Value> = items.iter().map(|x| child_json(base, &incident_name, kind, x)).collect();
            Json(json!({"value": value})).into_response()
        }
        (&Method::GET, Some(name)) => match find(name) {
            Some(i) => Json(child_json(base, &incident_name, kind, &items[i])).into_response(),
            None => not_found(&format!("{kind} '{name}'")),
        },
        (&Method::PUT, Some(name)) => {
            let Some(props) = body.get("properties").and_then(Value::as_object) else { return bad("The request body needs 'properties'.") };
            let t = now();
            let mut entry = Map::new();
            entry.insert("name".into(), json!(name));
            match kind {
                "comments" => {
                    let Some(msg) = props.get("message").and_then(Value::as_str) else { return bad("'properties.message' is required.") };
                    let max = ws.config.comment_max_chars;
                    if msg.chars().count() > max {
                        return bad(&format!("'properties.message' is {} characters; the limit is {max}.", msg.chars().count()));
                    }
                    if find(name).is_none() && items.len() >= MAX_COMMENTS {
                        return bad(&format!("The incident already has {MAX_COMMENTS} comments, the most it may have."));
                    }
                    entry.insert("message".into(), json!(msg));
                    entry.insert("author".into(), local_identity());
                }
                "tasks" => {
                    let Some(title) = props.get("title").and_then(Value::as_str) else { return bad("'properties.title' is required.") };
                    let status = props.get("status").and_then(Value::as_str).unwrap_or("New");
                    if !["New", "Completed"].contains(&status) {
                        return bad("'properties.status' must be New or Completed.");
                    }
                    entry.insert("title".into(), json!(title));
                    entry.insert("description".into(), props.get("description").cloned().unwrap_or(Value::Null));
                    entry.insert("status".into(), json!(status));
                    entry.insert("createdBy".into(), local_identity());
                    entry.insert("lastModifiedBy".into(), local_identity());
                }
                _ => {
                    let valid = name.len() >= 3 && name.len() <= 63 && name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-');
                    if !valid {
                        return bad("A relation name must match ^[a-zA-Z0-9-]{3,63}$.");
                    }
                    let Some(rel) = props.get("relatedResourceId").and_then(Value::as_str) else { return bad("'properties.relatedResourceId' is required.") };
                    let segs: Vec<&str> = rel.trim_end_matches('/').rsplit('/').collect();
                    entry.insert("relatedResourceId".into(), json!(rel));
                    entry.insert("relatedResourceName".into(), json!(segs.first().copied().unwrap_or_default()));
                    entry.insert("relatedResourceType".into(), json!(format!("Microsoft.SecurityInsights/{}", segs.get(1).copied().unwrap_or_default())));
                }
            }
            let mut items = items.clone();
            let existed = find(name);
            let created = match existed {
                Some(i) => items[i].get("createdTimeUtc").cloned().unwrap_or_else(|| json!(t)),
                None => json!(t),
            };
            if kind != "relations" {
                entry.insert("createdTimeUtc".into(), created);
                entry.insert("lastModifiedTimeUtc".into(), json!(t));
            }
            entry.insert("etag".into(), json!(etag_of(&format!("{incident_name}/{kind}/{name}"), c.versions + 1)));
            let entry = Value::Object(entry);
            match existed {
                Some(i) => items[i] = entry.clone(),
                None => items.push(entry.clone()),
            }
            let mut row = new_version(&c);
            store_items(&mut row, column, in_additional, items);
            if let Err(r) = append(ws, row) {
                return r;
            }
            let status = if existed.is_some() { StatusCode::OK } else { StatusCode::CREATED };
            (status, Json(child_json(base, &incident_name, kind, &entry))).into_response()
        }
        (&Method::DELETE, Some(name)) => match find(name) {
            None => StatusCode::NO_CONTENT.into_response(),
            Some(i) => {
                let mut items = items.clone();
                items.remove(i);
                let mut row = new_version(&c);
                store_items(&mut row, column, in_additional, items);
                match append(ws, row) {
                    Ok(()) => StatusCode::OK.into_response(),
                    Err(r) => r,
                }
            }
        },
        _ => azure_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", &format!("{method} is not supported on {kind}")),
    }
}

fn store_items(row: &mut Map<String, Value>, column: &str, in_additional: bool, items: Vec<Value>) {
    if in_additional {
        let mut extra = row.get("AdditionalData").cloned().filter(Value::is_object).unwrap_or_else(|| json!({}));
        extra[column] = Value::Array(items);
        row.insert("AdditionalData".into(), extra);
    } else {
        row.insert(column.into(), Value::Array(items));
    }
}
