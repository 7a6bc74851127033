//! Accepting sends and rate limits on PostgreSQL, shared by every relay on the database.
//!
//! A send costs one round trip for its commit: `reflecto_accept` (schema.rs) replays an
//! earlier response for its Idempotency-Key, or counts the token and receiver windows under
//! advisory locks, and only if all have room charges them and writes the message, its jobs
//! and the wake-up, in one transaction. The per-IP layers are one more round trip
//! (`reflecto_charge_ip`), made before the token is even known (SPEC §1.7 step 1). The
//! statuses for the headers come back as counts and oldest times; the arithmetic is the
//! same as the embedded backend's ([`crate::store::limits`]).

use super::PgStore;
use crate::api::DeviceType;
use crate::store::contract::{Basics, SendsLimits};
use crate::store::limits::{
    DAY_MS, HOUR_MS, Layer, LayerStatus, Limits, MINUTE_MS, Refusal, month_key, monthly_status,
    window_status,
};
use crate::store::model::{
    AcceptOutcome, Acknowledgement, Delivery, IDEMPOTENCY_WINDOW_MS, JobState, MessageStatus,
    NewSend, StoredResponse, responses_column,
};

use crate::store::{Result, StoreError};
use std::net::IpAddr;

/// `(used, oldest)` of one rolling window, as the SQL functions return them (counted before
/// the charge); with `charged`, one more event at `now` is in the window.
fn used(row: &tokio_postgres::Row, idx: usize, charged: bool, now: i64) -> (u64, Option<i64>) {
    let n = row.get::<_, i64>(idx).max(0) as u64;
    let oldest: Option<i64> = row.get(idx + 1);
    if charged {
        (n + 1, oldest.or(Some(now)))
    } else {
        (n, oldest)
    }
}
impl SendsLimits for PgStore {
    async fn charge_ip(&self, ip: IpAddr, now: i64) -> Result<Result<Vec<LayerStatus>, Refusal>> {
        let l = self.limits();
        if l.ip_minute == 0 && l.ip_hour == 0 {
            return Ok(Ok(Vec::new()));
        }
        let client = self.writer().await?;
        let statement = client
            .prepare_cached("SELECT * FROM reflecto_charge_ip($1, $2, $3, $4)")
            .await?;
        let row = client
            .query_one(
                &statement,
                &[
                    &ip.to_string(),
                    &now,
                    &(l.ip_minute as i64),
                    &(l.ip_hour as i64),
                ],
            )
            .await?;
        let charged = row.get::<_, bool>(0);
        let statuses = ip_statuses(&row, 1, now, l.ip_minute, l.ip_hour, charged);
        if !charged {
            let full = statuses
                .into_iter()
                .find(|s| s.remaining == 0)
                .ok_or_else(|| {
                    StoreError::Db("a refused address names no exhausted layer".into())
                })?;
            return Ok(Err(full));
        }
        Ok(Ok(statuses))
    }

    async fn check_ip(&self, ip: IpAddr, now: i64) -> Result<Result<Vec<LayerStatus>, Refusal>> {
        let l = self.limits();
        if l.ip_minute == 0 && l.ip_hour == 0 {
            return Ok(Ok(Vec::new()));
        }
        // Each window counted only up to its limit, like the charge does; no lock: a read
        // that races a charge is at most one event behind, and it is charged if it fails.
        let row = self
            .client()
            .await?
            .query_one(
                "SELECT \
                 (SELECT count(*) FROM (SELECT 1 FROM rate_events WHERE layer = 'ip' AND key = $1 AND at_ms > $2::BIGINT - 60000 ORDER BY at_ms DESC LIMIT $3) e), \
                 (SELECT min(at_ms) FROM (SELECT at_ms FROM rate_events WHERE layer = 'ip' AND key = $1 AND at_ms > $2::BIGINT - 60000 ORDER BY at_ms DESC LIMIT $3) e), \
                 (SELECT count(*) FROM (SELECT 1 FROM rate_events WHERE layer = 'ip' AND key = $1 AND at_ms > $2::BIGINT - 3600000 ORDER BY at_ms DESC LIMIT $4) e), \
                 (SELECT min(at_ms) FROM (SELECT at_ms FROM rate_events WHERE layer = 'ip' AND key = $1 AND at_ms > $2::BIGINT - 3600000 ORDER BY at_ms DESC LIMIT $4) e)",
                &[
                    &ip.to_string(),
                    &now,
                    &(l.ip_minute as i64),
                    &(l.ip_hour as i64),
                ],
            )
            .await?;
        let statuses = ip_statuses(&row, 0, now, l.ip_minute, l.ip_hour, false);
        Ok(match statuses.iter().find(|s| s.remaining == 0) {
            Some(full) => Err(*full),
            None => Ok(statuses),
        })
    }

