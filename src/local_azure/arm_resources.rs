//! What the local workspace knows of Azure resources, and the two ARM read APIs the enrichment asks about
//! them (contract `seed004-surfaces.md` §4, §5):
//!
//! - Azure Resource Graph, `POST /providers/Microsoft.ResourceGraph/resources?api-version=2024-04-01`: the
//!   query runs over the `resources` table (id, name, type, location, resourceGroup, subscriptionId, tags,
//!   properties) in the [`crate::kql`] engine, limited to the request's `subscriptions`; pages of `$top`
//!   (1–1000, 100 by default) with a `$skipToken` that is only good with the same query; every answer carries
//!   `x-ms-user-quota-remaining` and `x-ms-user-quota-resets-after` (`hh:mm:ss`), and a principal over its
//!   quota (15 queries per 5-second window, the documented example) is answered 429 with `Retry-After` (the
//!   status is the one Azure's throttling guidance shows; the contract marks it unconfirmed).
//! - Azure Resource Health, `GET {resourceId}/providers/Microsoft.ResourceHealth/availabilityStatuses/current
//!   ?api-version=2025-05-01`: the staged status, `Available` when none was staged, 404 for a resource the
//!   workspace does not know.
//!
//! Both need Reader on the resources (`*/read` covers `Microsoft.ResourceGraph/resources/read` and
//! `Microsoft.ResourceHealth/AvailabilityStatuses/current/read`, S16); without it
//! (`WorkspaceConfig::arm_reader` off) both answer ARM's 403 `AuthorizationFailed`.
//!
//! Resources are staged with `PUT /_local/resources` (not an Azure API): a JSON array of `{id, tags, health}`,
//! `health` being an `availabilityStatus`'s `properties`. They are kept in memory.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{azure_error, Workspace};
use crate::kql::{self, Column, Frame, KType};

pub const RESOURCE_GRAPH_API_VERSIONS: &[&str] = &["2024-04-01", "2022-10-01", "2021-03-01"];
pub const RESOURCE_HEALTH_API_VERSIONS: &[&str] = &["2025-05-01", "2025-04-01", "2024-02-01", "2022-10-01"];
/// Rows per page when the request sets no `$top`, and the most it may set.
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_TOP: usize = 1000;

/// Resource Graph's per-principal quota (guidance-for-throttled-requests: "at most 15 queries within every
/// 5-second window", an example the docs say may change).
#[derive(Debug, Clone, Copy)]
pub struct GraphQuota {
    pub queries: usize,
    pub window: Duration,
}

impl Default for GraphQuota {
    fn default() -> Self {
        GraphQuota { queries: 15, window: Duration::from_secs(5) }
    }
}

/// One resource as staged.
#[derive(Debug, Clone, Deserialize)]
pub struct StagedResource {
    pub id: String,
    #[serde(default)]
    pub tags: Map<String, Value>,
    #[serde(default)]
    pub location: Option<String>,
    /// An `availabilityStatus`'s `properties` (`availabilityState`, `summary`, `reasonType`, …).
    #[serde(default)]
    pub health: Option<Value>,
}

#[derive(Default)]
pub struct Resources {
    by_id: std::sync::Mutex<BTreeMap<String, StagedResource>>,
    graph_calls: std::sync::Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// An ARM resource id's parts: `/subscriptions/{s}/resourceGroups/{rg}/providers/{ns}/{type}/{name}…`.
fn parts(id: &str) -> Option<(String, String, String, String)> {
    let segs: Vec<&str> = id.trim_matches('/').split('/').collect();
    let eq = |i: usize, s: &str| segs.get(i).is_some_and(|x| x.eq_ignore_ascii_case(s));
    if !(eq(0, "subscriptions") && eq(2, "resourceGroups") && eq(4, "providers")) || segs.len() < 8 || !segs.len().is_multiple_of(2) {
        return None;
    }
    let types: Vec<&str> = segs[6..].iter().step_by(2).copied().collect();
    let ty = format!("{}/{}", segs[5], types.join("/")).to_ascii_lowercase();
    Some((segs[1].to_string(), segs[3].to_string(), ty, segs[segs.len() - 1].to_string()))
}

impl Resources {
    pub fn stage(&self, r: StagedResource) -> Result<(), String> {
        parts(&r.id).ok_or_else(|| format!("'{}' is not an ARM resource id", r.id))?;
        self.by_id.lock().unwrap_or_else(|e| e.into_inner()).insert(r.id.to_ascii_lowercase(), r);
        Ok(())
    }

