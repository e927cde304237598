//! A small client for the Azure Storage queue and blob services, for the `azure-queue` spill: with the
//! function's managed identity (bearer tokens for `https://storage.azure.com`) in Azure, or a connection string
//! with an account key (Shared Key signing) for Azurite and local development. Every call goes through the
//! shared driver: 408, 429 and 5xx (Storage's `ServerBusy` and `OperationTimedOut`) are retried within the
//! call's budget; other statuses are refused with Storage's `<Code>`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::StatusCode;
use sha2::Sha256;

use crate::azure::http::{azure_verdict, xml_value, Attempt, Authorizer, Call, CallError, Driver, RetryLogic, RetryPolicy, Verdict};
use crate::azure::identity::TokenSource;

pub const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";
const VERSION: &str = "2023-11-03";
/// Azurite's well-known development account (`UseDevelopmentStorage=true`).
const DEV_ACCOUNT: &str = "devstoreaccount1";
const DEV_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub enum StorageAuth {
    SharedKey { account: String, key: Vec<u8> },
    Bearer(Arc<TokenSource>),
}

/// Why a storage operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The connection string or URL cannot be used.
    #[error("{0}")]
    Config(String),
    /// Storage refused the operation (`<Code>` from its error body).
    #[error("{operation}: {status} {code}")]
    Refused { operation: &'static str, status: u16, code: String },
    /// Passing failures outlasted the operation's budget.
    #[error("{operation}: storage unavailable ({last})")]
    Unavailable { operation: &'static str, last: Attempt },
}

pub struct StorageClient {
    driver: Driver,
    pub queue_url: String,
    pub blob_url: String,
    auth: StorageAuth,
    call_timeout: Duration,
}

/// Storage's success statuses differ per operation (201 for a created queue, 204 for one that exists): an
/// operation lists the ones it takes as done.
struct StorageRules<'a> {
    ok: &'a [u16],
}

impl RetryLogic for StorageRules<'_> {
    fn classify(&self, status: StatusCode, _: &HeaderMap, _: &[u8]) -> Verdict {
        if self.ok.contains(&status.as_u16()) {
            return Verdict::Done;
        }
        match azure_verdict(status) {
            // A 2xx this operation does not expect is not success either.
            Verdict::Done => Verdict::Refuse,
            v => v,
        }
    }
}

#[async_trait::async_trait]
impl Authorizer for StorageAuth {
    async fn authorize(&self, request: &mut reqwest::Request) -> Result<(), String> {
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let headers = request.headers_mut();
        headers.insert("x-ms-date", HeaderValue::try_from(date).map_err(|e| e.to_string())?);
        headers.insert("x-ms-version", HeaderValue::from_static(VERSION));
        let value = match self {
            StorageAuth::SharedKey { account, key } => shared_key(account, key, request),
            StorageAuth::Bearer(tokens) => format!("Bearer {}", tokens.token().await.map_err(|e| e.to_string())?),
        };
        let mut value = HeaderValue::try_from(value).map_err(|e| e.to_string())?;
        value.set_sensitive(true);
        request.headers_mut().insert("authorization", value);
        Ok(())
    }

    async fn refresh(&self, rejected: Option<&HeaderValue>) {
        if let StorageAuth::Bearer(tokens) = self {
            tokens.invalidate(crate::azure::identity::bearer_of(rejected)).await;
        }
    }
}

