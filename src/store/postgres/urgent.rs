//! Urgent messages on PostgreSQL (SPEC §1.17, §3): the repeat round of every relay's
//! maintenance beat takes due messages with `FOR UPDATE … SKIP LOCKED` on both the `urgent`
//! row and the message's row (the lock every clear and acknowledgement takes first), so a
//! due repeat is scheduled by one relay once, and a clear or acknowledgement either stops it
//! before it is taken or waits for it and then cancels the repeats it queued.

use super::PgStore;
use super::clears_acks::MessageJob;
use crate::api::DeviceType;
use crate::store::contract::{Basics, Urgent};
use crate::store::model::*;
use crate::store::{Result, StoreError};
use tokio_postgres::{GenericClient, Transaction};

impl Urgent for PgStore {
    async fn schedule_repeats(&self, now: i64) -> Result<RepeatRound> {
        let mut client = self.writer().await?;
        let tx = client.transaction().await?;
        let due = tx
            .query(
                "SELECT u.message_id, u.retry_ms, u.expires_at FROM urgent u JOIN messages m ON m.id = u.message_id \
                 WHERE u.next_at IS NOT NULL AND u.next_at <= $1 \
                 AND m.acknowledged_at IS NULL AND m.cleared_at IS NULL \
                 ORDER BY u.next_at LIMIT 500 FOR UPDATE OF u, m SKIP LOCKED",
                &[&now],
            )
            .await?;
        let mut round = RepeatRound::default();
        tx.execute(
            "UPDATE urgent SET callback_type = 'expired', callback_run_at = $1, callback_give_up_at = $1::BIGINT + $2 \
             WHERE callback IS NOT NULL AND callback_type IS NULL AND expires_at IS NOT NULL AND expires_at <= $1 \
             AND message_id IN (SELECT id FROM messages WHERE acknowledged_at IS NULL)",
            &[&now, &CALLBACK_WINDOW_MS],
        )
        .await?;
        for row in due {
            let (message_id, retry_ms, expires_at): (String, i64, i64) =
                (row.get(0), row.get(1), row.get(2));
            if expires_at <= now {
                tx.execute(
                    "UPDATE urgent SET next_at = NULL WHERE message_id = $1",
                    &[&message_id],
                )
                .await?;
                round.expired += 1;
                continue;
            }
            round
                .targets
                .extend(repeat_in(&tx, &message_id, expires_at, now).await?);
            tx.execute(
                "UPDATE urgent SET repeats = repeats + 1, \
                 next_at = CASE WHEN next_at + $2 > $3 THEN next_at + $2 ELSE $3::BIGINT + $2 END \
                 WHERE message_id = $1",
                &[&message_id, &retry_ms, &now],
            )
            .await?;
        }
        tx.commit().await?;
        if !round.targets.is_empty() {
            self.wakeups().after_accept(&round.targets);
            self.inner.notifier.after_accept(&round.targets);
        }
        Ok(round)
    }

