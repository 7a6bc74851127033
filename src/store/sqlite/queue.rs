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
use std::collections::HashMap;

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

/// A claimed job's message: what delivering it needs of the send. One seek per job (through
/// the messages key): the job's own columns come back from the claim itself, and its device
/// is read once per claim ([`CLAIMED_DEVICE_SQL`]) however many of its jobs the claim holds.
/// These were eight scalar subqueries per job (three seeks of `messages`, five of `devices`),
/// half of the writer's time in a claim. No JOINs, for the reason given in users_tokens.rs.
pub(super) const CLAIMED_MESSAGE_SQL: &str =
    "SELECT envelope, created_at, key FROM messages WHERE id = ?1";
/// Where a claimed job's device is reached: its FCM token, or its Web Push address.
pub(super) const CLAIMED_DEVICE_SQL: &str =
    "SELECT fcm_token, endpoint, p256dh, auth FROM devices WHERE id = ?1";
/// Jobs waiting or in flight, each state counted in the partial index that holds it.
pub(super) const QUEUE_DEPTH_SQL: &str = "SELECT (SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'pending')) \
     + (SELECT COUNT(*) FROM jobs WHERE state = 'leased')";

/// Leases up to `?3` jobs of the given channels due at `?1`, until `?2`.
pub(super) fn claim_sql(channels: &[Channel]) -> String {
    format!(
        "UPDATE jobs SET state = 'leased', lease_until = ?2, lease_token = lease_token + 1, attempts = attempts + 1, updated_at = ?1 \
         WHERE id IN (SELECT id FROM jobs WHERE state = 'queued' AND run_at <= ?1 AND {} ORDER BY run_at LIMIT ?3) \
         RETURNING {CLAIMED_COLUMNS}",
        channel_filter(channels)
    )
}

/// What the claim returns of each job it leased, read by [`ClaimedRow::read`].
const CLAIMED_COLUMNS: &str = "id, lease_token, message_id, device_id, device_type, attempts, expires_at, payload_kind, payload, priority, kind";

/// A leased job's own columns, before its message and device are read.
struct ClaimedRow {
    job_id: i64,
    lease_token: i64,
    message_id: String,
    device_id: String,
    channel: Channel,
    attempts: i64,
    expires_at: i64,
    payload: Option<JobPayload>,
    priority: Option<Priority>,
    kind: JobKind,
}

impl ClaimedRow {
    fn read(r: &rusqlite::Row) -> rusqlite::Result<ClaimedRow> {
        let device_type: String = r.get(4)?;
        let channel = Channel::of_device_type(&device_type).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                4,
                rusqlite::types::Type::Text,
                format!("no channel delivers '{device_type}' jobs").into(),
            )
        })?;
        Ok(ClaimedRow {
            job_id: r.get(0)?,
            lease_token: r.get(1)?,
            message_id: r.get(2)?,
            device_id: r.get(3)?,
            channel,
            attempts: r.get(5)?,
            expires_at: r.get(6)?,
            payload: payload_at(r, 7, 8)?,
            priority: priority_at(r, 9)?,
            kind: r.get(10)?,
        })
    }
}

