//! The HTTP client of `reflecto send`: one request, retried on 429, 5xx and connection errors
//! with exponential backoff and jitter, honouring `Retry-After`, within a bounded total wait.
//! Every attempt carries the same `Idempotency-Key`, so a retry never sends twice.

use super::diagnose::{check_server, describe_network_error, rate_limit_message};
use crate::api::status::MessageView;
use crate::api::stream::{PairRequest, PairResponse};
use crate::api::token::{Secret, random_id};
use crate::api::{ApiError, ErrorCode, SendRequest, SendResponse};
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

/// How long `send` may keep retrying.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Total wait for retries on 5xx and connection errors (and 429s, unless below).
    pub max_wait: Duration,
    /// Wait out every 429 for its Retry-After however long (batch mode without an explicit
    /// --retry-max-wait).
    pub wait_out_429: bool,
}

impl RetryPolicy {
    pub fn bounded(max_wait: Duration) -> RetryPolicy {
        RetryPolicy {
            max_wait,
            wait_out_429: false,
        }
    }
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

/// The wait before retry `attempt` (0-based): between half and all of 0.5 s·2ⁿ, at most 30 s.
pub fn backoff(attempt: u32) -> Duration {
    crate::backoff::jittered(BASE_DELAY, MAX_DELAY, attempt)
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
        let server = check_server(server)?;
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
        Ok(Client { http, server })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn new_idempotency_key() -> String {
        random_id("rfc-", 32)
    }

    /// Sends with retries within `policy`; `on_wait` hears of each wait for a 429.
    pub async fn send(
        &self,
        token: &Secret,
        request: &SendRequest,
        key: &str,
        policy: RetryPolicy,
        on_wait: &dyn Fn(&ApiError, Duration),
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
                    let limited = error.code == ErrorCode::RateLimitExceeded;
                    let unbounded = limited && policy.wait_out_429;
                    if !unbounded && started.elapsed() + delay > policy.max_wait {
                        return Err(error);
                    }
                    if limited {
                        on_wait(&error, delay);
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
            .map_err(|e| unreachable(&url, &e))?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        let view = parse_ok(status, &body, &url, "a message status")?;
        Ok((body, view))
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
            .map_err(|e| unreachable(&url, &e))?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        parse_ok(status, &body, &url, "a pairing")
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
                // Never echo reqwest's error wholesale: name what failed and where.
                let (why, transient) = describe_network_error(&e, &url);
                let error = ApiError::new(
                    ErrorCode::RelayUnreachable,
                    format!("cannot reach the relay: {why}"),
                );
                return Err(if transient {
                    Attempt::Retry { error, after: None }
                } else {
                    Attempt::Fatal(error)
                });
            }
        };
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let retry_after = header("retry-after").as_deref().and_then(parse_retry_after);
        let reset = header("x-ratelimit-reset").and_then(|v| v.trim().parse::<i64>().ok());
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
            ApiError::new(code, format!("{url} answered HTTP {status}"))
        });
        let error = match status {
            404 => ApiError::new(
                error.code,
                format!(
                    "{url} answered 404 ({}); is --server the relay's base URL (without /v1)?",
                    error.message
                ),
            ),
            429 => {
                let layer = error
                    .details
                    .as_ref()
                    .and_then(|d| d["resource"].as_str())
                    .unwrap_or("unknown")
                    .to_owned();
                ApiError {
                    message: rate_limit_message(&layer, reset, retry_after),
                    ..error
                }
            }
            _ => error,
        };
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

/// The `X-RateLimit-*` headers of one response: its binding layer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RateStatus {
    pub resource: String,
    pub limit: u64,
    pub remaining: u64,
    pub reset: i64,
}

impl Client {
    /// `GET /v1/token`, once, without retries: what the relay knows about `token` (for `login`
    /// and `auth status --check`). Network failures come back as `relay_unreachable`.
    pub async fn token_info(
        &self,
        token: &Secret,
    ) -> Result<(crate::api::TokenInfo, Option<RateStatus>), ApiError> {
        let url = format!("{}/v1/token", self.server);
        let response = self
            .http
            .get(&url)
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(|e| unreachable(&url, &e))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let rate = (|| {
            Some(RateStatus {
                resource: header("x-ratelimit-resource")?,
                limit: header("x-ratelimit-limit")?.parse().ok()?,
                remaining: header("x-ratelimit-remaining")?.parse().ok()?,
                reset: header("x-ratelimit-reset")?.parse().ok()?,
            })
        })();
        let body = response.text().await.unwrap_or_default();
        let what = "a token description; is it a reflecto relay (version with GET /v1/token)?";
        parse_ok(status, &body, &url, what).map(|info| (info, rate))
    }
}

/// A failed connection as `relay_unreachable`, saying what failed and where (DNS, refused,
/// TLS, timeout): one wording for every request the CLI makes.
fn unreachable(url: &str, e: &reqwest::Error) -> ApiError {
    let (why, _) = describe_network_error(e, url);
    ApiError::new(
        ErrorCode::RelayUnreachable,
        format!("cannot reach the relay: {why}"),
    )
}

/// A 200's body as `T` (naming `what` was expected when it is not), else the answer's error.
fn parse_ok<T: serde::de::DeserializeOwned>(
    status: u16,
    body: &str,
    url: &str,
    what: &str,
) -> Result<T, ApiError> {
    if status != 200 {
        return Err(error_from(status, body, url));
    }
    serde_json::from_str(body).map_err(|_| {
        ApiError::new(
            ErrorCode::UnexpectedResponse,
            format!("{url} answered 200 with a body that is not {what}"),
        )
    })
}

/// A non-200 answer as the relay's own error (a 404 names the URL that answered it), else as
/// what the status stands for.
fn error_from(status: u16, body: &str, url: &str) -> ApiError {
    let decoded = serde_json::from_str(body)
        .ok()
        .and_then(|v| ApiError::from_body(&v));
    match decoded {
        Some(e) if status == 404 => ApiError::new(
            e.code,
            format!(
                "{url} answered 404 ({}); is --server the relay's base URL (without /v1)?",
                e.message
            ),
        ),
        Some(e) => e,
        None => ApiError::new(
            if status >= 500 {
                ErrorCode::InternalError
            } else {
                ErrorCode::UnexpectedResponse
            },
            format!("{url} answered HTTP {status}"),
        ),
    }
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
