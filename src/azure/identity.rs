//! Entra tokens for the Azure APIs: which credential to use (managed identity under the Functions host, a
//! client secret, else the developer tools), and a small cache in front of it so the hot path takes a cached
//! token without a round trip and a refused token is replaced by a new one (not the cached copy).

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_identity::{ClientSecretCredential, DeveloperToolsCredential, ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};
use reqwest::header::{HeaderValue, AUTHORIZATION};
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::azure::http::Authorizer;

/// Which Entra credential the bridge uses, in the order the Functions host makes sense of it.
#[derive(Clone, PartialEq, Eq)]
pub enum IdentitySetting {
    /// The host's managed identity (`IDENTITY_ENDPOINT`); user-assigned when a client id is given.
    ManagedIdentity { client_id: Option<String> },
    /// `AZURE_TENANT_ID` + `AZURE_CLIENT_ID` + `AZURE_CLIENT_SECRET`.
    ClientSecret { tenant_id: String, client_id: String, secret: String },
    /// `az login` / `azd auth login`, for developers.
    DeveloperTools,
}

impl std::fmt::Debug for IdentitySetting {
    // The secret stays out of every log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdentitySetting::ManagedIdentity { client_id } => f.debug_struct("ManagedIdentity").field("client_id", client_id).finish(),
            IdentitySetting::ClientSecret { tenant_id, client_id, .. } => {
                f.debug_struct("ClientSecret").field("tenant_id", tenant_id).field("client_id", client_id).finish_non_exhaustive()
            }
            IdentitySetting::DeveloperTools => f.write_str("DeveloperTools"),
        }
    }
}

/// Scope of the Logs Ingestion API (contract §1).
pub const MONITOR_SCOPE: &str = "https://monitor.azure.com/.default";

/// Refresh this long before expiry, so a token never expires mid-call.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// A credential, and how to make it again. azure_identity's credentials keep their own token cache, with no
/// way to bypass it, so forgetting our copy of a refused token would only fetch the same token back: a
/// refusal instead replaces the credential with a new one, whose cache is empty.
/// Makes a credential anew (its cache empty).
type Remake = Arc<dyn Fn() -> azure_core::Result<Arc<dyn TokenCredential>> + Send + Sync>;

#[derive(Clone)]
pub struct Credential {
    current: Arc<dyn TokenCredential>,
    remake: Option<Remake>,
    /// What it is, for logs and `doctor`.
    pub kind: &'static str,
}

impl Credential {
    /// A credential used as it is (one without a cache, such as [`LoopbackClientCredential`], or a test's).
    pub fn fixed(credential: Arc<dyn TokenCredential>, kind: &'static str) -> Self {
        Credential { current: credential, remake: None, kind }
    }

    /// The credential a setting calls for; it can be remade from the setting.
    pub fn for_setting(setting: &IdentitySetting) -> azure_core::Result<Self> {
        let (current, kind) = credential_for(setting)?;
        let setting = setting.clone();
        Ok(Credential { current, remake: Some(Arc::new(move || credential_for(&setting).map(|(c, _)| c))), kind })
    }

    pub fn get(&self) -> Arc<dyn TokenCredential> {
        self.current.clone()
    }
}

impl From<Arc<dyn TokenCredential>> for Credential {
    fn from(c: Arc<dyn TokenCredential>) -> Self {
        Credential::fixed(c, "given")
    }
}

impl<T: TokenCredential + 'static> From<Arc<T>> for Credential {
    fn from(c: Arc<T>) -> Self {
        Credential::fixed(c, "given")
    }
}

/// The azure_identity credential a setting calls for, and its name for logs.
pub fn credential_for(setting: &IdentitySetting) -> Result<(Arc<dyn TokenCredential>, &'static str), azure_core::Error> {
    match setting {
        IdentitySetting::ManagedIdentity { client_id } => {
            let options = ManagedIdentityCredentialOptions { user_assigned_id: client_id.clone().map(UserAssignedId::ClientId), ..Default::default() };
            Ok((ManagedIdentityCredential::new(Some(options))?, "managed identity"))
        }
        IdentitySetting::ClientSecret { tenant_id, client_id, secret } => {
            Ok((ClientSecretCredential::new(tenant_id, client_id.clone(), Secret::new(secret.clone()), None)?, "client secret"))
        }
        IdentitySetting::DeveloperTools => Ok((DeveloperToolsCredential::new(None)?, "developer tools (az / azd login)")),
    }
}

struct Held {
    credential: Arc<dyn TokenCredential>,
    token: Option<(String, OffsetDateTime)>,
    /// The credential was renewed and has fetched nothing since: a further refusal is of an older token.
    renewed: bool,
}

