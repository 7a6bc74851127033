//! The operator API on the embedded backend (SPEC §1.19): admin tokens (SHA-256 only, compared
//! in constant time), the addresses they were used from, the audit log, and the operator's
//! message pages and counts.

use super::SqliteStore;
use crate::store::Result;
use crate::store::StoreError;
use crate::store::contract::Admin;
use crate::store::model::*;
use rusqlite::{Connection, Row, params, params_from_iter};

/// Messages accepted since `?1`, counted in `messages_page(created_at, id)`.
pub(super) const MESSAGES_SINCE_SQL: &str = "SELECT COUNT(*) FROM messages WHERE created_at > ?1";

/// The operator's counts, each through the partial job index that holds its state (schema
/// migration 12): a query names the index's WHERE term exactly, or SQLite scans the table.
pub(super) const QUEUED_SQL: &str = "SELECT COUNT(*) FROM jobs WHERE state = 'queued'";
pub(super) const LEASED_SQL: &str = "SELECT COUNT(*) FROM jobs WHERE state = 'leased'";
pub(super) const PENDING_SQL: &str =
    "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'pending') AND state = 'pending'";
/// Outcomes `?1` of messages since `?2`.
pub(super) const FINAL_SINCE_SQL: &str = "SELECT COUNT(*) FROM jobs \
     WHERE state IN ('delivered', 'failed', 'expired') AND state = ?1 AND kind = 'message' AND updated_at > ?2";

const SELECT_ADMIN: &str =
    "SELECT id, label, created_at, last_used_at, revoked_at IS NOT NULL, hash FROM admin_tokens";

/// Marks an admin token revoked, keeping the time of an earlier revocation.
const REVOKE_ADMIN_SQL: &str =
    "UPDATE admin_tokens SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1";

fn admin_token(r: &Row) -> rusqlite::Result<AdminTokenRecord> {
    Ok(AdminTokenRecord {
        id: r.get(0)?,
        label: r.get(1)?,
        created_at: r.get(2)?,
        last_used_at: r.get(3)?,
        revoked: r.get(4)?,
    })
}

/// Appends an audit entry inside a write already under way (the brute-force rule's
/// invalidation commits it with the codes it drops).
pub(super) fn insert_audit(c: &Connection, e: &NewAudit) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO audit (at, actor, action, target, ip) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![e.at, e.actor, e.action, e.target, e.ip])?;
    Ok(())
}

impl Admin for SqliteStore {
    async fn authenticate_admin(&self, secret: &str) -> Result<Option<AdminTokenRecord>> {
        let sql = format!("{SELECT_ADMIN} WHERE hash = ?1");
        let found = self.by_secret(&sql, secret, 5, admin_token).await?;
        Ok(found.filter(|t| !t.revoked))
    }

    async fn list_admin_tokens(&self) -> Result<Vec<AdminTokenRecord>> {
        let sql = format!("{SELECT_ADMIN} ORDER BY created_at, id");
        self.list(&sql, [], admin_token).await
    }

    async fn revoke_admin_token(&self, id: &str, now: i64) -> Result<()> {
        self.revoke(REVOKE_ADMIN_SQL, id, now).await
    }