/// Shared Key: `SharedKey account:base64(HMAC-SHA256(key, string-to-sign))` over the canonical request
/// ("Authorize with Shared Key", Storage REST reference: the version 2015-02-21+ string-to-sign).
fn shared_key(account: &str, key: &[u8], request: &reqwest::Request) -> String {
    let h = request.headers();
    let header = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let mut ms: Vec<(String, String)> = h
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-ms-"))
        .map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.to_str().unwrap_or_default().trim().to_string()))
        .collect();
    ms.sort();
    let canonical_headers: String = ms.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let url = request.url();
    let mut resource = format!("/{account}{}", url.path());
    let mut query: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.to_ascii_lowercase(), v.to_string())).collect();
    query.sort();
    for (k, v) in query {
        resource.push_str(&format!("\n{k}:{v}"));
    }
    let length = request.body().and_then(|b| b.as_bytes()).map(<[u8]>::len).unwrap_or(0);
    let length = if length == 0 { String::new() } else { length.to_string() };
    let method = request.method().as_str();
    let content_type = header("content-type");
    let (if_match, if_none_match) = (header("if-match"), header("if-none-match"));
    // VERB, Content-Encoding, -Language, -Length, -MD5, -Type, Date, If-Modified-Since, If-Match,
    // If-None-Match, If-Unmodified-Since, Range, then the canonical headers and resource.
    let to_sign = format!("{method}\n\n\n{length}\n\n{content_type}\n\n\n{if_match}\n{if_none_match}\n\n\n{canonical_headers}{resource}");
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else { return String::new() };
    mac.update(to_sign.as_bytes());
    format!("SharedKey {account}:{}", B64.encode(mac.finalize().into_bytes()))
}

