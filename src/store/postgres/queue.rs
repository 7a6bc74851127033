//! The delivery queue and the desktop streams on PostgreSQL. Any number of relays claim from
//! one `jobs` table: `FOR UPDATE SKIP LOCKED` hands each due job to exactly one of them, and
//! a lease that runs out (its relay died mid-dispatch) is put back by whichever relay sweeps
//! first, so only the dead relay's in-flight jobs can be delivered twice. A live relay renews
//! the leases of the jobs it is working on, however slowly FCM answers.

use super::devices_pairing::webpush_at;
use super::{PgStore, retry_contended};
use crate::store::Result;
use crate::store::contract::Queue;
use crate::store::model::{
    Channel, ClaimedJob, DeliveryTarget, JobKind, JobOutcome, JobPayload, Lease, PayloadKind,
};
use tokio_postgres::Row;

pub(super) fn payload_at(r: &Row, kind: usize, bytes: usize) -> Option<JobPayload> {
    let kind: Option<String> = r.get(kind);
    let kind = match kind.as_deref() {
        Some("sealed") => PayloadKind::Sealed,
        Some("webpush") => PayloadKind::WebPush,
        _ => return None,
    };
    r.get::<_, Option<Vec<u8>>>(bytes)
        .map(|bytes| JobPayload { kind, bytes })
}

fn device_types(channels: &[Channel]) -> Vec<&'static str> {
    channels.iter().map(|c| c.device_type()).collect()
}
impl Queue for PgStore {
    async fn claim_due(
        &self,
        now: i64,
        limit: usize,
        lease_ms: i64,
        channels: &[Channel],
    ) -> Result<Vec<ClaimedJob>> {
        let client = self.writer().await?;
        let statement = client
            .prepare_cached(
                "WITH due AS (SELECT id FROM jobs WHERE state = 'queued' AND run_at <= $1 AND device_type = ANY($4) \
                   ORDER BY run_at LIMIT $3 FOR UPDATE SKIP LOCKED), \
                 claimed AS (UPDATE jobs j SET state = 'leased', lease_until = $2, lease_token = j.lease_token + 1, attempts = j.attempts + 1, updated_at = $1 \
                   FROM due WHERE j.id = due.id \
                   RETURNING j.id, j.message_id, j.device_id, j.attempts, j.expires_at, j.payload_kind, j.payload, j.priority, j.device_type, j.lease_token, j.kind) \
                 SELECT c.id, c.message_id, c.device_id, d.fcm_token, m.envelope, c.attempts, m.created_at, c.expires_at, \
                   c.payload_kind, c.payload, c.priority, c.device_type, d.endpoint, d.p256dh, d.auth, c.lease_token, m.key, c.kind \
                 FROM claimed c JOIN messages m ON m.id = c.message_id LEFT JOIN devices d ON d.id = c.device_id \
                 ORDER BY c.id",
            )
            .await?;
        let rows = client
            .query(
                &statement,
                &[
                    &now,
                    &(now + lease_ms),
                    &(limit as i64),
                    &device_types(channels),
                ],
            )
            .await?;
        let mut jobs = Vec::with_capacity(rows.len());
        for r in rows {
            let kind: String = r.get(11);
            let Some(channel) = Channel::of_device_type(&kind) else {
                tracing::warn!(
                    job = r.get::<_, i64>(0),
                    "no channel delivers '{kind}' jobs"
                );
                continue;
            };
            let target = match channel {
                Channel::Fcm => r.get::<_, Option<String>>(3).map(DeliveryTarget::Fcm),
                Channel::WebPush => webpush_at(&r, 12).map(DeliveryTarget::WebPush),
            };
            let job_kind: &str = r.get(17);
            let Some(job_kind) = JobKind::parse(job_kind) else {
                tracing::warn!(
                    job = r.get::<_, i64>(0),
                    "unknown job kind '{job_kind}' (a newer relay's?)"
                );
                continue;
            };
            let priority: Option<String> = r.get(10);
            jobs.push(ClaimedJob {
                job_id: r.get(0),
                lease_token: r.get(15),
                message_id: r.get(1),
                device_id: r.get(2),
                channel,
                target,
                envelope: r.get(4),
                attempts: r.get(5),
                created_at: r.get(6),
                expires_at: r.get(7),
                payload: payload_at(&r, 8, 9),
                priority: priority.and_then(|p| p.parse().ok()),
                key: r.get(16),
                kind: job_kind,
            });
        }
        Ok(jobs)
    }

    async fn recover_expired_leases(&self, lease_cutoff: i64, now: i64) -> Result<usize> {
        let n = self
            .writer()
            .await?
            .execute(
                "UPDATE jobs SET state = 'queued', lease_until = NULL, run_at = $2, updated_at = $2 \
                 WHERE state = 'leased' AND lease_until <= $1",
                &[&lease_cutoff, &now],
            )
            .await?;
        Ok(n as usize)
    }