/// Reads each claimed job's message, and each device once, into what the worker delivers.
fn claimed_jobs(c: &rusqlite::Connection, rows: Vec<ClaimedRow>) -> Result<Vec<ClaimedJob>> {
    let mut message = c.prepare_cached(CLAIMED_MESSAGE_SQL)?;
    let mut device = c.prepare_cached(CLAIMED_DEVICE_SQL)?;
    // A device gone since its job was queued reads as no row: the job has no target.
    type Address = (Option<String>, Option<WebPushAddress>);
    let mut devices: HashMap<String, Option<Address>> = HashMap::new();
    let mut jobs = Vec::with_capacity(rows.len());
    for row in rows {
        let (envelope, created_at, key) =
            message.query_row([&row.message_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        if !devices.contains_key(&row.device_id) {
            let address = device
                .query_row([&row.device_id], |r| {
                    Ok((r.get(0)?, super::devices_pairing::webpush_at(r, 1)?))
                })
                .optional()?;
            devices.insert(row.device_id.clone(), address);
        }
        let target =
            devices[&row.device_id]
                .as_ref()
                .and_then(|(fcm, webpush)| match row.channel {
                    Channel::Fcm => fcm.clone().map(DeliveryTarget::Fcm),
                    Channel::WebPush => webpush.clone().map(DeliveryTarget::WebPush),
                });
        jobs.push(ClaimedJob {
            job_id: row.job_id,
            lease_token: row.lease_token,
            message_id: row.message_id,
            device_id: row.device_id,
            channel: row.channel,
            target,
            envelope,
            attempts: row.attempts,
            created_at,
            expires_at: row.expires_at,
            payload: row.payload,
            priority: row.priority,
            key,
            kind: row.kind,
        });
    }
    Ok(jobs)
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

/// A job delivered under lease `?3`. No `RETURNING device_id`: SQLite runs a RETURNING
/// clause as a trigger, which gives every such UPDATE a statement journal of its own (a fifth
/// of the writer's time in an outcome); the device is read by [`JOB_DEVICE_SQL`] instead.
const DELIVERED_SQL: &str = "UPDATE jobs SET state = 'delivered', lease_until = NULL, last_error = NULL, updated_at = ?2 \
     WHERE id = ?1 AND state = 'leased' AND lease_token = ?3";
/// The device of job `?1`.
const JOB_DEVICE_SQL: &str = "SELECT device_id FROM jobs WHERE id = ?1";

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
            .write_replayable(move |c| {
                let rows: Vec<ClaimedRow> = c
                    .prepare_cached(&sql)?
                    .query_map(params![now, now + lease_ms, limit as i64], ClaimedRow::read)?
                    .collect::<rusqlite::Result<_>>()?;
                claimed_jobs(c, rows)
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
            .write_replayable(move |c| {
                let mut renew = c.prepare_cached(
                    "UPDATE jobs SET lease_until = ?2 WHERE id = ?1 AND state = 'leased' AND lease_token = ?3",
                )?;
                for lease in &leases {
                    renew.execute([lease.job_id, until, lease.token])?;
                }
                Ok(())
            })
            .await
    }

    async fn complete_jobs(&self, outcomes: Vec<(Lease, JobOutcome)>, now: i64) -> Result<()> {
        self.writer()
            .write_replayable(move |c| {
                // The devices whose jobs were delivered: each is marked seen once, not once
                // per job (a round holds many jobs for the same phone).
                let mut seen: Vec<String> = Vec::new();
                let mut unreachable = Vec::new();
                let mut delivered = c.prepare_cached(DELIVERED_SQL)?;
                let mut device_of = c.prepare_cached(JOB_DEVICE_SQL)?;
                for (lease, outcome) in &outcomes {
                    let (job_id, token) = (lease.job_id, lease.token);
                    match outcome {
                        JobOutcome::Delivered => {
                            // Only a job this lease still held was delivered by it.
                            if delivered.execute(params![job_id, now, token])? == 1 {
                                let device: String = device_of.query_row([job_id], |r| r.get(0))?;
                                if !seen.contains(&device) {
                                    seen.push(device);
                                }
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
                        // Judged after the wave's other outcomes (below).
                        JobOutcome::DeviceUnreachable { error } => {
                            unreachable.push((job_id, token, error));
                            0
                        }
                    };
                }
                // A device found unreachable fails what is still open of its jobs once the
                // wave's other outcomes are in, whatever order they finished in: a job FCM
                // accepted in the same wave stays delivered (PostgreSQL writes a wave so too).
                for (job_id, token, error) in unreachable {
                    // Only the holder of the lease may judge the device: a stale verdict must
                    // not unpair a device another relay reached since.
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
                    )?;
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
