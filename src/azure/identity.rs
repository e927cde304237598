//! Entra tokens for the Azure APIs: which credential to use (managed identity under the Functions host, a
//! client secret, else the developer tools), and a small cache in front of it so the hot path takes a cached
//! token without a round trip and a 401 can force a refresh.

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_identity::{
    ClientSecretCredential, DeveloperToolsCredential, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    UserAssignedId,
};
use time::OffsetDateTime;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use tokio::sync::Mutex;

use crate::app::settings::IdentitySetting;
use crate::azure::http::Authorizer;

/// Scope of the Logs Ingestion API (contract §1).
pub const MONITOR_SCOPE: &str = "https://monitor.azure.com/.default";

/// Refresh this long before expiry, so a token never expires mid-call.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// The credential a setting calls for, and its name for logs.
pub fn credential_for(setting: &IdentitySetting) -> Result<(Arc<dyn TokenCredential>, &'static str), azure_core::Error> {
    match setting {
        IdentitySetting::ManagedIdentity { client_id } => {
            let options = ManagedIdentityCredentialOptions {
                user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                ..Default::default()
            };
            Ok((ManagedIdentityCredential::new(Some(options))?, "managed identity"))
        }
        IdentitySetting::ClientSecret { tenant_id, client_id, secret } => {
            Ok((ClientSecretCredential::new(tenant_id, client_id.clone(), Secret::new(secret.clone()), None)?, "client secret"))
        }
        IdentitySetting::DeveloperTools => Ok((DeveloperToolsCredential::new(None)?, "developer tools (az / azd login)")),
    }
}

/// A token for one scope, cached until shortly before it expires; concurrent callers share one fetch.
pub struct TokenSource {
    credential: Arc<dyn TokenCredential>,
    scope: String,
    cached: Mutex<Option<(String, OffsetDateTime)>>,
}

impl TokenSource {
    pub fn new(credential: Arc<dyn TokenCredential>, scope: impl Into<String>) -> Self {
        TokenSource { credential, scope: scope.into(), cached: Mutex::new(None) }
    }

    pub async fn token(&self) -> azure_core::Result<String> {
        let mut cached = self.cached.lock().await;
        if let Some((tok, exp)) = cached.as_ref() {
            if *exp - OffsetDateTime::now_utc() > REFRESH_MARGIN {
                return Ok(tok.clone());
            }
        }
        let AccessToken { token, expires_on, .. } =
            self.credential.get_token(&[self.scope.as_str()], None::<TokenRequestOptions>).await?;
        let tok = token.secret().to_string();
        *cached = Some((tok.clone(), expires_on));
        Ok(tok)
    }

    /// Drops the cached token (after a 401) so the next call fetches a new one.
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}

#[async_trait::async_trait]
impl Authorizer for TokenSource {
    async fn authorize(&self, request: &mut reqwest::Request) -> Result<(), String> {
        let token = self.token().await.map_err(|e| e.to_string())?;
        let mut value = HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| "the token is not a header value".to_string())?;
        value.set_sensitive(true);
        request.headers_mut().insert(AUTHORIZATION, value);
        Ok(())
    }

    async fn refresh(&self) {
        self.invalidate().await;
    }
}

/// A credential for the local workspace and stand-ins: the OAuth client-credentials grant against
/// `{authority}/{tenant}/oauth2/v2.0/token` over plain HTTP on loopback, which azure_identity refuses (it
/// insists on HTTPS authorities).
#[derive(Debug)]
pub struct LoopbackClientCredential {
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    client_secret: String,
}

impl LoopbackClientCredential {
    pub fn new(authority: &str, tenant: &str, client_id: &str, client_secret: &str) -> Self {
        LoopbackClientCredential {
            http: crate::azure::http::shared_client(),
            token_url: format!("{}/{tenant}/oauth2/v2.0/token", authority.trim_end_matches('/')),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
        }
    }
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

#[async_trait::async_trait]
impl TokenCredential for LoopbackClientCredential {
    async fn get_token(&self, scopes: &[&str], _: Option<TokenRequestOptions<'_>>) -> azure_core::Result<AccessToken> {
        let fail = |m: String| azure_core::Error::with_message(azure_core::error::ErrorKind::Credential, m);
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.as_str()),
            ("scope", scopes.first().copied().unwrap_or_default()),
        ];
        let resp = self.http.post(&self.token_url).form(&form).timeout(Duration::from_secs(10)).send().await.map_err(|e| fail(format!("token request: {e}")))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(fail(format!("token endpoint answered {status}: {}", body.chars().take(300).collect::<String>())));
        }
        let t: TokenResponse = resp.json().await.map_err(|e| fail(format!("token response: {e}")))?;
        Ok(AccessToken {
            token: Secret::new(t.access_token),
            expires_on: OffsetDateTime::now_utc() + Duration::from_secs(t.expires_in),
        })
    }
}
