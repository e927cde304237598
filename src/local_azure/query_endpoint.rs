//! The workspace's Log Analytics Query API v1 (contract §2): `POST /v1/workspaces/{id}/query` with
//! `{"query", "timespan"}` (also `GET …?query=`), answered with `{"tables":[{"name":"PrimaryResult",
//! "columns":[{"name","type"}],"rows":[…]}]}` and Azure's column types. `timespan` (an ISO 8601 duration, or
//! `start/end`, or `start/duration`) filters every table's `TimeGenerated`. A bad or unsupported query is a 400
//! `BadArgumentError` whose message names the problem.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::{azure_error, Workspace};
use crate::kql::{self, Frame, KqlError};

/// The Query API's row limit (contract §2).
pub const MAX_ROWS: usize = 500_000;

pub const QUERY_AUDIENCES: [&str; 2] = ["https://api.loganalytics.io", "https://api.loganalytics.azure.com"];

#[derive(serde::Deserialize, Default)]
pub(super) struct QueryBody {
    query: Option<String>,
    timespan: Option<String>,
    #[allow(dead_code)]
    workspaces: Option<Vec<String>>,
}

/// Tables of the workspace, each limited to a time range when the request gives one.
pub struct WorkspaceTables<'a> {
    pub ws: &'a Workspace,
    pub range: Option<(i64, i64)>,
}

impl kql::Tables for WorkspaceTables<'_> {
    fn table(&self, name: &str) -> Option<Frame> {
        let f = self.ws.store.frame(name)?;
        let Some((start, end)) = self.range else { return Some(f) };
        let Some(i) = f.column_index("TimeGenerated") else { return Some(f) };
        let rows = f
            .rows
            .into_iter()
            .filter(|r| matches!(r[i], kql::Value::DateTime(t) if t >= start && t <= end))
            .collect();
        Some(Frame { columns: f.columns, rows })
    }
}

fn bad_argument(message: &str, inner: &str) -> Response {
    let body = json!({"error": {"code": "BadArgumentError", "message": message, "innererror": {"code": inner, "message": message}}});
    let mut r = (StatusCode::BAD_REQUEST, Json(body)).into_response();
    r.headers_mut().insert("x-ms-error-code", axum::http::HeaderValue::from_static("BadArgumentError"));
    r
}

pub(super) async fn query_post(
    State(ws): State<Arc<Workspace>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authorize_query(&ws, &headers) {
        return r;
    }
    if let Err(r) = check_workspace(&ws, &id) {
        return r;
    }
    // Documented quirk: no body or no Content-Type is an empty 200.
    let has_type = headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|v| v.to_ascii_lowercase().contains("json"));
    if body.is_empty() || !has_type {
        return StatusCode::OK.into_response();
    }
    let parsed: QueryBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad_argument(&format!("The request body is not valid JSON: {e}"), "BadRequest"),
    };
    run(ws, parsed, &headers).await
}

pub(super) async fn query_get(
    State(ws): State<Arc<Workspace>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Err(r) = authorize_query(&ws, &headers) {
        return r;
    }
    if let Err(r) = check_workspace(&ws, &id) {
        return r;
    }
    run(ws, QueryBody { query: q.get("query").cloned(), timespan: q.get("timespan").cloned(), workspaces: None }, &headers).await
}

/// The Query API answers a token it cannot use with 403 (`InvalidAuthenticationToken`, contract §2's table of
/// documented errors), where ARM and Logs Ingestion answer 401; only a missing token is a 401
/// (`AuthenticationFailed`).
fn authorize_query(ws: &Workspace, headers: &HeaderMap) -> Result<(), Response> {
    ws.authorize(headers, &HashSet::from(QUERY_AUDIENCES)).map_err(|r| {
        let code = r.headers().get("x-ms-error-code").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        match code.as_str() {
            "InvalidAuthenticationToken" => azure_error(StatusCode::FORBIDDEN, "InvalidAuthenticationToken", "The provided authentication is not valid for this resource."),
            "ExpiredAuthenticationToken" => azure_error(StatusCode::FORBIDDEN, "InvalidAuthenticationToken", "The access token has expired."),
            _ => r,
        }
    })
}

fn check_workspace(ws: &Workspace, id: &str) -> Result<(), Response> {
    let ok = match &ws.config.workspace_id {
        Some(expected) => expected.eq_ignore_ascii_case(id),
        None => uuid::Uuid::parse_str(id).is_ok(),
    };
    if ok {
        Ok(())
    } else {
        Err(azure_error(StatusCode::NOT_FOUND, "PathNotFoundError", &format!("The requested path does not exist: workspace '{id}'")))
    }
}

async fn run(ws: Arc<Workspace>, body: QueryBody, headers: &HeaderMap) -> Response {
    let Some(query) = body.query.filter(|q| !q.trim().is_empty()) else {
        return bad_argument("The request had some invalid properties: 'query' is required", "QueryMissing");
    };
    let now = crate::model::time::now_ticks();
    let range = match body.timespan.as_deref() {
        None => None,
        Some(t) => match crate::model::time::parse_query_timespan(t, now) {
            Some(r) => Some(r),
            None => return bad_argument(&format!("'{t}' is not a valid timespan (ISO 8601 duration, start/end or start/duration)"), "InvalidTimespan"),
        },
    };
    let stats = headers.get("prefer").and_then(|v| v.to_str().ok()).is_some_and(|p| p.contains("include-statistics=true"));
    let started = Instant::now();
    let result = tokio::task::spawn_blocking(move || kql::run(&query, &WorkspaceTables { ws: &ws, range }, now)).await;
    let frame = match result {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => {
            let inner = match e {
                KqlError::Syntax { .. } => "SyntaxError",
                KqlError::Unsupported { .. } => "UnsupportedOperatorError",
                KqlError::Semantic(_) => "SemanticError",
                KqlError::TooDeep { .. } => "SyntaxError",
            };
            return bad_argument(&e.to_string(), inner);
        }
        Err(_) => return azure_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "The query failed."),
    };
    let mut frame = frame;
    let mut out = json!({});
    if frame.rows.len() > MAX_ROWS {
        frame.rows.truncate(MAX_ROWS);
        out["error"] = json!({"code": "PartialError", "message": "There were some errors when processing your query.",
            "details": [{"code": "EngineError", "message": format!("Query result set has exceeded the internal record count limit {MAX_ROWS}")}]});
    }
    out["tables"] = json!([frame.to_wire("PrimaryResult")]);
    if stats {
        out["statistics"] = json!({"query": {"executionTime": started.elapsed().as_secs_f64()}});
    }
    Json(out).into_response()
}