    fn get(&self, id: &str) -> Option<StagedResource> {
        self.by_id.lock().unwrap_or_else(|e| e.into_inner()).get(&id.trim_end_matches('/').to_ascii_lowercase()).cloned()
    }

    /// The `resources` table, limited to these subscriptions when any are given.
    fn frame(&self, subscriptions: &[String]) -> Frame {
        let col = |n: &str, t| Column { name: n.into(), ktype: t };
        let columns = vec![
            col("id", KType::String),
            col("name", KType::String),
            col("type", KType::String),
            col("location", KType::String),
            col("resourceGroup", KType::String),
            col("subscriptionId", KType::String),
            col("tags", KType::Dynamic),
            col("properties", KType::Dynamic),
        ];
        let all = self.by_id.lock().unwrap_or_else(|e| e.into_inner());
        let rows = all
            .values()
            .filter_map(|r| {
                let (sub, rg, ty, name) = parts(&r.id)?;
                if !subscriptions.is_empty() && !subscriptions.iter().any(|s| s.eq_ignore_ascii_case(&sub)) {
                    return None;
                }
                let row: Vec<kql::Value> = vec![
                    kql::Value::str(&r.id),
                    kql::Value::str(&name),
                    kql::Value::str(&ty),
                    kql::Value::str(r.location.as_deref().unwrap_or("westeurope")),
                    kql::Value::str(&rg.to_ascii_lowercase()),
                    kql::Value::str(&sub),
                    kql::Value::Dynamic(Arc::new(Value::Object(r.tags.clone()))),
                    kql::Value::Dynamic(Arc::new(json!({}))),
                ];
                Some(row.into())
            })
            .collect();
        Frame { columns, rows }
    }

    /// Counts a query of `subject`; how long until it may query again when it is over its quota, and how many
    /// queries it has left.
    fn count(&self, subject: &str, quota: GraphQuota) -> (Option<Duration>, usize, Duration) {
        let now = Instant::now();
        let mut calls = self.graph_calls.lock().unwrap_or_else(|e| e.into_inner());
        let q = calls.entry(subject.to_string()).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= quota.window) {
            q.pop_front();
        }
        let resets = q.front().map_or(quota.window, |t| quota.window.saturating_sub(now.duration_since(*t)));
        if q.len() >= quota.queries {
            return (Some(resets), 0, resets);
        }
        q.push_back(now);
        (None, quota.queries - q.len(), resets)
    }
}

/// `hh:mm:ss`, as `x-ms-user-quota-resets-after` gives it.
fn hms(d: Duration) -> String {
    let s = d.as_secs_f64().ceil() as u64;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn with_quota(mut r: Response, remaining: usize, resets: Duration) -> Response {
    r.headers_mut().insert("x-ms-user-quota-remaining", HeaderValue::from(remaining));
    if let Ok(v) = HeaderValue::from_str(&hms(resets)) {
        r.headers_mut().insert("x-ms-user-quota-resets-after", v);
    }
    r
}

fn unauthorised(action: &str, scope: &str) -> Response {
    azure_error(
        StatusCode::FORBIDDEN,
        "AuthorizationFailed",
        &format!("The client 'local' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid."),
    )
}

fn api_version<'a>(q: &'a HashMap<String, String>, supported: &[&str]) -> Result<&'a str, Response> {
    match q.get("api-version").map(String::as_str) {
        None => Err(azure_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )),
        Some(v) if !supported.contains(&v) => Err(azure_error(
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
            &format!("The api-version '{v}' is invalid. The supported versions are '{}'.", supported.join(",")),
        )),
        Some(v) => Ok(v),
    }
}

