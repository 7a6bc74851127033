//! Accepting a send and the rate limits around it on the embedded backend: the message, one
//! delivery job per target device, the persistent rate-limit counters and the idempotency
//! record, committed together before the relay answers 200. One relay owns the file, so the
//! rolling windows are exact logs in its memory; the sends that count towards the monthly and
//! daily layers are rows written with each accepted send, and reloaded at start.

use super::SqliteStore;
use crate::store::contract::{Basics, SendsLimits};
use crate::store::limits::{LayerStatus, RateLimiter, Refusal, month_key};
use crate::store::model::*;
use crate::store::{Result, StoreError};
use rusqlite::{OptionalExtension, params};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// SPEC §1.15: the unfinished jobs of the owner's earlier messages with the send's key become
/// `superseded`. Found through the key's messages (`messages_user_key`, then `jobs_message`):
/// `+state` keeps the planner off the state indexes, which made every keyed send scan the
/// whole queue — 1.6 s a send behind 85k queued jobs (bench/hooks.sh).
pub(super) const SUPERSEDE_SQL: &str = "UPDATE jobs SET state = 'superseded', lease_until = NULL, updated_at = ?3 \
     WHERE message_id IN (SELECT id FROM messages WHERE user_id = ?1 AND key = ?2) \
     AND +state IN ('queued', 'leased', 'pending') AND kind = 'message'";

/// The receiver sends after `?1`, oldest first (through `receiver_sends_at`).
pub(super) const RECEIVER_SENDS_SINCE_SQL: &str =
    "SELECT user_id, at_ms FROM receiver_sends WHERE at_ms > ?1 ORDER BY at_ms";

impl SendsLimits for SqliteStore {
    async fn charge_ip(&self, ip: IpAddr, now: i64) -> Result<Result<Vec<LayerStatus>, Refusal>> {
        Ok(self.limiter().check_ip(ip, now))
    }

    async fn check_ip(&self, ip: IpAddr, now: i64) -> Result<Result<Vec<LayerStatus>, Refusal>> {
        Ok(self.limiter().peek_ip(ip, now))
    }

    async fn limit_statuses(
        &self,
        ip: IpAddr,
        token_id: &str,
        receiver: i64,
        now: i64,
    ) -> Result<Vec<LayerStatus>> {
        Ok(self.limiter().peek(ip, token_id, receiver, now))
    }

    /// The response stored for this token and key within the last 24 h.
    async fn idempotent_response(
        &self,
        token_id: &str,
        key: &str,
        now: i64,
    ) -> Result<Option<StoredResponse>> {
        self.lookup(|c| idempotent_response(c, token_id, key, now))
            .await
    }