/// A token for one scope, cached until shortly before it expires; concurrent callers share one fetch. A token
/// the service refuses is renewed for real (see [`Credential`]), once however many calls it failed.
pub struct TokenSource {
    scope: String,
    remake: Option<Remake>,
    held: Mutex<Held>,
}

impl TokenSource {
    pub fn new(credential: impl Into<Credential>, scope: impl Into<String>) -> Self {
        let c = credential.into();
        TokenSource { scope: scope.into(), remake: c.remake, held: Mutex::new(Held { credential: c.current, token: None, renewed: false }) }
    }

    pub async fn token(&self) -> azure_core::Result<String> {
        let mut held = self.held.lock().await;
        if let Some((tok, exp)) = held.token.as_ref() {
            if *exp - OffsetDateTime::now_utc() > REFRESH_MARGIN {
                return Ok(tok.clone());
            }
        }
        let AccessToken { token, expires_on, .. } = held.credential.get_token(&[self.scope.as_str()], None::<TokenRequestOptions>).await?;
        let tok = token.secret().to_string();
        held.token = Some((tok.clone(), expires_on));
        held.renewed = false;
        Ok(tok)
    }

    /// Forgets the token `rejected` (all of it, when `None`) and renews the credential, so the next call
    /// fetches a new token from the identity endpoint. A refusal of a token already replaced changes nothing.
    pub async fn invalidate(&self, rejected: Option<&str>) {
        let mut held = self.held.lock().await;
        let current = held.token.as_ref().map(|(t, _)| t.as_str());
        if held.renewed || (rejected.is_some() && current.is_some() && current != rejected) {
            return;
        }
        held.token = None;
        held.renewed = true;
        if let Some(remake) = &self.remake {
            match remake() {
                Ok(c) => held.credential = c,
                Err(e) => tracing::warn!(error = %e, "could not renew the credential; its cache may hand back the refused token"),
            }
        }
    }
}

/// The bearer token in an Authorization header value.
pub fn bearer_of(value: Option<&HeaderValue>) -> Option<&str> {
    value?.to_str().ok()?.strip_prefix("Bearer ")
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

    async fn refresh(&self, rejected: Option<&HeaderValue>) {
        self.invalidate(bearer_of(rejected)).await;
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
        let resp =
            self.http.post(&self.token_url).form(&form).timeout(Duration::from_secs(10)).send().await.map_err(|e| fail(format!("token request: {e}")))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(fail(format!("token endpoint answered {status}: {}", body.chars().take(300).collect::<String>())));
        }
        let t: TokenResponse = resp.json().await.map_err(|e| fail(format!("token response: {e}")))?;
        Ok(AccessToken { token: Secret::new(t.access_token), expires_on: OffsetDateTime::now_utc() + Duration::from_secs(t.expires_in) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

    /// A credential with a cache it never lets go of, as azure_identity's: each instance has one token.
    #[derive(Debug)]
    struct Sticky(u64);

    #[async_trait::async_trait]
    impl TokenCredential for Sticky {
        async fn get_token(&self, _: &[&str], _: Option<TokenRequestOptions<'_>>) -> azure_core::Result<AccessToken> {
            Ok(AccessToken { token: Secret::new(format!("token-{}", self.0)), expires_on: OffsetDateTime::now_utc() + Duration::from_secs(3600) })
        }
    }

    fn renewable() -> (TokenSource, Arc<AtomicU64>) {
        let made = Arc::new(AtomicU64::new(0));
        let m = made.clone();
        let remake: Remake = Arc::new(move || Ok(Arc::new(Sticky(m.fetch_add(1, SeqCst) + 1)) as Arc<dyn TokenCredential>));
        let c = Credential { current: Arc::new(Sticky(0)), remake: Some(remake), kind: "test" };
        (TokenSource::new(c, MONITOR_SCOPE), made)
    }

    #[tokio::test]
    async fn a_refused_token_is_replaced_once_however_many_calls_it_failed() {
        let (source, made) = renewable();
        let first = source.token().await.unwrap();
        assert_eq!(first, "token-0");
        // Ten calls carried the token and were refused.
        for _ in 0..10 {
            source.invalidate(Some(&first)).await;
        }
        assert_eq!(made.load(SeqCst), 1, "the credential is remade once");
        assert_eq!(source.token().await.unwrap(), "token-1", "a new token, not the cached copy");
        // A refusal of the new token renews again.
        source.invalidate(Some("token-1")).await;
        assert_eq!(source.token().await.unwrap(), "token-2");
    }
}