    async fn limit_statuses(
        &self,
        ip: IpAddr,
        token_id: &str,
        receiver: i64,
        now: i64,
    ) -> Result<Vec<LayerStatus>> {
        let l = self.limits();
        // Each window counted only up to its limit, like the charge does.
        let row = self
            .client()
            .await?
            .query_one(
                "SELECT \
                 (SELECT count(*) FROM (SELECT 1 FROM rate_events WHERE layer = 'token' AND key = $1 AND at_ms > $4::BIGINT - 60000 ORDER BY at_ms DESC LIMIT $5) e), \
                 (SELECT min(at_ms) FROM (SELECT at_ms FROM rate_events WHERE layer = 'token' AND key = $1 AND at_ms > $4::BIGINT - 60000 ORDER BY at_ms DESC LIMIT $5) e), \
                 (SELECT coalesce(max(count), 0) FROM token_month_counts WHERE token_id = $1 AND month = $6), \
                 (SELECT count(*) FROM (SELECT 1 FROM receiver_sends WHERE user_id = $2 AND at_ms > $4::BIGINT - 86400000 ORDER BY at_ms DESC LIMIT $7) e), \
                 (SELECT min(at_ms) FROM (SELECT at_ms FROM receiver_sends WHERE user_id = $2 AND at_ms > $4::BIGINT - 86400000 ORDER BY at_ms DESC LIMIT $7) e), \
                 (SELECT count(*) FROM (SELECT 1 FROM rate_events WHERE layer = 'ip' AND key = $3 AND at_ms > $4::BIGINT - 60000 ORDER BY at_ms DESC LIMIT $8) e), \
                 (SELECT min(at_ms) FROM (SELECT at_ms FROM rate_events WHERE layer = 'ip' AND key = $3 AND at_ms > $4::BIGINT - 60000 ORDER BY at_ms DESC LIMIT $8) e), \
                 (SELECT count(*) FROM (SELECT 1 FROM rate_events WHERE layer = 'ip' AND key = $3 AND at_ms > $4::BIGINT - 3600000 ORDER BY at_ms DESC LIMIT $9) e), \
                 (SELECT min(at_ms) FROM (SELECT at_ms FROM rate_events WHERE layer = 'ip' AND key = $3 AND at_ms > $4::BIGINT - 3600000 ORDER BY at_ms DESC LIMIT $9) e)",
                &[
                    &token_id,
                    &receiver,
                    &ip.to_string(),
                    &now,
                    &(l.token_burst as i64),
                    &month_key(now),
                    &(l.receiver_daily as i64),
                    &(l.ip_minute as i64),
                    &(l.ip_hour as i64),
                ],
            )
            .await?;
        let mut statuses = send_layers(&row, 0, l, false, now);
        statuses.extend(ip_statuses(&row, 5, now, l.ip_minute, l.ip_hour, false));
        Ok(statuses)
    }

