//! Devices and pairing: android devices carry an FCM registration token, extension (desktop)
//! devices a credential for the sync stream, stored hashed, webpush devices a browser's
//! subscription (endpoint and keys).

use super::SqliteStore;
use crate::api::DeviceType;
use crate::api::token::hash_secret;
use crate::store::contract::{DevicesPairing, UsersTokens};
use crate::store::model::*;
use crate::store::pairing::{self, PAIR_CODE_TTL_MS, PAIR_FAILURE_LIMIT, PAIR_FAILURE_WINDOW_MS};
use crate::store::{Result, StoreError};
use rand::Rng;
use rusqlite::{Connection, OptionalExtension, Row, params};

/// Reads a stored subscription from three nullable columns; all three or nothing.
pub(super) fn webpush_at(r: &Row, first: usize) -> rusqlite::Result<Option<WebPushAddress>> {
    let endpoint: Option<String> = r.get(first)?;
    let p256dh: Option<String> = r.get(first + 1)?;
    let auth: Option<String> = r.get(first + 2)?;
    Ok(match (endpoint, p256dh, auth) {
        (Some(endpoint), Some(p256dh), Some(auth)) => Some(WebPushAddress {
            endpoint,
            p256dh,
            auth,
        }),
        _ => None,
    })
}

/// No JOINs, for the reason given in users_tokens.rs: they would be re-prepared on every execution.
macro_rules! select_devices {
    () => {
        "SELECT d.id, d.user_id, (SELECT name FROM users WHERE id = d.user_id), d.label, d.type, \
     d.fcm_token, d.reachable, d.created_at, d.public_key, d.endpoint, d.p256dh, d.auth, d.last_seen_at FROM devices d"
    };
}

/// The hot path: the owner's devices, read once per send. Sorted by the caller: an ORDER BY
/// here makes STAT4 re-prepare the statement on every execution, like a JOIN.
pub(super) const REACHABLE_SQL: &str = concat!(
    select_devices!(),
    " WHERE d.user_id = ?1 AND d.reachable = 1"
);
const LIST_SQL: &str = concat!(
    select_devices!(),
    " WHERE ?1 IS NULL OR d.user_id = (SELECT id FROM users WHERE name = ?1) ORDER BY d.created_at, d.id"
);
/// A device showed it is there.
pub(super) const SEEN_SQL: &str = "UPDATE devices SET last_seen_at = ?2 WHERE id = ?1";
const BY_ID_SQL: &str = concat!(select_devices!(), " WHERE d.id = ?1");
const BY_CREDENTIAL_SQL: &str =
    "SELECT id, credential_hash FROM devices WHERE credential_hash = ?1";

fn record(r: &Row) -> rusqlite::Result<DeviceRecord> {
    let kind: String = r.get(4)?;
    Ok(DeviceRecord {
        id: r.get(0)?,
        user_id: r.get(1)?,
        user: r.get(2)?,
        label: r.get(3)?,
        device_type: DeviceType::parse(&kind).unwrap_or(DeviceType::Android),
        fcm_token: r.get(5)?,
        reachable: r.get(6)?,
        created_at: r.get(7)?,
        last_seen_at: r.get(12)?,
        public_key: r.get(8)?,
        webpush: webpush_at(r, 9)?,
    })
}

fn insert_device(
    c: &Connection,
    user_id: i64,
    user: String,
    new: NewDevice,
    now: i64,
) -> Result<PairOutcome> {
    let d = pairing::prepare(new)?;
    let (endpoint, p256dh, auth) = d.webpush_columns();
    c.execute(
        "INSERT INTO devices (id, user_id, label, type, fcm_token, credential_hash, created_at, public_key, endpoint, p256dh, auth) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![d.id, user_id, d.new.label, d.new.device_type.as_str(), d.new.fcm_token, d.credential_hash, now, d.public_key, endpoint, p256dh, auth],
    )?;
    Ok(d.paired(user_id, user, now))
}
impl DevicesPairing for SqliteStore {
    async fn add_device(&self, user: &str, new: NewDevice, now: i64) -> Result<PairOutcome> {
        let user = self.user_by_name(user).await?;
        self.writer()
            .write(move |c| insert_device(c, user.id, user.name, new, now))
            .await
    }

    /// The owner's devices that can still be delivered to, oldest first.
    async fn reachable_devices_of(&self, user_id: i64) -> Result<Vec<DeviceRecord>> {
        self.lookup(|c| reachable_devices(c, user_id)).await
    }

    async fn device(&self, id: &str) -> Result<Option<DeviceRecord>> {
        self.lookup(|c| Ok(c.query_row(BY_ID_SQL, [id], record).optional()?))
            .await
    }

    async fn mark_seen(&self, device_id: &str, now: i64) -> Result<()> {
        let device_id = device_id.to_owned();
        self.writer()
            .write(move |c| {
                c.prepare_cached(SEEN_SQL)?
                    .execute(params![device_id, now])?;
                Ok(())
            })
            .await
    }

