//! The Functions host's envelope for a non-HTTP trigger, as it posts one to a custom handler (contract §5):
//! `{"Data": {"<binding>": …}, "Metadata": {…}}` in, `{"Outputs": {}, "Logs": […], "ReturnValue": null}` out.
//! Built and checked here, once, so a handler receives a typed [`QueueInvocation`].

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// A queue trigger's invocation: the message text and what the host says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInvocation {
    /// The message text, decoded as the host hands it over (see [`message_text`]).
    pub message: String,
    /// How many times the host has dequeued the message (1 on the first try), when it says.
    pub dequeue_count: Option<u32>,
    /// The queue message id, when the host says.
    pub message_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvocationError {
    #[error("the invocation is not JSON: {0}")]
    NotJson(String),
    #[error("no Data.{0} in the invocation")]
    NoItem(&'static str),
    #[error("Data.{0} is neither a string nor an object")]
    NotAMessage(&'static str),
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Data", default)]
    data: serde_json::Map<String, Value>,
    #[serde(rename = "Metadata", default)]
    metadata: Metadata,
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(rename = "DequeueCount", default)]
    dequeue_count: Option<Value>,
    #[serde(rename = "Id", default)]
    id: Option<String>,
}

/// The message text of a trigger's item: a string message arrives JSON-encoded once more (`"\"…\""`), a plain
/// string is taken as it is, and a JSON message arrives as JSON.
pub fn message_text(item: &Value) -> Option<String> {
    match item {
        Value::String(s) => Some(serde_json::from_str::<String>(s).unwrap_or_else(|_| s.clone())),
        Value::Object(_) => Some(item.to_string()),
        _ => None,
    }
}

impl QueueInvocation {
    /// Reads the envelope of a queue trigger whose binding is named `binding` (`item` in function.json).
    pub fn parse(body: &[u8], binding: &'static str) -> Result<QueueInvocation, InvocationError> {
        let envelope: Envelope = serde_json::from_slice(body).map_err(|e| InvocationError::NotJson(e.to_string()))?;
        let item = envelope.data.get(binding).ok_or(InvocationError::NoItem(binding))?;
        let message = message_text(item).ok_or(InvocationError::NotAMessage(binding))?;
        // The host sends metadata values as strings or numbers, depending on its version.
        let dequeue_count = match envelope.metadata.dequeue_count {
            Some(Value::String(s)) => s.parse().ok(),
            Some(Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            _ => None,
        };
        Ok(QueueInvocation { message, dequeue_count, message_id: envelope.metadata.id })
    }
}

/// The host's response envelope: a 2xx completes the message; anything else makes the host retry it.
pub fn answer(status: StatusCode, log: String) -> Response {
    (status, Json(json!({"Outputs": {}, "Logs": [log], "ReturnValue": null}))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        let ok = br#"{"Data":{"item":"\"e30=\""},"Metadata":{"DequeueCount":"2","Id":"m-1"}}"#;
        let inv = QueueInvocation::parse(ok, "item").unwrap();
        assert_eq!(inv, QueueInvocation { message: "e30=".into(), dequeue_count: Some(2), message_id: Some("m-1".into()) });
        let numeric = br#"{"Data":{"item":"plain"},"Metadata":{"DequeueCount":3}}"#;
        assert_eq!(QueueInvocation::parse(numeric, "item").unwrap().dequeue_count, Some(3));
        assert_eq!(QueueInvocation::parse(br#"{"Data":{"item":{"a":1}}}"#, "item").unwrap().message, r#"{"a":1}"#);
        assert_eq!(QueueInvocation::parse(b"nope", "item").unwrap_err().to_string().split(':').next(), Some("the invocation is not JSON"));
        assert_eq!(QueueInvocation::parse(br#"{"Data":{}}"#, "item").unwrap_err(), InvocationError::NoItem("item"));
        assert_eq!(QueueInvocation::parse(br#"{"Data":{"item":7}}"#, "item").unwrap_err(), InvocationError::NotAMessage("item"));
        assert!(QueueInvocation::parse(br#"{"Data":[]}"#, "item").is_err());
    }
}
