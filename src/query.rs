//! A small typed client for the Log Analytics Query API v1 (contract §2): `POST {endpoint}/v1/workspaces/{id}/query`
//! with `{"query","timespan"}` and a bearer token for `https://api.loganalytics.io`. Responses are read into
//! [`Frame`]s by column type, leniently (the API may send longs, reals and bools as strings).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value as Json};

use crate::kql::{Column, Frame, KType, Value};
use crate::token::TokenSource;

/// Scope of the Log Analytics Query API.
pub const QUERY_SCOPE: &str = "https://api.loganalytics.io/.default";
pub const DEFAULT_ENDPOINT: &str = "https://api.loganalytics.azure.com";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The service refused the query (400 BadArgumentError for a bad query, 403, …).
    #[error("query refused ({status}): {code}: {message}")]
    Refused { status: u16, code: String, message: String },
    #[error("query timed out after {0:?}")]
    Timeout(Duration),
    #[error("query failed: {0}")]
    Transport(String),
    #[error("unreadable query response: {0}")]
    Response(String),
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

pub struct LogsQueryClient {
    http: reqwest::Client,
    url: String,
    tokens: Arc<TokenSource>,
}

impl LogsQueryClient {
    pub fn new(endpoint: &str, workspace_id: &str, tokens: Arc<TokenSource>) -> Self {
        LogsQueryClient {
            http: reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).build().expect("reqwest client"),
            url: format!("{}/v1/workspaces/{workspace_id}/query", endpoint.trim_end_matches('/')),
            tokens,
        }
    }

    /// Runs a query; `timeout` bounds the whole call, token included.
    pub async fn query(&self, kql: &str, timespan: Option<&str>, timeout: Duration) -> Result<QueryResult, QueryError> {
        match tokio::time::timeout(timeout, self.query_inner(kql, timespan, timeout)).await {
            Ok(r) => r,
            Err(_) => Err(QueryError::Timeout(timeout)),
        }
    }

    async fn query_inner(&self, kql: &str, timespan: Option<&str>, timeout: Duration) -> Result<QueryResult, QueryError> {
        let mut body = json!({"query": kql});
        if let Some(t) = timespan {
            body["timespan"] = json!(t);
        }
        let mut retried = false;
        loop {
            let token = self.tokens.token().await.map_err(|e| QueryError::Transport(format!("token: {e}")))?;
            let wait = timeout.as_secs().clamp(1, 600);
            let resp = self
                .http
                .post(&self.url)
                .bearer_auth(&token)
                .header("prefer", format!("wait={wait}"))
                .json(&body)
                .send()
                .await
                .map_err(|e| QueryError::Transport(e.to_string()))?;
            let status = resp.status();
            let retry_after = crate::ingest::retry_after_of(resp.headers());
            let text = resp.text().await.map_err(|e| QueryError::Transport(e.to_string()))?;
            if status.is_success() {
                return parse_response(&text);
            }
            let (code, message) = error_parts(&text, status.as_u16());
            // Throttling and passing faults: one retry, inside the caller's timeout.
            if !retried && (status.as_u16() == 429 || status.is_server_error()) {
                retried = true;
                tokio::time::sleep(retry_after.unwrap_or(Duration::from_millis(500)).min(Duration::from_secs(10))).await;
                continue;
            }
            return Err(QueryError::Refused { status: status.as_u16(), code, message });
        }
    }
}

fn error_parts(text: &str, status: u16) -> (String, String) {
    let v: Option<Json> = serde_json::from_str(text).ok();
    let e = v.as_ref().and_then(|v| v.get("error"));
    let code = e.and_then(|e| e.get("code")).and_then(Json::as_str).unwrap_or("Error").to_string();
    let mut message = e.and_then(|e| e.get("message")).and_then(Json::as_str).unwrap_or(text).to_string();
    if let Some(inner) = e.and_then(|e| e.get("innererror")).and_then(|i| i.get("message")).and_then(Json::as_str) {
        if inner != message {
            message = format!("{message} ({inner})");
        }
    }
    if message.is_empty() {
        message = format!("HTTP {status}");
    }
    (code, message.chars().take(1000).collect())
}

/// Reads a Query API response body (an empty 200 is an empty result).
pub fn parse_response(text: &str) -> Result<QueryResult, QueryError> {
    if text.trim().is_empty() {
        return Ok(QueryResult::default());
    }
    let v: Json = serde_json::from_str(text).map_err(|e| QueryError::Response(e.to_string()))?;
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

/// Renders a frame as an aligned text table, for people.
pub fn render_table(f: &Frame) -> String {
    let header: Vec<String> = f.columns.iter().map(|c| c.name.clone()).collect();
    let cells: Vec<Vec<String>> = f.rows.iter().map(|r| r.iter().map(|v| v.to_text().replace('\n', " ")).collect()).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &cells {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count().min(60));
        }
    }
    let line = |vals: &[String]| {
        vals.iter()
            .enumerate()
            .map(|(i, v)| {
                let v: String = if v.chars().count() > 60 { v.chars().take(59).collect::<String>() + "…" } else { v.clone() };
                format!("{v:<w$}", w = widths[i])
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(&header) + "\n";
    out += &widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  ");
    out.push('\n');
    for row in &cells {
        out += &line(row);
        out.push('\n');
    }
    out += &format!("({} row{})\n", f.rows.len(), if f.rows.len() == 1 { "" } else { "s" });
    out
}

/// Renders a frame as CSV (RFC 4180 quoting).
pub fn render_csv(f: &Frame) -> String {
    let quote = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let mut out = f.columns.iter().map(|c| quote(&c.name)).collect::<Vec<_>>().join(",") + "\n";
    for r in &f.rows {
        out += &r.iter().map(|v| quote(&v.to_text())).collect::<Vec<_>>().join(",");
        out.push('\n');
    }
    out
}
