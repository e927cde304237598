//! The one HTTP driver every client of ours sends through.
//!
//! - one connection pool ([`shared_client`]: timeouts, user agent), built once;
//! - one retry-and-deadline loop ([`Driver::send`]): each attempt is authorised afresh ([`Authorizer`]), bounded
//!   by the caller's deadline, and its response classified by the service's own [`RetryLogic`] into done,
//!   split (the call is too large), retry (honouring `Retry-After`), refresh the token once, or refuse;
//! - one parser of Azure error bodies ([`AzureError::from_response`]): the code from `x-ms-error-code`, then the
//!   body's `error.code` (JSON) or `<Code>` (Storage XML), then the status, as `azure_core` reads them.
//!
//! Retrying is not a client's job: a client says what a response means, the loop here decides what to do.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::LazyLock;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;

/// Sent on every call, so the service's logs can tell our calls apart.
pub const USER_AGENT: &str = concat!("sentinel-bridge/", env!("CARGO_PKG_VERSION"));

static SHARED: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10))
        .build()
        // Only a broken TLS backend fails here, and then nothing of ours could work: stop at once.
        .expect("the HTTP client (rustls) cannot be built")
});

/// The process's one connection pool (clones share it).
pub fn shared_client() -> reqwest::Client {
    SHARED.clone()
}

/// What Azure said when it refused a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct AzureError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl AzureError {
    /// Reads an error response: `x-ms-error-code`, then the body's `error.code` / `<Code>`, then the status's
    /// reason; the message from `error.message` (with `innererror.message` when it adds to it) or `<Message>`,
    /// else the start of the body.
    pub fn from_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> AzureError {
        let text = String::from_utf8_lossy(body);
        let json: Option<serde_json::Value> = serde_json::from_str(&text).ok();
        let err = json.as_ref().and_then(|v| v.get("error")).filter(|e| e.is_object());
        let json_str = |key: &str| err.and_then(|e| e.get(key)).and_then(|c| c.as_str()).map(String::from);
        let header_code = headers.get("x-ms-error-code").and_then(|v| v.to_str().ok()).map(String::from);
        let code = header_code
            .or_else(|| json_str("code"))
            .or_else(|| xml_value(&text, "Code").map(String::from))
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("Error").replace([' ', '-'], ""));
        let mut message = json_str("message").or_else(|| xml_value(&text, "Message").map(String::from)).unwrap_or_else(|| text.to_string());
        if let Some(inner) = err.and_then(|e| e.get("innererror")).and_then(|i| i.get("message")).and_then(|m| m.as_str()) {
            if inner != message {
                message = format!("{message} ({inner})");
            }
        }
        if message.trim().is_empty() {
            message = format!("HTTP {}", status.as_u16());
        }
        AzureError { status: status.as_u16(), code, message: message.chars().take(1000).collect() }
    }
}

/// The text of the first `<tag>…</tag>` in an XML body.
pub fn xml_value<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{tag}>"))?;
    Some(&xml[start..start + len])
}

/// How long the service asked us to wait: `retry-after-ms` / `x-ms-retry-after-ms` (Azure's), else
/// `Retry-After` in seconds or as an HTTP date (RFC 9110 §10.2.3).
pub fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let get = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).map(str::trim);
    for k in ["retry-after-ms", "x-ms-retry-after-ms"] {
        if let Some(ms) = get(k).and_then(|v| v.parse::<u64>().ok()) {
            return Some(Duration::from_millis(ms));
        }
    }
    let v = get("retry-after")?;
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// Backoff between attempts.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// First backoff step; doubles each retry, with full jitter.
    pub base: Duration,
    pub max_backoff: Duration,
    /// Cap on one attempt, inside the deadline.
    pub attempt_timeout: Duration,
}

impl RetryPolicy {
    /// How long to wait before retry number `attempt` (from 0): the service's `Retry-After` with up to 10% jitter
    /// (so throttled callers do not return in lockstep), else full-jitter exponential backoff.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(d) => d + d.mul_f64(fastrand::f64() * 0.1),
            None => {
                let cap = self.base.saturating_mul(1u32 << attempt.min(16)).min(self.max_backoff);
                self.base / 2 + cap.mul_f64(fastrand::f64())
            }
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { base: Duration::from_millis(200), max_backoff: Duration::from_secs(10), attempt_timeout: Duration::from_secs(30) }
    }
}

/// What a response means, as the service that sent it defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The call did what it was for; the response goes back to the client.
    Done,
    /// The call is too large: the client splits it and sends the halves.
    Split,
    /// A passing failure: try again after the service's `Retry-After`, or backoff.
    Retry,
    /// The token may have been revoked early: fetch a fresh one and try once more at once.
    RefreshToken,
    /// Refused for good; the error is read from the response.
    Refuse,
}

