//! The operator API on PostgreSQL (SPEC §1.19): admin tokens (SHA-256 only, compared in
//! constant time), the addresses they were used from, the audit log, and the operator's
//! message pages and counts. Nothing is cached: a revocation on any relay holds on every relay
//! at the next request.

use super::PgStore;
use crate::store::contract::Admin;
use crate::store::model::*;
use crate::store::{Result, StoreError};
use deadpool_postgres::GenericClient;
use std::collections::HashMap;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

const SELECT_ADMIN: &str =
    "SELECT id, label, created_at, last_used_at, revoked_at IS NOT NULL, hash FROM admin_tokens";

/// Marks an admin token revoked, keeping the time of an earlier revocation.
const REVOKE_ADMIN_SQL: &str =
    "UPDATE admin_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1";

fn admin_token(r: &Row) -> AdminTokenRecord {
    AdminTokenRecord {
        id: r.get(0),
        label: r.get(1),
        created_at: r.get(2),
        last_used_at: r.get(3),
        revoked: r.get(4),
    }
}

/// Appends an audit entry inside a transaction already under way (the brute-force rule's
/// invalidation commits it with the codes it drops).
pub(super) async fn insert_audit(c: &impl GenericClient, e: &NewAudit) -> Result<()> {
    c.execute(
        "INSERT INTO audit (at, actor, action, target, ip) VALUES ($1, $2, $3, $4, $5)",
        &[&e.at, &e.actor, &e.action, &e.target, &e.ip],
    )
    .await?;
    Ok(())
}

impl Admin for PgStore {
    async fn authenticate_admin(&self, secret: &str) -> Result<Option<AdminTokenRecord>> {
        let select = format!("{SELECT_ADMIN} WHERE hash = $1");
        let found = self.row_by_secret(&select, secret, 5).await?;
        Ok(found.map(|r| admin_token(&r)).filter(|t| !t.revoked))
    }

    async fn list_admin_tokens(&self) -> Result<Vec<AdminTokenRecord>> {
        let rows = self
            .client()
            .await?
            .query(&format!("{SELECT_ADMIN} ORDER BY created_at, id"), &[])
            .await?;
        Ok(rows.iter().map(admin_token).collect())
    }

    async fn revoke_admin_token(&self, id: &str, now: i64) -> Result<()> {
        self.revoke(REVOKE_ADMIN_SQL, id, now).await
    }

    async fn note_admin_use(&self, token_id: &str, ip: &str, now: i64) -> Result<bool> {
        let c = self.writer().await?;
        c.execute(
            "UPDATE admin_tokens SET last_used_at = $2 WHERE id = $1",
            &[&token_id, &now],
        )
        .await?;
        let new = c
            .execute(
                "INSERT INTO admin_token_ips (token_id, ip, first_at) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
                &[&token_id, &ip, &now],
            )
            .await?;
        Ok(new == 1)
    }

    async fn record_audit(&self, entry: NewAudit) -> Result<()> {
        insert_audit(&self.writer().await?, &entry).await
    }

