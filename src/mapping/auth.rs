//! Checking that a webhook request comes from the source it claims: bearer token, a secret in a named header,
//! HMAC-SHA256 of the raw body, or Standard Webhooks v1. Every comparison is constant-time, and every configured
//! secret is tried (rotation), so timing reveals neither which secret nor how much of one matched.

use axum::http::HeaderMap;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::mapping::{AuthConfig, AuthMode, SignatureEncoding};

type HmacSha256 = Hmac<Sha256>;

/// A source's secrets, as bytes. Secrets never appear in `Debug` output.
#[derive(Clone, Default)]
pub struct Secrets(Vec<Vec<u8>>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} configured)", self.0.len())
    }
}

/// What is wrong with a secrets setting (never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    #[error("secret {position} is not whsec_<base64>")]
    NotBase64 { position: usize },
    #[error("secret {position} is shorter than 16 bytes")]
    TooShort { position: usize },
    #[error("more than {MAX_SECRETS} secrets (rotation needs two)")]
    TooMany,
    #[error("is an unresolved Key Vault reference: the function's identity cannot read the secret (grant it Key Vault Secrets User on the vault, and check the reference's vault and secret names)")]
    UnresolvedKeyVaultReference,
}

impl Secrets {
    /// Parses a `SOURCE_<NAME>_SECRETS` value: comma-separated, surrounding spaces ignored. Standard Webhooks
    /// secrets are `whsec_<base64>` (the prefix is optional) and are decoded to their key bytes.
    pub fn parse(value: &str, mode: &AuthMode) -> Result<Secrets, SecretsError> {
        // App Service resolves `@Microsoft.KeyVault(...)` references before the process starts; one still here
        // means the app's identity could not read the vault. Its text is guessable, never a secret.
        if value.trim_start().starts_with("@Microsoft.KeyVault(") {
            return Err(SecretsError::UnresolvedKeyVaultReference);
        }
        let mut out = Vec::new();
        for (i, s) in value.split(',').map(str::trim).filter(|s| !s.is_empty()).enumerate() {
            let bytes = match mode {
                AuthMode::StandardWebhooks { .. } => {
                    let b64 = s.strip_prefix("whsec_").unwrap_or(s);
                    B64.decode(b64).map_err(|_| SecretsError::NotBase64 { position: i + 1 })?
                }
                _ => s.as_bytes().to_vec(),
            };
            if bytes.len() < 16 {
                return Err(SecretsError::TooShort { position: i + 1 });
            }
            out.push(bytes);
        }
        if out.len() > MAX_SECRETS {
            return Err(SecretsError::TooMany);
        }
        Ok(Secrets(out))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("{0} does not match any configured secret")]
    Mismatch(&'static str),
    #[error("webhook-timestamp is outside the {0}-second tolerance")]
    Expired(u64),
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("this source has no secret configured; set its SOURCE_<NAME>_SECRETS")]
    NotConfigured,
    #[error("{0} is longer than {1} bytes")]
    TooLong(&'static str, usize),
    #[error("{0} carries more than {1} signatures")]
    TooMany(&'static str, usize),
}

/// What a successful check established.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verified {
    /// The Standard Webhooks message id, for replay detection.
    pub message_id: Option<String>,
    /// Until when (Unix seconds) the signed timestamp keeps this message acceptable: how long its id must be
    /// remembered.
    pub replay_until: Option<i64>,
    /// The source is open and no secret was checked.
    pub open: bool,
}

/// Checks requests for one source.
#[derive(Debug, Clone)]
pub struct Verifier {
    config: AuthConfig,
    secrets: Secrets,
}

impl Verifier {
    pub fn new(config: AuthConfig, secrets: Secrets) -> Self {
        Verifier { config, secrets }
    }

    pub fn mode(&self) -> &AuthMode {
        &self.config.mode
    }

    /// Whether verifying costs a pass over the body (the HMAC modes).
    pub fn hashes_body(&self) -> bool {
        matches!(self.config.mode, AuthMode::HmacSha256 { .. } | AuthMode::StandardWebhooks { .. }) && !self.secrets.is_empty()
    }

    /// Whether any request can pass: a secret is configured, or the source is open.
    pub fn accepts_requests(&self) -> bool {
        !self.secrets.is_empty() || self.config.open
    }

