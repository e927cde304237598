//! A small client for the Azure Storage queue and blob services, for the `azure-queue` spill: with the
//! function's managed identity (bearer tokens for `https://storage.azure.com`) in Azure, or a connection string
//! with an account key (Shared Key signing) for Azurite and local development.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::token::TokenSource;

pub const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";
const VERSION: &str = "2023-11-03";
/// Azurite's well-known development account (`UseDevelopmentStorage=true`).
const DEV_ACCOUNT: &str = "devstoreaccount1";
const DEV_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub enum StorageAuth {
    SharedKey { account: String, key: Vec<u8> },
    Bearer(Arc<TokenSource>),
}

pub struct StorageClient {
    http: reqwest::Client,
    pub queue_url: String,
    pub blob_url: String,
    auth: StorageAuth,
}

/// One message as Get Messages returns it.
#[derive(Debug, Clone)]
pub struct QueueMessage {
    pub id: String,
    pub pop_receipt: String,
    pub text: String,
    pub dequeue_count: u32,
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
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
    pub fn from_connection_string(cs: &str) -> Result<StorageClient, String> {
        if cs.trim().eq_ignore_ascii_case("UseDevelopmentStorage=true") {
            return Ok(Self::with(
                format!("http://127.0.0.1:10001/{DEV_ACCOUNT}"),
                format!("http://127.0.0.1:10000/{DEV_ACCOUNT}"),
                StorageAuth::SharedKey { account: DEV_ACCOUNT.into(), key: B64.decode(DEV_KEY).expect("the dev key is base64") },
            ));
        }
        let mut parts = std::collections::HashMap::new();
        for kv in cs.split(';').filter(|s| !s.trim().is_empty()) {
            let (k, v) = kv.split_once('=').ok_or("not a connection string")?;
            parts.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
        let account = parts.get("accountname").ok_or("the connection string has no AccountName")?.clone();
        let key = B64.decode(parts.get("accountkey").ok_or("the connection string has no AccountKey")?).map_err(|_| "AccountKey is not base64")?;
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
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("reqwest client"),
            queue_url: queue_url.trim_end_matches('/').into(),
            blob_url: blob_url.trim_end_matches('/').into(),
            auth,
        }
    }

