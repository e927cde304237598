//! Fault injection for the local workspace: make chosen endpoints answer 429 with Retry-After, 500 or 503,
//! answer slowly, or drop the connection, for a number of calls or a span of time. Tests drive it in process
//! or over HTTP (`POST /_faults`), so a bug that only shows when Azure misbehaves shows here.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// Which API a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Endpoint {
    Ingestion,
    Token,
    Query,
    Sentinel,
    Sekoia,
    #[serde(rename = "openai")]
    OpenAi,
    Any,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum FaultKind {
    /// Answer with this status (429, 500, 503, …) and Azure's error body; `retry_after_secs` adds Retry-After.
    Status {
        status: u16,
        #[serde(default)]
        retry_after_secs: Option<u64>,
    },
    /// Answer with this status and this error code (a 403 that is not `AuthorizationFailed`, say).
    Refuse { status: u16, code: String },
    /// Wait this long, then answer normally.
    Slow { millis: u64 },
    /// Close the connection without answering.
    Drop,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FaultSpec {
    pub endpoint: Endpoint,
    #[serde(flatten)]
    pub kind: FaultKind,
    /// For this many calls (default: unlimited within `for_millis`).
    #[serde(default)]
    pub count: Option<u64>,
    /// For this long from now (default: until `count` is used up).
    #[serde(default)]
    pub for_millis: Option<u64>,
    /// Only calls with this method (`PUT`, …).
    #[serde(default)]
    pub method: Option<String>,
    /// Only calls whose path ends with this.
    #[serde(default)]
    pub path_suffix: Option<String>,
}

impl FaultSpec {
    /// A fault on every call to an endpoint, `count` times.
    pub fn new(endpoint: Endpoint, kind: FaultKind, count: u64) -> Self {
        FaultSpec { endpoint, kind, count: Some(count), for_millis: None, method: None, path_suffix: None }
    }
}

struct Rule {
    endpoint: Endpoint,
    kind: FaultKind,
    remaining: Option<u64>,
    until: Option<Instant>,
    method: Option<String>,
    path_suffix: Option<String>,
}

#[derive(Default)]
pub struct Faults {
    rules: Mutex<Vec<Rule>>,
}

impl Faults {
    pub fn add(&self, spec: FaultSpec) {
        let rule = Rule {
            endpoint: spec.endpoint,
            kind: spec.kind,
            remaining: spec.count,
            until: spec.for_millis.map(|ms| Instant::now() + Duration::from_millis(ms)),
            method: spec.method.map(|m| m.to_ascii_uppercase()),
            path_suffix: spec.path_suffix,
        };
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).push(rule);
    }

    pub fn clear(&self) {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The fault to apply to this call, if any; consumes one use of it. Rules apply in the order added.
    pub fn next(&self, endpoint: Endpoint) -> Option<FaultKind> {
        self.next_for(endpoint, "", "")
    }

    /// As [`Faults::next`], for a call with this method and path (rules may filter on them).
    pub fn next_for(&self, endpoint: Endpoint, method: &str, path: &str) -> Option<FaultKind> {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        rules.retain(|r| r.remaining != Some(0) && r.until.is_none_or(|u| u > now));
        let rule = rules.iter_mut().find(|r| {
            (r.endpoint == endpoint || r.endpoint == Endpoint::Any)
                && r.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
                && r.path_suffix.as_deref().is_none_or(|p| path.to_ascii_lowercase().ends_with(&p.to_ascii_lowercase()))
        })?;
        if let Some(n) = rule.remaining.as_mut() {
            *n -= 1;
        }
        Some(rule.kind.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_faults_run_out_in_order() {
        let f = Faults::default();
        f.add(FaultSpec::new(Endpoint::Ingestion, FaultKind::Drop, 1));
        f.add(FaultSpec::new(Endpoint::Any, FaultKind::Status { status: 500, retry_after_secs: None }, 2));
        assert_eq!(f.next(Endpoint::Ingestion), Some(FaultKind::Drop));
        assert_eq!(f.next(Endpoint::Token), Some(FaultKind::Status { status: 500, retry_after_secs: None }));
        assert_eq!(f.next(Endpoint::Ingestion), Some(FaultKind::Status { status: 500, retry_after_secs: None }));
        assert_eq!(f.next(Endpoint::Ingestion), None);
    }

    #[test]
    fn timed_faults_expire() {
        let f = Faults::default();
        f.add(FaultSpec { for_millis: Some(0), count: None, ..FaultSpec::new(Endpoint::Ingestion, FaultKind::Drop, 0) });
        assert_eq!(f.next(Endpoint::Ingestion), None);
        f.add(FaultSpec { method: Some("put".into()), path_suffix: Some("/incidents/abc".into()), ..FaultSpec::new(Endpoint::Sentinel, FaultKind::Drop, 1) });
        assert_eq!(f.next_for(Endpoint::Sentinel, "GET", "/x/incidents/abc"), None);
        assert_eq!(f.next_for(Endpoint::Sentinel, "PUT", "/x/incidents/abc/comments/1"), None);
        assert_eq!(f.next_for(Endpoint::Sentinel, "PUT", "/x/Incidents/ABC"), Some(FaultKind::Drop));
    }
}
