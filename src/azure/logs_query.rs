//! A small typed client for the Log Analytics Query API v1 (contract §2): `POST {endpoint}/v1/workspaces/{id}/query`
//! with `{"query","timespan"}` and a bearer token for `https://api.loganalytics.io`. Responses are read into
//! [`Frame`]s by column type, leniently (the API may send longs, reals and bools as strings).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use crate::azure::http::{azure_verdict, Attempt, AzureError, Call, CallError, Driver, RetryLogic, RetryPolicy, Verdict};
use crate::azure::identity::TokenSource;
use crate::model::frame::{Column, Frame};
use crate::model::value::{KType, Value};

/// Scope of the Log Analytics Query API.
pub const QUERY_SCOPE: &str = "https://api.loganalytics.io/.default";
pub const DEFAULT_ENDPOINT: &str = "https://api.loganalytics.azure.com";

/// Queries one identity runs at once. Log Analytics runs five per user and queues the rest, at most 3 minutes
/// (azure-docs, includes/azure-monitor-limits-log-queries.md, "User query throttling"): a query queued there
/// spends its own timeout waiting, so the client queues them itself and starts each one's clock when it is sent.
pub const MAX_CONCURRENT_QUERIES: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The service refused the query (400 BadArgumentError for a bad query, 403, …).
    #[error("query refused ({status}): {code}: {message}")]
    Refused { status: u16, code: String, message: String },
    #[error("query timed out after {0:?}")]
    Timeout(Duration),
    #[error("query failed: {last}")]
    Unavailable { last: Attempt },
    #[error("unreadable query response: {0}")]
    Unreadable(String),
}

#[derive(Debug, Clone, Default)]
pub struct QueryResult {
    pub tables: Vec<Frame>,
    /// Set when the service returned results with a `PartialError`.
    pub partial_error: Option<String>,
}

impl QueryResult {
    /// The first table (`PrimaryResult`), or an empty one.
    pub fn primary(&self) -> Frame {
        self.tables.first().cloned().unwrap_or_default()
    }
}

/// The Query API's reading of its answers: Azure's common rules, except that it answers a token it cannot
/// use (revoked, expired) with 403 `InvalidAuthenticationToken` (contract §2) rather than 401, which is
/// worth one retry with a fresh token too.
struct QueryRules;

impl RetryLogic for QueryRules {
    fn classify(&self, status: reqwest::StatusCode, headers: &reqwest::header::HeaderMap, body: &[u8]) -> Verdict {
        if status == reqwest::StatusCode::FORBIDDEN && AzureError::from_response(status, headers, body).code == "InvalidAuthenticationToken" {
            return Verdict::RefreshToken;
        }
        azure_verdict(status)
    }
}

/// How a [`LogsQueryClient`] sends (each query's timeout is the caller's, per call).
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    pub retry: RetryPolicy,
}

pub struct LogsQueryClient {
    driver: Driver,
    url: String,
    tokens: Arc<TokenSource>,
    /// Shared by every enrichment this client serves: the limit is per identity, not per incident.
    slots: tokio::sync::Semaphore,
}

impl LogsQueryClient {
    pub fn new(endpoint: &str, workspace_id: &str, tokens: Arc<TokenSource>, options: QueryOptions) -> Self {
        LogsQueryClient {
            driver: Driver::new(options.retry),
            url: format!("{}/v1/workspaces/{workspace_id}/query", endpoint.trim_end_matches('/')),
            tokens,
            slots: tokio::sync::Semaphore::new(MAX_CONCURRENT_QUERIES),
        }
    }

    /// Runs a query; `timeout` bounds the whole call, token and retries of throttling and passing faults
    /// included (Azure's common rules: 408, 429 and 5xx pass; a 401 is retried once with a fresh token). A
    /// query waits for one of the [`MAX_CONCURRENT_QUERIES`] slots first, for at most `timeout` too.
    pub async fn query(&self, kql: &str, timespan: Option<&str>, timeout: Duration) -> Result<QueryResult, QueryError> {
        let Ok(Ok(_slot)) = tokio::time::timeout(timeout, self.slots.acquire()).await else {
            tracing::warn!("no query slot free in time: {MAX_CONCURRENT_QUERIES} queries were running throughout");
            return Err(QueryError::Timeout(timeout));
        };
        let mut body = json!({"query": kql});
        if let Some(t) = timespan {
            body["timespan"] = json!(t);
        }
        let body = serde_json::to_vec(&body).unwrap_or_default();
        // The service waits this long before it gives up on a query itself (contract §2: `Prefer: wait=`).
        let wait = format!("wait={}", timeout.as_secs().clamp(1, 600));
        let build = |http: &reqwest::Client| http.post(&self.url).header("content-type", "application/json").header("prefer", &wait).body(body.clone());
        let call = Call {
            build: &build,
            auth: self.tokens.as_ref(),
            logic: &QueryRules,
            deadline: Instant::now() + timeout,
            retries: None,
            what: "log analytics query",
        };
        match self.driver.send(call).await {
            Ok(exchange) => parse_response(&exchange.text()),
            Err(CallError::Refused(e)) => Err(QueryError::Refused { status: e.status, code: e.code, message: e.message }),
            Err(CallError::Unavailable { last }) if last.is_slow_answer() => {
                tracing::warn!(last = %last, "query did not finish in time");
                Err(QueryError::Timeout(timeout))
            }
            Err(CallError::Unavailable { last }) => Err(QueryError::Unavailable { last }),
            Err(CallError::Split) => {
                Err(QueryError::Refused { status: 413, code: "RequestEntityTooLarge".into(), message: "the service refused the query as too large".into() })
            }
        }
    }
}

/// Reads a Query API response body (an empty 200 is an empty result).
pub fn parse_response(text: &str) -> Result<QueryResult, QueryError> {
    if text.trim().is_empty() {
        return Ok(QueryResult::default());
    }
    let v: Json = serde_json::from_str(text).map_err(|e| QueryError::Unreadable(e.to_string()))?;
    let mut out = QueryResult::default();
    if let Some(e) = v.get("error") {
        out.partial_error = Some(e.get("message").and_then(Json::as_str).unwrap_or("partial error").to_string());
    }
    for t in v.get("tables").and_then(Json::as_array).into_iter().flatten() {
        let columns: Vec<Column> = t
            .get("columns")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .map(|c| Column {
                name: c.get("name").and_then(Json::as_str).unwrap_or_default().to_string(),
                ktype: c.get("type").and_then(Json::as_str).and_then(KType::parse).unwrap_or(KType::String),
            })
            .collect();
        let rows = t
            .get("rows")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .map(|r| {
                let cells = r.as_array().cloned().unwrap_or_default();
                columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let cell = cells.get(i).cloned().unwrap_or(Json::Null);
                        // Dynamic cells arrive as JSON text.
                        let cell = match (c.ktype, cell) {
                            (KType::Dynamic, Json::String(s)) => serde_json::from_str(&s).unwrap_or(Json::String(s)),
                            (_, x) => x,
                        };
                        Value::from_json(&cell, c.ktype).unwrap_or(Value::Null)
                    })
                    .collect::<Vec<_>>()
                    .into()
            })
            .collect();
        out.tables.push(Frame { columns, rows });
    }
    Ok(out)
}