    /// Verifies a request, given its headers, raw body and the current Unix time.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8], now_unix: i64) -> Result<Verified, AuthError> {
        if self.secrets.is_empty() {
            return if self.config.open { Ok(Verified { message_id: None, replay_until: None, open: true }) } else { Err(AuthError::NotConfigured) };
        }
        match &self.config.mode {
            AuthMode::Bearer => {
                let value = header_str(headers, "authorization").ok_or(AuthError::Missing("Authorization header"))?;
                let token = strip_bearer(value).ok_or(AuthError::Malformed("Authorization header (expected Bearer)"))?;
                self.match_secret(token.as_bytes()).then(Verified::default).ok_or(AuthError::Mismatch("bearer token"))
            }
            AuthMode::Header { name } => {
                let value = headers.get(name.as_str()).ok_or(AuthError::Missing("secret header"))?;
                self.match_secret(value.as_bytes()).then(Verified::default).ok_or(AuthError::Mismatch("secret header"))
            }
            AuthMode::HmacSha256 { header, encoding, prefix } => {
                let value = header_str(headers, header).ok_or(AuthError::Missing("signature header"))?;
                if value.len() > MAX_SIGNATURE_HEADER_BYTES {
                    return Err(AuthError::TooLong("signature header", MAX_SIGNATURE_HEADER_BYTES));
                }
                let sig = value.trim().strip_prefix(prefix.as_str()).ok_or(AuthError::Malformed("signature header"))?;
                let sig = match encoding {
                    SignatureEncoding::Hex => hex::decode(sig),
                    SignatureEncoding::Base64 => B64.decode(sig).map_err(|_| hex::FromHexError::InvalidStringLength),
                }
                .map_err(|_| AuthError::Malformed("signature header"))?;
                let ok = self.any_secret(|key| bool::from(mac_of(key, &[body])[..].ct_eq(&sig[..])));
                ok.then(Verified::default).ok_or(AuthError::Mismatch("signature"))
            }
            AuthMode::StandardWebhooks { tolerance_secs } => {
                let id = header_str(headers, "webhook-id").ok_or(AuthError::Missing("webhook-id header"))?;
                let ts = header_str(headers, "webhook-timestamp").ok_or(AuthError::Missing("webhook-timestamp header"))?;
                let sigs = header_str(headers, "webhook-signature").ok_or(AuthError::Missing("webhook-signature header"))?;
                if id.len() > MAX_MESSAGE_ID_BYTES {
                    return Err(AuthError::TooLong("webhook-id header", MAX_MESSAGE_ID_BYTES));
                }
                if sigs.len() > MAX_SIGNATURE_HEADER_BYTES {
                    return Err(AuthError::TooLong("webhook-signature header", MAX_SIGNATURE_HEADER_BYTES));
                }
                let ts_num: i64 = ts.trim().parse().map_err(|_| AuthError::Malformed("webhook-timestamp header"))?;
                if (now_unix - ts_num).unsigned_abs() > *tolerance_secs {
                    return Err(AuthError::Expired(*tolerance_secs));
                }
                // Several space-separated `v1,<base64>` signatures may be sent (the sender's own rotation).
                let candidates: Vec<Vec<u8>> = sigs.split_whitespace().filter_map(|s| s.strip_prefix("v1,")).filter_map(|b| B64.decode(b).ok()).collect();
                if candidates.is_empty() {
                    return Err(AuthError::Malformed("webhook-signature header (no v1 signature)"));
                }
                if candidates.len() > MAX_SIGNATURE_CANDIDATES {
                    return Err(AuthError::TooMany("webhook-signature", MAX_SIGNATURE_CANDIDATES));
                }
                let parts: [&[u8]; 5] = [id.as_bytes(), b".", ts.as_bytes(), b".", body];
                // One MAC per secret, whatever the number of candidates; each comparison is constant-time.
                let ok = self.any_secret(|key| {
                    let mac = mac_of(key, &parts);
                    let mut any = 0u8;
                    for c in &candidates {
                        any |= mac[..].ct_eq(&c[..]).unwrap_u8();
                    }
                    any == 1
                });
                ok.then(|| Verified { message_id: Some(id.to_string()), replay_until: Some(ts_num.saturating_add(*tolerance_secs as i64)), open: false })
                    .ok_or(AuthError::Mismatch("webhook-signature"))
            }
        }
    }

    /// Compares against every secret without stopping early; hashing first makes the comparison independent
    /// of both lengths.
    fn match_secret(&self, presented: &[u8]) -> bool {
        let p = Sha256::digest(presented);
        self.any_secret(|s| bool::from(Sha256::digest(s).ct_eq(&p)))
    }

