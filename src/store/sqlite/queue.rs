//! The delivery queue over the `jobs` table. Android and webpush jobs are claimed under a lease
//! by the delivery worker, for the channels it has; extension jobs wait (`pending`) until the
//! device acknowledges them on its stream. The claim walks the `(state, run_at)` index and
//! filters by channel (a relay without FCM skips the android jobs it holds); expired leases are
//! recovered by a separate statement.

use super::SqliteStore;
use crate::api::Priority;
use crate::store::Result;
use crate::store::contract::Queue;
use crate::store::model::*;
use rusqlite::{OptionalExtension, params};

/// `device_type IN (…)` for the given channels (their names are constants, never input).
fn channel_filter(channels: &[Channel]) -> String {
    let names: Vec<String> = channels
        .iter()
        .map(|c| format!("'{}'", c.device_type()))
        .collect();
    format!("device_type IN ({})", names.join(", "))
}

pub(super) fn payload_at(
    r: &rusqlite::Row,
    kind: usize,
    bytes: usize,
) -> rusqlite::Result<Option<JobPayload>> {
    let kind: Option<PayloadKind> = r.get(kind)?;
    let bytes: Option<Vec<u8>> = r.get(bytes)?;
    Ok(kind
        .zip(bytes)
        .map(|(kind, bytes)| JobPayload { kind, bytes }))
}

fn priority_at(r: &rusqlite::Row, idx: usize) -> rusqlite::Result<Option<Priority>> {
    let text: Option<String> = r.get(idx)?;
    Ok(text.and_then(|t| t.parse().ok()))
}

// Scalar subqueries, not JOINs: see the note in users_tokens.rs.
/// A claimed job with what delivering it needs.
pub(super) const CLAIMED_SQL: &str = "SELECT j.id, j.message_id, j.device_id, \
     (SELECT fcm_token FROM devices WHERE id = j.device_id), (SELECT envelope FROM messages WHERE id = j.message_id), \
     j.attempts, (SELECT created_at FROM messages WHERE id = j.message_id), j.expires_at, \
     j.payload_kind, j.payload, j.priority, j.device_type, \
     (SELECT endpoint FROM devices WHERE id = j.device_id), (SELECT p256dh FROM devices WHERE id = j.device_id), \
     (SELECT auth FROM devices WHERE id = j.device_id), (SELECT key FROM messages WHERE id = j.message_id), j.kind \
     FROM jobs j WHERE j.id = ?1";
/// Jobs waiting or in flight, each state counted in the partial index that holds it.
pub(super) const QUEUE_DEPTH_SQL: &str = "SELECT (SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'pending')) \
     + (SELECT COUNT(*) FROM jobs WHERE state = 'leased')";

/// Leases up to `?3` jobs of the given channels due at `?1`, until `?2`.
pub(super) fn claim_sql(channels: &[Channel]) -> String {
    format!(
        "UPDATE jobs SET state = 'leased', lease_until = ?2, lease_token = lease_token + 1, attempts = attempts + 1, updated_at = ?1 \
         WHERE id IN (SELECT id FROM jobs WHERE state = 'queued' AND run_at <= ?1 AND {} ORDER BY run_at LIMIT ?3) \
         RETURNING id, lease_token",
        channel_filter(channels)
    )
}

/// Leases that ended before `?1` (their worker died) made claimable at `?2`.
pub(super) const RECOVER_SQL: &str = "UPDATE jobs SET state = 'queued', lease_until = NULL, run_at = ?2, updated_at = ?2 \
     WHERE state = 'leased' AND lease_until <= ?1";

/// Waiting jobs whose ttl ran out by `?1`, expired.
pub(super) const EXPIRE_SQL: &str = "UPDATE jobs SET state = 'expired', last_error = 'ttl_expired', lease_until = NULL, updated_at = ?1 \
     WHERE state IN ('queued', 'pending') AND expires_at <= ?1";

/// When the next job of the given channels falls due.
pub(super) fn next_due_sql(channels: &[Channel]) -> String {
    format!(
        "SELECT MIN(run_at) FROM jobs WHERE state = 'queued' AND {}",
        channel_filter(channels)
    )
}

/// A delivered job's device was seen: the push service or FCM accepted the send.
const SEEN_SQL: &str = "UPDATE devices SET last_seen_at = ?2 WHERE id = ?1";

