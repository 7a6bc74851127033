//! Versioned schema migrations, tracked in `PRAGMA user_version`. Append only: a released
//! migration is never edited, a change is a new entry.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: the relay's whole model.
    r#"
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        hash BLOB NOT NULL UNIQUE,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        label TEXT NOT NULL,
        priority_cap TEXT,
        scope_devices TEXT,
        test INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        last_used_at INTEGER,
        revoked_at INTEGER
    );
    CREATE INDEX tokens_user ON tokens(user_id);
    CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        label TEXT NOT NULL,
        type TEXT NOT NULL CHECK (type IN ('android', 'extension')),
        fcm_token TEXT,
        credential_hash BLOB UNIQUE,
        reachable INTEGER NOT NULL DEFAULT 1,
        next_seq INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX devices_user ON devices(user_id);
    CREATE TABLE pairing_codes (
        code TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        expires_at INTEGER NOT NULL
    );
    CREATE TABLE messages (
        id TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        token_id TEXT NOT NULL,
        envelope TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        device_id TEXT NOT NULL,
        device_type TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        run_at INTEGER NOT NULL,
        lease_until INTEGER,
        last_error TEXT,
        seq INTEGER,
        expires_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX jobs_due ON jobs(state, run_at);
    CREATE INDEX jobs_lease ON jobs(state, lease_until);
    CREATE INDEX jobs_message ON jobs(message_id);
    CREATE INDEX jobs_device_seq ON jobs(device_id, seq);
    CREATE TABLE idempotency (
        token_id TEXT NOT NULL,
        key TEXT NOT NULL,
        status INTEGER NOT NULL,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (token_id, key)
    );
    CREATE TABLE token_month_counts (
        token_id TEXT NOT NULL,
        month TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (token_id, month)
    );
    CREATE TABLE receiver_sends (
        user_id INTEGER NOT NULL,
        at_ms INTEGER NOT NULL
    );
    CREATE INDEX receiver_sends_user ON receiver_sends(user_id, at_ms);
    "#,
    // store: pairing codes kept as SHA-256 only (live plaintext codes are dropped: they last
    // ten minutes and the operator issues new ones); failed redemptions, counted across every
    // process that opens the store; the readiness probe's one row; the indexes retention and
    // expiry look up by (expiry runs every few seconds: it must not scan a long queue).
    r#"
    DROP TABLE pairing_codes;
    CREATE TABLE pairing_codes (
        code_hash BLOB PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        expires_at INTEGER NOT NULL
    );
    CREATE TABLE pair_failures (
        at_ms INTEGER NOT NULL
    );
    CREATE INDEX pair_failures_at ON pair_failures(at_ms);
    CREATE TABLE store_probe (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        at_ms INTEGER NOT NULL
    );
    CREATE INDEX messages_created ON messages(created_at);
    CREATE INDEX jobs_expiry ON jobs(state, expires_at);
    "#,
];

/// Brings the schema up to date inside one transaction.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: usize =
        conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    if current >= MIGRATIONS.len() {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Re-read under the write lock: another process may have migrated meanwhile.
    let current: usize = tx.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    for sql in MIGRATIONS.iter().skip(current) {
        tx.execute_batch(sql)?;
    }
    tx.execute_batch(&format!("PRAGMA user_version = {}", MIGRATIONS.len()))?;
    tx.commit()
}

/// Connection settings every connection gets: WAL with NORMAL sync is durable against a
/// process crash (the relay's promise) and lets readers run beside the one writer.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // temp_store=MEMORY keeps the per-op savepoints' statement journals off disk: otherwise each
    // group commit creates and deletes temp files.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;",
    )
}
