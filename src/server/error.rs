//! How a failed request is answered: the catalogue's status, the nested or flat body, and for
//! a 429 the rate-limit headers and `Retry-After`. 5xx bodies never carry internals.

use super::limits::LayerStatus;
use super::observe::LogNote;
use crate::api::{ApiError, ErrorCode, ShimResponse};
use crate::store::StoreError;
use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// A request the relay refuses, with the rate-limit layer to report when there is one.
#[derive(Debug)]
pub struct Failure {
    pub error: ApiError,
    pub rate: Option<(LayerStatus, u64)>,
    /// `Retry-After` seconds for a transient 5xx (the store failing).
    pub retry_after: Option<u64>,
}

/// What a store fault's 500 tells clients to wait before retrying.
pub const STORE_RETRY_AFTER_SECS: u64 = 5;

impl Failure {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Failure {
        Failure {
            error: ApiError::new(code, message),
            rate: None,
            retry_after: None,
        }
    }

    /// A 429 for an exhausted layer: `details.resource`, headers and `Retry-After`.
    pub fn rate_limited(status: LayerStatus, now_ms: i64) -> Failure {
        let error = ApiError::new(
            ErrorCode::RateLimitExceeded,
            format!("rate limit exceeded: {}", status.layer.as_str()),
        )
        .with_details(serde_json::json!({ "resource": status.layer.as_str() }));
        Failure {
            error,
            rate: Some((status, status.retry_after(now_ms))),
            retry_after: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.error.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some((status, retry_after)) = &self.rate {
            write_rate_headers(&mut headers, status);
            headers.insert("retry-after", HeaderValue::from(*retry_after));
        }
        if let Some(seconds) = self.retry_after {
            headers.insert("retry-after", HeaderValue::from(seconds));
        }
        headers
    }

    /// The Pushover shim's shape: `{"status":0,"errors":[code]}`, same status and headers.
    pub fn into_shim_response(self) -> Response {
        let body = ShimResponse {
            status: 0,
            request: None,
            errors: Some(vec![self.error.code.as_str().to_owned()]),
            receipt: None,
        };
        let note = self.log_note();
        note.attach((self.status(), self.headers(), Json(body)).into_response())
    }

    /// The refusal's code, and for a 429 its layer, for the request's log line.
    fn log_note(&self) -> LogNote {
        LogNote {
            code: Some(self.error.code.as_str()),
            layer: self.rate.as_ref().map(|(status, _)| status.layer.as_str()),
            ..LogNote::default()
        }
    }
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Failure {
        Failure {
            error,
            rate: None,
            retry_after: None,
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        tracing::error!(error = %e, "store failure");
        // Every store failure is answered as transient: a request refused for its content
        // never reaches here (those are NotFound/Conflict, mapped by the handlers).
        Failure {
            error: ApiError::internal(),
            rate: None,
            retry_after: Some(STORE_RETRY_AFTER_SECS),
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let note = self.log_note();
        note.attach((self.status(), self.headers(), Json(self.error.to_body())).into_response())
    }
}

/// `X-RateLimit-*` for one layer.
pub fn write_rate_headers(headers: &mut HeaderMap, status: &LayerStatus) {
    headers.insert("x-ratelimit-limit", HeaderValue::from(status.limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(status.remaining));
    headers.insert("x-ratelimit-reset", HeaderValue::from(status.reset));
    headers.insert(
        "x-ratelimit-resource",
        HeaderValue::from_static(status.layer.as_str()),
    );
}
