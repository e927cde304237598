//! The workspace's token endpoints, shaped as Azure's (contract §4): the App Service managed identity endpoint
//! (`GET /msi/token`, `X-IDENTITY-HEADER`, `expires_on` as a string) and the Entra client-credentials endpoint
//! (`POST /{tenant}/oauth2/v2.0/token`). The other endpoints accept only tokens issued here, for their audience.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde_json::json;

use super::{azure_error, Workspace};
use std::sync::Arc;

/// Tokens the stand-in remembers at most (a token evicted early is answered 401, as a revoked one is).
pub const MAX_TOKENS: usize = 16_384;

pub(super) struct Issued {
    audience: String,
    expires: SystemTime,
    /// Who the token is for (the client id, or the managed identity's), as Azure's per-user limits count.
    subject: String,
}

/// `https://monitor.azure.com/.default`, `https://monitor.azure.com//.default` and `https://monitor.azure.com`
/// all name one audience.
pub fn audience_of(resource_or_scope: &str) -> String {
    resource_or_scope.trim().trim_end_matches("/.default").trim_end_matches('/').to_ascii_lowercase()
}

impl Workspace {
    fn issue(&self, audience: &str, subject: &str) -> (String, u64) {
        let token = format!("local.{}", uuid::Uuid::new_v4().simple());
        let lifetime = self.config.token_lifetime;
        let issued = Issued { audience: audience_of(audience), expires: SystemTime::now() + lifetime, subject: subject.to_string() };
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        if tokens.len() >= MAX_TOKENS {
            // Bounded however many tokens are asked for: expired ones go first, then the oldest quarter.
            let now = SystemTime::now();
            tokens.retain(|_, t| t.expires > now);
            if tokens.len() >= MAX_TOKENS {
                let mut by_expiry: Vec<(SystemTime, String)> = tokens.iter().map(|(k, t)| (t.expires, k.clone())).collect();
                by_expiry.sort();
                for (_, k) in by_expiry.into_iter().take(MAX_TOKENS / 4) {
                    tokens.remove(&k);
                }
            }
        }
        tokens.insert(token.clone(), issued);
        self.stats.tokens_issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        (token, lifetime.as_secs())
    }

