//! `reflecto admin copy --to postgres://…`: the whole of a single-box relay's SQLite store
//! (users, token hashes, devices and their keys, pairing codes, messages, jobs, urgent
//! messages' repeats and callbacks, counters, the VAPID key, admin tokens, the audit log,
//! heartbeats) into an empty PostgreSQL database, in one transaction, so the relay moves
//! without re-pairing a device or re-issuing a token (SPEC §3). The two schemas name the same
//! tables and columns; rows cross as plain values and each is converted to the target
//! column's type.

use super::{Result, Store, StoreError};

/// One column value as it leaves SQLite.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

/// What is copied, parents before children. `store_probe` (the readiness probe's scratch
/// row) is not data. The in-memory rolling windows of one SQLite relay (token burst, per-IP)
/// are not kept anywhere to copy: they start empty, as after a restart.
pub const TABLES: &[(&str, &[&str])] = &[
    ("users", &["id", "name", "created_at"]),
    (
        "tokens",
        &[
            "id",
            "hash",
            "user_id",
            "label",
            "priority_cap",
            "scope_devices",
            "test",
            "created_at",
            "last_used_at",
            "revoked_at",
        ],
    ),
    (
        "devices",
        &[
            "id",
            "user_id",
            "label",
            "type",
            "fcm_token",
            "credential_hash",
            "reachable",
            "next_seq",
            "created_at",
            "public_key",
            "endpoint",
            "p256dh",
            "auth",
            "last_seen_at",
        ],
    ),
    ("pairing_codes", &["code_hash", "user_id", "expires_at"]),
    ("pair_failures", &["at_ms"]),
    (
        "messages",
        &[
            "id",
            "user_id",
            "token_id",
            "envelope",
            "created_at",
            "expires_at",
            "key",
            "responses",
            "cleared_at",
            "acknowledged_at",
            "acknowledged_by",
            "acknowledged_response",
        ],
    ),
    (
        "jobs",
        &[
            "id",
            "message_id",
            "device_id",
            "device_type",
            "state",
            "attempts",
            "run_at",
            "lease_until",
            "last_error",
            "seq",
            "expires_at",
            "updated_at",
            "payload",
            "payload_kind",
            "priority",
            "kind",
            "acknowledged_at",
            "response",
        ],
    ),
    (
        "urgent",
        &[
            "message_id",
            "retry_ms",
            "expire_ms",
            "expires_at",
            "next_at",
            "repeats",
            "receipt",
            "callback",
            "callback_type",
            "callback_state",
            "callback_at",
            "callback_attempts",
            "callback_run_at",
            "callback_lease_until",
            "callback_give_up_at",
        ],
    ),
    (
        "idempotency",
        &["token_id", "key", "status", "body", "created_at"],
    ),
    ("token_month_counts", &["token_id", "month", "count"]),
    ("receiver_sends", &["user_id", "at_ms"]),
    ("vapid", &["id", "private_key", "created_at"]),
    (
        "admin_tokens",
        &[
            "id",
            "hash",
            "label",
            "created_at",
            "last_used_at",
            "revoked_at",
        ],
    ),
    ("admin_token_ips", &["token_id", "ip", "first_at"]),
    (
        "heartbeats",
        &[
            "user_id",
            "name",
            "every_ms",
            "grace_ms",
            "grace_set",
            "state",
            "last_ping_at",
            "alarm_at",
            "token_id",
            "source",
        ],
    ),
    ("audit", &["id", "at", "actor", "action", "target", "ip"]),
];

/// Rows moved per statement.
pub const CHUNK: usize = 500;

impl Store {
    /// Copies this (SQLite) store into the empty PostgreSQL database at `url`; returns the
    /// rows copied per table. A target that holds anything is refused before anything is
    /// written to it. `progress` hears each table as it is done.
    pub async fn copy_to(
        &self,
        url: &str,
        mut progress: impl FnMut(&str, u64),
    ) -> Result<Vec<(&'static str, u64)>> {
        let Store::Sqlite(source) = self else {
            return Err(StoreError::Conflict(
                "copy reads an SQLite store; between PostgreSQL databases use pg_dump and pg_restore"
                    .into(),
            ));
        };
        let mut target = super::postgres::Import::begin(url).await?;
        let mut copied = Vec::with_capacity(TABLES.len());
        for &(table, columns) in TABLES {
            let mut after = i64::MIN;
            let mut count = 0u64;
            loop {
                let (rows, last) = source.export_chunk(table, columns, after, CHUNK)?;
                if rows.is_empty() {
                    break;
                }
                count += rows.len() as u64;
                target.insert(table, columns, rows).await?;
                after = last;
            }
            progress(table, count);
            copied.push((table, count));
        }
        target.commit().await?;
        Ok(copied)
    }
}
