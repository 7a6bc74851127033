//! The FCM worker: claim → build → send → classify → record. `run_once` is one such round, so
//! tests drive it step by step; `run` loops it, sleeping until the next job is due or an
//! accepted send wakes it.

use super::fcm::FcmClient;
use super::message::{fcm_message, fcm_sealed_message};
use super::outcome::{Verdict, classify, retry_delay};
use crate::api::sealed;
use crate::server::{AppState, FcmHealth};
use crate::store::{ClaimedJob, JobOutcome, PayloadKind, StoreError};
use crate::validate::Envelope;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Clone, Copy)]
pub struct DispatcherSettings {
    /// FCM requests in flight at once.
    pub concurrency: usize,
    /// How long a claimed job stays leased before another worker may take it.
    pub lease_ms: i64,
    /// Attempts before a job is dead-lettered.
    pub max_attempts: i64,
}

impl Default for DispatcherSettings {
    fn default() -> Self {
        DispatcherSettings {
            concurrency: 64,
            lease_ms: 60_000,
            max_attempts: 12,
        }
    }
}

pub struct Dispatcher {
    state: Arc<AppState>,
    fcm: Arc<FcmClient>,
    settings: DispatcherSettings,
}

/// The longest idle sleep: lease recovery and expiry also run on this beat.
const MAX_IDLE: Duration = Duration::from_secs(15);

impl Dispatcher {
    pub fn new(
        state: Arc<AppState>,
        fcm: Arc<FcmClient>,
        settings: DispatcherSettings,
    ) -> Dispatcher {
        Dispatcher {
            state,
            fcm,
            settings,
        }
    }