struct GraphTables(Frame);

impl kql::Tables for GraphTables {
    fn table(&self, name: &str) -> Option<Frame> {
        name.eq_ignore_ascii_case("resources").then(|| self.0.clone())
    }
}

fn graph_error(message: &str) -> Response {
    let body = json!({"error": {"code": "BadRequest", "message": "Please provide below info when asking for support: timestamp, correlationId.", "details": [{"code": "InvalidQuery", "message": message}]}});
    let mut r = (StatusCode::BAD_REQUEST, Json(body)).into_response();
    r.headers_mut().insert("x-ms-error-code", HeaderValue::from_static("BadRequest"));
    r
}

/// The skip token: the offset, bound to the query it pages (a token is only good "together with the same
/// query and scopes").
fn skip_token(query: &str, subscriptions: &[String], offset: usize) -> String {
    use base64::Engine;
    let bound = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, format!("{query}\u{0}{}", subscriptions.join(",")).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(json!({"q": bound.to_string(), "o": offset}).to_string())
}

fn read_skip_token(token: &str, query: &str, subscriptions: &[String]) -> Option<usize> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD.decode(token).ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    let offset = v.get("o")?.as_u64()? as usize;
    (skip_token(query, subscriptions, offset) == token).then_some(offset)
}

pub async fn resource_graph(State(ws): State<Arc<Workspace>>, Query(q): Query<HashMap<String, String>>, headers: HeaderMap, body: Bytes) -> Response {
    let subject = match ws.authorize_subject(&headers, &HashSet::from(super::sentinel_endpoint::ARM_AUDIENCES)) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Err(r) = api_version(&q, RESOURCE_GRAPH_API_VERSIONS) {
        return r;
    }
    if !ws.config.arm_reader {
        return unauthorised("Microsoft.ResourceGraph/resources/read", "/");
    }
    let (throttled, remaining, resets) = ws.resources.count(&subject, ws.config.resource_graph_quota);
    if let Some(wait) = throttled {
        let mut r =
            azure_error(StatusCode::TOO_MANY_REQUESTS, "RateLimiting", "Please provide below info when asking for support: the user quota was exceeded.");
        r.headers_mut().insert("retry-after", HeaderValue::from(wait.as_secs_f64().ceil().max(1.0) as u64));
        return with_quota(r, 0, resets);
    }
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return with_quota(graph_error(&format!("The request content could not be read: {e}")), remaining, resets),
    };
    let Some(query) = request.get("query").and_then(Value::as_str).filter(|s| !s.trim().is_empty()) else {
        return with_quota(graph_error("'query' is required."), remaining, resets);
    };
    let subscriptions: Vec<String> =
        request.get("subscriptions").and_then(Value::as_array).map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect()).unwrap_or_default();
    let options = request.get("options").cloned().unwrap_or(json!({}));
    let top = match options.get("$top") {
        None | Some(Value::Null) => DEFAULT_PAGE,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_TOP as u64).contains(&n) => n as usize,
            _ => return with_quota(graph_error("options.$top must be between 1 and 1000."), remaining, resets),
        },
    };
    let skip = options.get("$skip").and_then(Value::as_u64).unwrap_or(0) as usize;
    let offset = match options.get("$skipToken").and_then(Value::as_str) {
        None => skip,
        Some(t) => match read_skip_token(t, query, &subscriptions) {
            Some(o) => o,
            None => return with_quota(graph_error("The $skipToken is not valid for this query and these scopes."), remaining, resets),
        },
    };
    let table_format = match options.get("resultFormat").and_then(Value::as_str) {
        None | Some("objectArray") => false,
        Some("table") => true,
        Some(other) => return with_quota(graph_error(&format!("options.resultFormat '{other}' is not 'table' or 'objectArray'.")), remaining, resets),
    };
    let frame = match kql::run(query, &GraphTables(ws.resources.frame(&subscriptions)), crate::model::time::now_ticks()) {
        Ok(f) => f,
        Err(e) => return with_quota(graph_error(&e.to_string()), remaining, resets),
    };
    let total = frame.rows.len();
    let page: Vec<_> = frame.rows.iter().skip(offset).take(top).cloned().collect();
    let data = if table_format {
        let f = Frame { columns: frame.columns.clone(), rows: page.clone() };
        let wire = f.to_wire("resources");
        json!({"columns": wire["columns"], "rows": wire["rows"]})
    } else {
        Value::Array(page.iter().map(|r| Value::Object(frame.columns.iter().zip(r.iter()).map(|(c, v)| (c.name.clone(), v.to_json())).collect())).collect())
    };
    let mut out = json!({"totalRecords": total, "count": page.len(), "resultTruncated": "false", "facets": [], "data": data});
    if offset + page.len() < total {
        out["$skipToken"] = json!(skip_token(query, &subscriptions, offset + page.len()));
    }
    with_quota(Json(out).into_response(), remaining, resets)
}

