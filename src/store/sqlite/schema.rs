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
    // seal: sealed delivery (SPEC §1.12). A device's optional X25519 public key (base64url, no
    // padding); each job may carry a payload of its own — bytes plus their kind ('sealed' today,
    // Web Push ciphertext later; no CHECK, so a new kind needs no rebuild: `PayloadKind` refuses
    // unknown ones when read) — and the priority its channel needs without the plaintext.
    // `messages.envelope` becomes nullable (no plaintext when every target is sealed): SQLite
    // cannot drop a NOT NULL in place, so the table is rebuilt (the documented 12-step
    // procedure; `migrate` turns foreign keys off around it so dropping the old table does not
    // cascade into `jobs`). No index on `messages` exists to recreate.
    r#"
    ALTER TABLE devices ADD COLUMN public_key TEXT;
    ALTER TABLE jobs ADD COLUMN payload BLOB;
    ALTER TABLE jobs ADD COLUMN payload_kind TEXT;
    ALTER TABLE jobs ADD COLUMN priority TEXT;
    CREATE TABLE messages_rebuilt (
        id TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        token_id TEXT NOT NULL,
        envelope TEXT,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    INSERT INTO messages_rebuilt (id, user_id, token_id, envelope, created_at, expires_at)
        SELECT id, user_id, token_id, envelope, created_at, expires_at FROM messages;
    DROP TABLE messages;
    ALTER TABLE messages_rebuilt RENAME TO messages;
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
    // wpi: Web Push devices (SPEC §1.13). `devices.type` gains 'webpush' — a CHECK cannot be
    // altered in place, so the table is rebuilt like `messages` in `seal` (foreign keys off
    // around it; nothing references `devices`, and `devices_user` is recreated) — and a
    // subscription's endpoint and keys (base64url as the browser sent them). The relay's VAPID
    // key pair, created at first start: one row, the P-256 private scalar.
    r#"
    CREATE TABLE devices_rebuilt (
        id TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        label TEXT NOT NULL,
        type TEXT NOT NULL CHECK (type IN ('android', 'extension', 'webpush')),
        fcm_token TEXT,
        credential_hash BLOB UNIQUE,
        reachable INTEGER NOT NULL DEFAULT 1,
        next_seq INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        public_key TEXT,
        endpoint TEXT,
        p256dh TEXT,
        auth TEXT
    );
    INSERT INTO devices_rebuilt (id, user_id, label, type, fcm_token, credential_hash, reachable, next_seq, created_at, public_key)
        SELECT id, user_id, label, type, fcm_token, credential_hash, reachable, next_seq, created_at, public_key FROM devices;
    DROP TABLE devices;
    ALTER TABLE devices_rebuilt RENAME TO devices;
    CREATE INDEX devices_user ON devices(user_id);
    CREATE TABLE vapid (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        private_key BLOB NOT NULL,
        created_at INTEGER NOT NULL
    );
    "#,
    // 5: a token per claim of a job, so an outcome or renewal lands only under the lease it
    // was claimed with; when each device was last seen (SPEC §2.5), NULL for never.
    "ALTER TABLE jobs ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE devices ADD COLUMN last_seen_at INTEGER;",
    // 6: the claim and the next-due lookup filter the due jobs by channel (`device_type`).
    // With the type in the due index they read it there; before, each due job of another
    // channel cost a table-row read (a fifth of a delivery round's CPU, in pread, with Web
    // Push jobs queued beside the android ones).
    "DROP INDEX jobs_due; CREATE INDEX jobs_due ON jobs(state, run_at, device_type);",
    // 7: a send's key (SPEC §1.15); a send with a key looks up the owner's earlier messages
    // with it, so that lookup is indexed.
    "ALTER TABLE messages ADD COLUMN key TEXT;
     CREATE INDEX messages_user_key ON messages(user_id, key) WHERE key IS NOT NULL;",
    // 8: clears and acknowledgements (SPEC §1.15, §1.16). A job is a message or a `clear` of
    // it (riding the same queue, leases and retries); each delivery keeps its device's first
    // acknowledgement; a message keeps the responses its actions offer (space-separated: a
    // response holds no space), when it was cleared and its first acknowledgement.
    "ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'message';
     ALTER TABLE jobs ADD COLUMN acknowledged_at INTEGER;
     ALTER TABLE jobs ADD COLUMN response TEXT;
     ALTER TABLE messages ADD COLUMN responses TEXT;
     ALTER TABLE messages ADD COLUMN cleared_at INTEGER;
     ALTER TABLE messages ADD COLUMN acknowledged_at INTEGER;
     ALTER TABLE messages ADD COLUMN acknowledged_by TEXT;
     ALTER TABLE messages ADD COLUMN acknowledged_response TEXT;",
    // 9: urgent messages (SPEC §1.17). One row per send that repeats, calls back or has a
    // Pushover receipt: the repeat plan and where it stands (`next_at` NULL once stopped), the
    // callback's durable work (`callback_type` set when an event is due; retried with back-off
    // until `callback_give_up_at`, claimed under `callback_lease_until` so one relay sends it)
    // and its outcome. A repeat is a job of kind 'repeat'.
    "CREATE TABLE urgent (
        message_id TEXT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
        retry_ms INTEGER,
        expire_ms INTEGER,
        expires_at INTEGER,
        next_at INTEGER,
        repeats INTEGER NOT NULL DEFAULT 0,
        receipt TEXT UNIQUE,
        callback TEXT,
        callback_type TEXT,
        callback_state TEXT,
        callback_at INTEGER,
        callback_attempts INTEGER NOT NULL DEFAULT 0,
        callback_run_at INTEGER,
        callback_lease_until INTEGER,
        callback_give_up_at INTEGER
     );
     CREATE INDEX urgent_next ON urgent(next_at) WHERE next_at IS NOT NULL;
     CREATE INDEX urgent_callback ON urgent(callback_run_at) WHERE callback_run_at IS NOT NULL;",
    // 10 (the operator API, SPEC §1.19): admin tokens (no user; hashed like sender
    // tokens), the addresses each was used from (a new one is audited), the audit log, and
    // the indexes that page messages newest first, all or one user's.
    "CREATE TABLE admin_tokens (
        id TEXT PRIMARY KEY,
        hash BLOB NOT NULL UNIQUE,
        label TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_used_at INTEGER,
        revoked_at INTEGER
     );
     CREATE TABLE admin_token_ips (
        token_id TEXT NOT NULL REFERENCES admin_tokens(id) ON DELETE CASCADE,
        ip TEXT NOT NULL,
        first_at INTEGER NOT NULL,
        PRIMARY KEY (token_id, ip)
     );
     CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        ip TEXT
     );
     CREATE INDEX audit_at ON audit(at);
     CREATE INDEX messages_page ON messages(created_at, id);
     CREATE INDEX messages_user_page ON messages(user_id, created_at, id);",
    // 11: heartbeats (SPEC §1.18). `alarm_at` (last ping + every + grace) is kept as a column
    // so the maintenance beat finds the due ones through an index of the `up` ones.
    "CREATE TABLE heartbeats (
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        every_ms INTEGER NOT NULL,
        grace_ms INTEGER NOT NULL,
        grace_set INTEGER NOT NULL,
        state TEXT NOT NULL,
        last_ping_at INTEGER NOT NULL,
        alarm_at INTEGER NOT NULL,
        token_id TEXT NOT NULL,
        source TEXT NOT NULL,
        PRIMARY KEY (user_id, name)
     );
     CREATE INDEX heartbeats_due ON heartbeats(alarm_at) WHERE state = 'up';",
    // 12: the job-state indexes made partial (bench/RESULTS.md): a claim and its outcome
    // rewrote a job's entry in three `(state, …)` indexes, twelve index writes per delivery;
    // each index now holds only the jobs its queries look for. SQLite uses a partial index
    // only for a query that repeats the index's WHERE term, so the queries name it exactly
    // (`job_queries_use_their_partial_indexes_and_never_scan_the_jobs` in tests.rs checks their
    // plans); `jobs_done` serves the operator's counts of the last 24 hours' outcomes.
    "DROP INDEX jobs_due; DROP INDEX jobs_lease; DROP INDEX jobs_expiry;
     CREATE INDEX jobs_due ON jobs(run_at, device_type) WHERE state = 'queued';
     CREATE INDEX jobs_lease ON jobs(lease_until) WHERE state = 'leased';
     CREATE INDEX jobs_expiry ON jobs(expires_at) WHERE state IN ('queued', 'pending');
     CREATE INDEX jobs_done ON jobs(updated_at) WHERE state IN ('delivered', 'failed', 'expired');",
    // 13: `messages_created(created_at)` repeats the head of `messages_page(created_at, id)`,
    // which serves every query it did (pruning, the operator's counts); each accepted send
    // wrote both. The receiver sends are read here only by time (restored at start, pruned
    // by the maintenance beat; the per-receiver window is the limiter's, in memory), which
    // `(user_id, at_ms)` could not serve: both scanned the table.
    "DROP INDEX messages_created;
     DROP INDEX receiver_sends_user;
     CREATE INDEX receiver_sends_at ON receiver_sends(at_ms);",
];