    async fn idempotent_response(
        &self,
        token_id: &str,
        key: &str,
        now: i64,
    ) -> Result<Option<StoredResponse>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT status, body FROM idempotency WHERE token_id = $1 AND key = $2 AND created_at > $3",
                &[&token_id, &key, &(now - IDEMPOTENCY_WINDOW_MS)],
            )
            .await?;
        Ok(row.map(|r| StoredResponse {
            status: r.get::<_, i32>(0) as u16,
            body: r.get(1),
        }))
    }

    async fn message_status(&self, id: &str, user_id: i64) -> Result<Option<MessageStatus>> {
        let client = self.client().await?;
        let Some(message) = client
            .query_opt(
                "SELECT created_at, key, cleared_at, acknowledged_at, acknowledged_by, acknowledged_response \
                 FROM messages WHERE id = $1 AND user_id = $2",
                &[&id, &user_id],
            )
            .await?
        else {
            return Ok(None);
        };
        let rows = client
            .query(
                "SELECT j.device_id, j.device_type, j.state, j.attempts, j.last_error, j.run_at, d.label, j.acknowledged_at \
                 FROM jobs j LEFT JOIN devices d ON d.id = j.device_id WHERE j.message_id = $1 AND j.kind = 'message' ORDER BY j.id",
                &[&id],
            )
            .await?;
        let deliveries = rows
            .iter()
            .map(|r| {
                let device_type: &str = r.get(1);
                let state: &str = r.get(2);
                Ok(Delivery::of_job(
                    r.get(0),
                    r.get(6),
                    DeviceType::parse(device_type)
                        .ok_or_else(|| unknown("device type", device_type))?,
                    JobState::parse(state).ok_or_else(|| unknown("job state", state))?,
                    r.get(3),
                    r.get(4),
                    r.get(5),
                )
                .acknowledged(r.get(7)))
            })
            .collect::<Result<_>>()?;
        let (repeat, callback) = super::urgent::urgent_status(&**client, id).await?;
        Ok(Some(MessageStatus {
            id: id.to_owned(),
            created_at: message.get(0),
            key: message.get(1),
            cleared_at: message.get(2),
            acknowledged: message
                .get::<_, Option<i64>>(3)
                .zip(message.get::<_, Option<String>>(4))
                .map(|(at, device_id)| Acknowledgement {
                    at,
                    device_id,
                    response: message.get(5),
                }),
            deliveries,
            repeat,
            callback,
        }))
    }

    async fn accept_send(&self, send: NewSend) -> Result<AcceptOutcome> {
        let l = self.limits();
        let ids: Vec<&str> = send.targets.iter().map(|t| t.device_id.as_str()).collect();
        let types: Vec<&str> = send
            .targets
            .iter()
            .map(|t| t.device_type.as_str())
            .collect();
        let states: Vec<&str> = send
            .targets
            .iter()
            .map(|t| JobState::initial(t.device_type).as_str())
            .collect();
        let payloads: Vec<Option<&[u8]>> = send
            .targets
            .iter()
            .map(|t| t.payload.as_ref().map(|p| p.bytes.as_slice()))
            .collect();
        let kinds: Vec<Option<&str>> = send
            .targets
            .iter()
            .map(|t| t.payload.as_ref().map(|p| p.kind.as_str()))
            .collect();
        let (key, idem_status, idem_body) = match &send.idempotency {
            Some((key, r)) => (
                Some(key.as_str()),
                Some(r.status as i32),
                Some(r.body.as_str()),
            ),
            None => (None, None, None),
        };
        let client = self.writer().await?;
        let urgency = send.urgency.clone().unwrap_or_default();
        let (retry, expire) = (
            urgency.repeat.map(|r| r.retry_ms),
            urgency.repeat.map(|r| r.expire_ms),
        );
        let with_urgency = send.urgency.is_some();
        let statement = client
            .prepare_cached(if with_urgency {
                super::urgent::ACCEPT_WITH_URGENCY
            } else {
                "SELECT * FROM reflecto_accept($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
                 $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
            })
            .await?;
        let responses = responses_column(&send.responses);
        let priority = send.priority.as_str();
        let (burst, monthly, daily) = (
            l.token_burst as i64,
            l.token_monthly as i64,
            l.receiver_daily as i64,
        );
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![
            &send.message_id,
            &send.user_id,
            &send.token_id,
            &send.envelope,
            &send.created_at,
            &send.expires_at,
            &priority,
            &send.month,
            &key,
            &idem_status,
            &idem_body,
            &send.touch_token,
            &burst,
            &monthly,
            &daily,
            &ids,
            &types,
            &states,
            &payloads,
            &kinds,
            &send.key,
            &responses,
        ];
        if with_urgency {
            params.extend([
                &retry as &(dyn tokio_postgres::types::ToSql + Sync),
                &expire,
                &urgency.receipt,
                &urgency.callback,
            ]);
        }
        let row = client.query_one(&statement, &params).await?;
        let outcome: String = row.get(0);
        if outcome == "replayed" {
            return Ok(AcceptOutcome::Replayed(StoredResponse {
                status: row.get::<_, i32>(1) as u16,
                body: row.get(2),
            }));
        }
        let now = send.created_at;
        // The counts are from before the charge; an accepted send is one more event at `now`.
        let charged = outcome == "accepted";
        let statuses = send_layers(&row, 3, l, charged, now);
        if !charged {
            let full = statuses
                .into_iter()
                .find(|s| s.remaining == 0)
                .ok_or_else(|| StoreError::Db("a refused send names no exhausted layer".into()))?;
            return Ok(AcceptOutcome::Refused(full));
        }
        self.wakeups().after_accept(&send.targets);
        self.inner.notifier.after_accept(&send.targets);
        Ok(AcceptOutcome::Accepted(statuses))
    }
}

