//! Heartbeats on PostgreSQL (SPEC §1.18), for any number of relays at once. A ping and a
//! failure lock the heartbeat's row first; the maintenance beat's claim of a late one is a
//! conditional `UPDATE` (still `up`, same deadline), which waits for any other claim of the
//! row and then finds it taken: every relay may look for due heartbeats, exactly one commits
//! each late notification, and it commits it in the transaction that makes the heartbeat
//! `late` — a relay that dies before its commit leaves the heartbeat `up` for the next beat.

use super::PgStore;
use super::streams::stream_place;
use crate::store::contract::{Basics, Heartbeats};
use crate::store::heartbeats::*;
use crate::store::model::{JobState, NewSend, StreamPlace, responses_column};
use crate::store::{Result, StoreError};
use tokio_postgres::{GenericClient, Row, Transaction};

const COLUMNS: &str =
    "user_id, name, every_ms, grace_ms, grace_set, state, last_ping_at, token_id, source";

fn record(r: &Row) -> Result<HeartbeatRecord> {
    let state: String = r.get(5);
    Ok(HeartbeatRecord {
        user_id: r.get(0),
        name: r.get(1),
        every_ms: r.get(2),
        grace_ms: r.get(3),
        grace_set: r.get(4),
        state: HeartbeatState::parse(&state).ok_or_else(|| {
            StoreError::Db(format!("unknown heartbeat state '{state}' in the database"))
        })?,
        last_ping_at: r.get(6),
        token_id: r.get(7),
        source: r.get(8),
    })
}

async fn write(c: &Transaction<'_>, hb: &HeartbeatRecord) -> Result<()> {
    c.execute(
        "INSERT INTO heartbeats (user_id, name, every_ms, grace_ms, grace_set, state, last_ping_at, alarm_at, token_id, source) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (user_id, name) DO UPDATE SET \
         every_ms = EXCLUDED.every_ms, grace_ms = EXCLUDED.grace_ms, grace_set = EXCLUDED.grace_set, \
         state = EXCLUDED.state, last_ping_at = EXCLUDED.last_ping_at, alarm_at = EXCLUDED.alarm_at, \
         token_id = EXCLUDED.token_id, source = EXCLUDED.source",
        &[
            &hb.user_id,
            &hb.name,
            &hb.every_ms,
            &hb.grace_ms,
            &hb.grace_set,
            &hb.state.as_str(),
            &hb.last_ping_at,
            &hb.alarm_at(),
            &hb.token_id,
            &hb.source,
        ],
    )
    .await?;
    Ok(())
}

/// The row of the owner's heartbeat, locked until the transaction ends.
async fn lock_one(
    c: &Transaction<'_>,
    user_id: i64,
    name: &str,
) -> Result<Option<HeartbeatRecord>> {
    find(c, user_id, name, " FOR UPDATE").await
}

/// The owner's heartbeat `name`, the query followed by `lock` (empty for a plain read).
async fn find(
    c: &impl GenericClient,
    user_id: i64,
    name: &str,
    lock: &str,
) -> Result<Option<HeartbeatRecord>> {
    c.query_opt(
        &format!("SELECT {COLUMNS} FROM heartbeats WHERE user_id = $1 AND name = $2{lock}"),
        &[&user_id, &name],
    )
    .await?
    .as_ref()
    .map(record)
    .transpose()
}

/// The message and one job per target, after the owner's unfinished jobs with its key are
/// superseded (SPEC §1.15): what `reflecto_accept` writes for an accepted send, without its
/// idempotency record and its charges, since the relay's own notifications are charged to no
/// limit (§1.18).
async fn insert_message(c: &Transaction<'_>, send: &NewSend) -> Result<()> {
    if let Some(key) = &send.key {
        c.execute(
            "UPDATE jobs SET state = 'superseded', lease_until = NULL, updated_at = $3 \
             WHERE state IN ('queued', 'leased', 'pending') AND kind = 'message' \
             AND message_id IN (SELECT m.id FROM messages m WHERE m.user_id = $1 AND m.key = $2)",
            &[&send.user_id, key, &send.created_at],
        )
        .await?;
    }
    c.execute(
        "INSERT INTO messages (id, user_id, token_id, envelope, created_at, expires_at, key, responses) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &send.message_id,
            &send.user_id,
            &send.token_id,
            &send.envelope,
            &send.created_at,
            &send.expires_at,
            &send.key,
            &responses_column(&send.responses),
        ],
    )
    .await?;
    for target in &send.targets {
        // A desktop device removed since the targets were read gets no job.
        let seq = match stream_place(c, &target.device_id, target.device_type).await? {
            StreamPlace::Gone => continue,
            place => place.column(),
        };
        c.execute(
            "INSERT INTO jobs (message_id, device_id, device_type, state, run_at, seq, expires_at, updated_at, payload, payload_kind, priority) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $5, $8, $9, $10)",
            &[
                &send.message_id,
                &target.device_id,
                &target.device_type.as_str(),
                &JobState::initial(target.device_type).as_str(),
                &send.created_at,
                &seq,
                &send.expires_at,
                &target.payload.as_ref().map(|p| p.bytes.as_slice()),
                &target.payload.as_ref().map(|p| p.kind.as_str()),
                &send.priority.as_str(),
            ],
        )
        .await?;
    }
    Ok(())
}

