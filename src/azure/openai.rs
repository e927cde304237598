//! A small client for Azure OpenAI chat completions (`POST {endpoint}/openai/deployments/{deployment}/chat/completions
//! ?api-version=…`, bearer token for Cognitive Services), over the shared driver.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::azure::http::{Attempt, AzureRules, Call, CallError, Driver, RetryPolicy};
use crate::azure::identity::TokenSource;

/// Scope of Azure OpenAI (Cognitive Services).
pub const OPENAI_SCOPE: &str = "https://cognitiveservices.azure.com/.default";

/// The request shape a deployment takes, which its model decides and Azure only reveals by refusing the
/// other one ("Azure OpenAI reasoning models", learn.microsoft.com/azure/foundry/openai/how-to/reasoning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// GPT-4o, GPT-4.1 and the like: `max_tokens`, `temperature`, a system message.
    Chat,
    /// o1, o3, o4-mini, GPT-5: `max_completion_tokens` (hidden reasoning tokens count against it), no
    /// `temperature` or `top_p` (400 `unsupported_value`), no `max_tokens` (400 `unsupported_parameter`), a
    /// developer message in place of the system one.
    Reasoning,
}

impl ModelKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "chat" => Some(ModelKind::Chat),
            "reasoning" => Some(ModelKind::Reasoning),
            _ => None,
        }
    }

    /// Enough for three sentences; a reasoning model also needs room to think first.
    pub fn default_max_output_tokens(self) -> u32 {
        match self {
            ModelKind::Chat => 300,
            ModelKind::Reasoning => 4000,
        }
    }
}

/// Where the deployment is, the shape it takes and how long a completion may take.
#[derive(Debug, Clone)]
pub struct OpenAiOptions {
    pub endpoint: String,
    pub deployment: String,
    pub api_version: String,
    pub kind: ModelKind,
    pub max_output_tokens: u32,
    pub reasoning_effort: Option<String>,
    pub retry: RetryPolicy,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenAiError {
    #[error("Azure OpenAI refused the call ({status} {code}): {message}{}", hint(code))]
    Refused { status: u16, code: String, message: String },
    #[error("Azure OpenAI did not answer in time: {last}")]
    Unavailable { last: Attempt },
    #[error("Azure OpenAI's answer has no completion")]
    NoCompletion,
    #[error("Azure OpenAI spent the whole token budget ({0}) before writing: raise AZURE_OPENAI_MAX_OUTPUT_TOKENS")]
    Truncated(u32),
    #[error("Azure OpenAI's content filter withheld the completion")]
    Filtered,
}

/// What to change when a deployment refuses the request's shape.
fn hint(code: &str) -> &'static str {
    match code {
        "unsupported_parameter" | "unsupported_value" => " (does AZURE_OPENAI_MODEL_KIND match the deployment's model?)",
        "DeploymentNotFound" => " (check AZURE_OPENAI_DEPLOYMENT)",
        _ => "",
    }
}

pub struct OpenAiClient {
    driver: Driver,
    url: String,
    tokens: Arc<TokenSource>,
    timeout: Duration,
    kind: ModelKind,
    max_output_tokens: u32,
    reasoning_effort: Option<String>,
}

impl OpenAiClient {
    pub fn new(options: OpenAiOptions, tokens: Arc<TokenSource>) -> Self {
        OpenAiClient {
            driver: Driver::new(options.retry),
            url: format!(
                "{}/openai/deployments/{}/chat/completions?api-version={}",
                options.endpoint.trim_end_matches('/'),
                options.deployment,
                options.api_version
            ),
            tokens,
            timeout: options.timeout,
            kind: options.kind,
            max_output_tokens: options.max_output_tokens,
            reasoning_effort: options.reasoning_effort,
        }
    }

    /// The request body in the deployment's shape.
    pub fn body(&self, system: &str, user: &str) -> Value {
        match self.kind {
            ModelKind::Chat => json!({
                "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
                "temperature": 0,
                "max_tokens": self.max_output_tokens,
            }),
            ModelKind::Reasoning => {
                let mut b = json!({
                    "messages": [{"role": "developer", "content": system}, {"role": "user", "content": user}],
                    "max_completion_tokens": self.max_output_tokens,
                });
                if let Some(e) = &self.reasoning_effort {
                    b["reasoning_effort"] = json!(e);
                }
                b
            }
        }
    }

    /// One completion of instructions (system or developer message) and a user message; the text of the
    /// first choice.
    pub async fn complete(&self, system: &str, user: &str) -> Result<String, OpenAiError> {
        let body = serde_json::to_vec(&self.body(system, user)).unwrap_or_default();
        let build = |http: &reqwest::Client| http.post(&self.url).header("content-type", "application/json").body(body.clone());
        let call = Call {
            build: &build,
            auth: self.tokens.as_ref(),
            logic: &AzureRules,
            deadline: Instant::now() + self.timeout,
            retries: None,
            what: "azure openai",
        };
        let answer = self.driver.send(call).await.map_err(|e| match e {
            CallError::Refused(e) => OpenAiError::Refused { status: e.status, code: e.code, message: e.message.chars().take(300).collect() },
            CallError::Unavailable { last } => OpenAiError::Unavailable { last },
            CallError::Split => OpenAiError::Refused { status: 413, code: "RequestEntityTooLarge".into(), message: "the request is too large".into() },
        })?;
        let v: Value = answer.json().map_err(|_| OpenAiError::NoCompletion)?;
        let choice = &v["choices"][0];
        let text = choice["message"]["content"].as_str().map(str::trim).unwrap_or_default();
        match choice["finish_reason"].as_str() {
            _ if !text.is_empty() => Ok(text.to_string()),
            Some("length") => Err(OpenAiError::Truncated(self.max_output_tokens)),
            Some("content_filter") => Err(OpenAiError::Filtered),
            _ => Err(OpenAiError::NoCompletion),
        }
    }
}
