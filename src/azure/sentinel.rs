//! A small typed client for Microsoft Sentinel incidents over ARM (contract §3): get an incident, its alerts
//! and entities, put a comment under a chosen id, and update an incident with its etag.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::azure::http::{path_segment, Attempt, AzureRules, Call, CallError, Driver, RetryPolicy};
use crate::azure::identity::TokenSource;

pub const API_VERSION: &str = "2025-12-01";
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";
pub const DEFAULT_ARM_ENDPOINT: &str = "https://management.azure.com";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SentinelError {
    #[error("not found: {0}")]
    NotFound(String),
    /// A stale etag: re-read and retry.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("Sentinel refused the call ({status}): {code}: {message}")]
    Refused { status: u16, code: String, message: String },
    #[error("Sentinel call failed: {last}")]
    Unavailable { last: Attempt },
    /// An answer that is not what the API documents.
    #[error("unreadable Sentinel answer: {0}")]
    Unreadable(String),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Label {
    pub label_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_type: Option<String>,
}

/// The incident properties the enrichment reads or writes; the rest is kept as it came and sent back.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IncidentProperties {
    #[serde(default)]
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_number: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_activity_time_utc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_activity_time_utc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time_utc: Option<String>,
    #[serde(default)]
    pub labels: Vec<Label>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Incident {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default)]
    pub properties: IncidentProperties,
}

/// An alert as `POST …/alerts` returns it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Alert {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub properties: Value,
}

/// An entity as `POST …/entities` returns it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Entity {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub properties: Value,
}

/// How a [`SentinelClient`] sends.
#[derive(Debug, Clone)]
pub struct SentinelOptions {
    pub retry: RetryPolicy,
    /// How long one operation may take, its retries of throttling (429 with Retry-After) and passing faults
    /// (408, 5xx) included.
    pub call_timeout: Duration,
    /// How long writing a comment may take: longer than Sentinel's throttling window (75 writes per 5 minutes,
    /// answered 429 with a Retry-After up to the window), so a throttled comment waits its turn rather than
    /// being lost. The playbook polls for a run this long (`/api/enrich`'s asynchronous answer).
    pub comment_timeout: Duration,
}

impl Default for SentinelOptions {
    fn default() -> Self {
        SentinelOptions { retry: RetryPolicy::default(), call_timeout: Duration::from_secs(30), comment_timeout: Duration::from_secs(6 * 60) }
    }
}

/// An incident name no incident has (a GUID of zeros), for [`SentinelClient::may_write_comments`].
pub const PROBE_INCIDENT: &str = "00000000-0000-0000-0000-000000000000";

pub struct SentinelClient {
    driver: Driver,
    /// `{arm}/subscriptions/…/workspaces/{ws}/providers/Microsoft.SecurityInsights/incidents`
    incidents_url: String,
    tokens: Arc<TokenSource>,
    call_timeout: Duration,
    comment_timeout: Duration,
}

