//! The one delivery worker: claim → send (through the job's channel) → classify → record.
//! `run_once` is one such round, so tests drive it step by step; `run` loops it, sleeping
//! until the next job is due or an accepted send wakes it.

use super::Channel;
use super::fcm::FcmChannel;
use super::outcome::{Verdict, retry_delay};
use super::webpush::WebPushChannel;
use crate::relay::{FcmHealth, Relay};
use crate::store::{ClaimedJob, DeliveryTarget, JobOutcome, Lease, StoreError};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// SPEC §3: leases expire after 30 s by default.
pub const DEFAULT_LEASE_SECS: u64 = 30;

#[derive(Debug, Clone, Copy)]
pub struct WorkerSettings {
    /// Requests in flight at once, over all channels.
    pub concurrency: usize,
    /// How long a claimed job stays leased before another worker may take it.
    pub lease_ms: i64,
    /// Attempts before a job is dead-lettered.
    pub max_attempts: i64,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            concurrency: 64,
            lease_ms: DEFAULT_LEASE_SECS as i64 * 1000,
            max_attempts: 12,
        }
    }
}

/// The configured channels; a channel left `None` keeps its jobs queued.
#[derive(Clone, Default)]
pub struct Channels {
    pub fcm: Option<Arc<FcmChannel>>,
    pub webpush: Option<Arc<WebPushChannel>>,
}

impl Channels {
    pub fn fcm(channel: FcmChannel) -> Channels {
        Channels {
            fcm: Some(Arc::new(channel)),
            webpush: None,
        }
    }

    pub fn webpush(channel: WebPushChannel) -> Channels {
        Channels {
            fcm: None,
            webpush: Some(Arc::new(channel)),
        }
    }

    /// The channels this worker claims jobs for.
    pub fn enabled(&self) -> Vec<Channel> {
        let mut enabled = Vec::new();
        if self.fcm.is_some() {
            enabled.push(Channel::Fcm);
        }
        if self.webpush.is_some() {
            enabled.push(Channel::WebPush);
        }
        enabled
    }

    pub fn is_empty(&self) -> bool {
        self.enabled().is_empty()
    }
}

pub struct Worker {
    relay: Arc<Relay>,
    channels: Channels,
    enabled: Vec<Channel>,
    settings: WorkerSettings,
}

/// The longest idle sleep: lease recovery and expiry also run on this beat.
const MAX_IDLE: Duration = Duration::from_secs(15);

impl Worker {
    pub fn new(relay: Arc<Relay>, channels: Channels, settings: WorkerSettings) -> Worker {
        let enabled = channels.enabled();
        Worker {
            relay,
            channels,
            enabled,
            settings,
        }
    }

