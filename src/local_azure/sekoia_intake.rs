//! A stand-in for Sekoia.io's HTTPS intake (`../shared/sekoia-contract.md`), served by the local workspace under
//! `/sekoia`: `POST /sekoia/jsons` (a JSON list of event texts, key in `X-SEKOIAIO-INTAKE-KEY`, optional
//! `X-SEKOIAIO-EVENT-TIMESTAMP`) and `POST /sekoia/array` (`[{"intake_key","json","timestamp"}]`), answering
//! `{"event_ids": [...]}` with one id per event, in order. Lets the fan-out run offline and be tested.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::Workspace;

/// One event as the intake took it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IntakeEvent {
    pub intake_key: String,
    pub json: String,
    pub timestamp: Option<String>,
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"message": message}))).into_response()
}

impl Workspace {
    fn intake_key_ok(&self, key: &str) -> bool {
        match &self.config.sekoia_intake_key {
            Some(k) => key == k,
            None => !key.is_empty(),
        }
    }

    fn take_events(&self, events: Vec<IntakeEvent>) -> Response {
        let ids: Vec<String> = events.iter().map(|_| uuid::Uuid::new_v4().to_string()).collect();
        self.sekoia_events.lock().unwrap_or_else(|e| e.into_inner()).extend(events);
        Json(json!({"event_ids": ids})).into_response()
    }

    /// Events the Sekoia stand-in has taken.
    pub fn sekoia_events(&self) -> Vec<IntakeEvent> {
        self.sekoia_events.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

pub(super) async fn jsons(State(ws): State<Arc<Workspace>>, headers: HeaderMap, body: Bytes) -> Response {
    let key = headers.get("x-sekoiaio-intake-key").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !ws.intake_key_ok(key) {
        return refuse(StatusCode::UNAUTHORIZED, "missing or unknown intake key");
    }
    let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "the body must be a JSON list of strings");
    };
    let ts = headers.get("x-sekoiaio-event-timestamp").and_then(|v| v.to_str().ok()).map(String::from);
    let mut events = Vec::new();
    for item in items {
        let Value::String(text) = item else { return refuse(StatusCode::BAD_REQUEST, "each event must be a JSON string") };
        events.push(IntakeEvent { intake_key: key.to_string(), json: text, timestamp: ts.clone() });
    }
    ws.take_events(events)
}

pub(super) async fn array(State(ws): State<Arc<Workspace>>, headers: HeaderMap, body: Bytes) -> Response {
    let header_key = headers.get("x-sekoiaio-intake-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "the body must be a JSON list of {intake_key, json, timestamp}");
    };
    let mut events = Vec::new();
    for item in items {
        let key = item.get("intake_key").and_then(Value::as_str).map(String::from).unwrap_or_else(|| header_key.clone());
        if !ws.intake_key_ok(&key) {
            return refuse(StatusCode::UNAUTHORIZED, "missing or unknown intake key");
        }
        let Some(text) = item.get("json").and_then(Value::as_str) else {
            return refuse(StatusCode::BAD_REQUEST, "each item needs `json`, the event as text");
        };
        let timestamp = item.get("timestamp").and_then(Value::as_str).map(String::from);
        if let Some(t) = &timestamp {
            if crate::model::time::parse_datetime_ticks(t).is_none() {
                return refuse(StatusCode::BAD_REQUEST, "`timestamp` must be RFC 3339");
            }
        }
        events.push(IntakeEvent { intake_key: key, json: text.to_string(), timestamp });
    }
    ws.take_events(events)
}
