//! Devices and pairing on PostgreSQL. Codes are consumed with `DELETE … RETURNING`, so two
//! relays redeeming the same code cannot both succeed; failed redemptions are rows, counted
//! across every relay.

use super::PgStore;
use crate::api::DeviceType;
use crate::api::token::hash_secret;
use crate::store::contract::{DevicesPairing, UsersTokens};
use crate::store::model::{DeviceRecord, NewDevice, PairOutcome, WebPushAddress};
use crate::store::pairing::{self, PAIR_CODE_TTL_MS, PAIR_FAILURE_LIMIT, PAIR_FAILURE_WINDOW_MS};
use crate::store::{Result, StoreError};
use deadpool_postgres::GenericClient;
use rand::Rng;
use tokio_postgres::Row;

const SELECT_DEVICES: &str = "SELECT d.id, d.user_id, u.name, d.label, d.type, d.fcm_token, d.reachable, \
     d.created_at, d.public_key, d.endpoint, d.p256dh, d.auth, d.last_seen_at, d.credential_hash FROM devices d JOIN users u ON u.id = d.user_id";

/// A device showed it is there.
pub(super) const SEEN_SQL: &str = "UPDATE devices SET last_seen_at = $2 WHERE id = $1";

/// A stored subscription from three nullable columns; all three or nothing.
pub(super) fn webpush_at(r: &Row, first: usize) -> Option<WebPushAddress> {
    match (r.get(first), r.get(first + 1), r.get(first + 2)) {
        (Some(endpoint), Some(p256dh), Some(auth)) => Some(WebPushAddress {
            endpoint,
            p256dh,
            auth,
        }),
        _ => None,
    }
}

fn device(r: &Row) -> DeviceRecord {
    device_at(r, 0)
}

/// A device from the 13 columns of [`SELECT_DEVICES`] starting at `first`.
pub(super) fn device_at(r: &Row, first: usize) -> DeviceRecord {
    let kind: String = r.get(first + 4);
    DeviceRecord {
        id: r.get(first),
        user_id: r.get(first + 1),
        user: r.get(first + 2),
        label: r.get(first + 3),
        device_type: DeviceType::parse(&kind).unwrap_or(DeviceType::Android),
        fcm_token: r.get(first + 5),
        reachable: r.get(first + 6),
        created_at: r.get(first + 7),
        last_seen_at: r.get(first + 12),
        public_key: r.get(first + 8),
        webpush: webpush_at(r, first + 9),
    }
}

async fn insert_device(
    c: &impl GenericClient,
    user_id: i64,
    user: String,
    new: NewDevice,
    now: i64,
) -> Result<PairOutcome> {
    let d = pairing::prepare(new)?;
    let (endpoint, p256dh, auth) = d.webpush_columns();
    c.execute(
        "INSERT INTO devices (id, user_id, label, type, fcm_token, credential_hash, created_at, public_key, endpoint, p256dh, auth) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            &d.id,
            &user_id,
            &d.new.label,
            &d.new.device_type.as_str(),
            &d.new.fcm_token,
            &d.credential_hash,
            &now,
            &d.public_key,
            &endpoint,
            &p256dh,
            &auth,
        ],
    )
    .await?;
    Ok(d.paired(user_id, user, now))
}
impl DevicesPairing for PgStore {
    async fn add_device(&self, user: &str, new: NewDevice, now: i64) -> Result<PairOutcome> {
        let user = self.user_by_name(user).await?;
        let client = self.writer().await?;
        insert_device(&client, user.id, user.name, new, now).await
    }