    /// One round: claims what is due (up to twice the concurrency), delivers it, and records
    /// every outcome in one commit. Returns how many jobs it handled.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let now = self.relay.clock.now_ms();
        let store = &self.relay.store;
        let jobs = store
            .claim_due(
                now,
                self.settings.concurrency * 2,
                self.settings.lease_ms,
                &self.enabled,
            )
            .await?;
        if jobs.is_empty() {
            return Ok(0);
        }
        // Which message and device each job is, for the operator's live view of outcomes.
        let named: std::collections::HashMap<i64, (String, String)> = jobs
            .iter()
            .map(|j| (j.job_id, (j.message_id.clone(), j.device_id.clone())))
            .collect();
        let leases = jobs.iter().map(ClaimedJob::lease).collect();
        let deliveries = futures_util::stream::iter(jobs)
            .map(|job| self.deliver(job))
            .buffer_unordered(self.settings.concurrency)
            .collect::<Vec<(Lease, JobOutcome)>>();
        let outcomes = self.renewing_leases(leases, deliveries).await;
        let handled = outcomes.len();
        let events: Vec<_> = outcomes
            .iter()
            .filter_map(|(lease, outcome)| {
                let state = match outcome {
                    JobOutcome::Delivered => "delivered",
                    JobOutcome::DeadLetter { .. } | JobOutcome::DeviceUnreachable { .. } => {
                        "failed"
                    }
                    JobOutcome::Expired => "expired",
                    JobOutcome::RetryAt { .. } => return None,
                };
                let (id, device_id) = named.get(&lease.job_id)?.clone();
                Some(crate::api::admin::AdminEvent::Delivery {
                    id,
                    device_id,
                    state: state.to_owned(),
                })
            })
            .collect();
        store
            .complete_jobs(outcomes, self.relay.clock.now_ms())
            .await?;
        for event in events {
            self.relay.publish_admin(event);
        }
        // Whoever holds `GET /v1/messages/{id}` for these messages looks again.
        store.wakeups().wake_statuses();
        Ok(handled)
    }

    /// Runs `work` (a round's deliveries) while renewing the leases of its jobs every third of
    /// a lease: a round can outlast one lease (a slow FCM answer, or two waves of requests of
    /// up to the request timeout each), and another relay must take the jobs over only when
    /// this one has stopped, not while their requests are still out.
    async fn renewing_leases<T>(&self, leases: Vec<Lease>, work: impl Future<Output = T>) -> T {
        let every = Duration::from_millis((self.settings.lease_ms / 3).max(1) as u64);
        tokio::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return done,
                _ = tokio::time::sleep(every) => {
                    let until = self.relay.clock.now_ms() + self.settings.lease_ms;
                    if let Err(e) = self.relay.store.renew_leases(leases.clone(), until).await {
                        tracing::warn!(error = %e, "renewing leases failed");
                    }
                }
            }
        }
    }

    /// The channel of the job's target sends it (the target decides: a job cannot reach the
    /// wrong channel); one whose channel is not configured here (claimed by mistake) or whose
    /// device is gone is dead-lettered.
    async fn attempt(&self, job: &ClaimedJob, remaining: u64, now: i64) -> Verdict {
        match &job.target {
            None => Verdict::DeadLetter("device_removed".into()),
            Some(DeliveryTarget::Fcm(registration)) => match &self.channels.fcm {
                Some(fcm) => fcm.attempt(job, registration, remaining).await,
                None => Verdict::DeadLetter("channel_disabled".into()),
            },
            Some(DeliveryTarget::WebPush(address)) => match &self.channels.webpush {
                Some(webpush) => webpush.attempt(job, address, remaining, now).await,
                None => Verdict::DeadLetter("channel_disabled".into()),
            },
        }
    }

    async fn deliver(&self, job: ClaimedJob) -> (Lease, JobOutcome) {
        let metrics = &self.relay.metrics;
        let now = self.relay.clock.now_ms();
        if now >= job.expires_at {
            metrics.delivery(job.channel.as_str(), "expired");
            return (job.lease(), JobOutcome::Expired);
        }
        let remaining = ((job.expires_at - now) / 1000).max(0) as u64;
        let verdict = self.attempt(&job, remaining, now).await;
        let done = self.relay.clock.now_ms();
        let outcome = match verdict {
            Verdict::Delivered => {
                if job.channel == Channel::Fcm {
                    self.relay.set_fcm_health(FcmHealth::Ok);
                }
                metrics.delivery(job.channel.as_str(), "delivered");
                metrics.dispatch_latency((done - job.created_at).max(0) as f64 / 1000.0);
                JobOutcome::Delivered
            }
            Verdict::Unreachable(error) => {
                metrics.delivery(job.channel.as_str(), "unreachable");
                tracing::info!(device = %job.device_id, %error, "device unreachable; unpaired");
                JobOutcome::DeviceUnreachable { error }
            }
            Verdict::DeadLetter(reason) => {
                metrics.delivery(job.channel.as_str(), "failed");
                tracing::warn!(message = %job.message_id, %reason, "delivery dead-lettered");
                JobOutcome::DeadLetter { reason }
            }
            Verdict::Retry { error, .. } if job.attempts >= self.settings.max_attempts => {
                metrics.delivery(job.channel.as_str(), "failed");
                tracing::warn!(message = %job.message_id, %error, "delivery dead-lettered after max attempts");
                JobOutcome::DeadLetter {
                    reason: format!("max_attempts: {error}"),
                }
            }
            Verdict::Retry { error, min_delay } => {
                if job.channel == Channel::Fcm {
                    self.relay.set_fcm_health(FcmHealth::Failing);
                }
                metrics.delivery(job.channel.as_str(), "retry");
                let at = done + retry_delay(job.attempts as u32, min_delay).as_millis() as i64;
                // Never schedule past the ttl: the claim at expiry marks the job expired.
                JobOutcome::RetryAt {
                    at_ms: at.min(job.expires_at),
                    error,
                }
            }
        };
        (job.lease(), outcome)
    }

    /// Works the queue until `stop` turns true; the round in flight finishes first.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let store = &self.relay.store;
        // One relay owns an SQLite data dir: every lease at start-up belongs to a dead
        // process. On a shared database other relays hold leases: they are left to expire.
        if !store.is_shared() {
            match store
                .recover_expired_leases(i64::MAX, self.relay.clock.now_ms())
                .await
            {
                Ok(n) if n > 0 => {
                    tracing::info!(jobs = n, "re-queued deliveries leased before a restart")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "recovering leases failed"),
            }
        }
        store.wakeups().set_worker_channels(&self.enabled);
        let mut last_sweep = self.relay.clock.now_ms();
        // Expired leases are looked for at least twice per lease, so a dead relay's jobs are
        // taken over at most about 1.5 leases after it claimed them.
        let sweep_every = (MAX_IDLE.as_millis() as i64).min((self.settings.lease_ms / 2).max(500));
        while !*stop.borrow() {
            let now = self.relay.clock.now_ms();
            if now - last_sweep >= sweep_every {
                last_sweep = now;
                if let Err(e) = store.recover_expired_leases(now, now).await {
                    tracing::warn!(error = %e, "lease recovery failed");
                }
            }
            match self.run_once().await {
                Ok(0) => {}
                Ok(_) => continue,
                Err(e) => tracing::error!(error = %e, "delivery round failed"),
            }
            // On a shared database, jobs another relay accepted are also found by this poll
            // when their wake-up was lost.
            let longest = store.poll_interval().map_or(MAX_IDLE, |p| p.min(MAX_IDLE));
            let idle = match store.next_due_at(&self.enabled).await {
                Ok(Some(due)) => Duration::from_millis(
                    (due - self.relay.clock.now_ms()).clamp(1, longest.as_millis() as i64) as u64,
                ),
                _ => longest,
            };
            tokio::select! {
                _ = store.wakeups().deliveries() => {}
                _ = tokio::time::sleep(idle) => {}
                _ = stop.changed() => {}
            }
        }
    }
}
