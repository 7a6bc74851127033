//! Clearing and acknowledging a message on the embedded backend (SPEC §1.15, §1.16): one
//! writer closure each, so a clear, the first acknowledgement and the clear it causes commit
//! together. The writer runs one closure at a time: the first acknowledgement is decided there.

use super::SqliteStore;
use super::streams::stream_place;
use crate::api::DeviceType;
use crate::store::Result;
use crate::store::contract::{Basics, ClearsAcks};
use crate::store::model::*;
use rusqlite::{Connection, OptionalExtension, params};

impl ClearsAcks for SqliteStore {
    async fn clear_message(
        &self,
        user_id: i64,
        which: MessageRef,
        now: i64,
    ) -> Result<Option<Cleared>> {
        let cleared = self
            .writer()
            .write(move |c| {
                let id: Option<String> = match &which {
                    MessageRef::Id(id) => c
                        .query_row(
                            "SELECT id FROM messages WHERE id = ?1 AND user_id = ?2",
                            params![id, user_id],
                            |r| r.get(0),
                        )
                        .optional()?,
                    MessageRef::Key(key) => c
                        .query_row(
                            "SELECT id FROM messages WHERE user_id = ?1 AND key = ?2 \
                             ORDER BY created_at DESC, rowid DESC LIMIT 1",
                            params![user_id, key],
                            |r| r.get(0),
                        )
                        .optional()?,
                };
                let Some(id) = id else { return Ok(None) };
                c.prepare_cached(
                    "UPDATE messages SET cleared_at = COALESCE(cleared_at, ?2) WHERE id = ?1",
                )?
                .execute(params![id, now])?;
                clear_in(c, id, None, now).map(Some)
            })
            .await?;
        if let Some(cleared) = &cleared {
            self.after_clear(cleared);
        }
        Ok(cleared)
    }

    async fn acknowledge(
        &self,
        message_id: &str,
        device_id: &str,
        response: Option<String>,
        now: i64,
    ) -> Result<AckOutcome> {
        let (message_id, device_id) = (message_id.to_owned(), device_id.to_owned());
        let outcome = self
            .writer()
            .write(move |c| {
                let target: Option<Option<String>> = c
                    .query_row(
                        "SELECT m.responses FROM messages m WHERE m.id = ?1 AND EXISTS \
                         (SELECT 1 FROM jobs j WHERE j.message_id = m.id AND j.device_id = ?2 AND j.kind = 'message')",
                        params![message_id, device_id],
                        |r| r.get(0),
                    )
                    .optional()?;
                let Some(responses) = target else {
                    return Ok(AckOutcome::NotFound);
                };
                if let Some(r) = &response
                    && !offers(responses.as_deref(), r)
                {
                    return Ok(AckOutcome::InvalidResponse);
                }
                // The device's own delivery keeps its first acknowledgement.
                c.prepare_cached(
                    "UPDATE jobs SET acknowledged_at = ?3, response = ?4 \
                     WHERE message_id = ?1 AND device_id = ?2 AND kind = 'message' AND acknowledged_at IS NULL",
                )?
                .execute(params![message_id, device_id, now, response])?;
                c.prepare_cached(super::devices_pairing::SEEN_SQL)?
                    .execute(params![device_id, now])?;
                let won = c
                    .prepare_cached(
                        "UPDATE messages SET acknowledged_at = ?2, acknowledged_by = ?3, acknowledged_response = ?4 \
                         WHERE id = ?1 AND acknowledged_at IS NULL",
                    )?
                    .execute(params![message_id, now, device_id, response])?
                    > 0;
                let cleared = if won {
                    super::urgent::acknowledged_callback(c, &message_id, now)?;
                    Some(clear_in(c, message_id.clone(), Some(&device_id), now)?)
                } else {
                    None
                };
                let first = c.query_row(
                    "SELECT acknowledged_at, acknowledged_by, acknowledged_response FROM messages WHERE id = ?1",
                    [&message_id],
                    |r| {
                        Ok(Acknowledgement {
                            at: r.get(0)?,
                            device_id: r.get(1)?,
                            response: r.get(2)?,
                        })
                    },
                )?;
                Ok(AckOutcome::Acknowledged { first, cleared })
            })
            .await?;
        if let AckOutcome::Acknowledged { cleared, .. } = &outcome {
            match cleared {
                Some(cleared) => self.after_clear(cleared),
                None => self.wakeups().wake_statuses(),
            }
        }
        Ok(outcome)
    }
}

