//! Urgent messages on the embedded backend (SPEC §1.17): the `urgent` row an accepted send
//! writes, the maintenance beat's repeat round, and what a clear or an acknowledgement stops.
//! The writer runs one closure at a time, so a due repeat is scheduled once.

use super::SqliteStore;
use super::clears_acks::MessageJob;
use crate::api::DeviceType;
use crate::store::Result;
use crate::store::contract::{Basics, Urgent};
use crate::store::model::*;
use rusqlite::{Connection, OptionalExtension, params};

impl Urgent for SqliteStore {
    async fn schedule_repeats(&self, now: i64) -> Result<RepeatRound> {
        let round = self
            .writer()
            .write(move |c| {
                let due: Vec<(String, i64, i64)> = c
                    .prepare_cached(
                        "SELECT u.message_id, u.retry_ms, u.expires_at FROM urgent u JOIN messages m ON m.id = u.message_id \
                         WHERE u.next_at IS NOT NULL AND u.next_at <= ?1 \
                         AND m.acknowledged_at IS NULL AND m.cleared_at IS NULL ORDER BY u.next_at",
                    )?
                    .query_map([now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                let mut round = RepeatRound::default();
                c.prepare_cached(EXPIRED_CALLBACKS)?.execute(params![now, CALLBACK_WINDOW_MS])?;
                for (message_id, retry_ms, expires_at) in due {
                    if expires_at <= now {
                        c.prepare_cached("UPDATE urgent SET next_at = NULL WHERE message_id = ?1")?
                            .execute([&message_id])?;
                        round.expired += 1;
                        continue;
                    }
                    round.targets.extend(repeat_in(c, &message_id, expires_at, now)?);
                    c.prepare_cached(
                        "UPDATE urgent SET repeats = repeats + 1, \
                         next_at = CASE WHEN next_at + ?2 > ?3 THEN next_at + ?2 ELSE ?3 + ?2 END \
                         WHERE message_id = ?1",
                    )?
                    .execute(params![message_id, retry_ms, now])?;
                }
                Ok(round)
            })
            .await?;
        if !round.targets.is_empty() {
            self.wakeups().after_accept(&round.targets);
        }
        Ok(round)
    }

    async fn receipt(&self, receipt: &str) -> Result<Option<ReceiptRecord>> {
        // One row by a unique index, and the message's jobs by theirs.
        self.lookup(|c| {
            Ok(c.prepare_cached(RECEIPT_SQL)?
                .query_row([receipt], |r| {
                    Ok(ReceiptRecord {
                        message_id: r.get(0)?,
                        user_id: r.get(1)?,
                        user: r.get(2)?,
                        acknowledged_at: r.get(3)?,
                        acknowledged_by_device: r.get(4)?,
                        last_delivered_at: r.get(5)?,
                        expires_at: r.get::<_, Option<i64>>(6)?.unwrap_or_default(),
                        called_back_at: r.get(7)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    async fn receipt_of(&self, message_id: &str) -> Result<Option<String>> {
        self.lookup(|c| {
            Ok(
                c.prepare_cached("SELECT receipt FROM urgent WHERE message_id = ?1")?
                    .query_row([message_id], |r| r.get::<_, Option<String>>(0))
                    .optional()?
                    .flatten(),
            )
        })
        .await
    }

    async fn claim_callbacks(
        &self,
        now: i64,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<CallbackJob>> {
        self.writer()
            .write(move |c| {
                let rows = c
                    .prepare_cached(
                        "UPDATE urgent SET callback_lease_until = ?1 + ?2, callback_attempts = callback_attempts + 1 \
                         WHERE message_id IN (SELECT message_id FROM urgent WHERE callback_run_at IS NOT NULL AND callback_run_at <= ?1 \
                         AND (callback_lease_until IS NULL OR callback_lease_until < ?1) LIMIT ?3) \
                         RETURNING message_id, callback, callback_type, callback_attempts, callback_give_up_at",
                    )?
                    .query_map(params![now, lease_ms, limit as i64], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?, r.get::<_, i64>(4)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let mut jobs = Vec::with_capacity(rows.len());
                for (message_id, url, kind, attempts, give_up_at) in rows {
                    let (key, at, by, response): (Vec<u8>, Option<i64>, Option<String>, Option<String>) = c
                        .prepare_cached(
                            "SELECT t.hash, m.acknowledged_at, m.acknowledged_by, m.acknowledged_response \
                             FROM messages m JOIN tokens t ON t.id = m.token_id WHERE m.id = ?1",
                        )?
                        .query_row([&message_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
                    jobs.push(CallbackJob {
                        message_id,
                        url,
                        kind,
                        key,
                        acknowledged: at.zip(by).map(|(at, device_id)| Acknowledgement { at, device_id, response }),
                        attempts,
                        give_up_at,
                    });
                }
                Ok(jobs)
            })
            .await
    }

    async fn complete_callback(
        &self,
        message_id: &str,
        outcome: CallbackOutcome,
        now: i64,
    ) -> Result<()> {
        let message_id = message_id.to_owned();
        self.writer()
            .write(move |c| {
                let (state, run_at, at) = outcome.columns(now);
                c.prepare_cached(
                    "UPDATE urgent SET callback_state = COALESCE(?2, callback_state), callback_run_at = ?3, \
                     callback_at = COALESCE(?4, callback_at), callback_lease_until = NULL WHERE message_id = ?1",
                )?
                .execute(params![message_id, state, run_at, at])?;
                Ok(())
            })
            .await?;
        self.wakeups().wake_statuses();
        Ok(())
    }

    async fn cancel_receipt(&self, receipt: &str, user_id: i64, now: i64) -> Result<bool> {
        let receipt = receipt.to_owned();
        let found = self
            .writer()
            .write(move |c| {
                let id: Option<String> = c
                    .query_row(
                        "SELECT u.message_id FROM urgent u JOIN messages m ON m.id = u.message_id \
                         WHERE u.receipt = ?1 AND m.user_id = ?2",
                        params![receipt, user_id],
                        |r| r.get(0),
                    )
                    .optional()?;
                let Some(id) = id else { return Ok(false) };
                stop_repeats(c, &id, now)?;
                Ok(true)
            })
            .await?;
        if found {
            self.wakeups().wake_statuses();
        }
        Ok(found)
    }
}

/// Makes the `expired` callback due for every urgent message whose `expire` passed with no
/// acknowledgement (an acknowledgement made its own callback due instead).
const EXPIRED_CALLBACKS: &str = "UPDATE urgent SET callback_type = 'expired', callback_run_at = ?1, callback_give_up_at = ?1 + ?2 \
     WHERE callback IS NOT NULL AND callback_type IS NULL AND expires_at IS NOT NULL AND expires_at <= ?1 \
     AND message_id IN (SELECT id FROM messages WHERE acknowledged_at IS NULL)";

/// The first acknowledgement makes its callback due, if the message has one.
pub(super) fn acknowledged_callback(c: &Connection, message_id: &str, now: i64) -> Result<()> {
    c.prepare_cached(
        "UPDATE urgent SET callback_type = 'acknowledged', callback_run_at = ?2, callback_give_up_at = ?2 + ?3 \
         WHERE message_id = ?1 AND callback IS NOT NULL AND callback_type IS NULL",
    )?
    .execute(params![message_id, now, CALLBACK_WINDOW_MS])?;
    Ok(())
}

/// A receipt's row: the message, its owner, its first acknowledgement and the device's label,
/// its last delivery (first or repeat), its expiry and a delivered callback.
const RECEIPT_SQL: &str = "SELECT u.message_id, m.user_id, us.name, m.acknowledged_at, d.label, \
     (SELECT MAX(j.updated_at) FROM jobs j WHERE j.message_id = u.message_id AND j.kind <> 'clear' AND j.state = 'delivered'), \
     u.expires_at, CASE WHEN u.callback_state = 'delivered' THEN u.callback_at END \
     FROM urgent u JOIN messages m ON m.id = u.message_id JOIN users us ON us.id = m.user_id \
     LEFT JOIN devices d ON d.id = m.acknowledged_by WHERE u.receipt = ?1";

/// Queues one repeat of `message_id` for each device that has (or is being given) the
/// message: a device whose first delivery still waits in the queue gets that one first, and
/// one whose delivery ended otherwise (failed, superseded, cancelled) gets none. A repeat the
/// device has not taken yet is superseded by the new one, so an offline device finds one.
fn repeat_in(c: &Connection, message_id: &str, expires_at: i64, now: i64) -> Result<Vec<Target>> {
    let rows: Vec<(String, DeviceType)> = c
        .prepare_cached(
            "SELECT j.device_id, j.device_type FROM jobs j JOIN devices d ON d.id = j.device_id AND d.reachable = 1 \
             WHERE j.message_id = ?1 AND j.kind = 'message' AND j.state IN ('leased', 'pending', 'delivered') \
             ORDER BY j.device_id",
        )?
        .query_map([message_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut targets = Vec::with_capacity(rows.len());
    for (device_id, device_type) in rows {
        c.prepare_cached(
            "UPDATE jobs SET state = 'superseded', lease_until = NULL, updated_at = ?3 \
             WHERE message_id = ?1 AND device_id = ?2 AND kind = 'repeat' AND state IN ('queued', 'pending')",
        )?
        .execute(params![message_id, device_id, now])?;
        let job = MessageJob {
            message_id,
            device_id: &device_id,
            device_type,
        };
        let queued = job.copy(
            c,
            "INSERT INTO jobs (message_id, device_id, device_type, state, run_at, seq, expires_at, updated_at, payload, payload_kind, priority, kind) \
             SELECT message_id, device_id, device_type, ?3, ?4, ?5, MIN(expires_at, ?6), ?4, payload, payload_kind, priority, 'repeat' FROM jobs \
             WHERE message_id = ?1 AND device_id = ?2 AND kind = 'message'",
            now,
            expires_at,
        )?;
        if queued {
            targets.push(Target::clear(device_id, device_type));
        }
    }
    Ok(targets)
}

/// Writes the send's `urgent` row, inside the accept's commit.
pub(super) fn insert_urgency(c: &Connection, send: &NewSend, urgency: &Urgency) -> Result<()> {
    let repeat = urgency.repeat;
    c.prepare_cached(
        "INSERT INTO urgent (message_id, retry_ms, expire_ms, expires_at, next_at, receipt, callback, callback_state) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        send.message_id,
        repeat.map(|r| r.retry_ms),
        repeat.map(|r| r.expire_ms),
        repeat.map(|r| send.created_at + r.expire_ms),
        repeat.map(|r| send.created_at + r.retry_ms),
        urgency.receipt,
        urgency.callback,
        urgency
            .callback
            .as_ref()
            .map(|_| CallbackState::Pending.as_str()),
    ])?;
    Ok(())
}

/// A clear or the first acknowledgement stops the repeats: no more are scheduled, and those
/// not yet taken by their device are cancelled (on every device, the acknowledging one too).
pub(super) fn stop_repeats(c: &Connection, message_id: &str, now: i64) -> Result<()> {
    c.prepare_cached("UPDATE urgent SET next_at = NULL WHERE message_id = ?1")?
        .execute([message_id])?;
    c.prepare_cached(
        "UPDATE jobs SET state = 'cancelled', lease_until = NULL, updated_at = ?2 \
         WHERE message_id = ?1 AND kind = 'repeat' AND state IN ('queued', 'leased', 'pending')",
    )?
    .execute(params![message_id, now])?;
    Ok(())
}

/// The status's `repeat` and `callback` (SPEC §1.17).
pub(super) fn urgent_status(
    c: &Connection,
    message_id: &str,
) -> Result<(Option<RepeatStatus>, Option<CallbackStatus>)> {
    let row = c
        .prepare_cached(
            "SELECT retry_ms, expire_ms, expires_at, repeats, callback_state, callback_at FROM urgent WHERE message_id = ?1",
        )?
        .query_row([message_id], |r| {
            Ok((
                r.get::<_, Option<i64>>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<i64>>(5)?,
            ))
        })
        .optional()?;
    let Some((retry, expire, expires_at, repeats, callback_state, callback_at)) = row else {
        return Ok((None, None));
    };
    let repeat = match (retry, expire, expires_at) {
        (Some(retry_ms), Some(expire_ms), Some(expires_at)) => Some(RepeatStatus {
            retry_ms,
            expire_ms,
            expires_at,
            repeats,
        }),
        _ => None,
    };
    let callback = callback_state
        .as_deref()
        .and_then(CallbackState::parse)
        .map(|state| CallbackStatus {
            state,
            at: callback_at,
        });
    Ok((repeat, callback))
}