    async fn message_status(&self, id: &str, user_id: i64) -> Result<Option<MessageStatus>> {
        self.lookup(|c| {
            let found = c
                .query_row(
                    "SELECT created_at, key, cleared_at, acknowledged_at, acknowledged_by, acknowledged_response \
                     FROM messages WHERE id = ?1 AND user_id = ?2",
                    params![id, user_id],
                    |r| {
                        let acknowledged = match (r.get::<_, Option<i64>>(3)?, r.get::<_, Option<String>>(4)?) {
                            (Some(at), Some(device_id)) => Some(Acknowledgement { at, device_id, response: r.get(5)? }),
                            _ => None,
                        };
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, acknowledged))
                    },
                )
                .optional()?;
            let Some((created_at, key, cleared_at, acknowledged)) = found else { return Ok(None) };
            // A message's deliveries; its clear jobs are the relay's own business.
            let mut stmt = c.prepare_cached(
                "SELECT j.device_id, j.device_type, j.state, j.attempts, j.last_error, j.run_at, d.label, j.acknowledged_at \
                 FROM jobs j LEFT JOIN devices d ON d.id = j.device_id WHERE j.message_id = ?1 AND j.kind = 'message' ORDER BY j.id",
            )?;
            let deliveries = stmt
                .query_map([id], |r| {
                    Ok(Delivery::of_job(
                        r.get(0)?,
                        r.get(6)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    )
                    .acknowledged(r.get(7)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let (repeat, callback) = super::urgent::urgent_status(c, id)?;
            Ok(Some(MessageStatus { id: id.to_owned(), created_at, key, cleared_at, acknowledged, deliveries, repeat, callback }))
        }).await
    }

    /// A replayable writer piece (`writer.rs`): an accept changes the database and the
    /// limiter's memory, and the charge is what must not happen twice. A run that finds the
    /// send charged by an earlier run of the same batch (rolled back because another piece
    /// failed) writes its rows again and keeps that charge; a run that ends otherwise gives
    /// the charge back, so the limiter always holds the last run's outcome. A batch whose
    /// COMMIT fails (a full disk) keeps none of its rows, so the last run's charge is given
    /// back here too.
    async fn accept_send(&self, send: NewSend) -> Result<AcceptOutcome> {
        let store = self.clone();
        let targets = send.targets.clone();
        let payer = (send.token_id.clone(), send.user_id, send.created_at);
        // The last run's charge, if it charged: what a run again keeps, and what a batch that
        // did not commit gives back.
        let charged: Arc<Mutex<Option<Vec<LayerStatus>>>> = Arc::default();
        let runs_charge = charged.clone();
        let written = self
            .writer()
            .write_replayable(move |c| {
                let mut charged = runs_charge.lock().expect("accept charge poisoned");
                let run = accept_run(c, store.limiter(), &send, charged.take());
                if let Ok(AcceptOutcome::Accepted(statuses)) = &run {
                    *charged = Some(statuses.clone());
                }
                run
            })
            .await;
        // The writer answers an error only for a batch that did not commit (a piece's own
        // error comes from a run that already gave its charge back).
        let outcome = written.inspect_err(|_| {
            if charged.lock().expect("accept charge poisoned").is_some() {
                let (token_id, receiver, at) = &payer;
                self.limiter().refund_send(token_id, *receiver, *at);
            }
        })?;
        if matches!(outcome, AcceptOutcome::Accepted(_)) {
            self.wakeups().after_accept(&targets);
        }
        Ok(outcome)
    }
}

impl SqliteStore {
    /// Reloads this month's counts and the last day's receiver sends into the limiter.
    pub(super) fn restore_limits(&self, now: i64) -> Result<()> {
        let month = month_key(now);
        let counts = self.month_counts(&month)?;
        let sends = self.receiver_sends_since(now - crate::store::model::RECEIVER_WINDOW_MS)?;
        self.limiter().restore(&month, counts, sends);
        Ok(())
    }

    /// Send counts per token for `month`: restores `token_monthly` after a restart.
    pub(super) fn month_counts(&self, month: &str) -> Result<Vec<(String, u64)>> {
        self.read(|c| {
            let mut stmt =
                c.prepare("SELECT token_id, count FROM token_month_counts WHERE month = ?1")?;
            let rows = stmt.query_map([month], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Send times per receiver since `since_ms`: restores `receiver_daily` after a restart.
    pub(super) fn receiver_sends_since(&self, since_ms: i64) -> Result<Vec<(i64, i64)>> {
        self.read(|c| {
            let mut stmt = c.prepare(RECEIVER_SENDS_SINCE_SQL)?;
            let rows = stmt.query_map([since_ms], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
}

/// One run of an accept inside the writer's transaction. `charged` is the charge an earlier
/// run of this send made (its rows since rolled back): kept if this run accepts again, given
/// back if it does not.
fn accept_run(
    c: &rusqlite::Connection,
    limiter: &RateLimiter,
    send: &NewSend,
    charged: Option<Vec<LayerStatus>>,
) -> Result<AcceptOutcome> {
    let refund = |charged: &Option<Vec<LayerStatus>>| {
        if charged.is_some() {
            limiter.refund_send(&send.token_id, send.user_id, send.created_at);
        }
    };
    if let Some((key, _)) = &send.idempotency
        && let Some(earlier) = idempotent_response(c, &send.token_id, key, send.created_at)
            .inspect_err(|_| refund(&charged))?
    {
        refund(&charged);
        return Ok(AcceptOutcome::Replayed(earlier));
    }
    // The writer runs one piece at a time, so the check here and the charge below are atomic
    // with the replay check above: a concurrent repeat of this key finds the stored response
    // and is charged nothing.
    if charged.is_none()
        && let Err(refusal) = limiter.check_send(&send.token_id, send.user_id, send.created_at)
    {
        return Ok(AcceptOutcome::Refused(refusal));
    }
    write_accepted(c, send).inspect_err(|_| refund(&charged))?;
    let statuses = match charged {
        Some(statuses) => statuses,
        // Charged only once every row is written: an accept that fails charges nothing.
        None => limiter
            .check_and_charge_send(&send.token_id, send.user_id, send.created_at)
            .map_err(|_| StoreError::Db("the send limits changed during the accept".into()))?,
    };
    Ok(AcceptOutcome::Accepted(statuses))
}

/// Every row an accepted send writes: the message and its jobs, the persistent counts of the
/// rate limits, the idempotency record and the token's last use.
fn write_accepted(c: &rusqlite::Connection, send: &NewSend) -> Result<()> {
    insert_message(c, send)?;
    c.prepare_cached(
        "INSERT INTO token_month_counts (token_id, month, count) VALUES (?1, ?2, 1) \
         ON CONFLICT (token_id, month) DO UPDATE SET count = count + 1",
    )?
    .execute(params![send.token_id, send.month])?;
    c.prepare_cached("INSERT INTO receiver_sends (user_id, at_ms) VALUES (?1, ?2)")?
        .execute(params![send.user_id, send.created_at])?;
    if let Some((key, response)) = &send.idempotency {
        c.prepare_cached(
            "INSERT OR REPLACE INTO idempotency (token_id, key, status, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![send.token_id, key, response.status, response.body, send.created_at])?;
    }
    if send.touch_token {
        c.prepare_cached("UPDATE tokens SET last_used_at = ?2 WHERE id = ?1")?
            .execute(params![send.token_id, send.created_at])?;
    }
    Ok(())
}

/// The message and one job per target, after the owner's unfinished jobs with its key are
/// superseded (SPEC §1.15): what an accepted send writes besides its charges, and all that
/// the relay's own notifications (heartbeats, §1.18, charged to no limit) write.
pub(super) fn insert_message(c: &rusqlite::Connection, send: &NewSend) -> Result<()> {
    // SPEC §1.15: the owner's earlier messages with this key (from any of their
    // tokens) stop being delivered, in the commit that accepts the new one.
    if let Some(key) = &send.key {
        c.prepare_cached(SUPERSEDE_SQL)?
            .execute(params![send.user_id, key, send.created_at])?;
    }
    c.prepare_cached(
        "INSERT INTO messages (id, user_id, token_id, envelope, created_at, expires_at, key, responses) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![send.message_id, send.user_id, send.token_id, send.envelope, send.created_at, send.expires_at, send.key, responses_column(&send.responses)])?;
    if let Some(urgency) = &send.urgency {
        super::urgent::insert_urgency(c, send, urgency)?;
    }
    for Target {
        device_id,
        device_type,
        payload,
    } in &send.targets
    {
        // A desktop device removed since the targets were read gets no job.
        let seq = match super::streams::stream_place(c, device_id, *device_type)? {
            StreamPlace::Gone => continue,
            place => place.column(),
        };
        c.prepare_cached(
            "INSERT INTO jobs (message_id, device_id, device_type, state, run_at, seq, expires_at, updated_at, payload, payload_kind, priority) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?5, ?8, ?9, ?10)",
        )?
        .execute(params![
            send.message_id,
            device_id,
            device_type.as_str(),
            JobState::initial(*device_type).as_str(),
            send.created_at,
            seq,
            send.expires_at,
            payload.as_ref().map(|p| p.bytes.as_slice()),
            payload.as_ref().map(|p| p.kind.as_str()),
            send.priority.as_str()
        ])?;
    }
    Ok(())
}

fn idempotent_response(
    c: &rusqlite::Connection,
    token_id: &str,
    key: &str,
    now: i64,
) -> Result<Option<StoredResponse>> {
    Ok(c.prepare_cached(
        "SELECT status, body FROM idempotency WHERE token_id = ?1 AND key = ?2 AND created_at > ?3",
    )?
    .query_row(params![token_id, key, now - IDEMPOTENCY_WINDOW_MS], |r| {
        Ok(StoredResponse {
            status: r.get(0)?,
            body: r.get(1)?,
        })
    })
    .optional()?)
}