    /// One round: claims what is due (up to twice the concurrency), delivers it, and records
    /// every outcome in one commit. Returns how many jobs it handled.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let now = self.state.clock.now_ms();
        let store = &self.state.store;
        let jobs = store
            .claim_due(now, self.settings.concurrency * 2, self.settings.lease_ms)
            .await?;
        if jobs.is_empty() {
            return Ok(0);
        }
        let outcomes: Vec<(i64, JobOutcome)> = futures_util::stream::iter(jobs)
            .map(|job| self.deliver(job))
            .buffer_unordered(self.settings.concurrency)
            .collect()
            .await;
        let handled = outcomes.len();
        store
            .complete_jobs(outcomes, self.state.clock.now_ms())
            .await?;
        Ok(handled)
    }

    async fn attempt(&self, body: &serde_json::Value) -> Verdict {
        match self.fcm.send(body).await {
            Ok(answer) => classify(answer.status, &answer.body, answer.retry_after),
            Err(transport) => Verdict::Retry {
                error: transport,
                min_delay: None,
            },
        }
    }

    async fn deliver(&self, job: ClaimedJob) -> (i64, JobOutcome) {
        let metrics = &self.state.metrics;
        let now = self.state.clock.now_ms();
        if now >= job.expires_at {
            metrics.delivery("expired");
            return (job.job_id, JobOutcome::Expired);
        }
        let Some(registration) = job.fcm_token.as_deref() else {
            metrics.delivery("failed");
            return (
                job.job_id,
                JobOutcome::DeadLetter {
                    reason: "device_removed".into(),
                },
            );
        };
        let remaining = ((job.expires_at - now) / 1000).max(0) as u64;
        let Some(body) = request_body(&job, registration, remaining) else {
            metrics.delivery("failed");
            return (
                job.job_id,
                JobOutcome::DeadLetter {
                    reason: "corrupt_envelope".into(),
                },
            );
        };
        let mut verdict = self.attempt(&body).await;
        if verdict == Verdict::RefreshAuth {
            // A bare 401/403 usually means the access token expired early: refresh once.
            self.fcm.refresh_auth();
            verdict = match self.attempt(&body).await {
                Verdict::RefreshAuth => Verdict::Retry {
                    error: "UNAUTHENTICATED".into(),
                    min_delay: None,
                },
                other => other,
            };
        }
        let done = self.state.clock.now_ms();
        let outcome = match verdict {
            Verdict::Delivered => {
                self.state.set_fcm_health(FcmHealth::Ok);
                metrics.delivery("delivered");
                metrics.dispatch_latency((done - job.created_at).max(0) as f64 / 1000.0);
                JobOutcome::Delivered
            }
            Verdict::Unreachable(error) => {
                metrics.delivery("unreachable");
                tracing::info!(device = %job.device_id, %error, "device unreachable; unpaired");
                JobOutcome::DeviceUnreachable { error }
            }
            Verdict::DeadLetter(reason) => {
                metrics.delivery("failed");
                tracing::warn!(message = %job.message_id, %reason, "delivery dead-lettered");
                JobOutcome::DeadLetter { reason }
            }
            Verdict::Retry { error, .. } if job.attempts >= self.settings.max_attempts => {
                metrics.delivery("failed");
                tracing::warn!(message = %job.message_id, %error, "delivery dead-lettered after max attempts");
                JobOutcome::DeadLetter {
                    reason: format!("max_attempts: {error}"),
                }
            }
            Verdict::Retry { error, min_delay } => {
                self.state.set_fcm_health(FcmHealth::Failing);
                metrics.delivery("retry");
                let at = done + retry_delay(job.attempts as u32, min_delay).as_millis() as i64;
                // Never schedule past the ttl: the claim at expiry marks the job expired.
                JobOutcome::RetryAt {
                    at_ms: at.min(job.expires_at),
                    error,
                }
            }
            Verdict::RefreshAuth => unreachable!("a refresh verdict is resolved above"),
        };
        (job.job_id, outcome)
    }

    /// Works the queue until `stop` turns true; the round in flight finishes first.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let store = &self.state.store;
        // One relay owns its data dir: every lease at start-up belongs to a dead process.
        match store
            .recover_expired_leases(i64::MAX, self.state.clock.now_ms())
            .await
        {
            Ok(n) if n > 0 => {
                tracing::info!(jobs = n, "re-queued deliveries leased before a restart")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "recovering leases failed"),
        }
        let mut last_sweep = self.state.clock.now_ms();
        while !*stop.borrow() {
            let now = self.state.clock.now_ms();
            if now - last_sweep >= MAX_IDLE.as_millis() as i64 {
                last_sweep = now;
                if let Err(e) = store.recover_expired_leases(now, now).await {
                    tracing::warn!(error = %e, "lease recovery failed");
                }
            }
            match self.run_once().await {
                Ok(0) => {}
                Ok(_) => continue,
                Err(e) => tracing::error!(error = %e, "dispatch round failed"),
            }
            let idle = match store.next_due_at() {
                Ok(Some(due)) => Duration::from_millis(
                    (due - self.state.clock.now_ms()).clamp(1, MAX_IDLE.as_millis() as i64) as u64,
                ),
                _ => MAX_IDLE,
            };
            tokio::select! {
                _ = self.state.deliveries_ready.notified() => {}
                _ = tokio::time::sleep(idle) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

/// The `messages:send` body: the sealed box when the job has one (SPEC §1.12), else the
/// envelope's fields. `None` when neither is usable.
fn request_body(job: &ClaimedJob, registration: &str, remaining: u64) -> Option<serde_json::Value> {
    match (&job.payload, &job.envelope) {
        (Some(payload), _) => match payload.kind {
            PayloadKind::Sealed => Some(fcm_sealed_message(
                &job.message_id,
                &sealed::encode(&payload.bytes),
                job.priority.unwrap_or_default(),
                registration,
                remaining,
            )),
        },
        (None, Some(envelope)) => serde_json::from_str::<Envelope>(envelope)
            .ok()
            .map(|e| fcm_message(&e, &job.message_id, registration, remaining)),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Priority;
    use crate::store::JobPayload;

    fn job(
        envelope: Option<&str>,
        payload: Option<JobPayload>,
        priority: Option<Priority>,
    ) -> ClaimedJob {
        ClaimedJob {
            job_id: 1,
            message_id: "msg_1".into(),
            device_id: "dev_1".into(),
            fcm_token: Some("reg".into()),
            envelope: envelope.map(str::to_owned),
            payload,
            priority,
            attempts: 1,
            created_at: 0,
            expires_at: 60_000,
        }
    }

    #[test]
    fn sealed_jobs_send_only_the_box_with_the_jobs_priority() {
        let sealed = JobPayload {
            kind: PayloadKind::Sealed,
            bytes: vec![1, 2, 3],
        };
        let body = request_body(
            &job(None, Some(sealed.clone()), Some(Priority::Low)),
            "reg",
            9,
        )
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"message": {"token": "reg", "data": {"id": "msg_1", "sealed": "AQID"},
                "android": {"priority": "NORMAL", "ttl": "9s"}}})
        );
        // A box wins even where the message still keeps its envelope for clear devices.
        let envelope = r#"{"type":"notification","payload":{"message":"hi"},"source":"ci"}"#;
        let mixed = request_body(&job(Some(envelope), Some(sealed), None), "reg", 9).unwrap();
        assert_eq!(mixed["message"]["data"]["sealed"], "AQID");
        assert!(mixed["message"]["data"].get("message").is_none());
        assert_eq!(mixed["message"]["android"]["priority"], "HIGH");
    }

    #[test]
    fn clear_jobs_map_the_envelope_and_nothing_usable_is_none() {
        let envelope = r#"{"type":"notification","payload":{"message":"hi"},"source":"ci"}"#;
        let clear = request_body(&job(Some(envelope), None, None), "reg", 5).unwrap();
        assert_eq!(clear["message"]["data"]["message"], "hi");
        assert!(request_body(&job(None, None, None), "reg", 5).is_none());
        assert!(request_body(&job(Some("{not json"), None, None), "reg", 5).is_none());
    }
}