    /// Removes a device; its undelivered jobs (desktop events not yet acknowledged too) fail
    /// with `device_removed`.
    async fn remove_device(&self, id: &str, now: i64) -> Result<()> {
        let id = id.to_owned();
        self.writer().write(move |c| {
            if c.execute("DELETE FROM devices WHERE id = ?1", [&id])? == 0 {
                return Err(StoreError::NotFound(format!("device '{id}'")));
            }
            c.execute(
                "UPDATE jobs SET state = 'failed', last_error = 'device_removed', lease_until = NULL, updated_at = ?2 \
                 WHERE device_id = ?1 AND state IN ('queued', 'leased', 'pending')",
                params![id, now],
            )?;
            Ok(())
        }).await
    }

    /// The extension device holding this stream credential, if it is still paired.
    /// As with tokens: looked up by hash, then the stored hash is compared in constant time.
    async fn authenticate_device(&self, credential: &str) -> Result<Option<DeviceRecord>> {
        let found: Option<String> = self
            .by_secret(BY_CREDENTIAL_SQL, credential, 1, |r| r.get(0))
            .await?;
        match found {
            Some(id) => self.device(&id).await,
            None => Ok(None),
        }
    }

    /// A fresh single-use 6-digit code for `user`, valid ten minutes. Only its hash is stored.
    async fn create_pair_code(&self, user: &str, now: i64) -> Result<String> {
        let user = self.user_by_name(user).await?;
        self.writer().write(move |c| {
            c.execute("DELETE FROM pairing_codes WHERE expires_at <= ?1", [now])?;
            loop {
                let code = format!("{:06}", rand::rng().random_range(0..1_000_000));
                let inserted = c.execute(
                    "INSERT OR IGNORE INTO pairing_codes (code_hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
                    params![hash_secret(&code).as_slice(), user.id, now + PAIR_CODE_TTL_MS],
                )?;
                if inserted == 1 {
                    return Ok(code);
                }
            }
        }).await
    }

    /// Redeems a pairing code: consumes it and creates the device, in one transaction. A code
    /// that matches no live code is a failed redemption; the [`PAIR_FAILURE_LIMIT`]th within
    /// [`PAIR_FAILURE_WINDOW_MS`] (from any address, through any process) invalidates every
    /// outstanding code, so no spread of addresses can search the 6-digit space.
    async fn redeem_pair_code(&self, code: &str, new: NewDevice, now: i64) -> Result<PairOutcome> {
        let hash = hash_secret(code);
        let paired = self
            .writer()
            .write(move |c| {
                let owner: Option<(i64, String)> = c
                    .query_row(
                        "DELETE FROM pairing_codes WHERE code_hash = ?1 AND expires_at > ?2 \
                         RETURNING user_id, (SELECT name FROM users WHERE id = user_id)",
                        params![hash.as_slice(), now],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                match owner {
                    Some((user_id, user)) => insert_device(c, user_id, user, new, now).map(Some),
                    // Ok, not Err: the failure must commit to be counted.
                    None => record_pair_failure(c, now).map(|()| None),
                }
            })
            .await?;
        paired.ok_or_else(|| StoreError::NotFound("pairing code".into()))
    }

    async fn list_devices(&self, user: Option<&str>) -> Result<Vec<DeviceRecord>> {
        self.list(LIST_SQL, [user], record).await
    }
}

fn record_pair_failure(c: &Connection, now: i64) -> Result<()> {
    let since = now - PAIR_FAILURE_WINDOW_MS;
    c.prepare_cached("DELETE FROM pair_failures WHERE at_ms <= ?1")?
        .execute([since])?;
    c.prepare_cached("INSERT INTO pair_failures (at_ms) VALUES (?1)")?
        .execute([now])?;
    // Counting stops at the limit: under a flood the window may hold far more rows, and each
    // failed guess should cost the relay a bounded amount of work.
    let failures: i64 = c
        .prepare_cached(
            "SELECT COUNT(*) FROM (SELECT 1 FROM pair_failures WHERE at_ms > ?1 LIMIT ?2)",
        )?
        .query_row(params![since, PAIR_FAILURE_LIMIT], |r| r.get(0))?;
    if failures >= PAIR_FAILURE_LIMIT {
        let dropped = c.execute("DELETE FROM pairing_codes", [])?;
        if dropped > 0 {
            super::admin::insert_audit(c, &pairing::invalidation(now))?;
            pairing::warn_invalidated(failures, dropped as u64);
        }
    }
    Ok(())
}

/// The user's reachable devices, oldest first.
pub(super) fn reachable_devices(
    c: &rusqlite::Connection,
    user_id: i64,
) -> Result<Vec<DeviceRecord>> {
    let mut stmt = c.prepare_cached(REACHABLE_SQL)?;
    let mut devices: Vec<DeviceRecord> = stmt
        .query_map([user_id], record)?
        .collect::<rusqlite::Result<_>>()?;
    devices.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(devices)
}
