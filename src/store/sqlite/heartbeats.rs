//! Heartbeats on the embedded backend (SPEC §1.18). The writer runs one closure at a time, so
//! a ping, a failure and the maintenance beat's claim of a late one are serialized there, and
//! each commits its notification with the state change that causes it.

use super::SqliteStore;
use super::sends_limits::insert_message;
use crate::store::Result;
use crate::store::contract::{Basics, Heartbeats};
use crate::store::heartbeats::*;
use crate::store::model::NewSend;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, params};

const COLUMNS: &str =
    "user_id, name, every_ms, grace_ms, grace_set, state, last_ping_at, token_id, source";

impl FromSql for HeartbeatState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        HeartbeatState::parse(text)
            .ok_or_else(|| FromSqlError::Other(format!("unknown heartbeat state '{text}'").into()))
    }
}

fn record(r: &Row<'_>) -> rusqlite::Result<HeartbeatRecord> {
    Ok(HeartbeatRecord {
        user_id: r.get(0)?,
        name: r.get(1)?,
        every_ms: r.get(2)?,
        grace_ms: r.get(3)?,
        grace_set: r.get(4)?,
        state: r.get(5)?,
        last_ping_at: r.get(6)?,
        token_id: r.get(7)?,
        source: r.get(8)?,
    })
}

fn read_one(c: &Connection, user_id: i64, name: &str) -> Result<Option<HeartbeatRecord>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM heartbeats WHERE user_id = ?1 AND name = ?2"
    ))?
    .query_row(params![user_id, name], record)
    .optional()?)
}

fn write(c: &Connection, hb: &HeartbeatRecord) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO heartbeats (user_id, name, every_ms, grace_ms, grace_set, state, last_ping_at, alarm_at, token_id, source) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (user_id, name) DO UPDATE SET \
         every_ms = excluded.every_ms, grace_ms = excluded.grace_ms, grace_set = excluded.grace_set, \
         state = excluded.state, last_ping_at = excluded.last_ping_at, alarm_at = excluded.alarm_at, \
         token_id = excluded.token_id, source = excluded.source",
    )?
    .execute(params![
        hb.user_id,
        hb.name,
        hb.every_ms,
        hb.grace_ms,
        hb.grace_set,
        hb.state.as_str(),
        hb.last_ping_at,
        hb.alarm_at(),
        hb.token_id,
        hb.source
    ])?;
    Ok(())
}

impl Heartbeats for SqliteStore {
    async fn ping_heartbeat(&self, ping: Ping, back: Option<NewSend>) -> Result<PingOutcome> {
        let targets = back.as_ref().map(|b| b.targets.clone());
        let outcome = self
            .writer()
            .write(move |c| {
                let before = read_one(c, ping.user_id, &ping.name)?;
                let heartbeat = match ping.apply(before.as_ref()) {
                    Ok(hb) => hb,
                    Err(refusal) => return Ok(PingOutcome::Refused(refusal)),
                };
                let was = before.as_ref().map(|b| b.state);
                if matches!(was, Some(HeartbeatState::Late | HeartbeatState::Failed)) {
                    let Some(back) = &back else {
                        return Ok(PingOutcome::NeedsBack(before.expect("a state was read")));
                    };
                    insert_message(c, back)?;
                }
                write(c, &heartbeat)?;
                Ok(PingOutcome::Pinged { heartbeat, was })
            })
            .await?;
        if let (
            PingOutcome::Pinged {
                was: Some(HeartbeatState::Late | HeartbeatState::Failed),
                ..
            },
            Some(targets),
        ) = (&outcome, targets)
        {
            self.wakeups().after_accept(&targets);
        }
        Ok(outcome)
    }

    async fn fail_heartbeat(
        &self,
        user_id: i64,
        name: &str,
        token_id: &str,
        source: &str,
        send: NewSend,
    ) -> Result<Option<HeartbeatRecord>> {
        let (name, token_id, source) = (name.to_owned(), token_id.to_owned(), source.to_owned());
        let targets = send.targets.clone();
        let failed = self
            .writer()
            .write(move |c| {
                let Some(before) = read_one(c, user_id, &name)? else {
                    return Ok(None);
                };
                let failed = HeartbeatRecord {
                    state: HeartbeatState::Failed,
                    token_id,
                    source,
                    ..before
                };
                insert_message(c, &send)?;
                write(c, &failed)?;
                Ok(Some(failed))
            })
            .await?;
        if failed.is_some() {
            self.wakeups().after_accept(&targets);
        }
        Ok(failed)
    }

    async fn heartbeat(&self, user_id: i64, name: &str) -> Result<Option<HeartbeatRecord>> {
        // By its primary key.
        self.lookup(|c| read_one(c, user_id, name)).await
    }

    async fn heartbeats_of(&self, user_id: i64) -> Result<Vec<HeartbeatRecord>> {
        self.scan(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM heartbeats WHERE user_id = ?1 ORDER BY name"
            ))?;
            let rows = stmt.query_map([user_id], record)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn delete_heartbeat(&self, user_id: i64, name: &str) -> Result<bool> {
        let name = name.to_owned();
        self.writer()
            .write(move |c| {
                Ok(
                    c.prepare_cached("DELETE FROM heartbeats WHERE user_id = ?1 AND name = ?2")?
                        .execute(params![user_id, name])?
                        > 0,
                )
            })
            .await
    }

    async fn due_heartbeats(&self, now: i64, limit: usize) -> Result<Vec<HeartbeatRecord>> {
        // Through the partial index of the `up` ones, bounded by `limit`.
        self.lookup(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM heartbeats WHERE state = 'up' AND alarm_at <= ?1 \
                 ORDER BY alarm_at LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![now, limit as i64], record)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn claim_late_heartbeat(&self, due: HeartbeatRecord, send: NewSend) -> Result<bool> {
        let targets = send.targets.clone();
        let claimed = self
            .writer()
            .write(move |c| {
                let claimed = c
                    .prepare_cached(
                        "UPDATE heartbeats SET state = 'late' WHERE user_id = ?1 AND name = ?2 \
                         AND state = 'up' AND alarm_at = ?3",
                    )?
                    .execute(params![due.user_id, due.name, due.alarm_at()])?
                    == 1;
                if claimed {
                    insert_message(c, &send)?;
                }
                Ok(claimed)
            })
            .await?;
        if claimed {
            self.wakeups().after_accept(&targets);
        }
        Ok(claimed)
    }
}