/// A service's reading of its responses.
pub trait RetryLogic: Send + Sync {
    fn classify(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict;
}

/// Azure's common rules (the REST API guidelines' error semantics): 2xx done; 401 refresh once; 408, 429 and
/// 5xx passing; every other status refused.
pub fn azure_verdict(status: StatusCode) -> Verdict {
    match status {
        s if s.is_success() => Verdict::Done,
        StatusCode::UNAUTHORIZED => Verdict::RefreshToken,
        s if s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::REQUEST_TIMEOUT || s.is_server_error() => Verdict::Retry,
        _ => Verdict::Refuse,
    }
}

/// [`azure_verdict`] as a [`RetryLogic`].
pub struct AzureRules;

impl RetryLogic for AzureRules {
    fn classify(&self, status: StatusCode, _: &HeaderMap, _: &[u8]) -> Verdict {
        azure_verdict(status)
    }
}

/// Puts credentials on a request, once per attempt.
#[async_trait::async_trait]
pub trait Authorizer: Send + Sync {
    async fn authorize(&self, request: &mut reqwest::Request) -> Result<(), String>;
    /// The service refused the credential this request carried (`rejected`, its Authorization header): forget
    /// it, so the next attempt carries a new one. Concurrent refusals of one token renew it once.
    async fn refresh(&self, _rejected: Option<&reqwest::header::HeaderValue>) {}
}

/// For calls that carry no credential (or carry it in the request already).
pub struct NoAuth;

#[async_trait::async_trait]
impl Authorizer for NoAuth {
    async fn authorize(&self, _: &mut reqwest::Request) -> Result<(), String> {
        Ok(())
    }
}

/// A response the service's logic called done.
#[derive(Debug)]
pub struct Exchange {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Exchange {
    /// The body as JSON (an empty body reads as `null`).
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(if self.body.is_empty() { b"null" } else { &self.body })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why a call did not end in [`Verdict::Done`]. Every client keeps these names for these outcomes: `Refused`
/// (the service said no for good) and `Unavailable` (passing failures outlasted the deadline).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("the call is too large for the service")]
    Split,
    #[error("refused: {0}")]
    Refused(AzureError),
    /// Passing failures outlasted the deadline; `last` is what the last try got.
    #[error("not done before the deadline; last error: {last}")]
    Unavailable { last: Attempt },
}

/// What the last try of a call got, kept as data (status and code, timeout, connection, token) so no caller
/// parses a sentence; written as health and logs show it (`429: TooManyRequests`, `Timeout: …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The deadline passed before a try was made.
    NotMade,
    /// The service answered with a passing failure (429, 5xx, a refused token): its status and error code.
    Answered { status: u16, code: String },
    /// A 2xx that did not confirm the call.
    Unconfirmed { status: u16 },
    /// No answer within the try's timeout.
    Timeout(String),
    /// No connection could be made.
    Connect(String),
    /// The connection broke, or the answer was cut short.
    Connection(String),
    /// The credential gave no token.
    Token(String),
    /// The credential did not answer before the deadline.
    TokenTimeout,
}

impl Attempt {
    /// Its kind in one word, for health's `Deadline(…)` codes: the status, or what failed.
    pub fn kind(&self) -> String {
        match self {
            Attempt::NotMade => "NoAttempt".into(),
            Attempt::Answered { status, .. } | Attempt::Unconfirmed { status } => status.to_string(),
            Attempt::Timeout(_) => "Timeout".into(),
            Attempt::Connect(_) => "ConnectFailed".into(),
            Attempt::Connection(_) => "ConnectionError".into(),
            Attempt::Token(_) => "TokenUnavailable".into(),
            Attempt::TokenTimeout => "TokenTimeout".into(),
        }
    }

    /// The service answered, or the try ran out of time: the call itself was too slow, not the way to it.
    pub fn is_slow_answer(&self) -> bool {
        matches!(self, Attempt::Answered { .. } | Attempt::Unconfirmed { .. } | Attempt::Timeout(_))
    }
}

impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Attempt::NotMade => f.write_str("no attempt made"),
            Attempt::Answered { status, code } => write!(f, "{status}: {code}"),
            Attempt::Unconfirmed { status } => write!(f, "{status}: UnconfirmedSuccess"),
            Attempt::Timeout(e) | Attempt::Connect(e) | Attempt::Connection(e) | Attempt::Token(e) => write!(f, "{}: {e}", self.kind()),
            Attempt::TokenTimeout => f.write_str("TokenTimeout: no token before the deadline"),
        }
    }
}