/// One message as Get Messages returns it.
#[derive(Debug, Clone)]
pub struct QueueMessage {
    pub id: String,
    pub pop_receipt: String,
    pub text: String,
    pub dequeue_count: u32,
    /// `ExpirationTime`, as Storage writes it (an HTTP date; year 9999 for a message that never expires).
    pub expires: String,
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn etag_of(h: &HeaderMap) -> String {
    h.get("etag").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

fn xml_values<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

impl StorageClient {
    /// From a connection string (`UseDevelopmentStorage=true`, or `AccountName=…;AccountKey=…;QueueEndpoint=…`).
    pub fn from_connection_string(cs: &str) -> Result<StorageClient, StorageError> {
        if cs.trim().eq_ignore_ascii_case("UseDevelopmentStorage=true") {
            let key = B64.decode(DEV_KEY).map_err(|_| StorageError::Config("the development key is not base64".into()))?;
            return Ok(Self::with(
                format!("http://127.0.0.1:10001/{DEV_ACCOUNT}"),
                format!("http://127.0.0.1:10000/{DEV_ACCOUNT}"),
                StorageAuth::SharedKey { account: DEV_ACCOUNT.into(), key },
            ));
        }
        let bad = |m: &str| StorageError::Config(m.to_string());
        let mut parts = std::collections::HashMap::new();
        for kv in cs.split(';').filter(|s| !s.trim().is_empty()) {
            let (k, v) = kv.split_once('=').ok_or_else(|| bad("not a connection string"))?;
            parts.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
        let account = parts.get("accountname").ok_or_else(|| bad("the connection string has no AccountName"))?.clone();
        let key =
            B64.decode(parts.get("accountkey").ok_or_else(|| bad("the connection string has no AccountKey"))?).map_err(|_| bad("AccountKey is not base64"))?;
        let protocol = parts.get("defaultendpointsprotocol").cloned().unwrap_or_else(|| "https".into());
        let suffix = parts.get("endpointsuffix").cloned().unwrap_or_else(|| "core.windows.net".into());
        let queue = parts.get("queueendpoint").cloned().unwrap_or_else(|| format!("{protocol}://{account}.queue.{suffix}"));
        let blob = parts.get("blobendpoint").cloned().unwrap_or_else(|| format!("{protocol}://{account}.blob.{suffix}"));
        Ok(Self::with(queue, blob, StorageAuth::SharedKey { account, key }))
    }

    /// With the identity (`AzureWebJobsStorage__queueServiceUri` style settings).
    pub fn with_identity(queue_url: &str, blob_url: &str, tokens: Arc<TokenSource>) -> StorageClient {
        Self::with(queue_url.into(), blob_url.into(), StorageAuth::Bearer(tokens))
    }

    fn with(queue_url: String, blob_url: String, auth: StorageAuth) -> StorageClient {
        StorageClient {
            driver: Driver::new(RetryPolicy::default()),
            queue_url: queue_url.trim_end_matches('/').into(),
            blob_url: blob_url.trim_end_matches('/').into(),
            auth,
            call_timeout: Duration::from_secs(30),
        }
    }

    /// One operation: the driver's loop with this operation's success statuses.
    async fn call(
        &self,
        operation: &'static str,
        method: reqwest::Method,
        url: &str,
        body: Vec<u8>,
        headers: &[(&'static str, &str)],
        ok: &[u16],
    ) -> Result<(HeaderMap, String), StorageError> {
        let url = reqwest::Url::parse(url).map_err(|e| StorageError::Config(format!("{operation}: {e}")))?;
        let body = bytes::Bytes::from(body);
        let build = |http: &reqwest::Client| {
            let mut req = http.request(method.clone(), url.clone());
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.body(body.clone())
        };
        let logic = StorageRules { ok };
        let call = Call { build: &build, auth: &self.auth, logic: &logic, deadline: Instant::now() + self.call_timeout, retries: None, what: operation };
        match self.driver.send(call).await {
            Ok(x) => Ok((x.headers.clone(), x.text())),
            Err(CallError::Refused(e)) => Err(StorageError::Refused { operation, status: e.status, code: e.code }),
            Err(CallError::Unavailable { last }) => Err(StorageError::Unavailable { operation, last }),
            Err(CallError::Split) => Err(StorageError::Refused { operation, status: 413, code: "RequestBodyTooLarge".into() }),
        }
    }

    /// The queue's approximate depth and the age, in seconds, of its oldest visible message.
    pub async fn depth(&self, queue: &str) -> Result<(u64, Option<u64>), StorageError> {
        let (headers, _) =
            self.call("queue metadata", reqwest::Method::GET, &format!("{}/{queue}?comp=metadata", self.queue_url), Vec::new(), &[], &[200]).await?;
        let count = headers.get("x-ms-approximate-messages-count").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
        let url = format!("{}/{queue}/messages?peekonly=true&numofmessages=1", self.queue_url);
        let (_, peek) = self.call("peek messages", reqwest::Method::GET, &url, Vec::new(), &[], &[200]).await?;
        let age = xml_value(&peek, "InsertionTime")
            .and_then(|t| httpdate::parse_http_date(t).ok())
            .and_then(|t| std::time::SystemTime::now().duration_since(t).ok())
            .map(|d| d.as_secs());
        Ok((count, age))
    }

    pub async fn create_queue(&self, queue: &str) -> Result<(), StorageError> {
        self.call("create queue", reqwest::Method::PUT, &format!("{}/{queue}", self.queue_url), Vec::new(), &[], &[201, 204, 409]).await.map(drop)
    }

    /// Enqueues a message whose text is `text` (already encoded as the reader expects). It never expires:
    /// without `messagettl` Storage deletes a message after 7 days, and `-1` means "never" (Put Message, Queue
    /// service REST reference, version 2017-07-29 and later).
    pub async fn put_message(&self, queue: &str, text: &str) -> Result<(), StorageError> {
        let body = format!("<QueueMessage><MessageText>{}</MessageText></QueueMessage>", xml_escape(text));
        let url = format!("{}/{queue}/messages?messagettl=-1", self.queue_url);
        self.call("put message", reqwest::Method::POST, &url, body.into_bytes(), &[("content-type", "application/xml")], &[201]).await.map(drop)
    }

    /// Enqueues a message that becomes visible only after `visibility_secs` (at most 7 days, Put Message's
    /// `visibilitytimeout`), and never expires (`messagettl=-1`): a retry that waits without a clock on it.
    pub async fn put_message_delayed(&self, queue: &str, text: &str, visibility_secs: u64) -> Result<(), StorageError> {
        let body = format!("<QueueMessage><MessageText>{}</MessageText></QueueMessage>", xml_escape(text));
        let url = format!("{}/{queue}/messages?messagettl=-1&visibilitytimeout={}", self.queue_url, visibility_secs.min(7 * 24 * 3600));
        self.call("put message", reqwest::Method::POST, &url, body.into_bytes(), &[("content-type", "application/xml")], &[201]).await.map(drop)
    }

    pub async fn get_messages(&self, queue: &str, max: u32, visibility_secs: u32) -> Result<Vec<QueueMessage>, StorageError> {
        let url = format!("{}/{queue}/messages?numofmessages={max}&visibilitytimeout={visibility_secs}", self.queue_url);
        let (_, xml) = self.call("get messages", reqwest::Method::GET, &url, Vec::new(), &[], &[200]).await?;
        Ok(xml_values(&xml, "QueueMessage")
            .into_iter()
            .map(|m| {
                let v = |t: &str| xml_value(m, t).unwrap_or_default().to_string();
                QueueMessage {
                    id: v("MessageId"),
                    pop_receipt: v("PopReceipt"),
                    text: v("MessageText").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"),
                    dequeue_count: v("DequeueCount").parse().unwrap_or(0),
                    expires: v("ExpirationTime"),
                }
            })
            .collect())
    }

    pub async fn delete_message(&self, queue: &str, m: &QueueMessage) -> Result<(), StorageError> {
        let mut url = reqwest::Url::parse(&format!("{}/{queue}/messages", self.queue_url)).map_err(|e| StorageError::Config(e.to_string()))?;
        url.path_segments_mut().map_err(|_| StorageError::Config("the queue URL cannot take a path".into()))?.push(&m.id);
        url.query_pairs_mut().append_pair("popreceipt", &m.pop_receipt);
        self.call("delete message", reqwest::Method::DELETE, url.as_str(), Vec::new(), &[], &[204]).await.map(drop)
    }

    pub async fn create_container(&self, container: &str) -> Result<(), StorageError> {
        let url = format!("{}/{container}?restype=container", self.blob_url);
        self.call("create container", reqwest::Method::PUT, &url, Vec::new(), &[], &[201, 409]).await.map(drop)
    }

    pub async fn put_blob(&self, container: &str, name: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        let url = format!("{}/{container}/{name}", self.blob_url);
        let headers = [("x-ms-blob-type", "BlockBlob"), ("content-type", "application/json")];
        self.call("put blob", reqwest::Method::PUT, &url, bytes, &headers, &[201]).await.map(drop)
    }

    /// The names of the blobs under `prefix` (List Blobs, one page of up to 5,000: enough for the dead letters
    /// an operator replays at a time).
    pub async fn list_blobs(&self, container: &str, prefix: &str) -> Result<Vec<String>, StorageError> {
        let mut url = reqwest::Url::parse(&format!("{}/{container}", self.blob_url)).map_err(|e| StorageError::Config(e.to_string()))?;
        url.query_pairs_mut().append_pair("restype", "container").append_pair("comp", "list").append_pair("prefix", prefix);
        let (_, xml) = self.call("list blobs", reqwest::Method::GET, url.as_str(), Vec::new(), &[], &[200]).await?;
        Ok(xml_values(&xml, "Blob").into_iter().filter_map(|b| xml_value(b, "Name")).map(|n| n.replace("&amp;", "&")).collect())
    }

    pub async fn get_blob(&self, container: &str, name: &str) -> Result<String, StorageError> {
        let url = format!("{}/{container}/{name}", self.blob_url);
        self.call("get blob", reqwest::Method::GET, &url, Vec::new(), &[], &[200]).await.map(|(_, t)| t)
    }

    /// Creates a blob only if there is none of that name (`If-None-Match: *`, atomic in Storage): the new
    /// blob's ETag, or `None` (a 409 `BlobAlreadyExists` means another writer was first).
    pub async fn create_blob_if_absent(&self, container: &str, name: &str, bytes: Vec<u8>) -> Result<Option<String>, StorageError> {
        let url = format!("{}/{container}/{name}", self.blob_url);
        let headers = [("x-ms-blob-type", "BlockBlob"), ("content-type", "application/json"), ("if-none-match", "*")];
        match self.call("create blob", reqwest::Method::PUT, &url, bytes, &headers, &[201]).await {
            Ok((h, _)) => Ok(Some(etag_of(&h))),
            Err(StorageError::Refused { status: 409, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes a blob only if it is still the version `etag` names (`If-Match`): whether it was deleted (412 or
    /// 404: another writer changed or removed it first, and it is theirs now).
    pub async fn delete_blob_if_match(&self, container: &str, name: &str, etag: &str) -> Result<bool, StorageError> {
        let url = format!("{}/{container}/{name}", self.blob_url);
        match self.call("delete blob", reqwest::Method::DELETE, &url, Vec::new(), &[("if-match", etag)], &[202]).await {
            Ok(_) => Ok(true),
            Err(StorageError::Refused { status: 412 | 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A blob's text and ETag, or `None` when there is no such blob.
    pub async fn get_blob_tagged(&self, container: &str, name: &str) -> Result<Option<(String, String)>, StorageError> {
        let url = format!("{}/{container}/{name}", self.blob_url);
        match self.call("get blob", reqwest::Method::GET, &url, Vec::new(), &[], &[200]).await {
            Ok((h, text)) => Ok(Some((text, h.get("etag").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()))),
            Err(StorageError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces a blob only if it is still the version read (`If-Match: <etag>`): the new version's ETag, or
    /// `None` (412 or 404: another writer changed or removed it first).
    pub async fn replace_blob_if_match(&self, container: &str, name: &str, etag: &str, bytes: Vec<u8>) -> Result<Option<String>, StorageError> {
        let url = format!("{}/{container}/{name}", self.blob_url);
        let headers = [("x-ms-blob-type", "BlockBlob"), ("content-type", "application/json"), ("if-match", etag)];
        match self.call("replace blob", reqwest::Method::PUT, &url, bytes, &headers, &[201]).await {
            Ok((h, _)) => Ok(Some(etag_of(&h))),
            Err(StorageError::Refused { status: 412 | 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn delete_blob(&self, container: &str, name: &str) -> Result<(), StorageError> {
        let url = format!("{}/{container}/{name}", self.blob_url);
        self.call("delete blob", reqwest::Method::DELETE, &url, Vec::new(), &[], &[202, 404]).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shared Key against answers computed apart from this code (Python's `hmac` over the string-to-sign the
    /// Storage REST reference documents), for Azurite's well-known account.
    #[test]
    fn shared_key_signs_the_documented_string() {
        let key = B64.decode(DEV_KEY).unwrap();
        let http = reqwest::Client::new();
        let body = "<QueueMessage><MessageText>e30=</MessageText></QueueMessage>";
        let mut post = http
            .post("http://127.0.0.1:10001/devstoreaccount1/sentinel-bridge-spill/messages")
            .header("content-type", "application/xml")
            .header("x-ms-version", VERSION)
            .header("x-ms-date", "Wed, 02 Dec 2026 08:00:00 GMT")
            .body(body)
            .build()
            .unwrap();
        assert_eq!(shared_key(DEV_ACCOUNT, &key, &post), "SharedKey devstoreaccount1:hZVdVi1GArACFOFDw78wy6DfZx9Ri/08WhDiS//Zc4c=");
        let get = http
            .get("http://127.0.0.1:10001/devstoreaccount1/q?comp=metadata")
            .header("x-ms-version", VERSION)
            .header("x-ms-date", "Wed, 02 Dec 2026 08:00:00 GMT")
            .build()
            .unwrap();
        assert_eq!(shared_key(DEV_ACCOUNT, &key, &get), "SharedKey devstoreaccount1:u9ZOFj3Kf+0iboaCIQJQbAU/u5gEv3EaVliWS0Ew/7E=");
        // Any change to what is signed changes the signature.
        post.headers_mut().insert("x-ms-date", HeaderValue::from_static("Wed, 02 Dec 2026 08:00:01 GMT"));
        assert_ne!(shared_key(DEV_ACCOUNT, &key, &post), "SharedKey devstoreaccount1:hZVdVi1GArACFOFDw78wy6DfZx9Ri/08WhDiS//Zc4c=");
    }
}