/// The resource id of a Resource Health path, if `path` is one.
pub fn health_target(path: &str) -> Option<&str> {
    let lower = path.to_ascii_lowercase();
    let at = lower.find("/providers/microsoft.resourcehealth/availabilitystatuses/current")?;
    (lower.len() == at + "/providers/microsoft.resourcehealth/availabilitystatuses/current".len()).then(|| &path[..at])
}

pub fn resource_health(ws: &Workspace, resource: &str, q: &HashMap<String, String>) -> Response {
    if let Err(r) = api_version(q, RESOURCE_HEALTH_API_VERSIONS) {
        return r;
    }
    if !ws.config.arm_reader {
        return unauthorised("Microsoft.ResourceHealth/AvailabilityStatuses/current/read", resource);
    }
    let Some(r) = ws.resources.get(resource) else {
        return azure_error(StatusCode::NOT_FOUND, "ResourceNotFound", &format!("The Resource '{resource}' was not found."));
    };
    let properties = r.health.clone().unwrap_or_else(|| json!({"availabilityState": "Available", "summary": "There aren't any known Azure platform problems affecting this resource.", "reasonType": "", "reportedTime": super::sentinel_endpoint::now_text()}));
    Json(json!({
        "id": format!("{}/providers/Microsoft.ResourceHealth/availabilityStatuses/current", r.id),
        "name": "current",
        "type": "Microsoft.ResourceHealth/AvailabilityStatuses",
        "location": r.location.clone().unwrap_or_else(|| "westeurope".into()),
        "properties": properties,
    }))
    .into_response()
}

/// `PUT /_local/resources`: stages resources (not an Azure API).
pub async fn stage(State(ws): State<Arc<Workspace>>, Json(resources): Json<Vec<StagedResource>>) -> Response {
    for r in resources {
        if let Err(why) = ws.resources.stage(r) {
            return azure_error(StatusCode::BAD_REQUEST, "BadRequest", &why);
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_split_into_their_parts_and_health_paths_are_found() {
        let (sub, rg, ty, name) = parts("/subscriptions/s1/resourceGroups/RG/providers/Microsoft.Sql/servers/a/databases/b").unwrap();
        assert_eq!((sub.as_str(), rg.as_str(), ty.as_str(), name.as_str()), ("s1", "RG", "microsoft.sql/servers/databases", "b"));
        assert!(parts("/subscriptions/s1/resourceGroups/RG").is_none());
        let p =
            "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/v/providers/Microsoft.ResourceHealth/availabilityStatuses/current";
        assert_eq!(health_target(p), Some("/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/v"));
        assert_eq!(hms(Duration::from_millis(4200)), "00:00:05");
    }

    #[test]
    fn a_skip_token_is_good_only_with_its_query() {
        let t = skip_token("resources", &[], 100);
        assert_eq!(read_skip_token(&t, "resources", &[]), Some(100));
        assert_eq!(read_skip_token(&t, "resources | take 1", &[]), None);
        assert_eq!(read_skip_token("not a token", "resources", &[]), None);
    }
}
