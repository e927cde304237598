//! A small typed client for the two ARM reads that say what a resource is worth and how it is (contract
//! `seed004-surfaces.md` §4, §5): its tags through Azure Resource Graph, and its current availability through
//! Azure Resource Health. Both need Reader on the resources (`*/read`); without it they are refused 403, which
//! the enrichment reports, never hides.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};

use crate::azure::http::{path_segment, Attempt, AzureRules, Call, CallError, Driver, RetryPolicy};
use crate::azure::identity::TokenSource;

/// Resource Graph's newest stable api-version (spec `resourcegraph` readme, `package-2024-04`).
pub const RESOURCE_GRAPH_API_VERSION: &str = "2024-04-01";
/// Resource Health's newest stable api-version (spec `resourcehealth` readme default tag `package-2025-05-01`).
pub const RESOURCE_HEALTH_API_VERSION: &str = "2025-05-01";
/// Pages of Resource Graph results read at most for one question (1,000 rows each).
const MAX_PAGES: usize = 10;

/// An ARM resource id, checked to be one before it goes into a Resource Graph query or a URL:
/// `/subscriptions/{s}/resourceGroups/{rg}/providers/{namespace}/{type}/{name}[/{type}/{name}…]`, every
/// segment of letters, digits and `. _ ( ) -` only. Anything else (a quote, a space, a `?`) is refused, so
/// an entity's text can never change the query or the path it is put in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ResourceId(String);

impl ResourceId {
    pub fn parse(s: &str) -> Option<ResourceId> {
        let segs: Vec<&str> = s.strip_prefix('/')?.trim_end_matches('/').split('/').collect();
        let eq = |i: usize, w: &str| segs.get(i).is_some_and(|x| x.eq_ignore_ascii_case(w));
        let shape = eq(0, "subscriptions") && eq(2, "resourceGroups") && eq(4, "providers") && segs.len() >= 8 && segs.len().is_multiple_of(2);
        let clean = |x: &&str| !x.is_empty() && x.len() <= 260 && x.bytes().all(|b| b.is_ascii_alphanumeric() || b"._()-".contains(&b));
        (shape && segs.iter().all(clean) && s.len() <= 2048).then(|| ResourceId(format!("/{}", segs.join("/"))))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The same id lower-cased (ARM ids are case-insensitive; lower case is how the tables key them).
    pub fn lowercase(&self) -> ResourceId {
        ResourceId(self.0.to_ascii_lowercase())
    }

    /// The resource's own name (the last segment).
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or_default()
    }
}

impl std::fmt::Display for ResourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourcesError {
    /// ARM's `AuthorizationFailed`: the identity lacks Reader on the resource.
    #[error("the identity may not read it (403 {code}: Reader on the resources is needed): {message}")]
    Forbidden { code: String, message: String },
    #[error("ARM refused the call ({status}): {code}: {message}")]
    Refused { status: u16, code: String, message: String },
    #[error("ARM call failed: {last}")]
    Unavailable { last: Attempt },
    #[error("unreadable ARM answer: {0}")]
    Unreadable(String),
}

/// A resource's current availability, as Resource Health reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Availability {
    /// `Available`, `Unavailable`, `Degraded` or `Unknown`.
    #[serde(default)]
    pub availability_state: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub reason_type: Option<String>,
    /// Spelled `occuredTime` in the API (sic).
    #[serde(default, rename = "occuredTime")]
    pub occurred_time: Option<String>,
}

pub struct ResourcesClient {
    driver: Driver,
    arm: String,
    tokens: Arc<TokenSource>,
    timeout: Duration,
}

#[derive(Deserialize)]
struct GraphPage {
    #[serde(default)]
    data: Vec<Value>,
    #[serde(rename = "$skipToken", default)]
    skip_token: Option<String>,
}

impl ResourcesClient {
    pub fn new(arm_endpoint: &str, tokens: Arc<TokenSource>, timeout: Duration) -> Self {
        ResourcesClient { driver: Driver::new(RetryPolicy::default()), arm: arm_endpoint.trim_end_matches('/').to_string(), tokens, timeout }
    }

    async fn send(&self, method: reqwest::Method, url: &str, body: Option<&Value>, deadline: Instant) -> Result<crate::azure::http::Exchange, ResourcesError> {
        let body = body.map(|b| serde_json::to_vec(b).unwrap_or_default());
        let build = |http: &reqwest::Client| {
            let req = http.request(method.clone(), url);
            match &body {
                Some(b) => req.header("content-type", "application/json").body(b.clone()),
                None => req,
            }
        };
        let call = Call { build: &build, auth: self.tokens.as_ref(), logic: &AzureRules, deadline, retries: None, what: "arm" };
        match self.driver.send(call).await {
            Ok(x) => Ok(x),
            Err(CallError::Refused(e)) if e.status == 403 => Err(ResourcesError::Forbidden { code: e.code, message: e.message }),
            Err(CallError::Refused(e)) => Err(ResourcesError::Refused { status: e.status, code: e.code, message: e.message }),
            Err(CallError::Unavailable { last }) => Err(ResourcesError::Unavailable { last }),
            Err(CallError::Split) => {
                Err(ResourcesError::Refused { status: 413, code: "RequestEntityTooLarge".into(), message: "the call is too large".into() })
            }
        }
    }