    fn any_secret(&self, f: impl Fn(&[u8]) -> bool) -> bool {
        let mut any = 0u8;
        for s in &self.secrets.0 {
            any |= f(s) as u8;
        }
        any == 1
    }
}

/// HMAC-SHA256 over the concatenated parts. (`subtle` compares slices of different lengths as unequal, in
/// time that depends only on the lengths, which are public.)
fn mac_of(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else { return [0; 32] };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// A `webhook-signature` header carries a sender's current signatures (its own rotation: one or two, rarely
/// more). More than this is not a sender rotating keys but a request making us work.
pub const MAX_SIGNATURE_CANDIDATES: usize = 8;
/// Longer than eight `v1,<base64 of 32 bytes>` entries with room to spare.
pub const MAX_SIGNATURE_HEADER_BYTES: usize = 1024;
/// The longest `tolerance_secs` a Standard Webhooks source may have.
pub const MAX_TOLERANCE_SECS: u64 = 3600;

/// Standard Webhooks message ids are short (`msg_<ksuid>`); they are also keys of the replay guard.
pub const MAX_MESSAGE_ID_BYTES: usize = 256;
/// Secrets a source may hold at once (rotation needs two).
pub const MAX_SECRETS: usize = 8;

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn strip_bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// Signs a body as a Standard Webhooks sender would: the `webhook-signature` header value for `key`.
pub fn standard_webhooks_signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

/// HMAC-SHA256 of a body, hex-encoded, as an HMAC-signing sender computes it.
pub fn hmac_sha256_hex(key: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const SECRET: &str = "s3cr3t-token-for-tests-0001";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn verifier(mode: AuthMode, secrets: &str) -> Verifier {
        Verifier::new(AuthConfig { mode: mode.clone(), open: false }, Secrets::parse(secrets, &mode).unwrap())
    }

    #[test]
    fn bearer_accepts_any_rotated_secret_and_nothing_else() {
        let v = verifier(AuthMode::Bearer, &format!("old-secret-0123456789, {SECRET}"));
        assert!(v.verify(&headers(&[("authorization", &format!("Bearer {SECRET}"))]), b"", 0).is_ok());
        assert!(v.verify(&headers(&[("authorization", "bearer old-secret-0123456789")]), b"", 0).is_ok());
        assert_eq!(v.verify(&headers(&[("authorization", "Bearer nope")]), b"", 0), Err(AuthError::Mismatch("bearer token")));
        assert_eq!(v.verify(&headers(&[]), b"", 0), Err(AuthError::Missing("Authorization header")));
        assert!(matches!(v.verify(&headers(&[("authorization", SECRET)]), b"", 0), Err(AuthError::Malformed(_))));
    }

    #[test]
    fn hmac_checks_the_raw_body() {
        let mode = AuthMode::HmacSha256 { header: "x-signature".into(), encoding: SignatureEncoding::Hex, prefix: "sha256=".into() };
        let v = verifier(mode, SECRET);
        let sig = format!("sha256={}", hmac_sha256_hex(SECRET.as_bytes(), b"{\"a\":1}"));
        assert!(v.verify(&headers(&[("x-signature", &sig)]), b"{\"a\":1}", 0).is_ok());
        assert!(matches!(v.verify(&headers(&[("x-signature", &sig)]), b"{\"a\":2}", 0), Err(AuthError::Mismatch(_))));
        assert!(matches!(v.verify(&headers(&[("x-signature", "sha256=zz")]), b"", 0), Err(AuthError::Malformed(_))));
    }

    #[test]
    fn standard_webhooks_checks_time_and_any_signature() {
        let key = b"0123456789abcdef0123456789abcdef";
        let secret = format!("whsec_{}", B64.encode(key));
        let v = verifier(AuthMode::StandardWebhooks { tolerance_secs: 300 }, &secret);
        let body = b"{\"type\":\"x\"}";
        let sig = standard_webhooks_signature(key, "msg_1", 1_000_000, body);
        let both = format!("v1,{} {sig}", B64.encode([0u8; 32]));
        let h = headers(&[("webhook-id", "msg_1"), ("webhook-timestamp", "1000000"), ("webhook-signature", &both)]);
        assert_eq!(v.verify(&h, body, 1_000_100).unwrap().message_id.as_deref(), Some("msg_1"));
        assert_eq!(v.verify(&h, body, 1_000_301), Err(AuthError::Expired(300)));
        assert_eq!(v.verify(&h, body, 999_699), Err(AuthError::Expired(300)));
        assert!(matches!(v.verify(&h, b"{\"type\":\"y\"}", 1_000_000), Err(AuthError::Mismatch(_))));
        let h = headers(&[("webhook-id", "msg_2"), ("webhook-timestamp", "1000000"), ("webhook-signature", &sig)]);
        assert!(matches!(v.verify(&h, body, 1_000_000), Err(AuthError::Mismatch(_))), "the id is signed too");
    }

    #[test]
    fn signature_checks_are_bounded() {
        let key = b"0123456789abcdef0123456789abcdef";
        let secret = format!("whsec_{}", B64.encode(key));
        let v = verifier(AuthMode::StandardWebhooks { tolerance_secs: 300 }, &secret);
        let body = vec![b' '; 1 << 20];
        let good = standard_webhooks_signature(key, "msg_1", 1_000_000, &body);
        let bogus = format!("v1,{}", B64.encode([7u8; 32]));
        // The good one among the most a sender may send is found; one more is refused before any hashing.
        let mut list = vec![bogus.clone(); MAX_SIGNATURE_CANDIDATES - 1];
        list.push(good.clone());
        let h = headers(&[("webhook-id", "msg_1"), ("webhook-timestamp", "1000000"), ("webhook-signature", &list.join(" "))]);
        assert!(v.verify(&h, &body, 1_000_000).is_ok());
        list.push(bogus.clone());
        let h = headers(&[("webhook-id", "msg_1"), ("webhook-timestamp", "1000000"), ("webhook-signature", &list.join(" "))]);
        assert_eq!(v.verify(&h, &body, 1_000_000), Err(AuthError::TooMany("webhook-signature", MAX_SIGNATURE_CANDIDATES)));
        // The attack of the review: thousands of candidates in one header.
        let flood = vec![bogus; 4000].join(" ");
        let h = headers(&[("webhook-id", "msg_1"), ("webhook-timestamp", "1000000"), ("webhook-signature", &flood)]);
        assert_eq!(v.verify(&h, &body, 1_000_000), Err(AuthError::TooLong("webhook-signature header", MAX_SIGNATURE_HEADER_BYTES)));
        let long_id = "m".repeat(MAX_MESSAGE_ID_BYTES + 1);
        let h = headers(&[("webhook-id", &long_id), ("webhook-timestamp", "1000000"), ("webhook-signature", &good)]);
        assert_eq!(v.verify(&h, &body, 1_000_000), Err(AuthError::TooLong("webhook-id header", MAX_MESSAGE_ID_BYTES)));
        let hmac = verifier(AuthMode::HmacSha256 { header: "x-sig".into(), encoding: SignatureEncoding::Hex, prefix: String::new() }, SECRET);
        let h = headers(&[("x-sig", &"a".repeat(MAX_SIGNATURE_HEADER_BYTES + 2))]);
        assert_eq!(hmac.verify(&h, &body, 0), Err(AuthError::TooLong("signature header", MAX_SIGNATURE_HEADER_BYTES)));
        let many = ["0123456789abcdef-secret"; MAX_SECRETS + 1].join(",");
        assert_eq!(Secrets::parse(&many, &AuthMode::Bearer).unwrap_err(), SecretsError::TooMany);
        let unresolved = "@Microsoft.KeyVault(SecretUri=https://kv-sb.vault.azure.net/secrets/noxys-token/)";
        assert_eq!(Secrets::parse(unresolved, &AuthMode::Bearer).unwrap_err(), SecretsError::UnresolvedKeyVaultReference);
    }

    #[test]
    fn no_secret_refuses_unless_open() {
        let closed = Verifier::new(AuthConfig { mode: AuthMode::Bearer, open: false }, Secrets::default());
        assert_eq!(closed.verify(&headers(&[]), b"", 0), Err(AuthError::NotConfigured));
        let open = Verifier::new(AuthConfig { mode: AuthMode::Bearer, open: true }, Secrets::default());
        assert!(open.verify(&headers(&[]), b"", 0).unwrap().open);
    }

    #[test]
    fn bad_secrets_are_refused_at_parse() {
        assert!(Secrets::parse("short", &AuthMode::Bearer).is_err());
        assert!(Secrets::parse("whsec_!!!", &AuthMode::StandardWebhooks { tolerance_secs: 1 }).is_err());
        assert_eq!(Secrets::parse(" , ", &AuthMode::Bearer).unwrap().len(), 0);
    }
}
