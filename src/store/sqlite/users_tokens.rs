//! Users and sender tokens on the embedded backend. Tokens are stored as SHA-256 only, looked
//! up by hash and compared in constant time.

use super::SqliteStore;
use crate::api::token::hash_secret;
use crate::store::contract::UsersTokens;
use crate::store::model::*;
use crate::store::{Result, StoreError};
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};
use subtle::ConstantTimeEq;

/// No JOINs: with the bundled SQLite's STAT4, a join whose plan depends on a bound value is
/// re-prepared on every execution; scalar subqueries keep cached statements cached.
macro_rules! select_tokens {
    () => {
        "SELECT t.id, t.user_id, (SELECT name FROM users WHERE id = t.user_id), t.label, \
     t.priority_cap, t.scope_devices, t.test, t.created_at, t.last_used_at, t.revoked_at IS NOT NULL, t.hash FROM tokens t"
    };
}

/// The hot path: one lookup per authenticated request.
pub(super) const AUTH_SQL: &str = concat!(select_tokens!(), " WHERE t.hash = ?1");
const LIST_SQL: &str = concat!(
    select_tokens!(),
    " WHERE ?1 IS NULL OR t.user_id = (SELECT id FROM users WHERE name = ?1) ORDER BY t.created_at, t.id"
);

fn record(r: &Row) -> rusqlite::Result<TokenRecord> {
    let cap: Option<String> = r.get(4)?;
    Ok(TokenRecord {
        id: r.get(0)?,
        user_id: r.get(1)?,
        user: r.get(2)?,
        label: r.get(3)?,
        priority_cap: cap.and_then(|c| c.parse().ok()),
        scope_devices: r.get(5)?,
        test: r.get(6)?,
        created_at: r.get(7)?,
        last_used_at: r.get(8)?,
        revoked: r.get(9)?,
    })
}

/// Marks a token revoked, keeping the time of an earlier revocation.
const REVOKE_SQL: &str = "UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1";

