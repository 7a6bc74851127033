//! Clearing and acknowledging a message on PostgreSQL (SPEC §1.15, §1.16), for any number of
//! relays at once. Each is one transaction that first locks the message's row, so two clears,
//! or a clear and an acknowledgement, on two relays queue one clear job per device, never
//! two, and exactly one acknowledgement is first. The clear jobs wake this relay at once and
//! the others through `NOTIFY` (a stream held by another relay gets its clear event within
//! its wake-up, or its 1 s poll).

use super::devices_pairing::SEEN_SQL;
use super::streams::stream_place;
use super::{PgStore, retry_contended};
use crate::api::DeviceType;
use crate::store::contract::{Basics, ClearsAcks};
use crate::store::model::*;
use crate::store::{Result, StoreError};
use tokio_postgres::Transaction;

impl ClearsAcks for PgStore {
    async fn clear_message(
        &self,
        user_id: i64,
        which: MessageRef,
        now: i64,
    ) -> Result<Option<Cleared>> {
        retry_contended(|| self.clear_message_once(user_id, &which, now)).await
    }

    async fn acknowledge(
        &self,
        message_id: &str,
        device_id: &str,
        response: Option<String>,
        now: i64,
    ) -> Result<AckOutcome> {
        // Each attempt borrows the response: nothing is copied until an attempt records it.
        retry_contended(|| self.acknowledge_once(message_id, device_id, response.as_deref(), now))
            .await
    }
}

impl PgStore {
    async fn clear_message_once(
        &self,
        user_id: i64,
        which: &MessageRef,
        now: i64,
    ) -> Result<Option<Cleared>> {
        let mut client = self.writer().await?;
        let tx = client.transaction().await?;
        let row = match which {
            MessageRef::Id(id) => {
                tx.query_opt(
                    "SELECT id FROM messages WHERE id = $1 AND user_id = $2 FOR UPDATE",
                    &[id, &user_id],
                )
                .await?
            }
            MessageRef::Key(key) => {
                tx.query_opt(
                    "SELECT id FROM messages WHERE user_id = $1 AND key = $2 \
                     ORDER BY created_at DESC, id DESC LIMIT 1 FOR UPDATE",
                    &[&user_id, key],
                )
                .await?
            }
        };
        let Some(row) = row else { return Ok(None) };
        let id: String = row.get(0);
        tx.execute(
            "UPDATE messages SET cleared_at = COALESCE(cleared_at, $2) WHERE id = $1",
            &[&id, &now],
        )
        .await?;
        let cleared = clear_in(&tx, id, None, now).await?;
        tx.commit().await?;
        self.after_clear(&cleared);
        Ok(Some(cleared))
    }

    async fn acknowledge_once(
        &self,
        message_id: &str,
        device_id: &str,
        response: Option<&str>,
        now: i64,
    ) -> Result<AckOutcome> {
        let mut client = self.writer().await?;
        let tx = client.transaction().await?;
        // The message's row is the lock every clear and acknowledgement of it takes first.
        let Some(row) = tx
            .query_opt(
                "SELECT m.responses, m.acknowledged_at FROM messages m WHERE m.id = $1 AND EXISTS \
                 (SELECT 1 FROM jobs j WHERE j.message_id = m.id AND j.device_id = $2 AND j.kind = 'message') \
                 FOR UPDATE",
                &[&message_id, &device_id],
            )
            .await?
        else {
            return Ok(AckOutcome::NotFound);
        };
        let responses: Option<String> = row.get(0);
        if let Some(r) = response
            && !offers(responses.as_deref(), r)
        {
            return Ok(AckOutcome::InvalidResponse);
        }
        tx.execute(
            "UPDATE jobs SET acknowledged_at = $3, response = $4 \
             WHERE message_id = $1 AND device_id = $2 AND kind = 'message' AND acknowledged_at IS NULL",
            &[&message_id, &device_id, &now, &response],
        )
        .await?;
        let won = row.get::<_, Option<i64>>(1).is_none();
        let (first, cleared) = if won {
            tx.execute(
                "UPDATE messages SET acknowledged_at = $2, acknowledged_by = $3, acknowledged_response = $4 WHERE id = $1",
                &[&message_id, &now, &device_id, &response],
            )
            .await?;
            let first = Acknowledgement {
                at: now,
                device_id: device_id.to_owned(),
                response: response.map(str::to_owned),
            };
            super::urgent::acknowledged_callback(&tx, message_id, now).await?;
            let cleared = clear_in(&tx, message_id.to_owned(), Some(device_id), now).await?;
            (first, Some(cleared))
        } else {
            let row = tx
                .query_one(
                    "SELECT acknowledged_at, acknowledged_by, acknowledged_response FROM messages WHERE id = $1",
                    &[&message_id],
                )
                .await?;
            let first = Acknowledgement {
                at: row.get(0),
                device_id: row.get(1),
                response: row.get(2),
            };
            (first, None)
        };
        // The device's row last: the worker locks a job, then its device, so taking a device
        // before the other devices' jobs (in `clear_in`) could deadlock with it.
        tx.execute(SEEN_SQL, &[&device_id, &now]).await?;
        tx.commit().await?;
        match &cleared {
            Some(cleared) => self.after_clear(cleared),
            None => {
                self.wakeups().wake_statuses();
                self.inner.notifier.after_status_change(&[]);
            }
        }
        Ok(AckOutcome::Acknowledged { first, cleared })
    }

