//! Seals on what the `azure-queue` spill keeps in Storage: every message it puts and every blob it writes
//! carries an HMAC-SHA256 of its text under `SPILL_SIGNING_KEY`, a key only the function holds (Key Vault).
//! Anyone else who can write to the storage account (a role on it, a leaked SAS) can put a message on the
//! spill queue; without the key it is refused as forged and kept aside, never ingested with the function's
//! identity. A sealed text is `sb1.<hex HMAC>.<text>`.
//!
//! Keys rotate like webhook secrets: the setting holds one or two, comma-separated; the first seals, any opens.
//! A seal proves the function wrote the text, not when: a copy of an old message put back is a duplicate of
//! rows already accepted (which `EventId` dedupes), never new content.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const PREFIX: &str = "sb1.";
/// A key shorter than the hash gives less than HMAC-SHA256's strength.
pub const MIN_KEY_BYTES: usize = 32;
const MAX_KEYS: usize = 2;

/// The spill's signing keys; never shown in `Debug`.
#[derive(Clone)]
pub struct SealKey(Vec<Vec<u8>>);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealKey({} key(s))", self.0.len())
    }
}

/// Settings compare by whether they hold the same keys (tests only).
impl PartialEq for SealKey {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for SealKey {}

/// What is wrong with a `SPILL_SIGNING_KEY` value (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("is empty")]
    Empty,
    #[error("key {0} is shorter than {MIN_KEY_BYTES} bytes (generate one with `openssl rand -hex 32`)")]
    TooShort(usize),
    #[error("holds more than {MAX_KEYS} keys (rotation needs two)")]
    TooMany,
    #[error("is an unresolved Key Vault reference: the function's identity cannot read the secret (grant it Key Vault Secrets User on the vault)")]
    UnresolvedKeyVaultReference,
}

/// Why a text was not opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Forged {
    #[error("the text carries no seal: the spill did not write it")]
    Unsealed,
    #[error("the seal does not match the text under any signing key: the spill did not write it, or it was altered")]
    Mismatch,
}

impl SealKey {
    pub fn parse(value: &str) -> Result<SealKey, KeyError> {
        // App Service resolves Key Vault references before the process starts; one still here could not be.
        if value.trim_start().starts_with("@Microsoft.KeyVault(") {
            return Err(KeyError::UnresolvedKeyVaultReference);
        }
        let keys: Vec<Vec<u8>> = value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.as_bytes().to_vec()).collect();
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        if keys.len() > MAX_KEYS {
            return Err(KeyError::TooMany);
        }
        if let Some(i) = keys.iter().position(|k| k.len() < MIN_KEY_BYTES) {
            return Err(KeyError::TooShort(i + 1));
        }
        Ok(SealKey(keys))
    }

    fn mac(key: &[u8], text: &str) -> HmacSha256 {
        // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
        let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        mac.update(text.as_bytes());
        mac
    }

    /// `text` with its seal under the first key.
    pub fn seal(&self, text: &str) -> String {
        let tag = Self::mac(&self.0[0], text).finalize().into_bytes();
        format!("{PREFIX}{}.{text}", hex::encode(tag))
    }

    /// The text a seal covers, if any key made it. Every key is tried, each comparison constant-time, so timing
    /// tells nothing about which key or how much of a tag matched.
    pub fn open<'a>(&self, sealed: &'a str) -> Result<&'a str, Forged> {
        let rest = sealed.strip_prefix(PREFIX).ok_or(Forged::Unsealed)?;
        let (tag, text) = rest.split_once('.').ok_or(Forged::Unsealed)?;
        // A tag is 64 lowercase hex digits (one spelling per tag); anything else is refused before any hashing.
        let well_formed = tag.len() == 64 && tag.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
        let tag = well_formed.then(|| hex::decode(tag).ok()).flatten().ok_or(Forged::Unsealed)?;
        let mut ok = false;
        for key in &self.0 {
            ok |= Self::mac(key, text).verify_slice(&tag).is_ok();
        }
        if ok {
            Ok(text)
        } else {
            Err(Forged::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: &str = "0123456789abcdef0123456789abcdef";
    const B: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn keys_are_checked_and_never_shown() {
        assert_eq!(SealKey::parse("").unwrap_err(), KeyError::Empty);
        assert_eq!(SealKey::parse("short").unwrap_err(), KeyError::TooShort(1));
        assert_eq!(SealKey::parse(&format!("{A},{B},{A}")).unwrap_err(), KeyError::TooMany);
        let unresolved = "@Microsoft.KeyVault(VaultName=kv;SecretName=spill-signing-key)";
        assert_eq!(SealKey::parse(unresolved).unwrap_err(), KeyError::UnresolvedKeyVaultReference);
        let k = SealKey::parse(&format!("{A}, {B}")).unwrap();
        assert!(!format!("{k:?}").contains(A));
    }

    #[test]
    fn a_seal_opens_under_its_key_and_rotation_and_nothing_else() {
        let a = SealKey::parse(A).unwrap();
        let sealed = a.seal(r#"{"destination":"sentinel","stream":"Custom-X","rows":[]}"#);
        assert_eq!(a.open(&sealed), Ok(r#"{"destination":"sentinel","stream":"Custom-X","rows":[]}"#));
        // The next key first, the old one still accepted while messages sealed with it drain.
        let rotated = SealKey::parse(&format!("{B},{A}")).unwrap();
        assert!(rotated.open(&sealed).is_ok());
        assert_eq!(SealKey::parse(B).unwrap().open(&sealed), Err(Forged::Mismatch));
        // Unsealed or altered text is refused.
        assert_eq!(a.open(r#"{"destination":"sentinel"}"#), Err(Forged::Unsealed));
        assert_eq!(a.open(&sealed.replace("Custom-X", "Custom-Y")), Err(Forged::Mismatch));
        assert_eq!(a.open("sb1.zz.text"), Err(Forged::Unsealed));
    }

    proptest! {
        /// Any text round-trips, and no change of one byte of a sealed text opens.
        #[test]
        fn sealing_round_trips_and_any_change_is_caught(text in ".{0,200}", at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let k = SealKey::parse(A).unwrap();
            let sealed = k.seal(&text);
            prop_assert_eq!(k.open(&sealed), Ok(text.as_str()));
            let mut bytes = sealed.clone().into_bytes();
            let i = at.index(bytes.len());
            prop_assume!(bytes[i] != byte);
            bytes[i] = byte;
            if let Ok(changed) = String::from_utf8(bytes) {
                prop_assert!(k.open(&changed).is_err());
            }
        }
    }
}
