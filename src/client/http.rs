//! The HTTP client of `reflecto send`: one request, retried on 429, 5xx and connection errors
//! with exponential backoff and jitter, honouring `Retry-After`, within a bounded total wait.
//! Every attempt carries the same `Idempotency-Key`, so a retry never sends twice.

use super::diagnose::{
    On404, answered_404, check_server, describe_network_error, network_failure, rate_limit_message,
};
use crate::api::status::MessageView;
use crate::api::stream::{PairRequest, PairResponse};
use crate::api::token::{Secret, random_id};
use crate::api::{ApiError, ErrorCode, SendRequest, SendResponse};
use std::time::{Duration, Instant};

pub struct Client {
    pub(super) http: reqwest::Client,
    pub(super) server: String,
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
        /// What failed, in a few words, for the line a terminal shows at once.
        what: String,
        after: Option<Duration>,
    },
    Fatal(ApiError),
}

/// What `send`'s `on_retry` hears, so a terminal can say at once what is going on (SPEC §2.5:
/// a silent wait over 2 s is a bug): every failed attempt that will be tried again, and a
/// first attempt still unanswered after [`SLOW_ANSWER`].
pub struct Retrying<'a> {
    /// The attempt's error; `None` while the first attempt is still waiting for an answer.
    pub error: Option<&'a ApiError>,
    /// What failed, naming the host (`connection refused by 127.0.0.1:8081`), or what is
    /// awaited.
    pub what: &'a str,
    /// Until the next attempt (zero while still waiting).
    pub delay: Duration,
    /// 0 for the first failed attempt.
    pub attempt: u32,
    /// How long the CLI keeps trying in all; `None` while a 429 is waited out however long.
    pub budget: Option<Duration>,
}

impl Retrying<'_> {
    pub fn rate_limited(&self) -> bool {
        self.error
            .is_some_and(|e| e.code == ErrorCode::RateLimitExceeded)
    }

    /// `connection refused by 127.0.0.1:8081; retrying for up to 60 s — Ctrl-C to stop`.
    pub fn notice(&self) -> String {
        if self.error.is_none() {
            let budget = match self.budget {
                Some(b) if !b.is_zero() => format!("; trying for up to {} s", seconds(b)),
                _ => String::new(),
            };
            return format!("{}{budget} — Ctrl-C to stop", self.what);
        }
        match self.budget {
            Some(budget) => format!(
                "{}; retrying for up to {} s — Ctrl-C to stop",
                self.what,
                seconds(budget)
            ),
            None => format!(
                "{}; waiting {} s as the relay asks — Ctrl-C to stop",
                self.what,
                seconds(self.delay)
            ),
        }
    }
}

/// `60`, `0.5`: whole seconds without a fraction.
fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s:.1}")
    }
}

/// How long the first attempt may stay unanswered before a terminal hears of it.
pub const SLOW_ANSWER: Duration = Duration::from_secs(1);

/// How long one request may take before it fails (a long poll's hold comes on top).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

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

/// What one `GET /v1/messages/{id}` told: the status, or that it is still the one named.
// One per request, moved once: boxing the view would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum StatusPoll {
    Changed {
        raw: String,
        view: MessageView,
        /// `None` from a relay older than the long poll: the caller polls without one.
        etag: Option<String>,
    },
    Unchanged,
}