/// The token and receiver layers from `(burst used, oldest, monthly used, daily used,
/// oldest)` starting at `first`.
fn send_layers(
    row: &tokio_postgres::Row,
    first: usize,
    l: Limits,
    charged: bool,
    now: i64,
) -> Vec<LayerStatus> {
    let mut statuses = Vec::with_capacity(3);
    if l.token_burst > 0 {
        let (n, oldest) = used(row, first, charged, now);
        statuses.push(window_status(
            Layer::TokenBurst,
            l.token_burst,
            n,
            oldest,
            now,
            MINUTE_MS,
        ));
    }
    if l.token_monthly > 0 {
        let n = row.get::<_, i64>(first + 2).max(0) as u64 + u64::from(charged);
        statuses.push(monthly_status(l.token_monthly, n, now));
    }
    if l.receiver_daily > 0 {
        let (n, oldest) = used(row, first + 3, charged, now);
        statuses.push(window_status(
            Layer::ReceiverDaily,
            l.receiver_daily,
            n,
            oldest,
            now,
            DAY_MS,
        ));
    }
    statuses
}

/// The per-IP layers from `(minute used, oldest, hour used, oldest)` starting at `first`.
fn ip_statuses(
    row: &tokio_postgres::Row,
    first: usize,
    now: i64,
    minute: u64,
    hour: u64,
    charged: bool,
) -> Vec<LayerStatus> {
    let mut statuses = Vec::with_capacity(2);
    if minute > 0 {
        let (n, oldest) = used(row, first, charged, now);
        statuses.push(window_status(
            Layer::IpMinute,
            minute,
            n,
            oldest,
            now,
            MINUTE_MS,
        ));
    }
    if hour > 0 {
        let (n, oldest) = used(row, first + 2, charged, now);
        statuses.push(window_status(Layer::IpHour, hour, n, oldest, now, HOUR_MS));
    }
    statuses
}

/// A value in the database that this relay has no name for (a newer relay wrote it).
fn unknown(what: &str, value: &str) -> StoreError {
    StoreError::Db(format!("unknown {what} '{value}' in the database"))
}
