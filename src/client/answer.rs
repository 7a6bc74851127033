//! The requests that close the loop (SPEC §1.15, §1.16): a device acknowledging a message
//! (with a response or without), and a sender clearing a message or the newest of a key. Both
//! are safe to repeat (a second acknowledgement or clear changes nothing), so a failed attempt
//! is simply tried again within a bounded wait.

use super::diagnose::On404;
use super::http::{Answer, Client, backoff, parse_ok, unreachable};
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

/// Runs `attempt` until it answers, fails for good, or `max_wait` would be exceeded.
pub(super) async fn retried<T, F, Fut>(max_wait: Duration, mut attempt: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let started = Instant::now();
    for n in 0u32.. {
        match attempt().await {
            Err(e) if transient(&e) => {
                let delay = backoff(n);
                if started.elapsed() + delay > max_wait {
                    return Err(e);
                }
                tracing::debug!(code = %e.code, "retrying");
                tokio::time::sleep(delay).await;
            }
            done => return done,
        }
    }
    unreachable!("the loop only ends by returning")
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
            let answer = Answer::of(&response);
            let text = response.text().await.unwrap_or_default();
            parse_ok(answer, &text, &url, "an acknowledgement", On404::UnknownId)
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
            let response = self
                .http
                .delete(&url)
                .bearer_auth(token.expose())
                .send()
                .await
                .map_err(|e| unreachable(&url, &e))?;
            let answer = Answer::of(&response);
            let text = response.text().await.unwrap_or_default();
            parse_ok(answer, &text, &url, "a clear's answer", On404::UnknownId)
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
        let started = Instant::now();
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
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_millis(1500),
            "{took:?}"
        );
    }
}