    /// Forgets every token issued, as a revocation does: the next call with one is refused.
    pub fn revoke_tokens(&self) {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    #[cfg(test)]
    pub(super) fn token_count(&self) -> usize {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Checks a request's bearer token for an audience; the error is Azure's 401/403 answer.
    pub(super) fn authorize(&self, headers: &HeaderMap, audiences: &HashSet<&str>) -> Result<(), Response> {
        self.authorize_subject(headers, audiences).map(|_| ())
    }

    /// As [`Workspace::authorize`]; the token's subject when it is good.
    pub(super) fn authorize_subject(&self, headers: &HeaderMap, audiences: &HashSet<&str>) -> Result<String, Response> {
        let Some(token) =
            headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        else {
            return Err(azure_error(StatusCode::UNAUTHORIZED, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."));
        };
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let Some(issued) = tokens.get(token.trim()) else {
            return Err(azure_error(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", "The access token is invalid."));
        };
        if issued.expires <= SystemTime::now() {
            return Err(azure_error(StatusCode::UNAUTHORIZED, "ExpiredAuthenticationToken", "The access token has expired."));
        }
        if !audiences.contains(issued.audience.as_str()) {
            return Err(azure_error(
                StatusCode::FORBIDDEN,
                "InvalidAuthenticationTokenAudience",
                &format!("The access token has been obtained for wrong audience or resource '{}'.", issued.audience),
            ));
        }
        Ok(issued.subject.clone())
    }
}

#[derive(serde::Deserialize)]
pub(super) struct MsiQuery {
    resource: Option<String>,
    #[serde(rename = "api-version")]
    api_version: Option<String>,
    client_id: Option<String>,
}

/// `GET /msi/token?resource=…&api-version=2019-08-01` with `X-IDENTITY-HEADER`.
pub(super) async fn msi_token(State(ws): State<Arc<Workspace>>, headers: HeaderMap, Query(q): Query<MsiQuery>) -> Response {
    let presented = headers.get("x-identity-header").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let header_ok = match &ws.config.identity_header {
        Some(expected) => presented == expected,
        None => !presented.is_empty(),
    };
    if !header_ok {
        return (StatusCode::UNAUTHORIZED, Json(json!({"statusCode": 401, "message": "X-IDENTITY-HEADER is missing or wrong"}))).into_response();
    }
    if q.api_version.as_deref() != Some("2019-08-01") {
        return (StatusCode::BAD_REQUEST, Json(json!({"statusCode": 400, "message": "api-version must be 2019-08-01"}))).into_response();
    }
    let Some(resource) = q.resource.filter(|r| !r.is_empty()) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"statusCode": 400, "message": "resource is required"}))).into_response();
    };
    let subject = q.client_id.clone().unwrap_or_else(|| "system-assigned".into());
    let (token, lifetime) = ws.issue(&resource, &subject);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
    Json(json!({
        "access_token": token,
        // App Service sends these as strings (contract §4).
        "expires_on": (now + lifetime).to_string(),
        "not_before": now.to_string(),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": q.client_id.unwrap_or_else(|| "00000000-0000-0000-0000-000000000000".into()),
    }))
    .into_response()
}

/// `POST /{tenant}/oauth2/v2.0/token`, client-credentials grant.
pub(super) async fn oauth_token(State(ws): State<Arc<Workspace>>, Path(_tenant): Path<String>, Form(form): Form<HashMap<String, String>>) -> Response {
    let aad_error = |status: StatusCode, error: &str, code: u32, description: &str| {
        let now = time::OffsetDateTime::now_utc();
        (
            status,
            Json(json!({
                "error": error,
                "error_description": format!("AADSTS{code}: {description}"),
                "error_codes": [code],
                "timestamp": crate::model::time::format_datetime(now),
                "trace_id": uuid::Uuid::new_v4().to_string(),
                "correlation_id": uuid::Uuid::new_v4().to_string(),
            })),
        )
            .into_response()
    };
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return aad_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.");
    }
    let (Some(client_id), Some(scope)) = (form.get("client_id"), form.get("scope")) else {
        return aad_error(StatusCode::BAD_REQUEST, "invalid_request", 900144, "The request body must contain client_id and scope.");
    };
    let secret = form.get("client_secret").map(String::as_str).unwrap_or_default();
    if let Some((id, expected)) = &ws.config.client_credentials {
        if client_id != id || secret != expected {
            return aad_error(StatusCode::UNAUTHORIZED, "invalid_client", 7000215, "Invalid client secret provided.");
        }
    } else if secret.is_empty() {
        return aad_error(StatusCode::UNAUTHORIZED, "invalid_client", 7000216, "client_assertion or client_secret is required.");
    }
    if !scope.trim_end().ends_with("/.default") {
        return aad_error(StatusCode::BAD_REQUEST, "invalid_scope", 1002012, "The provided value for scope is not valid.");
    }
    let (token, lifetime) = ws.issue(scope, client_id);
    Json(json!({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local_azure::WorkspaceConfig;

    #[test]
    fn the_token_map_is_bounded() {
        let ws = Workspace::open(WorkspaceConfig::new(vec![])).unwrap();
        let mut last = String::new();
        for _ in 0..MAX_TOKENS + 100 {
            last = ws.issue("https://monitor.azure.com", "c").0;
        }
        assert!(ws.token_count() <= MAX_TOKENS, "{} tokens kept", ws.token_count());
        // The newest token still works.
        let mut h = HeaderMap::new();
        h.insert("authorization", format!("Bearer {last}").parse().unwrap());
        assert!(ws.authorize(&h, &HashSet::from(["https://monitor.azure.com"])).is_ok());
    }
}