impl SqliteStore {
    /// The streams and the worker that got clear jobs, and every held status request.
    fn after_clear(&self, cleared: &Cleared) {
        self.wakeups().after_accept(&cleared.targets);
        self.wakeups().wake_statuses();
    }
}

/// Clears `message_id` on its targets (all but `except`): a job that has not ended is
/// cancelled; a device that received the message gets one clear job. A job leased by a
/// worker is both: its send may have reached the device already, so the device is told to
/// clear it too (a receiver ignores a clear for a message it never showed).
fn clear_in(c: &Connection, message_id: String, except: Option<&str>, now: i64) -> Result<Cleared> {
    super::urgent::stop_repeats(c, &message_id, now)?;
    let rows: Vec<(String, DeviceType, JobState)> = c
        .prepare_cached(
            "SELECT j.device_id, j.device_type, j.state FROM jobs j \
             WHERE j.message_id = ?1 AND j.kind = 'message' AND j.device_id IS NOT ?2 \
             AND j.state IN ('queued', 'leased', 'pending', 'delivered') \
             AND NOT EXISTS (SELECT 1 FROM jobs k WHERE k.message_id = j.message_id AND k.device_id = j.device_id AND k.kind = 'clear') \
             ORDER BY j.device_id",
        )?
        .query_map(params![message_id, except], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut cleared = Cleared {
        message_id,
        cancelled: 0,
        cleared: 0,
        targets: Vec::new(),
    };
    for (device_id, device_type, state) in rows {
        // The clear is queued first, from the job's row as it is: one for a job a worker
        // holds is due when that lease ends, so it cannot reach the device before the message.
        let job = MessageJob {
            message_id: &cleared.message_id,
            device_id: &device_id,
            device_type,
        };
        if matches!(state, JobState::Delivered | JobState::Leased)
            && job.copy(c, QUEUE_CLEAR, now, now + CLEAR_TTL_MS)?
        {
            cleared.cleared += 1;
            cleared
                .targets
                .push(Target::clear(device_id.clone(), device_type));
        }
        if state != JobState::Delivered {
            c.prepare_cached(
                "UPDATE jobs SET state = 'cancelled', lease_until = NULL, updated_at = ?3 \
                 WHERE message_id = ?1 AND device_id = ?2 AND kind = 'message'",
            )?
            .execute(params![cleared.message_id, device_id, now])?;
            cleared.cancelled += 1;
        }
    }
    Ok(cleared)
}

/// One clear job copied from a device's message job (see [`MessageJob::copy`]): due now, or when
/// the message job's lease ends.
const QUEUE_CLEAR: &str = "INSERT INTO jobs (message_id, device_id, device_type, state, run_at, seq, expires_at, updated_at, priority, kind) \
     SELECT message_id, device_id, device_type, ?3, COALESCE(lease_until, ?4), ?5, ?6, ?4, priority, 'clear' FROM jobs \
     WHERE message_id = ?1 AND device_id = ?2 AND kind = 'message'";

/// One device's job of a message, from which a clear or a repeat for that device is copied.
pub(super) struct MessageJob<'a> {
    pub message_id: &'a str,
    pub device_id: &'a str,
    pub device_type: DeviceType,
}

impl MessageJob<'_> {
    /// Runs `insert`, which copies this message job as a new job: `?1` message, `?2` device,
    /// `?3` the new job's first state, `?4` now, `?5` its place on a desktop's stream, `?6` its
    /// expiry. False, and nothing queued, for a desktop device removed since.
    pub fn copy(&self, c: &Connection, insert: &str, now: i64, expires_at: i64) -> Result<bool> {
        let seq = match stream_place(c, self.device_id, self.device_type)? {
            StreamPlace::Gone => return Ok(false),
            place => place.column(),
        };
        c.prepare_cached(insert)?.execute(params![
            self.message_id,
            self.device_id,
            JobState::initial(self.device_type).as_str(),
            now,
            seq,
            expires_at
        ])?;
        Ok(true)
    }
}