/// An HTTP client as every request of the CLI makes them: reflecto's user agent and a 10 s
/// connect timeout; `shape` adds what the caller needs (a request or read timeout).
/// `HTTP(S)_PROXY` and `NO_PROXY` are honoured by reqwest's defaults.
pub fn http_client(
    shape: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
) -> Result<reqwest::Client, ApiError> {
    let builder = reqwest::Client::builder()
        .user_agent(concat!("reflecto/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10));
    shape(builder).build().map_err(|e| {
        ApiError::new(
            ErrorCode::CliInternalError,
            format!("building the HTTP client: {e}"),
        )
    })
}

/// A response header as text, if it is there and is text.
fn header_of(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl Client {
    pub fn new(server: &str) -> Result<Client, ApiError> {
        let server = check_server(server)?;
        let http = http_client(|b| b.timeout(REQUEST_TIMEOUT))?;
        Ok(Client { http, server })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn new_idempotency_key() -> String {
        random_id("rfc-", 32)
    }

    /// Sends with retries within `policy`; `on_retry` hears of each failed attempt before the
    /// wait for the next one.
    pub async fn send(
        &self,
        token: &Secret,
        request: &SendRequest,
        key: &str,
        policy: RetryPolicy,
        on_retry: &dyn Fn(&Retrying<'_>),
    ) -> Result<Sent, ApiError> {
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            let this = self.attempt(token, request, key);
            tokio::pin!(this);
            // A relay that neither answers nor refuses (a dropped SYN, a hung proxy) would keep
            // the first attempt silent until its timeout.
            let early = if attempt == 0 {
                tokio::select! {
                    result = &mut this => Some(result),
                    () = tokio::time::sleep(SLOW_ANSWER) => {
                        let what = format!("no answer from {} yet", self.server);
                        on_retry(&Retrying {
                            error: None,
                            what: &what,
                            delay: Duration::ZERO,
                            attempt,
                            budget: Some(policy.max_wait),
                        });
                        None
                    }
                }
            } else {
                None
            };
            let result = match early {
                Some(result) => result,
                None => this.await,
            };
            match result {
                Ok(sent) => return Ok(sent),
                Err(Attempt::Fatal(error)) => return Err(error),
                Err(Attempt::Retry { error, what, after }) => {
                    // Retry-After is honoured as given (with a small floor against busy loops).
                    let delay = after
                        .map_or_else(|| backoff(attempt), |a| a.max(Duration::from_millis(100)));
                    let limited = error.code == ErrorCode::RateLimitExceeded;
                    let unbounded = limited && policy.wait_out_429;
                    if !unbounded && started.elapsed() + delay > policy.max_wait {
                        return Err(error);
                    }
                    on_retry(&Retrying {
                        error: Some(&error),
                        what: &what,
                        delay,
                        attempt,
                        budget: (!unbounded).then_some(policy.max_wait),
                    });
                    tracing::debug!(code = %error.code, delay_ms = delay.as_millis() as u64, "retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }

    /// `GET /v1/messages/{id}`: the body verbatim (for `--json`), parsed, and its `ETag`. With
    /// `known` (an earlier `ETag`) and a `wait`, the long poll of SPEC §2.2: the relay holds
    /// the request until the status differs from `known` or `wait` passes (then
    /// [`StatusPoll::Unchanged`]). Not retried: the caller follows.
    pub async fn message_status(
        &self,
        token: &Secret,
        id: &str,
        known: Option<&str>,
        wait: Duration,
    ) -> Result<StatusPoll, ApiError> {
        let segment: String =
            percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).collect();
        let url = format!("{}/v1/messages/{segment}", self.server);
        let mut request = self.http.get(&url).bearer_auth(token.expose());
        if let Some(etag) = known {
            request = request.header("if-none-match", etag);
            if !wait.is_zero() {
                // The relay answers by the end of the wait; the usual timeout counts after it.
                request = request
                    .header("prefer", format!("wait={}", wait.as_secs().max(1)))
                    .timeout(wait + Duration::from_secs(30));
            }
        }
        let response = request.send().await.map_err(|e| unreachable(&url, &e))?;
        let status = response.status().as_u16();
        if status == 304 {
            return Ok(StatusPoll::Unchanged);
        }
        let etag = header_of(&response, "etag");
        let answer = Answer::of(&response);
        let body = response.text().await.unwrap_or_default();
        let view = parse_ok(answer, &body, &url, "a message status", On404::UnknownId)?;
        Ok(StatusPoll::Changed {
            raw: body,
            view,
            etag,
        })
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
        let answer = Answer::of(&response);
        let body = response.text().await.unwrap_or_default();
        parse_ok(answer, &body, &url, "a pairing", On404::WrongServer)
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
                let (what, transient) = network_failure(&e, &url);
                let error = ApiError::new(
                    ErrorCode::RelayUnreachable,
                    format!("cannot reach the relay: {what} (tried {url})"),
                );
                return Err(if transient {
                    Attempt::Retry {
                        error,
                        what,
                        after: None,
                    }
                } else {
                    Attempt::Fatal(error)
                });
            }
        };
        let status = response.status().as_u16();
        let header = |name: &str| header_of(&response, name);
        let retry_after = header("retry-after").as_deref().and_then(parse_retry_after);
        let reset = header("x-ratelimit-reset").and_then(|v| v.trim().parse::<i64>().ok());
        let request_id = header("x-request-id");
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
        if status == 404 {
            let error = answered_404(&url, decoded, On404::WrongServer);
            return Err(Attempt::Fatal(quoting(error, request_id.as_deref())));
        }
        let error = decoded.unwrap_or_else(|| {
            let code = if status >= 500 {
                ErrorCode::InternalError
            } else {
                ErrorCode::UnexpectedResponse
            };
            ApiError::new(code, format!("{url} answered HTTP {status}"))
        });
        let error = match status {
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
        let error = quoting(error, request_id.as_deref());
        if status == 429 || status >= 500 {
            let what = if status == 429 {
                error.message.clone()
            } else {
                format!("{url} answered HTTP {status} ({})", error.code)
            };
            Err(Attempt::Retry {
                error,
                what,
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
        let response = self.bodiless(reqwest::Method::GET, &url, token).await?;
        let header = |name: &str| header_of(&response, name);
        let rate = (|| {
            Some(RateStatus {
                resource: header("x-ratelimit-resource")?,
                limit: header("x-ratelimit-limit")?.parse().ok()?,
                remaining: header("x-ratelimit-remaining")?.parse().ok()?,
                reset: header("x-ratelimit-reset")?.parse().ok()?,
            })
        })();
        let answer = Answer::of(&response);
        let body = response.text().await.unwrap_or_default();
        let what = "a token description; is it a reflecto relay (version with GET /v1/token)?";
        parse_ok(answer, &body, &url, what, On404::WrongServer).map(|info| (info, rate))
    }
}

impl Client {
    /// A request without a body, with `token` as the bearer, sent once: a failed connection
    /// is `relay_unreachable`.
    pub(super) async fn bodiless(
        &self,
        method: reqwest::Method,
        url: &str,
        token: &Secret,
    ) -> Result<reqwest::Response, ApiError> {
        self.http
            .request(method, url)
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(|e| unreachable(url, &e))
    }
}

/// A failed connection as `relay_unreachable`, saying what failed and where (DNS, refused,
/// TLS, timeout): one wording for every request the CLI makes.
pub(super) fn unreachable(url: &str, e: &reqwest::Error) -> ApiError {
    let (why, _) = describe_network_error(e, url);
    ApiError::new(
        ErrorCode::RelayUnreachable,
        format!("cannot reach the relay: {why}"),
    )
}

/// What an answer said before its body: its status and the relay's request id.
pub(super) struct Answer {
    status: u16,
    request_id: Option<String>,
}

impl Answer {
    pub(super) fn of(response: &reqwest::Response) -> Answer {
        Answer {
            status: response.status().as_u16(),
            request_id: header_of(response, "x-request-id"),
        }
    }
}

/// An error the relay answered with, naming its request id (SPEC §2.5) so a user's report
/// finds the relay's log line.
fn quoting(mut error: ApiError, request_id: Option<&str>) -> ApiError {
    if let Some(id) = request_id {
        error.message = format!("{} (request {id})", error.message);
    }
    error
}

/// A 200's body as `T` (naming `what` was expected when it is not), else the answer's error.
pub(super) fn parse_ok<T: serde::de::DeserializeOwned>(
    answer: Answer,
    body: &str,
    url: &str,
    what: &str,
    on_404: On404,
) -> Result<T, ApiError> {
    if answer.status != 200 {
        let error = error_from(answer.status, body, url, on_404);
        return Err(quoting(error, answer.request_id.as_deref()));
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
fn error_from(status: u16, body: &str, url: &str, on_404: On404) -> ApiError {
    let decoded = serde_json::from_str(body)
        .ok()
        .and_then(|v| ApiError::from_body(&v));
    if status == 404 {
        return answered_404(url, decoded, on_404);
    }
    decoded.unwrap_or_else(|| unexplained(status, url))
}

/// A non-200 answer without the relay's error body: what its status stands for.
pub(super) fn unexplained(status: u16, url: &str) -> ApiError {
    ApiError::new(
        if status >= 500 {
            ErrorCode::InternalError
        } else {
            ErrorCode::UnexpectedResponse
        },
        format!("{url} answered HTTP {status}"),
    )
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
    fn the_first_notice_says_what_failed_and_for_how_long() {
        let error = ApiError::new(ErrorCode::RelayUnreachable, "cannot reach the relay: …");
        let mut retrying = Retrying {
            error: Some(&error),
            what: "connection refused by 127.0.0.1:8081",
            delay: Duration::from_millis(400),
            attempt: 0,
            budget: Some(Duration::from_secs(60)),
        };
        assert_eq!(
            retrying.notice(),
            "connection refused by 127.0.0.1:8081; retrying for up to 60 s — Ctrl-C to stop"
        );
        retrying.budget = Some(Duration::from_millis(2500));
        assert!(retrying.notice().contains("up to 2.5 s"));
        retrying.budget = None;
        assert!(
            retrying
                .notice()
                .contains("waiting 0.4 s as the relay asks")
        );
        let waiting = Retrying {
            error: None,
            what: "no answer from http://10.0.0.1:8080 yet",
            delay: Duration::ZERO,
            attempt: 0,
            budget: Some(Duration::from_secs(60)),
        };
        assert_eq!(
            waiting.notice(),
            "no answer from http://10.0.0.1:8080 yet; trying for up to 60 s — Ctrl-C to stop"
        );
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