/// One call as the loop sees it.
pub struct Call<'a> {
    /// Builds the request afresh for each attempt.
    pub build: &'a (dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync),
    pub auth: &'a dyn Authorizer,
    pub logic: &'a dyn RetryLogic,
    pub deadline: Instant,
    /// Counted up on each retry, for health.
    pub retries: Option<&'a AtomicU64>,
    /// For logs: which service and operation.
    pub what: &'static str,
}

/// The shared client with a retry policy.
#[derive(Debug, Clone)]
pub struct Driver {
    http: reqwest::Client,
    retry: RetryPolicy,
}

impl Default for Driver {
    fn default() -> Self {
        Driver::new(RetryPolicy::default())
    }
}

impl Driver {
    pub fn new(retry: RetryPolicy) -> Self {
        Driver { http: shared_client(), retry }
    }

    pub fn retry(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Sends one call: retried in place until its logic says done, split or refuse, or the deadline passes.
    pub async fn send(&self, call: Call<'_>) -> Result<Exchange, CallError> {
        let what = call.what;
        let mut attempt: u32 = 0;
        let mut refreshed = false;
        let mut last = Attempt::NotMade;
        loop {
            let now = Instant::now();
            if now >= call.deadline {
                return Err(CallError::Unavailable { last });
            }
            let remaining = call.deadline - now;
            let mut request = match (call.build)(&self.http).timeout(remaining.min(self.retry.attempt_timeout)).build() {
                Ok(r) => r,
                Err(e) => {
                    return Err(CallError::Refused(AzureError { status: 0, code: "InvalidRequest".into(), message: e.to_string() }));
                }
            };
            let retry_after = match tokio::time::timeout(remaining, call.auth.authorize(&mut request)).await {
                Err(_) => return Err(CallError::Unavailable { last: Attempt::TokenTimeout }),
                Ok(Err(e)) => {
                    tracing::warn!(call = what, attempt, error = %e, "credential unavailable");
                    last = Attempt::Token(e.to_string());
                    None
                }
                Ok(Ok(())) => {
                    let presented = request.headers().get(reqwest::header::AUTHORIZATION).cloned();
                    match self.http.execute(request).await {
                        Err(e) => {
                            last = if e.is_timeout() {
                                Attempt::Timeout(e.to_string())
                            } else if e.is_connect() {
                                Attempt::Connect(e.to_string())
                            } else {
                                Attempt::Connection(e.to_string())
                            };
                            tracing::warn!(call = what, attempt, error = %last.kind(), "call failed");
                            None
                        }
                        Ok(resp) => {
                            let status = resp.status();
                            let headers = resp.headers().clone();
                            let body = match resp.bytes().await {
                                Ok(b) => b,
                                Err(e) => {
                                    last = Attempt::Connection(format!("the response was cut: {e}"));
                                    tracing::warn!(call = what, attempt, "response cut short");
                                    self.pause(&mut attempt, None, call.deadline, &last, call.retries).await?;
                                    continue;
                                }
                            };
                            match call.logic.classify(status, &headers, &body) {
                                Verdict::Done => return Ok(Exchange { status, headers, body }),
                                Verdict::Split => return Err(CallError::Split),
                                Verdict::RefreshToken if !refreshed => {
                                    refreshed = true;
                                    call.auth.refresh(presented.as_ref()).await;
                                    tracing::warn!(call = what, "401: retrying once with a fresh token");
                                    continue;
                                }
                                Verdict::Retry if status.is_success() => {
                                    tracing::warn!(call = what, attempt, "a 2xx that does not confirm the call");
                                    last = Attempt::Unconfirmed { status: status.as_u16() };
                                    retry_after(&headers)
                                }
                                Verdict::Retry => {
                                    let e = AzureError::from_response(status, &headers, &body);
                                    tracing::warn!(call = what, attempt, status = e.status, code = %e.code, "passing failure");
                                    last = Attempt::Answered { status: e.status, code: e.code };
                                    retry_after(&headers)
                                }
                                Verdict::RefreshToken | Verdict::Refuse => {
                                    let e = AzureError::from_response(status, &headers, &body);
                                    tracing::warn!(call = what, status = e.status, code = %e.code, "call refused");
                                    return Err(CallError::Refused(e));
                                }
                            }
                        }
                    }
                }
            };
            self.pause(&mut attempt, retry_after, call.deadline, &last, call.retries).await?;
        }
    }

    async fn pause(&self, attempt: &mut u32, after: Option<Duration>, deadline: Instant, last: &Attempt, retries: Option<&AtomicU64>) -> Result<(), CallError> {
        let delay = self.retry.delay(*attempt, after);
        *attempt += 1;
        if Instant::now() + delay >= deadline {
            return Err(CallError::Unavailable { last: last.clone() });
        }
        if let Some(r) = retries {
            r.fetch_add(1, Relaxed);
        }
        tokio::time::sleep(delay).await;
        Ok(())
    }
}

/// Sends `ranges` of a batch in order, each with `send`; a range of several items whose failure `halve` accepts
/// is halved and both halves are sent in its place (the first half first). Every client halves on
/// [`CallError::Split`] (the call is too large), so one oversized call costs a few more calls, never rows; a
/// client may also halve to isolate the items a service refuses, within a budget `halve` keeps. A single item
/// comes back with its error (`Split` for one the service still finds too large). With
/// `stop_at_first_failure`, nothing is sent after a failure (for services whose callers retry the whole batch).
pub async fn send_halving<F, Fut, H>(ranges: Vec<Range<usize>>, stop_at_first_failure: bool, mut halve: H, mut send: F) -> Vec<(Range<usize>, CallError)>
where
    F: FnMut(Range<usize>) -> Fut,
    Fut: std::future::Future<Output = Result<(), CallError>>,
    H: FnMut(&CallError) -> bool,
{
    // An explicit stack instead of recursion: a split pushes both halves, the first on top.
    let mut pending: Vec<Range<usize>> = ranges.into_iter().rev().collect();
    let mut failures = Vec::new();
    while let Some(range) = pending.pop() {
        match send(range.clone()).await {
            Ok(()) => {}
            Err(e) if range.len() > 1 && halve(&e) => {
                let mid = range.start + range.len() / 2;
                pending.push(mid..range.end);
                pending.push(range.start..mid);
            }
            Err(e) => {
                failures.push((range, e));
                if stop_at_first_failure {
                    break;
                }
            }
        }
    }
    failures
}

/// A value as one URL path segment: every byte outside RFC 3986's unreserved set percent-encoded, so a name
/// holding `/`, `?`, `#`, `\` or `..` can never reach another path than the one it names.
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    // A segment of only dots is a path step, not a name.
    if out.bytes().all(|b| b == b'.') {
        out = out.replace('.', "%2E");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_cannot_leave_their_place() {
        assert_eq!(path_segment("9f0c6a1e-1111"), "9f0c6a1e-1111");
        assert_eq!(path_segment("a/../b?x#y\\z"), "a%2F..%2Fb%3Fx%23y%5Cz");
        assert_eq!(path_segment(".."), "%2E%2E");
        assert_eq!(path_segment("é"), "%C3%A9");
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut h = HeaderMap::new();
        h.insert("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn error_codes_come_from_the_header_then_the_body_then_the_status() {
        let mut h = HeaderMap::new();
        let json = br#"{"error":{"code":"InvalidStream","message":"no such stream","innererror":{"message":"Custom-X"}}}"#;
        let e = AzureError::from_response(StatusCode::BAD_REQUEST, &h, json);
        assert_eq!((e.code.as_str(), e.message.as_str()), ("InvalidStream", "no such stream (Custom-X)"));
        h.insert("x-ms-error-code", "OperationFailed".parse().unwrap());
        assert_eq!(AzureError::from_response(StatusCode::BAD_REQUEST, &h, json).code, "OperationFailed");
        let xml = b"<?xml version=\"1.0\"?><Error><Code>QueueNotFound</Code><Message>The queue does not exist.</Message></Error>";
        let e = AzureError::from_response(StatusCode::NOT_FOUND, &HeaderMap::new(), xml);
        assert_eq!((e.code.as_str(), e.message.as_str()), ("QueueNotFound", "The queue does not exist."));
        let e = AzureError::from_response(StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new(), b"");
        assert_eq!((e.code.as_str(), e.message.as_str()), ("ServiceUnavailable", "HTTP 503"));
    }
}

#[cfg(test)]
mod attempt_tests {
    use super::Attempt;

    /// Logs and health read these as they always read; callers decide on the variant, never on the text.
    #[test]
    fn attempts_read_as_before_and_only_answers_and_timeouts_are_slow() {
        let cases = [
            (Attempt::Answered { status: 429, code: "TooManyRequests".into() }, "429: TooManyRequests", "429", true),
            (Attempt::Timeout("operation timed out".into()), "Timeout: operation timed out", "Timeout", true),
            (Attempt::Connect("refused".into()), "ConnectFailed: refused", "ConnectFailed", false),
            (Attempt::Token("no identity".into()), "TokenUnavailable: no identity", "TokenUnavailable", false),
            (Attempt::TokenTimeout, "TokenTimeout: no token before the deadline", "TokenTimeout", false),
            (Attempt::NotMade, "no attempt made", "NoAttempt", false),
        ];
        for (a, text, kind, slow) in cases {
            assert_eq!((a.to_string().as_str(), a.kind().as_str(), a.is_slow_answer()), (text, kind, slow));
        }
    }
}
