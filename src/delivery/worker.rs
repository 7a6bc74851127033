//! The one delivery worker: claim → send (through the job's channel) → classify → record.
//! `run_once` is one such round, so tests drive it step by step; `run` loops it, sleeping
//! until the next job is due or an accepted send wakes it.

use super::Channel;
use super::fcm::FcmChannel;
use super::outcome::{Verdict, retry_delay};
use super::webpush::WebPushChannel;
use crate::api::admin::AdminEvent;
use crate::relay::{FcmHealth, Relay};
use crate::store::{ClaimedJob, DeliveryTarget, JobOutcome, Lease, StoreError};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use std::collections::HashMap;
use std::collections::VecDeque;
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
    /// How long a round keeps claiming while its claims come back full (see
    /// [`Worker::run_once`]).
    pub claim_for: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            concurrency: 64,
            lease_ms: DEFAULT_LEASE_SECS as i64 * 1000,
            max_attempts: 12,
            claim_for: ROUND_CLAIMS_FOR,
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

/// How long a round keeps claiming by default (see [`Worker::run_once`]). Each round ends by
/// waiting for its last requests and commits, with nothing else in flight: with rounds of at
/// most eight claims (1,024 jobs), an FCM drain of 20,000 jobs had about twenty such gaps
/// (`bench/RESULTS.md`, sixth pass).
const ROUND_CLAIMS_FOR: Duration = Duration::from_millis(250);

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
    /// every outcome before it returns how many jobs it handled. While a claim comes back full
    /// (more may be due), the next one is taken while the current requests are still out, and
    /// outcomes are committed a wave at a time alongside them: the HTTP requests never wait for
    /// the store, which a claim → send → commit in turn made them do for about half of the
    /// time. A round stops claiming after `claim_for` (250 ms by default), so `run` still
    /// sweeps leases and sees its stop signal under sustained load.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let batch = self.settings.concurrency * 2;
        let first = self.claim(batch).await?;
        if first.is_empty() {
            return Ok(0);
        }
        let mut round = Round::new(first, batch, self.settings.claim_for);
        let mut in_flight = FuturesUnordered::new();
        let mut claiming = None;
        let mut commits = FuturesUnordered::new();
        let mut renewals = FuturesUnordered::new();
        let every = Duration::from_millis((self.settings.lease_ms / 3).max(1) as u64);
        let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            while in_flight.len() < self.settings.concurrency
                && let Some(job) = round.pending.pop_front()
            {
                round.name_for_watchers(&job, self.relay.admin_watched());
                in_flight.push(self.deliver(job));
            }
            if claiming.is_none() && round.wants_claim(self.settings.concurrency) {
                claiming = Some(Box::pin(self.claim(batch)));
            }
            let idle = in_flight.is_empty() && round.pending.is_empty() && claiming.is_none();
            if round.done.len() >= self.settings.concurrency || (idle && !round.done.is_empty()) {
                let done = std::mem::take(&mut round.done);
                let events = round.events_for(&done);
                commits.push(self.commit(done, events));
            }
            if idle && commits.is_empty() {
                break;
            }
            tokio::select! {
                Some(outcome) = in_flight.next() => round.done.push(outcome),
                claimed = async { claiming.as_mut().expect("guarded").await }, if claiming.is_some() => {
                    claiming = None;
                    round.claimed(claimed, batch);
                }
                Some(committed) = commits.next() => round.committed(committed),
                Some(()) = renewals.next() => {}
                // A round can outlast one lease (a slow FCM answer, or waves of requests of
                // up to the request timeout each): its leases are renewed every third of a
                // lease, so another relay takes the jobs over only when this one has stopped.
                _ = renew.tick() => renewals.push(self.renew(round.leases.clone())),
            }
        }
        round.finish()
    }

    async fn claim(&self, limit: usize) -> Result<Vec<ClaimedJob>, StoreError> {
        let now = self.relay.clock.now_ms();
        self.relay
            .store
            .claim_due(now, limit, self.settings.lease_ms, &self.enabled)
            .await
    }

    /// Records a wave of outcomes; returns how many.
    async fn commit(
        &self,
        outcomes: Vec<(Lease, JobOutcome)>,
        events: Vec<AdminEvent>,
    ) -> Result<usize, StoreError> {
        let handled = outcomes.len();
        let store = &self.relay.store;
        store
            .complete_jobs(outcomes, self.relay.clock.now_ms())
            .await?;
        // The operator's live views hear of outcomes once they are recorded.
        for event in events {
            self.relay.publish_admin(event);
        }
        // Whoever holds `GET /v1/messages/{id}` for these messages looks again.
        store.wakeups().wake_statuses();
        Ok(handled)
    }

    async fn renew(&self, leases: Vec<Lease>) {
        let until = self.relay.clock.now_ms() + self.settings.lease_ms;
        if let Err(e) = self.relay.store.renew_leases(leases, until).await {
            tracing::warn!(error = %e, "renewing leases failed");
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

/// The book of one round in [`Worker::run_once`]: what is claimed and not yet sent, the
/// outcomes not yet committed, every lease taken, and how the store answered.
struct Round {
    pending: VecDeque<ClaimedJob>,
    /// Which message and device each job in flight is, kept only while an operator's live
    /// view (`/v1/admin/events`) listens: its events name them.
    named: HashMap<i64, (String, String)>,
    done: Vec<(Lease, JobOutcome)>,
    leases: Vec<Lease>,
    /// Until when the round claims again.
    claiming_until: tokio::time::Instant,
    /// The last claim came back full: more jobs may be due.
    more: bool,
    handled: usize,
    failure: Option<StoreError>,
}

impl Round {
    fn new(first: Vec<ClaimedJob>, batch: usize, claim_for: Duration) -> Round {
        Round {
            named: HashMap::new(),
            more: first.len() >= batch,
            leases: first.iter().map(ClaimedJob::lease).collect(),
            pending: first.into(),
            done: Vec::new(),
            claiming_until: tokio::time::Instant::now() + claim_for,
            handled: 0,
            failure: None,
        }
    }

    /// Claim again once less than one wave is left to send, while claims come back full and
    /// the round is young.
    fn wants_claim(&self, concurrency: usize) -> bool {
        self.more
            && self.pending.len() < concurrency
            && tokio::time::Instant::now() < self.claiming_until
    }

    fn claimed(&mut self, claimed: Result<Vec<ClaimedJob>, StoreError>, batch: usize) {
        match claimed {
            Ok(jobs) => {
                self.more = jobs.len() >= batch;
                self.leases.extend(jobs.iter().map(ClaimedJob::lease));
                self.pending.extend(jobs);
            }
            // The jobs claimed so far are still sent and recorded; the next round claims again.
            Err(e) => {
                tracing::warn!(error = %e, "claiming more jobs failed");
                self.more = false;
            }
        }
    }

    fn committed(&mut self, committed: Result<usize, StoreError>) {
        match committed {
            Ok(n) => self.handled += n,
            Err(e) => {
                self.failure.get_or_insert(e);
            }
        }
    }

    fn name_for_watchers(&mut self, job: &ClaimedJob, watched: bool) {
        if watched {
            let name = (job.message_id.clone(), job.device_id.clone());
            self.named.insert(job.job_id, name);
        }
    }

    /// The live views' events for these outcomes: a delivery that ended (a retry is not news).
    fn events_for(&mut self, done: &[(Lease, JobOutcome)]) -> Vec<AdminEvent> {
        if self.named.is_empty() {
            return Vec::new();
        }
        done.iter()
            .filter_map(|(lease, outcome)| {
                let (id, device_id) = self.named.remove(&lease.job_id)?;
                let state = match outcome {
                    JobOutcome::Delivered => "delivered",
                    JobOutcome::DeadLetter { .. } | JobOutcome::DeviceUnreachable { .. } => {
                        "failed"
                    }
                    JobOutcome::Expired => "expired",
                    JobOutcome::RetryAt { .. } => return None,
                };
                let state = state.to_owned();
                Some(AdminEvent::Delivery {
                    id,
                    device_id,
                    state,
                })
            })
            .collect()
    }

    /// How many jobs the round handled, or the first commit that failed.
    fn finish(self) -> Result<usize, StoreError> {
        match self.failure {
            Some(e) => Err(e),
            None => Ok(self.handled),
        }
    }
}
