//! Any headers and body against every authentication mode: a verdict, never a panic, and never a pass
//! without the secret.
#![no_main]

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use sentinel_bridge::mapping::auth::{Secrets, Verifier};
use sentinel_bridge::mapping::{AuthConfig, AuthMode, SignatureEncoding};

fuzz_target!(|data: &[u8]| {
    // Split the input into header values and a body.
    let mut parts = data.splitn(5, |b| *b == 0);
    let mut headers = HeaderMap::new();
    for name in ["authorization", "webhook-id", "webhook-timestamp", "webhook-signature"] {
        if let Some(v) = parts.next().and_then(|p| HeaderValue::from_bytes(p).ok()) {
            headers.insert(HeaderName::from_static(name), v.clone());
            headers.insert(HeaderName::from_static("x-signature"), v);
        }
    }
    let body = parts.next().unwrap_or_default();
    let modes = [
        AuthMode::Bearer,
        AuthMode::Header { name: "x-signature".into() },
        AuthMode::HmacSha256 { header: "x-signature".into(), encoding: SignatureEncoding::Hex, prefix: "sha256=".into() },
        AuthMode::HmacSha256 { header: "x-signature".into(), encoding: SignatureEncoding::Base64, prefix: String::new() },
        AuthMode::StandardWebhooks { tolerance_secs: 300 },
    ];
    for mode in modes {
        let secrets = Secrets::parse("whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", &mode).unwrap();
        let v = Verifier::new(AuthConfig { mode, open: false }, secrets);
        // The fuzzer does not know the secret: nothing it builds may pass.
        assert!(v.verify(&headers, body, 1_000_000).is_err());
    }
});
