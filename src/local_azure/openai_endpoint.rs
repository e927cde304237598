//! Azure OpenAI chat completions (`POST /openai/deployments/{deployment}/chat/completions?api-version=…`,
//! bearer token for Cognitive Services), with the two request shapes deployments take. Chat models (GPT-4o,
//! GPT-4.1) take `max_tokens` and `temperature`. Reasoning models (o-series, GPT-5) refuse both with 400
//! `unsupported_parameter` / `unsupported_value` and take `max_completion_tokens`, which their hidden
//! reasoning tokens count against ("Azure OpenAI reasoning models", learn.microsoft.com/azure/foundry/openai/
//! how-to/reasoning: parameters not supported; developer messages replace system ones, and a request with both
//! is refused). The "model" states the leading hypothesis of the findings it is given, as a faithful one would.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::Workspace;

pub const OPENAI_AUDIENCES: [&str; 1] = ["https://cognitiveservices.azure.com"];

/// Tokens a reasoning deployment spends thinking before it writes (the stand-in's fixed figure: real ones
/// vary, often into the thousands, which is why a small `max_completion_tokens` ends with no text at all).
pub const REASONING_TOKENS: u64 = 640;

/// The request shape a deployment's model takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFamily {
    Chat,
    Reasoning,
}

/// OpenAI's error body: `{"error":{"message","type","param","code"}}`.
fn openai_error(status: StatusCode, code: &str, param: Option<&str>, message: &str) -> Response {
    (status, Json(json!({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}))).into_response()
}

pub(super) async fn chat_completions(
    State(ws): State<Arc<Workspace>>,
    Path(deployment): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = ws.authorize(&headers, &HashSet::from(OPENAI_AUDIENCES)) {
        return r;
    }
    if q.get("api-version").is_none_or(|v| v.is_empty()) {
        return openai_error(StatusCode::NOT_FOUND, "404", None, "Resource not found");
    }
    let Some(family) = ws.config.openai_deployments.iter().find(|(d, _)| *d == deployment).map(|(_, f)| *f) else {
        return openai_error(StatusCode::NOT_FOUND, "DeploymentNotFound", None, "The API deployment for this resource does not exist.");
    };
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return openai_error(StatusCode::BAD_REQUEST, "invalid_json", None, "We could not parse the JSON body of your request.");
    };
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    if messages.is_empty() {
        return openai_error(StatusCode::BAD_REQUEST, "invalid_request_error", Some("messages"), "'messages' is a required property");
    }
    let budget = match family {
        ModelFamily::Chat => req.get("max_tokens").or_else(|| req.get("max_completion_tokens")).and_then(Value::as_u64),
        ModelFamily::Reasoning => {
            if req.get("max_tokens").is_some() {
                return openai_error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_parameter",
                    Some("max_tokens"),
                    "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
                );
            }
            for p in ["temperature", "top_p"] {
                if let Some(v) = req.get(p).filter(|v| v.as_f64() != Some(1.0)) {
                    return openai_error(
                        StatusCode::BAD_REQUEST,
                        "unsupported_value",
                        Some(p),
                        &format!("Unsupported value: '{p}' does not support {v} with this model. Only the default (1) value is supported."),
                    );
                }
            }
            for p in ["presence_penalty", "frequency_penalty", "logprobs", "logit_bias"] {
                if req.get(p).is_some() {
                    return openai_error(
                        StatusCode::BAD_REQUEST,
                        "unsupported_parameter",
                        Some(p),
                        &format!("Unsupported parameter: '{p}' is not supported with this model."),
                    );
                }
            }
            let roles: Vec<&str> = messages.iter().filter_map(|m| m["role"].as_str()).collect();
            if roles.contains(&"system") && roles.contains(&"developer") {
                return openai_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    Some("messages"),
                    "System messages and developer messages cannot be used together.",
                );
            }
            req.get("max_completion_tokens").and_then(Value::as_u64)
        }
    };
    let text = answer(&messages);
    let written = text.split_whitespace().count() as u64 * 4 / 3 + 1;
    let reasoning = if family == ModelFamily::Reasoning { REASONING_TOKENS } else { 0 };
    let (content, finish) = match budget {
        Some(b) if b < reasoning + written => (String::new(), "length"),
        _ => (text, "stop"),
    };
    let completion = if content.is_empty() { 0 } else { written };
    Json(json!({
        "id": format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        "object": "chat.completion",
        "model": deployment,
        "choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": content}}],
        "usage": {"completion_tokens": completion + reasoning, "completion_tokens_details": {"reasoning_tokens": reasoning}},
    }))
    .into_response()
}

/// The leading hypothesis of the findings in the last user message, stated with its confidence.
fn answer(messages: &[Value]) -> String {
    let user = messages.iter().rev().find(|m| m["role"] == "user").and_then(|m| m["content"].as_str()).unwrap_or_default();
    let findings: Option<Value> = user.find('{').and_then(|i| serde_json::from_str(&user[i..]).ok());
    match findings.as_ref().and_then(|f| f["hypotheses"].get(0)) {
        Some(lead) => format!(
            "{} is most likely, at {:.2} confidence, given the supporting signals.",
            lead["title"].as_str().unwrap_or("The leading hypothesis"),
            lead["confidence"].as_f64().unwrap_or(0.0)
        ),
        None => "There is nothing to summarise.".into(),
    }
}