    async fn renew_leases(&self, leases: Vec<Lease>, until: i64) -> Result<()> {
        let (ids, tokens): (Vec<i64>, Vec<i64>) =
            leases.iter().map(|l| (l.job_id, l.token)).unzip();
        self.writer()
            .await?
            .execute(
                "UPDATE jobs j SET lease_until = $2 FROM unnest($1::BIGINT[], $3::BIGINT[]) AS l(id, token) \
                 WHERE j.id = l.id AND j.state = 'leased' AND j.lease_token = l.token",
                &[&ids, &until, &tokens],
            )
            .await?;
        Ok(())
    }

    async fn complete_jobs(&self, outcomes: Vec<(Lease, JobOutcome)>, now: i64) -> Result<()> {
        retry_contended(|| self.complete_jobs_once(outcomes.clone(), now)).await
    }

    async fn expire_jobs(&self, now: i64) -> Result<usize> {
        let n = self
            .writer()
            .await?
            .execute(
                "UPDATE jobs SET state = 'expired', last_error = 'ttl_expired', lease_until = NULL, updated_at = $1 \
                 WHERE state IN ('queued', 'pending') AND expires_at <= $1",
                &[&now],
            )
            .await?;
        Ok(n as usize)
    }

    async fn next_due_at(&self, channels: &[Channel]) -> Result<Option<i64>> {
        let row = self
            .client()
            .await?
            .query_one(
                "SELECT min(run_at) FROM jobs WHERE state = 'queued' AND device_type = ANY($1)",
                &[&device_types(channels)],
            )
            .await?;
        Ok(row.get(0))
    }

    async fn queue_depth(&self) -> Result<i64> {
        let row = self
            .client()
            .await?
            .query_one(
                "SELECT count(*) FROM jobs WHERE state IN ('queued', 'leased', 'pending')",
                &[],
            )
            .await?;
        Ok(row.get(0))
    }
}

impl PgStore {
    /// One try of [`Queue::complete_jobs`].
    async fn complete_jobs_once(&self, outcomes: Vec<(Lease, JobOutcome)>, now: i64) -> Result<()> {
        let mut client = self.writer().await?;
        let tx = client.transaction().await?;
        for (lease, outcome) in outcomes {
            let (job_id, token) = (lease.job_id, lease.token);
            match outcome {
                JobOutcome::Delivered => {
                    // The push service or FCM accepted the send: the device was seen.
                    tx.execute(
                        "WITH done AS (UPDATE jobs SET state = 'delivered', lease_until = NULL, last_error = NULL, updated_at = $2 \
                           WHERE id = $1 AND state = 'leased' AND lease_token = $3 RETURNING device_id) \
                         UPDATE devices SET last_seen_at = $2 FROM done WHERE devices.id = done.device_id",
                        &[&job_id, &now, &token],
                    )
                    .await?
                }
                JobOutcome::RetryAt { at_ms, error } => tx
                    .execute(
                        "UPDATE jobs SET state = 'queued', lease_until = NULL, run_at = $2, last_error = $3, updated_at = $4 WHERE id = $1 AND state = 'leased' AND lease_token = $5",
                        &[&job_id, &at_ms, &error, &now, &token],
                    )
                    .await?,
                JobOutcome::DeadLetter { reason } => tx
                    .execute(
                        "UPDATE jobs SET state = 'failed', lease_until = NULL, last_error = $2, updated_at = $3 WHERE id = $1 AND state = 'leased' AND lease_token = $4",
                        &[&job_id, &reason, &now, &token],
                    )
                    .await?,
                JobOutcome::Expired => tx
                    .execute(
                        "UPDATE jobs SET state = 'expired', lease_until = NULL, last_error = COALESCE(last_error, 'ttl_expired'), updated_at = $2 WHERE id = $1 AND state = 'leased' AND lease_token = $3",
                        &[&job_id, &now, &token],
                    )
                    .await?,
                JobOutcome::DeviceUnreachable { error } => {
                    // Only the holder of the lease may judge the device: a stale verdict must
                    // not unpair a device another relay reached since.
                    let held = tx
                        .execute(
                            "UPDATE devices SET reachable = false WHERE id = (SELECT device_id FROM jobs \
                             WHERE id = $1 AND state = 'leased' AND lease_token = $2)",
                            &[&job_id, &token],
                        )
                        .await?;
                    if held == 0 {
                        continue;
                    }
                    tx.execute(
                        "UPDATE jobs SET state = 'failed', lease_until = NULL, last_error = $2, updated_at = $3 \
                         WHERE device_id = (SELECT device_id FROM jobs WHERE id = $1) AND state IN ('queued', 'leased', 'pending')",
                        &[&job_id, &error, &now],
                    )
                    .await?
                }
            };
        }
        tx.commit().await?;
        Ok(())
    }
}
