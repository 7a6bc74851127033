//! The HTTP client of `reflecto send`: one request, retried on 429, 5xx and connection errors
//! with exponential backoff and jitter, honouring `Retry-After`, within a bounded total wait.
//! Every attempt carries the same `Idempotency-Key`, so a retry never sends twice.

use crate::api::status::MessageView;
use crate::api::stream::{PairRequest, PairResponse};
use crate::api::token::{Secret, random_id};
use crate::api::{ApiError, ErrorCode, SendRequest, SendResponse};
use rand::Rng;
use std::time::{Duration, Instant};

pub struct Client {
    http: reqwest::Client,
    server: String,
}

/// A 200 from the relay: the body verbatim (for `--json`) and parsed.
#[derive(Debug, Clone)]
pub struct Sent {
    pub raw: String,
    pub response: SendResponse,
}

/// One attempt's failure, and whether another attempt may help.
enum Attempt {
    Retry {
        error: ApiError,
        after: Option<Duration>,
    },
    Fatal(ApiError),
}

const BASE_DELAY: Duration = Duration::from_millis(500);
const MAX_DELAY: Duration = Duration::from_secs(30);

/// Exponential backoff with full jitter: a random delay up to base·2ⁿ, capped.
pub fn backoff(attempt: u32) -> Duration {
    let ceiling = BASE_DELAY
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_DELAY);
    let millis =
        rand::rng().random_range(ceiling.as_millis() as u64 / 2..=ceiling.as_millis() as u64);
    Duration::from_millis(millis)
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

impl Client {
    /// `HTTP(S)_PROXY` and `NO_PROXY` are honoured by reqwest's defaults.
    pub fn new(server: &str) -> Result<Client, ApiError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("reflecto/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| {
                ApiError::new(
                    ErrorCode::CliInternalError,
                    format!("building the HTTP client: {e}"),
                )
            })?;
        Ok(Client {
            http,
            server: server.trim_end_matches('/').to_owned(),
        })
    }

    pub fn new_idempotency_key() -> String {
        random_id("rfc-", 32)
    }

    /// Sends with retries for at most `max_wait` of waiting.
    pub async fn send(
        &self,
        token: &Secret,
        request: &SendRequest,
        key: &str,
        max_wait: Duration,
    ) -> Result<Sent, ApiError> {
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            match self.attempt(token, request, key).await {
                Ok(sent) => return Ok(sent),
                Err(Attempt::Fatal(error)) => return Err(error),
                Err(Attempt::Retry { error, after }) => {
                    // Retry-After is honoured as given (with a small floor against busy loops).
                    let delay = after
                        .map_or_else(|| backoff(attempt), |a| a.max(Duration::from_millis(100)));
                    if started.elapsed() + delay > max_wait {
                        return Err(error);
                    }
                    tracing::debug!(code = %error.code, delay_ms = delay.as_millis() as u64, "retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }

    /// `GET /v1/messages/{id}`: the body verbatim (for `--json`) and parsed. Not retried: the
    /// caller polls.
    pub async fn message_status(
        &self,
        token: &Secret,
        id: &str,
    ) -> Result<(String, MessageView), ApiError> {
        let segment: String =
            percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).collect();
        let url = format!("{}/v1/messages/{segment}", self.server);
        let response = self
            .http
            .get(&url)
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(|e| unreachable(&self.server, &e))?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        if status == 200 {
            return serde_json::from_str(&body)
                .map(|view| (body, view))
                .map_err(|_| {
                    ApiError::new(
                        ErrorCode::UnexpectedResponse,
                        format!("{url} answered 200 with a body that is not a message status"),
                    )
                });
        }
        Err(error_from(status, &body, &url))
    }

    /// `POST /v1/devices/pair`. Not retried: a code is single-use.
    pub async fn pair(&self, request: &PairRequest) -> Result<PairResponse, ApiError> {
        let url = format!("{}/v1/devices/pair", self.server);
        let response = self
            .http
            .post(&url)
            .json(request)
            .send()
            .await
            .map_err(|e| unreachable(&self.server, &e))?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        if status == 200 {
            return serde_json::from_str(&body).map_err(|_| {
                ApiError::new(
                    ErrorCode::UnexpectedResponse,
                    format!("{url} answered 200 with a body that is not a pairing"),
                )
            });
        }
        Err(error_from(status, &body, &url))
    }

    async fn attempt(
        &self,
        token: &Secret,
        request: &SendRequest,
        key: &str,
    ) -> Result<Sent, Attempt> {
        let url = format!("{}/v1/send", self.server);
        let result = self
            .http
            .post(&url)
            .bearer_auth(token.expose())
            .header("Idempotency-Key", key)
            .json(request)
            .send()
            .await;
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                // Never echo reqwest's error wholesale: it can carry the URL, never the token,
                // but keep the message about the connection only.
                let why = if e.is_timeout() {
                    "timed out".to_owned()
                } else if e.is_connect() {
                    "connection failed".to_owned()
                } else {
                    "request failed".to_owned()
                };
                let error = ApiError::new(
                    ErrorCode::RelayUnreachable,
                    format!("cannot reach the relay at {}: {why}", self.server),
                );
                return Err(Attempt::Retry { error, after: None });
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = response.text().await.unwrap_or_default();
        if status == 200 {
            return serde_json::from_str::<SendResponse>(&body)
                .map(|response| Sent {
                    raw: body,
                    response,
                })
                .map_err(|_| {
                    Attempt::Fatal(ApiError::new(
                        ErrorCode::UnexpectedResponse,
                        format!(
                            "{} answered 200 with a body that is not a send response",
                            self.server
                        ),
                    ))
                });
        }
        let decoded = serde_json::from_str(&body)
            .ok()
            .and_then(|v| ApiError::from_body(&v));
        let error = decoded.unwrap_or_else(|| {
            let code = if status >= 500 {
                ErrorCode::InternalError
            } else {
                ErrorCode::UnexpectedResponse
            };
            ApiError::new(code, format!("{} answered HTTP {status}", self.server))
        });
        if status == 429 || status >= 500 {
            Err(Attempt::Retry {
                error,
                after: retry_after,
            })
        } else {
            Err(Attempt::Fatal(error))
        }
    }
}

fn unreachable(server: &str, e: &reqwest::Error) -> ApiError {
    let why = if e.is_timeout() {
        "timed out"
    } else {
        "connection failed"
    };
    ApiError::new(
        ErrorCode::RelayUnreachable,
        format!("cannot reach the relay at {server}: {why}"),
    )
}

/// A non-200 answer as the relay's own error, else as what the status stands for.
fn error_from(status: u16, body: &str, url: &str) -> ApiError {
    serde_json::from_str(body)
        .ok()
        .and_then(|v| ApiError::from_body(&v))
        .unwrap_or_else(|| {
            let code = if status >= 500 {
                ErrorCode::InternalError
            } else {
                ErrorCode::UnexpectedResponse
            };
            ApiError::new(code, format!("{url} answered HTTP {status}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 0..20 {
            let d = backoff(attempt);
            let ceiling = BASE_DELAY
                .saturating_mul(1 << attempt.min(16))
                .min(MAX_DELAY);
            assert!(d <= ceiling && d >= ceiling / 2, "{attempt}: {d:?}");
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        let future = std::time::SystemTime::now() + Duration::from_secs(30);
        let d = parse_retry_after(&httpdate::fmt_http_date(future)).unwrap();
        assert!(d <= Duration::from_secs(30) && d >= Duration::from_secs(28));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
