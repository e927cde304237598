//! The workspace's Log Analytics Query API v1 (contract §2): `POST /v1/workspaces/{id}/query` with
//! `{"query", "timespan"}` (also `GET …?query=`), answered with `{"tables":[{"name":"PrimaryResult",
//! "columns":[{"name","type"}],"rows":[…]}]}` and Azure's column types. `timespan` (an ISO 8601 duration, or
//! `start/end`, or `start/duration`) filters every table's `TimeGenerated`. A bad or unsupported query is a 400
//! `BadArgumentError` whose message names the problem.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Azure Monitor's per-user query throttling (azure-docs, includes/azure-monitor-limits-log-queries.md, "User
/// query throttling"): five queries run at once; the rest wait in a queue of at most 200, each for at most
/// 3 minutes before a 429; and a user submits at most 200 queries per 30 seconds.
#[derive(Debug, Clone)]
pub struct QueryLimits {
    pub concurrent: usize,
    pub queue_max: usize,
    pub queue_timeout: Duration,
    pub rate: usize,
    pub rate_window: Duration,
    /// How long each query holds its slot at least: a busy workspace, for tests of the limits above.
    pub min_latency: Duration,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            concurrent: 5,
            queue_max: 200,
            queue_timeout: Duration::from_secs(180),
            rate: 200,
            rate_window: Duration::from_secs(30),
            min_latency: Duration::ZERO,
        }
    }
}

/// One user's running and queued queries.
pub(super) struct UserQueries {
    running: tokio::sync::Semaphore,
    queued: AtomicUsize,
    now_running: AtomicUsize,
    recent: Mutex<VecDeque<Instant>>,
}

impl UserQueries {
    pub(super) fn new(limits: &QueryLimits) -> Self {
        UserQueries {
            running: tokio::sync::Semaphore::new(limits.concurrent),
            queued: AtomicUsize::new(0),
            now_running: AtomicUsize::new(0),
            recent: Mutex::new(VecDeque::new()),
        }
    }
}

fn throttled(ws: &Workspace, message: &str) -> Response {
    ws.stats.queries_throttled.fetch_add(1, Relaxed);
    azure_error(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", message)
}

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
        if self.ws.config.absent_tables.iter().any(|t| t == name) {
            return None;
        }
        let f = self.ws.store.frame(name)?;
        let Some((start, end)) = self.range else { return Some(f) };
        let Some(i) = f.column_index("TimeGenerated") else { return Some(f) };
        let rows = f.rows.into_iter().filter(|r| matches!(r[i], kql::Value::DateTime(t) if t >= start && t <= end)).collect();
        Some(Frame { columns: f.columns, rows })
    }
}

fn bad_argument(message: &str, inner: &str) -> Response {
    let body = json!({"error": {"code": "BadArgumentError", "message": message, "innererror": {"code": inner, "message": message}}});
    let mut r = (StatusCode::BAD_REQUEST, Json(body)).into_response();
    r.headers_mut().insert("x-ms-error-code", axum::http::HeaderValue::from_static("BadArgumentError"));
    r
}

pub(super) async fn query_post(State(ws): State<Arc<Workspace>>, Path(id): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let subject = match authorize_query(&ws, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
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
    run(ws, parsed, &headers, &subject).await
}

pub(super) async fn query_get(
    State(ws): State<Arc<Workspace>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let subject = match authorize_query(&ws, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Err(r) = check_workspace(&ws, &id) {
        return r;
    }
    run(ws, QueryBody { query: q.get("query").cloned(), timespan: q.get("timespan").cloned(), workspaces: None }, &headers, &subject).await
}

/// The Query API answers a token it cannot use with 403 (`InvalidAuthenticationToken`, contract §2's table of
/// documented errors), where ARM and Logs Ingestion answer 401; only a missing token is a 401
/// (`AuthenticationFailed`).
fn authorize_query(ws: &Workspace, headers: &HeaderMap) -> Result<String, Response> {
    ws.authorize_subject(headers, &HashSet::from(QUERY_AUDIENCES)).map_err(|r| {
        let code = r.headers().get("x-ms-error-code").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        match code.as_str() {
            "InvalidAuthenticationToken" => {
                azure_error(StatusCode::FORBIDDEN, "InvalidAuthenticationToken", "The provided authentication is not valid for this resource.")
            }
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

async fn run(ws: Arc<Workspace>, body: QueryBody, headers: &HeaderMap, subject: &str) -> Response {
    let Some(query) = body.query.filter(|q| !q.trim().is_empty()) else {
        return bad_argument("The request had some invalid properties: 'query' is required", "QueryMissing");
    };
    let limits = ws.config.query_limits.clone();
    let user = ws.query_user(subject);
    {
        let mut recent = user.recent.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        while recent.front().is_some_and(|t| now.duration_since(*t) > limits.rate_window) {
            recent.pop_front();
        }
        if recent.len() >= limits.rate {
            return throttled(&ws, &format!("Too many queries: a user may submit {} per {} seconds.", limits.rate, limits.rate_window.as_secs()));
        }
        recent.push_back(now);
    }
    // Five run; the rest queue (at most 200), each for at most the queue timeout.
    let permit = match user.running.try_acquire() {
        Ok(p) => p,
        Err(_) => {
            if user.queued.fetch_add(1, Relaxed) >= limits.queue_max {
                user.queued.fetch_sub(1, Relaxed);
                return throttled(&ws, &format!("Too many queries: {} are queued behind the {} running.", limits.queue_max, limits.concurrent));
            }
            let waited = tokio::time::timeout(limits.queue_timeout, user.running.acquire()).await;
            user.queued.fetch_sub(1, Relaxed);
            match waited {
                Ok(Ok(p)) => p,
                _ => {
                    return throttled(&ws, &format!("The query waited in the queue for more than {} seconds without starting.", limits.queue_timeout.as_secs()))
                }
            }
        }
    };
    let running = user.now_running.fetch_add(1, Relaxed) + 1;
    ws.stats.queries_peak_running.fetch_max(running, Relaxed);
    let answer = execute(ws.clone(), query, body.timespan, headers, limits.min_latency).await;
    user.now_running.fetch_sub(1, Relaxed);
    drop(permit);
    answer
}

async fn execute(ws: Arc<Workspace>, query: String, timespan: Option<String>, headers: &HeaderMap, min_latency: Duration) -> Response {
    let hold = tokio::time::sleep(min_latency);
    let now = crate::model::time::now_ticks();
    let range = match timespan.as_deref() {
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
    hold.await;
    Json(out).into_response()
}
