//! A small client for Azure OpenAI chat completions (`POST {endpoint}/openai/deployments/{deployment}/chat/completions
//! ?api-version=…`, bearer token for Cognitive Services), over the shared driver.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::azure::http::{AzureRules, Call, CallError, Driver, RetryPolicy};
use crate::azure::identity::TokenSource;

/// Scope of Azure OpenAI (Cognitive Services).
pub const OPENAI_SCOPE: &str = "https://cognitiveservices.azure.com/.default";

/// Where the deployment is and how long a completion may take.
#[derive(Debug, Clone)]
pub struct OpenAiOptions {
    pub endpoint: String,
    pub deployment: String,
    pub api_version: String,
    pub retry: RetryPolicy,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenAiError {
    #[error("Azure OpenAI refused the call ({status}): {code}")]
    Refused { status: u16, code: String },
    #[error("Azure OpenAI did not answer in time: {0}")]
    Unavailable(String),
    #[error("Azure OpenAI's answer has no completion")]
    NoCompletion,
}

pub struct OpenAiClient {
    driver: Driver,
    url: String,
    tokens: Arc<TokenSource>,
    timeout: Duration,
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
        }
    }

    /// One completion of a system and a user message; the text of the first choice.
    pub async fn complete(&self, system: &str, user: &str, max_tokens: u32) -> Result<String, OpenAiError> {
        let body = json!({
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "temperature": 0,
            "max_tokens": max_tokens,
        });
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let build = |http: &reqwest::Client| http.post(&self.url).header("content-type", "application/json").body(body.clone());
        let call = Call { build: &build, auth: self.tokens.as_ref(), logic: &AzureRules, deadline: Instant::now() + self.timeout, retries: None, what: "azure openai" };
        let answer = self.driver.send(call).await.map_err(|e| match e {
            CallError::Refused(e) => OpenAiError::Refused { status: e.status, code: e.code },
            other => OpenAiError::Unavailable(other.to_string()),
        })?;
        let v: Value = answer.json().map_err(|_| OpenAiError::NoCompletion)?;
        v["choices"][0]["message"]["content"].as_str().map(|t| t.trim().to_string()).ok_or(OpenAiError::NoCompletion)
    }
}