    async fn note_admin_use(&self, token_id: &str, ip: &str, now: i64) -> Result<bool> {
        let (token_id, ip) = (token_id.to_owned(), ip.to_owned());
        self.writer()
            .write(move |c| {
                c.prepare_cached("UPDATE admin_tokens SET last_used_at = ?2 WHERE id = ?1")?
                    .execute(params![token_id, now])?;
                let new = c
                    .prepare_cached(
                        "INSERT OR IGNORE INTO admin_token_ips (token_id, ip, first_at) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![token_id, ip, now])?;
                Ok(new == 1)
            })
            .await
    }

    async fn record_audit(&self, entry: NewAudit) -> Result<()> {
        self.writer().write(move |c| insert_audit(c, &entry)).await
    }

    async fn list_audit(&self, before: Option<i64>, limit: usize) -> Result<Vec<AuditRecord>> {
        self.lookup(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, at, actor, action, target, ip FROM audit \
                 WHERE ?1 IS NULL OR id < ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![before, limit as i64], |r| {
                Ok(AuditRecord {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    target: r.get(4)?,
                    ip: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn prune_audit(&self, cutoff: i64) -> Result<usize> {
        self.writer()
            .write(move |c| Ok(c.execute("DELETE FROM audit WHERE at <= ?1", [cutoff])?))
            .await
    }

    async fn admin_messages(&self, query: MessageQuery) -> Result<Vec<AdminMessageRecord>> {
        self.scan(|c| {
            let (sql, args) = messages_sql(&query);
            let mut stmt = c.prepare_cached(&sql)?;
            let mut messages = stmt
                .query_map(params_from_iter(args.iter()), |r| {
                    Ok(AdminMessageRecord {
                        id: r.get(0)?,
                        user: r.get(1)?,
                        token_id: r.get(2)?,
                        key: r.get(3)?,
                        created_at: r.get(4)?,
                        cleared_at: r.get(5)?,
                        acknowledged_at: r.get(6)?,
                        deliveries: Vec::new(),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut jobs = c.prepare_cached(
                "SELECT device_id, state, updated_at FROM jobs \
                 WHERE message_id = ?1 AND kind = 'message' ORDER BY id",
            )?;
            for m in &mut messages {
                let rows = jobs.query_map([&m.id], |r| {
                    let state: String = r.get(1)?;
                    Ok((r.get(0)?, state, r.get(2)?))
                })?;
                for row in rows {
                    let (device, state, at): (String, String, i64) = row?;
                    let state = JobState::parse(&state)
                        .ok_or_else(|| StoreError::Db(format!("unknown job state {state}")))?;
                    m.deliveries.push((device, state, at));
                }
            }
            Ok(messages)
        })
        .await
    }

    async fn admin_counts(&self, since: i64) -> Result<AdminCountsRecord> {
        self.scan(|c| {
            let one = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<i64> {
                Ok(c.prepare_cached(sql)?.query_row(p, |r| r.get(0))?)
            };
            let final_since = |s: &str| -> Result<i64> { one(FINAL_SINCE_SQL, &[&s, &since]) };
            Ok(AdminCountsRecord {
                users: one("SELECT COUNT(*) FROM users", &[])?,
                devices: one("SELECT COUNT(*) FROM devices", &[])?,
                tokens: one(
                    "SELECT (SELECT COUNT(*) FROM tokens WHERE revoked_at IS NULL) + \
                     (SELECT COUNT(*) FROM admin_tokens WHERE revoked_at IS NULL)",
                    &[],
                )?,
                messages_24h: one(MESSAGES_SINCE_SQL, &[&since])?,
                delivered_24h: final_since("delivered")?,
                failed_24h: final_since("failed")?,
                expired_24h: final_since("expired")?,
                queued: one(QUEUED_SQL, &[])?,
                leased: one(LEASED_SQL, &[])?,
                pending: one(PENDING_SQL, &[])?,
            })
        })
        .await
    }

    async fn insert_admin_token(&self, record: &AdminTokenRecord, hash: &[u8; 32]) -> Result<()> {
        let row = record.clone();
        let hash = *hash;
        self.writer()
            .write(move |c| {
                c.execute(
                    "INSERT INTO admin_tokens (id, hash, label, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![row.id, hash.as_slice(), row.label, row.created_at],
                )?;
                Ok(())
            })
            .await
    }
}

/// The page query: each filter adds its own condition (rather than `?n IS NULL OR …`), so
/// the planner walks `messages_page` or `messages_user_page` newest first and stops at the
/// limit instead of sorting every message.
fn messages_sql(q: &MessageQuery) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let mut sql = String::from(
        "SELECT m.id, (SELECT name FROM users WHERE id = m.user_id), m.token_id, m.key, \
         m.created_at, m.cleared_at, m.acknowledged_at FROM messages m WHERE 1 = 1",
    );
    let mut args = Vec::new();
    if let Some(user) = &q.user {
        args.push(Value::Text(user.clone()));
        sql += &format!(
            " AND m.user_id = (SELECT id FROM users WHERE name = ?{})",
            args.len()
        );
    }
    // `+` keeps SQLite off the state indexes here: through them the subquery read every job
    // in that state once per message (10 s for a page of 100 000 messages); through
    // `jobs_message` it reads one message's jobs.
    if let Some(state) = q.state {
        args.push(Value::Text(state.as_str().to_owned()));
        sql += &format!(
            " AND EXISTS (SELECT 1 FROM jobs j WHERE j.message_id = m.id AND +j.kind = 'message' AND +j.state = ?{})",
            args.len()
        );
    }
    if let Some(before) = &q.before {
        args.push(Value::Text(before.clone()));
        let n = args.len();
        sql += &format!(
            " AND (m.created_at, m.id) < (SELECT created_at, id FROM messages WHERE id = ?{n})"
        );
    }
    args.push(Value::Integer(q.limit as i64));
    sql += &format!(
        " ORDER BY m.created_at DESC, m.id DESC LIMIT ?{}",
        args.len()
    );
    (sql, args)
}
