//! Users and sender tokens on PostgreSQL. Tokens are stored as SHA-256 only, looked up by
//! hash and compared in constant time; nothing is cached, so a revocation made through any
//! relay (or `reflecto admin`) is refused by every relay at the next request.

use super::PgStore;
use super::devices_pairing::device_at;
use crate::api::token::hash_secret;
use crate::store::contract::UsersTokens;
use crate::store::model::{Sender, TokenRecord, UserRecord};
use crate::store::{Result, StoreError};
use subtle::ConstantTimeEq;
use tokio_postgres::Row;

const SELECT_TOKENS: &str = "SELECT t.id, t.user_id, u.name, t.label, t.priority_cap, t.scope_devices, t.test, \
     t.created_at, t.last_used_at, t.revoked_at IS NOT NULL, t.hash FROM tokens t JOIN users u ON u.id = t.user_id";

fn token(r: &Row) -> TokenRecord {
    let cap: Option<String> = r.get(4);
    TokenRecord {
        id: r.get(0),
        user_id: r.get(1),
        user: r.get(2),
        label: r.get(3),
        priority_cap: cap.and_then(|c| c.parse().ok()),
        scope_devices: r.get(5),
        test: r.get(6),
        created_at: r.get(7),
        last_used_at: r.get(8),
        revoked: r.get(9),
    }
}

fn user(r: &Row) -> UserRecord {
    UserRecord {
        id: r.get(0),
        name: r.get(1),
        created_at: r.get(2),
    }
}

/// Marks a token revoked, keeping the time of an earlier revocation.
const REVOKE_SQL: &str = "UPDATE tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1";

/// What tokens, admin tokens and device credentials share: each is found by its secret's hash
/// and revoked by id.
impl PgStore {
    /// The row `select` finds by the hash of `secret` (`$1`), kept only where the hash it holds
    /// in column `stored` is the same in constant time: the index finds, the comparison decides.
    pub(super) async fn row_by_secret(
        &self,
        select: &str,
        secret: &str,
        stored: usize,
    ) -> Result<Option<Row>> {
        let hash = hash_secret(secret);
        let client = self.client().await?;
        let statement = client.prepare_cached(select).await?;
        let found = client.query_opt(&statement, &[&hash.as_slice()]).await?;
        Ok(found.filter(|r| {
            let held: Vec<u8> = r.get(stored);
            held.as_slice().ct_eq(hash.as_slice()).into()
        }))
    }

    /// Runs `update` (`$1` id, `$2` now), which marks token `id` revoked; not found where it
    /// matched nothing.
    pub(super) async fn revoke(&self, update: &str, id: &str, now: i64) -> Result<()> {
        match self.writer().await?.execute(update, &[&id, &now]).await? {
            0 => Err(StoreError::NotFound(format!("token '{id}'"))),
            _ => Ok(()),
        }
    }
}

impl UsersTokens for PgStore {
    async fn add_user(&self, name: &str, now: i64) -> Result<UserRecord> {
        let row = self
            .writer()
            .await?
            .query_opt(
                "INSERT INTO users (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING \
                 RETURNING id, name, created_at",
                &[&name, &now],
            )
            .await?;
        row.as_ref()
            .map(user)
            .ok_or_else(|| StoreError::Conflict(format!("user '{name}' already exists")))
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>> {
        let rows = self
            .client()
            .await?
            .query("SELECT id, name, created_at FROM users ORDER BY name", &[])
            .await?;
        Ok(rows.iter().map(user).collect())
    }

    async fn user_by_name(&self, name: &str) -> Result<UserRecord> {
        self.client()
            .await?
            .query_opt(
                "SELECT id, name, created_at FROM users WHERE name = $1",
                &[&name],
            )
            .await?
            .as_ref()
            .map(user)
            .ok_or_else(|| StoreError::NotFound(format!("user '{name}'")))
    }

    async fn remove_user(&self, name: &str) -> Result<()> {
        match self
            .writer()
            .await?
            .execute("DELETE FROM users WHERE name = $1", &[&name])
            .await?
        {
            0 => Err(StoreError::NotFound(format!("user '{name}'"))),
            _ => Ok(()),
        }
    }

    async fn revoke_token(&self, id: &str, now: i64) -> Result<()> {
        self.revoke(REVOKE_SQL, id, now).await
    }

    async fn authenticate_token(&self, secret: &str) -> Result<Option<TokenRecord>> {
        let select = format!("{SELECT_TOKENS} WHERE t.hash = $1");
        let found = self.row_by_secret(&select, secret, 10).await?;
        Ok(found.map(|r| token(&r)).filter(|t| !t.revoked))
    }

    /// One statement: the token and, joined to it, its owner's reachable devices (one row per
    /// device, or one row with no device).
    async fn authenticate_sender(&self, secret: &str) -> Result<Option<Sender>> {
        let hash = hash_secret(secret);
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT t.id, t.user_id, u.name, t.label, t.priority_cap, t.scope_devices, t.test, \
                 t.created_at, t.last_used_at, t.revoked_at IS NOT NULL, t.hash, \
                 d.id, d.user_id, u.name, d.label, d.type, d.fcm_token, d.reachable, d.created_at, \
                 d.public_key, d.endpoint, d.p256dh, d.auth, d.last_seen_at \
                 FROM tokens t JOIN users u ON u.id = t.user_id \
                 LEFT JOIN devices d ON d.user_id = t.user_id AND d.reachable \
                 WHERE t.hash = $1 ORDER BY d.created_at, d.id",
            )
            .await?;
        let rows = client.query(&statement, &[&hash.as_slice()]).await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let stored: Vec<u8> = first.get(10);
        let token = token(first);
        let same: bool = stored.as_slice().ct_eq(hash.as_slice()).into();
        if !same || token.revoked {
            return Ok(None);
        }
        let devices = rows
            .iter()
            .filter(|r| r.get::<_, Option<String>>(11).is_some())
            .map(|r| device_at(r, 11))
            .collect();
        Ok(Some(Sender { token, devices }))
    }

    /// Writes a token issued by [`crate::store::tokens::issue`].
    async fn insert_token(&self, record: &TokenRecord, hash: &[u8; 32]) -> Result<()> {
        self.writer()
            .await?
            .execute(
                "INSERT INTO tokens (id, hash, user_id, label, priority_cap, scope_devices, test, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &record.id,
                    &hash.as_slice(),
                    &record.user_id,
                    &record.label,
                    &record.priority_cap.map(|p| p.as_str()),
                    &record.scope_devices,
                    &record.test,
                    &record.created_at,
                ],
            )
            .await?;
        Ok(())
    }

    async fn list_tokens(&self, user: Option<&str>) -> Result<Vec<TokenRecord>> {
        let sql = format!(
            "{SELECT_TOKENS} WHERE $1::TEXT IS NULL OR u.name = $1 ORDER BY t.created_at, t.id"
        );
        let rows = self.client().await?.query(&sql, &[&user]).await?;
        Ok(rows.iter().map(token).collect())
    }
}