    /// Shared Key: `SharedKey account:base64(HMAC-SHA256(key, string-to-sign))` over the canonical request.
    fn shared_key(account: &str, key: &[u8], method: &str, url: &reqwest::Url, headers: &[(String, String)], length: usize, content_type: &str) -> String {
        let mut ms: Vec<(String, String)> = headers.iter().filter(|(k, _)| k.starts_with("x-ms-")).map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string())).collect();
        ms.sort();
        let canonical_headers: String = ms.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let mut resource = format!("/{account}{}", url.path());
        let mut query: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.to_ascii_lowercase(), v.to_string())).collect();
        query.sort();
        for (k, v) in query {
            resource.push_str(&format!("\n{k}:{v}"));
        }
        let length = if length == 0 { String::new() } else { length.to_string() };
        let to_sign = format!("{method}\n\n\n{length}\n\n{content_type}\n\n\n\n\n\n\n{canonical_headers}{resource}");
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
        mac.update(to_sign.as_bytes());
        format!("SharedKey {account}:{}", B64.encode(mac.finalize().into_bytes()))
    }

    async fn call(&self, method: reqwest::Method, url: &str, body: Vec<u8>, content_type: &str, extra: &[(&str, &str)]) -> Result<(u16, String), String> {
        self.call_with_headers(method, url, body, content_type, extra).await.map(|(s, _, t)| (s, t))
    }

    async fn call_with_headers(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Vec<u8>,
        content_type: &str,
        extra: &[(&str, &str)],
    ) -> Result<(u16, reqwest::header::HeaderMap, String), String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let mut headers: Vec<(String, String)> = vec![("x-ms-date".into(), date), ("x-ms-version".into(), VERSION.into())];
        headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let auth = match &self.auth {
            StorageAuth::SharedKey { account, key } => Self::shared_key(account, key, method.as_str(), &parsed, &headers, body.len(), content_type),
            StorageAuth::Bearer(tokens) => format!("Bearer {}", tokens.token().await.map_err(|e| format!("token: {e}"))?),
        };
        let mut req = self.http.request(method, parsed).header("authorization", auth);
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if !content_type.is_empty() {
            req = req.header("content-type", content_type);
        }
        let resp = req.body(body).send().await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        Ok((status, headers, text))
    }

    /// The queue's approximate depth and the age, in seconds, of its oldest visible message.
    pub async fn depth(&self, queue: &str) -> Result<(u64, Option<u64>), String> {
        let (status, headers, _) = self.call_with_headers(reqwest::Method::GET, &format!("{}/{queue}?comp=metadata", self.queue_url), Vec::new(), "", &[]).await?;
        if status != 200 {
            return Err(format!("queue metadata: {status}"));
        }
        let count = headers.get("x-ms-approximate-messages-count").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
        let peek = self.call(reqwest::Method::GET, &format!("{}/{queue}/messages?peekonly=true&numofmessages=1", self.queue_url), Vec::new(), "", &[]).await?;
        let age = xml_values(&peek.1, "InsertionTime")
            .first()
            .and_then(|t| httpdate::parse_http_date(t).ok())
            .and_then(|t| std::time::SystemTime::now().duration_since(t).ok())
            .map(|d| d.as_secs());
        Ok((count, age))
    }

    fn check(what: &str, r: (u16, String), ok: &[u16]) -> Result<String, String> {
        if ok.contains(&r.0) {
            Ok(r.1)
        } else {
            let code = xml_values(&r.1, "Code").first().map(|s| s.to_string()).unwrap_or_default();
            Err(format!("{what}: {} {code}", r.0))
        }
    }

    pub async fn create_queue(&self, queue: &str) -> Result<(), String> {
        let r = self.call(reqwest::Method::PUT, &format!("{}/{queue}", self.queue_url), Vec::new(), "", &[]).await?;
        Self::check("create queue", r, &[201, 204, 409]).map(|_| ())
    }

    /// Enqueues a message whose text is `text` (already encoded as the reader expects).
    pub async fn put_message(&self, queue: &str, text: &str) -> Result<(), String> {
        let body = format!("<QueueMessage><MessageText>{}</MessageText></QueueMessage>", xml_escape(text));
        let r = self.call(reqwest::Method::POST, &format!("{}/{queue}/messages", self.queue_url), body.into_bytes(), "application/xml", &[]).await?;
        Self::check("put message", r, &[201]).map(|_| ())
    }

    pub async fn get_messages(&self, queue: &str, max: u32, visibility_secs: u32) -> Result<Vec<QueueMessage>, String> {
        let url = format!("{}/{queue}/messages?numofmessages={max}&visibilitytimeout={visibility_secs}", self.queue_url);
        let xml = Self::check("get messages", self.call(reqwest::Method::GET, &url, Vec::new(), "", &[]).await?, &[200])?;
        Ok(xml_values(&xml, "QueueMessage")
            .into_iter()
            .map(|m| {
                let v = |t: &str| xml_values(m, t).first().map(|s| s.to_string()).unwrap_or_default();
                QueueMessage {
                    id: v("MessageId"),
                    pop_receipt: v("PopReceipt"),
                    text: v("MessageText").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"),
                    dequeue_count: v("DequeueCount").parse().unwrap_or(0),
                }
            })
            .collect())
    }

    pub async fn delete_message(&self, queue: &str, m: &QueueMessage) -> Result<(), String> {
        let mut url = reqwest::Url::parse(&format!("{}/{queue}/messages/{}", self.queue_url, m.id)).map_err(|e| e.to_string())?;
        url.query_pairs_mut().append_pair("popreceipt", &m.pop_receipt);
        let r = self.call(reqwest::Method::DELETE, url.as_str(), Vec::new(), "", &[]).await?;
        Self::check("delete message", r, &[204]).map(|_| ())
    }

    pub async fn create_container(&self, container: &str) -> Result<(), String> {
        let r = self.call(reqwest::Method::PUT, &format!("{}/{container}?restype=container", self.blob_url), Vec::new(), "", &[]).await?;
        Self::check("create container", r, &[201, 409]).map(|_| ())
    }

    pub async fn put_blob(&self, container: &str, name: &str, bytes: Vec<u8>) -> Result<(), String> {
        let r = self
            .call(reqwest::Method::PUT, &format!("{}/{container}/{name}", self.blob_url), bytes, "application/json", &[("x-ms-blob-type", "BlockBlob")])
            .await?;
        Self::check("put blob", r, &[201]).map(|_| ())
    }

    pub async fn get_blob(&self, container: &str, name: &str) -> Result<String, String> {
        let r = self.call(reqwest::Method::GET, &format!("{}/{container}/{name}", self.blob_url), Vec::new(), "", &[]).await?;
        Self::check("get blob", r, &[200])
    }

    pub async fn delete_blob(&self, container: &str, name: &str) -> Result<(), String> {
        let r = self.call(reqwest::Method::DELETE, &format!("{}/{container}/{name}", self.blob_url), Vec::new(), "", &[]).await?;
        Self::check("delete blob", r, &[202, 404]).map(|_| ())
    }
}