impl PgStore {
    /// Wakes this relay's worker and streams, and the other relays through `NOTIFY`.
    fn after_notification(&self, send: &NewSend) {
        self.wakeups().after_accept(&send.targets);
        self.inner.notifier.after_accept(&send.targets);
    }
}

impl Heartbeats for PgStore {
    async fn ping_heartbeat(&self, ping: Ping, back: Option<NewSend>) -> Result<PingOutcome> {
        let mut client = self.writer().await?;
        let tx = client.transaction().await?;
        let before = lock_one(&tx, ping.user_id, &ping.name).await?;
        let heartbeat = match ping.apply(before.as_ref()) {
            Ok(hb) => hb,
            Err(refusal) => return Ok(PingOutcome::Refused(refusal)),
        };
        let was = before.as_ref().map(|b| b.state);
        let mut sent = None;
        if matches!(was, Some(HeartbeatState::Late | HeartbeatState::Failed)) {
            let Some(back) = back else {
                return Ok(PingOutcome::NeedsBack(before.expect("a state was read")));
            };
            insert_message(&tx, &back).await?;
            sent = Some(back);
        }
        write(&tx, &heartbeat).await?;
        tx.commit().await?;
        if let Some(sent) = &sent {
            self.after_notification(sent);
        }
        Ok(PingOutcome::Pinged { heartbeat, was })
    }

    async fn fail_heartbeat(
        &self,
        user_id: i64,
        name: &str,
        token_id: &str,
        source: &str,
        send: NewSend,
    ) -> Result<Option<HeartbeatRecord>> {
        let mut client = self.writer().await?;
        let tx = client.transaction().await?;
        let Some(before) = lock_one(&tx, user_id, name).await? else {
            return Ok(None);
        };
        let failed = HeartbeatRecord {
            state: HeartbeatState::Failed,
            token_id: token_id.to_owned(),
            source: source.to_owned(),
            ..before
        };
        insert_message(&tx, &send).await?;
        write(&tx, &failed).await?;
        tx.commit().await?;
        self.after_notification(&send);
        Ok(Some(failed))
    }

    async fn heartbeat(&self, user_id: i64, name: &str) -> Result<Option<HeartbeatRecord>> {
        let client = self.client().await?;
        let client: &tokio_postgres::Client = &client;
        find(client, user_id, name, "").await
    }

    async fn heartbeats_of(&self, user_id: i64) -> Result<Vec<HeartbeatRecord>> {
        let client = self.client().await?;
        client
            .query(
                &format!("SELECT {COLUMNS} FROM heartbeats WHERE user_id = $1 ORDER BY name"),
                &[&user_id],
            )
            .await?
            .iter()
            .map(record)
            .collect()
    }

    async fn delete_heartbeat(&self, user_id: i64, name: &str) -> Result<bool> {
        let client = self.writer().await?;
        Ok(client
            .execute(
                "DELETE FROM heartbeats WHERE user_id = $1 AND name = $2",
                &[&user_id, &name],
            )
            .await?
            > 0)
    }

    async fn due_heartbeats(&self, now: i64, limit: usize) -> Result<Vec<HeartbeatRecord>> {
        let client = self.client().await?;
        client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM heartbeats WHERE state = 'up' AND alarm_at <= $1 \
                     ORDER BY alarm_at LIMIT $2"
                ),
                &[&now, &(limit as i64)],
            )
            .await?
            .iter()
            .map(record)
            .collect()
    }

    async fn claim_late_heartbeat(&self, due: HeartbeatRecord, send: NewSend) -> Result<bool> {
        let mut client = self.writer().await?;
        let tx = client.transaction().await?;
        // Waits for a concurrent claim or ping of the row, then re-checks the condition on
        // what it committed: the second claimer updates nothing.
        let claimed = tx
            .execute(
                "UPDATE heartbeats SET state = 'late' WHERE user_id = $1 AND name = $2 \
                 AND state = 'up' AND alarm_at = $3",
                &[&due.user_id, &due.name, &due.alarm_at()],
            )
            .await?
            == 1;
        if !claimed {
            return Ok(false);
        }
        insert_message(&tx, &send).await?;
        tx.commit().await?;
        self.after_notification(&send);
        Ok(true)
    }
}
