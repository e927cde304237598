//! Every error a sender can get, as one type: each becomes `{"error":{"code","message"}}` with its status.
//! No input reaches a 500: anything unexpected is one of these variants by construction.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::azure::logs_ingestion::limits::RecordLimit;
use crate::azure::logs_ingestion::IngestError;
use crate::delivery::batcher::DeliveryError;
use crate::mapping::auth::AuthError;
use crate::mapping::MapError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("no source named '{0}' is configured")]
    UnknownSource(String),
    #[error("the body is over the {limit}-byte limit")]
    BodyTooLarge { limit: usize },
    #[error("the body holds {count} events; at most {limit} are taken in one request (WEBHOOK_MAX_EVENTS): send them in several")]
    TooManyEvents { count: usize, limit: usize },
    #[error("the body did not arrive within {secs} s (HTTP_BODY_TIMEOUT_SECS)")]
    BodyTimeout { secs: u64 },
    #[error("{0}")]
    Unauthorized(AuthError),
    /// A call to `/api/enrich` without its key.
    #[error("{0}")]
    CallerRefused(String),
    #[error("Content-Type '{0}' is not JSON")]
    UnsupportedMediaType(String),
    #[error("the body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("Content-Encoding '{0}' is not supported (gzip or identity)")]
    UnsupportedContentEncoding(String),
    #[error("{0}")]
    InvalidContentEncoding(String),
    #[error("{0}")]
    InvalidEvent(MapError),
    #[error("{0}")]
    RecordTooLarge(String),
    #[error("event {event}, table {table}: {limit}")]
    EventOverLimit { event: usize, table: String, limit: RecordLimit },
    #[error("{message}")]
    Unavailable { code: &'static str, message: String, retry_after_secs: u64 },
    /// Too much at once: come back after `retry_after_secs` (429).
    #[error("{message}")]
    Busy { code: &'static str, message: String, retry_after_secs: u64 },
    #[error("no route for {0}")]
    NotFound(String),
    #[error("{0}")]
    NoIncident(String),
    #[error("{0}")]
    IncidentNotFound(String),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::UnknownSource(_) | AppError::NotFound(_) | AppError::IncidentNotFound(_) => StatusCode::NOT_FOUND,
            AppError::NoIncident(_) => StatusCode::BAD_REQUEST,
            AppError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            AppError::BodyTooLarge { .. } | AppError::TooManyEvents { .. } | AppError::RecordTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Unauthorized(_) | AppError::CallerRefused(_) => StatusCode::UNAUTHORIZED,
            AppError::UnsupportedMediaType(_) | AppError::UnsupportedContentEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::InvalidContentEncoding(_) => StatusCode::BAD_REQUEST,
            AppError::InvalidJson(_) | AppError::InvalidEvent(_) => StatusCode::BAD_REQUEST,
            AppError::EventOverLimit { limit: RecordLimit::TooDeep { .. }, .. } => StatusCode::BAD_REQUEST,
            AppError::EventOverLimit { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// A stable code, also the `rejected` reason counted in health.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::UnknownSource(_) => "UnknownSource",
            AppError::NotFound(_) => "NotFound",
            AppError::NoIncident(_) => "NoIncident",
            AppError::IncidentNotFound(_) => "IncidentNotFound",
            AppError::BodyTooLarge { .. } => "BodyTooLarge",
            AppError::TooManyEvents { .. } => "TooManyEvents",
            AppError::BodyTimeout { .. } => "BodyTimeout",
            AppError::RecordTooLarge(_) => "RecordTooLarge",
            AppError::EventOverLimit { limit, .. } => match limit {
                RecordLimit::TooDeep { .. } => "NestingTooDeep",
                RecordLimit::FieldTooLarge { .. } => "FieldTooLarge",
                RecordLimit::TooLarge { .. } => "RecordTooLarge",
            },
            AppError::Unauthorized(_) | AppError::CallerRefused(_) => "Unauthorized",
            AppError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            AppError::InvalidJson(_) => "InvalidJson",
            AppError::UnsupportedContentEncoding(_) => "UnsupportedContentEncoding",
            AppError::InvalidContentEncoding(_) => "InvalidContentEncoding",
            AppError::InvalidEvent(_) => "InvalidEvent",
            AppError::Unavailable { code, .. } | AppError::Busy { code, .. } => code,
        }
    }
}

impl AppError {
    /// When to come back, for the answers that say (`Retry-After`).
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            AppError::Unavailable { retry_after_secs, .. } | AppError::Busy { retry_after_secs, .. } => Some(*retry_after_secs),
            _ => None,
        }
    }
}

impl From<DeliveryError> for AppError {
    fn from(e: DeliveryError) -> Self {
        match e {
            DeliveryError::Ingest(IngestError::TooLarge { bytes, limit }) => {
                AppError::RecordTooLarge(format!("an event maps to a {bytes}-byte record, over the {limit}-byte limit of one Logs Ingestion call"))
            }
            DeliveryError::Ingest(IngestError::Unavailable { last }) => AppError::Unavailable {
                code: "IngestionUnavailable",
                message: format!("Azure Monitor did not take the events in time ({last}); nothing was kept, retry later"),
                retry_after_secs: 30,
            },
            // Azure refusing our call is our configuration's fault (RBAC, DCR), not the sender's: a retry after
            // the operator fixes it succeeds, so tell the sender to retry rather than to drop the events.
            DeliveryError::Ingest(IngestError::Refused { status, code, .. }) => AppError::Unavailable {
                code: "IngestionRejected",
                message: format!("Azure Monitor refused the events ({status} {code}); the operator has been alerted, retry later"),
                retry_after_secs: 300,
            },
            DeliveryError::ShuttingDown => {
                AppError::Unavailable { code: "ShuttingDown", message: "the bridge is restarting, retry shortly".into(), retry_after_secs: 5 }
            }
            DeliveryError::UnknownStream(s) => {
                AppError::Unavailable { code: "StreamNotConfigured", message: format!("stream {s} is not configured"), retry_after_secs: 300 }
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = json!({"error": {"code": self.code(), "message": self.to_string()}});
        let mut resp = (status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs() {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let AppError::Unauthorized(_) = &self {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