impl SentinelClient {
    pub fn new(arm_endpoint: &str, workspace_resource_id: &str, tokens: Arc<TokenSource>, options: SentinelOptions) -> Self {
        SentinelClient {
            driver: Driver::new(options.retry),
            incidents_url: format!(
                "{}{}/providers/Microsoft.SecurityInsights/incidents",
                arm_endpoint.trim_end_matches('/'),
                workspace_resource_id.trim_end_matches('/')
            ),
            tokens,
            call_timeout: options.call_timeout,
            comment_timeout: options.comment_timeout,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<(u16, Value), SentinelError> {
        self.call_with(method, path, "", body, self.call_timeout).await
    }

    /// As [`Self::call`], with more query parameters (`&name=value`, ours, never the caller's text) and its
    /// own time limit.
    async fn call_with(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<(u16, Value), SentinelError> {
        let url = format!("{}{path}?api-version={API_VERSION}{query}", self.incidents_url);
        let body = body.map(|b| serde_json::to_vec(b).unwrap_or_default());
        let build = |http: &reqwest::Client| {
            let req = http.request(method.clone(), &url);
            match &body {
                Some(b) => req.header("content-type", "application/json").body(b.clone()),
                // The alerts/entities POSTs have no documented body.
                None => req.header("content-length", "0"),
            }
        };
        let deadline = Instant::now() + timeout;
        let call = Call { build: &build, auth: self.tokens.as_ref(), logic: &AzureRules, deadline, retries: None, what: "sentinel" };
        match self.driver.send(call).await {
            Ok(x) => {
                let text = x.text();
                let v = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
                Ok((x.status.as_u16(), v))
            }
            Err(CallError::Refused(e)) => Err(match e.status {
                404 => SentinelError::NotFound(e.message),
                409 => SentinelError::Conflict(e.message),
                status => SentinelError::Refused { status, code: e.code, message: e.message },
            }),
            Err(CallError::Unavailable { last }) => Err(SentinelError::Unavailable { last }),
            Err(CallError::Split) => Err(SentinelError::Refused { status: 413, code: "RequestEntityTooLarge".into(), message: "the call is too large".into() }),
        }
    }

    pub async fn get_incident(&self, name: &str) -> Result<Incident, SentinelError> {
        let (_, v) = self.call(reqwest::Method::GET, &format!("/{}", path_segment(name)), None).await?;
        serde_json::from_value(v).map_err(|e| SentinelError::Unreadable(format!("incident: {e}")))
    }

    pub async fn alerts(&self, name: &str) -> Result<Vec<Alert>, SentinelError> {
        let (_, v) = self.call(reqwest::Method::POST, &format!("/{}/alerts", path_segment(name)), None).await?;
        serde_json::from_value(v["value"].clone()).map_err(|e| SentinelError::Unreadable(format!("alerts: {e}")))
    }

    pub async fn entities(&self, name: &str) -> Result<Vec<Entity>, SentinelError> {
        let (_, v) = self.call(reqwest::Method::POST, &format!("/{}/entities", path_segment(name)), None).await?;
        serde_json::from_value(v["entities"].clone()).map_err(|e| SentinelError::Unreadable(format!("entities: {e}")))
    }

    /// Creates or replaces a comment; returns whether it was created (201) rather than replaced (200).
    pub async fn put_comment(&self, name: &str, comment_id: &str, message: &str) -> Result<bool, SentinelError> {
        let (status, _) = self
            .call_with(
                reqwest::Method::PUT,
                &format!("/{}/comments/{}", path_segment(name), path_segment(comment_id)),
                "",
                Some(&json!({"properties": {"message": message}})),
                self.comment_timeout,
            )
            .await?;
        Ok(status == 201)
    }

    /// Lists at most `top` incidents: the workspace answers, and the identity may read incidents.
    pub async fn list_incidents(&self, top: u32) -> Result<usize, SentinelError> {
        let (_, v) = self.call_with(reqwest::Method::GET, "", &format!("&$top={top}"), None, self.call_timeout).await?;
        Ok(v["value"].as_array().map_or(0, Vec::len))
    }

    /// Whether the identity may write comments, without writing one: ARM checks the role before it looks the
    /// incident up, so a comment on an incident that does not exist is a 404 with the role and a 403 without.
    pub async fn may_write_comments(&self) -> Result<bool, SentinelError> {
        match self.put_comment(PROBE_INCIDENT, "sentinel-bridge-doctor", "probe").await {
            Err(SentinelError::NotFound(_)) => Ok(true),
            // Only ARM's AuthorizationFailed says the role is missing; another 403 (a policy, a locked
            // workspace) is not the identity's, and is reported as it came.
            Err(SentinelError::Refused { status: 403, code, .. }) if code == "AuthorizationFailed" => Ok(false),
            Err(e) => Err(e),
            // The probe incident exists after all: the write worked.
            Ok(_) => Ok(true),
        }
    }

    /// Writes an incident back with the etag it was read with; a stale etag is [`SentinelError::Conflict`].
    pub async fn put_incident(&self, incident: &Incident) -> Result<Incident, SentinelError> {
        let body = serde_json::to_value(incident).map_err(|e| SentinelError::Unreadable(e.to_string()))?;
        let (_, v) = self.call(reqwest::Method::PUT, &format!("/{}", path_segment(&incident.name)), Some(&body)).await?;
        serde_json::from_value(v).map_err(|e| SentinelError::Unreadable(format!("incident: {e}")))
    }
}
