//! The requests that close the loop (SPEC §1.15, §1.16): a device acknowledging a message
//! (with a response or without), and a sender clearing a message or the newest of a key. Both
//! are safe to repeat (a second acknowledgement or clear changes nothing), so a failed attempt
//! is simply tried again within a bounded wait.

use super::diagnose::On404;
use super::http::{Answer, Client, backoff, parse_ok, parse_retry_after, unreachable};
use crate::api::clear_ack::{AcknowledgeRequest, AcknowledgeResponse, ClearResponse};
use crate::api::token::Secret;
use crate::api::{ApiError, ErrorCode};
use std::time::{Duration, Instant};

/// What `clear` removes: one message, or the owner's newest message with a key.
#[derive(Debug, Clone, Copy)]
pub enum ClearTarget<'a> {
    Message(&'a str),
    Key(&'a str),
}

/// A path segment as the relay reads it back, whatever the user typed.
pub(super) fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).collect()
}

/// Whether another attempt may get a different answer.
fn transient(error: &ApiError) -> bool {
    matches!(
        error.code,
        ErrorCode::RelayUnreachable | ErrorCode::InternalError | ErrorCode::RateLimitExceeded
    )
}

/// One attempt's failure, with the relay's `Retry-After` when it sent one.
pub(super) struct Failed {
    error: ApiError,
    after: Option<Duration>,
}

impl From<ApiError> for Failed {
    fn from(error: ApiError) -> Failed {
        Failed { error, after: None }
    }
}

/// Runs `attempt` until it answers, fails for good, or `max_wait` would be exceeded. A
/// `Retry-After` is honoured as given (SPEC §2.2), else the send path's backoff.
pub(super) async fn retried<T, F, Fut>(max_wait: Duration, mut attempt: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failed>>,
{
    let started = Instant::now();
    for n in 0u32.. {
        match attempt().await {
            Err(Failed { error, after }) if transient(&error) => {
                let delay = after.map_or_else(|| backoff(n), |a| a.max(Duration::from_millis(100)));
                if started.elapsed() + delay > max_wait {
                    return Err(error);
                }
                tracing::debug!(code = %error.code, "retrying");
                tokio::time::sleep(delay).await;
            }
            done => return done.map_err(|f| f.error),
        }
    }
    unreachable!("the loop only ends by returning")
}

/// The answer of one attempt, parsed, or why it failed with the relay's `Retry-After`.
pub(super) async fn read<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    url: &str,
    what: &str,
    on_404: On404,
) -> Result<T, Failed> {
    let answer = Answer::of(&response);
    let after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let text = response.text().await.unwrap_or_default();
    parse_ok(answer, &text, url, what, on_404).map_err(|error| Failed { error, after })
}

impl Client {
    /// `POST /v1/messages/{id}/acknowledge` with a device credential: `{}`, or
    /// `{"response":…}` for a response action. Retried within `max_wait`.
    pub async fn acknowledge(
        &self,
        credential: &Secret,
        id: &str,
        response: Option<&str>,
        max_wait: Duration,
    ) -> Result<AcknowledgeResponse, ApiError> {
        let url = format!("{}/v1/messages/{}/acknowledge", self.server, segment(id));
        let body = AcknowledgeRequest {
            response: response.map(str::to_owned),
        };
        retried(max_wait, || async {
            let response = self
                .http
                .post(&url)
                .bearer_auth(credential.expose())
                .json(&body)
                .send()
                .await
                .map_err(|e| unreachable(&url, &e))?;
            read(response, &url, "an acknowledgement", On404::UnknownId).await
        })
        .await
    }

    /// `DELETE /v1/messages/{id}` or `DELETE /v1/keys/{key}` with a sender token. Retried
    /// within `max_wait`.
    pub async fn clear(
        &self,
        token: &Secret,
        target: ClearTarget<'_>,
        max_wait: Duration,
    ) -> Result<ClearResponse, ApiError> {
        let url = match target {
            ClearTarget::Message(id) => format!("{}/v1/messages/{}", self.server, segment(id)),
            ClearTarget::Key(key) => format!("{}/v1/keys/{}", self.server, segment(key)),
        };
        retried(max_wait, || async {
            let response = self.bodiless(reqwest::Method::DELETE, &url, token).await?;
            read(response, &url, "a clear's answer", On404::UnknownId).await
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("msg_0a"), "msg%5F0a");
        assert_eq!(segment("a/b"), "a%2Fb");
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried_until_the_budget_then_reported() {
        // Port 9 (discard) on loopback refuses at once.
        let client = Client::new("http://127.0.0.1:9").unwrap();
        let err = client
            .acknowledge(
                &Secret::new("rfd_live_x"),
                "msg_1",
                None,
                Duration::from_millis(1200),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::RelayUnreachable);
    }
}