    /// The streams and the worker that got clear jobs, and every held status request, here
    /// and on every other relay.
    fn after_clear(&self, cleared: &Cleared) {
        self.wakeups().after_accept(&cleared.targets);
        self.wakeups().wake_statuses();
        self.inner.notifier.after_status_change(&cleared.targets);
    }
}

/// Clears `message_id` on its targets (all but `except`), as the SQLite backend's `clear_in`
/// does: a job that has not ended is cancelled; a device that received the message (or whose
/// job a worker holds, so its send may have arrived) gets one clear job. The caller holds the
/// message's row lock.
async fn clear_in(
    tx: &Transaction<'_>,
    message_id: String,
    except: Option<&str>,
    now: i64,
) -> Result<Cleared> {
    super::urgent::stop_repeats(tx, &message_id, now).await?;
    let rows = tx
        .query(
            "SELECT j.device_id, j.device_type, j.state FROM jobs j \
             WHERE j.message_id = $1 AND j.kind = 'message' AND j.device_id IS DISTINCT FROM $2 \
             AND j.state IN ('queued', 'leased', 'pending', 'delivered') \
             AND NOT EXISTS (SELECT 1 FROM jobs k WHERE k.message_id = j.message_id AND k.device_id = j.device_id AND k.kind = 'clear') \
             ORDER BY j.device_id FOR UPDATE OF j",
            &[&message_id, &except],
        )
        .await?;
    let mut cleared = Cleared {
        message_id,
        cancelled: 0,
        cleared: 0,
        targets: Vec::new(),
    };
    for row in rows {
        let device_id: String = row.get(0);
        let (device_type, state): (&str, &str) = (row.get(1), row.get(2));
        let device_type = DeviceType::parse(device_type)
            .ok_or_else(|| StoreError::Db(format!("unknown device type '{device_type}'")))?;
        let state = JobState::parse(state)
            .ok_or_else(|| StoreError::Db(format!("unknown job state '{state}'")))?;
        // The clear is queued first, from the job's row as it is: one for a job a worker
        // holds is due when that lease ends, so it cannot reach the device before the message.
        let job = MessageJob {
            message_id: &cleared.message_id,
            device_id: &device_id,
            device_type,
        };
        if matches!(state, JobState::Delivered | JobState::Leased)
            && job.copy(tx, QUEUE_CLEAR, now, now + CLEAR_TTL_MS).await?
        {
            cleared.cleared += 1;
            cleared
                .targets
                .push(Target::clear(device_id.clone(), device_type));
        }
        if state != JobState::Delivered {
            tx.execute(
                "UPDATE jobs SET state = 'cancelled', lease_until = NULL, updated_at = $3 \
                 WHERE message_id = $1 AND device_id = $2 AND kind = 'message'",
                &[&cleared.message_id, &device_id, &now],
            )
            .await?;
            cleared.cancelled += 1;
        }
    }
    Ok(cleared)
}

/// As the SQLite backend's: one clear job copied from a device's message job, due now or when
/// the message job's lease ends.
const QUEUE_CLEAR: &str = "INSERT INTO jobs (message_id, device_id, device_type, state, run_at, seq, expires_at, updated_at, priority, kind) \
     SELECT message_id, device_id, device_type, $3, COALESCE(lease_until, $4), $5, $6, $4, priority, 'clear' FROM jobs \
     WHERE message_id = $1 AND device_id = $2 AND kind = 'message'";

/// As the SQLite backend's: one device's job of a message, from which a clear or a repeat for
/// that device is copied.
pub(super) struct MessageJob<'a> {
    pub message_id: &'a str,
    pub device_id: &'a str,
    pub device_type: DeviceType,
}

impl MessageJob<'_> {
    /// Runs `insert`, which copies this message job as a new job: `$1` message, `$2` device,
    /// `$3` the new job's first state, `$4` now, `$5` its place on a desktop's stream, `$6` its
    /// expiry. False, and nothing queued, for a desktop device removed since.
    pub async fn copy(
        &self,
        tx: &Transaction<'_>,
        insert: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<bool> {
        let seq = match stream_place(tx, self.device_id, self.device_type).await? {
            StreamPlace::Gone => return Ok(false),
            place => place.column(),
        };
        let state = JobState::initial(self.device_type).as_str();
        tx.execute(
            insert,
            &[
                &self.message_id,
                &self.device_id,
                &state,
                &now,
                &seq,
                &expires_at,
            ],
        )
        .await?;
        Ok(true)
    }
}