    async fn receipt(&self, receipt: &str) -> Result<Option<ReceiptRecord>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT u.message_id, m.user_id, us.name, m.acknowledged_at, d.label, \
                 (SELECT MAX(j.updated_at) FROM jobs j WHERE j.message_id = u.message_id AND j.kind <> 'clear' AND j.state = 'delivered'), \
                 u.expires_at, CASE WHEN u.callback_state = 'delivered' THEN u.callback_at END \
                 FROM urgent u JOIN messages m ON m.id = u.message_id JOIN users us ON us.id = m.user_id \
                 LEFT JOIN devices d ON d.id = m.acknowledged_by WHERE u.receipt = $1",
                &[&receipt],
            )
            .await?;
        Ok(row.map(|r| ReceiptRecord {
            message_id: r.get(0),
            user_id: r.get(1),
            user: r.get(2),
            acknowledged_at: r.get(3),
            acknowledged_by_device: r.get(4),
            last_delivered_at: r.get(5),
            expires_at: r.get::<_, Option<i64>>(6).unwrap_or_default(),
            called_back_at: r.get(7),
        }))
    }

    async fn receipt_of(&self, message_id: &str) -> Result<Option<String>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT receipt FROM urgent WHERE message_id = $1",
                &[&message_id],
            )
            .await?;
        Ok(row.and_then(|r| r.get(0)))
    }

    async fn claim_callbacks(
        &self,
        now: i64,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<CallbackJob>> {
        let rows = self
            .writer()
            .await?
            .query(
                "UPDATE urgent u SET callback_lease_until = $1::BIGINT + $2, callback_attempts = u.callback_attempts + 1 \
                 FROM messages m JOIN tokens t ON t.id = m.token_id \
                 WHERE m.id = u.message_id AND u.message_id IN (SELECT message_id FROM urgent WHERE callback_run_at IS NOT NULL \
                 AND callback_run_at <= $1 AND (callback_lease_until IS NULL OR callback_lease_until < $1) LIMIT $3 FOR UPDATE SKIP LOCKED) \
                 RETURNING u.message_id, u.callback, u.callback_type, u.callback_attempts, u.callback_give_up_at, \
                 t.hash, m.acknowledged_at, m.acknowledged_by, m.acknowledged_response",
                &[&now, &lease_ms, &(limit as i64)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| CallbackJob {
                message_id: r.get(0),
                url: r.get(1),
                kind: r.get(2),
                attempts: i64::from(r.get::<_, i32>(3)),
                give_up_at: r.get(4),
                key: r.get(5),
                acknowledged: r
                    .get::<_, Option<i64>>(6)
                    .zip(r.get::<_, Option<String>>(7))
                    .map(|(at, device_id)| Acknowledgement {
                        at,
                        device_id,
                        response: r.get(8),
                    }),
            })
            .collect())
    }

    async fn complete_callback(
        &self,
        message_id: &str,
        outcome: CallbackOutcome,
        now: i64,
    ) -> Result<()> {
        let (state, run_at, at) = outcome.columns(now);
        self.writer()
            .await?
            .execute(
                "UPDATE urgent SET callback_state = COALESCE($2, callback_state), callback_run_at = $3, \
                 callback_at = COALESCE($4, callback_at), callback_lease_until = NULL WHERE message_id = $1",
                &[&message_id, &state, &run_at, &at],
            )
            .await?;
        self.wakeups().wake_statuses();
        Ok(())
    }

    async fn cancel_receipt(&self, receipt: &str, user_id: i64, now: i64) -> Result<bool> {
        let mut client = self.writer().await?;
        let tx = client.transaction().await?;
        // The message's row first, as every clear and acknowledgement takes it.
        let Some(row) = tx
            .query_opt(
                "SELECT m.id FROM messages m JOIN urgent u ON u.message_id = m.id \
                 WHERE u.receipt = $1 AND m.user_id = $2 FOR UPDATE OF m",
                &[&receipt, &user_id],
            )
            .await?
        else {
            return Ok(false);
        };
        let id: String = row.get(0);
        stop_repeats(&tx, &id, now).await?;
        tx.commit().await?;
        self.wakeups().wake_statuses();
        Ok(true)
    }
}

/// As the SQLite backend's `repeat_in`: one repeat per device that has the message, the
/// device's repeat it has not taken yet superseded.
async fn repeat_in(
    tx: &Transaction<'_>,
    message_id: &str,
    expires_at: i64,
    now: i64,
) -> Result<Vec<Target>> {
    let rows = tx
        .query(
            "SELECT j.device_id, j.device_type FROM jobs j JOIN devices d ON d.id = j.device_id AND d.reachable \
             WHERE j.message_id = $1 AND j.kind = 'message' AND j.state IN ('leased', 'pending', 'delivered') \
             ORDER BY j.device_id",
            &[&message_id],
        )
        .await?;
    let mut targets = Vec::with_capacity(rows.len());
    for row in rows {
        let device_id: String = row.get(0);
        let device_type: &str = row.get(1);
        let device_type = DeviceType::parse(device_type)
            .ok_or_else(|| StoreError::Db(format!("unknown device type '{device_type}'")))?;
        tx.execute(
            "UPDATE jobs SET state = 'superseded', lease_until = NULL, updated_at = $3 \
             WHERE message_id = $1 AND device_id = $2 AND kind = 'repeat' AND state IN ('queued', 'pending')",
            &[&message_id, &device_id, &now],
        )
        .await?;
        let job = MessageJob {
            message_id,
            device_id: &device_id,
            device_type,
        };
        let queued = job
            .copy(
                tx,
                "INSERT INTO jobs (message_id, device_id, device_type, state, run_at, seq, expires_at, updated_at, payload, payload_kind, priority, kind) \
                 SELECT message_id, device_id, device_type, $3, $4, $5, LEAST(expires_at, $6), $4, payload, payload_kind, priority, 'repeat' FROM jobs \
                 WHERE message_id = $1 AND device_id = $2 AND kind = 'message'",
                now,
                expires_at,
            )
            .await?;
        if queued {
            targets.push(Target::clear(device_id, device_type));
        }
    }
    Ok(targets)
}

