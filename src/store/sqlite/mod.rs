//! The embedded backend: one SQLite file (WAL) in the data dir holding users, tokens, devices,
//! pairing codes, messages, delivery jobs and the rate-limit counters that survive restarts.
//!
//! Writes go through one group-commit [`writer`]; reads use a small pool of their own
//! connections, so readers never wait for the writer. Several processes (a running relay and
//! `reflecto admin`) may open the same file: SQLite's locking and `busy_timeout` serialize
//! them. One relay owns the file (the data-dir lock), so the rolling rate-limit windows live in
//! its memory ([`RateLimiter`]) and only the monthly and daily sends are persisted and
//! reloaded at start.

mod backup;
mod devices;
mod export;
mod jobs;
mod limits;
mod messages;
mod private;
mod schema;
#[cfg(test)]
mod tests;
mod tokens;
mod users;
mod vapid;
mod writer;

use super::limits::{Limits, RateLimiter};
use super::{Result, StoreError, Wakeups};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use writer::Writer;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode as C;
        match e.sqlite_error_code() {
            Some(
                C::DiskFull
                | C::SystemIoFailure
                | C::CannotOpen
                | C::ReadOnly
                | C::DatabaseBusy
                | C::DatabaseLocked
                | C::OutOfMemory
                | C::FileLockingProtocolFailed,
            ) => StoreError::Unavailable(e.to_string()),
            _ => StoreError::Db(e.to_string()),
        }
    }
}

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Writer,
    readers: Mutex<Vec<Connection>>,
    limiter: RateLimiter,
    wakeups: Wakeups,
}

pub const DB_FILE: &str = "reflecto.db";

impl SqliteStore {
    /// Opens (creating if needed) `<data_dir>/reflecto.db` and migrates it. The data dir is
    /// created 0700 and the store's files are 0600 whatever the umask: they hold live pairing
    /// codes and message contents.
    pub fn open(data_dir: &Path, limits: Limits, now: i64) -> Result<SqliteStore> {
        private::create_dir(data_dir).map_err(|e| {
            StoreError::Db(format!("creating data dir {}: {e}", data_dir.display()))
        })?;
        let path = data_dir.join(DB_FILE);
        private::create_files(&path)
            .map_err(|e| StoreError::Db(format!("creating {}: {e}", path.display())))?;
        let mut conn = Connection::open(&path)?;
        schema::configure(&conn)?;
        schema::migrate(&mut conn)?;
        let store = SqliteStore {
            inner: Arc::new(Inner {
                path,
                writer: Writer::spawn(conn),
                readers: Mutex::new(Vec::new()),
                limiter: RateLimiter::new(limits),
                wakeups: Wakeups::default(),
            }),
        };
        store.restore_limits(now)?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs a read on a pooled read-only connection.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        let pooled = self
            .inner
            .readers
            .lock()
            .expect("reader pool poisoned")
            .pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.inner.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(std::time::Duration::from_secs(5))?;
                conn
            }
        };
        let result = f(&conn);
        self.inner
            .readers
            .lock()
            .expect("reader pool poisoned")
            .push(conn);
        result
    }

    pub fn wakeups(&self) -> &Wakeups {
        &self.inner.wakeups
    }

    pub(crate) fn limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    pub(crate) fn writer(&self) -> &Writer {
        &self.inner.writer
    }

    /// A cheap liveness probe: one read.
    pub async fn ping(&self) -> Result<()> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
    }

    /// The readiness probe of `/health/ready`: a real write (one row, through the group
    /// commit), so a full disk or a failing device shows here, and clears here once it heals.
    pub async fn probe_write(&self, now: i64) -> Result<()> {
        self.writer()
            .write(move |c| {
                c.prepare_cached("INSERT OR REPLACE INTO store_probe (id, at_ms) VALUES (1, ?1)")?
                    .execute([now])?;
                Ok(())
            })
            .await
    }

    /// Whether the last group commit failed for a store fault (not for a refused request).
    pub fn writes_failing(&self) -> bool {
        self.writer().health().failing()
    }

    /// For tests and operations drills: while `on`, every write batch fails as a full disk
    /// would, before touching the database. Nothing already committed is affected.
    pub fn inject_write_fault(&self, on: bool) {
        self.writer().health().set_injected(on);
    }
}