    /// The tags of these resources, by lower-cased id, through Resource Graph (`resources | where id in~ (…)
    /// | project id, tags`). Pages are followed with `$skipToken` (the same query and scopes); when the quota
    /// headers say none is left, the next page waits `x-ms-user-quota-resets-after`; a 429 waits its
    /// `Retry-After` (the driver).
    pub async fn tags(&self, ids: &[ResourceId]) -> Result<BTreeMap<String, BTreeMap<String, String>>, ResourcesError> {
        let mut out = BTreeMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        // Ids are checked (`ResourceId`) and JSON-quoted: data, never query text.
        let list: Vec<String> = ids.iter().map(|i| serde_json::to_string(i.as_str()).expect("a string serialises")).collect();
        let query = format!("resources | where id in~ ({}) | project id, tags | order by id asc", list.join(", "));
        let url = format!("{}/providers/Microsoft.ResourceGraph/resources?api-version={RESOURCE_GRAPH_API_VERSION}", self.arm);
        let deadline = Instant::now() + self.timeout;
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut options = json!({"resultFormat": "objectArray", "$top": 1000});
            if let Some(t) = &token {
                options["$skipToken"] = json!(t);
            }
            let x = self.send(reqwest::Method::POST, &url, Some(&json!({"query": query, "options": options})), deadline).await?;
            let page: GraphPage = x.json().map_err(|e| ResourcesError::Unreadable(format!("Resource Graph: {e}")))?;
            for row in &page.data {
                let Some(id) = row.get("id").and_then(Value::as_str) else { continue };
                let tags = row
                    .get("tags")
                    .and_then(Value::as_object)
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), String::from))).collect())
                    .unwrap_or_default();
                out.insert(id.to_ascii_lowercase(), tags);
            }
            match page.skip_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(out),
            }
            if quota_left(&x.headers) == Some(0) {
                let wait = quota_resets_after(&x.headers).unwrap_or(Duration::from_secs(1));
                if Instant::now() + wait >= deadline {
                    return Err(ResourcesError::Refused {
                        status: 429,
                        code: "RateLimiting".into(),
                        message: "Resource Graph's quota resets after the deadline".into(),
                    });
                }
                tokio::time::sleep(wait).await;
            }
        }
        Ok(out)
    }

    /// The resource's current availability; `None` when Resource Health does not know it (404).
    pub async fn availability(&self, id: &ResourceId) -> Result<Option<Availability>, ResourcesError> {
        // Each segment percent-encoded on its own: the slashes are the id's structure, never a value's.
        let path: Vec<String> = id.as_str().trim_start_matches('/').split('/').map(path_segment).collect();
        let url = format!(
            "{}/{}/providers/Microsoft.ResourceHealth/availabilityStatuses/current?api-version={RESOURCE_HEALTH_API_VERSION}",
            self.arm,
            path.join("/")
        );
        match self.send(reqwest::Method::GET, &url, None, Instant::now() + self.timeout).await {
            Ok(x) => {
                let v: Value = x.json().map_err(|e| ResourcesError::Unreadable(format!("Resource Health: {e}")))?;
                serde_json::from_value(v["properties"].clone()).map(Some).map_err(|e| ResourcesError::Unreadable(format!("Resource Health: {e}")))
            }
            Err(ResourcesError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// `x-ms-user-quota-remaining`: queries left in the window.
fn quota_left(h: &reqwest::header::HeaderMap) -> Option<u64> {
    h.get("x-ms-user-quota-remaining")?.to_str().ok()?.trim().parse().ok()
}

/// `x-ms-user-quota-resets-after`, `hh:mm:ss`.
fn quota_resets_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get("x-ms-user-quota-resets-after")?.to_str().ok()?;
    let p: Vec<u64> = v.trim().split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let [hh, mm, ss] = p.as_slice() else { return None };
    Some(Duration::from_secs(hh * 3600 + mm * 60 + ss))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_real_resource_ids_pass() {
        let ok = "/subscriptions/0000/resourceGroups/rg-pay/providers/Microsoft.Compute/virtualMachines/vm-pay-01";
        assert_eq!(ResourceId::parse(ok).unwrap().name(), "vm-pay-01");
        assert!(ResourceId::parse(&format!("{ok}/")).is_some());
        for bad in [
            "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm\") | union *",
            "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/a b",
            "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/..%2f",
            "/subscriptions/0000/resourceGroups/rg",
            "vm-pay-01",
            "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/v?x=1",
        ] {
            assert!(ResourceId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn quota_headers_are_read() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("x-ms-user-quota-remaining", "0".parse().unwrap());
        h.insert("x-ms-user-quota-resets-after", "00:01:05".parse().unwrap());
        assert_eq!(quota_left(&h), Some(0));
        assert_eq!(quota_resets_after(&h), Some(Duration::from_secs(65)));
    }
}