/// Brings the schema up to date inside one transaction.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: usize =
        conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    if current >= MIGRATIONS.len() {
        return Ok(());
    }
    // A table rebuild drops the old table; with foreign keys on, that drop would cascade into
    // its children. The pragma is a no-op inside a transaction, so it is set around it, and
    // the result is checked before commit instead.
    conn.execute_batch("PRAGMA foreign_keys = OFF")?;
    let migrated = migrate_unchecked(conn);
    conn.execute_batch("PRAGMA foreign_keys = ON")?;
    migrated
}

fn migrate_unchecked(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Re-read under the write lock: another process may have migrated meanwhile.
    let current: usize = tx.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    for sql in MIGRATIONS.iter().skip(current) {
        tx.execute_batch(sql)?;
    }
    let dangling: i64 = tx.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
        r.get(0)
    })?;
    if dangling > 0 {
        // Dropping the transaction rolls the migration back.
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY),
            Some(format!("migration left {dangling} dangling foreign keys")),
        ));
    }
    tx.execute_batch(&format!("PRAGMA user_version = {}", MIGRATIONS.len()))?;
    tx.commit()
}

/// The query planner stability guarantee, on every connection (readers too): without it,
/// SQLite matches a partial index's WHERE term against a query's terms by comparing bound
/// values, and marks every statement it compared so that binding a new value re-prepares it —
/// the queue's claim at every claim, and an extension's stream read (SQLite's `QPSG`). Every
/// query that a partial index serves names the index's WHERE term with literals, so no plan
/// changes: the plan tests in tests.rs run with this setting.
pub fn stable_plans(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

/// Connection settings every connection gets: WAL with NORMAL sync is durable against a
/// process crash (the relay's promise) and lets readers run beside the one writer.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    stable_plans(conn)?;
    // temp_store=MEMORY keeps the per-op savepoints' statement journals off disk: otherwise each
    // group commit creates and deletes temp files.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store written by the first release: one message with a job, then migrated.
    #[test]
    fn nullable_envelope_rebuild_keeps_jobs_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("old.db")).unwrap();
        configure(&conn).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch(
            "PRAGMA user_version = 1;
             INSERT INTO users (id, name, created_at) VALUES (1, 'alice', 0);
             INSERT INTO messages VALUES ('msg_1', 1, 'tok_1', '{\"m\":1}', 0, 60000);
             INSERT INTO jobs (message_id, device_id, device_type, state, run_at, expires_at, updated_at)
                 VALUES ('msg_1', 'dev_1', 'android', 'queued', 0, 60000, 0);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(
            count("SELECT COUNT(*) FROM jobs WHERE message_id = 'msg_1'"),
            1
        );
        assert_eq!(
            count("SELECT COUNT(*) FROM messages WHERE envelope = '{\"m\":1}'"),
            1
        );
        assert_eq!(count("PRAGMA foreign_keys"), 1);
        assert_eq!(count("PRAGMA user_version"), MIGRATIONS.len() as i64);
        conn.execute(
            // Columns named: later migrations add more (a key, 6).
            "INSERT INTO messages (id, user_id, token_id, envelope, created_at, expires_at) VALUES ('msg_2', 1, 'tok_1', NULL, 0, 60000)",
            [],
        )
        .unwrap();
        // The rebuilt table still cascades: removing the user removes messages and their jobs.
        conn.execute("DELETE FROM users WHERE id = 1", []).unwrap();
        assert_eq!(count("SELECT COUNT(*) FROM jobs"), 0);
        assert_eq!(count("SELECT COUNT(*) FROM messages"), 0);
    }

    /// A store from before Web Push: its devices survive the rebuild, and the new CHECK
    /// admits `webpush` and still refuses anything else.
    #[test]
    fn devices_rebuild_keeps_devices_and_admits_webpush_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("old.db")).unwrap();
        configure(&conn).unwrap();
        for sql in &MIGRATIONS[..3] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 3;
             INSERT INTO users (id, name, created_at) VALUES (1, 'alice', 0);
             INSERT INTO devices (id, user_id, label, type, fcm_token, created_at, public_key)
                 VALUES ('dev_1', 1, 'pixel', 'android', 'fcm-1', 0, 'pk');",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let kept: (String, String, String) = conn
            .query_row(
                "SELECT type, fcm_token, public_key FROM devices WHERE id = 'dev_1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(kept, ("android".into(), "fcm-1".into(), "pk".into()));
        conn.execute(
            "INSERT INTO devices (id, user_id, label, type, created_at, endpoint, p256dh, auth) \
             VALUES ('dev_2', 1, 'browser', 'webpush', 0, 'https://push.example/x', 'k', 'a')",
            [],
        )
        .unwrap();
        assert!(
            conn.execute(
                "INSERT INTO devices (id, user_id, label, type, created_at) VALUES ('dev_3', 1, 'x', 'pager', 0)",
                [],
            )
            .is_err()
        );
        // Still cascades from users.
        conn.execute("DELETE FROM users WHERE id = 1", []).unwrap();
        let left: i64 = conn
            .query_row("SELECT COUNT(*) FROM devices", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }
}
