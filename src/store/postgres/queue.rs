//! The delivery queue and the desktop streams on PostgreSQL. Any number of relays claim from
//! one `jobs` table: `FOR UPDATE SKIP LOCKED` hands each due job to exactly one of them, and
//! a lease that runs out (its relay died mid-dispatch) is put back by whichever relay sweeps
//! first, so only the dead relay's in-flight jobs can be delivered twice. A live relay renews
//! the leases of the jobs it is working on, however slowly FCM answers.

use super::PgStore;
use super::devices::webpush_at;
use crate::store::Result;
use crate::store::model::{
    Channel, ClaimedJob, DeliveryTarget, JobOutcome, JobPayload, PayloadKind, StreamEvent,
};
use tokio_postgres::Row;

fn payload_at(r: &Row, kind: usize, bytes: usize) -> Option<JobPayload> {
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

impl PgStore {
    pub async fn claim_due(
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
                 claimed AS (UPDATE jobs j SET state = 'leased', lease_until = $2, attempts = j.attempts + 1, updated_at = $1 \
                   FROM due WHERE j.id = due.id \
                   RETURNING j.id, j.message_id, j.device_id, j.attempts, j.expires_at, j.payload_kind, j.payload, j.priority, j.device_type) \
                 SELECT c.id, c.message_id, c.device_id, d.fcm_token, m.envelope, c.attempts, m.created_at, c.expires_at, \
                   c.payload_kind, c.payload, c.priority, c.device_type, d.endpoint, d.p256dh, d.auth \
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
            let priority: Option<String> = r.get(10);
            jobs.push(ClaimedJob {
                job_id: r.get(0),
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
            });
        }
        Ok(jobs)
    }

    pub async fn recover_expired_leases(&self, lease_cutoff: i64, now: i64) -> Result<usize> {
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

    pub async fn renew_leases(&self, job_ids: Vec<i64>, until: i64) -> Result<()> {
        self.writer()
            .await?
            .execute(
                "UPDATE jobs SET lease_until = $2 WHERE id = ANY($1) AND state = 'leased'",
                &[&job_ids, &until],
            )
            .await?;
        Ok(())
    }

    pub async fn complete_jobs(&self, outcomes: Vec<(i64, JobOutcome)>, now: i64) -> Result<()> {
        let mut client = self.writer().await?;
        let tx = client.transaction().await?;
        for (job_id, outcome) in outcomes {
            match outcome {
                JobOutcome::Delivered => tx
                    .execute(
                        "UPDATE jobs SET state = 'delivered', lease_until = NULL, last_error = NULL, updated_at = $2 WHERE id = $1 AND state = 'leased'",
                        &[&job_id, &now],
                    )
                    .await?,
                JobOutcome::RetryAt { at_ms, error } => tx
                    .execute(
                        "UPDATE jobs SET state = 'queued', lease_until = NULL, run_at = $2, last_error = $3, updated_at = $4 WHERE id = $1 AND state = 'leased'",
                        &[&job_id, &at_ms, &error, &now],
                    )
                    .await?,
                JobOutcome::DeadLetter { reason } => tx
                    .execute(
                        "UPDATE jobs SET state = 'failed', lease_until = NULL, last_error = $2, updated_at = $3 WHERE id = $1 AND state = 'leased'",
                        &[&job_id, &reason, &now],
                    )
                    .await?,
                JobOutcome::Expired => tx
                    .execute(
                        "UPDATE jobs SET state = 'expired', lease_until = NULL, last_error = COALESCE(last_error, 'ttl_expired'), updated_at = $2 WHERE id = $1 AND state = 'leased'",
                        &[&job_id, &now],
                    )
                    .await?,
                JobOutcome::DeviceUnreachable { error } => {
                    tx.execute(
                        "UPDATE devices SET reachable = false WHERE id = (SELECT device_id FROM jobs WHERE id = $1)",
                        &[&job_id],
                    )
                    .await?;
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

    pub async fn expire_jobs(&self, now: i64) -> Result<usize> {
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

    pub async fn next_due_at(&self, channels: &[Channel]) -> Result<Option<i64>> {
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

    pub async fn queue_depth(&self) -> Result<i64> {
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

    pub async fn stream_events(
        &self,
        device_id: &str,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<StreamEvent>> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT j.seq, j.message_id, m.envelope, j.payload_kind, j.payload FROM jobs j \
                 JOIN messages m ON m.id = j.message_id \
                 WHERE j.device_id = $1 AND j.seq > $2 AND j.state = 'pending' ORDER BY j.seq LIMIT $3",
            )
            .await?;
        let rows = client
            .query(&statement, &[&device_id, &after_seq, &(limit as i64)])
            .await?;
        Ok(rows
            .iter()
            .map(|r| StreamEvent {
                seq: r.get(0),
                message_id: r.get(1),
                envelope: r.get(2),
                payload: payload_at(r, 3, 4),
            })
            .collect())
    }

    pub async fn ack_stream_events(
        &self,
        device_id: &str,
        seqs: Vec<i64>,
        now: i64,
    ) -> Result<usize> {
        let n = self
            .writer()
            .await?
            .execute(
                "UPDATE jobs SET state = 'delivered', attempts = attempts + 1, updated_at = $3 \
                 WHERE device_id = $1 AND seq = ANY($2) AND state = 'pending'",
                &[&device_id, &seqs, &now],
            )
            .await?;
        Ok(n as usize)
    }
}
