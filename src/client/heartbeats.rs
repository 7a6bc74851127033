//! Heartbeats from the client side (SPEC §1.18, §2.3): a ping, a failure, the owner's list.
//! A cron job calls `reflecto ping` and must not hang on a dead relay, so every call here ends
//! within its `max_wait`, retries included (the first attempt gets at least a second).

use super::answer::{read, retried, segment};
use super::diagnose::On404;
use super::http::{Client, unreachable};
use crate::api::heartbeat::{HeartbeatList, HeartbeatPing, HeartbeatView};
use crate::api::token::Secret;
use crate::api::{ApiError, ErrorCode};
use std::time::Duration;

/// The shortest overall deadline: one attempt's fair chance when no retries are wanted.
const FIRST_ATTEMPT: Duration = Duration::from_secs(1);

/// `work`, given up after `max_wait` (at least [`FIRST_ATTEMPT`]) as a relay that never
/// answered.
async fn bounded<T>(
    url: &str,
    max_wait: Duration,
    work: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let deadline = max_wait.max(FIRST_ATTEMPT);
    tokio::time::timeout(deadline, work)
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::new(
                ErrorCode::RelayUnreachable,
                format!(
                    "{url} did not answer within {} s (--retry-max-wait)",
                    deadline.as_secs_f64()
                ),
            ))
        })
}

/// What a ping says besides the name.
#[derive(Debug, Clone, Copy)]
pub enum PingKind<'a> {
    /// `POST /v1/heartbeats/{name}` with these durations.
    Alive(&'a HeartbeatPing),
    /// `POST /v1/heartbeats/{name}/fail` with this text.
    Failed(Option<&'a str>),
}

impl Client {
    /// A ping or a failure of heartbeat `name`; retried (429, 5xx, connection errors) within
    /// `max_wait`, and never longer.
    pub async fn ping_heartbeat(
        &self,
        token: &Secret,
        name: &str,
        kind: PingKind<'_>,
        max_wait: Duration,
    ) -> Result<HeartbeatView, ApiError> {
        let base = format!("{}/v1/heartbeats/{}", self.server, segment(name));
        let url = match kind {
            PingKind::Alive(_) => base,
            PingKind::Failed(_) => format!("{base}/fail"),
        };
        let attempts = retried(max_wait, || async {
            let request = self.http.post(&url).bearer_auth(token.expose());
            let request = match kind {
                PingKind::Alive(durations) => request.json(durations),
                PingKind::Failed(text) => request
                    .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                    .body(text.unwrap_or_default().to_owned()),
            };
            let response = request.send().await.map_err(|e| unreachable(&url, &e))?;
            read(response, &url, "a heartbeat", On404::UnknownId).await
        });
        bounded(&url, max_wait, attempts).await
    }

    /// `GET /v1/heartbeats`, retried within `max_wait`.
    pub async fn heartbeats(
        &self,
        token: &Secret,
        max_wait: Duration,
    ) -> Result<HeartbeatList, ApiError> {
        let url = format!("{}/v1/heartbeats", self.server);
        let attempts = retried(max_wait, || async {
            let response = self.bodiless(reqwest::Method::GET, &url, token).await?;
            read(response, &url, "a list of heartbeats", On404::WrongServer).await
        });
        bounded(&url, max_wait, attempts).await
    }
}