/// The accept's `urgent` row, written by the same statement as `reflecto_accept` (a
/// data-modifying CTE: one transaction, and only when the send was accepted). Parameters
/// follow the accept's 22: `$23` retry, `$24` expire, `$25` receipt, `$26` callback.
pub(super) const ACCEPT_WITH_URGENCY: &str = "WITH a AS (SELECT * FROM reflecto_accept($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
     $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)), \
     u AS (INSERT INTO urgent (message_id, retry_ms, expire_ms, expires_at, next_at, receipt, callback, callback_state) \
     SELECT $1, $23::BIGINT, $24::BIGINT, $5::BIGINT + $24::BIGINT, $5::BIGINT + $23::BIGINT, $25::TEXT, $26::TEXT, \
     CASE WHEN $26::TEXT IS NULL THEN NULL ELSE 'pending' END FROM a WHERE a.outcome = 'accepted') \
     SELECT * FROM a";

/// The first acknowledgement makes its callback due, if the message has one.
pub(super) async fn acknowledged_callback(
    tx: &Transaction<'_>,
    message_id: &str,
    now: i64,
) -> Result<()> {
    tx.execute(
        "UPDATE urgent SET callback_type = 'acknowledged', callback_run_at = $2, callback_give_up_at = $2::BIGINT + $3 \
         WHERE message_id = $1 AND callback IS NOT NULL AND callback_type IS NULL",
        &[&message_id, &now, &CALLBACK_WINDOW_MS],
    )
    .await?;
    Ok(())
}

/// A clear or the first acknowledgement stops the repeats (the caller holds the message's
/// row lock, which the repeat round takes too).
pub(super) async fn stop_repeats(tx: &Transaction<'_>, message_id: &str, now: i64) -> Result<()> {
    tx.execute(
        "UPDATE urgent SET next_at = NULL WHERE message_id = $1",
        &[&message_id],
    )
    .await?;
    tx.execute(
        "UPDATE jobs SET state = 'cancelled', lease_until = NULL, updated_at = $2 \
         WHERE message_id = $1 AND kind = 'repeat' AND state IN ('queued', 'leased', 'pending')",
        &[&message_id, &now],
    )
    .await?;
    Ok(())
}

/// The status's `repeat` and `callback` (SPEC §1.17).
pub(super) async fn urgent_status(
    c: &impl GenericClient,
    message_id: &str,
) -> Result<(Option<RepeatStatus>, Option<CallbackStatus>)> {
    let Some(row) = c
        .query_opt(
            "SELECT retry_ms, expire_ms, expires_at, repeats, callback_state, callback_at FROM urgent WHERE message_id = $1",
            &[&message_id],
        )
        .await?
    else {
        return Ok((None, None));
    };
    let repeat = match (
        row.get::<_, Option<i64>>(0),
        row.get::<_, Option<i64>>(1),
        row.get::<_, Option<i64>>(2),
    ) {
        (Some(retry_ms), Some(expire_ms), Some(expires_at)) => Some(RepeatStatus {
            retry_ms,
            expire_ms,
            expires_at,
            repeats: row.get(3),
        }),
        _ => None,
    };
    let callback = row
        .get::<_, Option<&str>>(4)
        .and_then(CallbackState::parse)
        .map(|state| CallbackStatus {
            state,
            at: row.get(5),
        });
    Ok((repeat, callback))
}
