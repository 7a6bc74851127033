//! The HTTP client of `reflecto send`: one request, retried on 429, 5xx and connection errors
//! with exponential backoff and jitter, honouring `Retry-After`, within a bounded total wait.
//! Every attempt carries the same `Idempotency-Key`, so a retry never sends twice.

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

/// `--server` as an http(s) base URL (a path prefix is allowed), or a usage error at once:
/// a malformed URL is never retried.
pub fn check_server(server: &str) -> Result<String, ApiError> {
    let usage = |why: &str| {
        ApiError::new(
            ErrorCode::UsageError,
            format!(
                "--server '{server}' {why}; expected an http(s) base URL such as https://relay.example or http://127.0.0.1:8080"
            ),
        )
    };
    let url = url::Url::parse(server.trim()).map_err(|e| usage(&format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(usage(&format!("has scheme '{}'", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(usage("has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(usage("carries a query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// What went wrong on the way to the relay, from reqwest's error chain: each names the URL.
/// The second value says whether another attempt may help.
pub fn describe_network_error(err: &reqwest::Error, url: &str) -> (String, bool) {
    let parsed = url::Url::parse(url).ok();
    let host_name = parsed
        .as_ref()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let host_port = match parsed.as_ref().and_then(url::Url::port_or_known_default) {
        Some(p) => format!("{host_name}:{p}"),
        None => host_name.clone(),
    };
    let mut chain = Vec::new();
    let mut io_kind = None;
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            io_kind.get_or_insert(io.kind());
        }
        chain.push(e.to_string().to_ascii_lowercase());
        source = e.source();
    }
    let text = chain.join(": ");
    if text.contains("dns error") || text.contains("failed to lookup address") {
        // "Temporary failure in name resolution" may pass; an unknown name will not.
        let transient = text.contains("temporary failure");
        return (
            format!("cannot resolve host '{host_name}' (tried {url})"),
            transient,
        );
    }
    if io_kind == Some(std::io::ErrorKind::ConnectionRefused) {
        return (
            format!("connection refused by {host_port} (tried {url})"),
            true,
        );
    }
    let tls = [
        "tls",
        "certificate",
        "handshake",
        "invalidcontenttype",
        "corrupt message",
    ];
    if url.starts_with("https://") && tls.iter().any(|t| text.contains(t)) {
        let hint = if text.contains("certificate") {
            "the relay's certificate is not trusted"
        } else {
            "is the relay serving plain http?"
        };
        return (
            format!("TLS handshake failed ({hint}) (tried {url})"),
            false,
        );
    }
    if err.is_timeout() || io_kind == Some(std::io::ErrorKind::TimedOut) {
        return (format!("timed out (tried {url})"), true);
    }
    if err.is_connect() {
        return (
            format!("connection to {host_port} failed (tried {url})"),
            true,
        );
    }
    (format!("request failed (tried {url})"), true)
}

/// The message of a 429 that ends the retries (SPEC §2.0): which layer, when it frees (a local
/// time and a duration), and who sets the limits that do not reset soon.
pub fn rate_limit_message(
    layer: &str,
    reset_unix: Option<i64>,
    retry_after: Option<Duration>,
) -> String {
    let now = chrono::Utc::now().timestamp();
    let wait = reset_unix
        .map(|r| (r - now).max(0) as u64)
        .or(retry_after.map(|d| d.as_secs()));
    let mut text = format!("rate limit exceeded: {layer}");
    if let Some(secs) = wait {
        let at = chrono::Local::now() + chrono::Duration::seconds(secs as i64);
        text.push_str(&format!(
            "; it frees at {} (in {})",
            at.format("%Y-%m-%d %H:%M:%S %:z"),
            human_duration(secs)
        ));
    }
    if matches!(layer, "token_monthly" | "receiver_daily") {
        text.push_str("; the relay's operator sets this limit (ask them to raise it)");
    }
    text
}

/// `3d 4h`, `2h 5m`, `1m 30s`, `42s`.
pub fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
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
            .map_err(|e| {
                let (why, _) = describe_network_error(&e, &url);
                ApiError::new(
                    ErrorCode::RelayUnreachable,
                    format!("cannot reach the relay: {why}"),
                )
            })?;
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
        if status == 200 {
            return serde_json::from_str(&body)
                .map(|info| (info, rate))
                .map_err(|_| {
                    ApiError::new(
                        ErrorCode::UnexpectedResponse,
                        format!("{url} answered 200 with a body that is not a token description; is it a reflecto relay (version with GET /v1/token)?"),
                    )
                });
        }
        let decoded = serde_json::from_str(&body)
            .ok()
            .and_then(|v| ApiError::from_body(&v));
        Err(match decoded {
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
        })
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

    #[test]
    fn server_urls_are_checked_before_any_request() {
        assert_eq!(
            check_server("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            check_server("https://example.com/reflecto/").unwrap(),
            "https://example.com/reflecto"
        );
        for bad in [
            "not a url",
            "ftp://x",
            "relay.example",
            "http://",
            "https://x/?a=1",
        ] {
            assert_eq!(
                check_server(bad).unwrap_err().code,
                ErrorCode::UsageError,
                "{bad}"
            );
        }
    }

    #[test]
    fn rate_limit_message_names_layer_time_and_operator() {
        let now = chrono::Utc::now().timestamp();
        let m = rate_limit_message("token_monthly", Some(now + 3 * 86_400 + 7200), None);
        assert!(
            m.starts_with("rate limit exceeded: token_monthly; it frees at "),
            "{m}"
        );
        assert!(m.contains("(in 3d 2h)") || m.contains("(in 3d 1h)"), "{m}");
        assert!(m.contains("operator"), "{m}");
        let m = rate_limit_message("ip_minute", None, Some(Duration::from_secs(42)));
        assert!(m.contains("(in 42s)") && !m.contains("operator"), "{m}");
    }
}