    async fn list_audit(&self, before: Option<i64>, limit: usize) -> Result<Vec<AuditRecord>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT id, at, actor, action, target, ip FROM audit \
                 WHERE $1::BIGINT IS NULL OR id < $1 ORDER BY id DESC LIMIT $2",
                &[&before, &(limit as i64)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| AuditRecord {
                id: r.get(0),
                at: r.get(1),
                actor: r.get(2),
                action: r.get(3),
                target: r.get(4),
                ip: r.get(5),
            })
            .collect())
    }

    async fn prune_audit(&self, cutoff: i64) -> Result<usize> {
        let n = self
            .writer()
            .await?
            .execute("DELETE FROM audit WHERE at <= $1", &[&cutoff])
            .await?;
        Ok(n as usize)
    }

    async fn admin_messages(&self, query: MessageQuery) -> Result<Vec<AdminMessageRecord>> {
        let c = self.client().await?;
        let mut sql = String::from(
            "SELECT m.id, u.name, m.token_id, m.key, m.created_at, m.cleared_at, m.acknowledged_at \
             FROM messages m JOIN users u ON u.id = m.user_id WHERE TRUE",
        );
        let state = query.state.map(|s| s.as_str());
        let limit = query.limit as i64;
        let mut args: Vec<&(dyn ToSql + Sync)> = Vec::new();
        if let Some(user) = &query.user {
            args.push(user);
            sql += &format!(
                " AND m.user_id = (SELECT id FROM users WHERE name = ${})",
                args.len()
            );
        }
        if let Some(state) = &state {
            args.push(state);
            sql += &format!(
                " AND EXISTS (SELECT 1 FROM jobs j WHERE j.message_id = m.id AND j.kind = 'message' AND j.state = ${})",
                args.len()
            );
        }
        if let Some(before) = &query.before {
            args.push(before);
            let n = args.len();
            sql += &format!(
                " AND (m.created_at, m.id) < (SELECT created_at, id FROM messages WHERE id = ${n})"
            );
        }
        args.push(&limit);
        sql += &format!(
            " ORDER BY m.created_at DESC, m.id DESC LIMIT ${}",
            args.len()
        );
        let rows = c.query(&sql, &args).await?;
        let mut messages: Vec<AdminMessageRecord> = rows
            .iter()
            .map(|r| AdminMessageRecord {
                id: r.get(0),
                user: r.get(1),
                token_id: r.get(2),
                key: r.get(3),
                created_at: r.get(4),
                cleared_at: r.get(5),
                acknowledged_at: r.get(6),
                deliveries: Vec::new(),
            })
            .collect();
        let ids: Vec<&str> = messages.iter().map(|m| m.id.as_str()).collect();
        let jobs = c
            .query(
                "SELECT message_id, device_id, state, updated_at FROM jobs \
                 WHERE message_id = ANY($1) AND kind = 'message' ORDER BY id",
                &[&ids],
            )
            .await?;
        let mut by_message: HashMap<String, Vec<(String, JobState, i64)>> = HashMap::new();
        for j in &jobs {
            let state: &str = j.get(2);
            let state = JobState::parse(state)
                .ok_or_else(|| StoreError::Db(format!("unknown job state {state}")))?;
            by_message
                .entry(j.get(0))
                .or_default()
                .push((j.get(1), state, j.get(3)));
        }
        for m in &mut messages {
            m.deliveries = by_message.remove(&m.id).unwrap_or_default();
        }
        Ok(messages)
    }

    async fn admin_counts(&self, since: i64) -> Result<AdminCountsRecord> {
        let r = self
            .client()
            .await?
            .query_one(
                "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM devices), \
                 (SELECT count(*) FROM tokens WHERE revoked_at IS NULL) \
                   + (SELECT count(*) FROM admin_tokens WHERE revoked_at IS NULL), \
                 (SELECT count(*) FROM messages WHERE created_at > $1), \
                 (SELECT count(*) FROM jobs WHERE state = 'delivered' AND kind = 'message' AND updated_at > $1), \
                 (SELECT count(*) FROM jobs WHERE state = 'failed' AND kind = 'message' AND updated_at > $1), \
                 (SELECT count(*) FROM jobs WHERE state = 'expired' AND kind = 'message' AND updated_at > $1), \
                 (SELECT count(*) FROM jobs WHERE state = 'queued'), \
                 (SELECT count(*) FROM jobs WHERE state = 'leased'), \
                 (SELECT count(*) FROM jobs WHERE state = 'pending')",
                &[&since],
            )
            .await?;
        Ok(AdminCountsRecord {
            users: r.get(0),
            devices: r.get(1),
            tokens: r.get(2),
            messages_24h: r.get(3),
            delivered_24h: r.get(4),
            failed_24h: r.get(5),
            expired_24h: r.get(6),
            queued: r.get(7),
            leased: r.get(8),
            pending: r.get(9),
        })
    }

    async fn insert_admin_token(&self, record: &AdminTokenRecord, hash: &[u8; 32]) -> Result<()> {
        self.writer()
            .await?
            .execute(
                "INSERT INTO admin_tokens (id, hash, label, created_at) VALUES ($1, $2, $3, $4)",
                &[
                    &record.id,
                    &hash.as_slice(),
                    &record.label,
                    &record.created_at,
                ],
            )
            .await?;
        Ok(())
    }
}
