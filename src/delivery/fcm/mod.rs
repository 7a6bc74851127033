//! The FCM channel (SPEC §1.10): the HTTP v1 client with its OAuth token, the
//! `messages:send` body for one job, and what an answer means. [`FcmChannel::attempt`] is the
//! channel's whole turn in the worker's claim → send → classify → record.

pub mod client;
pub mod message;
pub mod outcome;

pub use client::FcmClient;

use super::outcome::Verdict;
use crate::store::ClaimedJob;
use outcome::Classified;
use serde_json::Value;

pub struct FcmChannel {
    client: FcmClient,
}

impl FcmChannel {
    pub fn new(client: FcmClient) -> FcmChannel {
        FcmChannel { client }
    }

    async fn send(&self, body: &Value) -> Classified {
        match self.client.send(body).await {
            Ok(answer) => outcome::classify(answer.status, &answer.body, answer.retry_after),
            Err(transport) => Verdict::Retry {
                error: transport,
                min_delay: None,
            }
            .into(),
        }
    }

    /// Sends one job to `registration` with `remaining` seconds of ttl and classifies the answer.
    pub async fn attempt(&self, job: &ClaimedJob, registration: &str, remaining: u64) -> Verdict {
        let Some(body) = message::request_body(job, registration, remaining) else {
            return Verdict::DeadLetter("corrupt_envelope".into());
        };
        match self.send(&body).await {
            Classified::Job(verdict) => verdict,
            // A bare 401/403 usually means the access token expired early: refresh once.
            Classified::RefreshAuth => {
                self.client.refresh_auth();
                match self.send(&body).await {
                    Classified::Job(verdict) => verdict,
                    Classified::RefreshAuth => Verdict::Retry {
                        error: "UNAUTHENTICATED".into(),
                        min_delay: None,
                    },
                }
            }
        }
    }
}