    async fn reachable_devices_of(&self, user_id: i64) -> Result<Vec<DeviceRecord>> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "{SELECT_DEVICES} WHERE d.user_id = $1 AND d.reachable ORDER BY d.created_at, d.id"
            ))
            .await?;
        let rows = client.query(&statement, &[&user_id]).await?;
        Ok(rows.iter().map(device).collect())
    }

    async fn device(&self, id: &str) -> Result<Option<DeviceRecord>> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!("{SELECT_DEVICES} WHERE d.id = $1"))
            .await?;
        Ok(client
            .query_opt(&statement, &[&id])
            .await?
            .as_ref()
            .map(device))
    }

    async fn mark_seen(&self, device_id: &str, now: i64) -> Result<()> {
        self.writer()
            .await?
            .execute(SEEN_SQL, &[&device_id, &now])
            .await?;
        Ok(())
    }

    async fn remove_device(&self, id: &str, now: i64) -> Result<()> {
        let mut client = self.writer().await?;
        let tx = client.transaction().await?;
        if tx
            .execute("DELETE FROM devices WHERE id = $1", &[&id])
            .await?
            == 0
        {
            return Err(StoreError::NotFound(format!("device '{id}'")));
        }
        tx.execute(
            "UPDATE jobs SET state = 'failed', last_error = 'device_removed', lease_until = NULL, updated_at = $2 \
             WHERE device_id = $1 AND state IN ('queued', 'leased', 'pending')",
            &[&id, &now],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn authenticate_device(&self, credential: &str) -> Result<Option<DeviceRecord>> {
        let select = format!("{SELECT_DEVICES} WHERE d.credential_hash = $1");
        let found = self.row_by_secret(&select, credential, 13).await?;
        Ok(found.map(|r| device(&r)))
    }

    async fn create_pair_code(&self, user: &str, now: i64) -> Result<String> {
        let user = self.user_by_name(user).await?;
        let client = self.writer().await?;
        client
            .execute("DELETE FROM pairing_codes WHERE expires_at <= $1", &[&now])
            .await?;
        loop {
            let code = format!("{:06}", rand::rng().random_range(0..1_000_000));
            let inserted = client
                .execute(
                    "INSERT INTO pairing_codes (code_hash, user_id, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (code_hash) DO NOTHING",
                    &[&hash_secret(&code).as_slice(), &user.id, &(now + PAIR_CODE_TTL_MS)],
                )
                .await?;
            if inserted == 1 {
                return Ok(code);
            }
        }
    }

    async fn redeem_pair_code(&self, code: &str, new: NewDevice, now: i64) -> Result<PairOutcome> {
        let hash = hash_secret(code);
        let mut client = self.writer().await?;
        let tx = client.transaction().await?;
        let owner = tx
            .query_opt(
                "DELETE FROM pairing_codes p WHERE p.code_hash = $1 AND p.expires_at > $2 \
                 RETURNING p.user_id, (SELECT name FROM users WHERE id = p.user_id)",
                &[&hash.as_slice(), &now],
            )
            .await?;
        match owner {
            Some(row) => {
                let paired = insert_device(&tx, row.get(0), row.get(1), new, now).await?;
                tx.commit().await?;
                Ok(paired)
            }
            None => {
                record_pair_failure(&tx, now).await?;
                // Committed: a failure must count.
                tx.commit().await?;
                Err(StoreError::NotFound("pairing code".into()))
            }
        }
    }

    async fn list_devices(&self, user: Option<&str>) -> Result<Vec<DeviceRecord>> {
        let sql = format!(
            "{SELECT_DEVICES} WHERE $1::TEXT IS NULL OR u.name = $1 ORDER BY d.created_at, d.id"
        );
        let rows = self.client().await?.query(&sql, &[&user]).await?;
        Ok(rows.iter().map(device).collect())
    }
}

async fn record_pair_failure(c: &impl GenericClient, now: i64) -> Result<()> {
    let since = now - PAIR_FAILURE_WINDOW_MS;
    c.execute("DELETE FROM pair_failures WHERE at_ms <= $1", &[&since])
        .await?;
    c.execute("INSERT INTO pair_failures (at_ms) VALUES ($1)", &[&now])
        .await?;
    // Counting stops at the limit: each failed guess costs bounded work.
    let failures: i64 = c
        .query_one(
            "SELECT count(*) FROM (SELECT 1 FROM pair_failures WHERE at_ms > $1 LIMIT $2) f",
            &[&since, &PAIR_FAILURE_LIMIT],
        )
        .await?
        .get(0);
    if failures >= PAIR_FAILURE_LIMIT {
        let dropped = c.execute("DELETE FROM pairing_codes", &[]).await?;
        if dropped > 0 {
            super::admin::insert_audit(c, &pairing::invalidation(now)).await?;
            pairing::warn_invalidated(failures, dropped);
        }
    }
    Ok(())
}