/// What the listings, tokens and admin tokens share.
impl SqliteStore {
    /// Every row `sql` selects with `params`, each made a record by `record`: a scan, as every
    /// listing grows with the data.
    pub(super) async fn list<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        record: fn(&Row) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        self.scan(|c| {
            let mut stmt = c.prepare(sql)?;
            let rows = stmt.query_map(params, record)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// The record `sql` finds by the hash of `secret` (`?1`), kept only where the hash it holds
    /// in column `stored` is the same in constant time: the index finds, the comparison decides.
    pub(super) async fn by_secret<T>(
        &self,
        sql: &str,
        secret: &str,
        stored: usize,
        record: fn(&Row) -> rusqlite::Result<T>,
    ) -> Result<Option<T>> {
        let hash = hash_secret(secret);
        self.lookup(|c| by_hash(c, sql, &hash, stored, record))
            .await
    }

    /// Runs `update` (`?1` id, `?2` now), which marks token `id` revoked; not found where it
    /// matched nothing.
    pub(super) async fn revoke(&self, update: &'static str, id: &str, now: i64) -> Result<()> {
        let id = id.to_owned();
        self.writer()
            .write(move |c| match c.execute(update, params![id, now])? {
                0 => Err(StoreError::NotFound(format!("token '{id}'"))),
                _ => Ok(()),
            })
            .await
    }
}

impl UsersTokens for SqliteStore {
    async fn add_user(&self, name: &str, now: i64) -> Result<UserRecord> {
        let name = name.to_owned();
        self.writer()
            .write(move |c| {
                let exists: Option<i64> = c
                    .query_row("SELECT id FROM users WHERE name = ?1", [&name], |r| {
                        r.get(0)
                    })
                    .optional()?;
                if exists.is_some() {
                    return Err(StoreError::Conflict(format!(
                        "user '{name}' already exists"
                    )));
                }
                c.execute(
                    "INSERT INTO users (name, created_at) VALUES (?1, ?2)",
                    params![name, now],
                )?;
                Ok(UserRecord {
                    id: c.last_insert_rowid(),
                    name,
                    created_at: now,
                })
            })
            .await
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>> {
        self.list(
            "SELECT id, name, created_at FROM users ORDER BY name",
            [],
            |r| {
                Ok(UserRecord {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    created_at: r.get(2)?,
                })
            },
        )
        .await
    }

    async fn user_by_name(&self, name: &str) -> Result<UserRecord> {
        self.lookup(|c| {
            c.query_row(
                "SELECT id, name, created_at FROM users WHERE name = ?1",
                [name],
                |r| {
                    Ok(UserRecord {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        created_at: r.get(2)?,
                    })
                },
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("user '{name}'")))
        })
        .await
    }

    /// Removes a user with their tokens, devices, pairing codes and messages.
    async fn remove_user(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.writer()
            .write(
                move |c| match c.execute("DELETE FROM users WHERE name = ?1", [&name])? {
                    0 => Err(StoreError::NotFound(format!("user '{name}'"))),
                    _ => Ok(()),
                },
            )
            .await
    }

    async fn revoke_token(&self, id: &str, now: i64) -> Result<()> {
        self.revoke(REVOKE_SQL, id, now).await
    }

    /// The live (unrevoked) token with this secret, if any.
    async fn authenticate_token(&self, secret: &str) -> Result<Option<TokenRecord>> {
        let hash = hash_secret(secret);
        self.lookup(|c| live_token(c, &hash)).await
    }

    /// The token and its owner's devices in one read transaction: each statement on its own
    /// would begin and end one (the WAL's read lock, and a page cache dropped whenever the file
    /// changed since, which under sends is every time), and both read the same snapshot.
    async fn authenticate_sender(&self, secret: &str) -> Result<Option<Sender>> {
        let hash = hash_secret(secret);
        self.lookup(|c| {
            let snapshot = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Deferred)?;
            let token = live_token(&snapshot, &hash)?;
            let sender = match token {
                Some(token) => Some(Sender {
                    devices: super::devices_pairing::reachable_devices(&snapshot, token.user_id)?,
                    token,
                }),
                None => None,
            };
            snapshot.commit()?;
            Ok(sender)
        })
        .await
    }

    /// Creates a token and returns it: the only time its secret exists outside the caller.
    /// Writes a token issued by [`crate::store::tokens::issue`].
    async fn insert_token(&self, record: &TokenRecord, hash: &[u8; 32]) -> Result<()> {
        let row = record.clone();
        let hash = *hash;
        self.writer()
            .write(move |c| {
                c.execute(
                    "INSERT INTO tokens (id, hash, user_id, label, priority_cap, scope_devices, test, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        row.id,
                        hash.as_slice(),
                        row.user_id,
                        row.label,
                        row.priority_cap.map(|p| p.as_str()),
                        row.scope_devices,
                        row.test,
                        row.created_at
                    ],
                )?;
                Ok(())
            })
            .await
    }

    async fn list_tokens(&self, user: Option<&str>) -> Result<Vec<TokenRecord>> {
        self.list(LIST_SQL, [user], record).await
    }
}

/// The live (unrevoked) token whose secret hashes to `hash`.
fn live_token(c: &rusqlite::Connection, hash: &[u8; 32]) -> Result<Option<TokenRecord>> {
    Ok(by_hash(c, AUTH_SQL, hash, 10, record)?.filter(|t| !t.revoked))
}

/// The row whose stored hash (column `stored`) is `hash`, compared in constant time.
fn by_hash<T>(
    c: &rusqlite::Connection,
    sql: &str,
    hash: &[u8; 32],
    stored: usize,
    record: fn(&Row) -> rusqlite::Result<T>,
) -> Result<Option<T>> {
    let found = c
        .prepare_cached(sql)?
        .query_row([hash.as_slice()], |r| {
            Ok((record(r)?, r.get::<_, Vec<u8>>(stored)?))
        })
        .optional()?;
    Ok(found.and_then(|(record, held)| {
        let same: bool = held.as_slice().ct_eq(hash.as_slice()).into();
        same.then_some(record)
    }))
}