impl Queue for SqliteStore {
    /// Leases up to `limit` due jobs of the given channels for `lease_ms`.
    async fn claim_due(
        &self,
        now: i64,
        limit: usize,
        lease_ms: i64,
        channels: &[Channel],
    ) -> Result<Vec<ClaimedJob>> {
        let sql = claim_sql(channels);
        self.writer()
            .write(move |c| {
                let mut claim = c.prepare_cached(&sql)?;
                let claimed: Vec<(i64, i64)> = claim
                    .query_map(params![now, now + lease_ms, limit as i64], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                let mut fetch = c.prepare_cached(CLAIMED_SQL)?;
                let mut jobs = Vec::with_capacity(claimed.len());
                for (id, lease_token) in claimed {
                    jobs.push(fetch.query_row([id], |r| {
                        let kind: String = r.get(11)?;
                        let channel = Channel::of_device_type(&kind).ok_or_else(|| {
                            rusqlite::Error::FromSqlConversionFailure(
                                11,
                                rusqlite::types::Type::Text,
                                format!("no channel delivers '{kind}' jobs").into(),
                            )
                        })?;
                        let target = match channel {
                            Channel::Fcm => r.get::<_, Option<String>>(3)?.map(DeliveryTarget::Fcm),
                            Channel::WebPush => super::devices_pairing::webpush_at(r, 12)?
                                .map(DeliveryTarget::WebPush),
                        };
                        Ok(ClaimedJob {
                            job_id: r.get(0)?,
                            lease_token,
                            message_id: r.get(1)?,
                            device_id: r.get(2)?,
                            channel,
                            target,
                            envelope: r.get(4)?,
                            attempts: r.get(5)?,
                            created_at: r.get(6)?,
                            expires_at: r.get(7)?,
                            payload: payload_at(r, 8, 9)?,
                            priority: priority_at(r, 10)?,
                            key: r.get(15)?,
                            kind: r.get(16)?,
                        })
                    })?);
                }
                Ok(jobs)
            })
            .await
    }

    /// Makes jobs whose lease ended before `lease_cutoff` (their worker died) claimable now.
    async fn recover_expired_leases(&self, lease_cutoff: i64, now: i64) -> Result<usize> {
        self.writer()
            .write(move |c| {
                Ok(c.prepare_cached(RECOVER_SQL)?
                    .execute([lease_cutoff, now])?)
            })
            .await
    }

    async fn renew_leases(&self, leases: Vec<Lease>, until: i64) -> Result<()> {
        self.writer()
            .write(move |c| {
                let mut renew = c.prepare_cached(
                    "UPDATE jobs SET lease_until = ?2 WHERE id = ?1 AND state = 'leased' AND lease_token = ?3",
                )?;
                for lease in leases {
                    renew.execute([lease.job_id, until, lease.token])?;
                }
                Ok(())
            })
            .await
    }

    async fn complete_jobs(&self, outcomes: Vec<(Lease, JobOutcome)>, now: i64) -> Result<()> {
        self.writer()
            .write(move |c| {
                // The devices whose jobs were delivered: each is marked seen once, not once
                // per job (a round holds many jobs for the same phone).
                let mut seen: Vec<String> = Vec::new();
                for (lease, outcome) in outcomes {
                    let (job_id, token) = (lease.job_id, lease.token);
                    match outcome {
                        JobOutcome::Delivered => {
                            let device: Option<String> = c
                                .prepare_cached(
                                    "UPDATE jobs SET state = 'delivered', lease_until = NULL, last_error = NULL, updated_at = ?2 WHERE id = ?1 AND state = 'leased' AND lease_token = ?3 RETURNING device_id",
                                )?
                                .query_row(params![job_id, now, token], |r| r.get(0))
                                .optional()?;
                            match device {
                                Some(device) if !seen.contains(&device) => seen.push(device),
                                _ => {}
                            }
                            0
                        }
                        JobOutcome::RetryAt { at_ms, error } => c
                            .prepare_cached(
                                "UPDATE jobs SET state = 'queued', lease_until = NULL, run_at = ?2, last_error = ?3, updated_at = ?4 WHERE id = ?1 AND state = 'leased' AND lease_token = ?5",
                            )?
                            .execute(params![job_id, at_ms, error, now, token])?,
                        JobOutcome::DeadLetter { reason } => c
                            .prepare_cached("UPDATE jobs SET state = 'failed', lease_until = NULL, last_error = ?2, updated_at = ?3 WHERE id = ?1 AND state = 'leased' AND lease_token = ?4")?
                            .execute(params![job_id, reason, now, token])?,
                        JobOutcome::Expired => c
                            .prepare_cached(
                                "UPDATE jobs SET state = 'expired', lease_until = NULL, last_error = COALESCE(last_error, 'ttl_expired'), updated_at = ?2 WHERE id = ?1 AND state = 'leased' AND lease_token = ?3",
                            )?
                            .execute(params![job_id, now, token])?,
                        JobOutcome::DeviceUnreachable { error } => {
                            // Only the holder of the lease may judge the device: a stale
                            // verdict must not unpair a device another relay reached since.
                            let held = c.execute(
                                "UPDATE devices SET reachable = 0 WHERE id = (SELECT device_id FROM jobs \
                                 WHERE id = ?1 AND state = 'leased' AND lease_token = ?2)",
                                [job_id, token],
                            )?;
                            if held == 0 {
                                continue;
                            }
                            c.execute(
                                "UPDATE jobs SET state = 'failed', lease_until = NULL, last_error = ?2, updated_at = ?3 \
                                 WHERE device_id = (SELECT device_id FROM jobs WHERE id = ?1) AND state IN ('queued', 'leased', 'pending')",
                                params![job_id, error, now],
                            )?
                        }
                    };
                }
                let mut mark = c.prepare_cached(SEEN_SQL)?;
                for device in seen {
                    mark.execute(params![device, now])?;
                }
                Ok(())
            })
            .await
    }

    /// Expires waiting jobs whose ttl ran out (android jobs are also checked when claimed).
    async fn expire_jobs(&self, now: i64) -> Result<usize> {
        self.writer()
            .write(move |c| Ok(c.execute(EXPIRE_SQL, [now])?))
            .await
    }

    /// When the next job of the given channels falls due, if any is queued.
    async fn next_due_at(&self, channels: &[Channel]) -> Result<Option<i64>> {
        let sql = next_due_sql(channels);
        self.scan(|c| Ok(c.query_row(&sql, [], |r| r.get(0))?))
            .await
    }

    /// Android jobs queued or leased: the queue depth metric.
    async fn queue_depth(&self) -> Result<i64> {
        self.scan(|c| Ok(c.query_row(QUEUE_DEPTH_SQL, [], |r| r.get(0))?))
            .await
    }
}
